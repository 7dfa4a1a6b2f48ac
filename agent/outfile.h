/* SPDX-License-Identifier: MIT */
/*
 * Output files of the file-writing exporters: append, size-based rotation
 * (path -> path.1 -> ... -> path.<keep>), reopen on SIGHUP, and writes that
 * are all-or-nothing (a failed write is truncated away, so a file never
 * holds half a record).
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
#include <sys/uio.h>

#include "log.h"
#include "exp.h"
#include "loop.h"

struct outfile {
	char *path;          /* "-": standard output */
	int fd;
	bool is_stdout;
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
};

/*
 * Open (create, append) path. repair, if given, is called with the fd and
 * size of an existing file and returns the length of its valid prefix, or
 * -1 if the file is not one of ours (then opening fails with -EINVAL).
 */
int outfile_open(struct outfile *f, const char *path, uint64_t rotate_bytes, uint32_t keep,
		 int64_t (*repair)(int fd, uint64_t size));
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
	int (*write)(struct exporter *e, struct batch *b); /* 0 or -errno */
	uint64_t retry_max_ns;
	uint64_t backoff_ns;
	struct loop_timer timer;
	struct wq_item *items;
	size_t first, len, cap;
	/* Per exporter, so that one exporter's failures cannot silence another's. */
	struct agent_log_rl let_go_rl;
};

void wq_init(struct wq *q, struct exporter *e, int (*write)(struct exporter *, struct batch *),
	     uint64_t retry_max_us);
/* submit() of a file-writing exporter: write now, or queue (in order). */
int wq_submit(struct wq *q, struct batch *b);
/* Retry everything queued now; returns the number still queued. */
size_t wq_flush(struct wq *q, uint64_t deadline_ns);
/* Let go of everything queued (counted). */
void wq_fini(struct wq *q);

#endif
