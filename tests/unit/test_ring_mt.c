/* SPDX-License-Identifier: MIT */
/*
 * Concurrency: producer threads (more than there are slots) against a
 * consumer thread that drains and releases concurrently. Every span must
 * arrive exactly once, untorn (decodes, canonical bytes), in order per
 * producer thread within a slot; drops are counted exactly (producers
 * retry a dropped span, so every sequence number arrives once).
 *
 *   test_ring_mt [threads] [spans-per-thread]    (defaults 8, 20000)
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "otlp_trace.pb-c.h"
#include "ringread.h"
#include "spanring/spanring.h"

static int nthreads = 8;
static long nspans = 20000;
static struct sr_map cmap;
static int stop;
static uint64_t retried_drops; /* producer-observed -ENOSPC, summed */

#define MAXT 64
struct seen {
	long count;
	long next_in_slot[SPANRING_MAX_SLOTS];
	int errors;
} seen[MAXT];

static int check_cb(const struct rr_record *r, void *arg)
{
	(void)arg;
	if (r->field != SPANRING_SPAN_FIELD)
		return 0;
	Opentelemetry__Proto__Trace__V1__Span *s =
		opentelemetry__proto__trace__v1__span__unpack(NULL, r->len, r->payload);
	if (!s) {
		fprintf(stderr, "torn or invalid record at %llu\n", (unsigned long long)r->pos);
		seen[0].errors++;
		return 0;
	}
	long t = -1, seq = -1;
	for (size_t i = 0; i < s->n_attributes; i++) {
		if (strcmp(s->attributes[i]->key, "t") == 0)
			t = s->attributes[i]->value->int_value;
		else if (strcmp(s->attributes[i]->key, "seq") == 0)
			seq = s->attributes[i]->value->int_value;
	}
	size_t m = opentelemetry__proto__trace__v1__span__get_packed_size(s);
	if (t < 0 || t >= nthreads || seq < 0 || m != r->len) {
		seen[0].errors++;
	} else {
		struct seen *sn = &seen[t];
		/* Within one slot a thread's spans are in order. */
		if (seq < sn->next_in_slot[r->slot]) {
			fprintf(stderr, "thread %ld: seq %ld after %ld in slot %u\n", t, seq,
				sn->next_in_slot[r->slot], r->slot);
			sn->errors++;
		}
		sn->next_in_slot[r->slot] = seq + 1;
		sn->count++;
	}
	opentelemetry__proto__trace__v1__span__free_unpacked(s, NULL);
	return 0;
}

static void *consumer(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		if (rr_drain(&cmap, true, check_cb, NULL) < 0) {
			seen[0].errors++;
			return NULL;
		}
		sched_yield();
	}
	if (rr_drain(&cmap, true, check_cb, NULL) < 0)
		seen[0].errors++;
	return NULL;
}

static void *producer(void *arg)
{
	long t = (long)(intptr_t)arg;
	char pad[300];
	memset(pad, 'a' + (int)t % 26, sizeof(pad));
	uint64_t drops = 0;
	for (long j = 0; j < nspans; j++) {
		for (;;) {
			spanring_span *s = spanring_span_start(NULL, "mt", SPANRING_KIND_INTERNAL);
			spanring_span_set_int(s, "t", t);
			spanring_span_set_int(s, "seq", j);
			/* Vary sizes so records straddle the mirror boundary at all offsets. */
			spanring_span_set_strn(s, "pad", pad, (size_t)((j * 7 + t) % 300));
			int r = spanring_span_end(s);
			if (r == 0)
				break;
			assert_int_equal(r, -ENOSPC);
			drops++;
			sched_yield();
		}
	}
	__atomic_fetch_add(&retried_drops, drops, __ATOMIC_RELAXED);
	return NULL;
}

static void test_mt_exactly_once(void **state)
{
	(void)state;
	pthread_t c, p[MAXT];
	spanring_stats before, after;
	spanring_get_stats(&before);
	assert_int_equal(pthread_create(&c, NULL, consumer, NULL), 0);
	for (int i = 0; i < nthreads; i++)
		assert_int_equal(pthread_create(&p[i], NULL, producer, (void *)(intptr_t)i), 0);
	for (int i = 0; i < nthreads; i++)
		pthread_join(p[i], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(c, NULL);
	spanring_get_stats(&after);
	int errors = 0;
	for (int i = 0; i < nthreads; i++) {
		errors += seen[i].errors;
		if (seen[i].count != nspans)
			fprintf(stderr, "thread %d: %ld of %ld spans\n", i, seen[i].count, nspans);
		assert_int_equal(seen[i].count, nspans);
	}
	assert_int_equal(errors, 0);
	assert_int_equal(after.spans - before.spans, (uint64_t)nthreads * (uint64_t)nspans);
	assert_int_equal(after.drop_full - before.drop_full, retried_drops);
	/* With more threads than slots some threads had to share. */
	if ((uint32_t)nthreads > sr_g.n_exclusive)
		assert_true(after.slots_shared > 0);
	fprintf(stderr, "threads=%d spans/thread=%ld drops(retried)=%llu shared=%llu\n", nthreads,
		nspans, (unsigned long long)retried_drops, (unsigned long long)after.slots_shared);
}

/* Threads that exit give their slot back; later threads get exclusive slots. */
static void *short_lived(void *arg)
{
	(void)arg;
	spanring_span_end(spanring_span_start(NULL, "short", SPANRING_KIND_INTERNAL));
	return NULL;
}

static void test_slots_recycled_on_thread_exit(void **state)
{
	(void)state;
	for (int round = 0; round < 50; round++) {
		pthread_t t;
		pthread_create(&t, NULL, short_lived, NULL);
		pthread_join(t, NULL);
	}
	/* All exclusive slots are free again once the threads are gone. */
	uint64_t mask = sr_g.n_exclusive >= 64 ? ~0ull : (1ull << sr_g.n_exclusive) - 1;
	uint64_t owned = sr_load_relaxed_64(&sr_g.owned) & mask;
	/* The main thread may own one (it created spans in other tests). */
	assert_true(__builtin_popcountll(owned) <= 1);
	rr_drain(&cmap, true, NULL, NULL);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		nthreads = atoi(argv[1]);
	if (argc > 2)
		nspans = atol(argv[2]);
	if (nthreads < 1 || nthreads > MAXT || nspans < 1) {
		fprintf(stderr, "usage: %s [threads 1..%d] [spans]\n", argv[0], MAXT);
		return 2;
	}
	setenv("SPANRING_SOCKET", "/nonexistent/spanring-test.sock", 1);
	setenv("SPANRING_SLOTS", "4", 1);       /* 3 exclusive + 1 shared */
	setenv("SPANRING_SLOT_SIZE", "64K", 1); /* small: wraps and drops happen */
	setenv("SPANRING_EXIT_TIMEOUT_MS", "0", 1);
	if (spanring_init() != 0 || rr_map_self(&cmap) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mt_exactly_once),
		cmocka_unit_test(test_slots_recycled_on_thread_exit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
