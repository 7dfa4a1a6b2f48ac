/* SPDX-License-Identifier: MIT */
/* epoll + timerfd event loop (see loop.h). */
#include <stddef.h>

#include "loop.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static void loop_timerfd_fire(struct loop_watch *w, uint32_t events);

int loop_init(struct loop *l)
{
	memset(l, 0, sizeof(*l));
	l->timerfd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	l->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (l->timerfd < 0) {
		int err = -errno;
		close(l->epfd);
		l->epfd = -1;
		return err;
	}
	l->timer_w.fd = l->timerfd;
	l->timer_w.fn = loop_timerfd_fire;
	int err = loop_add(l, &l->timer_w, EPOLLIN);
	if (err) {
		loop_fini(l);
		return err;
	}
	return 0;
}

void loop_fini(struct loop *l)
{
	if (l->timerfd >= 0)
		close(l->timerfd);
	if (l->epfd >= 0)
		close(l->epfd);
	l->timerfd = l->epfd = -1;
	l->timers = NULL;
}

int loop_add(struct loop *l, struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) ? -errno : 0;
}

int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) ? -errno : 0;
}

void loop_del(struct loop *l, struct loop_watch *w)
{
	if (w->fd >= 0)
		(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	/* The owner may free w once we return: forget its queued events. */
	for (int i = l->iev; i < l->nev; i++)
		if (l->ev[i].data.ptr == w)
			l->ev[i].data.ptr = NULL;
}

/* Arm the timerfd to the earliest deadline (or disarm it). */
static void loop_timerfd_update(struct loop *l)
{
	uint64_t min = 0;
	for (struct loop_timer *t = l->timers; t; t = t->next)
		if (min == 0 || t->when_ns < min)
			min = t->when_ns;
	if (min == l->timerfd_when)
		return;
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	if (min) {
		/* A deadline of 0 would disarm: the earliest possible is 1 ns. */
		its.it_value.tv_sec = (time_t)(min / 1000000000ull);
		its.it_value.tv_nsec = (long)(min % 1000000000ull);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	if (timerfd_settime(l->timerfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		l->timerfd_when = min;
	else
		log_error("loop: timerfd_settime: %s", strerror(errno));
}

void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t when_ns)
{
	if (!t->armed) {
		t->prev = NULL;
		t->next = l->timers;
		if (l->timers)
			l->timers->prev = t;
		l->timers = t;
		t->armed = true;
	}
	t->when_ns = when_ns ? when_ns : 1;
	loop_timerfd_update(l);
}

static void timer_unlink(struct loop *l, struct loop_timer *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		l->timers = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->next = t->prev = NULL;
	t->armed = false;
}

void loop_timer_arm_by(struct loop *l, struct loop_timer *t, uint64_t when_ns)
{
	if (!t->armed || t->when_ns > when_ns)
		loop_timer_arm(l, t, when_ns);
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	if (!t->armed)
		return;
	timer_unlink(l, t);
	loop_timerfd_update(l);
}

/* Run every timer whose deadline has passed (each one at most once). */
static int loop_run_timers(struct loop *l)
{
	uint64_t now = agent_now_ns();
	int ran = 0;
	/* Bounded: a callback that re-arms its timer in the past runs again on
	 * the next iteration, not in a loop here. */
	while (ran < 64) {
		struct loop_timer *due = NULL;
		for (struct loop_timer *t = l->timers; t; t = t->next)
			if (t->when_ns <= now && (!due || t->when_ns < due->when_ns))
				due = t;
		if (!due)
			break;
		timer_unlink(l, due);
		due->fn(due);
		if (l->after)
			l->after(l);
		ran++;
	}
	loop_timerfd_update(l);
	return ran;
}

static void loop_timerfd_fire(struct loop_watch *w, uint32_t events)
{
	uint64_t n;
	ssize_t r = read(w->fd, &n, sizeof(n));
	(void)r;
	(void)events;
}

int loop_run_once(struct loop *l, int max_wait_ms)
{
	int n = epoll_wait(l->epfd, l->ev, LOOP_MAX_EVENTS, max_wait_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	int ran = 0;
	l->nev = n;
	for (l->iev = 0; l->iev < l->nev; l->iev++) {
		struct loop_watch *w = l->ev[l->iev].data.ptr;
		if (!w)
			continue;
		w->fn(w, l->ev[l->iev].events);
		if (l->after)
			l->after(l);
		ran++;
	}
	l->nev = l->iev = 0;
	/* Timers are checked on every iteration, not only when the timerfd
	 * fires: a timer armed in the past by a callback runs now. */
	ran += loop_run_timers(l);
	return ran;
}
