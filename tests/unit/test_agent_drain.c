/* SPDX-License-Identifier: MIT */
/*
 * The drain walk against hostile rings: every framing violation
 * quarantines the producer with a reason, what was valid before the fault
 * is still exported, and other producers go on. Also the mirror-mapped
 * wrap-around and the control records.
 */
#include "agent_fixture.h"

#include "otlp_trace_service.pb-c.h"

static void expect_quarantine(struct fx *f, const char *reason_part)
{
	fx_pump(f);
	assert_int_equal(f->p->state, PROD_QUARANTINED);
	if (!strstr(f->p->reason, reason_part)) {
		fprintf(stderr, "reason '%s' lacks '%s'\n", f->p->reason, reason_part);
		fail();
	}
	/* Quarantined for good: later drains do not read the ring at all. */
	uint64_t passes = f->ag.st.drain_passes;
	fx_pump(f);
	assert_int_equal(f->ag.st.drain_passes, passes);
}

/* Two good spans, then the bytes of `bad`; the good ones go out. */
static void good_then_bad(struct fx *f, const uint8_t *bad, size_t n)
{
	for (int i = 0; i < 2; i++) {
		struct tr_span s = fx_span(i, 0);
		assert_int_equal(tr_write_span(&f->t, 0, f->scope_a, &s), 0);
	}
	tr_put_raw(&f->t, 0, bad, n);
	tr_commit(&f->t, 0);
}

static void run_bad(const uint8_t *bad, size_t n, const char *reason)
{
	struct fx f;
	fx_init(&f, 1, 16384);
	uint64_t good_end;
	good_then_bad(&f, bad, n);
	good_end = f.t.head[0] - n;
	expect_quarantine(&f, reason);
	assert_int_equal(f.hold.spans, 2);
	/* Released up to the fault, not beyond. */
	for (size_t i = 0; i < f.hold.n; i++)
		fx_release(&f, i);
	f.hold.n = 0;
	assert_int_equal(sr_cons(&f.t.m, 0)->tail, good_end);
	fx_fini(&f);
}

static void test_truncated_varint(void **state)
{
	(void)state;
	const uint8_t bad[] = {0x12, 0x80, 0x80}; /* length varint never ends */
	run_bad(bad, sizeof(bad), "truncated or malformed record header");
	const uint8_t bad_tag[] = {0x92}; /* tag varint cut */
	run_bad(bad_tag, sizeof(bad_tag), "truncated or malformed");
	const uint8_t long_varint[] = {0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0xff, 0xff, 0x01};
	run_bad(long_varint, sizeof(long_varint), "truncated or malformed");
}

static void test_length_past_head(void **state)
{
	(void)state;
	const uint8_t bad[] = {0x12, 0x10, 1, 2, 3}; /* says 16, has 3 */
	run_bad(bad, sizeof(bad), "truncated or malformed");
}

static void test_unknown_wire_types(void **state)
{
	(void)state;
	for (uint8_t wt = 3; wt <= 7; wt++) {
		if (wt == 5)
			continue;
		uint8_t bad[] = {(uint8_t)((2 << 3) | wt), 0, 0, 0, 0, 0, 0, 0, 0};
		run_bad(bad, sizeof(bad), "truncated or malformed");
	}
	/* Field 0 is never valid. */
	const uint8_t zero[] = {0x02, 0x00};
	run_bad(zero, sizeof(zero), "truncated or malformed");
}

static void test_span_wrong_wire_type(void **state)
{
	(void)state;
	const uint8_t bad[] = {0x10, 0x05}; /* field 2 as VARINT */
	run_bad(bad, sizeof(bad), "span field with a wire type other than LEN");
	const uint8_t fixed[] = {0x15, 1, 2, 3, 4}; /* field 2 as I32 */
	run_bad(fixed, sizeof(fixed), "wire type other than LEN");
}

static void test_unexpected_field(void **state)
{
	(void)state;
	const uint8_t bad[] = {0x28, 0x01}; /* field 5 varint */
	run_bad(bad, sizeof(bad), "unexpected field (field 5");
	const uint8_t sch[] = {0x1a, 0x01, 'x'}; /* ScopeSpans.schema_url: not a record */
	run_bad(sch, sizeof(sch), "unexpected field (field 3");
}

