/* SPDX-License-Identifier: MIT */
/* Shared machinery of the OTLP exporters (otlp_base.h). */
#include "otlp_base.h"
#include "pbwire.h"

#include <ck_pr.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exp_otlp.h"
#include "log.h"
#include "otlp_retry.h"
#include "sbuf.h"
#include "spool.h"

static uint64_t ob_rand(struct otlp_base *ob)
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

void otlp_base_init(struct otlp_base *ob, struct agent *ag, const struct exporter_ops *ops,
		    const char *name)
{
	ob->e.ops = ops;
	ob->e.ag = ag;
	snprintf(ob->e.name, sizeof(ob->e.name), "%s", name);
	ob->wake_t.fn = ob_on_wake;
	ob->dns_w.fd = -1;
	if (getrandom(&ob->rnd, sizeof(ob->rnd), GRND_NONBLOCK) != sizeof(ob->rnd))
		ob->rnd = agent_now_ns() ^ ((uint64_t)getpid() << 32);
	ob->rnd |= 1;
}

static void ob_unlink(struct otlp_base *ob, struct oq_item *it)
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
	batch_unref(b);
}

/* Let it go, counted under its cause (spans; they add up to the total). */
static void ob_let_go_cause(struct otlp_base *ob, struct oq_item *it, uint64_t *cause)
{
	/* An isolated batch: its groups already settled were counted. */
	uint64_t spans = it->b->spans - it->iso_spans_done;
	ob->e.st.let_go_batches++;
	ob->e.st.let_go_spans += spans;
	*cause += spans;
	if (it->spooled && ob->spool) /* the spool moves on past it */
		spool_commit(ob->spool, it->sp_seq, it->sp_off);
	ob_unlink(ob, it);
}

static void ob_let_go(struct otlp_base *ob, struct oq_item *it)
{
	ob_let_go_cause(ob, it, &ob->c.lg_other);
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
static void ob_spill(struct otlp_base *ob, struct oq_item *it, uint64_t *cause)
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
			ob_unlink(ob, it);
			return;
		}
	}
	AGENT_LOG_RL(AGENT_LOG_WARN,
		     "exporter %s: %llu ring bytes held (hold_budget %llu) and %s: letting go of "
		     "the oldest waiting batch (%llu spans)",
		     ob->e.name, (unsigned long long)ob->ring_held_bytes,
		     (unsigned long long)ob->hold_budget,
		     ob->spool ? "the spool cannot take it" : "no spool",
		     (unsigned long long)it->b->spans);
	ob_let_go_cause(ob, it, cause);
}

/* Over the hold budget: the oldest waiting batches leave the ring. A
 * backend that cannot be reached keeps nothing waiting in the ring: its
 * budget is 0 until it answers again (only what the probe carries stays). */
static void ob_enforce_budget(struct otlp_base *ob)
{
	if (!ob->hold_budget)
		return;
	uint64_t budget = ob->conn_failures && ob->spool ? 0 : ob->hold_budget;
	struct oq_item *it = ob->head;
	while (it && ob->ring_held_bytes > budget) {
		struct oq_item *next = it->next;
		if (!it->busy && !it->spooled && !it->isolate)
			ob_spill(ob, it, &ob->c.lg_hold_budget);
		it = next;
	}
}

/* A spooled batch: the records' messages in the batch's own framing
 * buffer (agent memory), one FRAME iovec; no producer, no ring. */
static struct batch *ob_spool_batch(struct agent *ag, uint8_t *buf, size_t len, uint64_t spans)
{
	struct batch *b = batch_new(ag);
	if (!b)
		return NULL;
	size_t need = len + 10;
	if (b->frame_cap < need) {
		uint8_t *nf = realloc(b->frame, need);
		if (!nf)
			goto fail;
		b->frame = nf;
		b->frame_cap = need;
	}
	if (b->cap_iov < 2) {
		struct iovec *ni = realloc(b->iov, 2 * sizeof(*ni));
		if (!ni)
			goto fail;
		b->iov = ni;
		uint8_t *nk = realloc(b->iov_kind, 2);
		if (!nk) {
			b->cap_iov = 1; /* iov grew, kind did not: keep them equal */
			goto fail;
		}
		b->iov_kind = nk;
		b->cap_iov = 2;
	}
	uint8_t *p = pb_put_varint(b->frame, len);
	size_t hl = (size_t)(p - b->frame);
	memcpy(p, buf, len);
	b->iov[0] = (struct iovec){b->frame, hl};
	b->iov[1] = (struct iovec){p, len};
	b->iov_kind[0] = b->iov_kind[1] = BATCH_IOV_FRAME;
	b->niov = 2;
	b->msg_len = len;
	b->spans = spans;
	b->span_bytes = 0;
	b->finalized = true;
	return b;
fail:
	batch_unref(b);
	return NULL;
}

