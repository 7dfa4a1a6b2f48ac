/* SPDX-License-Identifier: MIT */
/*
 * The ring reader (lib/ring_read.h) on its own: each record kind, each
 * reason a record or a scope-table entry is refused, and the texts. Every
 * record is read from a heap buffer of exactly its size, so that the ASan
 * build catches a read past the bytes the reader was given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atomics.h"
#include "pbwire.h"
#include "ring_read.h"

#define MAXREC 8192u

/* What sr_rec_read() found, as offsets into the record (buffer freed). */
struct got {
	enum sr_rec_kind kind;
	struct sr_rec r;
	size_t payload, next;
};

static struct got read_rec(const uint8_t *bytes, size_t n, uint32_t maxrec)
{
	struct got g;
	uint8_t *b = malloc(n);
	assert_non_null(b);
	memcpy(b, bytes, n);
	memset(&g.r, 0, sizeof(g.r));
	g.kind = sr_rec_read(b, b + n, maxrec, &g.r);
	if (g.kind != SR_REC_BAD) {
		assert_true(g.r.next > b && g.r.next <= b + n);
		g.next = (size_t)(g.r.next - b);
		g.payload = (size_t)(g.r.payload - b);
	}
	free(b);
	return g;
}

static void expect_bad(const uint8_t *bytes, size_t n, enum sr_read_err e)
{
	struct got g = read_rec(bytes, n, MAXREC);
	assert_int_equal(g.kind, SR_REC_BAD);
	assert_int_equal(g.r.err, e);
}

/* A span record of `len` payload bytes (zeros) into buf; its size. */
static size_t span_rec(uint8_t *buf, size_t len)
{
	uint8_t *p = pb_put_tag1(buf, SPANRING_SPAN_FIELD, SPANRING_WT_LEN);
	p = pb_put_varint(p, len);
	memset(p, 0, len);
	return (size_t)(p - buf) + len;
}

static size_t ctrl_varint(uint8_t *buf, uint32_t field, uint64_t v)
{
	uint8_t *p = pb_put_varint(buf, PB_TAG(field, SPANRING_WT_VARINT));
	return (size_t)(pb_put_varint(p, v) - buf);
}

static void test_span(void **state)
{
	(void)state;
	uint8_t buf[20000];
	/* 1-, 2- and 3-byte lengths: the inline header path and the general one. */
	const size_t lens[] = {0, 1, 127, 128, 16383, 16384};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = span_rec(buf, lens[i]);
		struct got g = read_rec(buf, n, 20000);
		assert_int_equal(g.kind, SR_REC_SPAN);
		assert_int_equal(g.r.field, SPANRING_SPAN_FIELD);
		assert_int_equal(g.r.wt, SPANRING_WT_LEN);
		assert_int_equal(g.r.v, lens[i]);
		assert_int_equal(g.next, n);
		assert_int_equal(g.payload, n - lens[i]);
	}
	/* A record followed by more bytes ends where its length says. */
	size_t n = span_rec(buf, 5);
	n += span_rec(buf + n, 3);
	struct got g = read_rec(buf, n, MAXREC);
	assert_int_equal(g.kind, SR_REC_SPAN);
	assert_int_equal(g.next, 7);
	/* Exactly the limit is allowed. */
	n = span_rec(buf, MAXREC);
	assert_int_equal(read_rec(buf, n, MAXREC).kind, SR_REC_SPAN);
}

