/* SPDX-License-Identifier: MIT */
/*
 * The agent's core loop: adaptive polling of the rings, doorbells,
 * batching by size and age, handing batches to the exporters, and the
 * orderly shutdown.
 *
 * Polling: while spans flow the rings are polled every poll_interval_min;
 * each idle round doubles the interval up to poll_interval_max. A doorbell
 * (a producer's slot crossed its watermark) drains that producer at once
 * and resets the interval.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "exp.h"
#include "exp_otlp.h"
#include "instances.h"
#include "log.h"

static void agent_on_poll(struct loop_timer *t);
static void agent_on_batch_timer(struct loop_timer *t);
static void agent_on_house(struct loop_timer *t);
static void agent_on_signal(struct loop_watch *w, uint32_t events);

int agent_add_exporter(struct agent *ag, struct exporter *e)
{
	if (ag->n_exp >= AGENT_MAX_EXPORTERS)
		return -ENOSPC;
	e->ag = ag;
	ag->exp[ag->n_exp++] = e;
	return 0;
}

int agent_exporters_from_config(struct agent *ag)
{
	const struct agent_config *c = ag->cfg;
	struct exporter *e;
	int err;
	if (c->exporters & AGENT_EXP_FILE) {
		struct exp_file_opts o = {.path = c->file_path,
					  .rotate_bytes = c->file_rotate_bytes,
					  .rotate_keep = c->file_rotate_keep,
					  .retry_max_us = c->export_retry_max_us,
					  .mode = c->output_mode};
		if ((err = exp_file_create(ag, &o, &e)) || (err = agent_add_exporter(ag, e)))
			return err;
	}
	if (c->exporters & AGENT_EXP_JSON) {
		if ((err = exp_json_create(ag, c->json_path, c->json_rotate_bytes,
					   c->json_rotate_keep, c->output_mode, &e)) ||
		    (err = agent_add_exporter(ag, e)))
			return err;
	}
	if (c->exporters & AGENT_EXP_CONSOLE) {
		if ((err = exp_console_create(ag, c->console_path, c->output_mode, &e)) ||
		    (err = agent_add_exporter(ag, e)))
			return err;
	}
	if (c->exporters & AGENT_EXP_NULL) {
		if ((err = exp_null_create(ag, &e)) || (err = agent_add_exporter(ag, e)))
			return err;
	}
	if (c->exporters & (AGENT_EXP_OTLP | AGENT_EXP_OTLP_HTTP | AGENT_EXP_OTLP_GRPC)) {
		if ((err = exp_otlp_create(ag, &e)) || (err = agent_add_exporter(ag, e)))
			return err;
	}
	/* Named instances TYPE/NAME, each with its own settings. */
	for (size_t i = 0; i < c->n_inst; i++) {
		const struct exp_instance *in = &c->inst[i];
		if (!in->enabled || !in->named)
			continue;
		struct agent_config m;
		inst_merged_config(c, in, &m);
		e = NULL;
		switch (in->type) {
		case AGENT_EXP_FILE: {
			struct exp_file_opts o = {.path = m.file_path,
						  .rotate_bytes = m.file_rotate_bytes,
						  .rotate_keep = m.file_rotate_keep,
						  .retry_max_us = m.export_retry_max_us,
						  .mode = m.output_mode};
			err = exp_file_create(ag, &o, &e);
			break;
		}
		case AGENT_EXP_JSON:
			err = exp_json_create(ag, m.json_path, m.json_rotate_bytes, m.json_rotate_keep,
					      m.output_mode, &e);
			break;
		case AGENT_EXP_CONSOLE:
			err = exp_console_create(ag, m.console_path, m.output_mode, &e);
			break;
		case AGENT_EXP_NULL:
			err = exp_null_create(ag, &e);
			break;
		default: {
			err = exp_otlp_create_cfg(ag, &m, inst_forced_protocol(in, &m), in->id, &e);
			break;
		}
		}
		if (err) {
			log_error("exporter %s: cannot start: %s", in->id, strerror(-err));
			return err;
		}
		snprintf(e->name, sizeof(e->name), "%s", in->id);
		if ((err = agent_add_exporter(ag, e))) {
			e->ops->destroy(e);
			return err;
		}
	}
	return 0;
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
	ag->listen_fd = ag->ctl_fd = ag->metrics_fd = ag->sig_fd = -1;
	ag->start_ns = agent_now_ns();
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ag->start_wall_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	err = loop_init(&ag->loop);
	if (err)
		return err;
	if (cfg->host_name)
		snprintf(ag->host_name, sizeof(ag->host_name), "%s", cfg->host_name);
	else if (gethostname(ag->host_name, sizeof(ag->host_name) - 1) < 0)
		ag->host_name[0] = 0;
	agent_host_id(cfg, ag->host_id, sizeof(ag->host_id));
	ag->poll_t.fn = agent_on_poll;
	ag->batch_t.fn = agent_on_batch_timer;
	ag->house_t.fn = agent_on_house;
	ag->poll_us = cfg->poll_min_us;
	if (with_sockets) {
		if ((err = agent_signals(ag)) || (err = registry_listen(ag)) ||
		    (err = ctl_listen(ag)))
			goto fail;
		if (cfg->metrics_port && (err = metrics_listen(ag)))
			goto fail;
	}
	uint64_t now = agent_now_ns();
	loop_timer_arm(&ag->loop, &ag->poll_t, now + ag->poll_us * 1000);
	loop_timer_arm(&ag->loop, &ag->house_t, now + 1000000000ull);
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
	if (ag->cur) {
		struct batch *b = ag->cur;
		ag->cur = NULL;
		batch_unref(b);
	}
	for (size_t i = 0; i < ag->n_exp; i++)
		ag->exp[i]->ops->destroy(ag->exp[i]);
	ag->n_exp = 0;
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