/* Put the next records of the spool in the queue: one at a time, behind
 * the fresh batches waiting (so live spans are not held behind the
 * backlog), while the backend answers, or as the probe when nothing else
 * waits. */
static void ob_spool_feed(struct otlp_base *ob)
{
	struct spool *sp = ob->spool;
	if (!sp || ob->spool_item || !spool_pending(sp) || ob->e.ag->stopping)
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
	struct batch *b = ob_spool_batch(ob->e.ag, buf, len, spans);
	free(buf);
	struct oq_item *it = b ? calloc(1, sizeof(*it)) : NULL;
	if (!it) {
		/* out of memory: these records are let go */
		if (b)
			batch_unref(b);
		ob->e.st.let_go_batches++;
		ob->e.st.let_go_spans += spans;
		ob->c.lg_other += spans;
		spool_commit(sp, seq, off);
		return;
	}
	it->b = b; /* batch_new's reference is the queue's */
	it->first_ns = agent_now_ns();
	it->spooled = true;
	it->sp_seq = seq;
	it->sp_off = off;
	it->prev = ob->tail;
	if (ob->tail)
		ob->tail->next = it;
	else
		ob->head = it;
	ob->tail = it;
	ob->n_held++;
	ob->e.st.held = ob->n_held;
	ob->spool_item = it;
}