static void test_control_records(void **state)
{
	(void)state;
	uint8_t buf[64];
	size_t n = ctrl_varint(buf, SPANRING_CTRL_SCOPE, 4096);
	struct got g = read_rec(buf, n, MAXREC);
	assert_int_equal(g.kind, SR_REC_SCOPE);
	assert_int_equal(g.r.v, 4096);
	assert_int_equal(g.next, n);

	n = ctrl_varint(buf, SPANRING_CTRL_LOST, 7);
	g = read_rec(buf, n, MAXREC);
	assert_int_equal(g.kind, SR_REC_LOST);
	assert_int_equal(g.r.v, 7);

	uint8_t *p = pb_put_varint(buf, PB_TAG(SPANRING_CTRL_PAD, SPANRING_WT_LEN));
	p = pb_put_varint(p, 5);
	memset(p, 0xff, 5); /* padding bytes are not looked at */
	n = (size_t)(p - buf) + 5;
	g = read_rec(buf, n, MAXREC);
	assert_int_equal(g.kind, SR_REC_PAD);
	assert_int_equal(g.next, n);

	/* Unknown control fields are skipped by their wire type, any of them. */
	const uint32_t wts[] = {SPANRING_WT_VARINT, SPANRING_WT_I64, SPANRING_WT_LEN, SPANRING_WT_I32};
	const uint32_t fields[] = {SPANRING_CTRL_FIELD_MIN + 3, SPANRING_CTRL_FIELD_MAX};
	for (size_t f = 0; f < 2; f++) {
		for (size_t w = 0; w < 4; w++) {
			memset(buf, 0, sizeof(buf));
			p = pb_put_varint(buf, PB_TAG(fields[f], wts[w]));
			size_t body = wts[w] == SPANRING_WT_I64 ? 8 : wts[w] == SPANRING_WT_I32 ? 4 : 1;
			if (wts[w] == SPANRING_WT_LEN)
				*p++ = 0; /* empty */
			n = (size_t)(p - buf) + (wts[w] == SPANRING_WT_LEN ? 0 : body);
			g = read_rec(buf, n, MAXREC);
			assert_int_equal(g.kind, SR_REC_UNKNOWN);
			assert_int_equal(g.r.field, fields[f]);
			assert_int_equal(g.next, n);
		}
	}
}

static void test_bad_frame(void **state)
{
	(void)state;
	const uint8_t cut_len[] = {0x12, 0x80, 0x80};   /* length varint never ends */
	expect_bad(cut_len, sizeof(cut_len), SR_READ_EFRAME);
	const uint8_t cut_tag[] = {0x92};               /* tag varint cut */
	expect_bad(cut_tag, sizeof(cut_tag), SR_READ_EFRAME);
	const uint8_t past1[] = {0x12, 0x05, 0, 0};     /* inline path: 5 bytes, 2 there */
	expect_bad(past1, sizeof(past1), SR_READ_EFRAME);
	const uint8_t past2[] = {0x12, 0x80, 0x01, 0};  /* inline path, 2-byte length */
	expect_bad(past2, sizeof(past2), SR_READ_EFRAME);
	const uint8_t past3[] = {0x12, 0x80, 0x80, 0x01, 0}; /* general path */
	expect_bad(past3, sizeof(past3), SR_READ_EFRAME);
	const uint8_t short_span[] = {0x12, 0x01};      /* under 3 bytes: general path */
	expect_bad(short_span, sizeof(short_span), SR_READ_EFRAME);
	const uint8_t field0[] = {0x02, 0x00};          /* field number 0 */
	expect_bad(field0, sizeof(field0), SR_READ_EFRAME);
	const uint8_t wt3[] = {0x13, 0x00};             /* wire type 3 (group) */
	expect_bad(wt3, sizeof(wt3), SR_READ_EFRAME);
	const uint8_t i64[] = {0x11, 1, 2, 3};          /* I64 payload cut */
	expect_bad(i64, sizeof(i64), SR_READ_EFRAME);
	const uint8_t tag_big[] = {0xff, 0xff, 0xff, 0xff, 0x7f}; /* tag > 2^32 - 1 */
	expect_bad(tag_big, sizeof(tag_big), SR_READ_EFRAME);
}

