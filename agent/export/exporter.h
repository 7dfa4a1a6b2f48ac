/* SPDX-License-Identifier: MIT */
/*
 * The exporter interface. An exporter receives each finished batch; the
 * batch is an ExportTraceServiceRequest described by iovecs whose span
 * bytes point into ring memory. The exporter may finish at once (file,
 * console) or later (network exporters): to keep a batch past submit() it
 * takes a reference with batch_ref() and drops it with batch_unref() when
 * the backend acknowledged, when it gave up (counted as let go), or when
 * the bytes reached a file. The ring space behind a batch is released only
 * when every exporter has dropped it, so the ring is the retry buffer: an
 * exporter that retries keeps its reference and never copies.
 *
 * Asynchronous exporters register their fds and timers with the agent's
 * event loop (ag->loop, see loop.h); everything runs on the agent thread.
 */
#ifndef SPANRING_AGENT_EXPORTER_H
#define SPANRING_AGENT_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

struct agent;
struct batch;
struct exporter;
struct sbuf;

/* Counters every exporter keeps (reported by the control socket and
 * Prometheus). "let go" = given up after retries or a permanent error. */
struct exp_stats {
	uint64_t batches;        /* batches delivered */
	uint64_t spans;          /* spans delivered */
	uint64_t bytes;          /* request bytes delivered */
	uint64_t failures;       /* failed attempts */
	uint64_t retries;        /* attempts after a failure */
	uint64_t let_go_batches; /* batches given up */
	uint64_t let_go_spans;   /* spans given up */
	uint64_t held;           /* batches currently referenced */
};

struct exporter_ops {
	const char *kind;
	/*
	 * Deliver b, now or later. Returns 0 when b was delivered or is held
	 * (with a batch_ref), or -errno when it failed for good (the exporter
	 * counted it as let go; the core does nothing more).
	 */
	int (*submit)(struct exporter *e, struct batch *b);
	/*
	 * Shutdown: try to deliver every held batch before deadline_ns
	 * (CLOCK_MONOTONIC); may return early and be called again while the
	 * loop runs. Returns the number of batches still held.
	 */
	size_t (*flush)(struct exporter *e, uint64_t deadline_ns);
	/* SIGHUP: reopen outputs. 0 or -errno. May be NULL. */
	int (*reopen)(struct exporter *e);
	/* Give up everything still held (counted) and free e. */
	void (*destroy)(struct exporter *e);
	/* Optional: extra JSON members for the stats (",\"k\":v" form). */
	void (*stats_json)(struct exporter *e, struct sbuf *out);
};

struct exporter {
	const struct exporter_ops *ops;
	struct agent *ag;
	char name[32];
	struct exp_stats st;
	const char *tls_mode; /* OTLP over TLS: "ktls", "userspace" (NULL: no TLS) */
};

#endif
