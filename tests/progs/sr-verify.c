/* SPDX-License-Identifier: MIT */
/*
 * Checks the agent's file output against what the test producers sent.
 * Reads one or more files of varint-length-delimited
 * ExportTraceServiceRequest messages (decoded with protobuf-c) and
 * collects, per (service.name, process.pid), the (test.thread, test.seq)
 * of every span.
 *
 *   sr-verify [--split DIR] [--expect SVC:THREADS:SPANS]... [--prefix SVC]...
 *             [--allow-dups] [--min SVC:N] FILE...
 *
 * --expect: every thread 0..THREADS-1 of SVC has exactly the seqs
 *   0..SPANS-1 (each once, unless --allow-dups) and nothing else.
 * --prefix: every thread of SVC has the seqs 0..m-1 for some m (what a
 *   killed producer committed), each once.
 * --split: also write each request to DIR/req-<n>.bin (for protoc).
 * Checks always: every request decodes; every resource carries
 * process.pid, process.owner, host.name, none of them forged by
 * the producer ("forged-*", pid 1); every span has a 16-byte trace id and
 * an 8-byte span id.
 * Prints "requests=R spans=S" and one "service=... pid=... spans=...
 * threads=... dups=..." line per producer; exit 0 when all checks pass.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_trace_service.pb-c.h"
#include "pbwire.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

#define MAX_PROD 1024
#define MAX_THREADS 256

struct prod {
	char service[128];
	long long pid;
	uint64_t spans, dups;
	uint64_t max_seq[MAX_THREADS];
	uint8_t *seen[MAX_THREADS]; /* counts per seq (saturating) */
	size_t cap[MAX_THREADS];
	bool has_thread[MAX_THREADS];
};

static struct prod prods[MAX_PROD];
static size_t n_prods;
static int failures;

#define FAIL(...)                                        \
	do {                                             \
		fprintf(stderr, "sr-verify: " __VA_ARGS__); \
		fputc('\n', stderr);                     \
		failures++;                              \
	} while (0)

static const KeyValue *attr(KeyValue **kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (kv[i]->key && strcmp(kv[i]->key, key) == 0)
			return kv[i];
	return NULL;
}

static struct prod *prod_get(const char *svc, long long pid)
{
	for (size_t i = 0; i < n_prods; i++)
		if (prods[i].pid == pid && strcmp(prods[i].service, svc) == 0)
			return &prods[i];
	if (n_prods == MAX_PROD) {
		FAIL("too many producers");
		exit(1);
	}
	struct prod *p = &prods[n_prods++];
	snprintf(p->service, sizeof(p->service), "%s", svc);
	p->pid = pid;
	return p;
}

static void record(struct prod *p, long long thread, long long seq)
{
	if (thread < 0 || thread >= MAX_THREADS || seq < 0 || seq > 100000000) {
		FAIL("span with test.thread=%lld test.seq=%lld out of range", thread, seq);
		return;
	}
	size_t s = (size_t)seq;
	if (s >= p->cap[thread]) {
		size_t cap = p->cap[thread] ? p->cap[thread] : 1024;
		while (cap <= s)
			cap *= 2;
		p->seen[thread] = realloc(p->seen[thread], cap);
		memset(p->seen[thread] + p->cap[thread], 0, cap - p->cap[thread]);
		p->cap[thread] = cap;
	}
	if (p->seen[thread][s])
		p->dups++;
	if (p->seen[thread][s] < 255)
		p->seen[thread][s]++;
	p->has_thread[thread] = true;
	if ((uint64_t)s + 1 > p->max_seq[thread])
		p->max_seq[thread] = (uint64_t)s + 1;
	p->spans++;
}

static void check_request(const uint8_t *buf, size_t len, uint64_t *spans)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
			NULL, len, buf);
	if (!r) {
		FAIL("a request of %zu bytes does not decode", len);
		return;
	}
	for (size_t i = 0; i < r->n_resource_spans; i++) {
		Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[i];
		if (!rs->resource) {
			FAIL("ResourceSpans without a resource");
			continue;
		}
		KeyValue **ra = rs->resource->attributes;
		size_t nra = rs->resource->n_attributes;
		const KeyValue *svc = attr(ra, nra, "service.name");
		const KeyValue *pid = attr(ra, nra, "process.pid");
		const KeyValue *host = attr(ra, nra, "host.name");
		const KeyValue *owner = attr(ra, nra, "process.owner");
		if (!svc || !pid || !host || !owner) {
			FAIL("resource lacks service.name/process.pid/host.name/process.owner");
			continue;
		}
		if (pid->value->int_value == 1 || !strcmp(host->value->string_value, "forged-host") ||
		    !strcmp(owner->value->string_value, "forged-owner"))
			FAIL("resource kept a producer's forged identity");
		int n_pid = 0;
		for (size_t k = 0; k < nra; k++)
			if (!strcmp(ra[k]->key, "process.pid"))
				n_pid++;
		if (n_pid != 1)
			FAIL("resource has %d process.pid attributes", n_pid);
		struct prod *p = prod_get(svc->value->string_value, (long long)pid->value->int_value);
		for (size_t j = 0; j < rs->n_scope_spans; j++) {
			Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
			if (!ss->scope || !ss->scope->name || !*ss->scope->name)
				FAIL("ScopeSpans without a scope name");
			for (size_t k = 0; k < ss->n_spans; k++) {
				Opentelemetry__Proto__Trace__V1__Span *s = ss->spans[k];
				if (s->trace_id.len != 16 || s->span_id.len != 8)
					FAIL("span with bad id lengths");
				const KeyValue *th = attr(s->attributes, s->n_attributes, "test.thread");
				const KeyValue *sq = attr(s->attributes, s->n_attributes, "test.seq");
				(*spans)++;
				if (!th || !sq) {
					/* Spans of other programs (the example) are counted only. */
					p->spans++;
					continue;
				}
				record(p, (long long)th->value->int_value, (long long)sq->value->int_value);
			}
		}
	}
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
		r, NULL);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 20, n = 0;
	uint8_t *b = malloc(cap);
	size_t r;
	while ((r = fread(b + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap)
			b = realloc(b, cap *= 2);
	}
	fclose(f);
	*len = n;
	return b;
}

