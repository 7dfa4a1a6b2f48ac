/* SPDX-License-Identifier: MIT */
/*
 * spanring-dump internals: the span sink (filters and the three output
 * forms), the read-only ring reader, the agent's control socket, and the
 * export-file reader. tools/spanring-dump.c holds the command line.
 */
#ifndef SPANRING_DUMP_DUMP_H
#define SPANRING_DUMP_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "otlp_common.pb-c.h"
#include "otlp_resource.pb-c.h"
#include "otlp_trace.pb-c.h"
#include "otlp_trace_service.pb-c.h"

typedef Opentelemetry__Proto__Trace__V1__Span dump_span_t;
typedef Opentelemetry__Proto__Resource__V1__Resource dump_resource_t;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope dump_scope_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue dump_kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue dump_any_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest dump_request_t;

/* Exit codes, documented in --help (most severe wins when several occur). */
enum {
	DUMP_EXIT_OK = 0,
	DUMP_EXIT_ERROR = 1,    /* anything else: I/O error, out of memory */
	DUMP_EXIT_USAGE = 2,
	DUMP_EXIT_NOAGENT = 3,  /* the agent's control socket cannot be reached */
	DUMP_EXIT_NOPID = 4,    /* no such process, or it has no spanring ring */
	DUMP_EXIT_PERM = 5,     /* permission denied (ring or control socket) */
	DUMP_EXIT_ABI = 6,      /* ring of an unsupported ABI major / required feature */
	DUMP_EXIT_CORRUPT = 7,  /* ring that breaks the ABI (header, framing, span bytes) */
	DUMP_EXIT_FILE = 8,     /* truncated or corrupt input file */
};

/* Keep the more significant of two exit codes (a real failure beats 0). */
static inline int dump_exit_merge(int a, int b)
{
	return a > b ? a : b;
}

/* Where a span came from, for messages and the human form. */
struct dump_ctx {
	const dump_resource_t *resource; /* may be NULL */
	const char *resource_schema;     /* may be NULL */
	const dump_scope_t *scope;       /* may be NULL */
	const char *scope_schema;        /* may be NULL */
	const char *service;             /* service.name, or a placeholder */
	pid_t pid;                       /* ring sources; 0 otherwise */
	int slot;                        /* ring slot, or -1 */
};

enum dump_format { DUMP_FMT_LINES, DUMP_FMT_JSON, DUMP_FMT_WATERFALL };

struct dump_filter {
	const char *service;   /* fnmatch pattern on service.name */
	const char *name;      /* substring of the span name */
	uint8_t trace[16];     /* trace id prefix (trace_len hex digits) */
	size_t trace_len;
	uint64_t min_ns;       /* minimum duration */
};

struct wf_span; /* a span kept for the waterfall */

struct dump_out {
	FILE *f;
	enum dump_format fmt;
	struct dump_filter flt;
	bool utc;
	bool verbose;          /* all attributes, events, links in the human form */
	bool utf8;             /* bars and tree in Unicode block characters */
	bool header_done;
	bool quiet;            /* print nothing (walks that only learn state) */
	int width;             /* terminal width for the waterfall */
	uint64_t seen, shown;  /* spans offered, spans that passed the filters */
	uint64_t limit;        /* show at most this many spans (0: no limit) */
	struct wf_span *wf;    /* kept spans (waterfall) */
	size_t n_wf, cap_wf;
};