void otlp_base_let_go_all(struct otlp_base *ob, const char *why)
{
	uint64_t n = 0, spans = 0;
	while (ob->head) {
		if (ob->head->spooled) { /* still in the spool file: replayed next time */
			ob_unlink(ob, ob->head);
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
		agent_log(ob->e.ag->no_release ? AGENT_LOG_DEBUG : AGENT_LOG_WARN,
			  "exporter %s: %s %llu held batches (%llu spans): %s", ob->e.name,
			  ob->e.ag->no_release ? "dropping, unreleased," : "letting go of",
			  (unsigned long long)n, (unsigned long long)spans, why);
}

static void dns_cancel(struct otlp_base *ob);

void otlp_base_fini(struct otlp_base *ob)
{
	loop_timer_cancel(&ob->e.ag->loop, &ob->wake_t);
	dns_cancel(ob);
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
		AGENT_LOG_RL(AGENT_LOG_ERROR, "exporter %s: out of memory; letting go of %llu spans",
			     ob->e.name, (unsigned long long)b->spans);
		return -ENOMEM;
	}
	batch_ref(b);
	it->b = b;
	it->first_ns = agent_now_ns();
	it->prev = ob->tail;
	if (ob->tail)
		ob->tail->next = it;
	else
		ob->head = it;
	ob->tail = it;
	ob->n_held++;
	ob->e.st.held = ob->n_held;
	ob->ring_held_bytes += b->msg_len;
	ob_enforce_budget(ob);
	if (ob->n_held > ob->conf.max_held) {
		/* Full: the oldest batch that is not on the wire goes. */
		struct oq_item *old = ob->head;
		while (old && (old->busy || old->spooled))
			old = old->next;
		if (old) {
			ob->c.queue_full_let_go++;
			AGENT_LOG_RL(AGENT_LOG_WARN,
				     "exporter %s: %zu batches held (otlp.max_held); letting go of "
				     "the oldest waiting one (%llu spans, %u failed attempts)",
				     ob->e.name, ob->n_held - 1, (unsigned long long)old->b->spans,
				     old->attempts);
			ob_let_go_cause(ob, old, &ob->c.lg_queue_full);
		}
	}
	ob_spool_feed(ob);
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

int otlp_batch_group(const struct batch *b, uint32_t g, size_t *first, size_t *n,
		     uint64_t *bytes, uint64_t *spans, const struct agent_producer **p)
{
	if (!b->finalized || g >= b->n_resource_spans)
		return -1;
	/* The groups follow each other in the message; each starts with a
	 * frame iovec of ours: tag(1, LEN) varint(length) (batch_finalize). */
	size_t niov;
	const struct iovec *iov = batch_msg_iov(b, &niov);
	size_t i = 0;
	for (uint32_t k = 0;; k++) {
		if (i >= niov || iov[i].iov_len < 2)
			return -1;
		const uint8_t *f = iov[i].iov_base, *fe = f + iov[i].iov_len, *q = f + 1;
		uint64_t len;
		if (f[0] != 0x0a || pb_get_varint(&q, fe, &len))
			return -1;
		uint64_t need = (uint64_t)(q - f) + len, got = 0;
		size_t start = i;
		while (i < niov && got < need)
			got += iov[i++].iov_len;
		if (got != need)
			return -1; /* not on iovec boundaries: not a batch of ours */
		if (k == g) {
			*first = start;
			*n = i - start;
			*bytes = need;
			break;
		}
	}
	/* Its producer: the g-th distinct one of the segments (sorted). */
	*spans = 0;
	*p = NULL;
	uint32_t k = 0;
	for (size_t j = 0; j < b->nsegs; j++) {
		if (j && b->segs[j].p != b->segs[j - 1].p)
			k++;
		if (k == g) {
			*p = b->segs[j].p;
			*spans += b->segs[j].nspans;
		}
	}
	return *p ? 0 : -1;
}

static void ob_arm(struct otlp_base *ob, uint64_t when)
{
	struct loop *l = &ob->e.ag->loop;
	if (!ob->wake_t.armed || ob->wake_t.when_ns > when || ob->wake_t.when_ns < agent_now_ns())
		loop_timer_arm(l, &ob->wake_t, when);
}

bool otlp_base_ready(struct otlp_base *ob, uint64_t now)
{
	uint64_t min = UINT64_MAX;
	ob_spool_feed(ob);
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
	ob_arm(ob, min);
	return false;
}

bool otlp_base_may_connect(struct otlp_base *ob, uint64_t now)
{
	if (ob->conn_not_before_ns <= now)
		return true;
	ob_arm(ob, ob->conn_not_before_ns);
	return false;
}

void otlp_base_conn_failed(struct otlp_base *ob)
{
	ob->conn_failures++;
	uint64_t d = otlp_backoff_ns(ob->conf.retry_initial_ns, ob->conf.retry_max_backoff_ns,
				     ob->conn_failures, ob_rand(ob));
	if (ob->probe_ns && d > ob->probe_ns)
		d = ob->probe_ns;
	ob->conn_not_before_ns = agent_now_ns() + d;
	ob_arm(ob, ob->conn_not_before_ns);
}

void otlp_base_conn_ok(struct otlp_base *ob)
{
	ob->conn_failures = 0;
	ob->conn_not_before_ns = 0;
}

/* The answer to one group of a batch being isolated. True when handled. */
static bool ob_isolated_done(struct otlp_base *ob, struct oq_item *it,
			     const struct otlp_result *r, uint64_t now)
{
	size_t first, cnt;
	uint64_t bytes, gspans;
	const struct agent_producer *p;
	if (r->v != OTLP_DELIVERED && r->v != OTLP_DROP)
		return false; /* retried like any batch, from the same group */
	if (otlp_batch_group(it->b, it->iso_next, &first, &cnt, &bytes, &gspans, &p)) {
		it->iso_next = it->b->n_resource_spans; /* cannot happen: finish */
		gspans = 0;
	} else if (r->v == OTLP_DELIVERED) {
		ob->c.responses_ok++;
		ob->e.st.spans += gspans;
		it->iso_delivered += gspans;
	} else {
		ob->c.responses_permanent++;
		ob->c.isolated_let_go_groups++;
		ob->c.permanent_let_go++;
		ob->e.st.failures++;
		ob->e.st.let_go_spans += gspans;
		ob->c.lg_permanent += gspans;
		log_warn("exporter %s (%s): %s (not retryable)%s%s for the spans of producer %llu "
			 "(pid %d, service '%s') alone: letting go of its %llu spans",
			 ob->e.name, ob->conf.url, r->what, r->detail[0] ? ": " : "", r->detail,
			 (unsigned long long)p->id, (int)p->pid, p->service,
			 (unsigned long long)gspans);
	}
	it->iso_spans_done += gspans;
	it->iso_next++;
	if (it->iso_next >= it->b->n_resource_spans) {
		/* Every group settled: the batch is done (its spans were counted
		 * group by group, delivered or let go). */
		if (it->iso_delivered) {
			ob->e.st.batches++;
			ob->e.st.bytes += it->b->msg_len;
		} else {
			ob->e.st.let_go_batches++;
		}
		it->iso_spans_done = it->b->spans;
		ob_unlink(ob, it);
		return true;
	}
	/* The next group at once. */
	it->busy = false;
	ob->n_busy--;
	it->not_before_ns = 0;
	ob_arm(ob, now);
	return true;
}

void otlp_base_done(struct otlp_base *ob, struct oq_item **items, size_t n,
		    const struct otlp_result *r)
{
	uint64_t now = agent_now_ns();
	uint64_t spans = 0, groups = 0;
	bool several = false; /* producers in the request */
	const struct agent_producer *p0 = n && items[0]->b->nsegs ? items[0]->b->segs[0].p : NULL;
	for (size_t i = 0; i < n; i++) {
		spans += items[i]->b->spans;
		groups += items[i]->b->n_resource_spans;
		for (size_t j = 0; j < items[i]->b->nsegs && !several; j++)
			several = items[i]->b->segs[j].p != p0;
	}
	if (n == 1 && items[0]->isolate && ob_isolated_done(ob, items[0], r, now))
		return;
	if (r->v == OTLP_DROP && r->isolate_ok && several && !items[0]->isolate) {
		/*
		 * Malformed data in a request of several producers: one of them
		 * may have rewritten span bytes after the agent walked them (the
		 * known gap, docs/SECURITY.md). Resend each producer's spans on
		 * their own, from ring memory as before, so that only the
		 * culprit's are let go.
		 */
		ob->c.responses_permanent++;
		ob->c.isolations++;
		log_warn("exporter %s (%s): %s (not retryable)%s%s for a request of %zu batches with the "
			 "spans of several producers (%llu groups): sending each producer's spans on "
			 "their own",
			 ob->e.name, ob->conf.url, r->what, r->detail[0] ? ": " : "", r->detail, n,
			 (unsigned long long)groups);
		for (size_t i = 0; i < n; i++) {
			items[i]->isolate = true;
			items[i]->iso_next = 0;
			items[i]->busy = false;
			ob->n_busy--;
			items[i]->not_before_ns = 0;
		}
		ob_arm(ob, now);
		return;
	}
	switch (r->v) {
	case OTLP_DELIVERED:
		ob->c.responses_ok++;
		if (r->partial) {
			ob->c.partial_responses++;
			if (r->rejected > 0)
				ob->c.rejected_spans += (uint64_t)r->rejected;
			AGENT_LOG_RL(AGENT_LOG_WARN,
				     "exporter %s: partial success: the server rejected %lld of %llu "
				     "spans: %s",
				     ob->e.name, (long long)r->rejected, (unsigned long long)spans,
				     r->detail[0] ? r->detail : "(no message)");
		}
		for (size_t i = 0; i < n; i++) {
			struct batch *b = items[i]->b;
			ob->e.st.batches++;
			ob->e.st.spans += b->spans;
			ob->e.st.bytes += b->msg_len;
			if (items[i]->spooled) {
				ob->c.replayed_batches++;
				ob->c.replayed_spans += b->spans;
				if (ob->spool)
					spool_commit(ob->spool, items[i]->sp_seq, items[i]->sp_off);
			}
			ob_unlink(ob, items[i]);
		}
		ob_spool_feed(ob);
		break;
	case OTLP_DROP:
		ob->c.responses_permanent++;
		log_warn("exporter %s (%s): %s (not retryable)%s%s; letting go of %zu batches (%llu "
			 "spans)",
			 ob->e.name, ob->conf.url, r->what, r->detail[0] ? ": " : "", r->detail, n,
			 (unsigned long long)spans);
		for (size_t i = 0; i < n; i++) {
			ob->e.st.failures++;
			ob->c.permanent_let_go++;
			ob_let_go_cause(ob, items[i], &ob->c.lg_permanent);
		}
		ob_spool_feed(ob);
		break;
	case OTLP_RETRY_NOW:
		for (size_t i = 0; i < n; i++) {
			items[i]->busy = false;
			ob->n_busy--;
			items[i]->not_before_ns = 0;
			if (items[i]->attempts)
				ob->e.st.retries--; /* this attempt does not count */
		}
		ob_arm(ob, now);
		break;
	case OTLP_RETRY: {
		size_t gone = 0, spilled = 0;
		uint64_t gone_spans = 0, next_min = UINT64_MAX;
		for (size_t i = 0; i < n; i++) {
			struct oq_item *it = items[i];
			ob->e.st.failures++;
			it->attempts++;
			uint64_t d = r->has_delay ? r->delay_ns
						  : otlp_backoff_ns(ob->conf.retry_initial_ns,
								    ob->conf.retry_max_backoff_ns,
								    it->attempts, ob_rand(ob));
			if (!it->spooled &&
			    !otlp_retry_in_budget(it->first_ns, now + d, ob->conf.retry_max_elapsed_ns)) {
				/* Out of retry time: to the spool if there is one (it
				 * is retried from there), else let go. */
				it->busy = false;
				ob->n_busy--;
				if (ob->spool && !it->isolate) {
					ob_spill(ob, it, &ob->c.lg_retry_budget);
					spilled++;
					continue;
				}
				it->busy = true;
				ob->n_busy++;
				gone++;
				gone_spans += it->b->spans;
				ob->c.retry_budget_let_go++;
				ob_let_go_cause(ob, it, &ob->c.lg_retry_budget);
				continue;
			}
			it->busy = false;
			ob->n_busy--;
			it->not_before_ns = now + d;
			if (it->not_before_ns < next_min)
				next_min = it->not_before_ns;
		}
		/* One true line: what failed, then what becomes of the batches
		 * (never "0 batches retry"). */
		size_t waiting = n - gone - spilled;
		if (gone == n) {
			log_warn("exporter %s (%s): %s%s%s; letting go of %zu batches (%llu spans): their "
				 "retry time (export_retry_max %.1fs) is exhausted",
				 ob->e.name, ob->conf.url, r->what, r->detail[0] ? ": " : "", r->detail, gone,
				 (unsigned long long)gone_spans,
				 (double)ob->conf.retry_max_elapsed_ns / 1e9);
		} else {
			if (waiting)
				AGENT_LOG_RL(AGENT_LOG_WARN, "exporter %s (%s): %s%s%s; %zu batches retry in %.3fs%s",
					     ob->e.name, ob->conf.url, r->what, r->detail[0] ? ": " : "", r->detail,
					     waiting, (double)(next_min - now) / 1e9,
					     r->has_delay ? " (as the server asked)" : "");
			if (spilled)
				AGENT_LOG_RL(AGENT_LOG_WARN, "exporter %s (%s): %s%s%s; %zu batches out of retry "
					     "time (export_retry_max %.1fs) moved to the spool",
					     ob->e.name, ob->conf.url, r->what, r->detail[0] ? ": " : "", r->detail,
					     spilled, (double)ob->conf.retry_max_elapsed_ns / 1e9);
			if (gone)
				log_warn("exporter %s: letting go of %zu other batches (%llu spans): their "
					 "retry time (export_retry_max %.1fs) is exhausted",
					 ob->e.name, gone, (unsigned long long)gone_spans,
					 (double)ob->conf.retry_max_elapsed_ns / 1e9);
		}
		if (next_min != UINT64_MAX)
			ob_arm(ob, next_min);
		ob_enforce_budget(ob);
		break;
	}
	}
	if (r->v == OTLP_RETRY)
		ob->c.responses_retryable++;
}

/* ---- resolver -------------------------------------------------------------- */

/*
 * getaddrinfo() can block for seconds, so a name that is not a numeric
 * address is resolved on a short-lived helper thread. The job is shared by
 * the thread and the loop (two references); whoever drops the last one
 * frees it, so a job abandoned by the loop (timeout, shutdown) finishes on
 * its own. The thread signals completion through the job's eventfd.
 */
struct dns_job {
	unsigned refs;
	int efd;
	int rc;
	struct addrinfo *res;
	char host[256];
	char port[8];
};

static void dns_job_put(struct dns_job *j)
{
	bool zero;
	ck_pr_dec_uint_zero(&j->refs, &zero);
	if (!zero)
		return;
	close(j->efd);
	if (j->res)
		freeaddrinfo(j->res);
	free(j);
}

static void *dns_thread(void *arg)
{
	struct dns_job *j = arg;
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(j->host, j->port, &hints, &res);
	j->rc = rc;
	j->res = rc == 0 ? res : NULL;
	ck_pr_fence_store();
	uint64_t one = 1;
	ssize_t w = write(j->efd, &one, sizeof(one));
	(void)w;
	dns_job_put(j);
	return NULL;
}

static void dns_cancel(struct otlp_base *ob)
{
	if (!ob->dns)
		return;
	loop_del(&ob->e.ag->loop, &ob->dns_w);
	ob->dns_w.fd = -1;
	dns_job_put(ob->dns);
	ob->dns = NULL;
}

static void dns_on_done(struct loop_watch *w, uint32_t events)
{
	struct otlp_base *ob = container_of(w, struct otlp_base, dns_w);
	struct dns_job *j = ob->dns;
	uint64_t v;
	(void)events;
	if (read(j->efd, &v, sizeof(v)) != sizeof(v))
		return;
	ck_pr_fence_load();
	int rc = j->rc;
	struct addrinfo *res = j->res;
	j->res = NULL;
	char host[256];
	snprintf(host, sizeof(host), "%s", j->host);
	dns_cancel(ob);
	if (ob->ai)
		freeaddrinfo(ob->ai);
	ob->ai = ob->ai_next = res;
	if (rc) {
		ob->c.dns_failures++;
		AGENT_LOG_RL(AGENT_LOG_WARN, "exporter %s: cannot resolve '%s': %s", ob->e.name, host,
			     gai_strerror(rc));
	}
	ob->on_resolved(ob, rc ? -EHOSTUNREACH : 0);
}

/* 1: resolved at once (numeric), 0: pending (on_resolved follows), <0 error. */
static int ob_resolve(struct otlp_base *ob)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", ob->conf.u.port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	if (getaddrinfo(ob->conf.u.host, port, &hints, &res) == 0) {
		if (ob->ai)
			freeaddrinfo(ob->ai);
		ob->ai = ob->ai_next = res;
		return 1;
	}
	if (ob->dns)
		return 0;
	struct dns_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->refs = 2;
	snprintf(j->host, sizeof(j->host), "%s", ob->conf.u.host);
	snprintf(j->port, sizeof(j->port), "%s", port);
	j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (j->efd < 0) {
		free(j);
		return -errno;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_t th;
	int rc = pthread_create(&th, &attr, dns_thread, j);
	pthread_attr_destroy(&attr);
	if (rc) {
		close(j->efd);
		free(j);
		return -rc;
	}
	ob->dns = j;
	ob->dns_w.fd = j->efd;
	ob->dns_w.fn = dns_on_done;
	rc = loop_add(&ob->e.ag->loop, &ob->dns_w, EPOLLIN);
	if (rc) {
		ob->dns_w.fd = -1;
		dns_job_put(j); /* the thread keeps its reference */
		ob->dns = NULL;
		return rc;
	}
	return 0;
}

void otlp_base_cancel_resolve(struct otlp_base *ob)
{
	dns_cancel(ob);
}

void otlp_base_resolve(struct otlp_base *ob)
{
	int rc = ob_resolve(ob);
	if (rc == 0)
		return;
	ob->on_resolved(ob, rc > 0 ? 0 : rc);
}

int otlp_base_connect_next(struct otlp_base *ob, bool *done)
{
	int err = -ENOENT;
	*done = false;
	while (ob->ai_next) {
		struct addrinfo *ai = ob->ai_next;
		ob->ai_next = ai->ai_next;
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (ob->conf.sndbuf)
			(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &ob->conf.sndbuf,
					 sizeof(ob->conf.sndbuf));
		ob->c.connects++;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			*done = true;
			return fd;
		}
		if (errno == EINPROGRESS)
			return fd;
		err = -errno;
		close(fd);
	}
	return err;
}

