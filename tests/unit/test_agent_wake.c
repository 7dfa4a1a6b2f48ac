/* SPDX-License-Identifier: MIT */
/*
 * The wake-up protocol of ABI 1.2 (ring_abi.h E/F/G, docs/ABI.md "Sleeping
 * agent") with the agent's real event loop on one thread and producer
 * threads committing single spans at random intervals into their own
 * slots of one ring: every span is released (exported), over thousands
 * of trials; the worst latency is printed. A lost wake-up leaves a span in
 * the ring until the next unrelated event. With one producer no such
 * event ever comes (test_wake_one_producer): the trial times out. With
 * four, another producer's commit could rescue it; that run checks the
 * protocol under concurrent commits (and ThreadSanitizer its accesses). Meant to be run under ThreadSanitizer too
 * (make SAN=tsan CC=clang), which checks the protocol's accesses.
 *
 * With the process registered for MEMBARRIER_CMD_GLOBAL_EXPEDITED (what
 * the library does, ABI 1.3) every span must be released within the
 * latency bound plus 5 ms, except by time the agent's thread or the
 * producer's waited for a CPU meanwhile (tests/common/schedwait.h): a
 * lost wake-up leaves the agent asleep, which no such wait explains.
 * test_wake_one_producer_global runs the protocol with
 * MEMBARRIER_CMD_GLOBAL (a producer that did not register): nothing may
 * be lost, but a commit in the store-buffer window of the agent's first
 * look waits for that membarrier (milliseconds), so its latency is
 * printed, not bounded.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>

#include "agent_fixture.h"
#include "schedwait.h"

#define N_THREADS 4
#define TRIALS 600 /* per thread */
#define BOUND_US 2000

struct wake_fx {
	struct fx f;
	int bell;             /* eventfd: producers write, the agent reads */
	struct loop_watch bell_w;
	int stop;
	int trials;           /* per producer thread */
	long quiet_max_ns;    /* 0: the mixed intervals below; else uniform 0..this */
	uint64_t max_lat_ns[N_THREADS];
	int timeouts;
	bool strict;          /* hold every span to LIMIT_NS (expedited) */
	pid_t agent_tid;
	int over, unexplained;
};

/* latency bound + 5 ms */
#define LIMIT_NS ((uint64_t)BOUND_US * 1000 + 5000000)

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_bell(struct loop_watch *w, uint32_t events)
{
	struct wake_fx *x = container_of(w, struct wake_fx, bell_w);
	uint64_t v;
	(void)events;
	if (read(x->bell, &v, sizeof(v)) == sizeof(v))
		agent_on_doorbell(&x->f.ag, x->f.p);
}