void dump_out_init(struct dump_out *o, FILE *f, enum dump_format fmt);
/* Offer one span: filter it, then print it (lines, json) or keep it (waterfall). */
void dump_emit(struct dump_out *o, const struct dump_ctx *c, const dump_span_t *s);
/* A note between spans ("-- ..."): stdout in the human form, stderr with --json. */
void dump_note(struct dump_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as safe terminal text (control bytes and invalid UTF-8 escaped). */
void dump_fputs_safe(FILE *f, const char *s);
/* Print the waterfall(s) of the kept spans and free them. */
void dump_out_finish(struct dump_out *o);

/* Parse "5ms", "1.5s", "250us", "100ns", "2m"; 0 or -1. */
int dump_parse_duration(const char *s, uint64_t *ns);
/* Parse a hex trace-id prefix (1..32 digits) into f. 0 or -1. */
int dump_parse_trace(const char *s, struct dump_filter *f);
bool dump_filter_match(const struct dump_filter *f, const char *service, const dump_span_t *s);
/* Duration as text ("1.234ms"); out at least 16 bytes. */
void dump_fmt_duration(uint64_t ns, char *out, size_t n);
/* service.name of a resource, or NULL. */
const char *dump_service_name(const dump_resource_t *r);
/* Terminal width: TIOCGWINSZ on fd, else $COLUMNS, else 100. */
int dump_term_width(int fd);

/* ---- rings (ring.c) -------------------------------------------------------- */

struct dump_ring;

struct dump_ring_opts {
	const char *agent_socket; /* agent socket; NULL: the default (for ringfd) */
	const char *ctl_socket;   /* control socket; NULL: <agent socket>.ctl */
	bool use_agent;           /* may ask the agent for the fd */
	bool no_proc;             /* only the agent (tests) */
};

/*
 * Open every spanring ring of process pid, read-only: through
 * /proc/PID/fd, or (when that is refused or finds nothing and the agent is
 * allowed) the agent's `ringfd pid=PID`. *rings is a malloc'd array of
 * *n rings. Returns DUMP_EXIT_OK or a DUMP_EXIT_* code with a message in err.
 */
int dump_ring_open_pid(pid_t pid, const struct dump_ring_opts *o, struct dump_ring ***rings,
		       size_t *n, char *err, size_t errlen);
/* Adopt a ring fd (any read-only fd of the memfd): check, copy and validate
 * the header, map read-only. Takes the fd (closed on failure). */
int dump_ring_from_fd(int fd, pid_t pid, struct dump_ring **out, char *err, size_t errlen);
void dump_ring_close(struct dump_ring *r);

/* show: header, slots and the committed-but-unreleased spans. Returns an exit code. */
int dump_ring_show(struct dump_ring *r, struct dump_out *o, bool spans);

/* follow: per-slot cursors, starting at head (new spans only), at the
 * tail (also what is not yet released), or at the start of the stream
 * (also what was released but not yet overwritten: a new process). */
enum dump_follow_from { DUMP_FOLLOW_HEAD, DUMP_FOLLOW_TAIL, DUMP_FOLLOW_START };
void dump_ring_follow_start(struct dump_ring *r, enum dump_follow_from from);
/* One poll: print what was committed since the last one. Returns an exit
 * code (DUMP_EXIT_CORRUPT once the ring broke the ABI: it is then dead). */
int dump_ring_follow_poll(struct dump_ring *r, struct dump_out *o);
/* The producer's pid (0: unknown), and the pid whose fd was opened. */
pid_t dump_ring_pid(const struct dump_ring *r);
pid_t dump_ring_holder(const struct dump_ring *r);
void dump_ring_set_producer(struct dump_ring *r, pid_t producer);
/* The header's creator_pid (the producer's own word). */
uint32_t dump_ring_creator(const struct dump_ring *r);
bool dump_ring_same(const struct dump_ring *r, dev_t dev, ino_t ino);
bool dump_ring_dead(const struct dump_ring *r);
const char *dump_ring_service(const struct dump_ring *r);

/* A spanring memfd found in /proc/PID/fd. */
struct dump_proc_ring {
	int fd;      /* opened read-only, non-blocking, checked to be a memfd */
	dev_t dev;
	ino_t ino;
	bool writer; /* PID maps it writable: PID is its producer (not the agent,
			not another reader); true when /proc/PID/maps does not say */
};
/* Spanring memfds of pid through /proc, at most max. An fd named like a
 * ring that is something else when opened (swapped by the process) is
 * skipped, never opened for reading, and said why in why (may be NULL).
 * Returns the count, or -errno (-ENOENT: no process). */
int dump_proc_rings(pid_t pid, struct dump_proc_ring *out, int max, char *why, size_t whylen);
/* The pid that maps the ring (dev, ino) writable (its producer; hint, the
 * header's creator_pid, is tried first), or 0 when none does any more. */
pid_t dump_proc_ring_writer(dev_t dev, ino_t ino, pid_t hint);

/* Does pid still hold the ring (dev, ino)? 1, 0, or -1 when /proc does not say. */
int dump_proc_has_ring(pid_t pid, dev_t dev, ino_t ino);
/* Identity of a ring (for dump_proc_has_ring). */
void dump_ring_id(const struct dump_ring *r, dev_t *dev, ino_t *ino);

/* ---- the agent (agent.c) ----------------------------------------------------- */

/* The control socket path: explicit, or <sr_socket_path()>.ctl. */
const char *dump_ctl_path(const struct dump_ring_opts *o, char *buf, size_t n);
/* Connect; fd or -errno. */
int dump_ctl_connect(const char *path);
/* Send one command and read one answer line (malloc'd, NUL-terminated);
 * with fd_out, an fd attached to the answer is returned there (else -1). */
int dump_ctl_call(int fd, const char *cmd, char **answer, int *fd_out);
/* list: the agent's producers and exporters as a table (or its JSON). */
int dump_list(const struct dump_ring_opts *o, bool json, FILE *f, char *err, size_t errlen);
/* Does the agent answer on its control socket? An exit code, err says why. */
int dump_agent_check(const struct dump_ring_opts *o, char *err, size_t errlen);
/* pids of the agent's producers (malloc'd); count or -1 with a DUMP_EXIT in *code. */
int dump_agent_pids(const struct dump_ring_opts *o, pid_t **pids, int *code);

/* ---- files (file.c) ------------------------------------------------------------ */

enum dump_file_kind { DUMP_FILE_AUTO, DUMP_FILE_PB, DUMP_FILE_JSON };

/* Decode one file ("-": stdin) into o. Returns an exit code; errors on stderr. */
int dump_read_file(const char *path, enum dump_file_kind kind, struct dump_out *o);
/* Every span of a decoded request into o (file and JSON sources). */
void dump_emit_request(struct dump_out *o, const dump_request_t *r);

#endif
