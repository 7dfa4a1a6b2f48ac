/* SPDX-License-Identifier: MIT */
/*
 * What the OTLP/HTTP and OTLP/gRPC exporters share: the queue of held
 * batches with their retry state, the policy applied to each answer, the
 * connection backoff, and the non-blocking resolver and connector.
 *
 * A batch is held (exp_host.hold) from submit() until it is
 * delivered or let go; nothing is copied. Waiting batches are sent
 * together: the ExportTraceServiceRequest messages of several batches,
 * concatenated, are one valid ExportTraceServiceRequest (repeated fields
 * of concatenated messages are merged), so one request carries several
 * batches as a longer list of iovecs.
 */
#ifndef SPANRING_AGENT_OTLP_BASE_H
#define SPANRING_AGENT_OTLP_BASE_H

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "batch.h"
#include "exporter.h"
#include "log.h"
#include "loop.h"
#include "otlp_conf.h"

struct oq_item {
	struct batch *b;
	struct oq_item *next, *prev;
	uint64_t first_ns;      /* first attempt (submit time) */
	uint64_t not_before_ns; /* next attempt not before */
	uint32_t attempts;      /* failed attempts so far */
	bool busy;              /* part of a request on the wire */
	/*
	 * Isolation (docs/SECURITY.md, the known gap): a request with the
	 * spans of several producers was refused as malformed (HTTP 400). The
	 * batch is then sent again one producer (ResourceSpans group) per
	 * request, so that only the culprit's spans are let go. iso_next is
	 * the next group to send; iso_spans_done the spans of the groups
	 * already delivered or let go.
	 */
	bool isolate;
	uint32_t iso_next;
	uint64_t iso_spans_done;
	uint64_t iso_delivered;
	/* Records replayed from the spool (heap, not ring): where they end in
	 * it, committed once delivered. */
	bool spooled;
	uint64_t sp_seq, sp_off;
};

enum otlp_verdict {
	OTLP_DELIVERED = 0,
	OTLP_RETRY,       /* retryable: again after a delay, within the budget */
	OTLP_RETRY_NOW,   /* a reused connection died before answering: at once,
			     not counted as a failure (once per request) */
	OTLP_DROP,        /* not retryable: let go */
};

struct otlp_result {
	enum otlp_verdict v;
	uint64_t delay_ns;  /* server-given delay (Retry-After, RetryInfo); 0: backoff */
	bool has_delay;
	const char *what;   /* short reason, for the log */
	char detail[256];   /* the server's message, if any */
	bool partial;       /* partial_success present */
	int64_t rejected;   /* partial_success.rejected_spans */
	bool isolate_ok;    /* OTLP_DROP for malformed data (HTTP 400): a request
			       of several producers is resent per producer */
};

/* The counters beyond struct exp_stats, in the stats JSON. */
struct otlp_counters {
	uint64_t requests, responses_ok, responses_retryable, responses_permanent;
	uint64_t partial_responses, rejected_spans;
	uint64_t transport_errors, timeouts, connects, connect_failures, dns_failures;
	uint64_t queue_full_let_go, retry_budget_let_go, permanent_let_go;
	uint64_t zc_sends, zc_completions, zc_copied;
	uint64_t copies; /* requests whose body was rewritten (gzip, JSON) */
	uint64_t would_block; /* writes the socket did not take whole (cursor kept) */
	uint64_t isolations;  /* refused requests resent per producer */
	uint64_t isolated_let_go_groups; /* producers' groups refused on their own */
	/* hold budget and spool (docs/EXPORTERS.md) */
	uint64_t spilled_batches, spilled_spans;   /* moved from the ring to the spool */
	uint64_t replayed_batches, replayed_spans; /* delivered from the spool */
	/* let go, in spans, by cause: they add up to exp_stats.let_go_spans */
	uint64_t lg_permanent, lg_retry_budget, lg_queue_full, lg_hold_budget, lg_spool_full,
		lg_other;
};

struct dns_job;
struct spool;

struct otlp_base {
	struct exporter e;
	struct otlp_conf conf;
	struct oq_item *head, *tail;
	size_t n_held, n_busy;
	struct loop_timer wake_t;  /* earliest not_before / connection backoff */
	uint64_t conn_not_before_ns;
	uint32_t conn_failures;    /* consecutive */
	uint64_t rnd;              /* xorshift state for jitter */
	struct otlp_counters c;
	struct agent_log_rls log_rl; /* its rate-limited lines: its own limits */
	/* transport: try to send what is ready (called after every change) */
	void (*kick)(struct otlp_base *ob);
	/* resolver */
	struct dns_job *dns;
	struct loop_watch dns_w;
	struct addrinfo *ai;       /* resolved addresses (freeaddrinfo) */
	struct addrinfo *ai_next;  /* next one to try */
	void (*on_resolved)(struct otlp_base *ob, int err);
	/* Isolation from the other instances: ring bytes this instance may
	 * hold (0: no limit); beyond, the oldest waiting batches go to the
	 * spool (or are let go without one). */
	uint64_t hold_budget;
	uint64_t ring_held_bytes;
	uint64_t probe_ns;         /* a failed backend is tried this often */
	struct spool *spool;       /* NULL: none */
	struct oq_item *spool_item; /* the replayed records in the queue */
};