struct batch *agent_batch(struct agent *ag)
{
	if (ag->cur)
		return ag->cur;
	ag->cur = batch_new(ag);
	if (ag->cur && ag->cfg->batch_max_age_us)
		loop_timer_arm(&ag->loop, &ag->batch_t,
			       agent_now_ns() + ag->cfg->batch_max_age_us * 1000);
	return ag->cur;
}

void agent_flush(struct agent *ag)
{
	struct batch *b = ag->cur;
	if (!b)
		return;
	ag->cur = NULL;
	loop_timer_cancel(&ag->loop, &ag->batch_t);
	if (b->spans == 0) {
		/* Only control records: nothing to export, release at once. */
		ag->st.empty_batches++;
		batch_unref(b);
		return;
	}
	if (batch_finalize(b)) {
		AGENT_LOG_RL(AGENT_LOG_ERROR, "batch: out of memory framing %llu spans; let go",
			     (unsigned long long)b->spans);
		for (size_t i = 0; i < ag->n_exp; i++) {
			ag->exp[i]->st.let_go_batches++;
			ag->exp[i]->st.let_go_spans += b->spans;
		}
		batch_unref(b);
		return;
	}
	ag->st.batches++;
	ag->st.spans += b->spans;
	ag->st.bytes += b->msg_len;
	if (ag->on_batch)
		ag->on_batch(ag, b);
	for (size_t i = 0; i < ag->n_exp; i++)
		(void)ag->exp[i]->ops->submit(ag->exp[i], b);
	batch_unref(b);
}

uint64_t agent_drain_all(struct agent *ag)
{
	uint64_t walked = 0;
	for (struct agent_producer *p = ag->producers; p; p = p->next) {
		if (p->zombie || p->state != PROD_ACTIVE || (p->conn_closed && p->final_drained))
			continue;
		/* Back-pressure: while exporters hold this many batches, spans
		 * wait in the rings (which is what the rings are for). */
		if (ag->inflight_batches >= ag->cfg->max_inflight_batches) {
			ag->st.paused_inflight++;
			break;
		}
		int64_t r = drain_producer(ag, p);
		if (r > 0)
			walked += (uint64_t)r;
		if (p->conn_closed && r != -ENOMEM) {
			p->final_drained = true;
			registry_maybe_free(p);
		}
	}
	return walked;
}

