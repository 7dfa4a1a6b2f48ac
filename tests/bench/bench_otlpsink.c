/* SPDX-License-Identifier: MIT */
/*
 * Minimal OTLP/HTTP receiver for the agent benchmark: HTTP/1.1 with
 * keep-alive on 127.0.0.1 (tests/common/httpsink.c), reads each POST's
 * Content-Length body and discards it, answers 200 with an empty
 * ExportTraceServiceResponse (no body). It does not decode the protobuf:
 * it stands for a collector that costs nothing, so that the agent's own
 * CPU per span is what is measured. (tests/progs/otlp-check-recv is the
 * same server decoding every span, for the tests.)
 *
 *   bench_otlpsink --port-file PATH [--max-seconds N] [--port P] [--latency]
 *
 * --port: listen on P (a backend that comes back on its port), else any.
 * --latency: keep each body and walk it down to the spans' end times
 *   (ExportTraceServiceRequest 1 -> ResourceSpans 2 -> ScopeSpans 2 ->
 *   Span 8, end_time_unix_nano): the end-to-end latency of every span,
 *   from its end (the producer's CLOCK_REALTIME) to the moment its
 *   request was read whole here. Costs the sink, not the agent.
 *
 * Writes the port it listens on to PATH; on SIGTERM prints
 * {"requests":N,"body_bytes":N} (with --latency also "spans" and "lat":
 * {"n","p50_us","p99_us","p999_us","max_us"}) and exits.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpsink.h"
#include "pbwire.h"
#include "spanwalk.h"

/* --latency: every span's end-to-end latency, in µs. */
static uint32_t *lat;
static size_t nlat, caplat;

static void lat_add(uint64_t us)
{
	if (nlat == caplat) {
		size_t nc = caplat ? 2 * caplat : 1 << 16;
		uint32_t *n = realloc(lat, nc * sizeof(*n));
		if (!n)
			return;
		lat = n;
		caplat = nc;
	}
	lat[nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* A Span's field: its end time (8, fixed64) gives the latency. */
static bool span_field(uint32_t field, uint32_t wt, const uint8_t *p, const uint8_t *end,
		       uint64_t v, void *arg)
{
	const uint64_t *now = arg;
	(void)end;
	(void)v;
	if (field != 8 || wt != SPANRING_WT_I64)
		return true;
	uint64_t e;
	memcpy(&e, p, 8); /* little-endian, as on every target */
	lat_add(*now > e ? (*now - e) / 1000 : 0);
	return false; /* this span is done */
}

static bool on_span(const uint8_t *p, const uint8_t *end, void *arg)
{
	pb_each_field(p, end, span_field, arg);
	return true;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void lat_print(void)
{
	qsort(lat, nlat, sizeof(*lat), cmp_u32);
	size_t n = nlat;
#define Q(q) (n ? lat[(size_t)((double)(n - 1) * (q))] : 0)
	printf(",\"spans\":%zu,\"lat\":{\"n\":%zu,\"p50_us\":%u,\"p99_us\":%u,\"p999_us\":%u,"
	       "\"max_us\":%u}",
	       n, n, Q(0.5), Q(0.99), Q(0.999), n ? lat[n - 1] : 0);
#undef Q
}

static volatile sig_atomic_t stop;
static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

static unsigned long long requests, body_bytes;

static int on_request(void *arg, const uint8_t *body, size_t len)
{
	(void)arg;
	requests++;
	body_bytes += len;
	if (body) { /* --latency */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		otlp_each_span(body, body + len, on_span, &now);
	}
	return 200;
}

int main(int argc, char **argv)
{
	struct httpsink_opts o = {.max_seconds = 600, .on_request = on_request, .stop = &stop};
	bool usage = false;
	for (int i = 1; i < argc && !usage; i++) {
		if (!strcmp(argv[i], "--latency"))
			o.keep_body = true;
		else if (i + 1 < argc && httpsink_option(&o, argv[i], argv[i + 1]))
			i++;
		else
			usage = true;
	}
	if (!o.port_file || usage) {
		fprintf(stderr, "usage: bench_otlpsink --port-file PATH [--max-seconds N] [--port P] "
				"[--latency]\n");
		return 2;
	}
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	signal(SIGPIPE, SIG_IGN);
	if (httpsink_serve(&o))
		return 1;
	printf("{\"requests\":%llu,\"body_bytes\":%llu", requests, body_bytes);
	if (o.keep_body)
		lat_print();
	printf("}\n");
	return 0;
}
