/* SPDX-License-Identifier: MIT */
/* The tracing API: tracers, span life cycle, attributes, events, links. */
/* This file defines the setters that spanring.h otherwise wraps inline. */
#define SPANRING_IMPL
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr_fast.h"
#include "commit.h"
#include "encode.h"
#include "mem.h"
#include "internal.h"
#include "pbwire.h"

#define POOL_MAX 64

/* ---- tracers ------------------------------------------------------------------ */

#define SR_STR_(x) #x
#define SR_STR(x) SR_STR_(x)
#define SR_VERSION_STR                                                                        \
	SR_STR(SPANRING_VERSION_MAJOR) "." SR_STR(SPANRING_VERSION_MINOR) "." SR_STR(SPANRING_VERSION_PATCH)

static struct sr_tracer *tracers;
static struct sr_tracer *default_tracer;

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static char *dup_or_empty(const char *s)
{
	return sr_strdup(s ? s : "");
}

/* Encode the ScopeSpans prefix: tag(1) InstrumentationScope, tag(3) schema_url. */
static int tracer_encode(struct sr_tracer *tr, const spanring_attr *attrs, size_t n)
{
	struct spanring_span *tmp = sr_calloc(1, sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	tmp->kv = tmp->inline_kv;
	tmp->kv_cap = SR_INLINE_KV;
	tmp->a_cur = tmp->inline_arena;
	tmp->a_end = tmp->inline_arena + SR_INLINE_ARENA;
	for (size_t i = 0; i < n; i++)
		(void)sr_attr_set(tmp, &attrs[i], false);
	size_t nl = strlen(tr->name), vl = strlen(tr->version), sl = strlen(tr->schema_url);
	size_t scope = (nl ? pb_len_field_size(nl) : 0) + (vl ? pb_len_field_size(vl) : 0) +
		       sr_kvs_size(tmp->kv, tmp->nkv, 3) +
		       (tmp->dropped_attrs ? 1 + pb_varint_size(tmp->dropped_attrs) : 0);
	size_t body = pb_len_field_size(scope) + (sl ? pb_len_field_size(sl) : 0);
	uint8_t *b = sr_malloc(body ? body : 1);
	int err = -ENOMEM;
	if (b) {
		uint8_t *p = b;
		*p++ = 0x0a;
		p = pb_put_varint(p, scope);
		if (nl) {
			*p++ = 0x0a;
			p = pb_put_bytes(p, tr->name, nl);
		}
		if (vl) {
			*p++ = 0x12;
			p = pb_put_bytes(p, tr->version, vl);
		}
		p = sr_encode_kvs(p, tmp->kv, tmp->nkv, 3);
		if (tmp->dropped_attrs) {
			*p++ = 0x20;
			p = pb_put_varint(p, tmp->dropped_attrs);
		}
		if (sl) {
			*p++ = 0x1a;
			p = pb_put_bytes(p, tr->schema_url, sl);
		}
		tr->entry_body = b;
		tr->entry_len = (uint32_t)(p - b);
		err = 0;
	}
	if (tmp->kv != tmp->inline_kv)
		sr_free(tmp->kv);
	while (tmp->chunks) {
		struct sr_chunk *c = tmp->chunks;
		tmp->chunks = c->next;
		sr_free(c);
	}
	sr_free(tmp);
	return err;
}

spanring_tracer *spanring_tracer_get_ex(const char *name, const char *version,
					const char *schema_url, const spanring_attr *attrs,
					size_t n_attrs)
{
	if (n_attrs && !attrs) {
		errno = EINVAL;
		return NULL;
	}
	sr_proc_ready();
	sr_proc_lock();
	struct sr_tracer *tr;
	for (tr = tracers; tr; tr = tr->next)
		if (str_eq(tr->name, name) && str_eq(tr->version, version) &&
		    str_eq(tr->schema_url, schema_url))
			goto out;
	tr = sr_calloc(1, sizeof(*tr));
	if (!tr)
		goto out;
	tr->name = dup_or_empty(name);
	tr->version = dup_or_empty(version);
	tr->schema_url = dup_or_empty(schema_url);
	if (!tr->name || !tr->version || !tr->schema_url || tracer_encode(tr, attrs, n_attrs)) {
		sr_free(tr->name);
		sr_free(tr->version);
		sr_free(tr->schema_url);
		sr_free(tr);
		tr = NULL;
		errno = ENOMEM;
		goto out;
	}
	tr->next = tracers;
	tracers = tr;
out:
	sr_proc_unlock();
	return (spanring_tracer *)tr;
}

spanring_tracer *spanring_tracer_get(const char *name, const char *version, const char *schema_url)
{
	return spanring_tracer_get_ex(name, version, schema_url, NULL, 0);
}

static struct sr_tracer *tracer_or_default(spanring_tracer *t)
{
	if (SR_LIKELY(t != NULL))
		return (struct sr_tracer *)t;
	/* Acquire: pairs with the store-release below, in the thread that made
	 * the tracer (two threads may both make it: tracer_get returns the
	 * same one for the same name). */
	struct sr_tracer *d = sr_load_acquire_ptr(&default_tracer);
	if (!d) {
		/* A literal: this may run in a restricted fork child (no stdio). */
		d = (struct sr_tracer *)spanring_tracer_get("spanring", SR_VERSION_STR, NULL);
		/* Release: pairs with the load-acquire above. */
		sr_store_release_ptr(&default_tracer, d);
	}
	return d;
}

/* ---- span objects ---------------------------------------------------------------- */

static struct spanring_span *span_alloc(struct sr_thread *t)
{
	struct spanring_span *s = t->pool;
	if (SR_LIKELY(s != NULL)) {
		t->pool = s->next_free;
		t->npool--;
	} else {
		s = sr_malloc(sizeof(*s));
		if (!s)
			return NULL;
		s->kv = s->inline_kv;
		s->kv_cap = SR_INLINE_KV;
		s->ev = NULL;
		s->ev_cap = 0;
		s->ln = NULL;
		s->ln_cap = 0;
		s->xkv = NULL;
		s->xkv_cap = 0;
		s->chunks = NULL;
	}
	s->nkv = s->nev = s->nln = s->nxkv = 0;
	s->kv_bytes = 0;
	s->dropped_attrs = s->dropped_events = s->dropped_links = 0;
	s->status = 0;
	s->status_msg_len = 0;
	s->ts_len = 0;
	s->made_current = false;
	s->a_cur = s->inline_arena;
	s->a_end = s->inline_arena + SR_INLINE_ARENA;
	s->chunk_cur = NULL;
	return s;
}

static void span_recycle(struct sr_thread *t, struct spanring_span *s)
{
	sr_hot_store_relaxed_32(&s->state, SR_SPAN_FREE);
	if (SR_LIKELY(t && t->npool < POOL_MAX)) {
		s->next_free = t->pool;
		t->pool = s;
		t->npool++;
		return;
	}
	sr_span_free(s);
}

/* Unlink ended spans from the top of the thread's chain of current spans. */
static inline void pop_zombies(struct sr_thread *t)
{
	struct spanring_span *c;
	/* Acquire: pairs with the store-release of ZOMBIE in span_finish():
	 * the thread that ended the span is done with it. */
	while ((c = t->current) && sr_hot_load_acquire_32(&c->state) == SR_SPAN_ZOMBIE) {
		t->current = c->prev_current;
		span_recycle(t, c);
	}
}

static inline uint64_t rng_nonzero(struct sr_thread *t)
{
	uint64_t v;
	do
		v = sr_rng_next(t);
	while (SR_UNLIKELY(v == 0));
	return v;
}

static const char *name_store(struct spanring_span *s, const char *name, bool copy, uint32_t *len)
{
	if (!name)
		name = "";
	size_t n = strlen(name);
	/* Invalid UTF-8: keep the valid prefix (the name is never dropped). */
	size_t ok = sr_utf8_valid(name, n) ? n : sr_utf8_valid_prefix(name, n);
	*len = (uint32_t)ok;
	if (!copy || !ok)
		return name;
	char *d = sr_arena_alloc(s, ok, 1);
	if (!d) {
		*len = 0;
		return "";
	}
	pb_copy(d, name, ok);
	return d;
}

/* The new span's trace: its parent's (the thread's current span, or the
 * context in the options) or a new trace id. */
static inline void span_inherit(struct sr_thread *t, struct spanring_span *s,
				const spanring_span_opts *o)
{
	const struct spanring_span *ps_ = NULL;
	const spanring_span_context *pc = NULL;
	if (!o->root) {
		if (o->parent) {
			if (sr_ctx_valid(o->parent))
				pc = o->parent;
		} else {
			ps_ = t->current;
		}
	}
	if (ps_) {
		memcpy(s->trace_id, ps_->trace_id, 16);
		memcpy(s->parent_id, ps_->span_id, 8);
		s->trace_flags = ps_->trace_flags;
		s->parent_remote = false;
		s->has_parent = true;
		if (ps_->ts_len) {
			char *d = sr_arena_alloc(s, ps_->ts_len, 1);
			if (d) {
				memcpy(d, ps_->trace_state, ps_->ts_len);
				s->trace_state = d;
				s->ts_len = ps_->ts_len;
			}
		}
	} else if (pc) {
		memcpy(s->trace_id, pc->trace_id, 16);
		memcpy(s->parent_id, pc->span_id, 8);
		s->trace_flags = pc->trace_flags;
		s->parent_remote = pc->is_remote != 0;
		s->has_parent = true;
		uint32_t tl = pc->trace_state_len <= SPANRING_TRACESTATE_MAX ? pc->trace_state_len : 0;
		if (tl) {
			char *d = sr_arena_alloc(s, tl, 1);
			if (d) {
				memcpy(d, pc->trace_state, tl);
				s->trace_state = d;
				s->ts_len = tl;
			}
		}
	} else {
		uint64_t a = rng_nonzero(t), b = sr_rng_next(t);
		memcpy(s->trace_id, &a, 8);
		memcpy(s->trace_id + 8, &b, 8);
		s->trace_flags = 0;
		s->parent_remote = false;
		s->has_parent = false;
	}
}

static spanring_span *span_begin(spanring_tracer *tracer, const char *name, bool copy_name,
				 const spanring_span_opts *o)
{
	int ps = sr_proc_ready();
	if (SR_UNLIKELY(ps == SR_PROC_DISABLED))
		return &sr_noop_span;
	struct sr_thread *t = sr_thread_get();
	if (SR_UNLIKELY(!t))
		return &sr_noop_span;
	if (SR_UNLIKELY(t->rng_fork_gen != sr_g.fork_gen))
		sr_rng_seed(t);
	pop_zombies(t);
	struct spanring_span *s = span_alloc(t);
	if (SR_UNLIKELY(!s))
		return &sr_noop_span;

	span_inherit(t, s, o);
	bool parent_sampled = s->trace_flags & SPANRING_FLAG_SAMPLED;
	uint64_t sid = rng_nonzero(t);
	memcpy(s->span_id, &sid, 8);

	bool sampled = ps == SR_PROC_ACTIVE &&
		       sr_sample(&sr_g.cfg, s->trace_id, s->has_parent, parent_sampled,
				 s->parent_remote);
	if (SR_LIKELY(sampled)) {
		s->trace_flags |= SPANRING_FLAG_SAMPLED;
		s->state = SR_SPAN_LIVE;
		s->tracer = tracer_or_default(tracer);
		s->name = name_store(s, name, copy_name, &s->name_len);
		s->kind = (uint8_t)(o->kind <= SPANRING_KIND_CONSUMER ? o->kind : 0);
		s->start_ns = o->start_ns ? o->start_ns : sr_clock_ns();
		for (size_t i = 0; i < o->n_attrs && o->attrs; i++)
			(void)sr_attr_set(s, &o->attrs[i], true);
	} else {
		s->trace_flags &= (uint8_t)~SPANRING_FLAG_SAMPLED;
		s->state = SR_SPAN_NONREC;
		sr_store_relaxed_64(&sr_g.unsampled, sr_load_relaxed_64(&sr_g.unsampled) + 1);
	}
	if (!o->detached) {
		s->prev_current = t->current;
		s->owner = t;
		s->made_current = true;
		t->current = s;
	}
	return s;
}

spanring_span *spanring_span_start_ex(spanring_tracer *t, const char *name,
				      const spanring_span_opts *opts)
{
	static const spanring_span_opts none;
	return span_begin(t, name, true, opts ? opts : &none);
}

spanring_span *spanring_span_start(spanring_tracer *t, const char *name, spanring_kind kind)
{
	spanring_span_opts o = {.kind = kind};
	return span_begin(t, name, true, &o);
}

spanring_span *spanring_span_start_ref(spanring_tracer *t, const char *name, spanring_kind kind)
{
	spanring_span_opts o = {.kind = kind};
	return span_begin(t, name, false, &o);
}

/* Finish a span's life: unlink from the current chain or leave it to its owner. */
static void span_finish(struct sr_thread *t, struct spanring_span *s)
{
	if (!s->made_current) {
		span_recycle(t, s);
		return;
	}
	if (s->owner == t && t->current == s) {
		t->current = s->prev_current;
		span_recycle(t, s);
		pop_zombies(t);
		return;
	}
	/* Out of order, or another thread's chain: the owner unlinks it later.
	 * Release: pairs with the load-acquires of state in pop_zombies() (the
	 * owner recycles the span) and in spanring_span_end_at() (a second end). */
	sr_hot_store_release_32(&s->state, SR_SPAN_ZOMBIE);
}

int spanring_span_end_at(spanring_span *s, uint64_t end_ns)
{
	if (!s)
		return -EINVAL;
	if (s == &sr_noop_span)
		return 0;
	/* Acquire: pairs with the store-release of ZOMBIE in span_finish(). */
	uint32_t st = sr_hot_load_acquire_32(&s->state);
	if (st != SR_SPAN_LIVE && st != SR_SPAN_NONREC)
		return -EALREADY;
	struct sr_thread *t = sr_thread_get();
	int r = 0;
	if (st == SR_SPAN_LIVE) {
		if (!end_ns) {
			end_ns = sr_clock_ns();
			/* A recalibration of the clock may step it back by microseconds. */
			if (SR_UNLIKELY(end_ns < s->start_ns))
				end_ns = s->start_ns;
		}
		if (t)
			r = sr_commit(t, s, end_ns);
	}
	span_finish(t, s);
	return r;
}

int spanring_span_end(spanring_span *s)
{
	return spanring_span_end_at(s, 0);
}

/* What a setter may do with a span: record into it, nothing (a no-op
 * span), or fail with a negative errno value. */
enum span_use { SPAN_NOOP = 0, SPAN_RECORDING = 1 };
static inline int span_check(const spanring_span *s)
{
	if (SR_UNLIKELY(!s))
		return -EINVAL;
	uint32_t st = s->state;
	if (SR_LIKELY(st == SR_SPAN_LIVE))
		return SPAN_RECORDING;
	return st == SR_SPAN_NONREC ? SPAN_NOOP : -EALREADY;
}

bool spanring_span_is_recording(const spanring_span *s)
{
	return span_check(s) == SPAN_RECORDING;
}

int spanring_span_get_context(const spanring_span *s, spanring_span_context *out)
{
	if (!s || !out)
		return -EINVAL;
	memset(out, 0, offsetof(spanring_span_context, trace_state) + 1);
	if (s == &sr_noop_span)
		return 0;
	memcpy(out->trace_id, s->trace_id, 16);
	memcpy(out->span_id, s->span_id, 8);
	out->trace_flags = s->trace_flags;
	out->is_remote = 0;
	out->trace_state_len = (uint16_t)s->ts_len;
	memcpy(out->trace_state, s->trace_state ? s->trace_state : "", s->ts_len);
	out->trace_state[s->ts_len] = '\0';
	return 0;
}

spanring_span *spanring_current_span(void)
{
	struct sr_thread *t = sr_thread_get();
	if (!t)
		return NULL;
	pop_zombies(t);
	return t->current;
}

int spanring_current_context(spanring_span_context *out)
{
	spanring_span *s = spanring_current_span();
	if (!s)
		return -ENOENT;
	return spanring_span_get_context(s, out);
}

int spanring_span_update_name(spanring_span *s, const char *name)
{
	int c = span_check(s);
	if (c <= 0)
		return c;
	if (!name)
		return -EINVAL;
	s->name = name_store(s, name, true, &s->name_len);
	return 0;
}

int spanring_span_set_status(spanring_span *s, spanring_status_code code, const char *message)
{
	int c = span_check(s);
	if (c <= 0)
		return c;
	if (code > SPANRING_STATUS_ERROR)
		return -EINVAL;
	/* OpenTelemetry: UNSET is ignored, OK is final, the description only goes with ERROR. */
	if (code == SPANRING_STATUS_UNSET || s->status == SPANRING_STATUS_OK)
		return 0;
	s->status = (uint8_t)code;
	s->status_msg_len = 0;
	if (code == SPANRING_STATUS_ERROR && message && *message) {
		uint32_t n;
		s->status_msg = name_store(s, message, true, &n);
		s->status_msg_len = n;
	}
	return 0;
}

int spanring_span_set_trace_state(spanring_span *s, const char *tracestate)
{
	int c = span_check(s);
	if (c <= 0)
		return c;
	if (!tracestate)
		return -EINVAL;
	spanring_span_context tmp;
	int r = spanring_tracestate_parse(tracestate, strlen(tracestate), &tmp);
	if (r < 0)
		return r;
	char *d = tmp.trace_state_len ? sr_arena_alloc(s, tmp.trace_state_len, 1) : NULL;
	if (tmp.trace_state_len && !d)
		return -ENOMEM;
	if (d)
		memcpy(d, tmp.trace_state, tmp.trace_state_len);
	s->trace_state = d;
	s->ts_len = tmp.trace_state_len;
	return 0;
}

/* ---- attributes ------------------------------------------------------------------ */

static inline int set_attr(spanring_span *s, const spanring_attr *a, bool copy)
{
	int c = span_check(s);
	if (c <= 0)
		return c;
	int r = sr_attr_set(s, a, copy);
	if (SR_UNLIKELY(r))
		sr_store_relaxed_64(&sr_g.dropped_attrs, sr_load_relaxed_64(&sr_g.dropped_attrs) + 1);
	return r;
}

static inline int set_scalar_l(spanring_span *s, const char *key, size_t key_len, uint8_t type,
			       int64_t i, double d, bool copy)
{
	int c = span_check(s);
	if (c <= 0)
		return c;
	int r = sr_attr_set_scalar(s, key, key_len, type, i, d, copy);
	if (SR_UNLIKELY(r))
		sr_store_relaxed_64(&sr_g.dropped_attrs, sr_load_relaxed_64(&sr_g.dropped_attrs) + 1);
	return r;
}

int spanring_span_set_attr(spanring_span *s, const spanring_attr *a)
{
	return a ? set_attr(s, a, true) : -EINVAL;
}

int spanring_span_set_attr_ref(spanring_span *s, const spanring_attr *a)
{
	return a ? set_attr(s, a, false) : -EINVAL;
}

static inline int set_str_l(spanring_span *s, const char *key, size_t key_len, const char *value,
			    size_t len, bool copy)
{
	int c = span_check(s);
	if (c <= 0)
		return c;
	int r = sr_attr_set_str(s, key, key_len, value, len, copy);
	if (SR_UNLIKELY(r))
		sr_store_relaxed_64(&sr_g.dropped_attrs, sr_load_relaxed_64(&sr_g.dropped_attrs) + 1);
	return r;
}

int spanring_span_set_str(spanring_span *s, const char *key, const char *value)
{
	return set_str_l(s, key, SIZE_MAX, value, value ? SIZE_MAX : 1, true);
}

int spanring_span_set_strn(spanring_span *s, const char *key, const char *value, size_t len)
{
	return set_str_l(s, key, SIZE_MAX, value, len, true);
}

int spanring_span_set_int(spanring_span *s, const char *key, int64_t value)
{
	return set_scalar_l(s, key, SIZE_MAX, SPANRING_ATTR_INT, value, 0, true);
}

int spanring_span_set_bool(spanring_span *s, const char *key, bool value)
{
	return set_scalar_l(s, key, SIZE_MAX, SPANRING_ATTR_BOOL, value, 0, true);
}

int spanring_span_set_double(spanring_span *s, const char *key, double value)
{
	return set_scalar_l(s, key, SIZE_MAX, SPANRING_ATTR_DOUBLE, 0, value, true);
}

int spanring_span_set_bytes(spanring_span *s, const char *key, const void *value, size_t len)
{
	spanring_attr a = SPANRING_ATTR_BYTES(key, value, len);
	return set_attr(s, &a, true);
}

int spanring_span_set_str_ref(spanring_span *s, const char *key, const char *value)
{
	return set_str_l(s, key, SIZE_MAX, value, value ? SIZE_MAX : 1, false);
}

int spanring_span_set_int_ref(spanring_span *s, const char *key, int64_t value)
{
	return set_scalar_l(s, key, SIZE_MAX, SPANRING_ATTR_INT, value, 0, false);
}

int spanring_span_set_bool_ref(spanring_span *s, const char *key, bool value)
{
	return set_scalar_l(s, key, SIZE_MAX, SPANRING_ATTR_BOOL, value, 0, false);
}

int spanring_span_set_double_ref(spanring_span *s, const char *key, double value)
{
	return set_scalar_l(s, key, SIZE_MAX, SPANRING_ATTR_DOUBLE, 0, value, false);
}

/* Explicit lengths: the inline front ends of spanring.h call these. */
int spanring_span_put_str(spanring_span *s, const char *key, size_t key_len, const char *value,
			  size_t value_len, unsigned flags)
{
	if (SR_UNLIKELY(!value))
		value_len = 1; /* rejected below: NULL with a length */
	return set_str_l(s, key, key_len, value, value_len, !(flags & SPANRING_BORROW));
}

int spanring_span_put_int(spanring_span *s, const char *key, size_t key_len, int64_t value,
			  unsigned flags)
{
	return set_scalar_l(s, key, key_len, SPANRING_ATTR_INT, value, 0, !(flags & SPANRING_BORROW));
}

int spanring_span_put_bool(spanring_span *s, const char *key, size_t key_len, bool value,
			   unsigned flags)
{
	return set_scalar_l(s, key, key_len, SPANRING_ATTR_BOOL, value, 0, !(flags & SPANRING_BORROW));
}

int spanring_span_put_double(spanring_span *s, const char *key, size_t key_len, double value,
			     unsigned flags)
{
	return set_scalar_l(s, key, key_len, SPANRING_ATTR_DOUBLE, 0, value,
			    !(flags & SPANRING_BORROW));
}

/* ---- events and links ------------------------------------------------------------- */

static int grow(void **arr, uint32_t *cap, size_t elem)
{
	uint32_t ncap = *cap ? *cap * 2 : 4;
	void *n = sr_realloc(*arr, (size_t)*cap * elem, ncap * elem);
	if (!n)
		return -ENOMEM;
	*arr = n;
	*cap = ncap;
	return 0;
}

int spanring_span_add_event_at(spanring_span *s, const char *name, uint64_t time_ns,
			       const spanring_attr *attrs, size_t n_attrs)
{
	int c = span_check(s);
	if (c <= 0)
		return c;
	if (!name || (n_attrs && !attrs))
		return -EINVAL;
	if (s->nev >= sr_g.cfg.event_count_limit) {
		s->dropped_events++;
		return -ENOSPC;
	}
	if (s->nev == s->ev_cap && grow((void **)&s->ev, &s->ev_cap, sizeof(*s->ev))) {
		s->dropped_events++;
		return -ENOMEM;
	}
	struct sr_event *e = &s->ev[s->nev];
	e->time_ns = time_ns ? time_ns : sr_clock_ns();
	e->name = name_store(s, name, true, &e->name_len);
	sr_attrs_append_x(s, attrs, n_attrs, sr_g.cfg.event_attr_limit, &e->kv_start, &e->kv_count,
			  &e->dropped_attrs);
	s->nev++;
	return 0;
}

int spanring_span_add_event(spanring_span *s, const char *name, const spanring_attr *attrs,
			    size_t n_attrs)
{
	return spanring_span_add_event_at(s, name, 0, attrs, n_attrs);
}

int spanring_span_record_exception(spanring_span *s, const char *type, const char *message,
				   const char *stacktrace)
{
	spanring_attr a[3];
	size_t n = 0;
	if (type)
		a[n++] = SPANRING_ATTR_STR("exception.type", type);
	if (message)
		a[n++] = SPANRING_ATTR_STR("exception.message", message);
	if (stacktrace)
		a[n++] = SPANRING_ATTR_STR("exception.stacktrace", stacktrace);
	if (!n)
		return -EINVAL; /* the convention requires type or message */
	return spanring_span_add_event(s, "exception", a, n);
}

int spanring_span_add_link(spanring_span *s, const spanring_span_context *ctx,
			   const spanring_attr *attrs, size_t n_attrs)
{
	int c = span_check(s);
	if (c <= 0)
		return c;
	if (!ctx || (n_attrs && !attrs) || !spanring_context_is_valid(ctx))
		return -EINVAL;
	if (s->nln >= sr_g.cfg.link_count_limit) {
		s->dropped_links++;
		return -ENOSPC;
	}
	if (s->nln == s->ln_cap && grow((void **)&s->ln, &s->ln_cap, sizeof(*s->ln))) {
		s->dropped_links++;
		return -ENOMEM;
	}
	struct sr_link *l = &s->ln[s->nln];
	memcpy(l->trace_id, ctx->trace_id, 16);
	memcpy(l->span_id, ctx->span_id, 8);
	l->flags = (uint32_t)ctx->trace_flags | 0x100u | (ctx->is_remote ? 0x200u : 0u);
	l->ts_len = 0;
	l->trace_state = NULL;
	if (ctx->trace_state_len && ctx->trace_state_len <= SPANRING_TRACESTATE_MAX) {
		char *d = sr_arena_alloc(s, ctx->trace_state_len, 1);
		if (d) {
			memcpy(d, ctx->trace_state, ctx->trace_state_len);
			l->trace_state = d;
			l->ts_len = ctx->trace_state_len;
		}
	}
	sr_attrs_append_x(s, attrs, n_attrs, sr_g.cfg.link_attr_limit, &l->kv_start, &l->kv_count,
			  &l->dropped_attrs);
	s->nln++;
	return 0;
}

/* ---- one-call spans --------------------------------------------------------------- */

int spanring_span_emit(spanring_tracer *tracer, const spanring_span_data *d)
{
	if (!d || (d->n_attrs && !d->attrs))
		return -EINVAL;
	uint64_t end = d->end_ns ? d->end_ns : sr_clock_ns();
	spanring_span_opts o = {
		.kind = d->kind,
		.parent = d->parent,
		.root = d->root,
		.detached = true,
		.start_ns = d->start_ns ? d->start_ns : end,
	};
	spanring_span *s = span_begin(tracer, d->name, false, &o);
	if (d->out_ctx)
		spanring_span_get_context(s, d->out_ctx);
	if (s->state == SR_SPAN_LIVE) {
		for (size_t i = 0; i < d->n_attrs; i++)
			if (sr_attr_set(s, &d->attrs[i], false))
				sr_store_relaxed_64(&sr_g.dropped_attrs,
						    sr_load_relaxed_64(&sr_g.dropped_attrs) + 1);
		if (d->status == SPANRING_STATUS_OK || d->status == SPANRING_STATUS_ERROR) {
			s->status = (uint8_t)d->status;
			if (d->status == SPANRING_STATUS_ERROR && d->status_message) {
				uint32_t n;
				s->status_msg = name_store(s, d->status_message, false, &n);
				s->status_msg_len = n;
			}
		}
	}
	return spanring_span_end_at(s, end);
}

uint64_t spanring_now_ns(void)
{
	return sr_clock_ns();
}