void otlp_base_stats_json(struct otlp_base *ob, struct sbuf *o)
{
	const struct otlp_counters *c = &ob->c;
	sbuf_puts(o, ",\"url\":");
	sbuf_json_str(o, ob->conf.url, strlen(ob->conf.url));
	sbuf_printf(o,
		    ",\"protocol\":\"%s\",\"requests\":%llu,\"responses_ok\":%llu,"
		    "\"responses_retryable\":%llu,\"responses_permanent\":%llu,"
		    "\"partial_responses\":%llu,\"rejected_spans\":%llu,\"transport_errors\":%llu,"
		    "\"timeouts\":%llu,\"connects\":%llu,\"connect_failures\":%llu,"
		    "\"dns_failures\":%llu,\"let_go_queue_full\":%llu,\"let_go_retry_budget\":%llu,"
		    "\"let_go_permanent\":%llu,\"copies\":%llu,\"zc_sends\":%llu,"
		    "\"zc_completions\":%llu,\"zc_copied\":%llu,\"would_block\":%llu,"
		    "\"isolations\":%llu,\"isolated_let_go_groups\":%llu",
		    otlp_protocol_name(ob->conf.protocol), (unsigned long long)c->requests,
		    (unsigned long long)c->responses_ok, (unsigned long long)c->responses_retryable,
		    (unsigned long long)c->responses_permanent, (unsigned long long)c->partial_responses,
		    (unsigned long long)c->rejected_spans, (unsigned long long)c->transport_errors,
		    (unsigned long long)c->timeouts, (unsigned long long)c->connects,
		    (unsigned long long)c->connect_failures, (unsigned long long)c->dns_failures,
		    (unsigned long long)c->queue_full_let_go, (unsigned long long)c->retry_budget_let_go,
		    (unsigned long long)c->permanent_let_go, (unsigned long long)c->copies,
		    (unsigned long long)c->zc_sends, (unsigned long long)c->zc_completions,
		    (unsigned long long)c->zc_copied, (unsigned long long)c->would_block,
		    (unsigned long long)c->isolations, (unsigned long long)c->isolated_let_go_groups);
	/* let go by cause, in spans (they add up to let_go_spans) */
	sbuf_printf(o,
		    ",\"let_go_spans_permanent\":%llu,\"let_go_spans_retry_budget\":%llu,"
		    "\"let_go_spans_queue_full\":%llu,\"let_go_spans_hold_budget\":%llu,"
		    "\"let_go_spans_spool_full\":%llu,\"let_go_spans_other\":%llu",
		    (unsigned long long)c->lg_permanent, (unsigned long long)c->lg_retry_budget,
		    (unsigned long long)c->lg_queue_full, (unsigned long long)c->lg_hold_budget,
		    (unsigned long long)c->lg_spool_full, (unsigned long long)c->lg_other);
	sbuf_printf(o,
		    ",\"held_bytes\":%llu,\"hold_budget\":%llu,\"spilled_batches\":%llu,"
		    "\"spilled_spans\":%llu,\"replayed_batches\":%llu,\"replayed_spans\":%llu",
		    (unsigned long long)ob->ring_held_bytes, (unsigned long long)ob->hold_budget,
		    (unsigned long long)c->spilled_batches, (unsigned long long)c->spilled_spans,
		    (unsigned long long)c->replayed_batches, (unsigned long long)c->replayed_spans);
	const struct spool *sp = ob->spool;
	if (sp)
		sbuf_printf(o,
			    ",\"spool_bytes\":%llu,\"spool_capacity\":%llu,\"spool_spans\":%llu,"
			    "\"spool_records\":%llu,\"spool_oldest_age_ms\":%llu,"
			    "\"spool_written_spans\":%llu,\"spool_written_bytes\":%llu,"
			    "\"spool_loaded_spans\":%llu,\"spool_let_go_spans\":%llu,"
			    "\"spool_let_go_records\":%llu,\"spool_write_errors\":%llu,"
			    "\"spool_write_ns\":%llu,\"spool_read_ns\":%llu",
			    (unsigned long long)sp->bytes, (unsigned long long)sp->cap,
			    (unsigned long long)sp->pending_spans, (unsigned long long)sp->pending_records,
			    (unsigned long long)spool_oldest_age_ms(sp),
			    (unsigned long long)sp->written_spans, (unsigned long long)sp->written_bytes,
			    (unsigned long long)sp->loaded_spans, (unsigned long long)sp->let_go_spans,
			    (unsigned long long)sp->let_go_records, (unsigned long long)sp->write_errors,
			    (unsigned long long)sp->write_ns, (unsigned long long)sp->read_ns);
}

