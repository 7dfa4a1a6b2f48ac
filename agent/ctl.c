/* SPDX-License-Identifier: MIT */
/*
 * The control socket (<socket>.ctl, SOCK_STREAM): one command per line,
 * one line of JSON per answer, several commands per connection.
 *
 *   ping            {"ok":true,"version":...}
 *   stats           agent, producers and exporters counters (object)
 *   rings           the producers (array)
 *   ringfd ID       the ring of producer ID (or "ringfd pid=PID") attached
 *                   (SCM_RIGHTS) to the answer {"ok":true,"id":...,"pid":...,
 *                   "size":...}
 *   help            the commands
 * Errors: {"ok":false,"error":"..."}.
 *
 * Who sees what (SO_PEERCRED of the caller): root sees every producer; any
 * other uid sees, in stats and rings, only the producers of its own uid.
 *
 * ringfd's guarantee, exactly: the fd is a new open file of the memfd made
 * O_RDONLY, so write(2) and a writable shared mapping through it fail and
 * spanring-dump cannot change the ring by mistake. It is not a read-only
 * capability: whoever holds it can open /proc/self/fd/N again read-write
 * (the kernel checks only the memfd inode's mode, 0777, for that). So it
 * is handed only to callers that could open the ring read-write anyway:
 * root, or a caller allowed to open the producer's /proc/PID/fd itself
 * (ctl_could_open: same real, effective and saved uid and gid, process
 * dumpable, as the kernel's ptrace access rule asks).
 *
 * Connections are bounded (ctl_housekeeping): at most CTL_MAX_CONNS, at
 * most CTL_MAX_CONNS_PER_UID of one non-root uid; a command line must
 * arrive whole within CTL_LINE_TIMEOUT, an answer be taken within
 * CTL_SEND_TIMEOUT, and an idle connection is closed after CTL_IDLE_TIMEOUT.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "ctl.h"
#include "fdpass.h"
#include "log.h"
#include "registry.h"
#include "sbuf.h"

#define CTL_MAX_CONNS 64
#define CTL_MAX_CONNS_PER_UID 8
#define CTL_MAX_LINE 4096
#define CTL_LINE_TIMEOUT_NS (5ull * 1000000000ull)
#define CTL_SEND_TIMEOUT_NS (10ull * 1000000000ull)
#define CTL_IDLE_TIMEOUT_NS (30ull * 1000000000ull)

enum ctl_phase { CTL_IDLE, CTL_LINE, CTL_SEND };

struct ctl_conn {
	struct agent *ag;
	struct ctl_conn *next;
	int fd;
	struct loop_watch w;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	enum ctl_phase phase; /* what the connection waits for */
	uint64_t since_ns; /* ... since when */
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

/* Does /proc/PID/fd of p's pid hold p's ring (device and inode)? Proves
 * that the pid is still a process with the ring, not a reused pid. */
static bool ctl_pid_holds_ring(const struct agent_producer *p)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)p->pid);
	DIR *d = opendir(path);
	if (!d)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, 0) == 0)
			found = st.st_dev == p->dev && st.st_ino == p->ino;
	}
	closedir(d);
	return found;
}

/* The three values of the "Uid:" or "Gid:" line of a /proc/PID/status
 * text (real, effective, saved) all equal id? */
static bool ctl_status_ids(const char *status, const char *key, unsigned id)
{
	const char *l = strstr(status, key);
	if (!l)
		return false;
	l += strlen(key);
	for (int i = 0; i < 3; i++) {
		char *end;
		unsigned long v = strtoul(l, &end, 10);
		if (end == l || v != id)
			return false;
		l = end;
	}
	return true;
}

/*
 * Could the caller (uid, gid from SO_PEERCRED) open the producer's ring
 * through /proc/PID/fd itself? The kernel's rule for that (ptrace access,
 * read mode, filesystem ids): the process's real, effective and saved uid
 * are the caller's uid, the same for the gids, and the process is
 * dumpable (else /proc/PID/fd belongs to root). The pid is checked to still
 * hold the ring before and after, so a reused pid does not count.
 */
static bool ctl_could_open(const struct agent_producer *p, uid_t uid, gid_t gid)
{
	if (p->conn_closed || !ctl_pid_holds_ring(p))
		return false;
	char path[64], status[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, status, sizeof(status) - 1);
	close(fd);
	if (n <= 0)
		return false;
	status[n] = 0;
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)p->pid);
	bool ok = ctl_status_ids(status, "\nUid:", (unsigned)uid) &&
		  ctl_status_ids(status, "\nGid:", (unsigned)gid) && stat(path, &st) == 0 &&
		  st.st_uid == uid && st.st_gid == gid;
	return ok && ctl_pid_holds_ring(p);
}

