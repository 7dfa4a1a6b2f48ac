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
 *   bench_otlpsink --port-file PATH [--max-seconds N] [--port P]
 *
 * --port: listen on P (a backend that comes back on its port), else any.
 *
 * Writes the port it listens on to PATH; on SIGTERM prints
 * {"requests":N,"body_bytes":N} and exits.
 */
#include <signal.h>
#include <stdio.h>

#include "httpsink.h"

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
	(void)body;
	requests++;
	body_bytes += len;
	return 200;
}

int main(int argc, char **argv)
{
	struct httpsink_opts o = {.max_seconds = 600, .on_request = on_request, .stop = &stop};
	bool usage = argc % 2 == 0;
	for (int i = 1; i + 1 < argc; i += 2)
		usage |= !httpsink_option(&o, argv[i], argv[i + 1]);
	if (!o.port_file || usage) {
		fprintf(stderr, "usage: bench_otlpsink --port-file PATH [--max-seconds N] [--port P]\n");
		return 2;
	}
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	signal(SIGPIPE, SIG_IGN);
	if (httpsink_serve(&o))
		return 1;
	printf("{\"requests\":%llu,\"body_bytes\":%llu}\n", requests, body_bytes);
	return 0;
}
