/* SPDX-License-Identifier: MIT */
/*
 * Minimal OTLP/HTTP receiver for the agent benchmark: HTTP/1.1 with
 * keep-alive on 127.0.0.1, reads each POST's Content-Length body and
 * discards it, answers 200 with an empty ExportTraceServiceResponse (no
 * body). It does not decode the protobuf: it stands for a collector that
 * costs nothing, so that the agent's own CPU per span is what is measured.
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
#include <errno.h>
#include <stdint.h>

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pbwire.h"

#define MAXC 64

struct conn {
	int fd;
	char hdr[8192];
	size_t hlen;
	unsigned long long body_left;
	int in_body;
	uint8_t *body; /* --latency: the body being read */
	size_t blen, bcap;
};

/* --latency: every span's end-to-end latency, in µs. */
static int want_lat;
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

/* Call fn on the payload of every LEN field number f of [p, end). */
static void pb_each(const uint8_t *p, const uint8_t *end, uint32_t f,
		    void (*fn)(const uint8_t *, const uint8_t *, uint64_t), uint64_t now)
{
	while (p < end) {
		uint32_t field, wt;
		const uint8_t *pl, *next;
		uint64_t v;
		if (pb_next_field(p, end, &field, &wt, &pl, &next, &v))
			return;
		if (field == f && wt == SPANRING_WT_LEN)
			fn(pl, next, now);
		p = next;
	}
}

static void on_span(const uint8_t *p, const uint8_t *end, uint64_t now)
{
	while (p < end) {
		uint32_t field, wt;
		const uint8_t *pl, *next;
		uint64_t v;
		if (pb_next_field(p, end, &field, &wt, &pl, &next, &v))
			return;
		if (field == 8 && wt == SPANRING_WT_I64) {
			uint64_t e;
			memcpy(&e, pl, 8); /* little-endian, as on every target */
			lat_add(now > e ? (now - e) / 1000 : 0);
			return;
		}
		p = next;
	}
}

static void on_scope(const uint8_t *p, const uint8_t *end, uint64_t now)
{
	pb_each(p, end, 2, on_span, now);
}

static void on_resource(const uint8_t *p, const uint8_t *end, uint64_t now)
{
	pb_each(p, end, 2, on_scope, now);
}

static void body_done(struct conn *k)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	pb_each(k->body, k->body + k->blen, 1, on_resource, now);
	k->blen = 0;
}

static void body_add(struct conn *k, const char *p, size_t n)
{
	if (k->blen + n > k->bcap) {
		size_t nc = k->bcap ? k->bcap : 1 << 16;
		while (nc < k->blen + n)
			nc *= 2;
		uint8_t *b = realloc(k->body, nc);
		if (!b)
			return;
		k->body = b;
		k->bcap = nc;
	}
	memcpy(k->body + k->blen, p, n);
	k->blen += n;
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

static const char OK[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
			 "Content-Length: 0\r\n\r\n";

int main(int argc, char **argv)
{
	const char *port_file = NULL;
	long max_s = 600, port = 0;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--latency"))
			want_lat = 1;
		else if (v && !strcmp(argv[i], "--port-file"))
			port_file = argv[++i];
		else if (v && !strcmp(argv[i], "--port"))
			port = atol(argv[++i]);
		else if (v && !strcmp(argv[i], "--max-seconds"))
			max_s = atol(argv[++i]);
		else
			port_file = NULL, i = argc; /* unknown: the usage line */
	}
	if (!port_file) {
		fprintf(stderr, "usage: bench_otlpsink --port-file PATH [--max-seconds N] [--port P] "
				"[--latency]\n");
		return 2;
	}
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	signal(SIGPIPE, SIG_IGN);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				.sin_port = htons((uint16_t)port)};
	socklen_t al = sizeof(a);
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 16) ||
	    getsockname(ls, (struct sockaddr *)&a, &al)) {
		perror("bench_otlpsink");
		return 1;
	}
	FILE *pf = fopen(port_file, "w");
	if (!pf)
		return 1;
	fprintf(pf, "%d\n", ntohs(a.sin_port));
	fclose(pf);
	struct conn c[MAXC];
	int nc = 0;
	unsigned long long requests = 0, body_bytes = 0;
	static char buf[1 << 20];
	time_t end = time(NULL) + max_s;
	while (!stop && time(NULL) < end) {
		struct pollfd p[MAXC + 1];
		p[0] = (struct pollfd){.fd = ls, .events = POLLIN};
		for (int i = 0; i < nc; i++)
			p[i + 1] = (struct pollfd){.fd = c[i].fd, .events = POLLIN};
		int r = poll(p, (nfds_t)nc + 1, 200);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		for (int i = nc - 1; i >= 0; i--) {
			if (!(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			struct conn *k = &c[i];
			ssize_t n = read(k->fd, buf, sizeof(buf));
			if (n <= 0) {
				close(k->fd);
				free(k->body);
				c[i] = c[--nc];
				continue;
			}
			size_t off = 0;
			while (off < (size_t)n) {
				if (k->in_body) {
					size_t take = (size_t)n - off;
					if (take > k->body_left)
						take = (size_t)k->body_left;
					k->body_left -= take;
					body_bytes += take;
					if (want_lat)
						body_add(k, buf + off, take);
					off += take;
					if (k->body_left == 0) {
						k->in_body = 0;
						requests++;
						if (want_lat)
							body_done(k);
						ssize_t w = write(k->fd, OK, sizeof(OK) - 1);
						(void)w;
					}
					continue;
				}
				/* Header bytes, one at a time up to the blank line. */
				char ch = buf[off++];
				if (k->hlen < sizeof(k->hdr) - 1)
					k->hdr[k->hlen++] = ch;
				if (k->hlen >= 4 && !memcmp(k->hdr + k->hlen - 4, "\r\n\r\n", 4)) {
					k->hdr[k->hlen] = 0;
					unsigned long long cl = 0;
					for (char *l = k->hdr; l && *l; l = strstr(l, "\r\n") ? strstr(l, "\r\n") + 2 : NULL)
						if (!strncasecmp(l, "content-length:", 15))
							cl = strtoull(l + 15, NULL, 10);
					if (strcasestr(k->hdr, "expect: 100-continue")) {
						ssize_t w = write(k->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
						(void)w;
					}
					k->hlen = 0;
					k->body_left = cl;
					k->in_body = 1;
					if (cl == 0) {
						k->in_body = 0;
						requests++;
						ssize_t w = write(k->fd, OK, sizeof(OK) - 1);
						(void)w;
					}
				}
			}
		}
		if (p[0].revents & POLLIN) {
			int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0) {
				if (nc == MAXC) {
					close(fd);
				} else {
					c[nc] = (struct conn){.fd = fd};
					nc++;
				}
			}
		}
	}
	printf("{\"requests\":%llu,\"body_bytes\":%llu", requests, body_bytes);
	if (want_lat)
		lat_print();
	printf("}\n");
	return 0;
}
