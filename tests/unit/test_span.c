/* SPDX-License-Identifier: MIT */
/*
 * Spans written through the API, read back from the ring with an
 * independent reader, decoded with protobuf-c: every field must be what
 * was set, and the bytes must be exactly protobuf-c's canonical encoding.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "encode.h"
#include "internal.h"
#include "pbwire.h"
#include "otlp_trace.pb-c.h"
#include "otlp_trace_service.pb-c.h"
#include "ringread.h"
#include "spanring/spanring.h"

typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

static struct sr_map cmap;

#define MAXREC 4096
struct collected {
	int n;
	int lost_marks;
	uint64_t lost_total;
	const uint8_t *raw[MAXREC];
	size_t len[MAXREC];
	uint64_t pos[MAXREC];
	uint32_t slot[MAXREC];
};

static int collect_cb(const struct rr_record *r, void *arg)
{
	struct collected *c = arg;
	if (r->field == SPANRING_CTRL_LOST) {
		c->lost_marks++;
		c->lost_total += r->value;
	}
	if (r->field != SPANRING_SPAN_FIELD || c->n >= MAXREC)
		return 0;
	c->raw[c->n] = r->payload;
	c->len[c->n] = r->len;
	c->pos[c->n] = r->pos;
	c->slot[c->n] = r->slot;
	c->n++;
	return 0;
}

/* Collect without consuming; the caller consumes with drain_all(). */
static void collect(struct collected *c)
{
	memset(c, 0, sizeof(*c));
	assert_true(rr_drain(&cmap, false, collect_cb, c) >= 0);
}

static void drain_all(void)
{
	assert_true(rr_drain(&cmap, true, NULL, NULL) >= 0);
}

/* Decode and check the bytes are canonical (re-pack is identical). */
static Span *decode_canonical(const uint8_t *p, size_t n)
{
	Span *s = opentelemetry__proto__trace__v1__span__unpack(NULL, n, p);
	assert_non_null(s);
	size_t m = opentelemetry__proto__trace__v1__span__get_packed_size(s);
	assert_int_equal(m, n);
	uint8_t *again = malloc(m);
	assert_non_null(again);
	opentelemetry__proto__trace__v1__span__pack(s, again);
	assert_memory_equal(again, p, n);
	free(again);
	return s;
}

static const KeyValue *find_attr(KeyValue **kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i]->key, key) == 0)
			return kv[i];
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	drain_all();
	return 0;
}

