/* SPDX-License-Identifier: MIT */
/*
 * OTLP/JSON lines exporter: each batch becomes one line holding the
 * ExportTraceServiceRequest in the specification's JSON mapping. It has to
 * decode the span bytes, so it copies them out of the ring first (never
 * decoding memory a producer can still change): this is the documented
 * copying exporter, enabled only on request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "exp.h"
#include "log.h"
#include "otlp_json.h"
#include "outfile.h"
#include "sbuf.h"

struct exp_json {
	struct exporter e;
	struct outfile out;
	struct wq q;
	uint8_t *buf;
	size_t cap;
	struct sbuf js;
};

/* A JSON lines file is valid up to its last newline. */
static int64_t json_repair(int fd, uint64_t size)
{
	uint8_t tail[4096];
	uint64_t end = size;
	while (end > 0) {
		uint64_t from = end > sizeof(tail) ? end - sizeof(tail) : 0;
		ssize_t n = pread(fd, tail, (size_t)(end - from), (off_t)from);
		if (n <= 0)
			return (int64_t)size;
		for (ssize_t i = n - 1; i >= 0; i--)
			if (tail[i] == '\n')
				return (int64_t)(from + (uint64_t)i + 1);
		end = from;
	}
	return 0;
}

static int json_write(struct exporter *e, struct batch *b)
{
	struct exp_json *j = container_of(e, struct exp_json, e);
	if (b->msg_len > j->cap) {
		uint8_t *n = realloc(j->buf, b->msg_len);
		if (!n)
			return -ENOMEM;
		j->buf = n;
		j->cap = b->msg_len;
	}
	size_t n_iov, off = 0;
	const struct iovec *iov = batch_msg_iov(b, &n_iov);
	for (size_t i = 0; i < n_iov; i++) {
		memcpy(j->buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	sbuf_reset(&j->js);
	if (otlp_json_request(&j->js, j->buf, off)) {
		/* Span bytes that do not decode: no retry can fix that. */
		e->st.let_go_batches++;
		e->st.let_go_spans += b->spans;
		AGENT_LOG_RL(AGENT_LOG_WARN,
			     "exporter json: a batch of %llu spans does not decode; let go",
			     (unsigned long long)b->spans);
		return 0;
	}
	sbuf_putc(&j->js, '\n');
	if (j->js.oom)
		return -ENOMEM;
	struct iovec v = {.iov_base = j->js.p, .iov_len = j->js.len};
	int err = outfile_write(&j->out, &v, 1, j->js.len);
	if (err)
		return err;
	e->st.batches++;
	e->st.spans += b->spans;
	e->st.bytes += j->js.len;
	return 0;
}

static int json_submit(struct exporter *e, struct batch *b)
{
	return wq_submit(&container_of(e, struct exp_json, e)->q, b);
}

static size_t json_flush(struct exporter *e, uint64_t deadline_ns)
{
	return wq_flush(&container_of(e, struct exp_json, e)->q, deadline_ns);
}

static int json_reopen(struct exporter *e)
{
	return outfile_reopen(&container_of(e, struct exp_json, e)->out);
}

static void json_destroy(struct exporter *e)
{
	struct exp_json *j = container_of(e, struct exp_json, e);
	wq_fini(&j->q);
	outfile_close(&j->out);
	free(j->buf);
	sbuf_free(&j->js);
	free(j);
}

static const struct exporter_ops json_ops = {
	.kind = "json",
	.submit = json_submit,
	.flush = json_flush,
	.reopen = json_reopen,
	.destroy = json_destroy,
};

int exp_json_create(struct agent *ag, const char *path, uint64_t rotate_bytes,
		    uint32_t rotate_keep, struct exporter **out)
{
	struct exp_json *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->e.ops = &json_ops;
	j->e.ag = ag;
	snprintf(j->e.name, sizeof(j->e.name), "json");
	int err = outfile_open(&j->out, path, rotate_bytes, rotate_keep, json_repair);
	if (err) {
		free(j);
		return err;
	}
	wq_init(&j->q, &j->e, json_write, ag->cfg->export_retry_max_us);
	*out = &j->e;
	return 0;
}
