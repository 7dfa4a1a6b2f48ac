/* SPDX-License-Identifier: MIT */
/*
 * A checking OTLP/HTTP receiver fast enough for the outage tests at tens
 * of thousands of spans per second (the Node.js receiver decodes about
 * 12 us per span). HTTP/1.1 keep-alive on 127.0.0.1 (tests/common/
 * httpsink.c); every request body is decoded: checked against the
 * ExportTraceServiceRequest schema at every level (sr_pb_schema_ok), then
 * walked to each Span's span_id, the identity tests/progs/otlp-prod -I
 * writes for every span it commits. A request that does not decode, or
 * has a span without a trace id of 16 bytes and a non-zero span id of 8,
 * is answered 400 and counted; any other gets 200 with an empty body.
 *
 *   otlp-check-recv --port-file PATH [--port P] [--max-seconds N]
 *                   [--record PATH] [--expect IDS[,IDS...]] [--summary PATH]
 *
 * --record: the span ids of every request, appended (8 bytes each) before
 *   the request is answered; a receiver started again with the same file
 *   loads it first, so a backend killed and restarted on its --port keeps
 *   one count, and what it acknowledged is never lost with it.
 * --expect: files of span ids (otlp-prod -I), compared at exit.
 * SIGUSR1 writes the counts to --summary (atomically: a new file replaces
 * it). At exit (SIGTERM, SIGINT, --max-seconds) the summary, with the
 * comparison, goes to --summary and stdout:
 *   {"requests":N,"bad_requests":N,"loaded":N,"spans":N,"distinct":N,
 *    "duplicates":N,"max_request_spans":N,"expected":N,"missing":N,
 *    "unexpected":N,"missing_ids":["16 hex digits",...]}
 * "spans" counts every span received (the loaded ones included),
 * "duplicates" = spans - distinct, "max_request_spans" bounds what one
 * request in flight can duplicate.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpsink.h"
#include "otlp_trace_service.pb-c.h"
#include "pbcheck.h"
#include "spanwalk.h"

/* Span's fields read (opentelemetry/proto/trace/v1) */
enum {
	F_SPAN_TRACE_ID = 1,
	F_SPAN_SPAN_ID = 2,
};

/* ---- a set of span ids (open addressing; 0 is no valid span id) -------- */

struct idset {
	uint64_t *v;
	size_t cap, n; /* cap a power of two, n < cap / 2 */
};

static size_t id_hash(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

static bool idset_has(const struct idset *s, uint64_t id)
{
	if (!s->cap)
		return false;
	for (size_t i = id_hash(id, s->cap);; i = (i + 1) & (s->cap - 1)) {
		if (s->v[i] == id)
			return true;
		if (!s->v[i])
			return false;
	}
}

/* Returns true when id was not in the set yet. */
static bool idset_add(struct idset *s, uint64_t id)
{
	if (2 * (s->n + 1) > s->cap) {
		struct idset g = {.cap = s->cap ? 2 * s->cap : 1u << 16};
		if (!(g.v = calloc(g.cap, sizeof(*g.v)))) {
			perror("otlp-check-recv");
			exit(1);
		}
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i])
				idset_add(&g, s->v[i]);
		free(s->v);
		*s = g;
	}
	size_t i = id_hash(id, s->cap);
	for (; s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == id)
			return false;
	s->v[i] = id;
	s->n++;
	return true;
}

/* ---- the receiver ------------------------------------------------------ */

static struct {
	struct idset seen;
	unsigned long long requests, bad_requests, loaded, spans, max_request_spans;
	uint64_t *req_ids; /* the request being decoded */
	size_t n_req, cap_req;
	int record_fd;
} R = {.record_fd = -1};

static volatile sig_atomic_t stop, snapshot;
static void on_stop(int s)
{
	(void)s;
	stop = 1;
}
static void on_usr1(int s)
{
	(void)s;
	snapshot = 1;
}

static void count_span(uint64_t id)
{
	R.spans++;
	idset_add(&R.seen, id);
}

struct span_ids {
	bool trace_ok; /* a trace id of 16 bytes */
	uint64_t id;   /* the span id; 0: none */
};

static bool span_field(uint32_t field, uint32_t wt, const uint8_t *p, const uint8_t *end,
		       uint64_t v, void *arg)
{
	struct span_ids *s = arg;
	(void)wt;
	(void)end;
	if (field == F_SPAN_TRACE_ID)
		s->trace_ok = v == 16;
	else if (field == F_SPAN_SPAN_ID && v != 8)
		return false;
	else if (field == F_SPAN_SPAN_ID)
		memcpy(&s->id, p, 8);
	return true;
}

/* A Span: its span id into R.req_ids. False when it has no proper ids. */
static bool span(const uint8_t *p, const uint8_t *end, void *arg)
{
	struct span_ids s = {0};
	(void)arg;
	if (!pb_each_field(p, end, span_field, &s) || !s.trace_ok || !s.id)
		return false;
	if (R.n_req == R.cap_req) {
		R.cap_req = R.cap_req ? 2 * R.cap_req : 4096;
		if (!(R.req_ids = realloc(R.req_ids, R.cap_req * sizeof(*R.req_ids)))) {
			perror("otlp-check-recv");
			exit(1);
		}
	}
	R.req_ids[R.n_req++] = s.id;
	return true;
}