static void test_reference_span_fields(void **state)
{
	(void)state;
	spanring_tracer *tr = spanring_tracer_get("test.scope", "1.2.3", "https://schema/1");
	assert_non_null(tr);
	spanring_span_context parent = {0};
	assert_int_equal(spanring_traceparent_parse(
				 "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55, &parent),
			 0);
	assert_true(spanring_tracestate_parse("vendor=abc,other=x", 18, &parent) >= 0);
	spanring_span_opts o = {.kind = SPANRING_KIND_SERVER, .parent = &parent};
	spanring_span *s = spanring_span_start_ex(tr, "GET /api/users/:id", &o);
	assert_true(spanring_span_is_recording(s));
	assert_int_equal(spanring_span_set_str(s, "http.request.method", "GET"), 0);
	assert_int_equal(spanring_span_set_str(s, "url.path", "/api/users/12345"), 0);
	assert_int_equal(spanring_span_set_int(s, "http.response.status_code", 200), 0);
	assert_int_equal(spanring_span_set_bool(s, "cache.hit", true), 0);
	assert_int_equal(spanring_span_set_double(s, "ratio", -2.5), 0);
	assert_int_equal(spanring_span_set_bytes(s, "blob", "\x00\x01\xff", 3), 0);
	assert_int_equal(spanring_span_set_int(s, "neg", -7), 0);
	const char *sa[] = {"a", "", "ccc"};
	spanring_attr arr = {.key = "strs", .type = SPANRING_ATTR_STRING_ARRAY,
			     .v.array = {sa, 3}};
	assert_int_equal(spanring_span_set_attr(s, &arr), 0);
	int64_t ia[] = {1, -1, INT64_MAX};
	spanring_attr iarr = {.key = "ints", .type = SPANRING_ATTR_INT_ARRAY, .v.array = {ia, 3}};
	assert_int_equal(spanring_span_set_attr(s, &iarr), 0);
	bool ba[] = {true, false};
	spanring_attr barr = {.key = "bools", .type = SPANRING_ATTR_BOOL_ARRAY, .v.array = {ba, 2}};
	assert_int_equal(spanring_span_set_attr(s, &barr), 0);
	double da[] = {0.5};
	spanring_attr darr = {.key = "dbls", .type = SPANRING_ATTR_DOUBLE_ARRAY, .v.array = {da, 1}};
	assert_int_equal(spanring_span_set_attr(s, &darr), 0);
	spanring_attr earr = {.key = "empty", .type = SPANRING_ATTR_INT_ARRAY, .v.array = {NULL, 0}};
	assert_int_equal(spanring_span_set_attr(s, &earr), 0);
	/* Replacing a key keeps one attribute with the new value. */
	assert_int_equal(spanring_span_set_str(s, "url.path", "/api/users/12346"), 0);

	spanring_attr ev_attrs[] = {SPANRING_ATTR_STR("k", "v"), SPANRING_ATTR_INT("n", 3)};
	assert_int_equal(spanring_span_add_event_at(s, "cache.lookup", 1234567890123ull, ev_attrs, 2), 0);
	assert_int_equal(spanring_span_record_exception(s, "EIO", "disk", NULL), 0);
	spanring_span_context linked = {0};
	assert_int_equal(spanring_traceparent_parse(
				 "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", 55, &linked),
			 0);
	spanring_attr l_attrs[] = {SPANRING_ATTR_BOOL("follows", true)};
	assert_int_equal(spanring_span_add_link(s, &linked, l_attrs, 1), 0);
	assert_int_equal(spanring_span_set_status(s, SPANRING_STATUS_ERROR, "boom"), 0);
	spanring_span_context mine;
	assert_int_equal(spanring_span_get_context(s, &mine), 0);
	assert_int_equal(spanring_span_end_at(s, 2000000000000ull), 0);
	assert_int_equal(spanring_span_end(s), -EALREADY);

	struct collected c;
	collect(&c);
	assert_int_equal(c.n, 1);
	Span *d = decode_canonical(c.raw[0], c.len[0]);
	assert_int_equal(d->trace_id.len, 16);
	assert_memory_equal(d->trace_id.data, parent.trace_id, 16);
	assert_memory_equal(d->parent_span_id.data, parent.span_id, 8);
	assert_memory_equal(d->span_id.data, mine.span_id, 8);
	assert_string_equal(d->trace_state, "vendor=abc,other=x");
	assert_string_equal(d->name, "GET /api/users/:id");
	assert_int_equal(d->kind, 2);
	assert_true(d->start_time_unix_nano > 1600000000000000000ull);
	assert_int_equal(d->end_time_unix_nano, 2000000000000ull);
	/* sampled (from parent), has-is-remote, is-remote */
	assert_int_equal(d->flags, 0x301);
	assert_int_equal(d->n_attributes, 12);
	const KeyValue *kv = find_attr(d->attributes, d->n_attributes, "url.path");
	assert_string_equal(kv->value->string_value, "/api/users/12346");
	kv = find_attr(d->attributes, d->n_attributes, "http.response.status_code");
	assert_int_equal(kv->value->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
	assert_int_equal(kv->value->int_value, 200);
	kv = find_attr(d->attributes, d->n_attributes, "cache.hit");
	assert_true(kv->value->bool_value);
	kv = find_attr(d->attributes, d->n_attributes, "ratio");
	assert_true(kv->value->double_value == -2.5);
	kv = find_attr(d->attributes, d->n_attributes, "neg");
	assert_int_equal(kv->value->int_value, -7);
	kv = find_attr(d->attributes, d->n_attributes, "blob");
	assert_int_equal(kv->value->bytes_value.len, 3);
	assert_memory_equal(kv->value->bytes_value.data, "\x00\x01\xff", 3);
	kv = find_attr(d->attributes, d->n_attributes, "strs");
	assert_int_equal(kv->value->array_value->n_values, 3);
	assert_string_equal(kv->value->array_value->values[2]->string_value, "ccc");
	assert_string_equal(kv->value->array_value->values[1]->string_value, "");
	kv = find_attr(d->attributes, d->n_attributes, "ints");
	assert_int_equal(kv->value->array_value->values[2]->int_value, INT64_MAX);
	kv = find_attr(d->attributes, d->n_attributes, "bools");
	assert_false(kv->value->array_value->values[1]->bool_value);
	assert_int_equal(kv->value->array_value->values[1]->value_case,
			 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
	kv = find_attr(d->attributes, d->n_attributes, "empty");
	assert_int_equal(kv->value->array_value->n_values, 0);
	assert_int_equal(d->n_events, 2);
	assert_string_equal(d->events[0]->name, "cache.lookup");
	assert_int_equal(d->events[0]->time_unix_nano, 1234567890123ull);
	assert_int_equal(d->events[0]->n_attributes, 2);
	assert_string_equal(d->events[1]->name, "exception");
	assert_string_equal(find_attr(d->events[1]->attributes, d->events[1]->n_attributes,
				      "exception.message")->value->string_value, "disk");
	assert_int_equal(d->n_links, 1);
	assert_memory_equal(d->links[0]->trace_id.data, linked.trace_id, 16);
	assert_memory_equal(d->links[0]->span_id.data, linked.span_id, 8);
	assert_int_equal(d->links[0]->flags, 0x300);
	assert_int_equal(d->links[0]->n_attributes, 1);
	assert_non_null(d->status);
	assert_int_equal(d->status->code, 2);
	assert_string_equal(d->status->message, "boom");
	assert_int_equal(d->dropped_attributes_count, 0);
	opentelemetry__proto__trace__v1__span__free_unpacked(d, NULL);
	drain_all();
}

static void test_implicit_parent_and_current(void **state)
{
	(void)state;
	assert_null(spanring_current_span());
	spanring_span *root = spanring_span_start(NULL, "root", SPANRING_KIND_INTERNAL);
	assert_ptr_equal(spanring_current_span(), root);
	spanring_span *child = spanring_span_start_ref(NULL, "child", SPANRING_KIND_CLIENT);
	assert_ptr_equal(spanring_current_span(), child);
	spanring_span_opts det = {.detached = true};
	spanring_span *async = spanring_span_start_ex(NULL, "async", &det);
	assert_ptr_equal(spanring_current_span(), child);
	spanring_span_opts r = {.root = true, .detached = true};
	spanring_span *other = spanring_span_start_ex(NULL, "other-root", &r);
	spanring_span_context rc, cc, ac, oc;
	spanring_span_get_context(root, &rc);
	spanring_span_get_context(child, &cc);
	spanring_span_get_context(async, &ac);
	spanring_span_get_context(other, &oc);
	assert_memory_equal(rc.trace_id, cc.trace_id, 16);
	assert_memory_equal(rc.trace_id, ac.trace_id, 16);
	assert_memory_not_equal(rc.trace_id, oc.trace_id, 16);
	spanring_span_end(other);
	/* Out of order: end the root first; the child stays current. */
	assert_int_equal(spanring_span_end(root), 0);
	assert_ptr_equal(spanring_current_span(), child);
	spanring_span_end(child);
	assert_null(spanring_current_span());
	spanring_span_end(async);

	struct collected c;
	collect(&c);
	assert_int_equal(c.n, 4);
	int found = 0;
	for (int i = 0; i < c.n; i++) {
		Span *d = decode_canonical(c.raw[i], c.len[i]);
		if (strcmp(d->name, "child") == 0 || strcmp(d->name, "async") == 0) {
			/* async started while child was current: child is its parent */
			assert_int_equal(d->parent_span_id.len, 8);
			assert_memory_equal(d->parent_span_id.data,
					    strcmp(d->name, "child") == 0 ? rc.span_id : cc.span_id, 8);
			assert_int_equal(d->flags, 0x101);
			found++;
		} else {
			assert_int_equal(d->parent_span_id.len, 0);
		}
		opentelemetry__proto__trace__v1__span__free_unpacked(d, NULL);
	}
	assert_int_equal(found, 2);
	drain_all();
}

static void test_misuse(void **state)
{
	(void)state;
	assert_int_equal(spanring_span_end(NULL), -EINVAL);
	assert_int_equal(spanring_span_set_str(NULL, "k", "v"), -EINVAL);
	spanring_span *s = spanring_span_start(NULL, "m", SPANRING_KIND_INTERNAL);
	assert_int_equal(spanring_span_set_str(s, NULL, "v"), -EINVAL);
	assert_int_equal(spanring_span_set_str(s, "", "v"), -EINVAL);
	assert_int_equal(spanring_span_set_str(s, "k", NULL), -EINVAL);
	assert_int_equal(spanring_span_set_str(s, "bad", "\xc3\x28"), -EILSEQ);
	assert_int_equal(spanring_span_set_str(s, "overlong", "\xc0\xaf"), -EILSEQ);
	assert_int_equal(spanring_span_set_str(s, "surrogate", "\xed\xa0\x80"), -EILSEQ);
	assert_int_equal(spanring_span_set_str(s, "ok", "h\xc3\xa9llo \xf0\x9f\x98\x80"), 0);
	assert_int_equal(spanring_span_set_status(s, 7, NULL), -EINVAL);
	assert_int_equal(spanring_span_add_event(s, NULL, NULL, 0), -EINVAL);
	spanring_span_context bad = {0};
	assert_int_equal(spanring_span_add_link(s, &bad, NULL, 0), -EINVAL);
	/* OK is final; UNSET is ignored. */
	assert_int_equal(spanring_span_set_status(s, SPANRING_STATUS_OK, "ignored"), 0);
	assert_int_equal(spanring_span_set_status(s, SPANRING_STATUS_ERROR, "late"), 0);
	assert_int_equal(spanring_span_end(s), 0);
	assert_int_equal(spanring_span_end(s), -EALREADY);
	assert_int_equal(spanring_span_set_str(s, "k", "v"), -EALREADY);

	struct collected c;
	collect(&c);
	assert_int_equal(c.n, 1);
	Span *d = decode_canonical(c.raw[0], c.len[0]);
	assert_int_equal(d->dropped_attributes_count, 6);
	assert_int_equal(d->n_attributes, 1);
	assert_string_equal(d->attributes[0]->value->string_value, "h\xc3\xa9llo \xf0\x9f\x98\x80");
	assert_int_equal(d->status->code, 1);
	assert_string_equal(d->status->message, "");
	opentelemetry__proto__trace__v1__span__free_unpacked(d, NULL);
	drain_all();
}

static void test_attribute_limits(void **state)
{
	(void)state;
	struct sr_config saved = sr_g.cfg;
	sr_g.cfg.attr_count_limit = 3;
	sr_g.cfg.attr_value_limit = 4;
	sr_g.cfg.event_count_limit = 1;
	sr_g.cfg.event_attr_limit = 1;
	sr_g.cfg.link_count_limit = 0;
	spanring_span *s = spanring_span_start(NULL, "limits", SPANRING_KIND_INTERNAL);
	assert_int_equal(spanring_span_set_str(s, "a", "abcdefgh"), 0);
	/* Truncation never splits a character: "é" is 2 bytes at offsets 3-4. */
	assert_int_equal(spanring_span_set_str(s, "b", "abc\xc3\xa9xyz"), 0);
	assert_int_equal(spanring_span_set_bytes(s, "c", "123456", 6), 0);
	assert_int_equal(spanring_span_set_int(s, "d", 1), -ENOSPC);
	assert_int_equal(spanring_span_set_int(s, "e", 1), -ENOSPC);
	/* Replacing an existing key is allowed at the limit. */
	assert_int_equal(spanring_span_set_str(s, "a", "z"), 0);
	spanring_attr ea[] = {SPANRING_ATTR_INT("x", 1), SPANRING_ATTR_INT("y", 2)};
	assert_int_equal(spanring_span_add_event(s, "e1", ea, 2), 0);
	assert_int_equal(spanring_span_add_event(s, "e2", NULL, 0), -ENOSPC);
	spanring_span_context lc;
	spanring_span_get_context(s, &lc);
	assert_int_equal(spanring_span_add_link(s, &lc, NULL, 0), -ENOSPC);
	spanring_span_end(s);
	sr_g.cfg = saved;

	struct collected c;
	collect(&c);
	assert_int_equal(c.n, 1);
	Span *d = decode_canonical(c.raw[0], c.len[0]);
	assert_int_equal(d->n_attributes, 3);
	assert_int_equal(d->dropped_attributes_count, 2);
	assert_string_equal(find_attr(d->attributes, 3, "a")->value->string_value, "z");
	assert_string_equal(find_attr(d->attributes, 3, "b")->value->string_value, "abc");
	assert_int_equal(find_attr(d->attributes, 3, "c")->value->bytes_value.len, 4);
	assert_int_equal(d->n_events, 1);
	assert_int_equal(d->events[0]->n_attributes, 1);
	assert_int_equal(d->events[0]->dropped_attributes_count, 1);
	assert_int_equal(d->dropped_events_count, 1);
	assert_int_equal(d->dropped_links_count, 1);
	assert_int_equal(d->n_links, 0);
	opentelemetry__proto__trace__v1__span__free_unpacked(d, NULL);
	drain_all();
}

static void test_emit_one_call(void **state)
{
	(void)state;
	spanring_attr a[] = {SPANRING_ATTR_STR("http.request.method", "GET"),
			     SPANRING_ATTR_INT("http.response.status_code", 404)};
	spanring_span_context out;
	spanring_span_data d = {.name = "emit", .kind = SPANRING_KIND_CLIENT, .root = true,
				.start_ns = 1000, .end_ns = 2000, .attrs = a, .n_attrs = 2,
				.status = SPANRING_STATUS_ERROR, .status_message = "not found",
				.out_ctx = &out};
	assert_int_equal(spanring_span_emit(NULL, &d), 0);
	assert_null(spanring_current_span());
	struct collected c;
	collect(&c);
	assert_int_equal(c.n, 1);
	Span *s = decode_canonical(c.raw[0], c.len[0]);
	assert_string_equal(s->name, "emit");
	assert_int_equal(s->start_time_unix_nano, 1000);
	assert_int_equal(s->end_time_unix_nano, 2000);
	assert_memory_equal(s->span_id.data, out.span_id, 8);
	assert_int_equal(s->n_attributes, 2);
	assert_string_equal(s->status->message, "not found");
	opentelemetry__proto__trace__v1__span__free_unpacked(s, NULL);
	drain_all();
}

/* Every span lands in the calling thread's slot; fill it until drops. */
static void test_ring_full_drops_exact(void **state)
{
	(void)state;
	spanring_stats before, after;
	spanring_get_stats(&before);
	int ok = 0, dropped = 0;
	char val[200];
	memset(val, 'x', sizeof(val) - 1);
	val[sizeof(val) - 1] = 0;
	for (int i = 0; i < 20000 && dropped < 100; i++) {
		spanring_span *s = spanring_span_start(NULL, "fill", SPANRING_KIND_INTERNAL);
		spanring_span_set_str(s, "v", val);
		int r = spanring_span_end(s);
		if (r == 0)
			ok++;
		else if (r == -ENOSPC)
			dropped++;
		else
			fail_msg("unexpected %d", r);
	}
	assert_int_equal(dropped, 100);
	spanring_get_stats(&after);
	assert_int_equal(after.drop_full - before.drop_full, 100);
	assert_int_equal(after.spans - before.spans, (uint64_t)ok);
	struct collected c;
	collect(&c);
	assert_int_equal(c.n, ok);
	drain_all();
	/* After release, the next span carries an in-order LOST mark. */
	spanring_span_end(spanring_span_start(NULL, "after", SPANRING_KIND_INTERNAL));
	collect(&c);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.lost_marks, 1);
	assert_int_equal(c.lost_total, 100);
	drain_all();
}

/* Emit one span whose whole record is exactly `want` bytes (sized with the
 * encoder's own size pass before committing). Returns its value length. */
static size_t emit_record_of(size_t want)
{
	static char v[70000];
	spanring_span_opts o = {.root = true, .detached = true, .start_ns = 1};
	spanring_span *s = spanring_span_start_ex(NULL, "b", &o);
	size_t vlen = want > 100 ? want - 100 : 1;
	for (int k = 0; k < 8; k++) {
		memset(v, 'z', vlen);
		v[vlen] = 0;
		assert_int_equal(spanring_span_set_str_ref(s, "v", v), 0);
		size_t n = sr_span_size(s, 2);
		size_t rec = 1 + pb_varint_size(n) + n;
		if (rec == want)
			break;
		vlen = vlen + want - rec;
	}
	assert_int_equal(spanring_span_end_at(s, 2), 0);
	return vlen;
}

/* Records that end exactly at the end of the slot, and that straddle it. */
static void test_mirror_boundary(void **state)
{
	(void)state;
	const uint64_t size = sr_g.map.l.slot_size;
	int straddled = 0, exact = 0;
	/* Warm up: the scope record for the default tracer is written once. */
	emit_record_of(300);
	drain_all();
	for (int round = 0; round < 8; round++) {
		uint64_t head = sr_g.slots[0].head;
		uint64_t left = size - (head % size);
		size_t want = (round % 2 == 0) ? left : left + 40;
		if (want > sr_g.slots[0].max_record || want < 300) {
			emit_record_of(size / 3);
			drain_all();
			continue;
		}
		size_t vlen = emit_record_of(want);
		struct collected c;
		collect(&c);
		assert_int_equal(c.n, 1);
		uint64_t start = c.pos[0] % size;
		uint64_t reclen = sr_g.slots[0].head - c.pos[0];
		assert_int_equal(reclen, want);
		if (start + reclen == size)
			exact++;
		else if (start + reclen > size)
			straddled++;
		Span *d = decode_canonical(c.raw[0], c.len[0]);
		assert_int_equal(strlen(d->attributes[0]->value->string_value), vlen);
		opentelemetry__proto__trace__v1__span__free_unpacked(d, NULL);
		drain_all();
	}
	assert_true(exact >= 1);
	assert_true(straddled >= 1);
}

static void test_oversize_dropped(void **state)
{
	(void)state;
	spanring_stats before, after;
	spanring_get_stats(&before);
	size_t n = sr_g.map.l.slot_size; /* larger than the record limit (slot/2) */
	char *v = malloc(n + 1);
	memset(v, 'o', n);
	v[n] = 0;
	spanring_span *s = spanring_span_start(NULL, "big", SPANRING_KIND_INTERNAL);
	assert_int_equal(spanring_span_set_str(s, "v", v), 0);
	assert_int_equal(spanring_span_end(s), -E2BIG);
	free(v);
	spanring_get_stats(&after);
	assert_int_equal(after.drop_oversize - before.drop_oversize, 1);
	struct collected c;
	collect(&c);
	assert_int_equal(c.n, 0);
	spanring_span_end(spanring_span_start(NULL, "small", SPANRING_KIND_INTERNAL));
	collect(&c);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.lost_total, 1);
	drain_all();
}

/* The ring's bytes, framed as a request, decode identically with the
 * project's schema and the official one, via protoc. */
static void test_protoc_cross_check(void **state)
{
	(void)state;
	const char *src = getenv("SPANRING_TEST_SRC");
	char ref[1024], own[1024];
	snprintf(own, sizeof(own), "%s/proto", src ? src : ".");
	snprintf(ref, sizeof(ref), "%s/../shared/otlp-proto", src ? src : ".");
	if (access(own, R_OK) || system("protoc --version >/dev/null 2>&1") != 0)
		skip();
	spanring_tracer *tr = spanring_tracer_get_ex(
		"protoc.scope", "9", NULL, (spanring_attr[]){SPANRING_ATTR_STR("scope.k", "v")}, 1);
	spanring_span *s = spanring_span_start(tr, "GET /x", SPANRING_KIND_SERVER);
	spanring_span_set_str(s, "s", "t");
	spanring_span_set_int(s, "i", -3);
	spanring_span_set_double(s, "d", 1.5);
	spanring_span_add_event(s, "ev", NULL, 0);
	spanring_span_set_status(s, SPANRING_STATUS_ERROR, "bad");
	spanring_span_end(s);
	spanring_span_end(spanring_span_start(NULL, "other scope", SPANRING_KIND_INTERNAL));
	uint8_t *req;
	long n = rr_build_request(&cmap, &req);
	assert_true(n > 0);
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
			NULL, (size_t)n, req);
	assert_non_null(r);
	assert_int_equal(r->n_resource_spans, 1);
	assert_true(r->resource_spans[0]->n_scope_spans >= 1);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
	const char *type = "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest";
	char *a = rr_protoc_decode(req, (size_t)n, own, "otlp_trace_service.proto", type);
	assert_non_null(a);
	assert_non_null(strstr(a, "name: \"GET /x\""));
	assert_non_null(strstr(a, "name: \"protoc.scope\""));
	assert_non_null(strstr(a, "kind: SPAN_KIND_SERVER"));
	assert_null(strstr(a, "1900:")); /* no control record leaks as an unknown field */
	if (access(ref, R_OK) == 0) {
		char *b = rr_protoc_decode(req, (size_t)n, ref,
					   "opentelemetry/proto/collector/trace/v1/trace_service.proto",
					   type);
		assert_non_null(b);
		assert_string_equal(a, b);
		free(b);
	}
	free(a);
	free(req);
	drain_all();
}

