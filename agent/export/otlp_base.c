/* SPDX-License-Identifier: MIT */
/*
 * The OTLP exporters' queue of held batches (otlp_base.h): holding,
 * taking for a request, the hold budget and the spool behind it, the
 * connection backoff. What an answer does to the queue is otlp_answer.c;
 * the resolver and connector otlp_dns.c; the counters otlp_stats.c.
 */
#include "otlp_base.h"
#include "pbwire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "otlp_retry.h"
#include "spool.h"

uint64_t otlp_q_rand(struct otlp_base *ob)
{
	uint64_t x = ob->rnd;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return ob->rnd = x;
}

static void ob_on_wake(struct loop_timer *t)
{
	struct otlp_base *ob = container_of(t, struct otlp_base, wake_t);
	ob->kick(ob);
}

void otlp_base_init(struct otlp_base *ob, const struct exp_host *host,
		    const struct exporter_ops *ops, const char *name)
{
	ob->e.ops = ops;
	ob->e.host = host;
	snprintf(ob->e.name, sizeof(ob->e.name), "%s", name);
	ob->wake_t.fn = ob_on_wake;
	ob->dns_w.fd = -1;
	if (getrandom(&ob->rnd, sizeof(ob->rnd), GRND_NONBLOCK) != sizeof(ob->rnd))
		ob->rnd = agent_now_ns() ^ ((uint64_t)getpid() << 32);
	ob->rnd |= 1;
}

/* Queue it last: the newest batch. */
static void ob_append(struct otlp_base *ob, struct oq_item *it)
{
	it->first_ns = agent_now_ns();
	it->prev = ob->tail;
	if (ob->tail)
		ob->tail->next = it;
	else
		ob->head = it;
	ob->tail = it;
	ob->n_held++;
	ob->e.st.held = ob->n_held;
}

void otlp_q_unlink(struct otlp_base *ob, struct oq_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		ob->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		ob->tail = it->prev;
	if (it->busy)
		ob->n_busy--;
	ob->n_held--;
	ob->e.st.held = ob->n_held;
	if (it->spooled) {
		if (ob->spool_item == it)
			ob->spool_item = NULL;
	} else {
		ob->ring_held_bytes -= it->b->msg_len;
	}
	struct batch *b = it->b;
	free(it);
	ob->e.host->release(b);
}

/* Let it go, counted under its cause (spans; they add up to the total). */
void otlp_q_let_go(struct otlp_base *ob, struct oq_item *it, uint64_t *cause)
{
	/* An isolated batch: its groups already settled were counted. */
	uint64_t spans = it->b->spans - it->iso_spans_done;
	ob->e.st.let_go_batches++;
	ob->e.st.let_go_spans += spans;
	*cause += spans;
	if (it->spooled && ob->spool) /* the spool moves on past it */
		spool_commit(ob->spool, it->sp_seq, it->sp_off);
	otlp_q_unlink(ob, it);
}

static void ob_let_go(struct otlp_base *ob, struct oq_item *it)
{
	otlp_q_let_go(ob, it, &ob->c.lg_other);
}

/* Spool counters into the instance's: what a full spool let go. */
static void ob_spool_sync(struct otlp_base *ob, uint64_t lg_spans0, uint64_t lg_rec0)
{
	uint64_t ds = ob->spool->let_go_spans - lg_spans0, dr = ob->spool->let_go_records - lg_rec0;
	ob->e.st.let_go_spans += ds;
	ob->e.st.let_go_batches += dr;
	ob->c.lg_spool_full += ds;
}

/*
 * Move a waiting batch out of the ring: to the spool (a copy, the failure
 * path only), or let it go (counted under cause) when there is no spool
 * or it cannot be written.
 */
void otlp_q_spill(struct otlp_base *ob, struct oq_item *it, uint64_t *cause)
{
	if (ob->spool && !it->spooled && !it->isolate) {
		size_t niov;
		const struct iovec *iov = batch_msg_iov(it->b, &niov);
		uint64_t s0 = ob->spool->let_go_spans, r0 = ob->spool->let_go_records;
		int rc = spool_put(ob->spool, iov, niov, it->b->msg_len, it->b->spans);
		ob_spool_sync(ob, s0, r0);
		if (rc == 0) {
			ob->c.spilled_batches++;
			ob->c.spilled_spans += it->b->spans;
			otlp_q_unlink(ob, it);
			return;
		}
	}
	AGENT_LOG_RL_OF(&ob->log_rl, AGENT_LOG_WARN,
			"exporter %s: %llu ring bytes held (hold_budget %llu) and %s: letting go "
			"of the oldest waiting batch (%llu spans)",
			ob->e.name, (unsigned long long)ob->ring_held_bytes,
			(unsigned long long)ob->hold_budget,
			ob->spool ? "the spool cannot take it" : "no spool",
			(unsigned long long)it->b->spans);
	otlp_q_let_go(ob, it, cause);
}

