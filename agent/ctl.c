/* SPDX-License-Identifier: MIT */
/*
 * The control socket (<socket>.ctl, SOCK_STREAM): one command per line,
 * one line of JSON per answer, several commands per connection.
 *
 *   ping            {"ok":true,"version":...}
 *   stats           agent, producers and exporters counters (object)
 *   rings           the producers (array)
 *   ringfd ID       the ring of producer ID (or "ringfd pid=PID"), as a
 *                   read-only fd attached (SCM_RIGHTS) to the answer
 *                   {"ok":true,"id":...,"pid":...,"size":...}; only for
 *                   root or the producer's own uid (SO_PEERCRED)
 *   help            the commands
 * Errors: {"ok":false,"error":"..."}.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "sbuf.h"

#define CTL_MAX_CONNS 64
#define CTL_MAX_LINE 4096

struct ctl_conn {
	struct agent *ag;
	struct ctl_conn *next;
	int fd;
	struct loop_watch w;
	uid_t uid;
	pid_t pid;
	char in[CTL_MAX_LINE];
	size_t in_len;
	struct sbuf out;
	size_t out_off;
};

static void ctl_free(struct ctl_conn *c)
{
	struct agent *ag = c->ag;
	for (struct ctl_conn **pp = &ag->ctl_conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	loop_del(&ag->loop, &c->w);
	close(c->fd);
	sbuf_free(&c->out);
	free(c);
}

static void ctl_error(struct ctl_conn *c, const char *msg)
{
	sbuf_puts(&c->out, "{\"ok\":false,\"error\":");
	sbuf_json_str(&c->out, msg, strlen(msg));
	sbuf_puts(&c->out, "}\n");
}

/* Send the answer with the ring's fd attached; the fd handed out is a
 * read-only reopen of the memfd, so the tool cannot write the ring. */
static void ctl_ringfd(struct ctl_conn *c, const char *arg)
{
	struct agent *ag = c->ag;
	char *end;
	bool by_pid = strncmp(arg, "pid=", 4) == 0;
	errno = 0;
	unsigned long long v = strtoull(by_pid ? arg + 4 : arg, &end, 10);
	if (errno || end == arg || *end) {
		ctl_error(c, "usage: ringfd ID | ringfd pid=PID");
		return;
	}
	struct agent_producer *p;
	for (p = ag->producers; p; p = p->next) {
		if (p->state == PROD_PENDING || p->zombie || !p->mapped)
			continue;
		if (by_pid ? (unsigned long long)p->pid == v : p->id == v)
			break;
	}
	if (!p) {
		ctl_error(c, "no such producer");
		return;
	}
	if (c->uid != 0 && c->uid != p->uid) {
		AGENT_LOG_RL(AGENT_LOG_WARN, "ctl: uid %u (pid %d) denied the ring of producer %llu",
			     (unsigned)c->uid, (int)c->pid, (unsigned long long)p->id);
		ctl_error(c, "permission denied: only root or the producer's uid");
		return;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p->map.fd);
	int rfd = open(path, O_RDONLY | O_CLOEXEC);
	if (rfd < 0) {
		ctl_error(c, "cannot reopen the ring read-only");
		return;
	}
	struct sbuf msg = {0};
	sbuf_printf(&msg, "{\"ok\":true,\"id\":%llu,\"pid\":%d,\"size\":%llu}\n",
		    (unsigned long long)p->id, (int)p->pid, (unsigned long long)p->map.l.total_size);
	struct iovec iov = {.iov_base = msg.p, .iov_len = msg.len};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf)};
	struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &rfd, sizeof(int));
	ssize_t r = msg.oom ? -1 : sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(rfd);
	if (r < 0) {
		sbuf_free(&msg);
		ctl_error(c, "send failed");
		return;
	}
	/* Whatever the kernel did not take goes out as plain bytes. */
	if ((size_t)r < msg.len)
		sbuf_put(&c->out, msg.p + r, msg.len - (size_t)r);
	sbuf_free(&msg);
}