static void test_sampler_ratio(void **state)
{
	(void)state;
	struct sr_config c = sr_g.cfg;
	c.sampler = SR_SAMPLE_RATIO;
	c.ratio = 0.25;
	c.ratio_bound = (uint64_t)(0.25 * (double)(1ull << 56));
	struct sr_thread t = {0};
	sr_rng_seed(&t);
	int n = 200000, yes = 0;
	for (int i = 0; i < n; i++) {
		uint8_t tid[16];
		uint64_t a = sr_rng_next(&t), b = sr_rng_next(&t);
		memcpy(tid, &a, 8);
		memcpy(tid + 8, &b, 8);
		yes += sr_sample(&c, tid, false, false, false);
	}
	/* Binomial: mean 50000, sd ~194; allow 5 sd. */
	assert_true(yes > 50000 - 970 && yes < 50000 + 970);
	/* Deterministic per trace id, parent-based follows the parent. */
	uint8_t tid[16] = {0};
	assert_true(sr_sample(&c, tid, false, false, false));
	memset(tid, 0xff, 16);
	assert_false(sr_sample(&c, tid, false, false, false));
	c.sampler = SR_SAMPLE_PB_RATIO;
	assert_true(sr_sample(&c, tid, true, true, false));
	assert_false(sr_sample(&c, (uint8_t[16]){0}, true, false, true));
	c.sampler = SR_SAMPLE_ALWAYS_OFF;
	assert_false(sr_sample(&c, tid, true, true, false));
}