/* Over the hold budget: the oldest waiting batches leave the ring. A
 * backend that cannot be reached keeps nothing waiting in the ring: its
 * budget is 0 until it answers again (only what the probe carries stays). */
void otlp_q_enforce_budget(struct otlp_base *ob)
{
	if (!ob->hold_budget)
		return;
	uint64_t budget = ob->conn_failures && ob->spool ? 0 : ob->hold_budget;
	struct oq_item *it = ob->head;
	while (it && ob->ring_held_bytes > budget) {
		struct oq_item *next = it->next;
		if (!it->busy && !it->spooled && !it->isolate)
			otlp_q_spill(ob, it, &ob->c.lg_hold_budget);
		it = next;
	}
}

/* Put the next records of the spool in the queue: one at a time, behind
 * the fresh batches waiting (so live spans are not held behind the
 * backlog), while the backend answers, or as the probe when nothing else
 * waits. */
void otlp_q_spool_feed(struct otlp_base *ob)
{
	struct spool *sp = ob->spool;
	if (!sp || ob->spool_item || !spool_pending(sp) || *ob->e.host->stopping)
		return;
	if (ob->conn_failures && ob->n_held)
		return; /* down: the waiting batches probe */
	size_t max = ob->conf.max_request_bytes / 2;
	if (max > (1u << 20))
		max = 1u << 20;
	uint8_t *buf;
	size_t len;
	uint64_t spans, seq, off;
	if (spool_load(sp, max, &buf, &len, &spans, &seq, &off))
		return;
	const struct exp_host *host = ob->e.host;
	struct batch *b = host->batch_of_bytes(host->ag, buf, len, spans);
	free(buf);
	struct oq_item *it = b ? calloc(1, sizeof(*it)) : NULL;
	if (!it) {
		/* out of memory: these records are let go */
		if (b)
			host->release(b);
		ob->e.st.let_go_batches++;
		ob->e.st.let_go_spans += spans;
		ob->c.lg_other += spans;
		spool_commit(sp, seq, off);
		return;
	}
	it->b = b; /* its one reference is the queue's */
	it->spooled = true;
	it->sp_seq = seq;
	it->sp_off = off;
	ob_append(ob, it);
	ob->spool_item = it;
}

void otlp_base_let_go_all(struct otlp_base *ob, const char *why)
{
	uint64_t n = 0, spans = 0;
	while (ob->head) {
		if (ob->head->spooled) { /* still in the spool file: replayed next time */
			otlp_q_unlink(ob, ob->head);
			continue;
		}
		n++;
		spans += ob->head->b->spans;
		ob_let_go(ob, ob->head);
	}
	/* At exit the agent does not release what it drops (no_release):
	 * its shutdown line already said, per producer, which spans stay in
	 * the rings and which are lost; "letting go" would contradict it. */
	if (n)
		agent_log(*ob->e.host->no_release ? AGENT_LOG_DEBUG : AGENT_LOG_WARN,
			  "exporter %s: %s %llu held batches (%llu spans): %s", ob->e.name,
			  *ob->e.host->no_release ? "dropping, unreleased," : "letting go of",
			  (unsigned long long)n, (unsigned long long)spans, why);
}

void otlp_base_fini(struct otlp_base *ob)
{
	loop_timer_cancel(ob->e.host->loop, &ob->wake_t);
	otlp_base_cancel_resolve(ob);
	if (ob->ai)
		freeaddrinfo(ob->ai);
	ob->ai = ob->ai_next = NULL;
	otlp_base_let_go_all(ob, "exporter shutting down");
	if (ob->spool) {
		spool_close(ob->spool);
		free(ob->spool);
		ob->spool = NULL;
	}
	otlp_conf_free(&ob->conf);
}

