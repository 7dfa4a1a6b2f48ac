/* SPDX-License-Identifier: MIT */
/*
 * The operations lib/atomics.h adds for process-local data: the
 * compare-and-swap that reports what it found, pointer load/store
 * (function pointers included), and the seqlock, whose readers must never
 * see a half-written value while a writer replaces it.
 */
#include <pthread.h>
#include <time.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "atomics.h"

static void t_cas_value(void **st)
{
	(void)st;
	int x = 5, seen = -1;
	assert_false(sr_cas_int_value(&x, 4, 9, &seen));
	assert_int_equal(seen, 5);
	assert_int_equal(x, 5);
	assert_true(sr_cas_int_value(&x, 5, 9, &seen));
	assert_int_equal(seen, 5);
	assert_int_equal(x, 9);
	assert_int_equal(sr_xchg_int(&x, 1), 9);
	assert_int_equal(sr_load_relaxed_int(&x), 1);
}

static int twice(int v)
{
	return 2 * v;
}

static void t_pointers(void **st)
{
	(void)st;
	int (*fn)(int) = NULL;
	assert_null(sr_load_acquire_ptr(&fn));
	sr_store_release_ptr(&fn, twice);
	assert_int_equal(sr_load_acquire_ptr(&fn)(21), 42);
	int v = 7, *p = NULL;
	sr_store_release_ptr(&p, &v);
	assert_int_equal(*sr_load_acquire_ptr(&p), 7);
}

/* The writer keeps b == 3 * a; a reader that accepts a read must see that. */
static struct {
	uint32_t seq;
	uint64_t a, b;
	int stop;
} sq;

static void *seq_writer(void *arg)
{
	(void)arg;
	for (uint64_t i = 1; !sr_load_int(&sq.stop); i++) {
		sr_seq_write_begin(&sq.seq);
		sr_seq_store_64(&sq.a, i);
		sr_seq_store_64(&sq.b, 3 * i);
		sr_seq_write_end(&sq.seq);
	}
	return NULL;
}

static void t_seqlock(void **st)
{
	(void)st;
	uint32_t s0 = sr_seq_read_begin(&sq.seq);
	assert_int_equal(s0 & 1, 0);
	sr_seq_write_begin(&sq.seq);
	assert_int_equal(sr_seq_read_begin(&sq.seq), s0 + 1); /* odd: being written */
	sr_seq_write_end(&sq.seq);
	assert_int_equal(sr_seq_read_end(&sq.seq), s0 + 2);

	pthread_t thr;
	assert_int_equal(pthread_create(&thr, NULL, seq_writer, NULL), 0);
	/* Reads until 100000 were accepted, for at most 10 s: on a loaded
	 * machine the writer can be preempted in the middle of a write (odd
	 * sequence) for longer than a fixed number of reads takes, and every
	 * read in that time is rightly refused. */
	unsigned accepted = 0;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; accepted < 100000; i++) {
		if ((i & 0xffff) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec - t0.tv_sec > 10)
				break;
		}
		uint32_t s = sr_seq_read_begin(&sq.seq);
		uint64_t a = sr_seq_load_64(&sq.a);
		uint64_t b = sr_seq_load_64(&sq.b);
		if ((s & 1) || s != sr_seq_read_end(&sq.seq))
			continue;
		assert_true(b == 3 * a);
		accepted++;
	}
	sr_store_int(&sq.stop, 1);
	pthread_join(thr, NULL);
	assert_true(accepted > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_cas_value),
		cmocka_unit_test(t_pointers),
		cmocka_unit_test(t_seqlock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
