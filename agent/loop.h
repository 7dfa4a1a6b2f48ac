/* SPDX-License-Identifier: MIT */
/*
 * The agent's single-threaded event loop: epoll for fds; timers are a
 * list whose earliest deadline is epoll_pwait2's timeout (nanoseconds), so
 * arming, moving or cancelling a timer costs no system call and a timer
 * that fires costs no read. Kernels before 5.11 lack epoll_pwait2: there
 * one timerfd, armed to the earliest deadline, stands in. Exporters that
 * work asynchronously (OTLP/HTTP, gRPC) register their sockets and timers
 * here like the core does.
 *
 * The two ways are also chosen as the load goes (loop_adapt in loop.c): a
 * wait with a timeout arms a kernel timer for that wait, and an event that
 * ends the wait early cancels it, a reprogramming of the CPU's timer each
 * (on a VM, an exit to the hypervisor). While events keep ending timed
 * waits early (doorbells at high rates) the timerfd serves the deadline,
 * armed once per deadline across those waits; once it expires with no
 * event since its previous expiry (the loop runs by its timers alone, low
 * rates), epoll_pwait2's timeout serves them again.
 */
#ifndef SPANRING_AGENT_LOOP_H
#define SPANRING_AGENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop_watch;
typedef void (*loop_watch_fn)(struct loop_watch *w, uint32_t events);

/* Embed in the owner; find the owner with container_of. */
struct loop_watch {
	int fd;
	loop_watch_fn fn;
};

struct loop_timer;
typedef void (*loop_timer_fn)(struct loop_timer *t);

struct loop_timer {
	uint64_t when_ns; /* CLOCK_MONOTONIC deadline */
	loop_timer_fn fn;
	struct loop_timer *next, *prev;
	bool armed;
	uint32_t ran_pass; /* the loop's timer pass that last ran it */
};

#define LOOP_MAX_EVENTS 64

struct loop {
	int epfd;
	int timerfd;                /* -1: none (epoll_pwait2 serves the timers) */
	bool pwait2;                /* epoll_pwait2 can serve the timers */
	bool busy;                  /* ... but the timerfd does, for now (loop_adapt) */
	bool tfd_fired;             /* the timerfd expired in this iteration */
	uint32_t interrupted;       /* timed waits in a row an event ended early */
	uint32_t fd_wakes;          /* busy: waits ended by events since the
				       timerfd last expired */
	struct loop_watch timer_w;
	struct loop_timer *timers;  /* armed timers, unsorted */
	uint64_t timerfd_when;      /* what timerfd is armed to, 0 = disarmed */
	uint32_t timer_pass;        /* counts loop_run_timers passes */
	/* Events of the current epoll_wait, so that loop_del can cancel them. */
	struct epoll_event ev[LOOP_MAX_EVENTS];
	int nev, iev;
	/* Run after every callback, when set: the owner applies what the
	 * callback left for it (the agent: batches the exporters finished). */
	void (*after)(struct loop *l);
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Create the epoll fd (and the timerfd where epoll_pwait2 is missing).
 * 0 or -errno. */
int loop_init(struct loop *l);
void loop_fini(struct loop *l);
/* Serve timers with a timerfd always (what loop_init does where
 * epoll_pwait2 is missing; the tests use it to run that path on any
 * kernel). 0 or -errno. */
int loop_use_timerfd(struct loop *l);

/* Watch w->fd for events (EPOLLIN, EPOLLOUT, ...); w->fn is called. */
int loop_add(struct loop *l, struct loop_watch *w, uint32_t events);
int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events);
/* Stop watching; pending events of this iteration for w are dropped, so
 * the owner may free w right after. Does not close the fd. */
void loop_del(struct loop *l, struct loop_watch *w);

/* Arm (or re-arm) t for the absolute CLOCK_MONOTONIC time when_ns. */
void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t when_ns);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
/* Make sure t fires by when_ns: arm it unless it is armed earlier. */
void loop_timer_arm_by(struct loop *l, struct loop_timer *t, uint64_t when_ns);

/*
 * Wait up to max_wait_ms (-1: no limit) for events and timers, dispatch
 * them. Returns the number of callbacks run, or -errno.
 */
int loop_run_once(struct loop *l, int max_wait_ms);

#endif