void otlp_base_init(struct otlp_base *ob, const struct exp_host *host,
		    const struct exporter_ops *ops, const char *name);
void otlp_base_fini(struct otlp_base *ob);

/* submit(): hold b (let the oldest waiting go when max_held is reached). */
int otlp_base_submit(struct otlp_base *ob, struct batch *b);

/*
 * Take the ready batches for one request, oldest first, up to
 * max_request_bytes of message (at least one) and max_n: marked busy,
 * stored in out. Returns how many (0: none ready).
 */
size_t otlp_base_take(struct otlp_base *ob, uint64_t now, struct oq_item **out, size_t max_n);

/*
 * The ResourceSpans group g (one producer) of a finalized batch as a slice
 * of its message iovecs: iov[1 + *first .. + *n) of b, *bytes long, with
 * *spans spans of producer *p. 0, or -1 when g is out of range.
 */
int otlp_batch_group(const struct batch *b, uint32_t g, size_t *first, size_t *n,
		     uint64_t *bytes, uint64_t *spans, const struct agent_producer **p);

/* Apply the answer to the batches of one request. */
void otlp_base_done(struct otlp_base *ob, struct oq_item **items, size_t n,
		    const struct otlp_result *r);

/* The connection failed (refused, DNS, reset): back off reconnecting. */
void otlp_base_conn_failed(struct otlp_base *ob);
void otlp_base_conn_ok(struct otlp_base *ob);
/* May a connection be attempted now? Arms the wake timer otherwise. */
bool otlp_base_may_connect(struct otlp_base *ob, uint64_t now);
/* Is a batch ready to go now? Arms the wake timer for the earliest one. */
bool otlp_base_ready(struct otlp_base *ob, uint64_t now);

/* Resolve conf.u.host:port without blocking the loop (a helper thread;
 * numeric hosts at once). on_resolved(ob, 0 or -errno) runs on the loop. */
void otlp_base_resolve(struct otlp_base *ob);
/* Abandon a resolution under way (the helper thread finishes alone). */
void otlp_base_cancel_resolve(struct otlp_base *ob);
/* Start a non-blocking connect to the next resolved address. fd or -errno
 * (-ENOENT: none left). *done when connected at once. */
int otlp_base_connect_next(struct otlp_base *ob, bool *done);

void otlp_base_stats_json(struct otlp_base *ob, struct sbuf *out);

/*
 * Hold budget and spool of an instance (exp_otlp.c): budget 0
 * means no limit; spool_bytes 0 no spool. 0 or -errno.
 */
int otlp_base_setup_spool(struct otlp_base *ob, uint64_t hold_budget, uint64_t probe_ns,
			  const char *spool_dir, uint64_t spool_bytes);

/* Let every held batch go (counted): shutdown. */
void otlp_base_let_go_all(struct otlp_base *ob, const char *why);

/*
 * The queue's own steps, shared by otlp_base.c (the queue) and
 * otlp_answer.c (what an answer does to it); not for the transports.
 */
uint64_t otlp_q_rand(struct otlp_base *ob);
/* Make sure the wake timer fires by when. */
void otlp_q_arm(struct otlp_base *ob, uint64_t when);
/* Take it out of the queue and drop its batch. */
void otlp_q_unlink(struct otlp_base *ob, struct oq_item *it);
/* Let it go, counted in spans under *cause (the causes add up to the total). */
void otlp_q_let_go(struct otlp_base *ob, struct oq_item *it, uint64_t *cause);
/* Move a waiting batch out of the ring: to the spool, else let go under *cause. */
void otlp_q_spill(struct otlp_base *ob, struct oq_item *it, uint64_t *cause);
/* Over the hold budget: the oldest waiting batches leave the ring. */
void otlp_q_enforce_budget(struct otlp_base *ob);
/* Queue the spool's next records when the backend may take them. */
void otlp_q_spool_feed(struct otlp_base *ob);

/* The two transports. */
int otlp_http_create(const struct exp_host *host, struct otlp_conf *conf, struct exporter **out);
int otlp_grpc_create(const struct exp_host *host, struct otlp_conf *conf, struct exporter **out);

#endif