static void *agent_thread(void *arg)
{
	struct wake_fx *x = arg;
	__atomic_store_n(&x->agent_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	while (!__atomic_load_n(&x->stop, __ATOMIC_ACQUIRE)) {
		if (loop_run_once(&x->f.ag.loop, -1) < 0)
			break;
		registry_reap(&x->f.ag);
	}
	return NULL;
}

struct prod_arg {
	struct wake_fx *x;
	uint32_t slot;
};

static void *producer_thread(void *arg)
{
	struct prod_arg *a = arg;
	struct wake_fx *x = a->x;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (a->slot + 1);
	for (int i = 0; i < x->trials; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		/* 0 .. 3 ms of quiet: the agent falls asleep in most trials,
		 * and sometimes the commit races its sleep transition. */
		struct timespec ts = {0, (long)(rng % 3000000)};
		if (rng % 8 == 0) /* long enough for a whole sleep transition */
			ts.tv_nsec = 20000000 + (long)(rng % 20000000);
		if (x->quiet_max_ns)
			ts.tv_nsec = (long)(rng % (uint64_t)x->quiet_max_ns);
		nanosleep(&ts, NULL);
		/* Not fx_span(): its name buffers are shared between threads. */
		struct tr_span s;
		memset(&s, 0, sizeof(s));
		s.trace_id[0] = 1;
		s.trace_id[15] = (uint8_t)i;
		s.span_id[0] = (uint8_t)(a->slot + 1);
		memcpy(s.span_id + 1, &i, sizeof(i));
		s.name = "wake";
		s.kind = 2;
		s.start_ns = 1700000000000000000ull + (uint64_t)i * 1000;
		s.end_ns = s.start_ns + 500;
		s.seq = i;
		s.thread = a->slot;
		uint64_t wa0 = schedwait_task(getpid(), x->agent_tid);
		uint64_t wm0 = schedwait_self();
		uint64_t t0 = mono_ns();
		if (tr_write_span(&x->f.t, a->slot, x->f.scope_a, &s) != 0) {
			__atomic_add_fetch(&x->timeouts, 1, __ATOMIC_RELAXED);
			return NULL;
		}
		while (tr_unreleased(&x->f.t, a->slot)) {
			if (mono_ns() - t0 > 2000000000ull) {
				__atomic_add_fetch(&x->timeouts, 1, __ATOMIC_RELAXED);
				return NULL;
			}
			struct timespec p = {0, 50000};
			nanosleep(&p, NULL);
		}
		uint64_t lat = mono_ns() - t0;
		if (x->strict && lat > LIMIT_NS) {
			uint64_t wa = schedwait_task(getpid(), x->agent_tid) - wa0;
			uint64_t wm = schedwait_self() - wm0;
			bool ok = lat - LIMIT_NS <= wa + wm;
			__atomic_add_fetch(&x->over, 1, __ATOMIC_RELAXED);
			if (!ok)
				__atomic_add_fetch(&x->unexplained, 1, __ATOMIC_RELAXED);
			fprintf(stderr,
				"slot %u trial %d: %llu us; the agent waited %llu us and this thread "
				"%llu us for a CPU: %s\n",
				a->slot, i, (unsigned long long)(lat / 1000),
				(unsigned long long)(wa / 1000), (unsigned long long)(wm / 1000),
				ok ? "explained" : "NOT EXPLAINED");
		}
		if (lat > x->max_lat_ns[a->slot])
			x->max_lat_ns[a->slot] = lat;
	}
	return NULL;
}

static void wake_trials(uint32_t nthreads, int trials, long quiet_max_ns, bool expedited)
{
	static struct wake_fx x;
	struct fx *f = &x.f;
	memset(&x, 0, sizeof(x));
	/* What the library's client does before it registers (ABI 1.3). */
	if (expedited &&
	    syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) != 0)
		skip();
	x.trials = trials;
	x.quiet_max_ns = quiet_max_ns;
	agent_log_set_level(getenv("FX_DEBUG") ? AGENT_LOG_DEBUG : AGENT_LOG_ERROR);
	agent_config_defaults(&f->cfg);
	f->cfg.batch_max_age_us = BOUND_US;
	f->cfg.host_name = strdup("fx-host");
	assert_int_equal(agent_init(&f->ag, &f->cfg, false), 0);
	if (f->ag.wake_mode != AGENT_WAKE_MEMBARRIER) {
		agent_fini(&f->ag);
		agent_config_free(&f->cfg);
		skip();
	}
	f->hold.e.ops = &fx_hold_ops;
	f->hold.keep = false; /* count and release at once */
	snprintf(f->hold.e.name, sizeof(f->hold.e.name), "hold");
	assert_int_equal(agent_add_exporter(&f->ag, &f->hold.e), 0);
	uint8_t res[512];
	size_t rl = tr_encode_resource(res, "wake", true);
	assert_int_equal(tr_create_ex(&f->t, N_THREADS, 16384, SPANRING_PAGE, res, rl), 0);
	x.bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(x.bell >= 0);
	tr_wake_enable(&f->t, &x.bell);
	f->scope_a = tr_add_scope(&f->t, "scope-a", "1.0", NULL);
	const char *why = "";
	assert_int_equal(registry_adopt(&f->ag, dup(f->t.m.fd), f->t.m.l.total_size, getpid(),
					getuid(), getgid(), false, &f->p, &why),
			 0);
	/* What registry_on_request does for a producer of ABI 1.3 (1.2
	 * without SPANRING_REG_F_MB_EXPEDITED). */
	f->p->wake = true;
	f->p->mb_expedited = expedited;
	x.strict = expedited && f->ag.mb_expedited;
	f->p->bell_fd = dup(x.bell); /* only tested for >= 0 by the core */
	x.bell_w.fd = x.bell;
	x.bell_w.fn = on_bell;
	assert_int_equal(loop_add(&f->ag.loop, &x.bell_w, EPOLLIN), 0);

	pthread_t ag_th, th[N_THREADS];
	struct prod_arg args[N_THREADS];
	assert_int_equal(pthread_create(&ag_th, NULL, agent_thread, &x), 0);
	while (!__atomic_load_n(&x.agent_tid, __ATOMIC_ACQUIRE))
		sched_yield();
	for (uint32_t i = 0; i < nthreads; i++) {
		args[i] = (struct prod_arg){.x = &x, .slot = i};
		assert_int_equal(pthread_create(&th[i], NULL, producer_thread, &args[i]), 0);
	}
	for (uint32_t i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&x.stop, 1, __ATOMIC_RELEASE);
	uint64_t one = 1;
	assert_int_equal(write(x.bell, &one, sizeof(one)), (ssize_t)sizeof(one));
	pthread_join(ag_th, NULL);

	uint64_t worst = 0;
	for (int i = 0; i < N_THREADS; i++)
		if (x.max_lat_ns[i] > worst)
			worst = x.max_lat_ns[i];
	fprintf(stderr, "wake: %u producers, %d trials, worst %llu us, %d over %llu us (%d not "
		"explained by waits for a CPU), %llu sleeps (%llu expedited membarriers, %llu in "
		"all), %llu wake-ups, %llu scans\n",
		nthreads, (int)nthreads * trials, (unsigned long long)(worst / 1000), x.over,
		(unsigned long long)(LIMIT_NS / 1000), x.unexplained,
		(unsigned long long)f->ag.st.sleeps,
		(unsigned long long)f->ag.st.membarriers_expedited,
		(unsigned long long)f->ag.st.membarriers, (unsigned long long)f->ag.st.wakeups,
		(unsigned long long)f->ag.st.polls);
	assert_int_equal(x.timeouts, 0);
	assert_int_equal(x.unexplained, 0);
	/* Each way to sleep used the membarrier the producer asked for. */
	if (x.strict)
		assert_int_equal(f->ag.st.membarriers_expedited, f->ag.st.membarriers);
	else
		assert_int_equal(f->ag.st.membarriers_expedited, 0);
	assert_int_equal(f->hold.spans, (uint64_t)nthreads * (uint64_t)trials);
	/* The agent did sleep and was woken by the protocol. */
	assert_true(f->ag.st.sleeps > 0);
	assert_true(f->ag.st.wakeups > 0);
	loop_del(&f->ag.loop, &x.bell_w);
	close(x.bell);
	fx_fini(f);
}

static void test_wake_random_intervals(void **state)
{
	(void)state;
	wake_trials(N_THREADS, TRIALS, 0, true);
}

/* Quiet spells of 0-30 ms: the agent's sleep transition (a scan, E, the
 * membarrier, G) is under way or done at most commits, so most trials
 * race it or wake it. */
static void test_wake_one_producer(void **state)
{
	(void)state;
	wake_trials(1, 500, 30000000, true);
}

/* The same with MEMBARRIER_CMD_GLOBAL (several ms, on the helper thread):
 * a producer that did not say it registered for the expedited command. */
static void test_wake_one_producer_global(void **state)
{
	(void)state;
	wake_trials(1, 300, 30000000, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wake_random_intervals),
		cmocka_unit_test(test_wake_one_producer),
		cmocka_unit_test(test_wake_one_producer_global),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