static void test_unsampled_span(void **state)
{
	(void)state;
	struct sr_config saved = sr_g.cfg;
	sr_g.cfg.sampler = SR_SAMPLE_PB_ALWAYS_OFF;
	spanring_span *s = spanring_span_start(NULL, "off", SPANRING_KIND_INTERNAL);
	assert_false(spanring_span_is_recording(s));
	assert_int_equal(spanring_span_set_str(s, "k", "v"), 0);
	spanring_span *child = spanring_span_start(NULL, "child", SPANRING_KIND_INTERNAL);
	assert_false(spanring_span_is_recording(child));
	spanring_span_context cc, pc;
	spanring_span_get_context(child, &cc);
	spanring_span_get_context(s, &pc);
	assert_memory_equal(cc.trace_id, pc.trace_id, 16);
	assert_int_equal(cc.trace_flags & 1, 0);
	spanring_span_end(child);
	assert_int_equal(spanring_span_end(s), 0);
	sr_g.cfg = saved;
	struct collected c;
	collect(&c);
	assert_int_equal(c.n, 0);
}

static void test_config_env(void **state)
{
	(void)state;
	struct sr_config c;
	setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
	setenv("OTEL_TRACES_SAMPLER_ARG", "0.5", 1);
	setenv("OTEL_ATTRIBUTE_COUNT_LIMIT", "10", 1);
	setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "5", 1);
	setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64", 1);
	setenv("SPANRING_SLOT_SIZE", "64K", 1);
	setenv("SPANRING_SLOTS", "100", 1);
	sr_config_from_env(&c);
	assert_int_equal(c.sampler, SR_SAMPLE_PB_RATIO);
	assert_true(c.ratio == 0.5);
	assert_int_equal(c.attr_count_limit, 5); /* span-specific wins */
	assert_int_equal(c.attr_value_limit, 64);
	assert_int_equal(c.slot_size, 64 << 10);
	assert_int_equal(c.slot_count, 8); /* invalid: default */
	setenv("OTEL_TRACES_SAMPLER", "bogus", 1);
	setenv("OTEL_TRACES_SAMPLER_ARG", "1.5", 1);
	setenv("SPANRING_SLOT_SIZE", "3000", 1);
	setenv("OTEL_SDK_DISABLED", "TRUE", 1);
	sr_config_from_env(&c);
	assert_int_equal(c.sampler, SR_SAMPLE_PB_ALWAYS_ON);
	assert_int_equal(c.slot_size, 512 << 10);
	assert_true(c.disabled);
	const char *vars[] = {"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
			      "OTEL_ATTRIBUTE_COUNT_LIMIT", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
			      "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "SPANRING_SLOT_SIZE",
			      "SPANRING_SLOTS", "OTEL_SDK_DISABLED"};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