static void record(const uint64_t *ids, size_t n)
{
	const char *p = (const char *)ids;
	size_t left = n * sizeof(*ids);
	while (R.record_fd >= 0 && left) {
		ssize_t w = write(R.record_fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			perror("otlp-check-recv: record");
			exit(1);
		}
		p += w;
		left -= (size_t)w;
	}
}

static int on_request(void *arg, const uint8_t *body, size_t len)
{
	(void)arg;
	R.requests++;
	R.n_req = 0;
	if (!len)
		return 200; /* no spans: valid, and nothing to walk */
	if (!sr_pb_schema_ok(&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
			     body, len, SR_PB_MAX_NESTING) ||
	    !otlp_each_span(body, body + len, span, NULL)) {
		R.bad_requests++;
		return 400;
	}
	record(R.req_ids, R.n_req);
	for (size_t i = 0; i < R.n_req; i++)
		count_span(R.req_ids[i]);
	if (R.n_req > R.max_request_spans)
		R.max_request_spans = R.n_req;
	return 200;
}

/* Read a file of 8-byte span ids, calling fn for each. */
static void read_ids(const char *path, void (*fn)(uint64_t id, void *arg), void *arg)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		exit(1);
	}
	uint64_t buf[4096];
	size_t n;
	while ((n = fread(buf, sizeof(*buf), 4096, f)) > 0)
		for (size_t i = 0; i < n; i++)
			fn(buf[i], arg);
	fclose(f);
}

static void load_one(uint64_t id, void *arg)
{
	(void)arg;
	R.loaded++;
	count_span(id);
}

/* The comparison with the expected ids. */
struct cmp {
	struct idset expected;
	unsigned long long n, missing, unexpected;
	char missing_ids[5][17];
};

static void expect_one(uint64_t id, void *arg)
{
	struct cmp *c = arg;
	c->n++;
	idset_add(&c->expected, id);
	if (idset_has(&R.seen, id))
		return;
	if (c->missing < 5) {
		const uint8_t *b = (const uint8_t *)&id;
		for (int i = 0; i < 8; i++)
			snprintf(c->missing_ids[c->missing] + 2 * i, 3, "%02x", b[i]);
	}
	c->missing++;
}

static void put_summary(FILE *f, const char *expect)
{
	fprintf(f,
		"{\"requests\":%llu,\"bad_requests\":%llu,\"loaded\":%llu,\"spans\":%llu,"
		"\"distinct\":%zu,\"duplicates\":%llu,\"max_request_spans\":%llu",
		R.requests, R.bad_requests, R.loaded, R.spans, R.seen.n, R.spans - R.seen.n,
		R.max_request_spans);
	if (expect) {
		struct cmp c = {0};
		char *list = strdup(expect), *save = NULL;
		for (char *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save))
			read_ids(p, expect_one, &c);
		free(list);
		for (size_t i = 0; i < R.seen.cap; i++)
			if (R.seen.v[i] && !idset_has(&c.expected, R.seen.v[i]))
				c.unexpected++;
		fprintf(f, ",\"expected\":%llu,\"missing\":%llu,\"unexpected\":%llu,\"missing_ids\":[",
			c.n, c.missing, c.unexpected);
		for (unsigned long long i = 0; i < c.missing && i < 5; i++)
			fprintf(f, "%s\"%s\"", i ? "," : "", c.missing_ids[i]);
		fprintf(f, "]");
		free(c.expected.v);
	}
	fprintf(f, "}\n");
}

/* The summary to PATH through a new file renamed over it. */
static void write_summary(const char *path, const char *expect)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		perror(tmp);
		return;
	}
	put_summary(f, expect);
	if (fclose(f) || rename(tmp, path))
		perror(path);
}

static const char *summary_path;
static void on_wake(void *arg)
{
	(void)arg;
	if (snapshot && summary_path) {
		snapshot = 0;
		write_summary(summary_path, NULL);
	}
}

int main(int argc, char **argv)
{
	struct httpsink_opts o = {.max_seconds = 600, .keep_body = true, .on_request = on_request,
				  .on_wake = on_wake, .stop = &stop};
	const char *record_path = NULL, *expect = NULL;
	bool usage = argc % 2 == 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (httpsink_option(&o, argv[i], argv[i + 1]))
			continue;
		if (!strcmp(argv[i], "--record"))
			record_path = argv[i + 1];
		else if (!strcmp(argv[i], "--expect"))
			expect = argv[i + 1];
		else if (!strcmp(argv[i], "--summary"))
			summary_path = argv[i + 1];
		else
			usage = true;
	}
	if (!o.port_file || usage) {
		fprintf(stderr, "usage: otlp-check-recv --port-file PATH [--port P] [--max-seconds N]\n"
				"       [--record PATH] [--expect IDS[,IDS...]] [--summary PATH]\n");
		return 2;
	}
	if (record_path) {
		if (access(record_path, F_OK) == 0)
			read_ids(record_path, load_one, NULL);
		R.record_fd = open(record_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (R.record_fd < 0) {
			perror(record_path);
			return 1;
		}
	}
	struct sigaction sa = {.sa_handler = on_stop};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (httpsink_serve(&o))
		return 1;
	if (summary_path)
		write_summary(summary_path, expect);
	put_summary(stdout, expect);
	return 0;
}