static struct prod *prod_by_service(const char *svc, size_t *count)
{
	struct prod *first = NULL;
	*count = 0;
	for (size_t i = 0; i < n_prods; i++) {
		if (strcmp(prods[i].service, svc) == 0) {
			if (!first)
				first = &prods[i];
			(*count)++;
		}
	}
	return first;
}

int main(int argc, char **argv)
{
	const char *split = NULL;
	const char *expect[64], *prefix[64];
	size_t n_expect = 0, n_prefix = 0;
	bool allow_dups = false;
	const char *files[256];
	size_t n_files = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--split") && i + 1 < argc)
			split = argv[++i];
		else if (!strcmp(argv[i], "--expect") && i + 1 < argc && n_expect < 64)
			expect[n_expect++] = argv[++i];
		else if (!strcmp(argv[i], "--prefix") && i + 1 < argc && n_prefix < 64)
			prefix[n_prefix++] = argv[++i];
		else if (!strcmp(argv[i], "--allow-dups"))
			allow_dups = true;
		else if (n_files < 256)
			files[n_files++] = argv[i];
	}
	uint64_t requests = 0, spans = 0;
	for (size_t fi = 0; fi < n_files; fi++) {
		size_t len;
		uint8_t *buf = read_file(files[fi], &len);
		if (!buf) {
			FAIL("cannot read %s: %s", files[fi], strerror(errno));
			continue;
		}
		const uint8_t *p = buf, *end = buf + len;
		while (p < end) {
			uint64_t mlen;
			if (pb_get_varint(&p, end, &mlen) || mlen > (uint64_t)(end - p)) {
				FAIL("%s: truncated record at byte %zu", files[fi], (size_t)(p - buf));
				break;
			}
			if (split) {
				char path[4096];
				snprintf(path, sizeof(path), "%s/req-%llu.bin", split,
					 (unsigned long long)requests);
				FILE *o = fopen(path, "wb");
				if (o) {
					fwrite(p, 1, (size_t)mlen, o);
					fclose(o);
				}
			}
			check_request(p, (size_t)mlen, &spans);
			requests++;
			p += mlen;
		}
		free(buf);
	}
	printf("requests=%llu spans=%llu\n", (unsigned long long)requests,
	       (unsigned long long)spans);
	for (size_t i = 0; i < n_prods; i++) {
		int threads = 0;
		for (int t = 0; t < MAX_THREADS; t++)
			threads += prods[i].has_thread[t];
		printf("service=%s pid=%lld spans=%llu threads=%d dups=%llu\n", prods[i].service,
		       prods[i].pid, (unsigned long long)prods[i].spans, threads,
		       (unsigned long long)prods[i].dups);
	}
	for (size_t e = 0; e < n_expect; e++) {
		char svc[128];
		int threads;
		long nspans;
		if (sscanf(expect[e], "%127[^:]:%d:%ld", svc, &threads, &nspans) != 3) {
			FAIL("bad --expect %s", expect[e]);
			continue;
		}
		size_t count;
		struct prod *p = prod_by_service(svc, &count);
		if (!p) {
			FAIL("service %s: no spans at all", svc);
			continue;
		}
		if (count != 1)
			FAIL("service %s: under %zu different resources (pids)", svc, count);
		for (int t = 0; t < MAX_THREADS; t++) {
			if (t >= threads) {
				if (p->has_thread[t])
					FAIL("service %s: unexpected thread %d", svc, t);
				continue;
			}
			long missing = 0, dup = 0;
			for (long s = 0; s < nspans; s++) {
				uint8_t c = (size_t)s < p->cap[t] ? p->seen[t][s] : 0;
				if (!c)
					missing++;
				else if (c > 1)
					dup++;
			}
			if (missing)
				FAIL("service %s thread %d: %ld of %ld spans missing", svc, t, missing,
				     nspans);
			if (dup && !allow_dups)
				FAIL("service %s thread %d: %ld spans duplicated", svc, t, dup);
			if (p->max_seq[t] > (uint64_t)nspans)
				FAIL("service %s thread %d: unexpected seq %llu", svc, t,
				     (unsigned long long)p->max_seq[t] - 1);
		}
	}
	for (size_t e = 0; e < n_prefix; e++) {
		size_t count;
		struct prod *p = prod_by_service(prefix[e], &count);
		if (!p) {
			FAIL("service %s: no spans at all", prefix[e]);
			continue;
		}
		for (int t = 0; t < MAX_THREADS; t++) {
			if (!p->has_thread[t])
				continue;
			for (uint64_t s = 0; s < p->max_seq[t]; s++) {
				uint8_t c = p->seen[t][s];
				if (c != 1) {
					FAIL("service %s thread %d: seq %llu seen %u times (not a prefix)",
					     prefix[e], t, (unsigned long long)s, c);
					break;
				}
			}
			printf("prefix service=%s thread=%d spans=%llu\n", prefix[e], t,
			       (unsigned long long)p->max_seq[t]);
		}
	}
	if (failures)
		fprintf(stderr, "sr-verify: %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
