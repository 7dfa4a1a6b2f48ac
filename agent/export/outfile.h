/* SPDX-License-Identifier: MIT */
/*
 * Output files of the file-writing exporters: append, size-based rotation
 * (path -> path.1 -> ... -> path.<keep>), reopen on SIGHUP, and writes that
 * are all-or-nothing (a failed write is truncated away, so a file never
 * holds half a record). Files are created with the configured mode
 * (output_mode, 0600 by default); an existing file is appended to only
 * when it is the exporter's own output (checked record by record).
 *
 * Also the retry queue those exporters share: a batch whose write failed
 * is kept referenced (never copied) and retried with backoff until it
 * succeeds or export_retry_max has passed (then it is let go, counted).
 */
#ifndef SPANRING_AGENT_OUTFILE_H
#define SPANRING_AGENT_OUTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "log.h"
#include "exporter.h"
#include "loop.h"

/*
 * Checks an existing output file before the agent appends to it: reads
 * the file (fd, size bytes) and returns the length of its valid prefix,
 * or -1 with *why set when the file is not one of the exporter's own
 * (then it is neither truncated nor appended to).
 */
typedef int64_t (*outfile_check_fn)(int fd, uint64_t size, const char **why);

struct outfile {
	char *path;          /* "-": standard output */
	const char *label;   /* "file exporter", ... for messages */
	int fd;
	bool is_stdout;
	uint32_t mode;       /* permission bits of files it creates */
	outfile_check_fn check;
	dev_t dev;           /* the file open now (a reopen checks a new one) */
	ino_t ino;
	uint64_t size;       /* bytes in the current file */
	uint64_t rotate_bytes;
	uint32_t rotate_keep;
	uint64_t rotations;
	exp_writev_fn writev_fn;
	/* Called with exactly the iovecs of each writev(2), and the index of
	 * the first one in the array given to outfile_write(). */
	void (*pre_writev)(void *ctx, const struct iovec *iov, size_t first, int cnt);
	void *pre_ctx;
	struct iovec *scratch; /* copy of the iovec array for partial writes */
	size_t cap_scratch;
	/* Its rate-limited lines (and its exporter's): limited per instance,
	 * so that one failing output cannot silence another's lines. */
	struct agent_log_rls log_rl;
};

/*
 * Open path for appending (label names the exporter in messages). A file
 * that does not exist is created with exactly `mode` (the umask does not
 * apply). An existing non-empty regular file is read by check first: one
 * that is not the exporter's own output is refused (-EINVAL) untouched; a
 * record cut at its end (the agent was killed while writing) is truncated.
 * 0 or -errno, with a message naming the path in err.
 */
int outfile_open(struct outfile *f, const char *label, const char *path, uint64_t rotate_bytes,
		 uint32_t keep, uint32_t mode, outfile_check_fn check, char *err, size_t errlen);
/* SIGHUP, rotation: open path again (a new file is checked like at start).
 * 0 or -errno; failures are logged, naming the path. */
int outfile_reopen(struct outfile *f);
void outfile_close(struct outfile *f);
/* Write all of iov[0..n) (total bytes), rotating first if the file would
 * pass rotate_bytes. On failure the file is cut back. 0 or -errno. */
int outfile_write(struct outfile *f, const struct iovec *iov, size_t n, uint64_t total);

/* ---- retry queue ---- */

struct exporter;
struct batch;

struct wq_item {
	struct batch *b;
	uint64_t first_fail_ns;
};

struct wq {
	struct exporter *e;
	const char *path; /* the output, named in messages */
	int (*write)(struct exporter *e, struct batch *b); /* 0 or -errno */
	uint64_t retry_max_ns;
	uint64_t backoff_ns;
	struct loop_timer timer;
	struct wq_item *items;
	size_t first, len, cap;
	/* Per exporter, so that one exporter's failures cannot silence another's. */
	struct agent_log_rl let_go_rl;
	struct agent_log_rls log_rl;
};

void wq_init(struct wq *q, struct exporter *e, int (*write)(struct exporter *, struct batch *),
	     uint64_t retry_max_us, const char *path);
/* submit() of a file-writing exporter: write now, or queue (in order). */
int wq_submit(struct wq *q, struct batch *b);
/* Retry everything queued now; returns the number still queued. */
size_t wq_flush(struct wq *q, uint64_t deadline_ns);
/* Let go of everything queued (counted). */
void wq_fini(struct wq *q);

#endif
