/* SPDX-License-Identifier: MIT */
/*
 * A producer for spanring-dump's integration tests: it stays alive with
 * spans in its ring, and says what it wrote.
 *
 *   dump_producer spans N MANIFEST
 *       Emits N traces through the public API with known names, ids,
 *       times, attributes, an event and a status, appends one JSON line
 *       per span to MANIFEST, prints "ready" and waits. SIGUSR1: N more
 *       traces (then "more K"), SIGTERM/SIGINT: exit 0.
 *       Each trace: "GET /item/<i>" (SERVER, 12ms, or 40ms when i%4==1)
 *       with children "db.query" (CLIENT, 3ms) and "render" (INTERNAL,
 *       1.5ms, one event); i%3==2 ends with an ERROR status.
 *
 *   dump_producer stream MANIFEST
 *       Emits traces as fast as it can (a short pause every 20) until
 *       SIGTERM, each in MANIFEST; with small slots the ring wraps all the
 *       time under a reader (the torn-read tests).
 *
 *   dump_producer hostile KIND
 *       A ring written by hand (tests/progs/testring.h, memfd named
 *       "spanring-test") that breaks the ABI in one way, then waits:
 *         framing   two good spans, then bytes that are no record
 *         head      head beyond tail + slot size
 *         abi       ABI major 99
 *         magic     bad magic
 *         offsets   header offsets that disagree with the layout
 *         spanbytes a span record whose payload is not a Span
 *         deep      a Span nesting AnyValue arrays 100000 deep
 *         biglen    a span record longer than the record limit
 *         scope     a scope record pointing outside the scope table
 *         good      nothing wrong: two spans (a control case)
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spanring/spanring.h"
#include "testring.h"

static volatile sig_atomic_t got_usr1, got_term;

static void on_sig(int sig)
{
	if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_term = 1;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void hex(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

/* One manifest line: what a reader must find for this span. */
static void manifest(FILE *f, const char *service, const spanring_span_context *c,
		     const spanring_span_context *parent, const char *name, int kind, uint64_t start,
		     uint64_t end, const char *attrs_json, int status, const char *status_msg,
		     const char *event)
{
	fprintf(f, "{\"service\":\"%s\",\"traceId\":\"", service);
	hex(f, c->trace_id, 16);
	fprintf(f, "\",\"spanId\":\"");
	hex(f, c->span_id, 8);
	fprintf(f, "\",\"parentSpanId\":\"");
	if (parent)
		hex(f, parent->span_id, 8);
	fprintf(f,
		"\",\"name\":\"%s\",\"kind\":%d,\"startTimeUnixNano\":\"%" PRIu64
		"\",\"endTimeUnixNano\":\"%" PRIu64 "\",\"attributes\":{%s},\"status\":%d,"
		"\"statusMessage\":\"%s\",\"event\":\"%s\"}\n",
		name, kind, start, end, attrs_json, status, status_msg ? status_msg : "",
		event ? event : "");
}

static void emit_traces(spanring_tracer *tr, const char *service, FILE *mf, int from, int n)
{
	for (int i = from; i < from + n; i++) {
		uint64_t t0 = wall_ns() - 60000000ull;
		uint64_t root_dur = i % 4 == 1 ? 40000000ull : 12000000ull;
		char path[64], attrs[512], msg[32];
		snprintf(path, sizeof(path), "/item/%d", i);
		bool err = i % 3 == 2;
		snprintf(msg, sizeof(msg), "boom %d", i);
		spanring_attr ra[] = {
			SPANRING_ATTR_STR("http.request.method", "GET"),
			SPANRING_ATTR_STR("url.path", path),
			SPANRING_ATTR_INT("http.response.status_code", err ? 500 : 200),
			SPANRING_ATTR_INT("test.seq", i),
			SPANRING_ATTR_DOUBLE("test.ratio", i / 4.0),
			SPANRING_ATTR_BOOL("test.flag", i % 2 == 0),
		};
		spanring_span_context root, db, render;
		char name[64];
		snprintf(name, sizeof(name), "GET /item/%d", i);
		spanring_span_data d = {
			.name = name, .kind = SPANRING_KIND_SERVER, .root = true,
			.start_ns = t0, .end_ns = t0 + root_dur,
			.attrs = ra, .n_attrs = sizeof(ra) / sizeof(ra[0]),
			.status = err ? SPANRING_STATUS_ERROR : SPANRING_STATUS_UNSET,
			.status_message = err ? msg : NULL, .out_ctx = &root,
		};
		if (spanring_span_emit(tr, &d))
			fprintf(stderr, "dump_producer: emit failed\n");
		snprintf(attrs, sizeof(attrs),
			 "\"http.request.method\":\"GET\",\"url.path\":\"%s\","
			 "\"http.response.status_code\":%d,\"test.seq\":%d,\"test.ratio\":%.17g,"
			 "\"test.flag\":%s",
			 path, err ? 500 : 200, i, i / 4.0, i % 2 == 0 ? "true" : "false");
		manifest(mf, service, &root, NULL, name, 2, t0, t0 + root_dur, attrs, err ? 2 : 0,
			 err ? msg : NULL, NULL);

		spanring_attr da[] = {
			SPANRING_ATTR_STR("db.system", "postgresql"),
			SPANRING_ATTR_STR("db.query.text", "SELECT * FROM t WHERE id = $1"),
		};
		spanring_span_data dd = {
			.name = "db.query", .kind = SPANRING_KIND_CLIENT, .parent = &root,
			.start_ns = t0 + 1000000, .end_ns = t0 + 4000000,
			.attrs = da, .n_attrs = 2, .out_ctx = &db,
		};
		spanring_span_emit(tr, &dd);
		manifest(mf, service, &db, &root, "db.query", 3, t0 + 1000000, t0 + 4000000,
			 "\"db.system\":\"postgresql\",\"db.query.text\":\"SELECT * FROM t WHERE id = $1\"",
			 0, NULL, NULL);

		/* One span through start/end, with an event. */
		spanring_span_opts o = {.kind = SPANRING_KIND_INTERNAL, .parent = &root,
					.detached = true, .start_ns = t0 + 5000000};
		spanring_span *s = spanring_span_start_ex(tr, "render", &o);
		spanring_attr ea[] = {SPANRING_ATTR_INT("bytes", 512 + i)};
		spanring_span_add_event_at(s, "template.loaded", t0 + 5500000, ea, 1);
		spanring_span_get_context(s, &render);
		spanring_span_end_at(s, t0 + 6500000);
		manifest(mf, service, &render, &root, "render", 1, t0 + 5000000, t0 + 6500000, "", 0,
			 NULL, "template.loaded");
	}
	fflush(mf);
}