static void test_bad_scope_offsets(void **state)
{
	(void)state;
	uint8_t bad[16];
	size_t n = tr_ctrl_varint(bad, SPANRING_CTRL_SCOPE, 1u << 20);
	run_bad(bad, n, "scope offset beyond scope_len");
	n = tr_ctrl_varint(bad, SPANRING_CTRL_SCOPE, 4);
	run_bad(bad, n, "not 8-byte aligned");
	/* Scope record with the wrong wire type. */
	uint8_t *p = pb_put_varint(bad, PB_TAG(SPANRING_CTRL_SCOPE, SPANRING_WT_LEN));
	*p++ = 0;
	run_bad(bad, (size_t)(p - bad), "scope record with a wire type");
}

static void test_scope_entry_hostile(void **state)
{
	(void)state;
	/* An entry whose length runs past scope_len. */
	struct fx f;
	fx_init(&f, 1, 16384);
	struct spanring_ring_hdr *h = sr_hdr(&f.t.m);
	uint64_t off = h->scope_len;
	struct spanring_scope_entry e = {.len = 4000};
	memcpy(sr_scope_table(&f.t.m) + off, &e, sizeof(e));
	h->scope_len = off + 16;
	uint8_t rec[16];
	size_t n = tr_ctrl_varint(rec, SPANRING_CTRL_SCOPE, off);
	tr_put_raw(&f.t, 0, rec, n);
	tr_commit(&f.t, 0);
	expect_quarantine(&f, "scope entry extends past scope_len");
	fx_fini(&f);

	/* scope_len beyond the table's capacity. */
	fx_init(&f, 1, 16384);
	h = sr_hdr(&f.t.m);
	off = h->scope_len;
	h->scope_len = f.t.m.l.scope_cap + 8;
	n = tr_ctrl_varint(rec, SPANRING_CTRL_SCOPE, off);
	tr_put_raw(&f.t, 0, rec, n);
	tr_commit(&f.t, 0);
	expect_quarantine(&f, "scope_len beyond");
	fx_fini(&f);

	/* A body that would inject spans (field 2) into the ScopeSpans. */
	fx_init(&f, 1, 16384);
	h = sr_hdr(&f.t.m);
	off = h->scope_len;
	uint8_t body[] = {0x12, 0x00};
	e.len = sizeof(body);
	memcpy(sr_scope_table(&f.t.m) + off, &e, sizeof(e));
	memcpy(sr_scope_table(&f.t.m) + off + 8, body, sizeof(body));
	h->scope_len = off + 16;
	n = tr_ctrl_varint(rec, SPANRING_CTRL_SCOPE, off);
	tr_put_raw(&f.t, 0, rec, n);
	tr_commit(&f.t, 0);
	expect_quarantine(&f, "scope entry body has a field other than");
	fx_fini(&f);

	/* An InstrumentationScope that does not decode. */
	fx_init(&f, 1, 16384);
	h = sr_hdr(&f.t.m);
	off = h->scope_len;
	uint8_t body2[] = {0x0a, 0x03, 0x0a, 0x05, 'a'}; /* name says 5 bytes, has 1 */
	e.len = sizeof(body2);
	memcpy(sr_scope_table(&f.t.m) + off, &e, sizeof(e));
	memcpy(sr_scope_table(&f.t.m) + off + 8, body2, sizeof(body2));
	h->scope_len = off + 16;
	n = tr_ctrl_varint(rec, SPANRING_CTRL_SCOPE, off);
	tr_put_raw(&f.t, 0, rec, n);
	tr_commit(&f.t, 0);
	expect_quarantine(&f, "InstrumentationScope does not decode");
	fx_fini(&f);
}

/* Thousands of distinct tiny scopes: refused past the cache limit. */
static void test_scope_flood(void **state)
{
	(void)state;
	struct fx f;
	fx_init_ex(&f, 1, 1 << 20, 64 << 10);
	f.hold.keep = false;
	f.cfg.max_scope_bytes = 1 << 20; /* the count limit is the one tested */
	/* Build our own big table: 8-byte entries with an empty body. */
	struct spanring_ring_hdr *h = sr_hdr(&f.t.m);
	uint64_t base = h->scope_len;
	uint64_t n = (f.t.m.l.scope_cap - base) / 8;
	struct spanring_scope_entry e = {.len = 0};
	for (uint64_t k = 0; k < n; k++)
		memcpy(sr_scope_table(&f.t.m) + base + k * 8, &e, 8);
	h->scope_len = base + n * 8;
	uint8_t rec[16];
	uint64_t k;
	for (k = 0; k < n && f.p->state == PROD_ACTIVE; k++) {
		size_t len = tr_ctrl_varint(rec, SPANRING_CTRL_SCOPE, base + k * 8);
		tr_put_raw(&f.t, 0, rec, len);
		if (k % 256 == 255) {
			tr_commit(&f.t, 0);
			fx_pump(&f);
		}
	}
	tr_commit(&f.t, 0);
	fx_pump(&f);
	assert_true(n > 4096);
	assert_int_equal(f.p->state, PROD_QUARANTINED);
	assert_non_null(strstr(f.p->reason, "more distinct scopes"));
	assert_int_equal(f.p->scopes.n, 4096);
	fx_fini(&f);
}