static void test_ring_header_and_resource(void **state)
{
	(void)state;
	struct spanring_ring_hdr *h = sr_hdr(&cmap);
	assert_int_equal(h->magic, SPANRING_RING_MAGIC);
	assert_int_equal(h->abi_major, SPANRING_ABI_MAJOR);
	assert_true(h->flags & SPANRING_HDR_F_INITIALIZED);
	assert_int_equal(h->creator_pid, (uint32_t)getpid());
	const char *why = NULL;
	struct sr_layout l;
	struct spanring_ring_hdr copy = *h;
	assert_int_equal(sr_hdr_validate(&copy, sr_g.map.l.total_size, &l, &why), 0);
	copy.data_off += 4096;
	assert_int_equal(sr_hdr_validate(&copy, sr_g.map.l.total_size, &l, &why), SPANRING_REG_EHEADER);
	struct sr_fd_info info;
	assert_int_equal(sr_fd_check(cmap.fd, &info, &why), 0);
	assert_int_equal(info.size, sr_g.map.l.total_size);
	assert_true(h->res_len > 0);
	Opentelemetry__Proto__Resource__V1__Resource *r =
		opentelemetry__proto__resource__v1__resource__unpack(NULL, h->res_len, sr_resource(&cmap));
	assert_non_null(r);
	int found = 0;
	for (size_t i = 0; i < r->n_attributes; i++)
		if (strcmp(r->attributes[i]->key, "service.name") == 0) {
			assert_string_equal(r->attributes[i]->value->string_value, "span-test");
			found = 1;
		}
	assert_true(found);
	opentelemetry__proto__resource__v1__resource__free_unpacked(r, NULL);
}

