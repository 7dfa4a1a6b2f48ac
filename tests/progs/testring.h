/* SPDX-License-Identifier: MIT */
/*
 * A raw ring writer for agent tests: creates a ring with sr_ring_create()
 * and writes scope entries, span records and control records by hand with
 * the pbwire helpers, independent of the producer library's encoder. Also
 * lets hostile tests write anything at all. Header-only so that both the
 * test programs (tests/progs) and the unit tests can use it.
 */
#ifndef SPANRING_TESTS_TESTRING_H
#define SPANRING_TESTS_TESTRING_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "atomics.h"
#include "pbwire.h"
#include "ring.h"

struct tr {
	struct sr_map m;
	uint64_t head[SPANRING_MAX_SLOTS];   /* local copy of what we committed */
	uint64_t pending[SPANRING_MAX_SLOTS]; /* written, not yet committed */
	uint64_t scope[SPANRING_MAX_SLOTS];  /* last scope record written */
	uint64_t drops[SPANRING_MAX_SLOTS];
	uint64_t spans[SPANRING_MAX_SLOTS];
	const int *bell; /* tr_wake_enable(): the doorbell fd's location, else NULL */
};

struct tr_span {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_id[8];
	bool has_parent;
	const char *name;
	uint32_t kind;
	uint64_t start_ns, end_ns;
	int64_t seq;      /* attribute "test.seq" */
	int64_t thread;   /* attribute "test.thread" */
	const char *str;  /* attribute "test.str" when set */
};

/* A KeyValue with an int or string value, as a field of the given number. */
static inline uint8_t *tr_put_kv_int(uint8_t *p, uint32_t field, const char *key, int64_t v)
{
	size_t kl = strlen(key);
	size_t anyv = 1 + pb_varint_size((uint64_t)v);
	size_t kv = pb_len_field_size(kl) + pb_len_field_size(anyv);
	p = pb_put_tag1(p, field, SPANRING_WT_LEN);
	p = pb_put_varint(p, kv);
	p = pb_put_tag1(p, 1, SPANRING_WT_LEN);
	p = pb_put_bytes(p, key, kl);
	p = pb_put_tag1(p, 2, SPANRING_WT_LEN);
	p = pb_put_varint(p, anyv);
	p = pb_put_tag1(p, 3, SPANRING_WT_VARINT);
	return pb_put_varint(p, (uint64_t)v);
}

static inline uint8_t *tr_put_kv_str(uint8_t *p, uint32_t field, const char *key, const char *s)
{
	size_t kl = strlen(key), sl = strlen(s);
	size_t anyv = pb_len_field_size(sl);
	size_t kv = pb_len_field_size(kl) + pb_len_field_size(anyv);
	p = pb_put_tag1(p, field, SPANRING_WT_LEN);
	p = pb_put_varint(p, kv);
	p = pb_put_tag1(p, 1, SPANRING_WT_LEN);
	p = pb_put_bytes(p, key, kl);
	p = pb_put_tag1(p, 2, SPANRING_WT_LEN);
	p = pb_put_varint(p, anyv);
	p = pb_put_tag1(p, 1, SPANRING_WT_LEN);
	return pb_put_bytes(p, s, sl);
}

/* Encode a Span message into buf (at least 512 + strlen(name/str) bytes). */
static inline size_t tr_encode_span(uint8_t *buf, const struct tr_span *s)
{
	uint8_t *p = buf;
	p = pb_put_tag1(p, 1, SPANRING_WT_LEN);
	p = pb_put_bytes(p, s->trace_id, 16);
	p = pb_put_tag1(p, 2, SPANRING_WT_LEN);
	p = pb_put_bytes(p, s->span_id, 8);
	if (s->has_parent) {
		p = pb_put_tag1(p, 4, SPANRING_WT_LEN);
		p = pb_put_bytes(p, s->parent_id, 8);
	}
	p = pb_put_tag1(p, 5, SPANRING_WT_LEN);
	p = pb_put_bytes(p, s->name, strlen(s->name));
	if (s->kind) {
		p = pb_put_tag1(p, 6, SPANRING_WT_VARINT);
		p = pb_put_varint(p, s->kind);
	}
	p = pb_put_tag1(p, 7, SPANRING_WT_I64);
	p = pb_put_fixed64(p, s->start_ns);
	p = pb_put_tag1(p, 8, SPANRING_WT_I64);
	p = pb_put_fixed64(p, s->end_ns);
	p = tr_put_kv_int(p, 9, "test.seq", s->seq);
	p = tr_put_kv_int(p, 9, "test.thread", s->thread);
	if (s->str)
		p = tr_put_kv_str(p, 9, "test.str", s->str);
	return (size_t)(p - buf);
}

