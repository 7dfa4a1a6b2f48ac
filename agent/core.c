/* SPDX-License-Identifier: MIT */
/*
 * The agent's core loop: scans of the rings, sleeping until a producer
 * commits, doorbells, adaptive batching, handing batches to the exporters,
 * and the orderly shutdown.
 *
 * Scans and sleep. A scan (agent_on_poll) drains every ring into the
 * current batch. The batch goes out by its deadline, seen_ns +
 * latency_bound, where seen_ns is a time before which every committed span
 * had been walked: no span waits in the agent longer than the bound. When
 * spans flow fast enough to fill a batch by size within the bound, scans
 * run every poll_interval_min and batches fill by size; otherwise the next
 * scan is the batch's deadline, so the batch age grows toward the bound.
 * When a scan finds the batch empty the agent goes to sleep (agent_sleep):
 * it stores need_wakeup in every ring (E), calls
 * membarrier(MEMBARRIER_CMD_GLOBAL), scans again (G) and, if nothing was
 * committed, waits with no timer at all until a doorbell, a connection or
 * an exporter's deadline. The proof is in docs/ABI.md ("Sleeping agent").
 *
 * Polling remains for what cannot wake the agent: rings of producers of
 * ABI minor < 1.2, rings without a doorbell (SPANRING_REG_F_NOREPLY) and
 * kernels without MEMBARRIER_CMD_GLOBAL. While any such ring is
 * registered, an idle agent scans every poll_interval_max.
 *
 * A doorbell while awake drains its producer and, when a slot of it is
 * above its watermark, ships the batch at once so the space comes back.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "atomics.h"
#include "batch.h"
#include "ctl.h"
#include "drain.h"
#include "log.h"
#include "registry.h"

/* A drain that ran out of memory is tried again this much later. */
#define AGENT_NOMEM_RETRY_US 1000

static void agent_on_poll(struct loop_timer *t);
static void agent_on_house(struct loop_timer *t);
static void agent_mb_start(struct agent *ag);
static void agent_mb_stop(struct agent *ag);
static void agent_on_signal(struct loop_watch *w, uint32_t events);
static void agent_on_registered(struct agent_producer *p);
static void agent_on_bell(struct agent_producer *p);
static void agent_ship(struct agent *ag, struct batch *b);

static const struct registry_events agent_registry_events = {
	.registered = agent_on_registered,
	.closed = agent_producer_closed,
	.doorbell = agent_on_bell,
};

static void agent_after_event(struct loop *l)
{
	agent_settle(container_of(l, struct agent, loop));
}

/*
 * host.id: the configured host_id, else the machine id (/etc/machine-id,
 * which systemd and the semantic conventions use for it), else none.
 */
