/* SPDX-License-Identifier: MIT */
/*
 * What an exporter is, all the core needs to know of exporters.
 *
 * An exporter receives each finished batch; the batch is an
 * ExportTraceServiceRequest described by iovecs whose span bytes point
 * into ring memory. The exporter may finish at once (file, console) or
 * later (network exporters): to keep a batch past submit() it reports
 * hold to the core, and release when the backend acknowledged, when it
 * gave up (counted as let go), or when the bytes reached a file. The
 * core applies these (references on the batch); the ring space behind a
 * batch is released only when every exporter has released it, so the
 * ring is the retry buffer: an exporter that retries holds and never
 * copies.
 *
 * Exporters call nothing of the core but what struct exp_host lends
 * them. Asynchronous exporters register their fds and timers with the
 * agent's event loop (host->loop, see loop.h); everything runs on the
 * agent thread.
 */
#ifndef SPANRING_AGENT_EXPORTER_H
#define SPANRING_AGENT_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct agent;
struct agent_config;
struct agent_producer;
struct batch;
struct exporter;
struct loop;
struct sbuf;

/* Who a batch segment's spans came from (batch_seg.p), as exporters name
 * it in their output and logs. */
struct exp_producer_id {
	uint64_t id;         /* the agent's number for the producer */
	pid_t pid;           /* SO_PEERCRED */
	const char *service; /* service.name; "" when unknown. Valid while a
				batch naming the producer is held */
};

/*
 * What the core lends every exporter (struct agent's xhost, set up by
 * agent_init): the loop it runs on, the agent-wide settings, where a
 * constructor explains a failure, and the core's side of a batch's life.
 */
struct exp_host {
	struct loop *loop;
	const struct agent_config *cfg;
	char *err;              /* why a constructor failed, naming the path */
	size_t errlen;
	const bool *stopping;   /* the agent is shutting down */
	const bool *no_release; /* exiting: a released batch keeps its ring bytes */
	struct agent *ag;       /* the core's own argument to the calls below */
	/* Keep b past submit(); each hold is ended by one release. */
	void (*hold)(struct batch *b);
	void (*release)(struct batch *b);
	/* A finalized batch in agent memory: a copy of one
	 * ExportTraceServiceRequest of len bytes with spans spans (records
	 * read back from a spool). Its one reference is the caller's (end it
	 * with release). NULL when out of memory. */
	struct batch *(*batch_of_bytes)(struct agent *ag, const uint8_t *msg, size_t len,
					uint64_t spans);
	/* The zero-copy proof (debug_zero_copy_check): check the iovecs about
	 * to be sent (agent/zc.c, zc_check_iov); returns the violations. */
	size_t (*zc_check)(struct agent *ag, const struct iovec *iov, const uint8_t *kind, size_t n,
			   uint64_t span_bytes);
	/* The producer a segment names (the producer is the core's). */
	struct exp_producer_id (*producer_id)(const struct agent_producer *p);
};

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
	 * (reported with host->hold), or -errno when it failed for good (the
	 * exporter counted it as let go; the core does nothing more).
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
	const struct exp_host *host;
	char name[32];
	struct exp_stats st;
	const char *tls_mode; /* OTLP over TLS: "ktls", "userspace" (NULL: no TLS) */
};

/* ---- the kinds ----------------------------------------------------------- */

/*
 * One row per exporter kind (kinds.c): the TYPE of an instance TYPE[/NAME]
 * (instances.c), its bit in agent_config.exporters, the settings an
 * instance of it takes, and its constructor. Adding a kind is its own file
 * (exp_KIND.c, with its constructor from settings), its row and the
 * constructor's prototype below, and an AGENT_EXP_* bit (config.h).
 */
struct exp_kind {
	const char *type;
	uint32_t bit;           /* AGENT_EXP_* (config.h) */
	const char *key_prefix; /* its agent-wide keys ("file."); per instance without
				   the prefix. NULL: none */
	bool retry_max;         /* takes retry_max (the agent-wide export_retry_max) */
	/*
	 * Build an instance from cfg: the agent's settings for the unnamed
	 * instance (name NULL), the instance's merged settings (instances.h,
	 * inst_merged_config) for a named one. Open or connect what it needs;
	 * errors are logged or left in host->err. 0 or -errno.
	 */
	int (*create)(const struct exp_host *host, const struct agent_config *cfg, const char *name,
		      struct exporter **out);
};

extern const struct exp_kind exp_kinds[];
extern const size_t exp_n_kinds;

/* The constructors of the rows, each in its kind's file (exp_KIND.c). */
int exp_file_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			 const char *name, struct exporter **out);
int exp_json_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			 const char *name, struct exporter **out);
int exp_console_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			    const char *name, struct exporter **out);
int exp_null_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			 const char *name, struct exporter **out);
int exp_otlp_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			 const char *name, struct exporter **out);
int exp_otlp_http_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			      const char *name, struct exporter **out);
int exp_otlp_grpc_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			      const char *name, struct exporter **out);

/* The kind of a TYPE name (len bytes) or of an AGENT_EXP_* bit; NULL if none. */
const struct exp_kind *exp_kind_by_type(const char *type, size_t len);
const struct exp_kind *exp_kind_by_bit(uint32_t bit);

/* ---- constructors with their own options (the kinds' rows use them; so
 * do the unit tests, which observe the writes) ---------------------------- */

/* Permission bits of output files the agent creates (key output_mode). */
#define AGENT_OUTPUT_MODE_DEFAULT 0600u

typedef ssize_t (*exp_writev_fn)(int fd, const struct iovec *iov, int iovcnt);

struct exp_file_opts {
	const char *path;
	uint64_t rotate_bytes;  /* 0: never rotate */
	uint32_t rotate_keep;
	uint64_t retry_max_us;  /* give a failing batch up after this long */
	uint32_t mode;          /* of a file it creates; 0: AGENT_OUTPUT_MODE_DEFAULT */
	exp_writev_fn writev_fn; /* NULL: writev(2); tests observe the iovecs */
};

/*
 * The file constructors open their output (creating it with the mode,
 * refusing an existing file that is not the exporter's own output); when
 * that fails they return -errno with a message naming the path in host->err.
 */
/* Length-delimited ExportTraceServiceRequest protobuf, from ring memory. */
int exp_file_create(const struct exp_host *host, const struct exp_file_opts *o,
		    struct exporter **out);
/* OTLP/JSON, one ExportTraceServiceRequest per line (copies: opt-in). */
int exp_json_create(const struct exp_host *host, const char *path, uint64_t rotate_bytes,
		    uint32_t rotate_keep, uint32_t mode, struct exporter **out);
/* One human-readable line per span. */
int exp_console_create(const struct exp_host *host, const char *path, uint32_t mode,
		       struct exporter **out);
/* Counts and discards (benchmarks). */
int exp_null_create(const struct exp_host *host, struct exporter **out);

/* Prometheus lines of the OTLP instances among e[0..n) (the Collector's
 * names with the spanring_ prefix, label exporter="TYPE/NAME"). */
void exp_otlp_prometheus(struct exporter *const *e, size_t n, struct sbuf *out);

#endif