static bool is_otlp(const struct exporter *e)
{
	return strncmp(e->ops->kind, "otlp_", 5) == 0;
}

void otlp_base_prometheus(struct agent *ag, struct sbuf *o)
{
	enum { V_SENT, V_FAILED, V_SPILLED, V_REPLAYED, V_HELD_BYTES, V_BUDGET, V_INFLIGHT,
	       V_SPOOL_BYTES, V_SPOOL_CAP, V_SPOOL_SPANS, V_SPOOL_AGE, N_V };
	static const struct {
		const char *name, *type, *help;
	} m[N_V] = {
		{"spanring_exporter_sent_spans_total", "counter", "Spans the backend took."},
		{"spanring_exporter_send_failed_spans_total", "counter",
		 "Spans let go, by cause (the causes add up to spanring_exporter_let_go_spans_total)."},
		{"spanring_exporter_spilled_spans_total", "counter",
		 "Spans moved from the ring to the instance's spool."},
		{"spanring_exporter_replayed_spans_total", "counter",
		 "Spans delivered from the instance's spool."},
		{"spanring_exporter_held_bytes", "gauge", "Ring bytes the instance holds."},
		{"spanring_exporter_hold_budget_bytes", "gauge",
		 "Ring bytes the instance may hold (0: no limit)."},
		{"spanring_exporter_batches_in_flight", "gauge", "Batches in requests on the wire."},
		{"spanring_exporter_spool_bytes", "gauge", "Bytes in the instance's spool."},
		{"spanring_exporter_spool_capacity_bytes", "gauge", "Capacity of the spool."},
		{"spanring_exporter_spool_spans", "gauge", "Spans waiting in the spool."},
		{"spanring_exporter_spool_oldest_age_seconds", "gauge",
		 "Age of the oldest record waiting in the spool."},
	};
	for (int k = 0; k < N_V; k++) {
		bool head = false;
		for (size_t i = 0; i < ag->n_exp; i++) {
			struct exporter *e = ag->exp[i];
			if (!is_otlp(e))
				continue;
			struct otlp_base *ob = container_of(e, struct otlp_base, e);
			const struct spool *sp = ob->spool;
			if (k >= V_SPOOL_BYTES && !sp)
				continue;
			if (!head) {
				sbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help,
					    m[k].name, m[k].type);
				head = true;
			}
			if (k == V_FAILED) {
				const struct otlp_counters *c = &ob->c;
				const struct {
					const char *cause;
					uint64_t v;
				} cs[] = {{"permanent", c->lg_permanent},     {"retry_budget", c->lg_retry_budget},
					  {"queue_full", c->lg_queue_full},   {"hold_budget", c->lg_hold_budget},
					  {"spool_full", c->lg_spool_full},   {"other", c->lg_other}};
				for (size_t j = 0; j < sizeof(cs) / sizeof(cs[0]); j++)
					sbuf_printf(o, "%s{exporter=\"%s\",cause=\"%s\"} %llu\n", m[k].name,
						    e->name, cs[j].cause, (unsigned long long)cs[j].v);
				continue;
			}
			if (k == V_SPOOL_AGE) {
				sbuf_printf(o, "%s{exporter=\"%s\"} %.3f\n", m[k].name, e->name,
					    (double)spool_oldest_age_ms(sp) / 1e3);
				continue;
			}
			uint64_t v = k == V_SENT	   ? e->st.spans
				     : k == V_SPILLED	   ? ob->c.spilled_spans
				     : k == V_REPLAYED	   ? ob->c.replayed_spans
				     : k == V_HELD_BYTES   ? ob->ring_held_bytes
				     : k == V_BUDGET	   ? ob->hold_budget
				     : k == V_INFLIGHT	   ? ob->n_busy
				     : k == V_SPOOL_BYTES  ? sp->bytes
				     : k == V_SPOOL_CAP	   ? sp->cap
							   : sp->pending_spans;
			sbuf_printf(o, "%s{exporter=\"%s\"} %llu\n", m[k].name, e->name,
				    (unsigned long long)v);
		}
	}
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

