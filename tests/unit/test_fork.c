/* SPDX-License-Identifier: MIT */
/*
 * fork(): the child never writes into its parent's ring; it builds its
 * own, and its id generator is reseeded (no duplicate ids with the parent).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "ringread.h"
#include "spanring/spanring.h"

static struct sr_map pmap;

static int count_cb(const struct rr_record *r, void *arg)
{
	if (r->field == SPANRING_SPAN_FIELD)
		(*(int *)arg)++;
	return 0;
}

static void test_child_gets_own_ring(void **state)
{
	(void)state;
	spanring_span *open_in_parent = spanring_span_start(NULL, "parent-open", SPANRING_KIND_INTERNAL);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Child: a span under the inherited current span, then a root. */
		close(pfd[0]);
		spanring_span *s = spanring_span_start(NULL, "child", SPANRING_KIND_INTERNAL);
		spanring_span_context cc;
		spanring_span_get_context(s, &cc);
		int r = spanring_span_end(s);
		struct { uint8_t span_id[8]; int end_rc; uint32_t creator; int own_spans; } msg;
		memcpy(msg.span_id, cc.span_id, 8);
		msg.end_rc = r;
		msg.creator = sr_hdr(&sr_g.map)->creator_pid;
		struct sr_map own;
		msg.own_spans = -1;
		if (rr_map_self(&own) == 0) {
			msg.own_spans = 0;
			rr_drain(&own, false, count_cb, &msg.own_spans);
		}
		ssize_t w = write(pfd[1], &msg, sizeof(msg));
		_exit(w == (ssize_t)sizeof(msg) ? 0 : 1);
	}
	close(pfd[1]);
	spanring_span *s = spanring_span_start(NULL, "parent-after-fork", SPANRING_KIND_INTERNAL);
	spanring_span_context pc;
	spanring_span_get_context(s, &pc);
	spanring_span_end(s);
	struct { uint8_t span_id[8]; int end_rc; uint32_t creator; int own_spans; } msg;
	assert_int_equal(read(pfd[0], &msg, sizeof(msg)), (ssize_t)sizeof(msg));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(msg.end_rc, 0);
	assert_int_equal(msg.creator, (uint32_t)pid);   /* the child's own ring */
	assert_int_equal(msg.own_spans, 1);             /* its span went there */
	assert_memory_not_equal(msg.span_id, pc.span_id, 8); /* reseeded ids */
	spanring_span_end(open_in_parent);
	/* The parent's ring holds only the parent's two spans. */
	int n = 0;
	assert_true(rr_drain(&pmap, true, count_cb, &n) >= 0);
	assert_int_equal(n, 2);
}

int main(void)
{
	setenv("SPANRING_SOCKET", "/nonexistent/spanring-test.sock", 1);
	setenv("SPANRING_EXIT_TIMEOUT_MS", "0", 1);
	if (spanring_init() != 0 || rr_map_self(&pmap) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_child_gets_own_ring),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