/* Write a scope entry at table offset off whose body is `body` bytes: a
 * schema_url (field 3) filling it. Moves scope_len to cover it. */
static void put_scope_entry(struct fx *f, uint64_t off, uint32_t body)
{
	uint8_t *t = sr_scope_table(&f->t.m) + off;
	struct spanring_scope_entry e = {.len = body};
	memcpy(t, &e, sizeof(e));
	uint32_t url = body - 1 - (uint32_t)pb_varint_size(body - 3);
	uint8_t *p = pb_put_tag1(t + sizeof(e), 3, SPANRING_WT_LEN);
	p = pb_put_varint(p, url);
	assert_int_equal((size_t)(p - (t + sizeof(e))) + url, body);
	memset(p, 'u', url);
	struct spanring_ring_hdr *h = sr_hdr(&f->t.m);
	uint64_t end = (off + sizeof(e) + body + 7) & ~7ull;
	if (end > h->scope_len)
		sr_store_release_64(&h->scope_len, end);
}

/* Make the agent look up the scope at off (a scope record and a span). */
static void use_scope(struct fx *f, uint64_t off, int64_t seq)
{
	struct tr_span s = fx_span(seq, 0);
	assert_int_equal(tr_write_span(&f->t, 0, off, &s), 0);
	fx_pump(f);
}

/*
 * Issue 14 R2: the scope cache cannot grow the agent's memory past the
 * table. The review's attack: many entries at distinct offsets of one big
 * table, each reaching to its end (overlapping), and the table rewritten
 * after caching. Each overlapping entry is refused (quarantine), so the
 * copies never exceed the table; they stay within max_scope_bytes per
 * producer and count against the uid's max_mapped_per_uid.
 */
static void test_scope_overlap(void **state)
{
	(void)state;
	struct fx f;
	fx_init_ex(&f, 1, 1 << 16, 1 << 20);
	f.hold.keep = false;
	f.cfg.max_scope_bytes = 1 << 20;
	uint64_t base = (sr_hdr(&f.t.m)->scope_len + 7) & ~7ull;
	uint32_t big = (uint32_t)(f.t.m.l.scope_cap - base - 8);
	put_scope_entry(&f, base, big); /* to the end of the table */
	use_scope(&f, base, 0);
	assert_int_equal(f.p->state, PROD_ACTIVE);
	uint64_t bytes = f.p->scopes.bytes;
	assert_true(bytes >= big);
	/* An entry inside the one cached: refused, nothing more copied. */
	put_scope_entry(&f, base + 64, big - 64);
	use_scope(&f, base + 64, 1);
	assert_int_equal(f.p->state, PROD_QUARANTINED);
	assert_non_null(strstr(f.p->reason, "overlaps an earlier one"));
	assert_int_equal(f.p->scopes.bytes, bytes);
	assert_int_equal(f.hold.spans, 1);
	fx_fini(&f);

	/* Rewritten after caching: the cached entry's bounds are the agent's,
	 * so a rewrite cannot make room for an overlapping one. */
	fx_init_ex(&f, 1, 1 << 16, 1 << 20);
	f.hold.keep = false;
	f.cfg.max_scope_bytes = 1 << 20;
	base = (sr_hdr(&f.t.m)->scope_len + 7) & ~7ull;
	put_scope_entry(&f, base + 4096, 100);
	use_scope(&f, base + 4096, 0);
	put_scope_entry(&f, base, 100); /* before it, not overlapping: fine */
	use_scope(&f, base, 1);
	assert_int_equal(f.p->state, PROD_ACTIVE);
	put_scope_entry(&f, base, 8); /* shrunk after caching, then ... */
	put_scope_entry(&f, base + 16, 100); /* ... an entry where it was */
	use_scope(&f, base + 16, 2);
	assert_int_equal(f.p->state, PROD_QUARANTINED);
	assert_non_null(strstr(f.p->reason, "overlaps an earlier one"));
	fx_fini(&f);

	/* An entry reaching into a later cached one. */
	fx_init_ex(&f, 1, 1 << 16, 1 << 20);
	f.hold.keep = false;
	f.cfg.max_scope_bytes = 1 << 20;
	base = (sr_hdr(&f.t.m)->scope_len + 7) & ~7ull;
	put_scope_entry(&f, base + 512, 100);
	use_scope(&f, base + 512, 0);
	put_scope_entry(&f, base, 600);
	use_scope(&f, base, 1);
	assert_int_equal(f.p->state, PROD_QUARANTINED);
	assert_non_null(strstr(f.p->reason, "overlaps a later one"));
	fx_fini(&f);
}

