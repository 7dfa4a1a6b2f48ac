/* SPDX-License-Identifier: MIT */
/*
 * The agent's event loop (agent/loop.h) on its own, in both of its timer
 * modes: epoll_pwait2's timeout (the default where the kernel has it) and
 * the timerfd that stands in on older kernels. Timers fire once, in
 * deadline order and never early; a cancelled one does not fire; arm_by
 * keeps the earlier deadline; a timer re-armed in the past from a callback
 * runs on the next iteration; fd events are dispatched and loop_del drops
 * the ones still queued; a wait with nothing armed lasts max_wait_ms.
 * test_busy_spell: where epoll_pwait2 serves the timers, events that keep
 * ending timed waits early hand the deadlines to the timerfd, and a
 * timerfd expiry with no event since the previous one hands them back;
 * timers fire on time in each.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "loop.h"

struct rec_timer {
	struct loop_timer t;
	int id;
	uint64_t fired_ns; /* when it ran, 0 = not yet */
	int runs;
};

static int order[16], n_order;

static void rec_fire(struct loop_timer *t)
{
	struct rec_timer *r = container_of(t, struct rec_timer, t);
	r->fired_ns = agent_now_ns();
	r->runs++;
	if (n_order < 16)
		order[n_order++] = r->id;
}

static void loop_setup(struct loop *l, bool timerfd)
{
	assert_int_equal(loop_init(l), 0);
	if (timerfd) {
		assert_int_equal(loop_use_timerfd(l), 0);
		assert_true(l->timerfd >= 0);
	}
	n_order = 0;
}

/* Run the loop until every timer in rs ran or 2 s passed. */
static void run_until_fired(struct loop *l, struct rec_timer *rs, int n)
{
	uint64_t end = agent_now_ns() + 2000000000ull;
	for (;;) {
		int left = 0;
		for (int i = 0; i < n; i++)
			left += rs[i].runs == 0;
		if (!left || agent_now_ns() > end)
			return;
		assert_true(loop_run_once(l, 100) >= 0);
	}
}

static void order_and_deadlines(bool timerfd)
{
	struct loop l;
	loop_setup(&l, timerfd);
	struct rec_timer rs[3] = {{.id = 0}, {.id = 1}, {.id = 2}};
	uint64_t now = agent_now_ns();
	uint64_t when[3] = {now + 30000000ull, now + 10000000ull, now + 20000000ull};
	for (int i = 0; i < 3; i++) {
		rs[i].t.fn = rec_fire;
		loop_timer_arm(&l, &rs[i].t, when[i]);
	}
	run_until_fired(&l, rs, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rs[i].runs, 1);
		assert_true(rs[i].fired_ns >= when[i]); /* never early */
	}
	assert_int_equal(n_order, 3);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 2);
	assert_int_equal(order[2], 0);
	/* Each ran once: nothing more comes. */
	assert_int_equal(loop_run_once(&l, 20), 0);
	loop_fini(&l);
}

static void test_order_pwait2(void **s)
{
	(void)s;
	order_and_deadlines(false);
}

static void test_order_timerfd(void **s)
{
	(void)s;
	order_and_deadlines(true);
}

static void cancel_and_arm_by(bool timerfd)
{
	struct loop l;
	loop_setup(&l, timerfd);
	struct rec_timer a = {.id = 0, .t.fn = rec_fire}, b = {.id = 1, .t.fn = rec_fire};
	uint64_t now = agent_now_ns();
	loop_timer_arm(&l, &a.t, now + 5000000ull);
	loop_timer_cancel(&l, &a.t);
	/* arm_by: the earlier deadline stays; a later one does not move it. */
	loop_timer_arm_by(&l, &b.t, now + 10000000ull);
	loop_timer_arm_by(&l, &b.t, now + 500000000ull);
	assert_int_equal(b.t.when_ns, now + 10000000ull);
	run_until_fired(&l, &b, 1);
	assert_int_equal(b.runs, 1);
	assert_true(b.fired_ns < now + 400000000ull);
	assert_int_equal(a.runs, 0);
	loop_fini(&l);
}

static void test_cancel_pwait2(void **s)
{
	(void)s;
	cancel_and_arm_by(false);
}

