/* SPDX-License-Identifier: MIT */
/*
 * OTLP/JSON lines exporter: each batch becomes one line holding the
 * ExportTraceServiceRequest in the specification's JSON mapping. It has to
 * decode the span bytes, so it copies them out of the ring first (never
 * decoding memory a producer can still change): this is the documented
 * copying exporter, enabled only on request. An existing output file is
 * appended to only when every line is one of its requests (json_check).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "config.h"
#include "exporter.h"
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

#define JSON_LINE_START "{\"resourceSpans\":["

/* The state of json_check's scan of one line. */
struct json_scan {
	uint64_t len;    /* bytes of the line so far */
	uint64_t depth;  /* open brackets and braces outside strings */
	bool in_str, esc;
	bool closed;     /* the outermost brace closed: only the newline may follow */
	bool bad;
};

static void json_scan_byte(struct json_scan *j, uint8_t c)
{
	static const char start[] = JSON_LINE_START;
	if (j->len < sizeof(start) - 1 && c != (uint8_t)start[j->len])
		j->bad = true;
	j->len++;
	if (c < 0x20 || j->closed) {
		j->bad = true; /* the encoder escapes control characters */
		return;
	}
	if (j->in_str) {
		if (j->esc)
			j->esc = false;
		else if (c == '\\')
			j->esc = true;
		else if (c == '"')
			j->in_str = false;
		return;
	}
	if (c == '"') {
		j->in_str = true;
	} else if (c == '{' || c == '[') {
		j->depth++;
	} else if (c == '}' || c == ']') {
		if (j->depth == 0)
			j->bad = true;
		else if (--j->depth == 0)
			j->closed = true;
	}
}

/*
 * The check of an existing output file (outfile_check_fn): every line must
 * be one of the exporter's requests: a JSON object that starts with
 * {"resourceSpans":[, with balanced brackets outside its strings, no
 * control characters, ending with its closing brace. Only the last line
 * may lack its newline (the agent was killed while writing it) and is then
 * cut off, if it starts like a request; a file that is nothing but such a
 * line must hold the whole start. Anything else makes the file foreign.
 */
static int64_t json_check(int fd, uint64_t size, const char **why)
{
	uint8_t buf[65536];
	struct json_scan j = {0};
	uint64_t off = 0, line_start = 0;
	while (off < size) {
		size_t want = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n <= 0) {
			*why = "it cannot be read";
			return -1;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				json_scan_byte(&j, buf[i]);
				continue;
			}
			if (j.bad || !j.closed) {
				*why = line_start ? "a line is not an OTLP/JSON request of this exporter"
						  : "its first line is not an OTLP/JSON request of this exporter";
				return -1;
			}
			line_start = off + (uint64_t)i + 1;
			memset(&j, 0, sizeof(j));
		}
		off += (uint64_t)n;
	}
	if (line_start == size)
		return (int64_t)size;
	/* A last line without its newline. */
	if (j.bad || (line_start == 0 && j.len < sizeof(JSON_LINE_START) - 1)) {
		*why = line_start ? "its last line is not an OTLP/JSON request of this exporter"
				  : "it is not OTLP/JSON lines of this exporter";
		return -1;
	}
	return (int64_t)line_start;
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
		AGENT_LOG_RL_OF(&j->out.log_rl, AGENT_LOG_WARN,
			     "exporter %s: a batch of %llu spans does not decode; let go", e->name,
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

int exp_json_create(const struct exp_host *host, const char *path, uint64_t rotate_bytes,
		    uint32_t rotate_keep, uint32_t mode, struct exporter **out)
{
	struct exp_json *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->e.ops = &json_ops;
	j->e.host = host;
	snprintf(j->e.name, sizeof(j->e.name), "json");
	int err = outfile_open(&j->out, "exporter json", path, rotate_bytes, rotate_keep,
			       mode ? mode : AGENT_OUTPUT_MODE_DEFAULT, json_check, host->err,
			       host->errlen);
	if (err) {
		free(j);
		return err;
	}
	wq_init(&j->q, &j->e, json_write, host->cfg->export_retry_max_us, j->out.path);
	*out = &j->e;
	return 0;
}

int exp_json_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			 const char *name, struct exporter **out)
{
	return exp_json_create(host, cfg->json_path, cfg->json_rotate_bytes, cfg->json_rotate_keep,
			       cfg->output_mode, out);
}
