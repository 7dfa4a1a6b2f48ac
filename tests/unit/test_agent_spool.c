/* SPDX-License-Identifier: MIT */
/*
 * The per-instance disk spool (agent/export/spool.c): records come back in
 * order, concatenated, with their span counts; what was committed is not
 * replayed after a restart and what was not is (at-least-once); a torn
 * record at the end is cut; a full spool lets go of whole oldest segments
 * and counts exactly the spans and records it let go.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "spool.h"

static char dir[] = "/tmp/spanring-spool-test.XXXXXX";

/* An ExportTraceServiceRequest with one ResourceSpans, one ScopeSpans and
 * n spans of pad bytes each; tag is in every span (to tell them apart). */
static size_t make_req(uint8_t *out, unsigned n, uint8_t tag, size_t pad)
{
	uint8_t span[200];
	size_t sl = 0;
	span[sl++] = 0x0a; /* trace_id, bytes */
	span[sl++] = (uint8_t)pad;
	memset(span + sl, tag, pad);
	sl += pad;
	uint8_t ss[8192];
	size_t sn = 0;
	for (unsigned i = 0; i < n; i++) {
		ss[sn++] = 0x12;
		ss[sn++] = (uint8_t)sl;
		memcpy(ss + sn, span, sl);
		sn += sl;
	}
	size_t o = 0;
	out[o++] = 0x0a; /* resource_spans */
	size_t rl = 1 + (sn < 128 ? 1 : 2) + sn;
	if (rl < 128) {
		out[o++] = (uint8_t)rl;
	} else {
		out[o++] = (uint8_t)(rl | 0x80);
		out[o++] = (uint8_t)(rl >> 7);
	}
	out[o++] = 0x12; /* scope_spans */
	if (sn < 128) {
		out[o++] = (uint8_t)sn;
	} else {
		out[o++] = (uint8_t)(sn | 0x80);
		out[o++] = (uint8_t)(sn >> 7);
	}
	memcpy(out + o, ss, sn);
	return o + sn;
}