/* Resource{service.name, plus false claims the agent must override}. */
static inline size_t tr_encode_resource(uint8_t *buf, const char *service, bool lie)
{
	uint8_t *p = buf;
	p = tr_put_kv_str(p, 1, "service.name", service);
	p = tr_put_kv_str(p, 1, "test.kept", "yes");
	if (lie) {
		p = tr_put_kv_int(p, 1, "process.pid", 1);
		p = tr_put_kv_str(p, 1, "host.name", "forged-host");
		p = tr_put_kv_str(p, 1, "process.owner", "forged-owner");
	}
	return (size_t)(p - buf);
}

/*
 * Create a ring of slots x slot_size with the given encoded Resource and
 * mark it initialized. 0 or -errno.
 */
static inline int tr_create_ex(struct tr *t, uint32_t slots, uint32_t slot_size,
			       uint32_t scope_cap, const uint8_t *res, size_t res_len)
{
	struct sr_layout l;
	memset(t, 0, sizeof(*t));
	int err = sr_layout_compute(&l, slots, slot_size, scope_cap, SPANRING_PAGE);
	if (err)
		return err;
	if (res_len > l.res_cap)
		return -E2BIG;
	err = sr_ring_create(&t->m, &l, "spanring-test");
	if (err)
		return err;
	memcpy(sr_resource(&t->m), res, res_len);
	struct spanring_ring_hdr *h = sr_hdr(&t->m);
	h->res_len = (uint32_t)res_len;
	/* A raw writer is an ABI 1.1 producer, which the agent polls, unless
	 * it follows the wake-up protocol (tr_wake_enable()). */
	h->abi_minor = 1;
	for (uint32_t i = 0; i < SPANRING_MAX_SLOTS; i++)
		t->scope[i] = SPANRING_SCOPE_NONE;
	sr_store_release_32(&h->flags, SPANRING_HDR_F_INITIALIZED);
	return 0;
}

static inline int tr_create(struct tr *t, uint32_t slots, uint32_t slot_size, const uint8_t *res,
			    size_t res_len)
{
	return tr_create_ex(t, slots, slot_size, SPANRING_PAGE, res, res_len);
}

/* Append a scope entry (InstrumentationScope name/version, optional
 * schema_url); returns its offset or UINT64_MAX when the table is full. */
static inline uint64_t tr_add_scope(struct tr *t, const char *name, const char *version,
				    const char *schema_url)
{
	uint8_t body[1024];
	uint8_t inner[512];
	uint8_t *q = inner;
	q = pb_put_tag1(q, 1, SPANRING_WT_LEN);
	q = pb_put_bytes(q, name, strlen(name));
	if (version) {
		q = pb_put_tag1(q, 2, SPANRING_WT_LEN);
		q = pb_put_bytes(q, version, strlen(version));
	}
	uint8_t *p = body;
	p = pb_put_tag1(p, 1, SPANRING_WT_LEN);
	p = pb_put_bytes(p, inner, (size_t)(q - inner));
	if (schema_url) {
		p = pb_put_tag1(p, 3, SPANRING_WT_LEN);
		p = pb_put_bytes(p, schema_url, strlen(schema_url));
	}
	struct spanring_ring_hdr *h = sr_hdr(&t->m);
	uint64_t off = h->scope_len;
	uint32_t len = (uint32_t)(p - body);
	uint64_t need = (sizeof(struct spanring_scope_entry) + len + 7) & ~7ull;
	if (off + need > t->m.l.scope_cap)
		return UINT64_MAX;
	struct spanring_scope_entry e = {.len = len};
	memcpy(sr_scope_table(&t->m) + off, &e, sizeof(e));
	memcpy(sr_scope_table(&t->m) + off + sizeof(e), body, len);
	sr_store_release_64(&h->scope_len, off + need);
	return off;
}