static void ctl_command(struct ctl_conn *c, char *line)
{
	while (*line == ' ' || *line == '\t')
		line++;
	size_t n = strlen(line);
	while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
		line[--n] = 0;
	if (!n)
		return;
	if (strcmp(line, "stats") == 0) {
		stats_json(c->ag, &c->out);
		sbuf_putc(&c->out, '\n');
	} else if (strcmp(line, "rings") == 0) {
		stats_rings_json(c->ag, &c->out);
		sbuf_putc(&c->out, '\n');
	} else if (strcmp(line, "ping") == 0) {
		sbuf_printf(&c->out, "{\"ok\":true,\"version\":\"%s\",\"pid\":%d}\n", AGENT_VERSION,
			    (int)getpid());
	} else if (strncmp(line, "ringfd ", 7) == 0) {
		ctl_ringfd(c, line + 7);
	} else if (strcmp(line, "help") == 0) {
		sbuf_puts(&c->out, "{\"ok\":true,\"commands\":[\"ping\",\"stats\",\"rings\","
				   "\"ringfd ID\",\"ringfd pid=PID\",\"help\"]}\n");
	} else {
		ctl_error(c, "unknown command (try help)");
	}
}

static void ctl_on_event(struct loop_watch *w, uint32_t events)
{
	struct ctl_conn *c = container_of(w, struct ctl_conn, w);
	if (events & EPOLLERR) {
		ctl_free(c);
		return;
	}
	if (c->out.len > c->out_off) {
		ssize_t r = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			ctl_free(c);
			return;
		}
		if (r > 0)
			c->out_off += (size_t)r;
		if (c->out_off < c->out.len)
			return;
	}
	sbuf_reset(&c->out);
	c->out_off = 0;
	if (events & (EPOLLIN | EPOLLHUP)) {
		ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			ctl_free(c);
			return;
		}
		if (r > 0)
			c->in_len += (size_t)r;
	}
	/* Answer complete lines, in order. */
	char *nl;
	while ((nl = memchr(c->in, '\n', c->in_len))) {
		*nl = 0;
		ctl_command(c, c->in);
		size_t used = (size_t)(nl - c->in) + 1;
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
	}
	if (c->in_len == sizeof(c->in)) {
		ctl_error(c, "line too long");
		c->in_len = 0;
	}
	if (c->out.oom) {
		ctl_free(c);
		return;
	}
	if (c->out.len) {
		ssize_t r = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			ctl_free(c);
			return;
		}
		c->out_off = r > 0 ? (size_t)r : 0;
		if (c->out_off == c->out.len) {
			sbuf_reset(&c->out);
			c->out_off = 0;
		}
	}
	loop_mod(&c->ag->loop, &c->w, c->out.len ? EPOLLOUT : EPOLLIN);
}

static void ctl_on_accept(struct loop_watch *w, uint32_t events)
{
	struct agent *ag = container_of(w, struct agent, ctl_w);
	(void)events;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(ag->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		size_t n = 0;
		for (struct ctl_conn *c = ag->ctl_conns; c; c = c->next)
			n++;
		struct ucred cred;
		socklen_t len = sizeof(cred);
		struct ctl_conn *c = NULL;
		if (n < CTL_MAX_CONNS &&
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred))
			c = calloc(1, sizeof(*c));
		if (!c) {
			AGENT_LOG_RL(AGENT_LOG_WARN, "ctl: refusing a connection (%zu open)", n);
			close(fd);
			continue;
		}
		c->ag = ag;
		c->fd = fd;
		c->uid = cred.uid;
		c->pid = cred.pid;
		c->w.fd = fd;
		c->w.fn = ctl_on_event;
		if (loop_add(&ag->loop, &c->w, EPOLLIN)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = ag->ctl_conns;
		ag->ctl_conns = c;
	}
}

int ctl_listen(struct agent *ag)
{
	int err = agent_unix_listen(ag->cfg->ctl_path, SOCK_STREAM, ag->cfg->ctl_mode, &ag->ctl_fd);
	if (err)
		return err;
	ag->ctl_w.fd = ag->ctl_fd;
	ag->ctl_w.fn = ctl_on_accept;
	err = loop_add(&ag->loop, &ag->ctl_w, EPOLLIN);
	if (err) {
		ctl_close(ag);
		return err;
	}
	log_info("ctl: control socket %s", ag->cfg->ctl_path);
	return 0;
}

void ctl_close(struct agent *ag)
{
	while (ag->ctl_conns)
		ctl_free(ag->ctl_conns);
	if (ag->ctl_fd >= 0) {
		loop_del(&ag->loop, &ag->ctl_w);
		close(ag->ctl_fd);
		ag->ctl_fd = -1;
		unlink(ag->cfg->ctl_path);
	}
}
