/* SPDX-License-Identifier: MIT */
/*
 * LTTng-UST side of the comparison (tests/bench/lttng.sh builds and runs
 * it): the caller's cost of one tracepoint carrying the reference span's
 * payload, measured exactly like tests/bench/bench_producer.c measures a
 * spanring span (warm-up; a phase timed event by event with rdtsc; a phase
 * timed in batches of 64).
 *
 *   bench_lttng [--variant span|one_int] [--events N] [--warmup N]
 *               [--batch N] [--pin] [--wait-enabled MS] [--json]
 *
 * The ids, name, times and attribute values are prepared outside the
 * timed call (only a counter changes per event): the figure is the
 * tracepoint alone, which favours LTTng (a spanring span's time includes
 * its two clock reads and id generation). one_event() is noinline so that
 *   valgrind --tool=callgrind --toggle-collect=one_event bench_lttng ...
 * counts the instructions of the tracepoint calls only.
 * --wait-enabled: wait until the session has enabled the event in this
 * process (registration with lttng-sessiond is asynchronous), else fail.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "bench_lttng_tp.h"

static int v_one_int, json, pin;
static long nevents = 200000, nwarm = 10000, batch = 64;
static double tsc_per_ns;
static uint64_t ctr;
static struct bench_span sp = {
	.trace_id = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e,
		     0x0e, 0x47, 0x36},
	.span_id = {1, 2, 3, 4, 5, 6, 7, 8},
	.parent_id = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	.name = "GET /api/users/:id", .method = "GET", .path = "/api/users/12345",
	.status_code = 200, .kind = 2, .cache_hit = 1,
};

__attribute__((noinline)) void one_event(void);
__attribute__((noinline)) void one_event(void)
{
	uint64_t c = ++ctr;
	if (v_one_int) {
		lttng_ust_tracepoint(spanring_bench, one_int, (int64_t)c);
		return;
	}
	memcpy(sp.span_id, &c, sizeof(c));
	sp.start_ns = 1700000000000000000ull + c * 1000;
	sp.end_ns = sp.start_ns + 900;
	lttng_ust_tracepoint(spanring_bench, span, &sp);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *s, long n, double q)
{
	long i = (long)((double)n * q);
	return n ? s[i < n ? i : n - 1] : 0;
}

static int enabled(void)
{
	return v_one_int ? lttng_ust_tracepoint_enabled(spanring_bench, one_int)
			 : lttng_ust_tracepoint_enabled(spanring_bench, span);
}

int main(int argc, char **argv)
{
	long wait_ms = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--variant") && i + 1 < argc)
			v_one_int = !strcmp(argv[++i], "one_int");
		else if (!strcmp(argv[i], "--events") && i + 1 < argc)
			nevents = atol(argv[++i]);
		else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
			nwarm = atol(argv[++i]);
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			batch = atol(argv[++i]);
		else if (!strcmp(argv[i], "--wait-enabled") && i + 1 < argc)
			wait_ms = atol(argv[++i]);
		else if (!strcmp(argv[i], "--pin"))
			pin = 1;
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else {
			fprintf(stderr, "usage: see tests/bench/lttng/bench_lttng.c\n");
			return 2;
		}
	}
	if (pin) {
		cpu_set_t set;
		if (sched_getaffinity(0, sizeof(set), &set) == 0) {
			for (int c = 0; c < CPU_SETSIZE; c++)
				if (CPU_ISSET(c, &set)) {
					CPU_ZERO(&set);
					CPU_SET(c, &set);
					sched_setaffinity(0, sizeof(set), &set);
					break;
				}
		}
	}
	uint64_t t0 = mono_ns();
	while (!enabled() && wait_ms > 0 && mono_ns() - t0 < (uint64_t)wait_ms * 1000000ull)
		usleep(1000);
	int en = enabled() != 0;
	if (wait_ms > 0 && !en) {
		fprintf(stderr, "bench_lttng: the tracepoint is not enabled (no session?)\n");
		return 1;
	}
	uint64_t m0 = mono_ns(), c0 = __rdtsc();
	usleep(50000);
	tsc_per_ns = (double)(__rdtsc() - c0) / (double)(mono_ns() - m0);
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	uint64_t w0 = mono_ns();
	for (long i = 0; i < nwarm; i++)
		one_event();
	double *lat = malloc(sizeof(double) * (size_t)(nevents ? nevents : 1));
	for (long i = 0; i < nevents; i++) {
		uint64_t a = __rdtsc();
		one_event();
		uint64_t b = __rdtsc();
		lat[i] = (double)(b - a) / tsc_per_ns;
	}
	long nb = batch > 0 ? nevents / batch : 0;
	double *bm = malloc(sizeof(double) * (size_t)(nb ? nb : 1));
	for (long k = 0; k < nb; k++) {
		uint64_t a = __rdtsc();
		for (long j = 0; j < batch; j++)
			one_event();
		uint64_t b = __rdtsc();
		bm[k] = (double)(b - a) / tsc_per_ns / (double)batch;
	}
	double wall = (double)(mono_ns() - w0) / 1e9;
	getrusage(RUSAGE_SELF, &r1);
	double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
		     (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
		     (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
		     (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
	qsort(lat, (size_t)nevents, sizeof(double), cmp_double);
	qsort(bm, (size_t)(nb ? nb : 1), sizeof(double), cmp_double);
	long calls = nwarm + nevents + nb * batch;
	/* timer overhead: an empty timed region */
	double e[1000];
	for (int i = 0; i < 1000; i++) {
		uint64_t a = __rdtsc();
		__asm__ volatile("" ::: "memory");
		uint64_t b = __rdtsc();
		e[i] = (double)(b - a) / tsc_per_ns;
	}
	qsort(e, 1000, sizeof(double), cmp_double);
	if (json)
		printf("{\"variant\":\"%s\",\"enabled\":%s,\"events\":%ld,\"calls\":%ld,"
		       "\"median_ns\":%.1f,\"p99_ns\":%.1f,\"p999_ns\":%.1f,\"batch_median_ns\":%.2f,"
		       "\"wall_s\":%.4f,\"cpu_s\":%.4f,\"timer_ns\":%.1f}\n",
		       v_one_int ? "one_int" : "span", en ? "true" : "false", nevents, calls,
		       pct(lat, nevents, 0.5), pct(lat, nevents, 0.99), pct(lat, nevents, 0.999),
		       nb ? pct(bm, nb, 0.5) : 0.0, wall, cpu, e[500]);
	else
		printf("variant=%s enabled=%d events=%ld calls=%ld median_ns=%.1f p99_ns=%.1f "
		       "batch_median_ns=%.2f wall_s=%.3f cpu_s=%.3f\n",
		       v_one_int ? "one_int" : "span", en, nevents, calls, pct(lat, nevents, 0.5),
		       pct(lat, nevents, 0.99), nb ? pct(bm, nb, 0.5) : 0.0, wall, cpu);
	return 0;
}
