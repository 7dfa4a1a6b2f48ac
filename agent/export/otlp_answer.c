/* SPDX-License-Identifier: MIT */
/*
 * What the OTLP exporters do with a backend's answer to one request
 * (otlp_base.h, otlp_base_done): count it, deliver or let go its batches,
 * schedule their retries, or resend a refused request one producer at a
 * time (isolation).
 */
#include "otlp_base.h"
#include "pbwire.h"

#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "otlp_retry.h"
#include "spool.h"

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

/* The answer to one group of a batch being isolated. True when handled. */
static bool isolated_done(struct otlp_base *ob, struct oq_item *it, const struct otlp_result *r,
			  uint64_t now)
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
		struct exp_producer_id who = ob->e.host->producer_id(p);
		AGENT_LOG_RL_OF(&ob->log_rl, AGENT_LOG_WARN,
				"exporter %s (%s): %s (not retryable)%s%s for the spans of "
				"producer %llu (pid %d, service '%s') alone: letting go of its "
				"%llu spans",
				ob->e.name, ob->conf.url, r->what, r->detail[0] ? ": " : "",
				r->detail,
				(unsigned long long)who.id, (int)who.pid, who.service,
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
		otlp_q_unlink(ob, it);
		return true;
	}
	/* The next group at once. */
	it->busy = false;
	ob->n_busy--;
	it->not_before_ns = 0;
	otlp_q_arm(ob, now);
	return true;
}

/* Spans and ResourceSpans groups of the request's batches; several: they
 * hold the spans of more than one producer. */
static void request_summary(struct oq_item **items, size_t n, uint64_t *spans, uint64_t *groups,
			    bool *several)
{
	const struct agent_producer *p0 = n && items[0]->b->nsegs ? items[0]->b->segs[0].p : NULL;
	*spans = *groups = 0;
	*several = false;
	for (size_t i = 0; i < n; i++) {
		*spans += items[i]->b->spans;
		*groups += items[i]->b->n_resource_spans;
		for (size_t j = 0; j < items[i]->b->nsegs && !*several; j++)
			*several = items[i]->b->segs[j].p != p0;
	}
}

/*
 * Malformed data in a request of several producers: one of them may have
 * rewritten span bytes after the agent walked them (the known gap,
 * docs/SECURITY.md). Resend each producer's spans on their own, from ring
 * memory as before, so that only the culprit's are let go.
 */
static void start_isolation(struct otlp_base *ob, struct oq_item **items, size_t n,
			    const struct otlp_result *r, uint64_t groups, uint64_t now)
{
	ob->c.responses_permanent++;
	ob->c.isolations++;
	AGENT_LOG_RL_OF(&ob->log_rl, AGENT_LOG_WARN,
			"exporter %s (%s): %s (not retryable)%s%s for a request of %zu batches "
			"with the spans of several producers (%llu groups): sending each "
			"producer's spans on their own",
			ob->e.name, ob->conf.url, r->what, r->detail[0] ? ": " : "", r->detail, n,
			(unsigned long long)groups);
	for (size_t i = 0; i < n; i++) {
		items[i]->isolate = true;
		items[i]->iso_next = 0;
		items[i]->busy = false;
		ob->n_busy--;
		items[i]->not_before_ns = 0;
	}
	otlp_q_arm(ob, now);
}

