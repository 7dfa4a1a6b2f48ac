/* SPDX-License-Identifier: MIT */
/*
 * Producer of the OTLP exporter tests: spans through the public API with
 * every attribute type, events, links, status, explicit times and a
 * child per span, and a JSON line per span describing what it must look
 * like at the receiver (ids included), for tests/otlp-receiver/check.js.
 *
 *   otlp-prod [-o expected.jsonl] [-I ids.bin] [-n spans/thread] [-t threads]
 *             [-r spans/s] [-b attr bytes]
 * -I writes only the 8-byte span id of every span committed, in binary:
 * the identity a check at high rates needs (tests/progs/otlp-check-recv),
 * without the cost of a JSON line per span. Without -o and -I it only
 * produces (benchmarks). -n and -r count each thread's root spans; each
 * root has a child, so twice as many spans are committed.
 * Environment as for any producer (SPANRING_SOCKET, OTEL_SERVICE_NAME...).
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spanring/spanring.h"

static long n_spans = 100, rate = 0, pad_bytes = 0;
static int n_threads = 1;
static FILE *exp_out, *ids_out;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static spanring_tracer *tracer;
static uint64_t base_ns;
static char *pad;

static void hex(char *o, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(o + 2 * i, "%02x", p[i]);
}

static void one(int t, long i, spanring_span_context *prev)
{
	char name[64], sval[64], cname[64], evname[32], b2[32];
	uint64_t start = base_ns + ((uint64_t)t << 32) + (uint64_t)i * 1000;
	snprintf(name, sizeof(name), "op-%d-%ld", t, i);
	snprintf(sval, sizeof(sval), "v-%d-%ld", t, i);
	snprintf(cname, sizeof(cname), "child-%d-%ld", t, i);
	snprintf(evname, sizeof(evname), "ev-%ld", i);
	snprintf(b2, sizeof(b2), "b-%ld", i);
	spanring_span_opts o = {.kind = SPANRING_KIND_SERVER, .root = true, .detached = true,
				.start_ns = start};
	spanring_span *s = spanring_span_start_ex(tracer, name, &o);
	if (!s)
		return;
	uint8_t bytes[3] = {0xde, 0xad, (uint8_t)i};
	const char *sa[] = {"a", b2};
	bool ba[] = {true, false};
	int64_t ia[] = {1, -2, i};
	double da[] = {0.5, -1.5};
	spanring_span_set_str(s, "test.str", sval);
	spanring_span_set_bool(s, "test.bool", i % 2);
	spanring_span_set_int(s, "test.int", -i * 1000 - t);
	spanring_span_set_double(s, "test.double", (double)i + 0.25);
	spanring_span_set_bytes(s, "test.bytes", bytes, 3);
	spanring_attr arr[] = {
		{.key = "test.sarr", .type = SPANRING_ATTR_STRING_ARRAY, .v.array = {sa, 2}},
		{.key = "test.barr", .type = SPANRING_ATTR_BOOL_ARRAY, .v.array = {ba, 2}},
		{.key = "test.iarr", .type = SPANRING_ATTR_INT_ARRAY, .v.array = {ia, 3}},
		{.key = "test.darr", .type = SPANRING_ATTR_DOUBLE_ARRAY, .v.array = {da, 2}},
	};
	for (size_t k = 0; k < 4; k++)
		spanring_span_set_attr(s, &arr[k]);
	spanring_span_set_int(s, "test.thread", t);
	spanring_span_set_int(s, "test.seq", i);
	if (pad_bytes)
		spanring_span_set_strn(s, "test.pad", pad, (size_t)pad_bytes);
	spanring_attr ea = SPANRING_ATTR_INT("ev.int", i);
	spanring_span_add_event_at(s, evname, start + 100, &ea, 1);
	spanring_attr la = SPANRING_ATTR_INT("link.n", i);
	bool linked = i > 0;
	if (linked)
		spanring_span_add_link(s, prev, &la, 1);
	int st = (int)(i % 3);
	char smsg[32] = "";
	if (st == 0) {
		snprintf(smsg, sizeof(smsg), "err-%ld", i);
		spanring_span_set_status(s, SPANRING_STATUS_ERROR, smsg);
	} else if (st == 1) {
		spanring_span_set_status(s, SPANRING_STATUS_OK, NULL);
	}
	spanring_span_context ctx, cctx;
	spanring_span_get_context(s, &ctx);
	spanring_attr ca = SPANRING_ATTR_INT("child.seq", i);
	spanring_span_data d = {.name = cname,
				.kind = SPANRING_KIND_CLIENT,
				.parent = &ctx,
				.start_ns = start + 200,
				.end_ns = start + 300,
				.attrs = &ca,
				.n_attrs = 1,
				.out_ctx = &cctx};
	int crc = spanring_span_emit(tracer, &d);
	int rc = spanring_span_end_at(s, start + 500);
	if (ids_out) {
		pthread_mutex_lock(&out_lock);
		if (rc == 0)
			fwrite(ctx.span_id, 8, 1, ids_out);
		if (crc == 0)
			fwrite(cctx.span_id, 8, 1, ids_out);
		pthread_mutex_unlock(&out_lock);
	}
	char tid[33], sid[17], psid[17], ctid[33], csid[17];
	hex(tid, ctx.trace_id, 16);
	hex(sid, ctx.span_id, 8);
	hex(psid, prev->span_id, 8);
	hex(ctid, cctx.trace_id, 16);
	hex(csid, cctx.span_id, 8);
	if (!exp_out) {
		*prev = ctx;
		return;
	}
	pthread_mutex_lock(&out_lock);
	if (rc == 0) {
		fprintf(exp_out,
			"{\"trace_id\":\"%s\",\"span_id\":\"%s\",\"parent_span_id\":\"\",\"name\":\"%s\","
			"\"kind\":2,\"start\":\"%" PRIu64 "\",\"end\":\"%" PRIu64 "\",\"attrs\":{"
			"\"test.str\":{\"s\":\"%s\"},\"test.bool\":{\"b\":%s},\"test.int\":{\"i\":\"%ld\"},"
			"\"test.double\":{\"d\":%.17g},\"test.bytes\":{\"bytes\":\"dead%02x\"},"
			"\"test.sarr\":{\"a\":[{\"s\":\"a\"},{\"s\":\"%s\"}]},"
			"\"test.barr\":{\"a\":[{\"b\":true},{\"b\":false}]},"
			"\"test.iarr\":{\"a\":[{\"i\":\"1\"},{\"i\":\"-2\"},{\"i\":\"%ld\"}]},"
			"\"test.darr\":{\"a\":[{\"d\":0.5},{\"d\":-1.5}]},"
			"\"test.thread\":{\"i\":\"%d\"},\"test.seq\":{\"i\":\"%ld\"}%s%s%s},"
			"\"events\":[{\"time\":\"%" PRIu64 "\",\"name\":\"%s\",\"attrs\":{\"ev.int\":{\"i\":"
			"\"%ld\"}},\"dropped\":0}],",
			tid, sid, name, start, start + 500, sval, i % 2 ? "true" : "false",
			-i * 1000 - t, (double)i + 0.25, (unsigned)(uint8_t)i, b2, i, t, i,
			pad_bytes ? ",\"test.pad\":{\"s\":\"" : "", pad_bytes ? pad : "",
			pad_bytes ? "\"}" : "", start + 100, evname, i);
		if (linked) {
			char ltid[33];
			hex(ltid, prev->trace_id, 16);
			fprintf(exp_out,
				"\"links\":[{\"trace_id\":\"%s\",\"span_id\":\"%s\",\"attrs\":{\"link.n\":"
				"{\"i\":\"%ld\"}}}],",
				ltid, psid, i);
		} else {
			fprintf(exp_out, "\"links\":[],");
		}
		fprintf(exp_out, "\"status\":{\"code\":%d,\"message\":\"%s\"},\"pid\":%d}\n",
			st == 0 ? 2 : st == 1 ? 1 : 0, smsg, (int)getpid());
	}
	if (crc == 0)
		fprintf(exp_out,
			"{\"trace_id\":\"%s\",\"span_id\":\"%s\",\"parent_span_id\":\"%s\",\"name\":\"%s\","
			"\"kind\":3,\"start\":\"%" PRIu64 "\",\"end\":\"%" PRIu64 "\",\"attrs\":{"
			"\"child.seq\":{\"i\":\"%ld\"}},\"events\":[],\"links\":[],"
			"\"status\":{\"code\":0,\"message\":\"\"},\"pid\":%d}\n",
			ctid, csid, sid, cname, start + 200, start + 300, i, (int)getpid());
	pthread_mutex_unlock(&out_lock);
	*prev = ctx;
}

static void *run(void *arg)
{
	int t = (int)(intptr_t)arg;
	spanring_span_context prev;
	memset(&prev, 0, sizeof(prev));
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long long late = 0; /* schedule given up while the machine was busy */
	for (long i = 0; i < n_spans; i++) {
		one(t, i, &prev);
		if (rate) {
			/* pace: i spans by t0 + late + i/rate. A thread that fell
			 * more than 20 ms behind (a loaded machine) does not catch
			 * up in a burst: a burst bigger than the ring would be a
			 * test of the machine, not of the agent. The rate is at
			 * most the one asked for, never above. */
			long long due = late + (long long)(i + 1) * 1000000000ll / rate;
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long long el = (now.tv_sec - t0.tv_sec) * 1000000000ll + (now.tv_nsec - t0.tv_nsec);
			if (el - due > 20000000ll)
				late += el - due - 20000000ll;
			if (due > el) {
				struct timespec d = {(time_t)((due - el) / 1000000000ll),
						     (long)((due - el) % 1000000000ll)};
				nanosleep(&d, NULL);
			}
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	int c;
	while ((c = getopt(argc, argv, "o:I:n:t:r:b:")) != -1) {
		switch (c) {
		case 'o':
			path = optarg;
			break;
		case 'I':
			if (!(ids_out = fopen(optarg, "w"))) {
				perror(optarg);
				return 1;
			}
			break;
		case 'n':
			n_spans = atol(optarg);
			break;
		case 't':
			n_threads = atoi(optarg);
			break;
		case 'r':
			rate = atol(optarg);
			break;
		case 'b':
			pad_bytes = atol(optarg);
			break;
		default:
			fprintf(stderr, "usage: otlp-prod [-o expected.jsonl] [-I ids.bin] [-n N] [-t T] [-r rate] "
					"[-b pad]\n");
			return 2;
		}
	}
	if (n_threads < 1 || n_threads > 64) {
		fprintf(stderr, "otlp-prod: 1..64 threads\n");
		return 2;
	}
	if (path && !(exp_out = fopen(path, "w")))
		return 1;
	if (pad_bytes) {
		pad = malloc((size_t)pad_bytes + 1);
		for (long k = 0; k < pad_bytes; k++)
			pad[k] = (char)('a' + k % 26);
		pad[pad_bytes] = 0;
	}
	spanring_attr sattr = SPANRING_ATTR_STR("scope.attr", "scope-value");
	tracer = spanring_tracer_get_ex("otlp-test.scope", "1.2.3", NULL, &sattr, 1);
	base_ns = (uint64_t)time(NULL) * 1000000000ull;
	pthread_t th[64];
	for (int t = 0; t < n_threads; t++)
		pthread_create(&th[t], NULL, run, (void *)(intptr_t)t);
	for (int t = 0; t < n_threads; t++)
		pthread_join(th[t], NULL);
	if (exp_out)
		fclose(exp_out);
	if (ids_out && fclose(ids_out)) {
		perror("otlp-prod: ids");
		return 1;
	}
	spanring_stats st;
	spanring_get_stats(&st);
	int rc = spanring_shutdown(5000);
	printf("spans=%llu dropped=%llu shutdown=%d\n", (unsigned long long)st.spans,
	       (unsigned long long)(st.drop_full + st.drop_oversize + st.drop_encode), rc);
	free(pad);
	return 0;
}
