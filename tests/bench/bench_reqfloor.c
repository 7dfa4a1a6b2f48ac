/* SPDX-License-Identifier: MIT */
/*
 * The least any agent can spend per batch (tests/bench/agent.py, section
 * wake): a process that does nothing but what exporting a batch over
 * OTLP/HTTP takes from the kernel. It sleeps until each deadline (one
 * wake-up per batch, like the agent under a steady flow), then for each
 * backend reads the previous answer without waiting (it is there by
 * then) and sends one HTTP/1.1 POST of --body bytes with one sendmsg(2).
 * No ring, no drain, no framing, no parsing: what it costs is the floor
 * under the agent's CPU per batch on this machine.
 *
 *   bench_reqfloor --body BYTES --period-us US --seconds S --port P [--port P ...]
 *
 * Prints one JSON object: batches, backends, cpu_us_per_batch (user +
 * system, getrusage, over the whole run).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_BACKENDS 16

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static double tv_us(struct timeval t)
{
	return (double)t.tv_sec * 1e6 + (double)t.tv_usec;
}

static int connect_local(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1;
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("bench_reqfloor: connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int main(int argc, char **argv)
{
	long body = 0, period_us = 0, seconds = 0;
	int fds[MAX_BACKENDS], n = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--body"))
			body = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--period-us"))
			period_us = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--port") && n < MAX_BACKENDS)
			fds[n++] = connect_local(atoi(argv[i + 1]));
	}
	if (body <= 0 || period_us <= 0 || seconds <= 0 || n == 0) {
		fprintf(stderr, "usage: bench_reqfloor --body BYTES --period-us US --seconds S "
				"--port P [--port P ...]\n");
		return 2;
	}
	char *payload = calloc(1, (size_t)body);
	if (!payload)
		return 1;
	char head[256];
	int hl = snprintf(head, sizeof(head),
			  "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			  "Content-Type: application/x-protobuf\r\nContent-Length: %ld\r\n\r\n",
			  body);
	char answer[4096];
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	uint64_t t = mono_ns(), end = t + (uint64_t)seconds * 1000000000ull;
	long batches = 0;
	while (t < end) {
		t += (uint64_t)period_us * 1000;
		struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ull),
				      .tv_nsec = (long)(t % 1000000000ull)};
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		for (int i = 0; i < n; i++) {
			if (batches && recv(fds[i], answer, sizeof(answer), MSG_DONTWAIT) < 0)
				continue; /* no answer yet: skip this backend's turn */
			struct iovec v[2] = {{head, (size_t)hl}, {payload, (size_t)body}};
			struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};
			if (sendmsg(fds[i], &m, MSG_NOSIGNAL) < 0) {
				perror("bench_reqfloor: sendmsg");
				return 1;
			}
		}
		batches++;
	}
	getrusage(RUSAGE_SELF, &r1);
	double cpu = tv_us(r1.ru_utime) - tv_us(r0.ru_utime) + tv_us(r1.ru_stime) - tv_us(r0.ru_stime);
	printf("{\"batches\":%ld,\"backends\":%d,\"body\":%ld,\"cpu_us_per_batch\":%.1f}\n", batches,
	       n, body, cpu / (double)batches);
	free(payload);
	return 0;
}
