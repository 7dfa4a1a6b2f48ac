/* SPDX-License-Identifier: MIT */
/*
 * Producer hot-path benchmark: the reference span (issue 2) from start to
 * end, with a consumer thread draining the ring as the agent would.
 *
 *   bench_producer [--threads N] [--spans N] [--variant NAME] [--no-consumer]
 *
 * Variants: reference (copying setters), reference_ref (borrowing
 * setters), emit (one-call form), attrs16, events2, unsampled, overlimit.
 * Prints one line of key=value results: median and p99 ns/span (per-span
 * timing with the TSC, calibrated), batch-mean ns/span, drops.
 * For instruction counts run it under callgrind twice with different
 * --spans and divide the difference (tests/bench/run.sh does this).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "internal.h"
#include "ringread.h"
#include "spanring/spanring.h"

static int nthreads = 1, consumer = 1;
static long nspans = 1000000;
static const char *variant = "reference";
enum { V_REF, V_REFREF, V_EMIT, V_ATTRS16, V_EVENTS2, V_UNSAMPLED, V_OVERLIMIT };
static int vid;
static atomic_int stop_consumer;
static struct sr_map cmap;
static spanring_tracer *tracer;
static spanring_span_context parent;
static double tsc_per_ns;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void calibrate(void)
{
	uint64_t t0 = mono_ns(), c0 = __rdtsc();
	usleep(100000);
	uint64_t t1 = mono_ns(), c1 = __rdtsc();
	tsc_per_ns = (double)(c1 - c0) / (double)(t1 - t0);
}

static void *consumer_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_consumer)) {
		if (rr_drain(&cmap, true, NULL, NULL) < 0) {
			fprintf(stderr, "consumer: framing error\n");
			exit(1);
		}
		sched_yield();
	}
	rr_drain(&cmap, true, NULL, NULL);
	return NULL;
}

static char big[2048];

__attribute__((noinline)) void one_span(void);
__attribute__((noinline)) void one_span(void)
{
	if (vid == V_EMIT) {
		spanring_attr a[4] = {
			SPANRING_ATTR_STR("http.request.method", "GET"),
			SPANRING_ATTR_STR("url.path", "/api/users/12345"),
			SPANRING_ATTR_INT("http.response.status_code", 200),
			SPANRING_ATTR_BOOL("cache.hit", true),
		};
		spanring_span_data d = {.name = "GET /api/users/:id", .kind = SPANRING_KIND_SERVER,
					.parent = &parent, .start_ns = spanring_now_ns(),
					.attrs = a, .n_attrs = 4, .status = SPANRING_STATUS_OK};
		spanring_span_emit(tracer, &d);
		return;
	}
	spanring_span_opts o = {.kind = SPANRING_KIND_SERVER, .parent = &parent};
	spanring_span *s;
	if (vid == V_REFREF) {
		s = spanring_span_start_ex(tracer, NULL, &o);
		spanring_span_update_name(s, "GET /api/users/:id");
		spanring_span_set_str_ref(s, "http.request.method", "GET");
		spanring_span_set_str_ref(s, "url.path", "/api/users/12345");
		spanring_span_set_int_ref(s, "http.response.status_code", 200);
		spanring_span_set_bool_ref(s, "cache.hit", true);
	} else {
		s = spanring_span_start_ex(tracer, "GET /api/users/:id", &o);
		spanring_span_set_str(s, "http.request.method", "GET");
		spanring_span_set_str(s, "url.path", "/api/users/12345");
		spanring_span_set_int(s, "http.response.status_code", 200);
		spanring_span_set_bool(s, "cache.hit", true);
	}
	if (vid == V_ATTRS16) {
		static const char *keys[12] = {"a.1", "a.2", "a.3", "a.4", "a.5", "a.6",
					       "a.7", "a.8", "a.9", "a.10", "a.11", "a.12"};
		for (int i = 0; i < 12; i++)
			spanring_span_set_str(s, keys[i], "value-of-some-length");
	} else if (vid == V_EVENTS2) {
		spanring_attr ea[2] = {SPANRING_ATTR_STR("db.system", "redis"),
				       SPANRING_ATTR_INT("retries", 1)};
		spanring_span_add_event(s, "cache.miss", ea, 2);
		spanring_span_add_event(s, "db.query", ea, 1);
	} else if (vid == V_OVERLIMIT) {
		spanring_span_set_str(s, "big", big);
	}
	spanring_span_set_status(s, SPANRING_STATUS_OK, NULL);
	spanring_span_end(s);
}

struct result {
	double *lat;
	long n;
	double batch_ns;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void *producer_main(void *arg)
{
	struct result *r = arg;
	long warm = nspans / 10 < 10000 ? nspans / 10 : 10000;
	for (long i = 0; i < warm; i++) {
		one_span();
		if (!consumer && (i & 255) == 255)
			rr_drain(&cmap, true, NULL, NULL);
	}
	r->lat = malloc(sizeof(double) * (size_t)nspans);
	r->n = nspans;
	uint64_t t0 = mono_ns();
	for (long i = 0; i < nspans; i++) {
		uint64_t c0 = __rdtsc();
		one_span();
		uint64_t c1 = __rdtsc();
		r->lat[i] = (double)(c1 - c0) / tsc_per_ns;
		/* Without a consumer thread, drain here (outside the timed call). */
		if (!consumer && (i & 255) == 255)
			rr_drain(&cmap, true, NULL, NULL);
	}
	r->batch_ns = (double)(mono_ns() - t0) / (double)nspans;
	return NULL;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--spans") && i + 1 < argc)
			nspans = atol(argv[++i]);
		else if (!strcmp(argv[i], "--variant") && i + 1 < argc)
			variant = argv[++i];
		else if (!strcmp(argv[i], "--no-consumer"))
			consumer = 0;
		else {
			fprintf(stderr, "usage: %s [--threads N] [--spans N] [--variant V] [--no-consumer]\n",
				argv[0]);
			return 2;
		}
	}
	if (!getenv("SPANRING_SOCKET"))
		setenv("SPANRING_SOCKET", "/nonexistent/bench.sock", 1);
	setenv("SPANRING_EXIT_TIMEOUT_MS", "0", 0);
	if (strcmp(variant, "unsampled") == 0)
		setenv("OTEL_TRACES_SAMPLER", "always_off", 1);
	if (strcmp(variant, "overlimit") == 0)
		setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "256", 1);
	memset(big, 'q', sizeof(big) - 1);
	static const char *names[] = {"reference", "reference_ref", "emit", "attrs16",
				      "events2", "unsampled", "overlimit"};
	vid = -1;
	for (int i = 0; i < 7; i++)
		if (strcmp(variant, names[i]) == 0)
			vid = i;
	if (vid < 0) {
		fprintf(stderr, "unknown variant %s\n", variant);
		return 2;
	}
	calibrate();
	if (spanring_init() != 0 || rr_map_self(&cmap) != 0) {
		fprintf(stderr, "bench: no ring\n");
		return 1;
	}
	tracer = spanring_tracer_get("bench", "1.0", NULL);
	spanring_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55,
				   &parent);
	pthread_t ct, pt[64];
	struct result res[64];
	if (consumer)
		pthread_create(&ct, NULL, consumer_main, NULL);
	for (int i = 0; i < nthreads; i++)
		pthread_create(&pt[i], NULL, producer_main, &res[i]);
	for (int i = 0; i < nthreads; i++)
		pthread_join(pt[i], NULL);
	atomic_store(&stop_consumer, 1);
	if (consumer)
		pthread_join(ct, NULL);
	long total = 0;
	double batch = 0;
	for (int i = 0; i < nthreads; i++)
		total += res[i].n, batch += res[i].batch_ns;
	double *all = malloc(sizeof(double) * (size_t)total);
	long k = 0;
	for (int i = 0; i < nthreads; i++) {
		memcpy(all + k, res[i].lat, sizeof(double) * (size_t)res[i].n);
		k += res[i].n;
		free(res[i].lat);
	}
	qsort(all, (size_t)total, sizeof(double), cmp_double);
	spanring_stats st;
	spanring_get_stats(&st);
	printf("variant=%s threads=%d spans=%ld median_ns=%.1f p99_ns=%.1f mean_ns=%.1f "
	       "drops=%llu committed=%llu\n",
	       variant, nthreads, total, all[total / 2], all[(long)((double)total * 0.99)],
	       batch / nthreads, (unsigned long long)(st.drop_full + st.drop_oversize),
	       (unsigned long long)st.spans);
	free(all);
	return 0;
}