/* The doorbell rings once per watermark crossing, honouring the agent's
 * watermark_pct, and again only after the agent moved the tail. */
static void test_doorbell_once_per_crossing(void **state)
{
	(void)state;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(efd >= 0);
	/* Stop the registration client (there is no agent): it would reset
	 * the doorbell on each failed attempt. */
	sr_client_stop();
	sr_store_int(&sr_doorbell_fd, efd);
	struct spanring_cons_hdr *ch = sr_cons_hdr(&cmap); /* writable, like the agent's */
	ch->watermark_pct = 25;
	const uint64_t size = sr_g.map.l.slot_size;
	char v[400];
	memset(v, 'd', sizeof(v) - 1);
	v[sizeof(v) - 1] = 0;
	uint64_t count = 0;
	for (int round = 0; round < 2; round++) {
		/* Fill to ~60%: one crossing of 25%. */
		while (sr_g.slots[0].head - sr_load_relaxed_64(&sr_cons(&cmap, 0)->tail) < size * 6 / 10) {
			spanring_span *s = spanring_span_start(NULL, "bell", SPANRING_KIND_INTERNAL);
			spanring_span_set_str(s, "v", v);
			assert_int_equal(spanring_span_end(s), 0);
		}
		ssize_t r = read(efd, &count, sizeof(count));
		assert_int_equal(r, 8);
		assert_int_equal(count, 1);
		assert_int_equal(read(efd, &count, sizeof(count)), -1); /* nothing more */
		drain_all();
	}
	ch->watermark_pct = 0;
	sr_store_int(&sr_doorbell_fd, -1);
	close(efd);
}