static void test_bad_wire_types(void **state)
{
	(void)state;
	const uint8_t span_varint[] = {0x10, 0x01};
	expect_bad(span_varint, sizeof(span_varint), SR_READ_ESPAN_WT);
	const uint8_t span_i32[] = {0x15, 0, 0, 0, 0};
	expect_bad(span_i32, sizeof(span_i32), SR_READ_ESPAN_WT);

	uint8_t buf[16];
	uint8_t *p = pb_put_varint(buf, PB_TAG(SPANRING_CTRL_SCOPE, SPANRING_WT_LEN));
	*p++ = 0;
	expect_bad(buf, (size_t)(p - buf), SR_READ_ESCOPE_WT);
	p = pb_put_varint(buf, PB_TAG(SPANRING_CTRL_LOST, SPANRING_WT_I32));
	memset(p, 0, 4);
	expect_bad(buf, (size_t)(p - buf) + 4, SR_READ_ELOST_WT);
}

static void test_bad_size_and_field(void **state)
{
	(void)state;
	uint8_t buf[MAXREC + 16];
	size_t n = span_rec(buf, MAXREC + 1);
	expect_bad(buf, n, SR_READ_ESPAN_SIZE);
	/* Fields of ScopeSpans other than spans, and fields around the
	 * control range, are not records. */
	const uint32_t fields[] = {1, 3, 5, SPANRING_CTRL_FIELD_MIN - 1, SPANRING_CTRL_FIELD_MAX + 1};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		n = ctrl_varint(buf, fields[i], 1);
		struct got g = read_rec(buf, n, MAXREC);
		assert_int_equal(g.kind, SR_REC_BAD);
		assert_int_equal(g.r.err, SR_READ_EFIELD);
		assert_int_equal(g.r.field, fields[i]);
	}
}

static void test_max_record(void **state)
{
	(void)state;
	assert_int_equal(sr_max_record(SPANRING_MIN_SLOT_SIZE), SPANRING_MIN_SLOT_SIZE / 2);
	assert_int_equal(sr_max_record(1u << 21), SPANRING_MAX_RECORD);
	assert_int_equal(sr_max_record(SPANRING_MAX_SLOT_SIZE), SPANRING_MAX_RECORD);
}