static void test_cancel_timerfd(void **s)
{
	(void)s;
	cancel_and_arm_by(true);
}

/* A callback that re-arms its own timer in the past: it runs again on
 * the next iteration, not in a loop inside one. */
static struct loop *rearm_loop;
static void rearm_fire(struct loop_timer *t)
{
	struct rec_timer *r = container_of(t, struct rec_timer, t);
	r->runs++;
	if (r->runs < 3)
		loop_timer_arm(rearm_loop, t, 1);
}

static void rearm_in_the_past(bool timerfd)
{
	struct loop l;
	loop_setup(&l, timerfd);
	rearm_loop = &l;
	struct rec_timer r = {.t.fn = rearm_fire};
	loop_timer_arm(&l, &r.t, 1);
	for (int i = 1; i <= 3; i++) {
		uint64_t t0 = agent_now_ns();
		assert_true(loop_run_once(&l, 1000) >= 1);
		assert_int_equal(r.runs, i);
		/* The wait before each run was zero, not max_wait_ms. */
		assert_true(agent_now_ns() - t0 < 500000000ull);
	}
	assert_false(r.t.armed);
	loop_fini(&l);
}

static void test_rearm_pwait2(void **s)
{
	(void)s;
	rearm_in_the_past(false);
}

static void test_rearm_timerfd(void **s)
{
	(void)s;
	rearm_in_the_past(true);
}

struct rec_watch {
	struct loop_watch w;
	int calls;
};

static void watch_fire(struct loop_watch *w, uint32_t ev)
{
	struct rec_watch *r = container_of(w, struct rec_watch, w);
	char c;
	if (ev & EPOLLIN)
		assert_int_equal(read(w->fd, &c, 1), 1);
	r->calls++;
}

/* Two watches whose callback deletes the other one, when it runs first
 * in an iteration. */
static struct loop *del_loop;
static struct rec_watch *del_pair[2];
static int del_round_calls;
static void watch_del_other(struct loop_watch *w, uint32_t ev)
{
	watch_fire(w, ev);
	if (del_round_calls++ == 0)
		loop_del(del_loop, &del_pair[del_pair[0] == (struct rec_watch *)w ? 1 : 0]->w);
}

static void fds_and_waits(bool timerfd)
{
	struct loop l;
	loop_setup(&l, timerfd);
	int p1[2], p2[2];
	assert_int_equal(pipe(p1), 0);
	assert_int_equal(pipe(p2), 0);
	struct rec_watch a = {.w = {.fd = p1[0], .fn = watch_fire}};
	struct rec_watch b = {.w = {.fd = p2[0], .fn = watch_fire}};
	assert_int_equal(loop_add(&l, &a.w, EPOLLIN), 0);
	assert_int_equal(loop_add(&l, &b.w, EPOLLIN), 0);
	/* Both ready: both dispatched in one iteration. */
	assert_int_equal(write(p1[1], "x", 1), 1);
	assert_int_equal(write(p2[1], "y", 1), 1);
	assert_int_equal(loop_run_once(&l, 1000), 2);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	/* Both ready again, and the first dispatched deletes the other: the
	 * other's queued event is dropped, not delivered to a freed watch. */
	del_loop = &l;
	del_pair[0] = &a;
	del_pair[1] = &b;
	del_round_calls = 0;
	a.w.fn = b.w.fn = watch_del_other;
	assert_int_equal(write(p1[1], "x", 1), 1);
	assert_int_equal(write(p2[1], "y", 1), 1);
	assert_int_equal(loop_run_once(&l, 1000), 1);
	assert_int_equal(a.calls + b.calls, 3);
	/* The one left is watched; the deleted one's byte stays unread. */
	struct rec_watch *kept = a.calls == 2 ? &a : &b;
	del_round_calls = 1; /* no more deletions */
	assert_int_equal(write(kept == &a ? p1[1] : p2[1], "z", 1), 1);
	assert_int_equal(loop_run_once(&l, 1000), 1);
	assert_int_equal(kept->calls, 3);
	/* Nothing armed, nothing ready: the wait lasts max_wait_ms (and no
	 * longer than a generous bound). */
	uint64_t t0 = agent_now_ns();
	assert_int_equal(loop_run_once(&l, 30), 0);
	uint64_t dt = agent_now_ns() - t0;
	assert_true(dt >= 29000000ull);
	assert_true(dt < 2000000000ull);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
	loop_fini(&l);
}