static void answer_delivered(struct otlp_base *ob, struct oq_item **items, size_t n,
			     const struct otlp_result *r, uint64_t spans)
{
	ob->c.responses_ok++;
	if (r->partial) {
		ob->c.partial_responses++;
		if (r->rejected > 0)
			ob->c.rejected_spans += (uint64_t)r->rejected;
		AGENT_LOG_RL_OF(&ob->log_rl, AGENT_LOG_WARN,
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
		otlp_q_unlink(ob, items[i]);
	}
	otlp_q_spool_feed(ob);
}

static void answer_dropped(struct otlp_base *ob, struct oq_item **items, size_t n,
			   const struct otlp_result *r, uint64_t spans)
{
	ob->c.responses_permanent++;
	AGENT_LOG_RL_OF(&ob->log_rl, AGENT_LOG_WARN,
			"exporter %s (%s): %s (not retryable)%s%s; letting go of %zu batches (%llu "
			"spans)",
			ob->e.name, ob->conf.url, r->what, r->detail[0] ? ": " : "", r->detail, n,
			(unsigned long long)spans);
	for (size_t i = 0; i < n; i++) {
		ob->e.st.failures++;
		ob->c.permanent_let_go++;
		otlp_q_let_go(ob, items[i], &ob->c.lg_permanent);
	}
	otlp_q_spool_feed(ob);
}

/* A reused connection died before answering: again at once, and this
 * attempt is not counted. */
static void answer_retry_now(struct otlp_base *ob, struct oq_item **items, size_t n, uint64_t now)
{
	for (size_t i = 0; i < n; i++) {
		items[i]->busy = false;
		ob->n_busy--;
		items[i]->not_before_ns = 0;
		if (items[i]->attempts)
			ob->e.st.retries--;
	}
	otlp_q_arm(ob, now);
}

/* What became of the batches of a request that failed and may be retried. */
struct retry_outcome {
	size_t gone, spilled;      /* let go, moved to the spool: out of retry time */
	uint64_t gone_spans;
	uint64_t next_min;         /* earliest next attempt of those that wait */
};

/* One batch of a retryable failure: wait for its next attempt, or, out of
 * retry time, go to the spool if there is one (it is retried from there),
 * else be let go. */
static void retry_item(struct otlp_base *ob, struct oq_item *it, const struct otlp_result *r,
		       uint64_t now, struct retry_outcome *o)
{
	ob->e.st.failures++;
	it->attempts++;
	uint64_t d = r->has_delay ? r->delay_ns
				  : otlp_backoff_ns(ob->conf.retry_initial_ns,
						    ob->conf.retry_max_backoff_ns, it->attempts,
						    otlp_q_rand(ob));
	it->busy = false;
	ob->n_busy--;
	if (it->spooled ||
	    otlp_retry_in_budget(it->first_ns, now + d, ob->conf.retry_max_elapsed_ns)) {
		it->not_before_ns = now + d;
		if (it->not_before_ns < o->next_min)
			o->next_min = it->not_before_ns;
		return;
	}
	if (ob->spool && !it->isolate) {
		otlp_q_spill(ob, it, &ob->c.lg_retry_budget);
		o->spilled++;
		return;
	}
	it->busy = true; /* let go as the request's batch it was */
	ob->n_busy++;
	o->gone++;
	o->gone_spans += it->b->spans;
	ob->c.retry_budget_let_go++;
	otlp_q_let_go(ob, it, &ob->c.lg_retry_budget);
}

/* One true line: what failed, then what becomes of the batches (never
 * "0 batches retry"). */
static void retry_log(struct otlp_base *ob, const struct otlp_result *r, size_t n,
		      const struct retry_outcome *o, uint64_t now)
{
	const char *sep = r->detail[0] ? ": " : "";
	double budget_s = (double)ob->conf.retry_max_elapsed_ns / 1e9;
	if (o->gone == n) {
		AGENT_LOG_RL_OF(&ob->log_rl, AGENT_LOG_WARN,
				"exporter %s (%s): %s%s%s; letting go of %zu batches (%llu spans): "
				"their retry time (export_retry_max %.1fs) is exhausted",
				ob->e.name, ob->conf.url, r->what, sep, r->detail, o->gone,
				(unsigned long long)o->gone_spans, budget_s);
		return;
	}
	size_t waiting = n - o->gone - o->spilled;
	if (waiting)
		AGENT_LOG_RL_OF(&ob->log_rl, AGENT_LOG_WARN,
				"exporter %s (%s): %s%s%s; %zu batches retry in %.3fs%s",
				ob->e.name, ob->conf.url, r->what, sep, r->detail, waiting,
				(double)(o->next_min - now) / 1e9,
				r->has_delay ? " (as the server asked)" : "");
	if (o->spilled)
		AGENT_LOG_RL_OF(&ob->log_rl, AGENT_LOG_WARN,
				"exporter %s (%s): %s%s%s; %zu batches out of retry "
				"time (export_retry_max %.1fs) moved to the spool",
				ob->e.name, ob->conf.url, r->what, sep, r->detail, o->spilled,
				budget_s);
	if (o->gone)
		AGENT_LOG_RL_OF(&ob->log_rl, AGENT_LOG_WARN,
				"exporter %s: letting go of %zu other batches (%llu spans): their "
				"retry time (export_retry_max %.1fs) is exhausted",
				ob->e.name, o->gone, (unsigned long long)o->gone_spans, budget_s);
}

static void answer_retry(struct otlp_base *ob, struct oq_item **items, size_t n,
			 const struct otlp_result *r, uint64_t now)
{
	struct retry_outcome o = {.next_min = UINT64_MAX};
	for (size_t i = 0; i < n; i++)
		retry_item(ob, items[i], r, now, &o);
	retry_log(ob, r, n, &o, now);
	if (o.next_min != UINT64_MAX)
		otlp_q_arm(ob, o.next_min);
	otlp_q_enforce_budget(ob);
	ob->c.responses_retryable++;
}

void otlp_base_done(struct otlp_base *ob, struct oq_item **items, size_t n,
		    const struct otlp_result *r)
{
	uint64_t now = agent_now_ns();
	uint64_t spans, groups;
	bool several;
	request_summary(items, n, &spans, &groups, &several);
	if (n == 1 && items[0]->isolate && isolated_done(ob, items[0], r, now))
		return;
	if (r->v == OTLP_DROP && r->isolate_ok && several && !items[0]->isolate) {
		start_isolation(ob, items, n, r, groups, now);
		return;
	}
	switch (r->v) {
	case OTLP_DELIVERED:
		answer_delivered(ob, items, n, r, spans);
		break;
	case OTLP_DROP:
		answer_dropped(ob, items, n, r, spans);
		break;
	case OTLP_RETRY_NOW:
		answer_retry_now(ob, items, n, now);
		break;
	case OTLP_RETRY:
		answer_retry(ob, items, n, r, now);
		break;
	}
}