static int put(struct spool *sp, unsigned n, uint8_t tag)
{
	uint8_t req[9000];
	size_t len = make_req(req, n, tag, 16);
	assert_int_equal(spool_count_spans(req, len), n);
	struct iovec iov = {req, len};
	return spool_put(sp, &iov, 1, len, n);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/spanring-spool-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_order_commit_restart(void **state)
{
	(void)state;
	char sdir[128];
	snprintf(sdir, sizeof(sdir), "%s/sp", dir);
	struct spool sp;
	assert_int_equal(spool_open(&sp, sdir, 64 << 20, "t"), 0);
	assert_false(spool_pending(&sp));
	for (unsigned i = 1; i <= 10; i++)
		assert_int_equal(put(&sp, i, (uint8_t)i), 0);
	assert_int_equal(sp.pending_spans, 55);
	uint8_t *buf;
	size_t len;
	uint64_t spans, seq, off;
	/* small max: one record at a time, oldest first */
	assert_int_equal(spool_load(&sp, 1, &buf, &len, &spans, &seq, &off), 0);
	assert_int_equal(spans, 1);
	assert_int_equal(buf[len - 1], 1);
	free(buf);
	spool_commit(&sp, seq, off);
	assert_int_equal(spool_load(&sp, 1, &buf, &len, &spans, &seq, &off), 0);
	assert_int_equal(spans, 2);
	assert_int_equal(buf[len - 1], 2);
	free(buf);
	/* not committed: a restart replays record 2 again (at-least-once) */
	spool_close(&sp);
	assert_int_equal(spool_open(&sp, sdir, 64 << 20, "t"), 0);
	assert_int_equal(sp.pending_spans, 54);
	assert_int_equal(sp.pending_records, 9);
	/* everything at once: one concatenated request */
	assert_int_equal(spool_load(&sp, 1 << 20, &buf, &len, &spans, &seq, &off), 0);
	assert_int_equal(spans, 54);
	assert_int_equal(spool_count_spans(buf, len), 54);
	free(buf);
	assert_int_equal(spool_load(&sp, 1 << 20, &buf, &len, &spans, &seq, &off), -ENOENT);
	spool_commit(&sp, seq, off);
	spool_close(&sp);
	assert_int_equal(spool_open(&sp, sdir, 64 << 20, "t"), 0);
	assert_false(spool_pending(&sp));
	spool_close(&sp);
}

/* Everything delivered, the spool restarted empty, then new records and a
 * restart: they are replayed (not taken as delivered by the old pos). */
static void test_restart_after_drained(void **state)
{
	(void)state;
	char sdir[128];
	snprintf(sdir, sizeof(sdir), "%s/drained", dir);
	struct spool sp;
	uint8_t *buf;
	size_t len;
	uint64_t spans, seq, off;
	/* one run writes, the next replays it all and writes nothing: the
	 * directory is left with pos alone */
	assert_int_equal(spool_open(&sp, sdir, 1 << 20, "t"), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(put(&sp, 40, 1), 0);
	spool_close(&sp);
	assert_int_equal(spool_open(&sp, sdir, 1 << 20, "t"), 0);
	while (spool_load(&sp, 1 << 20, &buf, &len, &spans, &seq, &off) == 0) {
		free(buf);
		spool_commit(&sp, seq, off);
	}
	spool_close(&sp);
	assert_int_equal(spool_open(&sp, sdir, 1 << 20, "t"), 0);
	assert_false(spool_pending(&sp));
	assert_int_equal(put(&sp, 7, 1), 0);
	spool_close(&sp);
	assert_int_equal(spool_open(&sp, sdir, 1 << 20, "t"), 0);
	assert_int_equal(sp.pending_spans, 7);
	spool_close(&sp);
}

static void test_torn_tail(void **state)
{
	(void)state;
	char sdir[128], seg[192];
	snprintf(sdir, sizeof(sdir), "%s/torn", dir);
	struct spool sp;
	assert_int_equal(spool_open(&sp, sdir, 64 << 20, "t"), 0);
	assert_int_equal(put(&sp, 3, 1), 0);
	assert_int_equal(put(&sp, 4, 2), 0);
	uint64_t size = sp.segs[sp.n - 1].bytes;
	snprintf(seg, sizeof(seg), "%s/%016llx.pb", sdir, (unsigned long long)sp.segs[sp.n - 1].seq);
	spool_close(&sp);
	assert_int_equal(truncate(seg, (off_t)(size - 5)), 0); /* a crash mid-write */
	assert_int_equal(spool_open(&sp, sdir, 64 << 20, "t"), 0);
	assert_int_equal(sp.pending_spans, 3);
	assert_int_equal(sp.pending_records, 1);
	spool_close(&sp);
}

static void test_full_lets_go_exactly(void **state)
{
	(void)state;
	char sdir[128];
	snprintf(sdir, sizeof(sdir), "%s/full", dir);
	struct spool sp;
	/* 1 MiB: segments of 256 KiB; records of 40 spans (about 1.6 KB) */
	assert_int_equal(spool_open(&sp, sdir, 1 << 20, "t"), 0);
	unsigned put_n = 0;
	for (unsigned i = 0; i < 2000; i++) {
		assert_int_equal(put(&sp, 40, (uint8_t)i), 0);
		put_n++;
		assert_true(sp.bytes <= sp.cap);
	}
	assert_true(sp.let_go_segments > 0);
	/* what is pending plus what was let go is what was put */
	assert_int_equal(sp.pending_spans + sp.let_go_spans, 40ull * put_n);
	assert_int_equal(sp.pending_records + sp.let_go_records, put_n);
	/* and reading it all gives exactly the pending spans */
	uint64_t pending = sp.pending_spans, got = 0;
	uint8_t *buf;
	size_t len;
	uint64_t spans, seq, off;
	while (spool_load(&sp, 1 << 20, &buf, &len, &spans, &seq, &off) == 0) {
		got += spans;
		free(buf);
		spool_commit(&sp, seq, off);
	}
	assert_int_equal(got, pending);
	/* a loaded record whose segment is let go is not counted twice */
	for (unsigned i = 0; i < 200; i++)
		assert_int_equal(put(&sp, 40, 1), 0);
	assert_int_equal(spool_load(&sp, 4096, &buf, &len, &spans, &seq, &off), 0);
	free(buf);
	uint64_t lg0 = sp.let_go_spans, pend0 = sp.pending_spans;
	for (unsigned i = 0; i < 2000; i++)
		assert_int_equal(put(&sp, 40, 2), 0);
	assert_int_equal(sp.pending_spans + (sp.let_go_spans - lg0), pend0 + 40ull * 2000);
	spool_close(&sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_commit_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_after_drained, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_lets_go_exactly, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
