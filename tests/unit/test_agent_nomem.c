/* SPDX-License-Identifier: MIT */
/*
 * A drain that runs out of memory loses nothing. The batch allocation
 * fails (calloc is wrapped for this test binary: -Wl,--wrap=calloc in the
 * Makefile): the spans stay in the ring, unreleased; a producer that has
 * closed its connection meanwhile is neither taken as drained nor freed;
 * once memory is back, the retry the agent armed walks and exports every
 * span.
 */
#include "agent_fixture.h"

void *__real_calloc(size_t n, size_t sz);
void *__wrap_calloc(size_t n, size_t sz);

static int fail_calloc;

void *__wrap_calloc(size_t n, size_t sz)
{
	if (fail_calloc)
		return NULL;
	return __real_calloc(n, sz);
}

static bool still_registered(struct agent *ag, struct agent_producer *p)
{
	for (struct agent_producer *q = ag->producers; q; q = q->next)
		if (q == p)
			return true;
	return false;
}

static void test_nomem_drain_keeps_spans(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 2, 1 << 16);
	for (int i = 0; i < 10; i++) {
		struct tr_span s = fx_span(i, 0);
		assert_int_equal(tr_write_span(&f.t, (uint32_t)(i & 1), f.scope_a, &s), 0);
	}
	/* No batch can be made: nothing is walked, nothing released. */
	fail_calloc = 1;
	assert_null(f.ag.free_batches); /* the pool would hide the failure */
	assert_int_equal(fx_pump(&f), 0);
	assert_true(f.ag.st.drain_nomem >= 1);
	assert_false(f.ag.drain_complete);
	assert_true(tr_unreleased(&f.t, 0));
	assert_true(tr_unreleased(&f.t, 1));
	/* The producer goes away now: its last drain fails too. It must not
	 * be taken as drained, nor freed with its spans unexported. */
	struct agent_producer *p = f.p;
	agent_producer_closed(p);
	assert_true(still_registered(&f.ag, p));
	assert_false(p->final_drained);
	assert_int_equal(f.hold.spans, 0);
	/* A retry is armed. */
	assert_true(f.ag.poll_t.armed);
	/* Memory is back: the retry walks and exports every span. */
	fail_calloc = 0;
	for (int i = 0; i < 100 && f.hold.spans < 10; i++)
		loop_run_once(&f.ag.loop, 20);
	assert_int_equal(f.hold.spans, 10);
	if (still_registered(&f.ag, p))
		assert_true(p->final_drained);
	fx_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nomem_drain_keeps_spans),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
