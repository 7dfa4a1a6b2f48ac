/* SPDX-License-Identifier: MIT */
/*
 * The chunk queue of a slot (agent/chunkq.h) on its own: batches finish in
 * any order, the tail moves only over the released prefix, a chunk is
 * extended only while its batch holds the last one, and the ring buffer
 * keeps its order across growth and wrap-around.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "chunkq.h"

static void test_release_in_any_order(void **state)
{
	(void)state;
	struct chunkq cq = {0};
	uint64_t seq[3], end = 0, scope = 0;
	for (int i = 0; i < 3; i++)
		assert_int_equal(chunkq_push(&cq, 10 + (uint64_t)i, 100 * (uint64_t)(i + 1),
					     7 + (uint64_t)i, &seq[i]),
				 0);
	assert_int_equal(seq[1], seq[0] + 1);
	/* The last and the middle first: the front is still held. */
	assert_int_equal(chunkq_release(&cq, seq[2], &end, &scope), 0);
	assert_int_equal(chunkq_release(&cq, seq[1], &end, &scope), 0);
	/* The front: the tail may move over all three. */
	assert_int_equal(chunkq_release(&cq, seq[0], &end, &scope), 1);
	assert_int_equal(end, 300);
	assert_int_equal(scope, 9);
	assert_int_equal(cq.len, 0);
	/* Released already, or never pushed: unknown. */
	assert_int_equal(chunkq_release(&cq, seq[0], &end, &scope), -ENOENT);
	assert_int_equal(chunkq_release(&cq, seq[2] + 5, &end, &scope), -ENOENT);
	chunkq_free(&cq);
}

static void test_extend_only_the_held_last(void **state)
{
	(void)state;
	struct chunkq cq = {0};
	uint64_t s0, s1, end = 0, scope = 0;
	assert_false(chunkq_extend(&cq, 1, 50, 0)); /* empty */
	assert_int_equal(chunkq_push(&cq, 1, 50, 0, &s0), 0);
	assert_true(chunkq_extend(&cq, 1, 80, 3));
	assert_false(chunkq_extend(&cq, 2, 90, 3)); /* another batch */
	assert_int_equal(chunkq_push(&cq, 2, 90, 4, &s1), 0);
	assert_int_equal(chunkq_release(&cq, s1, &end, &scope), 0);
	assert_false(chunkq_extend(&cq, 2, 95, 4)); /* released: never grows */
	assert_int_equal(chunkq_release(&cq, s0, &end, &scope), 1);
	assert_int_equal(end, 90);
	assert_int_equal(scope, 4);
	chunkq_free(&cq);
}

static void test_growth_keeps_order(void **state)
{
	(void)state;
	struct chunkq cq = {0};
	uint64_t seq, end = 0, scope = 0, next_end = 0, released = 0;
	/* Push and release so that the front wraps before the queue grows. */
	for (uint64_t i = 0; i < 3; i++)
		assert_int_equal(chunkq_push(&cq, i, ++next_end, i, &seq), 0);
	for (uint64_t i = 0; i < 2; i++) {
		assert_int_equal(chunkq_release(&cq, released++, &end, &scope), 1);
		assert_int_equal(end, released);
	}
	for (uint64_t i = 3; i < 40; i++)
		assert_int_equal(chunkq_push(&cq, i, ++next_end, i, &seq), 0);
	assert_int_equal(cq.len, 38);
	while (released < 40) {
		assert_int_equal(chunkq_release(&cq, released, &end, &scope), 1);
		released++;
		assert_int_equal(end, released);
		assert_int_equal(scope, released - 1);
	}
	assert_int_equal(cq.len, 0);
	chunkq_free(&cq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release_in_any_order),
		cmocka_unit_test(test_extend_only_the_held_last),
		cmocka_unit_test(test_growth_keeps_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