static void agent_host_id(const struct agent_config *cfg, char *out, size_t n)
{
	out[0] = 0;
	if (cfg->host_id) {
		snprintf(out, n, "%s", cfg->host_id);
		return;
	}
	static const char *const files[] = {"/etc/machine-id", "/var/lib/dbus/machine-id"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int fd = open(files[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		char buf[64];
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		size_t len = 0;
		while (len < (size_t)r && ((buf[len] >= '0' && buf[len] <= '9') ||
					   (buf[len] >= 'a' && buf[len] <= 'f')))
			len++;
		if (len == 32 && len < n) { /* 32 lower-case hex digits, as machine-id(5) says */
			memcpy(out, buf, len);
			out[len] = 0;
			return;
		}
	}
}

static int agent_signals(struct agent *ag)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Blocked, so that they are only ever read from the signalfd. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	ag->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (ag->sig_fd < 0)
		return -errno;
	ag->sig_w.fd = ag->sig_fd;
	ag->sig_w.fn = agent_on_signal;
	return loop_add(&ag->loop, &ag->sig_w, EPOLLIN);
}

int agent_init(struct agent *ag, struct agent_config *cfg, bool with_sockets)
{
	int err;
	memset(ag, 0, sizeof(*ag));
	ag->cfg = cfg;
	agent_exp_host_init(ag);
	ag->listen_fd = ag->ctl_fd = ag->metrics_fd = ag->sig_fd = -1;
	ag->start_ns = agent_now_ns();
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ag->start_wall_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	err = loop_init(&ag->loop);
	if (err)
		return err;
	if (!ag->loop.pwait2)
		log_info("timers: a timerfd (epoll_pwait2 is not available here)");
	ag->loop.after = agent_after_event;
	ag->reg_ev = &agent_registry_events;
	if (cfg->host_name)
		snprintf(ag->host_name, sizeof(ag->host_name), "%s", cfg->host_name);
	else if (gethostname(ag->host_name, sizeof(ag->host_name) - 1) < 0)
		ag->host_name[0] = 0;
	agent_host_id(cfg, ag->host_id, sizeof(ag->host_id));
	ag->poll_t.fn = agent_on_poll;
	ag->house_t.fn = agent_on_house;
	ag->poll_us = cfg->poll_min_us;
	ag->mb_req = ag->mb_done = -1;
	agent_wake_setup(ag);
	if (with_sockets) {
		if ((err = agent_signals(ag)) || (err = registry_listen(ag)) ||
		    (err = ctl_listen(ag)))
			goto fail;
		if (cfg->metrics_port && (err = metrics_listen(ag)))
			goto fail;
	}
	if (ag->wake_mode == AGENT_WAKE_MEMBARRIER)
		agent_mb_start(ag);
	/* The first scan finds nothing to do and puts the agent to sleep. */
	ag->seen_ns = ag->scan_ns = agent_now_ns();
	loop_timer_arm(&ag->loop, &ag->poll_t, ag->seen_ns);
	return 0;
fail:
	agent_fini(ag);
	return err;
}

void agent_fini(struct agent *ag)
{
	/* What was not delivered by now stays in the rings: the tails do not
	 * move over it, so the next agent exports it (at-least-once). */
	ag->no_release = true;
	agent_mb_stop(ag);
	if (ag->cur) {
		struct batch *b = ag->cur;
		ag->cur = NULL;
		batch_unref(b);
	}
	for (size_t i = 0; i < ag->n_exp; i++)
		ag->exp[i]->ops->destroy(ag->exp[i]);
	ag->n_exp = 0;
	agent_settle(ag);
	registry_close_listener(ag);
	ctl_close(ag);
	metrics_close(ag);
	while (ag->producers)
		registry_free(ag->producers);
	batch_pool_free(ag);
	if (ag->sig_fd >= 0) {
		loop_del(&ag->loop, &ag->sig_w);
		close(ag->sig_fd);
		ag->sig_fd = -1;
	}
	loop_fini(&ag->loop);
}

/*
 * The deadline the agent aims at, after the time before which every
 * committed span had been walked: 7/8 of latency_bound, so that the
 * scan, the batch's framing and its hand-off fit within the bound.
 */
static uint64_t agent_aim_ns(const struct agent *ag)
{
	uint64_t b = ag->cfg->batch_max_age_us * 1000;
	return b - b / 8;
}

/* Make sure a scan runs by when_ns; the agent is awake from now on. */
static void agent_scan_by(struct agent *ag, uint64_t when_ns)
{
	ag->armed = false;
	ag->arming = false;
	if (ag->stopping)
		return;
	loop_timer_arm_by(&ag->loop, &ag->poll_t, when_ns);
}

/* A drain made the batch being filled: from now on it goes out by its
 * deadline. */
static void agent_batch_timed(struct agent *ag)
{
	if (!ag->cur || ag->cur_timed)
		return;
	ag->cur_timed = true;
	/* Its spans were committed after seen_ns: the deadline keeps each
	 * within latency_bound (batch_max_age_us) of its commit. */
	ag->cur_deadline_ns = ag->seen_ns + agent_aim_ns(ag);
	agent_scan_by(ag, ag->cur_deadline_ns);
}

/* Drain p into the current batch, shipping each batch that fills up on
 * the way; a ring that broke the ABI is quarantined. Adds the bytes
 * walked to *walked. */
static enum drain_status agent_drain(struct agent *ag, struct agent_producer *p, uint64_t *walked)
{
	if (p->state != PROD_ACTIVE || !p->mapped)
		return DRAIN_DONE;
	ag->st.drain_passes++;
	struct drain_pass d = {.cur = &ag->cur,
			       .batch_max_bytes = ag->cfg->batch_max_bytes,
			       .max_scope_bytes = ag->cfg->max_scope_bytes};
	enum drain_status st;
	while ((st = drain_producer(p, &d)) == DRAIN_BATCH_FULL) {
		agent_batch_timed(ag);
		agent_flush(ag);
	}
	agent_batch_timed(ag);
	if (st == DRAIN_BROKEN) {
		producer_quarantine(p, "%s", d.why);
		return st;
	}
	*walked += d.walked;
	if (st == DRAIN_NOMEM) {
		/* Its spans stay in the ring, unreleased: walked again soon. */
		ag->st.drain_nomem++;
		AGENT_LOG_RL(AGENT_LOG_ERROR,
			     "producer %llu (pid %d): out of memory while draining; its spans stay "
			     "in the ring and are walked again",
			     (unsigned long long)p->id, (int)p->pid);
		agent_poll_soon(ag, AGENT_NOMEM_RETRY_US);
	}
	return st;
}

/* Give back the ring bytes of one batch nobody holds any more. */
static void agent_release(struct agent *ag, struct batch *b)
{
	for (size_t i = 0; i < b->nsegs; i++)
		b->segs[i].p->inflight_spans -= b->segs[i].nspans;
	for (size_t i = 0; i < b->nchunks; i++) {
		struct batch_chunkref *c = &b->chunks[i];
		if (!ag->no_release)
			drain_chunk_release(c->p, c->slot, c->seq);
		c->p->inflight_chunks--;
		/* Only marks the producer (at its last chunk): the later
		 * references of this loop never point at a freed producer. */
		registry_maybe_free(c->p);
	}
}

void agent_settle(struct agent *ag)
{
	struct batch *b;
	while ((b = batch_take_done(ag))) {
		agent_release(ag, b);
		bool was_full = ag->inflight_batches >= ag->cfg->max_inflight_batches;
		batch_recycle(b);
		/* Back-pressure ends (agent_drain_all): scan again. */
		if (was_full && !ag->stopping)
			agent_poll_soon(ag, 0);
	}
}

void agent_flush(struct agent *ag)
{
	struct batch *b = ag->cur;
	if (!b)
		return;
	ag->cur = NULL;
	ag->cur_timed = false;
	agent_ship(ag, b);
	batch_unref(b);
	agent_settle(ag);
}

/* Hand b to every exporter (each takes its own reference to keep it). */
static void agent_ship(struct agent *ag, struct batch *b)
{
	if (b->spans == 0) {
		/* Only control records: nothing to export, released at once. */
		ag->st.empty_batches++;
		return;
	}
	if (batch_finalize(b)) {
		AGENT_LOG_RL(AGENT_LOG_ERROR, "batch: out of memory framing %llu spans; let go",
			     (unsigned long long)b->spans);
		for (size_t i = 0; i < ag->n_exp; i++) {
			ag->exp[i]->st.let_go_batches++;
			ag->exp[i]->st.let_go_spans += b->spans;
		}
		return;
	}
	ag->st.batches++;
	ag->st.spans += b->spans;
	ag->st.bytes += b->msg_len;
	if (ag->on_batch)
		ag->on_batch(ag, b);
	for (size_t i = 0; i < ag->n_exp; i++)
		(void)ag->exp[i]->ops->submit(ag->exp[i], b);
}

uint64_t agent_drain_all(struct agent *ag)
{
	uint64_t walked = 0;
	ag->drain_complete = true;
	for (struct agent_producer *p = ag->producers; p; p = p->next) {
		if (p->zombie || p->state != PROD_ACTIVE || (p->conn_closed && p->final_drained))
			continue;
		/* Back-pressure: while exporters hold this many batches, spans
		 * wait in the rings (which is what the rings are for). The
		 * batch that brings the count below the limit schedules a scan
		 * (batch_unref). */
		if (ag->inflight_batches >= ag->cfg->max_inflight_batches) {
			ag->st.paused_inflight++;
			ag->drain_complete = false;
			break;
		}
		enum drain_status st = agent_drain(ag, p, &walked);
		if (st == DRAIN_NOMEM)
			ag->drain_complete = false; /* agent_drain set the retry */
		if (p->conn_closed && st != DRAIN_NOMEM) {
			p->final_drained = true;
			registry_maybe_free(p);
		}
	}
	return walked;
}

void agent_poll_soon(struct agent *ag, uint64_t us)
{
	agent_scan_by(ag, agent_now_ns() + us * 1000);
}

static int agent_membarrier(int cmd)
{
	return (int)syscall(__NR_membarrier, cmd, 0, 0);
}

static void agent_armed_check(struct agent *ag, int mb_err);
static bool agent_mb_request(struct agent *ag);

/* The helper thread: reads a request number from the mb_req pipe, calls
 * membarrier, writes the number back on mb_done (| MB_FAILED if it
 * failed). Requests are served in order, so the answer k means that a
 * membarrier began after request k was written (after its E). It touches
 * nothing else of the agent. */
#define MB_FAILED (1ull << 63)
#define MB_STOP UINT64_MAX
static void *agent_mb_main(void *arg)
{
	const int *fds = arg;
	for (;;) {
		uint64_t v;
		ssize_t r = read(fds[0], &v, sizeof(v));
		if (r < 0 && errno == EINTR)
			continue;
		if (r != sizeof(v) || v == MB_STOP)
			return NULL; /* closed, or told to stop */
		if (agent_membarrier(MEMBARRIER_CMD_GLOBAL) < 0)
			v |= MB_FAILED;
		if (write(fds[1], &v, sizeof(v)) != sizeof(v))
			return NULL;
	}
}

static void agent_on_mb_done(struct loop_watch *w, uint32_t events)
{
	struct agent *ag = container_of(w, struct agent, mb_w);
	uint64_t v, last = 0;
	bool failed = false;
	(void)events;
	while (read(ag->mb_done, &v, sizeof(v)) == sizeof(v)) {
		failed |= (v & MB_FAILED) != 0;
		last = v & ~MB_FAILED;
	}
	if (last != ag->mb_seq)
		return; /* an older answer: the current request is still on its way */
	ag->mb_busy = false;
	if (ag->mb_want && ag->arming && !failed) {
		/* E was stored again after this request was made: it takes a
		 * membarrier that begins after it. */
		if (agent_mb_request(ag))
			return;
		ag->st.membarriers++;
		agent_armed_check(ag, agent_membarrier(MEMBARRIER_CMD_GLOBAL) < 0);
		return;
	}
	ag->mb_want = false;
	if (ag->arming)
		agent_armed_check(ag, failed);
}

/* One membarrier in flight at most: a new E while one runs waits for it
 * and then asks again (agent_on_mb_done). */
static bool agent_mb_request(struct agent *ag)
{
	if (ag->mb_busy) {
		ag->mb_want = true;
		return true;
	}
	uint64_t seq = ag->mb_seq + 1;
	if (write(ag->mb_req, &seq, sizeof(seq)) != sizeof(seq))
		return false;
	ag->mb_seq = seq;
	ag->mb_busy = true;
	ag->mb_want = false;
	ag->st.membarriers++;
	return true;
}

/* Start the helper thread; without it (no thread, no pipe) the membarrier
 * runs inline and blocks the loop for its milliseconds. */
static void agent_mb_start(struct agent *ag)
{
	int req[2] = {-1, -1}, done[2] = {-1, -1};
	if (pipe2(req, O_CLOEXEC) || pipe2(done, O_CLOEXEC | O_NONBLOCK)) {
		for (int i = 0; i < 2; i++) {
			if (req[i] >= 0)
				close(req[i]);
			if (done[i] >= 0)
				close(done[i]);
		}
		return;
	}
	ag->mb_req = req[1];
	ag->mb_done = done[0];
	ag->mb_fds[0] = req[0];
	ag->mb_fds[1] = done[1];
	ag->mb_w.fd = ag->mb_done;
	ag->mb_w.fn = agent_on_mb_done;
	if (loop_add(&ag->loop, &ag->mb_w, EPOLLIN))
		goto fail;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 256 * 1024);
	/* No signal of the agent's may land on the helper. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&ag->mb_th, &a, agent_mb_main, ag->mb_fds);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	if (e) {
		loop_del(&ag->loop, &ag->mb_w);
		close(req[0]);
		close(done[1]);
		goto fail;
	}
	ag->mb_thread = true;
	return;
fail:
	close(ag->mb_req);
	close(ag->mb_done);
	ag->mb_req = ag->mb_done = -1;
}

static void agent_mb_stop(struct agent *ag)
{
	if (!ag->mb_thread)
		return;
	/* The thread exits at this value, after the membarrier it may be in
	 * (milliseconds). */
	uint64_t stop = MB_STOP;
	if (write(ag->mb_req, &stop, sizeof(stop)) < 0)
		(void)0;
	pthread_join(ag->mb_th, NULL);
	loop_del(&ag->loop, &ag->mb_w);
	close(ag->mb_req);
	close(ag->mb_done);
	close(ag->mb_fds[0]);
	close(ag->mb_fds[1]);
	ag->mb_req = ag->mb_done = -1;
	ag->mb_thread = false;
}