/* A span whose tracer cannot get into a full scope table is counted. */
static void test_scope_table_full_counted(void **state)
{
	(void)state;
	char name[4000];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	spanring_stats before, after;
	spanring_get_stats(&before);
	int refused = 0;
	for (int i = 0; i < 40 && !refused; i++) {
		char ver[16];
		snprintf(ver, sizeof(ver), "%d", i);
		spanring_tracer *tr = spanring_tracer_get(name, ver, NULL);
		assert_non_null(tr);
		int r = spanring_span_end(spanring_span_start(tr, "x", SPANRING_KIND_INTERNAL));
		if (r == -ENOSPC)
			refused = 1;
		else
			assert_int_equal(r, 0);
		drain_all();
	}
	assert_true(refused);
	spanring_get_stats(&after);
	assert_int_equal(after.drop_encode - before.drop_encode, 1);
	/* The next committed span carries the lost mark. */
	spanring_span_end(spanring_span_start(NULL, "after", SPANRING_KIND_INTERNAL));
	struct collected c;
	collect(&c);
	assert_int_equal(c.lost_total, 1);
	drain_all();
}

static void test_clock_tracks_realtime(void **state)
{
	(void)state;
	usleep(30000); /* past the first calibration interval */
	uint64_t prev = 0;
	for (int i = 0; i < 2000; i++) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t a = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		uint64_t b = spanring_now_ns();
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t c = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		/* Within 1 ms of the kernel's realtime, and never far backwards. */
		assert_true(b + 1000000 >= a);
		assert_true(b <= c + 1000000);
		assert_true(b + 1000000 >= prev);
		prev = b;
	}
}

