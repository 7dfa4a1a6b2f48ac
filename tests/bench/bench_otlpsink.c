/* SPDX-License-Identifier: MIT */
/*
 * Minimal OTLP/HTTP receiver for the agent benchmark: HTTP/1.1 with
 * keep-alive on 127.0.0.1, reads each POST's Content-Length body and
 * discards it, answers 200 with an empty ExportTraceServiceResponse (no
 * body). It does not decode the protobuf: it stands for a collector that
 * costs nothing, so that the agent's own CPU per span is what is measured.
 *
 *   bench_otlpsink --port-file PATH [--max-seconds N] [--port P]
 *
 * --port: listen on P (a backend that comes back on its port), else any.
 *
 * Writes the port it listens on to PATH; on SIGTERM prints
 * {"requests":N,"body_bytes":N} and exits.
 */
#include <errno.h>
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

#define MAXC 64

struct conn {
	int fd;
	char hdr[8192];
	size_t hlen;
	unsigned long long body_left;
	int in_body;
};

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
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port-file"))
			port_file = argv[i + 1];
		else if (!strcmp(argv[i], "--port"))
			port = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--max-seconds"))
			max_s = atol(argv[i + 1]);
	}
	if (!port_file) {
		fprintf(stderr, "usage: bench_otlpsink --port-file PATH [--max-seconds N]\n");
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
					off += take;
					if (k->body_left == 0) {
						k->in_body = 0;
						requests++;
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
	printf("{\"requests\":%llu,\"body_bytes\":%llu}\n", requests, body_bytes);
	return 0;
}