void agent_wake_setup(struct agent *ag)
{
	int q = agent_membarrier(MEMBARRIER_CMD_QUERY);
	const char *env = getenv("SPANRING_AGENT_POLL");
	if (env && *env && strcmp(env, "0") != 0) {
		ag->wake_mode = AGENT_WAKE_POLL;
		log_info("wake-up: polling every %lluus (SPANRING_AGENT_POLL is set)",
			 (unsigned long long)ag->cfg->poll_max_us);
	} else if (q >= 0 && (q & MEMBARRIER_CMD_GLOBAL)) {
		ag->wake_mode = AGENT_WAKE_MEMBARRIER;
		ag->mb_expedited = (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0;
		log_info("wake-up: membarrier(MEMBARRIER_CMD_GLOBAL%s): the agent sleeps until a "
			 "producer commits (latency bound %lluus)",
			 ag->mb_expedited ? "_EXPEDITED while every producer is registered for it, "
					    "else MEMBARRIER_CMD_GLOBAL"
					  : "; no MEMBARRIER_CMD_GLOBAL_EXPEDITED here",
			 (unsigned long long)ag->cfg->batch_max_age_us);
	} else {
		ag->wake_mode = AGENT_WAKE_POLL;
		log_warn("wake-up: membarrier(MEMBARRIER_CMD_GLOBAL) is not available (%s): "
			 "polling every %lluus",
			 q < 0 ? strerror(errno) : "not supported by this kernel",
			 (unsigned long long)ag->cfg->poll_max_us);
	}
}

/*
 * Nothing is waiting in the current batch: arm every ring and sleep (E,
 * membarrier, G of the wake-up protocol), or, while a ring cannot wake the
 * agent, scan again after poll_interval_max.
 */
static void agent_sleep(struct agent *ag)
{
	const uint64_t t0 = agent_now_ns();
	bool poll = ag->wake_mode != AGENT_WAKE_MEMBARRIER;
	for (struct agent_producer *p = ag->producers; p && !poll; p = p->next) {
		if (p->zombie || p->state != PROD_ACTIVE || p->conn_closed)
			continue;
		if (!p->wake || p->bell_fd < 0)
			poll = true;
	}
	if (poll) {
		ag->poll_us = ag->cfg->poll_max_us;
		agent_scan_by(ag, t0 + ag->poll_us * 1000);
		return;
	}
	/* E: the agent's only writes of need_wakeup. A producer may clear or
	 * set its own at will; that changes only when its own ring is looked
	 * at (its doorbell is its own fd in the epoll set). */
	bool expedited = ag->mb_expedited;
	for (struct agent_producer *p = ag->producers; p; p = p->next)
		if (!p->zombie && p->state == PROD_ACTIVE && !p->conn_closed && p->wake) {
			sr_store_relaxed_32(&sr_cons_hdr(&p->map)->need_wakeup,
					    SPANRING_WAKE_ASLEEP);
			expedited &= p->mb_expedited;
		}
	/* Orders E before G in this thread (and is what TSan sees). */
	sr_fence_full();
	if (expedited) {
		/* (ABI 1.3) Every armed producer's process is registered for
		 * the expedited command: the membarrier takes microseconds, so
		 * it runs here and G follows at once (no G0, no helper). */
		ag->st.membarriers++;
		ag->st.membarriers_expedited++;
		if (agent_membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0) {
			ag->arming = true;
			ag->arm_t0 = t0;
			agent_armed_check(ag, 0);
			return;
		}
		log_warn("wake-up: membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) failed (%s); "
			 "MEMBARRIER_CMD_GLOBAL from now on",
			 strerror(errno));
		ag->mb_expedited = false;
	}
	/* A first look right away: a commit since the last scan that found
	 * need_wakeup clear (its producer had taken the previous wake-up)
	 * is visible here in practice; it must not wait for the membarrier
	 * (milliseconds). G after the membarrier is the proof. */
	ag->scan_ns = t0;
	uint64_t walked = agent_drain_all(ag);
	if (walked || ag->cur || !ag->drain_complete) {
		if (ag->drain_complete)
			ag->seen_ns = t0;
		if (ag->cur)
			agent_scan_by(ag, ag->cur_deadline_ns);
		else if (ag->drain_complete)
			agent_scan_by(ag, agent_now_ns());
		return;
	}
	ag->arming = true;
	ag->arm_t0 = t0;
	/* Meanwhile the loop serves doorbells (a producer that saw E rings)
	 * and everything else; agent_armed_check() does G. */
	if (ag->mb_thread && agent_mb_request(ag))
		return;
	ag->st.membarriers++;
	agent_armed_check(ag, agent_membarrier(MEMBARRIER_CMD_GLOBAL) < 0);
}

/* The membarrier after E returned: G, then sleep if nothing was committed. */
static void agent_armed_check(struct agent *ag, int mb_err)
{
	if (!ag->arming)
		return;
	ag->arming = false;
	if (mb_err) {
		log_warn("wake-up: membarrier(MEMBARRIER_CMD_GLOBAL) failed; polling from now on");
		ag->wake_mode = AGENT_WAKE_POLL;
		agent_scan_by(ag, agent_now_ns());
		return;
	}
	if (ag->stopping || ag->poll_t.armed)
		return; /* woken meanwhile: a scan is due anyway */
	const uint64_t t0 = ag->arm_t0;
	/* G: every head stored before the membarrier is visible now; a head
	 * stored after it finds need_wakeup set (F) and rings. */
	ag->scan_ns = t0;
	uint64_t walked = agent_drain_all(ag);
	if (ag->drain_complete)
		ag->seen_ns = t0;
	if (ag->cur) {
		agent_scan_by(ag, ag->cur_deadline_ns);
		return;
	}
	if (!ag->drain_complete)
		return; /* back-pressure: batch_unref schedules the next scan */
	if (walked) {
		agent_scan_by(ag, agent_now_ns()); /* a batch filled by size meanwhile */
		return;
	}
	ag->armed = true;
	ag->st.sleeps++;
}

static void agent_on_poll(struct loop_timer *t)
{
	struct agent *ag = container_of(t, struct agent, poll_t);
	if (ag->stopping)
		return;
	ag->st.polls++;
	const uint64_t start = agent_now_ns();
	const uint64_t prev = ag->scan_ns;
	const uint64_t nomem0 = ag->st.drain_nomem;
	ag->scan_ns = start;
	uint64_t walked = agent_drain_all(ag);
	if (ag->drain_complete)
		ag->seen_ns = start;
	uint64_t now = agent_now_ns();
	if (ag->cur && (ag->cfg->batch_max_age_us == 0 || now >= ag->cur_deadline_ns))
		agent_flush(ag);
	/* This scan chooses the next one (a batch made during the drain
	 * asked for its deadline, which may have passed and been served). */
	loop_timer_cancel(&ag->loop, &ag->poll_t);
	if (ag->st.drain_nomem != nomem0) {
		/* Out of memory: what was not walked is walked again soon. */
		agent_poll_soon(ag, AGENT_NOMEM_RETRY_US);
		if (ag->cur)
			agent_scan_by(ag, ag->cur_deadline_ns);
		return;
	}
	/* Fast enough to fill a batch by size within the bound: scan often,
	 * batches go out by size (as drain_slot fills them). */
	uint64_t bound_ns = ag->cfg->batch_max_age_us * 1000;
	if (walked && start > prev &&
	    (double)walked * (double)bound_ns >=
		    (double)ag->cfg->batch_max_bytes * (double)(start - prev)) {
		ag->poll_us = ag->cfg->poll_min_us;
		agent_scan_by(ag, now + ag->poll_us * 1000);
		return;
	}
	if (ag->cur) {
		agent_scan_by(ag, ag->cur_deadline_ns);
		return;
	}
	if (!ag->drain_complete)
		return; /* back-pressure: batch_unref schedules the next scan */
	/* Spans came since the previous scan (walked now, or by a doorbell
	 * and shipped since): look again when those committed from now on
	 * are due, rather than sleep (a sleep costs a membarrier, tens of
	 * microseconds of CPU here, and a doorbell per producer). */
	uint64_t shipped = ag->st.batches + ag->st.empty_batches;
	bool active = walked || shipped != ag->shipped_at_scan;
	ag->shipped_at_scan = shipped;
	if (active) {
		agent_scan_by(ag, start + agent_aim_ns(ag));
		return;
	}
	agent_sleep(ag);
}

static void agent_on_house(struct loop_timer *t)
{
	struct agent *ag = container_of(t, struct agent, house_t);
	registry_housekeeping(ag);
	ctl_housekeeping(ag);
	metrics_housekeeping(ag);
	/* Control and metrics connections have timeouts: checked each second
	 * while any is open, not when none is (no periodic wake-up). */
	if (ag->ctl_conns || ag->http_conns)
		loop_timer_arm_by(&ag->loop, &ag->house_t, agent_now_ns() + 1000000000ull);
}

void agent_producer_closed(struct agent_producer *p)
{
	struct agent *ag = p->ag;
	registry_close_conn(p);
	p->conn_closed = true;
	agent_log(p->ending ? AGENT_LOG_DEBUG : AGENT_LOG_INFO,
		  "producer %llu (pid %d) disconnected; draining what it committed",
		  (unsigned long long)p->id, (int)p->pid);
	/* The producer is gone (or closed): its heads are final. A record
	 * is visible only once whole, so what is below head is complete.
	 * This is also what serves a producer that died between its commit
	 * and its doorbell. */
	if (p->state == PROD_ACTIVE && ag->inflight_batches < ag->cfg->max_inflight_batches) {
		uint64_t walked = 0;
		p->final_drained = agent_drain(ag, p, &walked) != DRAIN_NOMEM;
	}
	if (p->state == PROD_ACTIVE && !p->final_drained)
		agent_poll_soon(ag, 0); /* paused: retried by a scan */
	else if (ag->cur)
		agent_scan_by(ag, ag->cur_deadline_ns);
	registry_maybe_free(p);
}

void agent_on_doorbell(struct agent *ag, struct agent_producer *p)
{
	if (ag->stopping)
		return;
	bool was_armed = ag->armed, was_asleep = ag->armed || ag->arming;
	ag->armed = false;
	if (was_armed)
		ag->st.wakeups++;
	if (ag->inflight_batches >= ag->cfg->max_inflight_batches)
		return; /* the batch that frees room schedules a scan */
	uint64_t spans = p->spans, lost = p->lost;
	/* A watermark doorbell (not a wake-up): judged before the drain. */
	bool full = drain_producer_above_watermark(p, ag->cfg->watermark_pct);
	uint64_t walked = 0;
	agent_drain(ag, p, &walked);
	bool news = walked > 0 || p->spans != spans || p->lost != lost;
	if (full) {
		/* A slot filled up: ship now, so its space comes back (at a few
		 * M spans/s a 512 KiB slot fills in half a millisecond), and
		 * scan again soon. */
		agent_flush(ag);
		ag->poll_us = ag->cfg->poll_min_us;
		agent_scan_by(ag, agent_now_ns() + ag->poll_us * 1000);
		return;
	}
	if (ag->cur) {
		/* Woken with spans: they go by their batch's deadline (at once
		 * after a quiet spell). */
		agent_scan_by(ag, ag->cur_deadline_ns);
		return;
	}
	/* Nothing waits in a batch (a late or hostile doorbell). The
	 * producer may have taken its need_wakeup: the agent sleeps again
	 * only through a scan and E, which such doorbells bring about at
	 * most once per latency bound. */
	if (!news && was_asleep)
		ag->st.spurious++;
	uint64_t now = agent_now_ns();
	uint64_t when = ag->seen_ns + agent_aim_ns(ag);
	agent_scan_by(ag, when > now ? when : now);
}

static void agent_on_bell(struct agent_producer *p)
{
	agent_on_doorbell(p->ag, p);
}

/* Spans written before registration are waiting: scan now. */
static void agent_on_registered(struct agent_producer *p)
{
	agent_poll_soon(p->ag, 0);
}

void agent_reopen(struct agent *ag)
{
	size_t n = 0, failed = 0;
	for (size_t i = 0; i < ag->n_exp; i++) {
		struct exporter *e = ag->exp[i];
		if (e->ops->reopen) {
			n++;
			/* A failure is logged by the output, naming its path. */
			failed += e->ops->reopen(e) != 0;
		}
	}
	if (failed)
		log_warn("SIGHUP: %zu of %zu output files could not be reopened; retried at the "
			 "next write",
			 failed, n);
	else
		log_info("SIGHUP: output files reopened");
}

void agent_stop(struct agent *ag)
{
	if (ag->stopping) {
		log_warn("second stop signal: exiting without waiting for exporters");
		ag->exit_now = true;
		return;
	}
	ag->stopping = true;
	log_info("stopping: no new producers; draining every ring and flushing exporters");
	/* Rings handed over before the stop are taken, then no more. */
	registry_admit_queued(ag);
	registry_close_listener(ag);
	loop_timer_cancel(&ag->loop, &ag->poll_t);
	/* Pending connections will never register now. */
	struct agent_producer *next;
	for (struct agent_producer *p = ag->producers; p; p = next) {
		next = p->next;
		if (p->state == PROD_PENDING)
			registry_free(p);
	}
	/* One last pass over every ring, whatever the in-flight limit: every
	 * span committed by now goes out. */
	for (struct agent_producer *p = ag->producers; p; p = p->next) {
		if (p->zombie || p->state != PROD_ACTIVE || (p->conn_closed && p->final_drained))
			continue;
		uint64_t walked = 0;
		if (agent_drain(ag, p, &walked) != DRAIN_NOMEM && p->conn_closed)
			p->final_drained = true;
	}
	agent_flush(ag);
	ag->stop_deadline_ns = agent_now_ns() + ag->cfg->shutdown_timeout_us * 1000;
}

static void agent_on_signal(struct loop_watch *w, uint32_t events)
{
	struct agent *ag = container_of(w, struct agent, sig_w);
	struct signalfd_siginfo si;
	(void)events;
	while (read(ag->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			agent_reopen(ag);
		} else {
			log_info("received %s", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			agent_stop(ag);
		}
	}
}

/*
 * Exiting while exporters still hold batches: say what becomes of their
 * spans. The agent does not release them (no_release), so a producer that
 * is still connected keeps them in its ring and the next agent exports
 * them when it reconnects; the ring of a producer that has exited goes
 * away with this agent, and those spans are lost.
 */
static void agent_report_undelivered(struct agent *ag, const char *why)
{
	uint64_t live_spans = 0, gone_spans = 0;
	unsigned live = 0, gone = 0;
	for (struct agent_producer *p = ag->producers; p; p = p->next) {
		if (!p->inflight_spans)
			continue;
		if (p->conn_closed) {
			gone++;
			gone_spans += p->inflight_spans;
		} else {
			live++;
			live_spans += p->inflight_spans;
		}
	}
	char a[160] = "", b[160] = "";
	if (live)
		snprintf(a, sizeof(a), "; %llu spans of %u running producer%s stay in their rings "
			 "for the next agent",
			 (unsigned long long)live_spans, live, live == 1 ? "" : "s");
	if (gone)
		snprintf(b, sizeof(b), "; %llu spans of %u producer%s that %s exited are lost",
			 (unsigned long long)gone_spans, gone, gone == 1 ? "" : "s",
			 gone == 1 ? "has" : "have");
	log_warn("%s: exporters still hold %u batches%s%s", why, ag->inflight_batches, a, b);
}

int agent_run(struct agent *ag)
{
	int status = 0;
	while (!ag->exit_now) {
		int timeout = -1;
		if (ag->stopping) {
			size_t held = 0;
			uint64_t now = agent_now_ns();
			/* A producer that disconnected meanwhile was drained into a
			 * new batch: it goes out now, not at its age limit. */
			agent_flush(ag);
			for (size_t i = 0; i < ag->n_exp; i++)
				held += ag->exp[i]->ops->flush(ag->exp[i], ag->stop_deadline_ns);
			agent_settle(ag);
			if (held == 0 && !ag->cur)
				break;
			if (now >= ag->stop_deadline_ns) {
				agent_report_undelivered(ag, "shutdown timeout");
				status = 0;
				break;
			}
			/* Exporters progress by their own events and timers: wait
			 * for one of them, or for the deadline. */
			uint64_t left_ms = (ag->stop_deadline_ns - now) / 1000000 + 1;
			timeout = left_ms < INT32_MAX ? (int)left_ms : INT32_MAX;
		}
		int r = loop_run_once(&ag->loop, timeout);
		if (r < 0) {
			log_error("loop: epoll_wait: %s", strerror(-r));
			status = 1;
			break;
		}
		registry_reap(ag);
	}
	if (ag->exit_now && ag->inflight_batches)
		agent_report_undelivered(ag, "second stop signal");
	/* Drained is not delivered: each exporter's own counts. */
	char per[512] = "";
	size_t off = 0;
	for (size_t i = 0; i < ag->n_exp && off < sizeof(per); i++) {
		const struct exp_stats *x = &ag->exp[i]->st;
		int k = snprintf(per + off, sizeof(per) - off, "%s %s %llu", i ? "," : "; delivered:",
				 ag->exp[i]->name, (unsigned long long)x->spans);
		if (k > 0 && x->let_go_spans && (size_t)k < sizeof(per) - off)
			k += snprintf(per + off + (size_t)k, sizeof(per) - off - (size_t)k,
				      " (let go %llu)", (unsigned long long)x->let_go_spans);
		if (k > 0)
			off += (size_t)k;
	}
	log_info("exiting: %llu spans drained in %llu batches, %llu producers served%s",
		 (unsigned long long)ag->st.spans, (unsigned long long)ag->st.batches,
		 (unsigned long long)ag->st.registered, per);
	return status;
}
