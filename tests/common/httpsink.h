/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 side of the test and benchmark OTLP/HTTP receivers: one
 * thread, poll(2), keep-alive connections on 127.0.0.1, a POST body framed
 * by Content-Length, an empty answer per request. What a receiver does
 * with the body is its callback: the benchmark sink only counts bytes, the
 * checking receiver (tests/progs/otlp-check-recv) decodes every span.
 */
#ifndef SPANRING_TESTS_HTTPSINK_H
#define SPANRING_TESTS_HTTPSINK_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A request's body is complete. body is NULL (and len its size) unless
 * keep_body asked for the bytes. Returns the status to answer: 200, or a
 * 4xx the sink answers and counts as the receiver's refusal.
 */
typedef int (*httpsink_request_fn)(void *arg, const uint8_t *body, size_t len);

struct httpsink_opts {
	uint16_t port;		/* 0: any; else this one (a backend coming back) */
	const char *port_file;	/* written with the port once listening */
	long max_seconds;	/* the sink stops by itself after this */
	bool keep_body;		/* gather each body for the callback */
	httpsink_request_fn on_request;
	/* called after every wake-up of the loop (a signal, a request, at
	 * least every 200 ms); may be NULL */
	void (*on_wake)(void *arg);
	void *arg;
	volatile sig_atomic_t *stop; /* the loop ends when it becomes non-zero */
};

/* Take one of the sink's command-line options (--port-file PATH, --port P,
 * --max-seconds N) into o; false when name is none of them. */
bool httpsink_option(struct httpsink_opts *o, const char *name, const char *value);

/* Serve until *stop or max_seconds. Returns 0, or -1 (with a message on
 * stderr) when it cannot listen or write the port file. */
int httpsink_serve(const struct httpsink_opts *o);

#endif