/* Free bytes in slot i as the producer sees them (A: acquire tail). */
static inline uint64_t tr_free(struct tr *t, uint32_t i)
{
	uint64_t tail = sr_load_acquire_64(&sr_cons(&t->m, i)->tail);
	return t->m.l.slot_size - (t->head[i] + t->pending[i] - tail);
}

/* Copy n raw bytes after the slot's pending bytes (no space check). */
static inline void tr_put_raw(struct tr *t, uint32_t i, const void *b, size_t n)
{
	uint8_t *d = sr_slot_data(&t->m, i) + ((t->head[i] + t->pending[i]) & (t->m.l.slot_size - 1));
	memcpy(d, b, n); /* the mirror mapping makes a wrapping copy contiguous */
	t->pending[i] += n;
}

/* Follow the ABI 1.2 wake-up protocol (F after each commit), ringing the
 * doorbell whose fd is at *bell (-1: none yet). Before registration. */
static inline void tr_wake_enable(struct tr *t, const int *bell)
{
	sr_hdr(&t->m)->abi_minor = SPANRING_ABI_MINOR;
	t->bell = bell;
}

/* F of ring_abi.h: the library's sr_wake_agent(). */
static inline void tr_wake(struct tr *t)
{
	uint32_t *w = &sr_cons_hdr(&t->m)->need_wakeup;
	sr_wake_barrier();
	if (!sr_load_relaxed_32(w) || !sr_xchg_32(w, 0))
		return;
	int fd = sr_load_int(t->bell);
	uint64_t one = 1;
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		(void)0;
}

/* Publish the pending bytes (B: store-release head), then the span
 * counter, in the library's order (lib/commit.h): a producer killed
 * between the two stores leaves the counter one span short, never one
 * span ahead of what head publishes. */
static inline void tr_commit(struct tr *t, uint32_t i)
{
	t->head[i] += t->pending[i];
	t->pending[i] = 0;
	sr_store_release_64(&sr_prod(&t->m, i)->head, t->head[i]);
	sr_store_relaxed_64(&sr_prod(&t->m, i)->spans, t->spans[i]);
	if (t->bell)
		tr_wake(t);
}

/* Set head to any value (hostile tests). */
static inline void tr_set_head(struct tr *t, uint32_t i, uint64_t head)
{
	t->head[i] = head;
	t->pending[i] = 0;
	sr_store_release_64(&sr_prod(&t->m, i)->head, head);
	if (t->bell)
		tr_wake(t);
}

static inline size_t tr_ctrl_varint(uint8_t *p, uint32_t field, uint64_t v)
{
	uint8_t *q = pb_put_varint(p, PB_TAG(field, SPANRING_WT_VARINT));
	q = pb_put_varint(q, v);
	return (size_t)(q - p);
}

/*
 * Write one span into slot i under scope `scope` (a scope record first
 * when it changes) and commit. -ENOSPC (and counted as drop_full) when
 * the slot has no room, like the library.
 */
static inline int tr_write_span(struct tr *t, uint32_t i, uint64_t scope, const struct tr_span *s)
{
	uint8_t rec[2048];
	uint8_t span[2048 - 16];
	size_t n = tr_encode_span(span, s);
	uint8_t *p = rec;
	if (scope != t->scope[i])
		p += tr_ctrl_varint(p, SPANRING_CTRL_SCOPE, scope);
	p = pb_put_tag1(p, SPANRING_SPAN_FIELD, SPANRING_WT_LEN);
	p = pb_put_bytes(p, span, n);
	size_t len = (size_t)(p - rec);
	if (len > tr_free(t, i)) {
		t->drops[i]++;
		sr_store_relaxed_64(&sr_prod(&t->m, i)->drop_full, t->drops[i]);
		return -ENOSPC;
	}
	tr_put_raw(t, i, rec, len);
	t->scope[i] = scope;
	t->spans[i]++;
	tr_commit(t, i);
	return 0;
}

/* Bytes committed and not yet released in slot i. */
static inline uint64_t tr_unreleased(struct tr *t, uint32_t i)
{
	return t->head[i] - sr_load_acquire_64(&sr_cons(&t->m, i)->tail);
}

#endif