/*
 * Send the answer with the ring's fd attached: a new O_RDONLY open of the
 * memfd (through /proc/self/fd), so that the tool cannot write the ring by
 * mistake. Not a boundary (see the top of the file): only for callers that
 * could write the ring anyway.
 */
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
	if (c->uid != 0 && (c->uid != p->uid || !ctl_could_open(p, c->uid, c->gid))) {
		AGENT_LOG_RL(AGENT_LOG_WARN, "ctl: uid %u (pid %d) denied the ring of producer %llu",
			     (unsigned)c->uid, (int)c->pid, (unsigned long long)p->id);
		ctl_error(c, c->uid != p->uid
				     ? "permission denied: only root or the producer's uid"
				     : "permission denied: the producer's /proc/PID/fd is closed to you "
				       "(not dumpable, other real or saved ids, or it has exited)");
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
	int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
	ssize_t r = msg.oom ? -1 : sr_fd_send(c->fd, msg.p, msg.len, &rfd, 1, flags);
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
	/* Root sees every producer, any other uid its own (SO_PEERCRED). */
	int64_t only = c->uid == 0 ? -1 : (int64_t)c->uid;
	if (strcmp(line, "stats") == 0) {
		stats_json(c->ag, &c->out, only);
		sbuf_putc(&c->out, '\n');
	} else if (strcmp(line, "rings") == 0) {
		stats_rings_json(c->ag, &c->out, only);
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

/* What the connection waits for now; the clock restarts when that changes. */
static void ctl_set_phase(struct ctl_conn *c)
{
	enum ctl_phase ph = c->out.len > c->out_off ? CTL_SEND : c->in_len ? CTL_LINE : CTL_IDLE;
	if (ph != c->phase) {
		c->phase = ph;
		c->since_ns = agent_now_ns();
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
	ctl_set_phase(c);
}

static void ctl_on_accept(struct loop_watch *w, uint32_t events)
{
	struct agent *ag = container_of(w, struct agent, ctl_w);
	(void)events;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(ag->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
			close(fd);
			continue;
		}
		size_t n = 0, same = 0;
		for (struct ctl_conn *c = ag->ctl_conns; c; c = c->next) {
			n++;
			same += c->uid == cred.uid;
		}
		/* One uid cannot take every connection (root is not limited
		 * per uid, only by the total). */
		if (n >= CTL_MAX_CONNS || (cred.uid != 0 && same >= CTL_MAX_CONNS_PER_UID)) {
			AGENT_LOG_RL(AGENT_LOG_WARN,
				     "ctl: refusing a connection of uid %u (pid %d): %zu open, %zu of "
				     "its uid",
				     (unsigned)cred.uid, (int)cred.pid, n, same);
			close(fd);
			continue;
		}
		struct ctl_conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->ag = ag;
		c->fd = fd;
		c->uid = cred.uid;
		c->gid = cred.gid;
		c->pid = cred.pid;
		c->phase = CTL_IDLE;
		c->since_ns = agent_now_ns();
		c->w.fd = fd;
		c->w.fn = ctl_on_event;
		if (loop_add(&ag->loop, &c->w, EPOLLIN)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = ag->ctl_conns;
		ag->ctl_conns = c;
		/* its timeouts: housekeeping runs while connections are open */
		loop_timer_arm_by(&ag->loop, &ag->house_t, agent_now_ns() + 1000000000ull);
	}
}

void ctl_housekeeping(struct agent *ag)
{
	uint64_t now = agent_now_ns();
	struct ctl_conn *next;
	for (struct ctl_conn *c = ag->ctl_conns; c; c = next) {
		next = c->next;
		uint64_t limit = c->phase == CTL_SEND	? CTL_SEND_TIMEOUT_NS
				 : c->phase == CTL_LINE ? CTL_LINE_TIMEOUT_NS
							: CTL_IDLE_TIMEOUT_NS;
		if (now - c->since_ns <= limit)
			continue;
		AGENT_LOG_RL(AGENT_LOG_INFO, "ctl: closing a connection of uid %u (pid %d): %s for %.0fs",
			     (unsigned)c->uid, (int)c->pid,
			     c->phase == CTL_SEND	? "its answer not read"
			     : c->phase == CTL_LINE ? "a command line not finished"
						    : "idle",
			     (double)limit / 1e9);
		ctl_free(c);
	}
}

int ctl_listen(struct agent *ag)
{
	int err = agent_unix_listen(ag->cfg->ctl_path, "control socket", SOCK_STREAM,
				    ag->cfg->ctl_mode, &ag->ctl_fd, ag->err, sizeof(ag->err));
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