static int run_spans(int n, const char *mpath)
{
	const char *service = getenv("OTEL_SERVICE_NAME");
	if (!service)
		service = "dump-producer";
	FILE *mf = fopen(mpath, "a");
	if (!mf) {
		perror(mpath);
		return 1;
	}
	spanring_tracer *tr = spanring_tracer_get("dump.test", "1.2.3", NULL);
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	struct sigaction sa = {.sa_handler = on_sig};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	emit_traces(tr, service, mf, 0, n);
	printf("ready\n");
	fflush(stdout);
	int done = n;
	while (!got_term) {
		sigsuspend(&old);
		if (got_usr1) {
			got_usr1 = 0;
			emit_traces(tr, service, mf, done, n);
			done += n;
			printf("more %d\n", done);
			fflush(stdout);
		}
	}
	fclose(mf);
	return 0;
}

static int run_stream(const char *mpath)
{
	const char *service = getenv("OTEL_SERVICE_NAME");
	if (!service)
		service = "dump-producer";
	FILE *mf = fopen(mpath, "a");
	if (!mf) {
		perror(mpath);
		return 1;
	}
	spanring_tracer *tr = spanring_tracer_get("dump.test", "1.2.3", NULL);
	struct sigaction sa = {.sa_handler = on_sig};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; !got_term; i++) {
		emit_traces(tr, service, mf, i, 1);
		if (i % 20 == 19) {
			struct timespec ts = {0, 200000};
			nanosleep(&ts, NULL);
		}
	}
	fclose(mf);
	return 0;
}

/* ---- hostile rings -------------------------------------------------------------- */

static void wait_term(void)
{
	struct sigaction sa = {.sa_handler = on_sig};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	while (!got_term)
		pause();
}

static struct tr_span good_span(int i)
{
	struct tr_span s = {.name = "hostile.good", .kind = 1, .seq = i, .thread = 0};
	memset(s.trace_id, 0xab, 16);
	memset(s.span_id, 0x10 + i, 8);
	s.start_ns = wall_ns() - 5000000;
	s.end_ns = s.start_ns + 1000000;
	return s;
}

