/* SPDX-License-Identifier: MIT */
#include "httpsink.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define MAX_BODY (64u << 20) /* the agent sends at most otlp.max_request_bytes */

struct conn {
	int fd;
	char hdr[8192];
	size_t hlen;
	bool in_body;
	bool close_after; /* an answer that ends the connection */
	size_t body_left;
	uint8_t *body; /* keep_body: the bytes so far */
	size_t blen, bcap;
};

static void answer(struct conn *k, int status)
{
	char out[160];
	const char *reason = status == 200 ? "OK" : status == 413 ? "Payload Too Large" :
			     status == 501 ? "Not Implemented" : "Bad Request";
	int n = snprintf(out, sizeof(out),
			 "HTTP/1.1 %d %s\r\nContent-Type: application/x-protobuf\r\n"
			 "Content-Length: 0\r\n%s\r\n",
			 status, reason, k->close_after ? "Connection: close\r\n" : "");
	/* a short answer to a blocking socket: the client reads its answers */
	ssize_t w = write(k->fd, out, (size_t)n);
	(void)w;
}

static void request_done(const struct httpsink_opts *o, struct conn *k)
{
	k->in_body = false;
	answer(k, o->on_request(o->arg, o->keep_body ? k->body : NULL, k->blen));
	k->blen = 0;
}

/* A header block is complete (k->hdr, NUL-terminated): frame the body.
 * Returns false when the connection is to be closed (after the answer). */
static bool header_done(const struct httpsink_opts *o, struct conn *k)
{
	unsigned long long cl = 0;
	bool chunked = false;
	for (char *l = k->hdr; l && *l;) {
		if (!strncasecmp(l, "content-length:", 15))
			cl = strtoull(l + 15, NULL, 10);
		else if (!strncasecmp(l, "transfer-encoding:", 18))
			chunked = true;
		l = strstr(l, "\r\n");
		l = l ? l + 2 : NULL;
	}
	k->hlen = 0;
	if (!chunked && cl <= MAX_BODY && o->keep_body && cl > k->bcap) {
		uint8_t *nb = realloc(k->body, (size_t)cl);
		if (nb) {
			k->body = nb;
			k->bcap = (size_t)cl;
		}
	}
	if (chunked || cl > MAX_BODY || (o->keep_body && cl > k->bcap)) {
		/* bodies here are framed by Content-Length and bounded */
		k->close_after = true;
		answer(k, chunked ? 501 : 413);
		return false;
	}
	if (strcasestr(k->hdr, "expect: 100-continue")) {
		ssize_t w = write(k->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		(void)w;
	}
	k->body_left = (size_t)cl;
	k->blen = o->keep_body ? 0 : (size_t)cl;
	k->in_body = true;
	if (cl == 0)
		request_done(o, k);
	return true;
}

/* Bytes read from a connection. Returns false when it is to be closed. */
static bool conn_input(const struct httpsink_opts *o, struct conn *k, const char *buf, size_t n)
{
	size_t off = 0;
	while (off < n) {
		if (k->in_body) {
			size_t take = n - off < k->body_left ? n - off : k->body_left;
			if (o->keep_body) {
				memcpy(k->body + k->blen, buf + off, take);
				k->blen += take;
			}
			k->body_left -= take;
			off += take;
			if (k->body_left == 0)
				request_done(o, k);
			continue;
		}
		/* header bytes, up to the blank line */
		char ch = buf[off++];
		if (k->hlen == sizeof(k->hdr) - 1)
			return false; /* a header block this long is not the agent's */
		k->hdr[k->hlen++] = ch;
		if (k->hlen >= 4 && !memcmp(k->hdr + k->hlen - 4, "\r\n\r\n", 4)) {
			k->hdr[k->hlen] = 0;
			if (!header_done(o, k))
				return false;
		}
	}
	return true;
}

static int listen_on(const struct httpsink_opts *o)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (ls < 0)
		return -1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				.sin_port = htons(o->port)};
	socklen_t al = sizeof(a);
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 16) ||
	    getsockname(ls, (struct sockaddr *)&a, &al)) {
		perror("httpsink: listen on 127.0.0.1");
		close(ls);
		return -1;
	}
	FILE *pf = fopen(o->port_file, "w");
	if (!pf || fprintf(pf, "%d\n", ntohs(a.sin_port)) < 0 || fclose(pf)) {
		perror(o->port_file);
		close(ls);
		return -1;
	}
	return ls;
}

bool httpsink_option(struct httpsink_opts *o, const char *name, const char *value)
{
	if (!strcmp(name, "--port-file"))
		o->port_file = value;
	else if (!strcmp(name, "--port"))
		o->port = (uint16_t)atoi(value);
	else if (!strcmp(name, "--max-seconds"))
		o->max_seconds = atol(value);
	else
		return false;
	return true;
}

int httpsink_serve(const struct httpsink_opts *o)
{
	int ls = listen_on(o);
	if (ls < 0)
		return -1;
	static struct conn c[MAX_CONNS];
	static char buf[1 << 20];
	int nc = 0;
	time_t end = time(NULL) + o->max_seconds;
	while (!*o->stop && time(NULL) < end) {
		struct pollfd p[MAX_CONNS + 1];
		p[0] = (struct pollfd){.fd = ls, .events = POLLIN};
		for (int i = 0; i < nc; i++)
			p[i + 1] = (struct pollfd){.fd = c[i].fd, .events = POLLIN};
		int r = poll(p, (nfds_t)nc + 1, 200);
		if (r < 0 && errno != EINTR)
			break;
		for (int i = nc - 1; r > 0 && i >= 0; i--) {
			if (!(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(c[i].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue; /* polled again */
			if (n > 0 && conn_input(o, &c[i], buf, (size_t)n))
				continue;
			close(c[i].fd);
			free(c[i].body);
			c[i] = c[--nc];
		}
		if (r > 0 && (p[0].revents & POLLIN)) {
			int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0 && nc == MAX_CONNS)
				close(fd);
			else if (fd >= 0)
				c[nc++] = (struct conn){.fd = fd};
		}
		if (o->on_wake)
			o->on_wake(o->arg);
	}
	for (int i = 0; i < nc; i++) {
		close(c[i].fd);
		free(c[i].body);
	}
	close(ls);
	return 0;
}