/* Copies per producer stop at max_scope_bytes, which every ring counts
 * with against its uid's max_mapped_per_uid. */
static void test_scope_bytes_limits(void **state)
{
	(void)state;
	struct fx f;
	fx_init_ex(&f, 1, 1 << 16, 1 << 20);
	f.hold.keep = false;
	f.cfg.max_scope_bytes = 64 << 10;
	uint64_t base = (sr_hdr(&f.t.m)->scope_len + 7) & ~7ull;
	uint64_t before = f.p->scopes.bytes;
	int k;
	for (k = 0; k < 100 && f.p->state == PROD_ACTIVE; k++) {
		put_scope_entry(&f, base + (uint64_t)k * 8192, 8000);
		use_scope(&f, base + (uint64_t)k * 8192, k);
	}
	assert_int_equal(f.p->state, PROD_QUARANTINED);
	assert_non_null(strstr(f.p->reason, "max_scope_bytes"));
	assert_true(f.p->scopes.bytes <= 64 << 10);
	/* 8 entries of 8008 bytes fit beside the fixture's two; the 9th not. */
	assert_int_equal(f.p->scopes.bytes, before + 8 * (8008 + AGENT_SCOPE_ENT_OVERHEAD));
	assert_int_equal(k, 9);
	fx_fini(&f);

	/* The uid's budget: each ring counts with the most its copies may
	 * take (its table, at most max_scope_bytes); a second ring that would
	 * pass it is refused. */
	fx_init_ex(&f, 1, 1 << 16, 1 << 20);
	struct tr t2;
	uint8_t res[256];
	size_t rl = tr_encode_resource(res, "second", false);
	assert_int_equal(tr_create_ex(&t2, 1, 16384, 1 << 20, res, rl), 0);
	assert_int_equal(registry_scope_reserve(&f.ag, &f.t.m.l), 64 << 10);
	assert_int_equal(registry_scope_reserve(&f.ag, &t2.m.l), 64 << 10);
	/* A small table reserves what its entries could cost. */
	assert_int_equal(registry_scope_reserve(&f.ag, &f.ag.producers->map.l), 64 << 10);
	struct sr_layout small = f.t.m.l;
	small.scope_cap = 4096;
	assert_int_equal(registry_scope_reserve(&f.ag, &small), 4096 + 512 * AGENT_SCOPE_ENT_OVERHEAD);
	f.cfg.max_mapped_per_uid = f.t.m.l.total_size + t2.m.l.total_size + 2 * (64 << 10) - 1;
	struct agent_producer *p2 = NULL;
	const char *why = "";
	int fd = dup(t2.m.fd);
	assert_int_equal(registry_adopt(&f.ag, fd, t2.m.l.total_size, getpid(), getuid(), getgid(),
					false, &p2, &why),
			 SPANRING_REG_ELIMIT);
	f.cfg.max_mapped_per_uid++;
	p2 = NULL;
	assert_int_equal(registry_adopt(&f.ag, fd, t2.m.l.total_size, getpid(), getuid(), getgid(),
					false, &p2, &why),
			 SPANRING_REG_OK);
	fx_fini(&f);
	sr_ring_unmap(&t2.m, true);
}

static void test_span_before_scope(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	uint8_t span[512];
	struct tr_span s = fx_span(1, 0);
	size_t n = tr_encode_span(span + 3, &s);
	uint8_t *p = pb_put_tag1(span, 2, SPANRING_WT_LEN);
	/* re-encode properly: tag, len, body */
	uint8_t rec[600];
	p = pb_put_tag1(rec, 2, SPANRING_WT_LEN);
	p = pb_put_bytes(p, span + 3, n);
	tr_put_raw(&f.t, 0, rec, (size_t)(p - rec));
	tr_commit(&f.t, 0);
	expect_quarantine(&f, "span record before any scope record");
	assert_int_equal(f.hold.spans, 0);
	fx_fini(&f);
}