static int run_hostile(const char *kind)
{
	static struct tr t;
	uint8_t res[512];
	size_t rl = tr_encode_resource(res, "hostile-svc", false);
	/* "deep" needs room for a record of the full 1 MiB limit. */
	uint32_t slot_size = strcmp(kind, "deep") == 0 ? 4u << 20 : SPANRING_MIN_SLOT_SIZE;
	int err = tr_create(&t, 2, slot_size, res, rl);
	if (err) {
		fprintf(stderr, "dump_producer: ring: %s\n", strerror(-err));
		return 1;
	}
	uint64_t scope = tr_add_scope(&t, "hostile.scope", "0.0.1", NULL);
	struct spanring_ring_hdr *h = sr_hdr(&t.m);
	struct tr_span s0 = good_span(0), s1 = good_span(1);
	tr_write_span(&t, 0, scope, &s0);
	tr_write_span(&t, 0, scope, &s1);
	uint8_t buf[64];
	if (strcmp(kind, "good") == 0) {
		/* nothing wrong */
	} else if (strcmp(kind, "framing") == 0) {
		memset(buf, 0xff, sizeof(buf)); /* a varint that never ends */
		tr_put_raw(&t, 0, buf, sizeof(buf));
		tr_commit(&t, 0);
	} else if (strcmp(kind, "head") == 0) {
		tr_set_head(&t, 1, (uint64_t)t.m.l.slot_size + 4096);
	} else if (strcmp(kind, "abi") == 0) {
		h->abi_major = 99;
	} else if (strcmp(kind, "magic") == 0) {
		h->magic = 0x1122334455667788ull;
	} else if (strcmp(kind, "offsets") == 0) {
		h->data_off += SPANRING_PAGE;
	} else if (strcmp(kind, "spanbytes") == 0) {
		/* tag(2,LEN) len 6: field 1 LEN claiming 100 bytes */
		uint8_t r[] = {0x12, 6, 0x0a, 100, 1, 2, 3, 4};
		tr_put_raw(&t, 0, r, sizeof(r));
		tr_commit(&t, 0);
	} else if (strcmp(kind, "deep") == 0) {
		/* Span.attributes[0] = KeyValue{key "k", value AnyValue{array{values{array ...}}}}.
		 * Sizes first (inside out), then the bytes in one pass (outside in). */
		enum { LEVELS = 120000 };
		size_t *any = malloc((LEVELS + 1) * sizeof(*any));
		size_t *arr = malloc((LEVELS + 1) * sizeof(*arr));
		uint8_t *a = malloc(2u << 20), *b = malloc(2u << 20);
		if (!any || !arr || !a || !b)
			return 1;
		any[0] = 0;
		int L = 0;
		for (int k = 1; k <= LEVELS; k++) {
			arr[k] = 1 + pb_varint_size(any[k - 1]) + any[k - 1];
			any[k] = 1 + pb_varint_size(arr[k]) + arr[k];
			if (any[k] + 64 > SPANRING_MAX_RECORD)
				break;
			L = k;
		}
		uint8_t *w = a;
		for (int k = L; k >= 1; k--) {
			w = pb_put_tag1(w, 5, SPANRING_WT_LEN);
			w = pb_put_varint(w, arr[k]);
			w = pb_put_tag1(w, 1, SPANRING_WT_LEN);
			w = pb_put_varint(w, any[k - 1]);
		}
		size_t n = (size_t)(w - a);
		free(any);
		free(arr);
		/* KeyValue */
		uint8_t *p = b;
		p = pb_put_tag1(p, 1, SPANRING_WT_LEN);
		p = pb_put_bytes(p, "k", 1);
		p = pb_put_tag1(p, 2, SPANRING_WT_LEN);
		p = pb_put_varint(p, n);
		memcpy(p, a, n);
		size_t kvlen = (size_t)(p - b) + n;
		/* Span{attributes(9) = kv} */
		p = a;
		p = pb_put_tag1(p, 9, SPANRING_WT_LEN);
		p = pb_put_varint(p, kvlen);
		memcpy(p, b, kvlen);
		size_t spanlen = (size_t)(p - a) + kvlen;
		p = b;
		p = pb_put_tag1(p, SPANRING_SPAN_FIELD, SPANRING_WT_LEN);
		p = pb_put_varint(p, spanlen);
		memcpy(p, a, spanlen);
		size_t rec = (size_t)(p - b) + spanlen;
		if (rec > tr_free(&t, 1)) {
			fprintf(stderr, "dump_producer: deep record of %zu bytes does not fit\n", rec);
			return 1;
		}
		tr_put_raw(&t, 1, b, rec);
		tr_commit(&t, 1);
		free(a);
		free(b);
	} else if (strcmp(kind, "biglen") == 0) {
		uint8_t r[16], *p = r;
		p = pb_put_tag1(p, SPANRING_SPAN_FIELD, SPANRING_WT_LEN);
		p = pb_put_varint(p, SPANRING_MIN_SLOT_SIZE / 2 + 1); /* > slot_size / 2 */
		tr_put_raw(&t, 0, r, (size_t)(p - r));
		tr_commit(&t, 0);
	} else if (strcmp(kind, "scope") == 0) {
		uint8_t r[16];
		size_t k = tr_ctrl_varint(r, SPANRING_CTRL_SCOPE, 1u << 20);
		tr_put_raw(&t, 1, r, k);
		tr_commit(&t, 1);
	} else {
		fprintf(stderr, "dump_producer: unknown hostile kind %s\n", kind);
		return 2;
	}
	wait_term();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "spans") == 0)
		return run_spans(atoi(argv[2]), argv[3]);
	if (argc == 3 && strcmp(argv[1], "stream") == 0)
		return run_stream(argv[2]);
	if (argc == 3 && strcmp(argv[1], "hostile") == 0)
		return run_hostile(argv[2]);
	fprintf(stderr, "usage: dump_producer spans N MANIFEST | stream MANIFEST | hostile KIND\n");
	return 2;
}