void agent_poll_soon(struct agent *ag, uint64_t us)
{
	if (ag->stopping)
		return;
	uint64_t when = agent_now_ns() + us * 1000;
	if (!ag->poll_t.armed || ag->poll_t.when_ns > when)
		loop_timer_arm(&ag->loop, &ag->poll_t, when);
}

static void agent_on_poll(struct loop_timer *t)
{
	struct agent *ag = container_of(t, struct agent, poll_t);
	if (ag->stopping)
		return;
	ag->st.polls++;
	uint64_t walked = agent_drain_all(ag);
	if (walked) {
		ag->poll_us = ag->cfg->poll_min_us;
	} else {
		ag->poll_us *= 2;
		if (ag->poll_us > ag->cfg->poll_max_us)
			ag->poll_us = ag->cfg->poll_max_us;
	}
	if (ag->cfg->batch_max_age_us == 0)
		agent_flush(ag);
	loop_timer_arm(&ag->loop, &ag->poll_t, agent_now_ns() + ag->poll_us * 1000);
}

static void agent_on_batch_timer(struct loop_timer *t)
{
	struct agent *ag = container_of(t, struct agent, batch_t);
	agent_flush(ag);
}

static void agent_on_house(struct loop_timer *t)
{
	struct agent *ag = container_of(t, struct agent, house_t);
	registry_housekeeping(ag);
	ctl_housekeeping(ag);
	metrics_housekeeping(ag);
	loop_timer_arm(&ag->loop, &ag->house_t, agent_now_ns() + 1000000000ull);
}

void agent_producer_closed(struct agent_producer *p)
{
	struct agent *ag = p->ag;
	if (p->conn_fd >= 0) {
		loop_del(&ag->loop, &p->conn_w);
		close(p->conn_fd);
		p->conn_fd = -1;
	}
	if (p->bell_fd >= 0) {
		loop_del(&ag->loop, &p->bell_w);
		close(p->bell_fd);
		p->bell_fd = -1;
	}
	p->conn_closed = true;
	agent_log(p->ending ? AGENT_LOG_DEBUG : AGENT_LOG_INFO,
		  "producer %llu (pid %d) disconnected; draining what it committed",
		  (unsigned long long)p->id, (int)p->pid);
	/* The producer is gone (or closed): its heads are final. A record
	 * is visible only once whole, so what is below head is complete. */
	if (p->state == PROD_ACTIVE && ag->inflight_batches < ag->cfg->max_inflight_batches) {
		if (drain_producer(ag, p) != -ENOMEM)
			p->final_drained = true;
	}
	registry_maybe_free(p);
}

void agent_on_doorbell(struct agent *ag, struct agent_producer *p)
{
	if (ag->stopping)
		return;
	if (ag->inflight_batches < ag->cfg->max_inflight_batches) {
		drain_producer(ag, p);
		/* A slot crossed its watermark: ship now, so that its space comes
		 * back without waiting for the batch's age limit. */
		agent_flush(ag);
	}
	ag->poll_us = ag->cfg->poll_min_us;
	agent_poll_soon(ag, ag->poll_us);
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
		drain_producer(ag, p);
		if (p->conn_closed)
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
			if (held == 0 && !ag->cur)
				break;
			if (now >= ag->stop_deadline_ns) {
				agent_report_undelivered(ag, "shutdown timeout");
				status = 0;
				break;
			}
			uint64_t left_ms = (ag->stop_deadline_ns - now) / 1000000 + 1;
			timeout = left_ms < 100 ? (int)left_ms : 100;
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
