/* SPDX-License-Identifier: MIT */
/*
 * File exporter: each batch is written as varint(length) followed by the
 * ExportTraceServiceRequest, with one writev(2) whose span iovecs point
 * into ring memory. A write that fails is cut off the file again and the
 * batch retried (kept referenced) until export_retry_max.
 *
 * At start an existing file is checked record by record: every record
 * must decode as an ExportTraceServiceRequest, or the file is not ours and
 * is refused untouched (never truncated, never appended to). An agent
 * killed in the middle of a write leaves a cut record at the end, which is
 * truncated so that the file stays decodable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "config.h"
#include "exporter.h"
#include "otlp_trace_service.pb-c.h"
#include "pbcheck.h"
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

/* Does rec (len bytes) decode as a request this exporter could have
 * written: an ExportTraceServiceRequest of at least one ResourceSpans,
 * with nothing in it the schema does not know? */
static bool file_record_ok(const uint8_t *rec, size_t len)
{
	/* ExportTraceServiceRequest has one field: 1, resource_spans. */
	return len >= 2 && rec[0] == 0x0a &&
	       sr_pb_schema_ok(&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
			       rec, len, SR_PB_MAX_NESTING);
}

/*
 * The check of an existing output file (outfile_check_fn): every record,
 * varint(length) + message, must decode as a request (file_record_ok);
 * only the last one may be cut by the end of the file (the agent was
 * killed while writing it), and only after at least one whole record
 * (a lone cut record cannot be told from a foreign file). Anything else
 * makes the file foreign: -1.
 */
static int64_t file_check(int fd, uint64_t size, const char **why)
{
	uint64_t off = 0;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int64_t rc = -1;
	while (off < size) {
		uint8_t hdr[11];
		size_t want = size - off < sizeof(hdr) ? (size_t)(size - off) : sizeof(hdr);
		ssize_t n = pread(fd, hdr, want, (off_t)off);
		if (n != (ssize_t)want) {
			*why = "it cannot be read";
			goto out;
		}
		const uint8_t *p = hdr;
		uint64_t len;
		if (pb_get_varint(&p, hdr + n, &len)) {
			/* A length cut by the end of the file, after whole records. */
			bool cut = want < sizeof(hdr) && off > 0;
			for (size_t i = 0; cut && i < want; i++)
				cut = (hdr[i] & 0x80) != 0;
			if (cut) {
				rc = (int64_t)off;
				goto out;
			}
			*why = off ? "a record length is not a varint" : "it does not start with a record length";
			goto out;
		}
		uint64_t hl = (uint64_t)(p - hdr);
		if (len == 0 || len > FILE_MAX_RECORD) {
			*why = "a record length is out of range";
			goto out;
		}
		if (len > size - off - hl) {
			/* Cut: ours only after whole records, and only if what is
			 * there starts like a request (tag of resource_spans). */
			if (off == 0) {
				*why = "its first record is incomplete";
				goto out;
			}
			if ((size_t)n > hl && hdr[hl] != 0x0a) {
				*why = "its last record is not a request";
				goto out;
			}
			rc = (int64_t)off;
			goto out;
		}
		if (len > cap) {
			uint8_t *nb = realloc(buf, (size_t)len);
			if (!nb) {
				*why = "out of memory reading it";
				goto out;
			}
			buf = nb;
			cap = (size_t)len;
		}
		if (pread(fd, buf, (size_t)len, (off_t)(off + hl)) != (ssize_t)len) {
			*why = "it cannot be read";
			goto out;
		}
		if (!file_record_ok(buf, (size_t)len)) {
			*why = off ? "a record does not decode as an ExportTraceServiceRequest"
				   : "its first record does not decode as an ExportTraceServiceRequest";
			goto out;
		}
		off += hl + len;
	}
	rc = (int64_t)off;
out:
	free(buf);
	return rc;
}

static void file_pre_writev(void *ctx, const struct iovec *iov, size_t first, int cnt)
{
	struct exp_file *f = ctx;
	const struct batch *b = f->writing;
	if (!b || !f->e.host->cfg->zc_check)
		return;
	/* The exact array handed to the kernel; the span byte total is
	 * checked when it is the whole request. */
	bool whole = first == 0 && (size_t)cnt == b->niov;
	f->e.host->zc_check(f->e.host->ag, iov, b->iov_kind + first, (size_t)cnt,
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

int exp_file_create(const struct exp_host *host, const struct exp_file_opts *o,
		    struct exporter **out)
{
	struct exp_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->e.ops = &file_ops;
	f->e.host = host;
	snprintf(f->e.name, sizeof(f->e.name), "file");
	int err = outfile_open(&f->out, "exporter file", o->path, o->rotate_bytes, o->rotate_keep,
			       o->mode ? o->mode : AGENT_OUTPUT_MODE_DEFAULT, file_check, host->err,
			       host->errlen);
	if (err) {
		free(f);
		return err;
	}
	f->out.writev_fn = o->writev_fn;
	f->out.pre_writev = file_pre_writev;
	f->out.pre_ctx = f;
	wq_init(&f->q, &f->e, file_write, o->retry_max_us, f->out.path);
	*out = &f->e;
	return 0;
}

int exp_file_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			 const char *name, struct exporter **out)
{
	struct exp_file_opts o = {.path = cfg->file_path,
				  .rotate_bytes = cfg->file_rotate_bytes,
				  .rotate_keep = cfg->file_rotate_keep,
				  .retry_max_us = cfg->export_retry_max_us,
				  .mode = cfg->output_mode};
	return exp_file_create(host, &o, out);
}