static void test_texts(void **state)
{
	(void)state;
	/* The texts users see (quarantine reasons, dump faults), unchanged. */
	static const struct {
		enum sr_read_err e;
		const char *text;
	} texts[] = {
		{SR_READ_EFRAME, "truncated or malformed record header"},
		{SR_READ_ESPAN_WT, "span field with a wire type other than LEN"},
		{SR_READ_ESPAN_SIZE, "span record larger than the record limit"},
		{SR_READ_ESCOPE_WT, "scope record with a wire type other than VARINT"},
		{SR_READ_ELOST_WT, "lost record with a wire type other than VARINT"},
		{SR_READ_EFIELD, "unexpected field"},
		{SR_READ_ESCOPE_ALIGN, "scope offset not 8-byte aligned"},
		{SR_READ_ESCOPE_CAP, "scope_len beyond the scope table's capacity"},
		{SR_READ_ESCOPE_OFF, "scope offset beyond scope_len"},
		{SR_READ_ESCOPE_PAST, "scope entry extends past scope_len"},
		{SR_READ_ESCOPE_PB, "scope entry body is not valid protobuf"},
		{SR_READ_ESCOPE_FIELD, "scope entry body has a field other than scope and schema_url"},
		{SR_READ_ESCOPE_DECODE, "scope entry's InstrumentationScope does not decode"},
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		assert_string_equal(sr_read_why(texts[i].e), texts[i].text);
	assert_string_equal(sr_read_why((enum sr_read_err)1000), "unknown ring error");

	char text[160];
	uint8_t buf[MAXREC + 16];
	size_t n = span_rec(buf, MAXREC + 1);
	struct sr_rec r;
	enum sr_rec_kind k = sr_rec_read(buf, buf + n, MAXREC, &r);
	sr_rec_describe(text, sizeof(text), NULL, k, &r, MAXREC);
	assert_string_equal(text, "span record larger than the record limit (8193 > 8192 bytes)");

	n = ctrl_varint(buf, 5, 1);
	k = sr_rec_read(buf, buf + n, MAXREC, &r);
	sr_rec_describe(text, sizeof(text), NULL, k, &r, MAXREC);
	assert_string_equal(text, "unexpected field (field 5, wire type 0)");

	n = ctrl_varint(buf, SPANRING_CTRL_SCOPE, 4100);
	k = sr_rec_read(buf, buf + n, MAXREC, &r);
	sr_rec_describe(text, sizeof(text), sr_read_why(SR_READ_ESCOPE_ALIGN), k, &r, MAXREC);
	assert_string_equal(text, "scope offset not 8-byte aligned (offset 4100)");

	const uint8_t cut[] = {0x92};
	k = sr_rec_read(cut, cut + 1, MAXREC, &r);
	sr_rec_describe(text, sizeof(text), NULL, k, &r, MAXREC);
	assert_string_equal(text, "truncated or malformed record header");

	n = span_rec(buf, 4);
	k = sr_rec_read(buf, buf + n, MAXREC, &r);
	sr_rec_describe(text, sizeof(text), "a caller's own reason", k, &r, MAXREC);
	assert_string_equal(text, "a caller's own reason");
}

/* ---- scope-table entries ------------------------------------------------- */

/* A map with only what the scope reader touches: the header page and a
 * one-page scope table right after it. */
struct scope_fx {
	struct sr_map m;
	uint8_t *ctrl;
};

static void scope_fx_init(struct scope_fx *f)
{
	memset(f, 0, sizeof(*f));
	f->ctrl = aligned_alloc(SPANRING_PAGE, 2 * SPANRING_PAGE);
	assert_non_null(f->ctrl);
	memset(f->ctrl, 0, 2 * SPANRING_PAGE);
	f->m.ctrl = f->ctrl;
	f->m.l.scope_off = SPANRING_PAGE;
	f->m.l.scope_cap = SPANRING_PAGE;
}

static uint8_t *table(struct scope_fx *f)
{
	return sr_scope_table(&f->m);
}

static void set_scope_len(struct scope_fx *f, uint64_t len)
{
	sr_store_release_64(&sr_hdr(&f->m)->scope_len, len);
}

/* Write an entry with body b at off; returns the offset after it (8-aligned). */
static uint64_t put_entry(struct scope_fx *f, uint64_t off, const uint8_t *b, uint32_t len)
{
	struct spanring_scope_entry e = {.len = len};
	memcpy(table(f) + off, &e, sizeof(e));
	memcpy(table(f) + off + sizeof(e), b, len);
	return (off + sizeof(e) + len + 7) & ~7ull;
}

/* The body of a valid entry: InstrumentationScope{name "s"}, schema_url "u". */
static const uint8_t good_body[] = {0x0a, 0x03, 0x0a, 0x01, 's', 0x1a, 0x01, 'u'};

/* sr_scope_entry_find() then sr_scope_body_copy() into an exact-size copy. */
static enum sr_read_err read_entry(struct scope_fx *f, uint64_t off, uint32_t *len)
{
	enum sr_read_err e = sr_scope_entry_find(&f->m, off, len);
	if (e)
		return e;
	uint8_t *dst = malloc(*len ? *len : 1);
	assert_non_null(dst);
	e = sr_scope_body_copy(&f->m, off, *len, dst);
	if (!e)
		assert_memory_equal(dst, table(f) + off + sizeof(struct spanring_scope_entry), *len);
	free(dst);
	return e;
}

static void test_scope_entry_ok(void **state)
{
	(void)state;
	struct scope_fx f;
	scope_fx_init(&f);
	uint64_t second = put_entry(&f, 0, good_body, sizeof(good_body));
	uint64_t end = put_entry(&f, second, good_body, 0); /* an empty body is valid */
	set_scope_len(&f, end);
	uint32_t len = 0;
	assert_int_equal(read_entry(&f, 0, &len), SR_READ_OK);
	assert_int_equal(len, sizeof(good_body));
	assert_int_equal(read_entry(&f, second, &len), SR_READ_OK);
	assert_int_equal(len, 0);
	/* An entry reaching exactly to scope_len. */
	set_scope_len(&f, sizeof(struct spanring_scope_entry) + sizeof(good_body));
	assert_int_equal(read_entry(&f, 0, &len), SR_READ_OK);
	free(f.ctrl);
}

static void test_scope_entry_bounds(void **state)
{
	(void)state;
	struct scope_fx f;
	scope_fx_init(&f);
	uint64_t end = put_entry(&f, 0, good_body, sizeof(good_body));
	set_scope_len(&f, end);
	uint32_t len;
	assert_int_equal(read_entry(&f, 4, &len), SR_READ_ESCOPE_ALIGN);
	assert_int_equal(read_entry(&f, end, &len), SR_READ_ESCOPE_OFF);   /* at scope_len */
	assert_int_equal(read_entry(&f, 1u << 20, &len), SR_READ_ESCOPE_OFF);
	set_scope_len(&f, 4);                                                /* no room for a header */
	assert_int_equal(read_entry(&f, 0, &len), SR_READ_ESCOPE_OFF);
	set_scope_len(&f, SPANRING_PAGE + 8);                                /* beyond scope_cap */
	assert_int_equal(read_entry(&f, 0, &len), SR_READ_ESCOPE_CAP);
	/* The body reaches past scope_len by one byte. */
	set_scope_len(&f, sizeof(struct spanring_scope_entry) + sizeof(good_body) - 1);
	assert_int_equal(read_entry(&f, 0, &len), SR_READ_ESCOPE_PAST);
	/* A length that would wrap 32-bit arithmetic. */
	struct spanring_scope_entry e = {.len = UINT32_MAX};
	memcpy(table(&f), &e, sizeof(e));
	set_scope_len(&f, SPANRING_PAGE);
	assert_int_equal(read_entry(&f, 0, &len), SR_READ_ESCOPE_PAST);
	free(f.ctrl);
}

static void test_scope_entry_body(void **state)
{
	(void)state;
	struct scope_fx f;
	uint32_t len;
	/* Not protobuf: a LEN field longer than the body. */
	const uint8_t not_pb[] = {0x0a, 0x09, 0x0a};
	/* ScopeSpans.spans (2) in a scope entry: would inject a span. */
	const uint8_t span[] = {0x0a, 0x03, 0x0a, 0x01, 's', 0x12, 0x00};
	/* Field 1 as a VARINT, field 3 as an I32, an unknown field 4. */
	const uint8_t scope_varint[] = {0x08, 0x01};
	const uint8_t url_i32[] = {0x1d, 0, 0, 0, 0};
	const uint8_t other[] = {0x22, 0x00};
	/* InstrumentationScope whose name says 5 bytes and has 1. */
	const uint8_t bad_scope[] = {0x0a, 0x03, 0x0a, 0x05, 'a'};
	const struct {
		const uint8_t *b;
		uint32_t n;
		enum sr_read_err want;
	} cases[] = {
		{not_pb, sizeof(not_pb), SR_READ_ESCOPE_PB},
		{span, sizeof(span), SR_READ_ESCOPE_FIELD},
		{scope_varint, sizeof(scope_varint), SR_READ_ESCOPE_FIELD},
		{url_i32, sizeof(url_i32), SR_READ_ESCOPE_FIELD},
		{other, sizeof(other), SR_READ_ESCOPE_FIELD},
		{bad_scope, sizeof(bad_scope), SR_READ_ESCOPE_DECODE},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		scope_fx_init(&f);
		set_scope_len(&f, put_entry(&f, 0, cases[i].b, cases[i].n));
		assert_int_equal(read_entry(&f, 0, &len), cases[i].want);
		free(f.ctrl);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_span),
		cmocka_unit_test(test_control_records),
		cmocka_unit_test(test_bad_frame),
		cmocka_unit_test(test_bad_wire_types),
		cmocka_unit_test(test_bad_size_and_field),
		cmocka_unit_test(test_max_record),
		cmocka_unit_test(test_texts),
		cmocka_unit_test(test_scope_entry_ok),
		cmocka_unit_test(test_scope_entry_bounds),
		cmocka_unit_test(test_scope_entry_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