static void test_oversize_record(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	uint8_t rec[16];
	size_t n = tr_ctrl_varint(rec, SPANRING_CTRL_SCOPE, f.scope_a);
	tr_put_raw(&f.t, 0, rec, n);
	static uint8_t big[8300];
	uint8_t *p = pb_put_tag1(big, 2, SPANRING_WT_LEN);
	p = pb_put_varint(p, 8193); /* > slot_size / 2 */
	tr_put_raw(&f.t, 0, big, (size_t)(p - big) + 8193);
	tr_commit(&f.t, 0);
	expect_quarantine(&f, "larger than the record limit");
	fx_fini(&f);
}

static void test_head_backwards(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	for (int i = 0; i < 3; i++) {
		struct tr_span s = fx_span(i, 0);
		assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
	}
	assert_int_equal(fx_pump(&f), 3);
	tr_set_head(&f.t, 0, f.t.head[0] - 10);
	expect_quarantine(&f, "head moved backwards");
	fx_fini(&f);
}

static void test_head_beyond_size(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	tr_set_head(&f.t, 0, 16384 + 1);
	expect_quarantine(&f, "beyond tail 0 + slot size 16384");
	fx_fini(&f);
	/* Not released yet: a head past tail + size, though below what a
	 * correct producer could reach after a release. */
	fx_init(&f, 1, 16384);
	f.hold.keep = true;
	for (int i = 0; i < 3; i++) {
		struct tr_span s = fx_span(i, 0);
		assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
	}
	assert_int_equal(fx_pump(&f), 3); /* held: tail stays 0 */
	tr_set_head(&f.t, 0, 16384 + 100);
	expect_quarantine(&f, "beyond tail 0");
	fx_fini(&f);
}

/* Another producer's garbage does not stop this one. */
static void test_others_unaffected(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	struct tr bad;
	uint8_t res[256];
	size_t rl = tr_encode_resource(res, "evil", false);
	assert_int_equal(tr_create(&bad, 1, 16384, res, rl), 0);
	struct agent_producer *pb = NULL;
	const char *why;
	assert_int_equal(registry_adopt(&f.ag, dup(bad.m.fd), bad.m.l.total_size, 4242, 1, 1, false,
				       &pb, &why),
			 0);
	const uint8_t garbage[] = {0xff, 0xff, 0xff};
	tr_put_raw(&bad, 0, garbage, sizeof(garbage));
	tr_commit(&bad, 0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 10; i++) {
			struct tr_span s = fx_span(round * 10 + i, 0);
			assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
		}
		assert_int_equal(fx_pump(&f), 10);
	}
	assert_int_equal(pb->state, PROD_QUARANTINED);
	assert_int_equal(f.p->state, PROD_ACTIVE);
	assert_int_equal(f.ag.st.quarantined, 1);
	fx_fini(&f);
	sr_ring_unmap(&bad.m, true);
}

/* Records wrap around the slot end many times: all arrive, in order. */
static void test_wraparound(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	f.hold.keep = false;
	f.ag.on_batch = NULL;
	int64_t next = 0, written = 0;
	uint8_t *seen = calloc(20000, 1);
	for (int round = 0; round < 200; round++) {
		int k = 0;
		while (k < 40) {
			struct tr_span s = fx_span(next, 0);
			s.str = (next % 3) ? "some padding to vary record sizes" : "x";
			if (tr_write_span(&f.t, 0, next % 7 ? f.scope_a : f.scope_b, &s))
				break;
			next++;
			k++;
			written++;
		}
		assert_int_equal(fx_pump(&f), (uint64_t)k);
		/* Released at once (the exporter does not keep it). */
		assert_int_equal(sr_cons(&f.t.m, 0)->tail, f.t.head[0]);
	}
	assert_true(f.t.head[0] > 20 * 16384ull);
	assert_int_equal(f.p->spans, (uint64_t)written);
	assert_int_equal(f.p->state, PROD_ACTIVE);
	free(seen);
	fx_fini(&f);
}

