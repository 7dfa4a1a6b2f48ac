/* SPDX-License-Identifier: MIT */
/*
 * fork(): the child never writes into its parent's ring; it builds its
 * own, and its id generator is reseeded (no duplicate ids with the parent).
 * The child of a multithreaded parent is restricted (docs/DESIGN-NOTES.md,
 * "Fork"): its allocations come from the private heap; the child of a
 * parent whose only other thread is our quiet registration thread is not.
 * A child of a parent that never used the library still gets a ring.
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
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "internal.h"
#include "mem.h"
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
	/* Our registration thread counts as another thread until it is in
	 * its loop (quiet): wait for that. */
	for (int i = 0; i < 2000 && !sr_client_thread_quiet(); i++)
		usleep(1000);
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
		struct { uint8_t span_id[8]; int end_rc; uint32_t creator; int own_spans; int restricted; } msg;
		memcpy(msg.span_id, cc.span_id, 8);
		msg.end_rc = r;
		msg.creator = sr_hdr(&sr_g.map)->creator_pid;
		msg.restricted = sr_proc_fork_restricted();
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
	struct { uint8_t span_id[8]; int end_rc; uint32_t creator; int own_spans; int restricted; } msg;
	assert_int_equal(read(pfd[0], &msg, sizeof(msg)), (ssize_t)sizeof(msg));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(msg.end_rc, 0);
	assert_int_equal(msg.creator, (uint32_t)pid);   /* the child's own ring */
	assert_int_equal(msg.own_spans, 1);             /* its span went there */
	assert_memory_not_equal(msg.span_id, pc.span_id, 8); /* reseeded ids */
#ifndef SR_TSAN /* TSan's own thread makes every child restricted */
	assert_int_equal(msg.restricted, 0); /* our registration thread is quiet */
#endif
	spanring_span_end(open_in_parent);
	/* The parent's ring holds only the parent's two spans. */
	int n = 0;
	assert_true(rr_drain(&pmap, true, count_cb, &n) >= 0);
	assert_int_equal(n, 2);
}

/* A thread that stays alive (and allocates) across the fork. */
static volatile int spin_stop;
static void *spinner(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&spin_stop, __ATOMIC_RELAXED)) {
		void *p = malloc(64);
		free(p);
	}
	return NULL;
}

static void test_restricted_child(void **state)
{
	(void)state;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, spinner, NULL), 0);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		struct { int restricted, priv, end_rc, own_spans; size_t mapped; } m = {0};
		m.restricted = sr_proc_fork_restricted();
		m.priv = sr_mem_is_private();
		spanring_span *s = spanring_span_start(NULL, "restricted-child", SPANRING_KIND_INTERNAL);
		spanring_span_set_str(s, "k", "a copied value");
		m.end_rc = spanring_span_end(s);
		m.mapped = sr_priv_mapped(); /* the ring's slot writers, our state */
		struct sr_map own;
		m.own_spans = -1;
		if (rr_map_self(&own) == 0) {
			m.own_spans = 0;
			rr_drain(&own, false, count_cb, &m.own_spans);
		}
		ssize_t w = write(pfd[1], &m, sizeof(m));
		_exit(w == (ssize_t)sizeof(m) ? 0 : 1);
	}
	close(pfd[1]);
	struct { int restricted, priv, end_rc, own_spans; size_t mapped; } m;
	assert_int_equal(read(pfd[0], &m, sizeof(m)), (ssize_t)sizeof(m));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	__atomic_store_n(&spin_stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(m.restricted, 1);
	assert_int_equal(m.priv, 1);
	assert_int_equal(m.end_rc, 0);
	assert_true(m.mapped > 0);
	assert_int_equal(m.own_spans, 1);
	assert_false(sr_proc_fork_restricted()); /* the parent is not */
}

/* Forked before the parent used the library at all (main, below). */
static int early_child_spans = -2;

static void early_fork(void)
{
	int pfd[2];
	if (pipe(pfd) != 0)
		return;
	pid_t pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		close(pfd[0]);
		spanring_span *s = spanring_span_start(NULL, "early-child", SPANRING_KIND_INTERNAL);
		int n = spanring_span_end(s) == 0 ? 0 : -1;
		struct sr_map own;
		if (n == 0 && rr_map_self(&own) == 0)
			rr_drain(&own, false, count_cb, &n);
		else
			n = -1;
		ssize_t w = write(pfd[1], &n, sizeof(n));
		_exit(w == (ssize_t)sizeof(n) ? 0 : 1);
	}
	close(pfd[1]);
	if (read(pfd[0], &early_child_spans, sizeof(early_child_spans)) != sizeof(early_child_spans))
		early_child_spans = -3;
	close(pfd[0]);
	waitpid(pid, NULL, 0);
}

static void test_child_of_unused_parent(void **state)
{
	(void)state;
	/* It read its configuration and made its ring (it once stayed
	 * disabled: the read was keyed to a generation the fork bumps). */
	assert_int_equal(early_child_spans, 1);
}

int main(void)
{
	setenv("SPANRING_SOCKET", "/nonexistent/spanring-test.sock", 1);
	setenv("SPANRING_EXIT_TIMEOUT_MS", "0", 1);
	early_fork();
	if (spanring_init() != 0 || rr_map_self(&pmap) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_child_gets_own_ring),
		cmocka_unit_test(test_restricted_child),
		cmocka_unit_test(test_child_of_unused_parent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
