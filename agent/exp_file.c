/* SPDX-License-Identifier: MIT */
/*
 * File exporter: each batch is written as varint(length) followed by the
 * ExportTraceServiceRequest, with one writev(2) whose span iovecs point
 * into ring memory. A write that fails is cut off the file again and the
 * batch retried (kept referenced) until export_retry_max.
 *
 * At start an existing file is checked record by record (headers only):
 * an agent killed in the middle of a write leaves a cut record at the end,
 * which is truncated so that the file stays decodable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "exp.h"
#include "outfile.h"
#include "pbwire.h"
#include "sbuf.h"

/* Records larger than this are not ours: the batch limit is 64 MiB. */
#define FILE_MAX_RECORD (256ull << 20)

struct exp_file {
	struct exporter e;
	struct outfile out;
	struct wq q;
	const struct batch *writing; /* for the zero-copy check */
};

static int64_t file_repair(int fd, uint64_t size)
{
	uint64_t off = 0;
	while (off < size) {
		uint8_t hdr[10];
		ssize_t n = pread(fd, hdr, sizeof(hdr), (off_t)off);
		if (n <= 0)
			return (int64_t)off;
		const uint8_t *p = hdr;
		uint64_t len;
		if (pb_get_varint(&p, hdr + n, &len)) {
			/* A varint cut by the end of the file, or garbage. */
			if ((uint64_t)n < sizeof(hdr) && off + (uint64_t)n == size)
				return (int64_t)off;
			return off ? (int64_t)off : -1;
		}
		if (len > FILE_MAX_RECORD)
			return off ? (int64_t)off : -1;
		uint64_t rec = (uint64_t)(p - hdr) + len;
		if (rec > size - off)
			return (int64_t)off; /* cut record */
		off += rec;
	}
	return (int64_t)off;
}

static void file_pre_writev(void *ctx, const struct iovec *iov, size_t first, int cnt)
{
	struct exp_file *f = ctx;
	const struct batch *b = f->writing;
	if (!b || !f->e.ag->cfg->zc_check)
		return;
	/* The exact array handed to the kernel; the span byte total is
	 * checked when it is the whole request. */
	bool whole = first == 0 && (size_t)cnt == b->niov;
	zc_check_iov(f->e.ag, iov, b->iov_kind + first, (size_t)cnt,
		     whole ? b->span_bytes : UINT64_MAX);
}

static int file_write(struct exporter *e, struct batch *b)
{
	struct exp_file *f = container_of(e, struct exp_file, e);
	uint64_t total = b->iov[0].iov_len + b->msg_len;
	f->writing = b;
	int err = outfile_write(&f->out, b->iov, b->niov, total);
	f->writing = NULL;
	if (err)
		return err;
	e->st.batches++;
	e->st.spans += b->spans;
	e->st.bytes += total;
	return 0;
}

static int file_submit(struct exporter *e, struct batch *b)
{
	struct exp_file *f = container_of(e, struct exp_file, e);
	return wq_submit(&f->q, b);
}

static size_t file_flush(struct exporter *e, uint64_t deadline_ns)
{
	struct exp_file *f = container_of(e, struct exp_file, e);
	return wq_flush(&f->q, deadline_ns);
}

static int file_reopen(struct exporter *e)
{
	struct exp_file *f = container_of(e, struct exp_file, e);
	return outfile_reopen(&f->out);
}

static void file_destroy(struct exporter *e)
{
	struct exp_file *f = container_of(e, struct exp_file, e);
	wq_fini(&f->q);
	outfile_close(&f->out);
	free(f);
}

static void file_stats_json(struct exporter *e, struct sbuf *out);

static const struct exporter_ops file_ops = {
	.kind = "file",
	.submit = file_submit,
	.flush = file_flush,
	.reopen = file_reopen,
	.destroy = file_destroy,
	.stats_json = file_stats_json,
};



static void file_stats_json(struct exporter *e, struct sbuf *out)
{
	struct exp_file *f = container_of(e, struct exp_file, e);
	sbuf_puts(out, ",\"path\":");
	sbuf_json_str(out, f->out.path, strlen(f->out.path));
	sbuf_printf(out, ",\"file_bytes\":%llu,\"rotations\":%llu,\"queued\":%zu",
		    (unsigned long long)f->out.size, (unsigned long long)f->out.rotations, f->q.len);
}

int exp_file_create(struct agent *ag, const struct exp_file_opts *o, struct exporter **out)
{
	struct exp_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->e.ops = &file_ops;
	f->e.ag = ag;
	snprintf(f->e.name, sizeof(f->e.name), "file");
	int err = outfile_open(&f->out, o->path, o->rotate_bytes, o->rotate_keep, file_repair);
	if (err) {
		free(f);
		return err;
	}
	f->out.writev_fn = o->writev_fn;
	f->out.pre_writev = file_pre_writev;
	f->out.pre_ctx = f;
	wq_init(&f->q, &f->e, file_write, o->retry_max_us);
	*out = &f->e;
	return 0;
}