int main(void)
{
	/* No agent for this test: the ring just fills up locally. */
	setenv("SPANRING_SOCKET", "/nonexistent/spanring-test.sock", 1);
	setenv("OTEL_SERVICE_NAME", "span-test", 1);
	setenv("SPANRING_SLOTS", "2", 1);
	setenv("SPANRING_SLOT_SIZE", "64K", 1);
	setenv("SPANRING_EXIT_TIMEOUT_MS", "0", 1);
	if (spanring_init() != 0 || rr_map_self(&cmap) != 0) {
		fprintf(stderr, "cannot set up the ring\n");
		return 1;
	}
	unsetenv("SPANRING_SLOTS");
	unsetenv("SPANRING_SLOT_SIZE");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_header_and_resource),
		cmocka_unit_test_setup(test_reference_span_fields, setup),
		cmocka_unit_test_setup(test_implicit_parent_and_current, setup),
		cmocka_unit_test_setup(test_misuse, setup),
		cmocka_unit_test_setup(test_attribute_limits, setup),
		cmocka_unit_test_setup(test_emit_one_call, setup),
		cmocka_unit_test_setup(test_ring_full_drops_exact, setup),
		cmocka_unit_test_setup(test_mirror_boundary, setup),
		cmocka_unit_test_setup(test_oversize_dropped, setup),
		cmocka_unit_test_setup(test_protoc_cross_check, setup),
		cmocka_unit_test_setup(test_unsampled_span, setup),
		cmocka_unit_test(test_sampler_ratio),
		cmocka_unit_test(test_config_env),
		cmocka_unit_test(test_clock_tracks_realtime),
		cmocka_unit_test_setup(test_doorbell_once_per_crossing, setup),
		/* Last: it fills the scope table. */
		cmocka_unit_test_setup(test_scope_table_full_counted, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
