/* SPDX-License-Identifier: MIT */
/*
 * The per-instance disk spool of an OTLP exporter (docs/EXPORTERS.md,
 * "The spool"): batches its backend could not take, written only on the
 * failure path, in the file exporter's format (each record a varint length
 * and an ExportTraceServiceRequest), in segment files of a directory:
 *
 *   DIR/<seq, 16 hex digits>.pb   segments, oldest first
 *   DIR/pos                       "<seq> <offset>": delivered up to here
 *
 * Bounded: when a record does not fit, whole oldest segments are let go
 * (counted). Replayed oldest first; what was delivered is remembered in
 * pos (rewritten after each delivery, no fsync), so that an agent that is
 * killed and restarted replays from there: at-least-once (what was in
 * flight is sent again). Everything runs on the agent's thread; writes are
 * plain write(2) to the page cache.
 */
#ifndef SPANRING_AGENT_SPOOL_H
#define SPANRING_AGENT_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "log.h"

struct spool_seg {
	uint64_t seq;
	uint64_t bytes;       /* file size */
	uint64_t spans;       /* spans in its records */
	uint64_t records;
	uint64_t created_ms;  /* wall clock of the first record (mtime at start) */
};

struct spool {
	char *dir;
	char name[32];        /* the instance, for logs */
	uint64_t cap;         /* bytes of segments at most */
	uint64_t seg_max;     /* a segment is closed at this size */
	struct spool_seg *segs; /* [0] oldest .. [n-1] written to */
	size_t n, cap_segs;
	int wfd;              /* of segs[n-1], -1: none open */
	uint64_t bytes;       /* sum of segs[].bytes */
	/* read (load) position: in segs[0] .. */
	uint64_t rseq, roff, rspans; /* rspans: spans of segs[rseq] loaded */
	uint64_t pending_spans, pending_records; /* written, not loaded */
	/* counters */
	uint64_t written_records, written_spans, written_bytes;
	uint64_t loaded_records, loaded_spans;
	uint64_t let_go_records, let_go_spans, let_go_segments;
	uint64_t write_errors;
	uint64_t write_ns, read_ns; /* time spent writing / reading, for the cost */
	struct agent_log_rls log_rl; /* its rate-limited lines: its own limits */
};

/*
 * Open (create) the spool in dir with capacity cap bytes; an existing one
 * is taken up where its pos says (its segments scanned for their span
 * counts). 0 or -errno (logged).
 */
int spool_open(struct spool *sp, const char *dir, uint64_t cap, const char *name);
void spool_close(struct spool *sp);

/*
 * Append one ExportTraceServiceRequest given as iovecs (len bytes, spans
 * spans): a copy out of the ring, on the failure path only. Lets the
 * oldest segments go when it does not fit. 0 or -errno.
 */
int spool_put(struct spool *sp, const struct iovec *iov, size_t niov, size_t len,
	      uint64_t spans);

/* Is there a record not loaded yet? */
static inline bool spool_pending(const struct spool *sp)
{
	return sp->pending_records > 0;
}

/*
 * Load the next records, oldest first, up to max bytes (at least one
 * record): their messages concatenated (one valid request) into *buf
 * (malloc'd, *len bytes), *spans spans; (*seq, *off) is where they end,
 * for spool_commit. 0, -ENOENT (nothing pending) or -errno.
 */
int spool_load(struct spool *sp, size_t max, uint8_t **buf, size_t *len, uint64_t *spans,
	       uint64_t *seq, uint64_t *off);

/* Records up to (seq, off) were delivered: remember it, drop segments
 * wholly behind it. */
void spool_commit(struct spool *sp, uint64_t seq, uint64_t off);

/* Age of the oldest pending record, ms (0: none). */
uint64_t spool_oldest_age_ms(const struct spool *sp);

/* Spans in a buffer of concatenated ExportTraceServiceRequest messages
 * (-1 if it does not parse). */
int64_t spool_count_spans(const uint8_t *p, size_t len);

#endif