/* ---- construction ---------------------------------------------------------- */

int exp_otlp_create(struct agent *ag, struct exporter **out)
{
	enum otlp_protocol forced;
	if (otlp_kind_protocol(ag->cfg->exporters, &forced)) {
		log_error("exporters: enable one of otlp, otlp_http, otlp_grpc (one OTLP exporter "
			  "per agent)");
		return -EINVAL;
	}
	return exp_otlp_create_cfg(ag, ag->cfg, forced, NULL, out);
}

int exp_otlp_create_cfg(struct agent *ag, const struct agent_config *cfg, int forced_proto,
			const char *name, struct exporter **out)
{
	enum otlp_protocol forced = (enum otlp_protocol)forced_proto;
	struct otlp_conf conf;
	char err[512];
	const char *nm = name ? name : "OTLP exporter";
	int rc = otlp_conf_resolve(&conf, cfg, forced, otlp_getenv, err, sizeof(err));
	if (rc) {
		log_error("%s: %s", nm, err);
		return rc;
	}
	log_info("%s: %s to %s (endpoint from %s, protocol from %s), timeout %.3fs "
		 "(%s), %zu headers (%s), compression %s (%s)",
		 nm, otlp_protocol_name(conf.protocol), conf.url, conf.src_endpoint, conf.src_protocol,
		 (double)conf.timeout_ns / 1e9, conf.src_timeout, conf.n_headers, conf.src_headers,
		 conf.gzip ? "gzip" : "none", conf.src_compression);
	if (conf.protocol == OTLP_PROTO_GRPC)
		rc = otlp_grpc_create(ag, &conf, out);
	else
		rc = otlp_http_create(ag, &conf, out);
	if (rc) {
		log_error("%s: cannot start: %s", nm, strerror(-rc));
		otlp_conf_free(&conf);
		return rc;
	}
	if (name)
		snprintf((*out)->name, sizeof((*out)->name), "%s", name);
	/* Hold budget and spool: <state_dir>/spool/<name, '/' as '.'>. */
	struct otlp_base *ob = container_of(*out, struct otlp_base, e);
	char dir[PATH_MAX];
	const char *sdir = cfg->otlp_spool_dir;
	if (!sdir && cfg->otlp_spool_bytes) {
		char state[PATH_MAX - 64];
		agent_state_dir(cfg, state, sizeof(state));
		char id[sizeof(ob->e.name)];
		snprintf(id, sizeof(id), "%s", ob->e.name);
		for (char *q = id; *q; q++)
			if (*q == '/')
				*q = '.';
		snprintf(dir, sizeof(dir), "%s/spool/%s", state, id);
		sdir = dir;
	}
	rc = otlp_base_setup_spool(ob, cfg->otlp_hold_budget, cfg->otlp_probe_interval_us * 1000,
				   sdir, cfg->otlp_spool_bytes);
	if (rc) {
		log_error("%s: spool: %s", nm, strerror(-rc));
		(*out)->ops->destroy(*out);
		*out = NULL;
	}
	return rc;
}