static void test_control_records(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	struct tr_span s = fx_span(1, 0);
	assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
	uint8_t rec[64];
	size_t n = tr_ctrl_varint(rec, SPANRING_CTRL_LOST, 5);
	tr_put_raw(&f.t, 0, rec, n);
	n = tr_ctrl_varint(rec, SPANRING_CTRL_LOST, 2);
	tr_put_raw(&f.t, 0, rec, n);
	/* unknown control fields of each wire type are skipped */
	uint8_t *p = pb_put_varint(rec, PB_TAG(1950, SPANRING_WT_LEN));
	p = pb_put_varint(p, 2);
	*p++ = 'a';
	*p++ = 'b';
	p = pb_put_varint(p, PB_TAG(1951, SPANRING_WT_I64));
	memset(p, 0, 8);
	p += 8;
	p = pb_put_varint(p, PB_TAG(1999, SPANRING_WT_I32));
	memset(p, 0, 4);
	p += 4;
	p = pb_put_varint(p, PB_TAG(1952, SPANRING_WT_VARINT));
	p = pb_put_varint(p, 99);
	tr_put_raw(&f.t, 0, rec, (size_t)(p - rec));
	tr_commit(&f.t, 0);
	s = fx_span(2, 0);
	assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
	assert_int_equal(fx_pump(&f), 2);
	assert_int_equal(f.p->lost, 7);
	assert_int_equal(f.p->state, PROD_ACTIVE);
	/* Two segments (the control records split the run), one scope group. */
	struct batch *b = f.hold.held[0];
	assert_int_equal(b->nsegs, 2);
	assert_int_equal(b->n_scope_spans, 1);
	fx_fini(&f);
}

/* Restart: a new agent adopts a ring where the old one left it. */
static void test_adopt_stored_tail(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	f.hold.keep = false;
	for (int i = 0; i < 5; i++) {
		struct tr_span s = fx_span(i, 0);
		assert_int_equal(tr_write_span(&f.t, 0, f.scope_b, &s), 0);
	}
	assert_int_equal(fx_pump(&f), 5);
	uint64_t tail = sr_cons(&f.t.m, 0)->tail;
	assert_int_equal(sr_cons(&f.t.m, 0)->scope_at_tail, f.scope_b);
	/* More spans, same scope: no scope record in the stream. */
	for (int i = 5; i < 8; i++) {
		struct tr_span s = fx_span(i, 0);
		assert_int_equal(tr_write_span(&f.t, 0, f.scope_b, &s), 0);
	}
	/* "Restart": a second agent adopts the same ring. */
	struct fx g;
	memset(&g, 0, sizeof(g));
	agent_config_defaults(&g.cfg);
	assert_int_equal(agent_init(&g.ag, &g.cfg, false), 0);
	g.hold.e.ops = &fx_hold_ops;
	g.hold.keep = true;
	assert_int_equal(agent_add_exporter(&g.ag, &g.hold.e), 0);
	const char *why;
	uint64_t epoch = sr_cons_hdr(&f.t.m)->agent_epoch;
	assert_int_equal(registry_adopt(&g.ag, dup(f.t.m.fd), f.t.m.l.total_size, getpid(),
				       getuid(), getgid(), true, &g.p, &why),
			 0);
	assert_int_equal(sr_cons_hdr(&f.t.m)->agent_epoch, epoch + 1);
	assert_int_equal(sr_cons_hdr(&f.t.m)->watermark_pct, 50);
	assert_int_equal(g.p->slots[0].tail, tail);
	agent_drain_all(&g.ag);
	agent_flush(&g.ag);
	assert_int_equal(g.hold.spans, 3); /* only what was not released */
	struct batch *b = g.hold.held[0];
	assert_ptr_equal(b->segs[0].scope, g.p->slots[0].scope_ent);
	assert_int_equal(b->segs[0].scope->off, f.scope_b);
	agent_fini(&g.ag);
	agent_config_free(&g.cfg);
	fx_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_truncated_varint),
		cmocka_unit_test(test_length_past_head),
		cmocka_unit_test(test_unknown_wire_types),
		cmocka_unit_test(test_span_wrong_wire_type),
		cmocka_unit_test(test_unexpected_field),
		cmocka_unit_test(test_bad_scope_offsets),
		cmocka_unit_test(test_scope_entry_hostile),
		cmocka_unit_test(test_scope_flood),
		cmocka_unit_test(test_scope_overlap),
		cmocka_unit_test(test_scope_bytes_limits),
		cmocka_unit_test(test_span_before_scope),
		cmocka_unit_test(test_oversize_record),
		cmocka_unit_test(test_head_backwards),
		cmocka_unit_test(test_head_beyond_size),
		cmocka_unit_test(test_others_unaffected),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_control_records),
		cmocka_unit_test(test_adopt_stored_tail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
