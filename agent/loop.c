/* SPDX-License-Identifier: MIT */
/* epoll event loop; timers by epoll_pwait2's timeout (see loop.h). */
#include <stddef.h>

#include "loop.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static void loop_timerfd_fire(struct loop_watch *w, uint32_t events);
static void loop_timerfd_update(struct loop *l);

/* Can the loop wait with epoll_pwait2 (Linux 5.11)? A wait of zero on the
 * empty set answers at once. Any failure (ENOSYS on older kernels and
 * under valgrind, EPERM under a seccomp filter) means the timerfd. */
static bool loop_have_pwait2(int epfd)
{
	struct epoll_event ev;
	const struct timespec zero = {0, 0};
	return epoll_pwait2(epfd, &ev, 1, &zero, NULL) >= 0;
}

static int loop_timerfd_create(struct loop *l);

int loop_init(struct loop *l)
{
	memset(l, 0, sizeof(*l));
	l->timerfd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	l->pwait2 = loop_have_pwait2(l->epfd);
	/* With epoll_pwait2 the timerfd is for busy spells (loop_adapt); a
	 * loop without one simply never switches. */
	int err = loop_timerfd_create(l);
	if (err && !l->pwait2) {
		close(l->epfd);
		l->epfd = -1;
		return err;
	}
	return 0;
}

int loop_use_timerfd(struct loop *l)
{
	int err = loop_timerfd_create(l);
	if (err)
		return err;
	l->pwait2 = false;
	l->busy = false;
	loop_timerfd_update(l); /* timers armed before the switch */
	return 0;
}

/* Does the timerfd serve the deadlines now? */
static bool loop_tfd_serves(const struct loop *l)
{
	return l->timerfd >= 0 && (!l->pwait2 || l->busy);
}

static int loop_timerfd_create(struct loop *l)
{
	if (l->timerfd >= 0)
		return 0;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	l->timer_w.fd = fd;
	l->timer_w.fn = loop_timerfd_fire;
	int err = loop_add(l, &l->timer_w, EPOLLIN);
	if (err) {
		close(fd);
		return err;
	}
	l->timerfd = fd;
	l->timerfd_when = 0;
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

/* The earliest deadline of the armed timers, 0 when none is armed. */
static uint64_t loop_first_deadline(const struct loop *l)
{
	uint64_t min = 0;
	for (const struct loop_timer *t = l->timers; t; t = t->next)
		if (min == 0 || t->when_ns < min)
			min = t->when_ns;
	return min;
}

/* Arm the timerfd, where it stands in for epoll_pwait2, to the earliest
 * deadline (or disarm it). */
static void loop_timerfd_update(struct loop *l)
{
	if (!loop_tfd_serves(l))
		return;
	uint64_t min = loop_first_deadline(l);
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

/* Run every timer whose deadline has passed, each one at most once: a
 * callback that re-arms its timer in the past has it run on the next
 * iteration (after a wait of zero), not again in this pass. */
static int loop_run_timers(struct loop *l)
{
	uint64_t now = agent_now_ns();
	uint32_t pass = ++l->timer_pass;
	int ran = 0;
	for (;;) {
		struct loop_timer *due = NULL;
		for (struct loop_timer *t = l->timers; t; t = t->next)
			if (t->when_ns <= now && t->ran_pass != pass &&
			    (!due || t->when_ns < due->when_ns))
				due = t;
		if (!due)
			break;
		timer_unlink(l, due);
		due->ran_pass = pass;
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
	struct loop *l = container_of(w, struct loop, timer_w);
	uint64_t n;
	ssize_t r = read(w->fd, &n, sizeof(n));
	(void)r;
	(void)events;
	/* It expired and is disarmed: the same deadline armed again must be
	 * set again. */
	l->timerfd_when = 0;
	l->tfd_fired = true;
}

/* Wait for events: up to max_wait_ms (-1: no limit) and, where epoll_pwait2
 * serves the timers, no later than the earliest deadline. *timed_until:
 * the deadline the wait's own timeout stood for, 0 if none. */
static int loop_wait(struct loop *l, int max_wait_ms, uint64_t *timed_until)
{
	*timed_until = 0;
	uint64_t wait_ns = max_wait_ms < 0 ? UINT64_MAX : (uint64_t)max_wait_ms * 1000000ull;
	uint64_t first = loop_first_deadline(l);
	bool by_deadline = false;
	if (first) {
		uint64_t now = agent_now_ns();
		uint64_t left = first > now ? first - now : 0;
		if (left < wait_ns) {
			wait_ns = left;
			by_deadline = true;
		}
	}
	if (loop_tfd_serves(l)) /* it wakes the wait by the deadline */
		return epoll_wait(l->epfd, l->ev, LOOP_MAX_EVENTS, wait_ns == 0 ? 0 : max_wait_ms);
	if (wait_ns == UINT64_MAX)
		return epoll_pwait2(l->epfd, l->ev, LOOP_MAX_EVENTS, NULL, NULL);
	if (by_deadline && wait_ns > 0)
		*timed_until = first; /* a kernel timer stands for it in this wait */
	struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000ull),
			      .tv_nsec = (long)(wait_ns % 1000000000ull)};
	return epoll_pwait2(l->epfd, l->ev, LOOP_MAX_EVENTS, &ts, NULL);
}

/* Choose how the next waits keep the deadlines (loop.h): n events came
 * from a wait whose timeout stood for timed_until (0: none), of which the
 * timerfd's expiry, if tfd_fired. */
static void loop_adapt(struct loop *l, int n, uint64_t timed_until)
{
	bool fired = l->tfd_fired;
	l->tfd_fired = false;
	if (!l->pwait2 || l->timerfd < 0)
		return;
	if (!l->busy) {
		if (!timed_until)
			return;
		if (n > 0 && agent_now_ns() < timed_until) {
			/* An event ended a timed wait: its kernel timer was
			 * armed and cancelled for nothing. */
			if (++l->interrupted >= 2) {
				l->busy = true;
				l->fd_wakes = 0;
				loop_timerfd_update(l);
			}
		} else {
			l->interrupted = 0;
		}
		return;
	}
	if (fired) {
		/* Expired (so disarmed): with no event since the previous
		 * expiry the loop runs by its timers alone. */
		if (l->fd_wakes == 0) {
			l->busy = false;
			l->interrupted = 0;
		}
		l->fd_wakes = 0;
	} else if (n > 0) {
		l->fd_wakes++;
	}
}

int loop_run_once(struct loop *l, int max_wait_ms)
{
	uint64_t timed_until;
	int n = loop_wait(l, max_wait_ms, &timed_until);
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
	loop_adapt(l, n, timed_until);
	/* Timers are checked on every iteration, not only when their wait
	 * ran out: a timer armed in the past by a callback runs now. */
	ran += loop_run_timers(l);
	return ran;
}
