/* SPDX-License-Identifier: MIT */
/*
 * A thread whose exclusive slot is full moves to a free exclusive slot
 * that has room (lib/producer.c sr_slot_move()) instead of dropping: one
 * thread can fill every slot nobody owns; a slot another thread owns, or
 * a free one more than half full, is never taken; the drop is counted
 * once, only when no slot has room; a slot the agent has released is
 * used again (after the 64 full-slot events that follow a fruitless
 * search).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "internal.h"
#include "spanring/spanring.h"

#define SLOT (16u << 10)

static int emit(void)
{
	spanring_span *s = spanring_span_start(NULL, "move", SPANRING_KIND_INTERNAL);
	spanring_span_set_str(s, "pad", "................................................"
					"................................................");
	return spanring_span_end(s);
}

static uint64_t used(uint32_t i)
{
	return sr_load_acquire_64(&sr_prod(&sr_g.map, i)->head) -
	       sr_load_acquire_64(&sr_cons(&sr_g.map, i)->tail);
}

/* The agent's part: release everything committed in slot i. */
static void release(uint32_t i)
{
	sr_store_release_64(&sr_cons(&sr_g.map, i)->tail,
			    sr_load_acquire_64(&sr_prod(&sr_g.map, i)->head));
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int other_state; /* 1: has its slot, 2: may end */

static void *other(void *arg)
{
	(void)arg;
	emit(); /* claims an exclusive slot */
	pthread_mutex_lock(&mu);
	other_state = 1;
	pthread_cond_broadcast(&cv);
	while (other_state != 2)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void test_move(void **state)
{
	(void)state;
	const uint32_t nx = sr_g.n_exclusive;
	assert_int_equal(nx, 3); /* 4 slots: 3 exclusive + 1 shared */

	/* Another thread owns one exclusive slot for the whole test. */
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, other, NULL), 0);
	pthread_mutex_lock(&mu);
	while (other_state != 1)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	uint64_t owned0 = sr_load_relaxed_64(&sr_g.owned);
	assert_int_equal(__builtin_popcountll(owned0), 1);
	uint32_t theirs = (uint32_t)__builtin_ctzll(owned0);
	uint64_t theirs_used = used(theirs);

	spanring_stats st0, st1;
	spanring_get_stats(&st0);
	long n = 0;
	int r;
	while ((r = emit()) == 0)
		n++;
	assert_int_equal(r, -ENOSPC);
	spanring_get_stats(&st1);
	assert_int_equal(st1.drop_full - st0.drop_full, 1); /* counted once */
	assert_int_equal(st1.spans - st0.spans, (uint64_t)n);
	/* Both free exclusive slots were filled past half; theirs untouched;
	 * the shared slot is not ours to fill. */
	uint32_t filled = 0;
	for (uint32_t i = 0; i < nx; i++) {
		if (i == theirs) {
			assert_int_equal(used(i), theirs_used);
			continue;
		}
		assert_true(used(i) > SLOT / 2);
		filled++;
	}
	assert_int_equal(filled, 2);
	assert_int_equal(used(nx), 0);
	/* One slot is ours, the other free, and theirs is still theirs. */
	uint64_t owned1 = sr_load_relaxed_64(&sr_g.owned);
	assert_int_equal(__builtin_popcountll(owned1), 2);
	assert_true(owned1 & (1ull << theirs));

	/* The agent releases the free slot: a span moves there, after at
	 * most 64 more drops (a failed scan is not repeated for the next 64
	 * full-slot events). */
	uint32_t mine = (uint32_t)__builtin_ctzll(owned1 & ~(1ull << theirs));
	uint32_t freed = 3 - mine - theirs; /* the third exclusive slot */
	release(freed);
	int tries = 1;
	while (emit() != 0)
		tries++;
	assert_int_equal(tries, 65);
	spanring_get_stats(&st1);
	assert_int_equal(st1.drop_full - st0.drop_full, 65);
	assert_true(used(freed) > 0);
	assert_true(sr_load_relaxed_64(&sr_g.owned) & (1ull << freed));
	assert_false(sr_load_relaxed_64(&sr_g.owned) & (1ull << mine));
	/* The span dropped before is marked in the stream where it was lost
	 * (a LOST record waits in the old slot for its next writer). */
	assert_int_equal(sr_g.slots[mine].pending_lost, 65);

	pthread_mutex_lock(&mu);
	other_state = 2;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(th, NULL);
}

int main(void)
{
	setenv("SPANRING_SOCKET", "/nonexistent/spanring-test.sock", 1);
	setenv("SPANRING_SLOTS", "4", 1);
	setenv("SPANRING_SLOT_SIZE", "16K", 1);
	setenv("SPANRING_EXIT_TIMEOUT_MS", "0", 1);
	if (spanring_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_move),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