static void test_fds_pwait2(void **s)
{
	(void)s;
	fds_and_waits(false);
}

static void test_fds_timerfd(void **s)
{
	(void)s;
	fds_and_waits(true);
}

/* Timers armed before the switch to the timerfd still fire. */
static void test_switch_keeps_timers(void **s)
{
	(void)s;
	struct loop l;
	loop_setup(&l, false);
	struct rec_timer r = {.t.fn = rec_fire};
	uint64_t when = agent_now_ns() + 10000000ull;
	loop_timer_arm(&l, &r.t, when);
	assert_int_equal(loop_use_timerfd(&l), 0);
	run_until_fired(&l, &r, 1);
	assert_int_equal(r.runs, 1);
	assert_true(r.fired_ns >= when);
	loop_fini(&l);
}

static bool timerfd_armed(const struct loop *l)
{
	struct itimerspec its;
	assert_int_equal(timerfd_gettime(l->timerfd, &its), 0);
	return its.it_value.tv_sec || its.it_value.tv_nsec;
}

static void test_busy_spell(void **s)
{
	(void)s;
	struct loop l;
	loop_setup(&l, false);
	if (!l.pwait2 || l.timerfd < 0) {
		loop_fini(&l);
		skip(); /* the timerfd serves every deadline here anyway */
	}
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct rec_watch w = {.w = {.fd = p[0], .fn = watch_fire}};
	assert_int_equal(loop_add(&l, &w.w, EPOLLIN), 0);
	struct rec_timer a = {.t.fn = rec_fire}, b = {.t.fn = rec_fire}, c = {.t.fn = rec_fire};
	/* Far enough that a loaded machine does not reach it during the six
	 * iterations below (run_until_fired waits up to 2 s for it). */
	uint64_t when = agent_now_ns() + 1000000000ull;
	loop_timer_arm(&l, &a.t, when);
	/* One event ending a timed wait early is not a spell; two are. */
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(loop_run_once(&l, 1000), 1);
	assert_false(l.busy);
	assert_false(timerfd_armed(&l));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(write(p[1], "x", 1), 1);
		assert_int_equal(loop_run_once(&l, 1000), 1);
		assert_true(l.busy);
		assert_true(timerfd_armed(&l));
	}
	assert_int_equal(a.runs, 0);
	/* The timerfd keeps the deadline: on time, not early. Events came
	 * since it was armed, so the spell goes on after it. */
	run_until_fired(&l, &a, 1);
	assert_int_equal(a.runs, 1);
	assert_true(a.fired_ns >= when);
	assert_true(a.fired_ns < when + 1000000000ull);
	assert_true(l.busy);
	/* An expiry with no event since the previous one ends the spell, and
	 * leaves the timerfd disarmed. */
	when = agent_now_ns() + 20000000ull;
	loop_timer_arm(&l, &b.t, when);
	run_until_fired(&l, &b, 1);
	assert_true(b.fired_ns >= when);
	assert_false(l.busy);
	assert_false(timerfd_armed(&l));
	/* epoll_pwait2's timeout keeps the next deadline. */
	when = agent_now_ns() + 20000000ull;
	loop_timer_arm(&l, &c.t, when);
	assert_false(timerfd_armed(&l));
	run_until_fired(&l, &c, 1);
	assert_true(c.fired_ns >= when);
	assert_false(l.busy);
	assert_int_equal(w.calls, 6);
	close(p[0]);
	close(p[1]);
	loop_fini(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_pwait2),    cmocka_unit_test(test_order_timerfd),
		cmocka_unit_test(test_cancel_pwait2),   cmocka_unit_test(test_cancel_timerfd),
		cmocka_unit_test(test_rearm_pwait2),    cmocka_unit_test(test_rearm_timerfd),
		cmocka_unit_test(test_fds_pwait2),      cmocka_unit_test(test_fds_timerfd),
		cmocka_unit_test(test_switch_keeps_timers),
		cmocka_unit_test(test_busy_spell),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