int otlp_base_submit(struct otlp_base *ob, struct batch *b)
{
	struct oq_item *it = calloc(1, sizeof(*it));
	if (!it) {
		ob->e.st.let_go_batches++;
		ob->e.st.let_go_spans += b->spans;
		ob->c.lg_other += b->spans;
		AGENT_LOG_RL_OF(&ob->log_rl, AGENT_LOG_ERROR,
				"exporter %s: out of memory; letting go of %llu spans",
				ob->e.name, (unsigned long long)b->spans);
		return -ENOMEM;
	}
	ob->e.host->hold(b);
	it->b = b;
	ob_append(ob, it);
	ob->ring_held_bytes += b->msg_len;
	otlp_q_enforce_budget(ob);
	if (ob->n_held > ob->conf.max_held) {
		/* Full: the oldest batch that is not on the wire goes. */
		struct oq_item *old = ob->head;
		while (old && (old->busy || old->spooled))
			old = old->next;
		if (old) {
			ob->c.queue_full_let_go++;
			AGENT_LOG_RL_OF(&ob->log_rl, AGENT_LOG_WARN,
					"exporter %s: %zu batches held (otlp.max_held); letting "
					"go of the oldest waiting one (%llu spans, %u failed "
					"attempts)",
					ob->e.name, ob->n_held - 1,
					(unsigned long long)old->b->spans, old->attempts);
			otlp_q_let_go(ob, old, &ob->c.lg_queue_full);
		}
	}
	otlp_q_spool_feed(ob);
	ob->kick(ob);
	return 0;
}

size_t otlp_base_take(struct otlp_base *ob, uint64_t now, struct oq_item **out, size_t max_n)
{
	size_t n = 0;
	uint64_t bytes = 0;
	/* A request never pins more of the ring than the hold budget. */
	uint64_t limit = ob->conf.max_request_bytes;
	if (ob->hold_budget && ob->hold_budget < limit)
		limit = ob->hold_budget;
	/* A failed backend is probed with whatever waits, whatever the
	 * batches' own backoff says (otlp_base_ready). */
	bool probing = ob->conn_failures > 0;
	for (struct oq_item *it = ob->head; it && n < max_n; it = it->next) {
		if (it->busy || (it->not_before_ns > now && !probing))
			continue;
		/* A batch being isolated goes alone (one producer's group). */
		if (n && it->isolate)
			break;
		if (n && bytes + it->b->msg_len > limit)
			break;
		bytes += it->b->msg_len;
		it->busy = true;
		ob->n_busy++;
		if (it->attempts)
			ob->e.st.retries++;
		out[n++] = it;
		if (it->isolate)
			break;
	}
	return n;
}

void otlp_q_arm(struct otlp_base *ob, uint64_t when)
{
	struct loop *l = ob->e.host->loop;
	if (!ob->wake_t.armed || ob->wake_t.when_ns > when || ob->wake_t.when_ns < agent_now_ns())
		loop_timer_arm(l, &ob->wake_t, when);
}

bool otlp_base_ready(struct otlp_base *ob, uint64_t now)
{
	uint64_t min = UINT64_MAX;
	otlp_q_spool_feed(ob);
	for (struct oq_item *it = ob->head; it; it = it->next)
		if (!it->busy && it->not_before_ns < min)
			min = it->not_before_ns;
	if (min == UINT64_MAX)
		return false;
	/* The backend failed: probe it every probe interval while anything
	 * waits (the connection backoff is capped at it), so that delivery
	 * resumes soon after it is back. */
	if (ob->conn_failures && ob->conn_not_before_ns < min)
		min = ob->conn_not_before_ns;
	if (min <= now)
		return true;
	otlp_q_arm(ob, min);
	return false;
}

bool otlp_base_may_connect(struct otlp_base *ob, uint64_t now)
{
	if (ob->conn_not_before_ns <= now)
		return true;
	otlp_q_arm(ob, ob->conn_not_before_ns);
	return false;
}

void otlp_base_conn_failed(struct otlp_base *ob)
{
	ob->conn_failures++;
	uint64_t d = otlp_backoff_ns(ob->conf.retry_initial_ns, ob->conf.retry_max_backoff_ns,
				     ob->conn_failures, otlp_q_rand(ob));
	if (ob->probe_ns && d > ob->probe_ns)
		d = ob->probe_ns;
	ob->conn_not_before_ns = agent_now_ns() + d;
	otlp_q_arm(ob, ob->conn_not_before_ns);
}

void otlp_base_conn_ok(struct otlp_base *ob)
{
	ob->conn_failures = 0;
	ob->conn_not_before_ns = 0;
}

int otlp_base_setup_spool(struct otlp_base *ob, uint64_t hold_budget, uint64_t probe_ns,
			  const char *spool_dir, uint64_t spool_bytes)
{
	ob->hold_budget = hold_budget;
	ob->probe_ns = probe_ns;
	if (!spool_bytes || !spool_dir)
		return 0;
	struct spool *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	int rc = spool_open(sp, spool_dir, spool_bytes, ob->e.name);
	if (rc) {
		spool_close(sp);
		free(sp);
		return rc;
	}
	ob->spool = sp;
	log_info("exporter %s: hold budget %llu ring bytes, spool %s (%llu bytes)", ob->e.name,
		 (unsigned long long)hold_budget, spool_dir, (unsigned long long)spool_bytes);
	if (spool_pending(sp))
		ob->kick(ob);
	return 0;
}
