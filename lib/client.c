/* SPDX-License-Identifier: MIT */
/*
 * Producer-side registration with the agent (see client.h).
 *
 * A background thread ("spanring", every signal blocked) owns the
 * connection: connect, send the request with the memfd (SCM_RIGHTS),
 * receive the reply and the doorbell eventfd, then wait for the connection
 * to end and register again (with SPANRING_REG_F_RECONNECT). With no agent
 * it retries with exponential backoff and jitter (100 ms doubling to 5 s);
 * a rejected ring is retried every 30 s in case the agent's policy changes.
 * Nothing here blocks the program: sr_client_start() only starts the thread.
 *
 * The doorbell fd and the hot path. The hot path loads sr_doorbell_fd and
 * writes to it without any lock, so the number it loaded must never be
 * closed and reused for another file while the process may still use it.
 * The first doorbell received keeps its fd number for the life of the
 * process (per fork); a later one replaces the file behind that number
 * atomically with dup3(). When the connection ends sr_doorbell_fd becomes
 * -1, but the number stays open (on the old eventfd, which nobody reads):
 * a write that raced with the disconnect lands there, harmlessly.
 *
 * Fork. Our pthread_atfork prepare handler takes a small lock (fdmu) held
 * only while the thread creates or closes its connection socket, so a fork
 * never catches a socket that exists but is not recorded in cl.sock: the
 * child would keep the parent's connection open, and the agent would not
 * see the parent's end. sr_client_atfork_child() (called by the producer
 * core's child handler) then closes exactly the inherited fds, without
 * sending anything, so the parent's registration in the agent is
 * untouched. fdmu is never held while another lock is taken, so it cannot
 * invert with the producer core's own fork lock.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "fdpass.h"
#include "sockpath.h"

int sr_doorbell_fd = -1;

#define CL_BACKOFF_MIN_MS 100
#define CL_BACKOFF_MAX_MS 5000
#define CL_REJECT_RETRY_MS 30000
#define CL_REPLY_TIMEOUT_MS 5000
#define CL_JOIN_TIMEOUT_MS 2000

enum cl_state {
	CL_IDLE = 0,     /* no attempt finished yet */
	CL_REGISTERED,   /* the agent has the ring */
	CL_NOAGENT,      /* last attempt: no agent (or it did not answer) */
	CL_REJECTED,     /* last attempt: the agent refused the ring */
};

static struct {
	pthread_mutex_t mu;
	pthread_mutex_t fdmu; /* creating/closing sock (see fork, above) */
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	struct sr_map *m;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* where to look first */
	bool path_ok;
	char alt_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* then: the per-user path */
	bool alt_ok;
	bool alt_follow;     /* alt_path's directory may be a symbolic link ($XDG_RUNTIME_DIR) */
	bool secure;         /* AT_SECURE: root's agent only, nothing from the environment */
	bool debug;          /* SPANRING_DEBUG */
	bool agent_uid_set;  /* SPANRING_AGENT_UID: one more uid trusted with the ring */
	uid_t agent_uid;
	int logged_peer;     /* debug lines said once (atomic) */
	int logged_dir;
	bool started;
	bool stop;
	bool kick;           /* retry now (sr_client_flush) ... */
	uint64_t kick_for;   /* ... unless attempt number kick_for has finished */
	bool thread_alive;
	pthread_t thr;
	int wake_fd;         /* eventfd: stop / kick the thread */
	int sock;            /* the connection, owned by the thread */
	int bell_fd;         /* the doorbell's stable fd number, or -1 */
	int state;
	uint64_t attempts;   /* finished registration attempts */
	bool ever_registered;
	int last_status;     /* last rejection reason */
	bool logged_reject;
	bool cv_ready;
	bool defer;          /* sr_client_defer(): no thread until needed */
	int prepared;        /* (atomic) deferred: m and path are set, no thread yet */
	int mode;            /* enum cl_mode (atomic): who registers a deferred ring */
	int final_sock;      /* the connection of a final registration */
	int quiet;           /* (atomic) the thread is in its loop: allocates nothing */
	bool restricted;     /* a restricted fork child: no thread (see below) */
	bool agent_busy;     /* the last attempt: an agent that said "not yet" */
} cl = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.fdmu = PTHREAD_MUTEX_INITIALIZER,
	.wake_fd = -1,
	.sock = -1,
	.bell_fd = -1,
	.final_sock = -1,
};

/* A deferred ring is registered by exactly one of: the thread (started at
 * the first span of any thread) or one final registration (at exit, exec
 * or a fatal signal). cl.mode decides, by compare-and-swap. */
enum cl_mode {
	CL_M_DEFERRED = 0, /* nobody yet */
	CL_M_THREAD,       /* the background thread owns it */
	CL_M_FINAL_BUSY,   /* a final registration is under way */
	CL_M_FINAL_SENT,   /* the agent has been sent the ring */
	CL_M_FINAL_FAILED, /* no agent could be reached */
};

static pthread_once_t cl_once = PTHREAD_ONCE_INIT;

/* ---- the agent's socket: where to look, whom to hand the ring --------------------- */

/*
 * Lookup (docs/ABI.md 13.1). In secure-execution mode (AT_SECURE: a
 * set-user-ID program) nothing of the environment is read and only the
 * system socket, served by root, is used. Otherwise $SPANRING_SOCKET when
 * it is set (an absolute path that fits a unix address; an unusable value
 * is reported with SPANRING_DEBUG=1 and ignored), else the system agent's
 * /run/spanring/agent.sock, then (uid other than 0) the per-user path:
 * $XDG_RUNTIME_DIR/spanring.sock, else /tmp/spanring-<uid>/agent.sock. The
 * per-user path is used only while its directory is the user's own
 * (a directory owned by the effective uid, no permission for group or
 * others; /tmp/spanring-<uid> must not be a symbolic link), so another
 * uid cannot take it first. Whatever the path, the
 * ring goes only to a peer (SO_PEERCRED) that is root, the process's
 * effective uid, or $SPANRING_AGENT_UID.
 */
static bool cl_secure(void)
{
	return getauxval(AT_SECURE) != 0;
}

static bool cl_debug_on(void)
{
	const char *d = secure_getenv("SPANRING_DEBUG");
	return d && *d && strcmp(d, "0") != 0;
}

/* A debug line built without allocation or stdio (async-signal-safe). */
struct cl_msg {
	char b[512];
	size_t n;
};

static void cl_msg_add(struct cl_msg *m, const char *str)
{
	while (*str && m->n < sizeof(m->b) - 1)
		m->b[m->n++] = *str++;
}

static void cl_msg_num(struct cl_msg *m, unsigned v)
{
	char t[12];
	int k = 0;
	do
		t[k++] = (char)('0' + v % 10);
	while ((v /= 10) && k < 12);
	while (k && m->n < sizeof(m->b) - 1)
		m->b[m->n++] = t[--k];
}

static void cl_msg_put(struct cl_msg *m)
{
	m->b[m->n++] = '\n';
	ssize_t w = write(STDERR_FILENO, m->b, m->n);
	(void)w;
}

/*
 * The peer check, right after connect() on every path that sends the
 * ring: the memfd (read-write; the agent writes the consumer lines in
 * it) goes only to root, to our effective uid, or to $SPANRING_AGENT_UID
 * (not in secure-execution mode: root only). Async-signal-safe.
 */
static bool cl_peer_ok(int s, const char *path)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 || len != sizeof(uc))
		return false;
	if (uc.uid == 0 ||
	    (!cl.secure && (uc.uid == geteuid() || (cl.agent_uid_set && uc.uid == cl.agent_uid))))
		return true;
	if (cl.debug && !sr_xchg_int(&cl.logged_peer, 1)) {
		struct cl_msg m = {.n = 0};
		cl_msg_add(&m, "spanring: not handing the ring to ");
		cl_msg_add(&m, path);
		cl_msg_add(&m, ": it is served by uid ");
		cl_msg_num(&m, (unsigned)uc.uid);
		cl_msg_add(&m, ", not by root or uid ");
		cl_msg_num(&m, (unsigned)geteuid());
		cl_msg_add(&m, " (SPANRING_AGENT_UID names the agent's uid if it runs as another user)");
		cl_msg_put(&m);
	}
	return false;
}

/* Sleep ms milliseconds with nanosleep (async-signal-safe). */
static void cl_nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Place number i to look for the agent (0: cl.path, 1: cl.alt_path), or NULL. */
static const char *cl_place(int i)
{
	if (i == 0)
		return cl.path_ok ? cl.path : NULL;
	return cl.alt_ok ? cl.alt_path : NULL;
}

/*
 * Connect s to place i and check who serves it. A full backlog (EAGAIN)
 * is retried for up to eagain_ms. True when s is connected to an agent we
 * may hand the ring to. Async-signal-safe.
 */
static bool cl_connect_place(int s, int i, int eagain_ms)
{
	const char *p = cl_place(i);
	if (!p)
		return false;
	if (i == 1 && !sr_sockpath_dir_private(p, cl.alt_follow)) {
		struct stat st;
		if (cl.debug && stat(p, &st) == 0 &&
		    !sr_xchg_int(&cl.logged_dir, 1)) {
			struct cl_msg m = {.n = 0};
			cl_msg_add(&m, "spanring: not using ");
			cl_msg_add(&m, p);
			cl_msg_add(&m, ": its directory is not private to uid ");
			cl_msg_num(&m, (unsigned)geteuid());
			cl_msg_add(&m, " (owned by it, mode 0700)");
			cl_msg_put(&m);
		}
		return false;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, p, sizeof(sa.sun_path));
	for (int waited = 0;; waited += 2) {
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if ((errno != EAGAIN && errno != EINTR) || waited >= eagain_ms)
			return false;
		cl_nap_ms(2);
	}
	return cl_peer_ok(s, p);
}

/* Where to look, read once in the caller's thread (see cl_start). */
static void cl_resolve(void)
{
	cl.secure = cl_secure();
	cl.debug = cl_debug_on();
	cl.path_ok = cl.alt_ok = cl.agent_uid_set = false;
	if (!cl.secure) {
		const char *v = secure_getenv("SPANRING_AGENT_UID");
		if (v && *v) {
			char *end;
			errno = 0;
			unsigned long u = strtoul(v, &end, 10);
			if (*v >= '0' && *v <= '9' && !*end && !errno && u < (uid_t)-1) {
				cl.agent_uid = (uid_t)u;
				cl.agent_uid_set = true;
			} else if (cl.debug) {
				fprintf(stderr, "spanring: ignoring invalid SPANRING_AGENT_UID=\"%s\" (a "
						"numeric uid)\n", v);
			}
		}
		const char *env = secure_getenv("SPANRING_SOCKET");
		if (env && *env) {
			const char *why = sr_sockpath_env_bad(env);
			if (!why) {
				snprintf(cl.path, sizeof(cl.path), "%s", env);
				cl.path_ok = true;
				return;
			}
			if (cl.debug)
				fprintf(stderr, "spanring: ignoring invalid SPANRING_SOCKET=\"%s\": %s; "
						"looking for the agent at the default places\n", env, why);
		}
	}
	snprintf(cl.path, sizeof(cl.path), "%s", SR_SYSTEM_SOCKET);
	cl.path_ok = true;
	if (!cl.secure && geteuid() != 0) {
		bool tmp_dir;
		cl.alt_ok = sr_sockpath_user(cl.alt_path, sizeof(cl.alt_path), &tmp_dir);
		cl.alt_follow = !tmp_dir;
	}
}

static void cl_atfork_prepare(void)
{
	pthread_mutex_lock(&cl.fdmu);
}

static void cl_atfork_parent(void)
{
	pthread_mutex_unlock(&cl.fdmu);
}

static void cl_atfork_child(void)
{
	/* Taken by cl_atfork_prepare in this very thread. The producer core's
	 * child handler, registered earlier, has already run
	 * sr_client_atfork_child() (child handlers run in registration
	 * order), which does not touch fdmu. */
	pthread_mutex_unlock(&cl.fdmu);
}

static void cl_init_cv(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&cl.cv, &a);
	pthread_condattr_destroy(&a);
}

static void cl_once_init(void)
{
	cl_init_cv();
	cl.cv_ready = true;
	pthread_atfork(cl_atfork_prepare, cl_atfork_parent, cl_atfork_child);
}

static uint64_t cl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Random factor in [0.5, 1.0) for the backoff, so that many producers do
 * not reconnect in lockstep after an agent restart. */
static unsigned cl_jitter(unsigned ms)
{
	static __thread uint64_t x;
	if (!x)
		x = ((uint64_t)getpid() << 32) ^ cl_now_ms() ^ (uint64_t)(uintptr_t)&x;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return ms / 2 + (unsigned)(x % (ms / 2 + 1));
}

/*
 * Sleep up to ms, or until stopped or kicked. Returns true to go on,
 * false to stop.
 */
static bool cl_sleep(unsigned ms)
{
	uint64_t end = cl_now_ms() + ms;
	for (;;) {
		pthread_mutex_lock(&cl.mu);
		/* A kick asks for one more attempt than had finished when a flush
		 * started; if an attempt under way then has satisfied it, it is stale. */
		bool stop = cl.stop, kick = cl.kick && cl.attempts < cl.kick_for;
		cl.kick = false;
		pthread_mutex_unlock(&cl.mu);
		if (stop)
			return false;
		if (kick)
			return true;
		uint64_t now = cl_now_ms();
		if (now >= end)
			return true;
		struct pollfd pf = {.fd = cl.wake_fd, .events = POLLIN};
		int r = poll(&pf, 1, (int)(end - now));
		if (r > 0) {
			uint64_t v;
			ssize_t n = read(cl.wake_fd, &v, sizeof(v));
			(void)n;
		}
	}
}

static void cl_set_state(int state)
{
	pthread_mutex_lock(&cl.mu);
	cl.state = state;
	if (state != CL_REGISTERED)
		sr_store_int(&sr_doorbell_fd, -1); /* release: see client.h */
	cl.attempts++;
	pthread_cond_broadcast(&cl.cv);
	pthread_mutex_unlock(&cl.mu);
}

/* Close the connection; under the lock so that a fork sees it either open
 * and recorded, or closed. */
static void cl_close_sock(void)
{
	pthread_mutex_lock(&cl.fdmu);
	if (cl.sock >= 0)
		close(cl.sock);
	cl.sock = -1;
	pthread_mutex_unlock(&cl.fdmu);
}

/* Is fd an eventfd? (A reply could carry any fd; the hot path writes it.) */
static bool cl_is_eventfd(int fd)
{
	char path[64], link[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return errno == ENOENT; /* no /proc: trust the agent */
	link[n] = 0;
	return strcmp(link, "anon_inode:[eventfd]") == 0;
}

/* Make efd the doorbell, at the stable fd number. */
static void cl_install_doorbell(int efd)
{
	/* A doorbell write must never block the hot path. */
	int fl = fcntl(efd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		(void)fcntl(efd, F_SETFL, fl | O_NONBLOCK);
	pthread_mutex_lock(&cl.mu);
	if (cl.bell_fd < 0) {
		cl.bell_fd = efd;
	} else if (efd != cl.bell_fd) {
		/* Atomic swap of the file behind the number the hot path uses. */
		if (dup3(efd, cl.bell_fd, O_CLOEXEC) < 0) {
			close(efd);
			pthread_mutex_unlock(&cl.mu);
			return;
		}
		close(efd);
	}
	/* Release: pairs with the loads in sr_doorbell_check() and
	 * sr_wake_agent() (producer.c) and in the shim (pl_proc.c). */
	sr_store_int(&sr_doorbell_fd, cl.bell_fd);
	/* Ring once (ABI 1.2): a commit that found need_wakeup set before
	 * the doorbell was installed cleared it and rang nothing. Its head
	 * store precedes its exchange (a full barrier), ours precedes this
	 * fence: either it saw the doorbell and rang, or the agent, woken
	 * by this write, sees its head. */
	sr_fence_full();
	uint64_t one = 1;
	ssize_t wr = write(cl.bell_fd, &one, sizeof(one));
	(void)wr;
	pthread_mutex_unlock(&cl.mu);
}

enum { ATT_OK, ATT_NOAGENT, ATT_REJECTED, ATT_STOP };

/* Wait for the socket to become readable; false on timeout or stop. */
static bool cl_wait_readable(int s, int timeout_ms)
{
	uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		struct pollfd pf[2] = {{.fd = s, .events = POLLIN}, {.fd = cl.wake_fd, .events = POLLIN}};
		uint64_t now = cl_now_ms();
		if (now >= end)
			return false;
		int r = poll(pf, 2, (int)(end - now));
		if (r < 0 && errno != EINTR)
			return false;
		if (pf[1].revents & POLLIN) {
			uint64_t v;
			ssize_t n = read(cl.wake_fd, &v, sizeof(v));
			(void)n;
			pthread_mutex_lock(&cl.mu);
			bool stop = cl.stop;
			pthread_mutex_unlock(&cl.mu);
			if (stop)
				return false;
		}
		if (pf[0].revents)
			return true;
	}
}

/* Send the registration request for ring m, its memfd attached, on s.
 * Only on a socket that cl_connect_place() connected (or, for any other
 * connect(), that passed cl_peer_ok()): the ring goes to no other uid.
 * Async-signal-safe (sr_client_register_final() uses it). */
static bool cl_send_req(int s, const struct sr_map *m, uint32_t flags)
{
	/* (ABI 1.3) Register the process for MEMBARRIER_CMD_GLOBAL_EXPEDITED
	 * and say so: a sleeping agent's membarrier then takes microseconds
	 * (docs/ABI.md 10.1). Once per process in effect (the kernel keeps
	 * it; a repeat returns at once), again in a fork child, whose memory
	 * is new. An ending producer is polled and needs no wake-up. */
	if (!(flags & SPANRING_REG_F_NOREPLY)) {
		int saved = errno;
		if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0)
			flags |= SPANRING_REG_F_MB_EXPEDITED;
		errno = saved;
	}
	struct spanring_reg_req req;
	memset(&req, 0, sizeof(req));
	req.magic = SPANRING_REG_MAGIC;
	req.abi_major = SPANRING_ABI_MAJOR;
	req.abi_minor = SPANRING_ABI_MINOR;
	req.flags = flags;
	req.ring_size = m->l.total_size;
	ssize_t n = sr_fd_send(s, &req, sizeof(req), &m->fd, 1, MSG_NOSIGNAL);
	return n == (ssize_t)sizeof(req);
}

/* Connect to the first place with an agent; the socket is cl.sock (-1 if
 * none answered). *where: the place connected to. */
static int cl_connect_agent(const char **where)
{
	int s = -1;
	for (int i = 0; i < 2 && s < 0; i++) {
		if (!cl_place(i))
			continue;
		pthread_mutex_lock(&cl.fdmu);
		s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		cl.sock = s;
		pthread_mutex_unlock(&cl.fdmu);
		if (s < 0)
			return -1;
		if (cl_connect_place(s, i, 0)) {
			*where = cl_place(i);
		} else {
			cl_close_sock();
			s = -1;
		}
	}
	return s;
}

/* The agent's answer and the descriptors that came with it (at most 4,
 * close-on-exec). False if it is not a whole answer. */
static bool cl_recv_reply(int s, struct spanring_reg_resp *resp, struct sr_fd_msg *rm)
{
	/* A fork between here and the install leaves the child a copy of the
	 * new eventfd: close-on-exec and harmless (nobody waits on it). */
	ssize_t n = sr_fd_recv(s, resp, sizeof(*resp), 4, MSG_DONTWAIT, rm);
	return n == (ssize_t)sizeof(*resp) && !(rm->flags & MSG_CTRUNC);
}

/* What the agent's answer means (ATT_*). Takes the doorbell: rm->nfds is then 0. */
static int cl_reply_result(struct spanring_reg_resp *resp, const char *where, struct sr_fd_msg *rm)
{
	if (resp->magic != SPANRING_REG_MAGIC)
		return ATT_NOAGENT; /* not an agent we understand */
	if (resp->status == SPANRING_REG_EPROTO) {
		/* Also "ring already registered": the agent has not yet finished
		 * with our previous connection. Transient: the short backoff
		 * (and sr_client_flush() asks again until its deadline). */
		pthread_mutex_lock(&cl.mu);
		cl.agent_busy = true;
		pthread_mutex_unlock(&cl.mu);
		return ATT_NOAGENT;
	}
	if (resp->status != SPANRING_REG_OK) {
		resp->message[sizeof(resp->message) - 1] = 0;
		pthread_mutex_lock(&cl.mu);
		bool log = !cl.logged_reject || cl.last_status != resp->status;
		cl.logged_reject = true;
		cl.last_status = resp->status;
		pthread_mutex_unlock(&cl.mu);
		if (log && getenv("SPANRING_DEBUG"))
			fprintf(stderr, "spanring: the agent at %s rejected the ring: %s (reason %d)\n",
				where, resp->message, resp->status);
		return ATT_REJECTED;
	}
	if (rm->nfds == 1 && cl_is_eventfd(rm->fds[0])) {
		cl_install_doorbell(rm->fds[0]);
		rm->nfds = 0;
		return ATT_OK;
	}
	/* None: registered without a doorbell (the agent could not make one):
	 * it polls the ring; the hot path finds no doorbell to ring. */
	return rm->nfds == 0 ? ATT_OK : ATT_NOAGENT;
}

/* One registration attempt. On ATT_OK the connection stays in cl.sock. */
static int cl_attempt(void)
{
	const char *where = NULL;
	int s = cl_connect_agent(&where);
	if (s < 0)
		return ATT_NOAGENT;

	if (!cl_send_req(s, cl.m, cl.ever_registered ? SPANRING_REG_F_RECONNECT : 0)) {
		cl_close_sock();
		return ATT_NOAGENT;
	}

	if (!cl_wait_readable(s, CL_REPLY_TIMEOUT_MS)) {
		cl_close_sock();
		pthread_mutex_lock(&cl.mu);
		bool stop = cl.stop;
		pthread_mutex_unlock(&cl.mu);
		return stop ? ATT_STOP : ATT_NOAGENT;
	}
	struct spanring_reg_resp resp;
	struct sr_fd_msg rm;
	int result = ATT_NOAGENT;
	if (cl_recv_reply(s, &resp, &rm))
		result = cl_reply_result(&resp, where, &rm);
	for (size_t j = 0; j < rm.nfds; j++)
		close(rm.fds[j]);
	if (result != ATT_OK)
		cl_close_sock();
	return result;
}

/* Registered: wait until the agent's end of the connection goes away. */
static bool cl_wait_disconnect(void)
{
	int s = cl.sock;
	for (;;) {
		struct pollfd pf[2] = {{.fd = s, .events = POLLIN | POLLRDHUP},
				       {.fd = cl.wake_fd, .events = POLLIN}};
		int r = poll(pf, 2, -1);
		if (r < 0 && errno != EINTR)
			return true;
		if (pf[1].revents & POLLIN) {
			uint64_t v;
			ssize_t n = read(cl.wake_fd, &v, sizeof(v));
			(void)n;
			pthread_mutex_lock(&cl.mu);
			bool stop = cl.stop;
			cl.kick = false;
			pthread_mutex_unlock(&cl.mu);
			if (stop)
				return false;
		}
		if (pf[0].revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL))
			return true;
		if (pf[0].revents & POLLIN) {
			char buf[64];
			ssize_t n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				return true;
		}
	}
}

static void *cl_main(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "spanring");
	/* From here to the end of the loop this thread calls no allocator
	 * (nor anything that takes a lock other than ours): a fork then
	 * need not count it (producer.c, "Fork"). */
	/* Release: pairs with the load in sr_client_thread_quiet(). */
	sr_store_int(&cl.quiet, 1);
	unsigned backoff = CL_BACKOFF_MIN_MS;
	for (;;) {
		pthread_mutex_lock(&cl.mu);
		bool stop = cl.stop;
		cl.kick = false;
		pthread_mutex_unlock(&cl.mu);
		if (stop || (!cl.path_ok && !cl.alt_ok))
			break;
		int r = cl_attempt();
		if (r == ATT_STOP)
			break;
		if (r == ATT_OK) {
			pthread_mutex_lock(&cl.mu);
			cl.ever_registered = true;
			cl.logged_reject = false;
			pthread_mutex_unlock(&cl.mu);
			cl_set_state(CL_REGISTERED);
			backoff = CL_BACKOFF_MIN_MS;
			bool go_on = cl_wait_disconnect();
			cl_close_sock();
			pthread_mutex_lock(&cl.mu);
			cl.state = CL_NOAGENT;
			sr_store_int(&sr_doorbell_fd, -1); /* release: see client.h */
			pthread_mutex_unlock(&cl.mu);
			if (!go_on)
				break;
			/* The agent went away (restart): try again at once, then
			 * back off. */
			continue;
		}
		if (r == ATT_REJECTED) {
			cl_set_state(CL_REJECTED);
			if (!cl_sleep(CL_REJECT_RETRY_MS))
				break;
			continue;
		}
		cl_set_state(CL_NOAGENT);
		if (!cl_sleep(cl_jitter(backoff)))
			break;
		backoff = backoff * 2 > CL_BACKOFF_MAX_MS ? CL_BACKOFF_MAX_MS : backoff * 2;
	}
	sr_store_int(&cl.quiet, 0); /* release, as above */
	cl_close_sock();
	pthread_mutex_lock(&cl.mu);
	if (cl.state == CL_REGISTERED)
		cl.state = CL_NOAGENT;
	sr_store_int(&sr_doorbell_fd, -1);
	cl.thread_alive = false;
	pthread_cond_broadcast(&cl.cv);
	pthread_mutex_unlock(&cl.mu);
	return NULL;
}

static void cl_start(struct sr_map *m, bool now);

void sr_client_start(struct sr_map *m)
{
	cl_start(m, false);
}

void sr_client_restart(struct sr_map *m)
{
	cl_start(m, true);
}

static void cl_start_inline(struct sr_map *m);
static void cl_register_inline(void);

static void cl_start(struct sr_map *m, bool now)
{
	if (cl.restricted) {
		cl_start_inline(m);
		return;
	}
	pthread_once(&cl_once, cl_once_init);
	pthread_mutex_lock(&cl.mu);
	if (cl.started || !m || m->fd < 0) {
		pthread_mutex_unlock(&cl.mu);
		return;
	}
	/* The path is read here, in the caller's thread: getenv() in our
	 * thread could race with the program's setenv(). */
	cl_resolve();
	cl.m = m;
	cl.stop = false;
	cl.kick = false;
	cl.state = CL_IDLE;
	cl.attempts = 0;
	if (cl.defer && !now) {
		/* Registered later: by the thread at the first span, or by
		 * sr_client_register_final() if the process ends first.
		 * Release: pairs with the load of prepared in
		 * sr_client_deferred() and sr_client_register_final(). */
		sr_store_int(&cl.prepared, 1);
		pthread_mutex_unlock(&cl.mu);
		return;
	}
	if (cl.wake_fd < 0)
		cl.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (cl.wake_fd < 0) {
		pthread_mutex_unlock(&cl.mu);
		return;
	}
	sigset_t all, old;
	sigfillset(&all);
	/* The thread inherits this mask: signals are for the program's threads. */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&cl.thr, NULL, cl_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err == 0) {
		cl.started = true;
		cl.thread_alive = true;
	}
	pthread_mutex_unlock(&cl.mu);
}

/* Acquire: pairs with the store of the final mode at the end of
 * sr_client_register_final() (the registration's outcome is visible). */
static int cl_mode_get(void)
{
	return sr_load_int(&cl.mode);
}

void sr_client_defer(void)
{
	pthread_mutex_lock(&cl.mu);
	cl.defer = true;
	pthread_mutex_unlock(&cl.mu);
}

bool sr_client_deferred(void)
{
	/* Acquire: pairs with the stores of prepared in cl_start() and
	 * cl_start_inline() (cl.m is set). */
	return sr_load_int(&cl.prepared) && cl_mode_get() == CL_M_DEFERRED;
}

__thread int sr_client_hold __attribute__((tls_model("initial-exec")));

void sr_client_start_deferred(void)
{
	if (cl.restricted) {
		/* No thread here: register now, from this thread. */
		if (!sr_client_hold && sr_client_deferred())
			cl_register_inline();
		return;
	}
	/* The mode's compare-and-swap decides between this thread and a final
	 * registration (sr_client_register_final()). */
	if (sr_client_hold || !sr_client_deferred() ||
	    !sr_cas_int(&cl.mode, CL_M_DEFERRED, CL_M_THREAD))
		return;
	pthread_mutex_lock(&cl.mu);
	struct sr_map *m = cl.m;
	/* Release: pairs with the loads of prepared, as in cl_start(). */
	sr_store_int(&cl.prepared, 0);
	pthread_mutex_unlock(&cl.mu);
	cl_start(m, true);
}

int sr_client_register_final(int timeout_ms)
{
	int want;
	/* Acquire: pairs with the stores of prepared in cl_start() and
	 * cl_start_inline(). */
	if (!sr_load_int(&cl.prepared) && cl_mode_get() == CL_M_DEFERRED)
		return -EALREADY; /* not deferred: the thread's business */
	if (!sr_cas_int_value(&cl.mode, CL_M_DEFERRED, CL_M_FINAL_BUSY, &want))
		return want == CL_M_FINAL_SENT	  ? 0
		       : want == CL_M_FINAL_FAILED ? -ENOTCONN
		       : want == CL_M_FINAL_BUSY   ? -EINPROGRESS
						   : -EALREADY;
	int saved = errno, result = -ENOTCONN;
	int s = -1;
	if (!cl.m || cl.m->fd < 0)
		goto out;
	/* EAGAIN: the agent's backlog is full; it is alive, so wait a little. */
	for (int i = 0; i < 2 && s < 0; i++) {
		if (!cl_place(i))
			continue;
		s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (s < 0)
			goto out;
		if (!cl_connect_place(s, i, timeout_ms)) {
			close(s);
			s = -1;
		}
	}
	if (s < 0)
		goto out;
	if (!cl_send_req(s, cl.m,
			 SPANRING_REG_F_NOREPLY | (cl.ever_registered ? SPANRING_REG_F_RECONNECT : 0)))
		goto out;
	/* Kept open: the agent drains and lets go of the ring when it ends,
	 * at exit or exec (close-on-exec), and not before. */
	cl.final_sock = s;
	s = -1;
	result = 0;
out:
	if (s >= 0)
		close(s);
	/* Release: pairs with the load in cl_mode_get(). */
	sr_store_int(&cl.mode, result ? CL_M_FINAL_FAILED : CL_M_FINAL_SENT);
	errno = saved;
	return result;
}

/*
 * A restricted fork child (producer.c, "Fork") may not start a thread: it
 * registers its ring from the calling thread, with the async-signal-safe
 * final registration (socket, connect, sendmsg; no answer awaited). The
 * connection stays open until exit or exec, and the agent drains the
 * ring, without a doorbell, until then. If no agent answers, the ring is
 * offered once more when the process ends (sr_client_flush()). Such a
 * child does not follow an agent restart: it has no thread to notice.
 */
#define CL_INLINE_CONNECT_MS 100

static void cl_register_inline(void)
{
	if (sr_client_register_final(CL_INLINE_CONNECT_MS) == 0) {
		pthread_mutex_lock(&cl.mu);
		cl.state = CL_REGISTERED;
		pthread_mutex_unlock(&cl.mu);
	}
}

static void cl_start_inline(struct sr_map *m)
{
	pthread_mutex_lock(&cl.mu);
	bool go = !cl.m && m && m->fd >= 0;
	if (go) {
		cl.m = m;
		/* Release: pairs with the load of prepared in
		 * sr_client_deferred() and sr_client_register_final(). */
		sr_store_int(&cl.prepared, 1);
	}
	bool defer = cl.defer;
	pthread_mutex_unlock(&cl.mu);
	/* Deferred (the shim): at the first span other than the process
	 * span, or at the end, as in any process. */
	if (go && !defer)
		cl_register_inline();
}

int sr_client_flush(int timeout_ms)
{
	if (cl.restricted) {
		/* An earlier attempt found no agent: one more, now. */
		/* Pairs with the CAS in sr_client_register_final(). */
		sr_cas_int(&cl.mode, CL_M_FINAL_FAILED, CL_M_DEFERRED);
		return sr_client_deferred() ? sr_client_register_final(timeout_ms)
		       : cl_mode_get() == CL_M_FINAL_SENT ? 0
							    : -ENOTCONN;
	}
	pthread_once(&cl_once, cl_once_init);
	if (sr_client_deferred())
		return sr_client_register_final(timeout_ms);
	pthread_mutex_lock(&cl.mu);
	if (cl_mode_get() >= CL_M_FINAL_BUSY) {
		int r = cl_mode_get() == CL_M_FINAL_SENT ? 0 : -ENOTCONN;
		pthread_mutex_unlock(&cl.mu);
		return r;
	}
	if (!cl.started || !cl.thread_alive) {
		int r = cl.state == CL_REGISTERED ? 0 : -ENOTCONN;
		pthread_mutex_unlock(&cl.mu);
		return r;
	}
	if (cl.state == CL_REGISTERED) {
		pthread_mutex_unlock(&cl.mu);
		return 0;
	}
	/* Wait for the attempt under way, or ask for one now when the thread
	 * is backing off: a short-lived program gets one more chance. */
	uint64_t target = cl.attempts + 1;
	if (cl.state != CL_IDLE) {
		cl.kick = true;
		cl.kick_for = target;
		uint64_t one = 1;
		ssize_t n = write(cl.wake_fd, &one, sizeof(one));
		(void)n;
	}
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	uint64_t ns = (uint64_t)dl.tv_nsec + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
	dl.tv_sec += (time_t)(ns / 1000000000u);
	dl.tv_nsec = (long)(ns % 1000000000u);
	int r = 0;
	for (;;) {
		cl.agent_busy = false;
		while (cl.state != CL_REGISTERED && cl.attempts < target && cl.thread_alive && r == 0)
			r = pthread_cond_timedwait(&cl.cv, &cl.mu, &dl);
		/* An agent that is still letting go of our previous connection
		 * (the thread was restarted: unshare, setns) answers "already
		 * registered" for a few milliseconds: ask again, 2 ms apart,
		 * until the deadline. Without an agent, one attempt is all. */
		if (r || cl.state == CL_REGISTERED || !cl.thread_alive || !cl.agent_busy)
			break;
		pthread_mutex_unlock(&cl.mu);
		struct timespec ms2 = {0, 2000000};
		nanosleep(&ms2, NULL);
		pthread_mutex_lock(&cl.mu);
		target = cl.attempts + 1;
		cl.kick = true;
		cl.kick_for = target;
		uint64_t one = 1;
		ssize_t n = write(cl.wake_fd, &one, sizeof(one));
		(void)n;
	}
	int ret = cl.state == CL_REGISTERED ? 0 : r == ETIMEDOUT ? -ETIMEDOUT : -ENOTCONN;
	pthread_mutex_unlock(&cl.mu);
	return ret;
}

bool sr_client_thread_alive(void)
{
	pthread_mutex_lock(&cl.mu);
	bool r = cl.thread_alive;
	pthread_mutex_unlock(&cl.mu);
	return r;
}

bool sr_client_registered(void)
{
	pthread_mutex_lock(&cl.mu);
	bool r = cl.state == CL_REGISTERED;
	pthread_mutex_unlock(&cl.mu);
	return r;
}

bool sr_client_thread_quiet(void)
{
	/* Acquire: pairs with the stores of quiet in cl_main(). */
	return sr_load_int(&cl.quiet) != 0;
}

void sr_client_atfork_prepare(void)
{
	/* Where to look for the agent, resolved now, in the parent: a
	 * restricted child must not (it formats, reads the environment and
	 * looks at directories). Not while a thread of ours runs: it reads
	 * these fields, and cl_start() resolved them when it started it. */
	pthread_mutex_lock(&cl.mu);
	if (!cl.started)
		cl_resolve();
	pthread_mutex_unlock(&cl.mu);
}

void sr_client_atfork_child(bool restricted)
{
	/*
	 * Only this thread exists. cl.fdmu is held by our own prepare handler
	 * (or by nobody): do not lock it. cl.mu may have been held by the
	 * parent's client thread, which does not exist here: re-initialise it.
	 * Close what the parent's connection left us; send nothing, so the
	 * agent keeps the parent registered.
	 */
	pthread_mutex_init(&cl.mu, NULL);
	sr_store_int(&sr_doorbell_fd, -1); /* release: see client.h */
	if (cl.sock >= 0)
		close(cl.sock);
	if (cl.bell_fd >= 0)
		close(cl.bell_fd);
	if (cl.wake_fd >= 0)
		close(cl.wake_fd);
	if (cl.final_sock >= 0)
		close(cl.final_sock);
	cl.sock = cl.bell_fd = cl.wake_fd = cl.final_sock = -1;
	sr_store_relaxed_int(&cl.prepared, 0);
	sr_store_relaxed_int(&cl.mode, CL_M_DEFERRED);
	cl.started = cl.thread_alive = cl.stop = cl.kick = false;
	cl.ever_registered = cl.logged_reject = false;
	cl.state = CL_IDLE;
	cl.attempts = 0;
	cl.m = NULL;
	cl.quiet = 0;
	cl.restricted = restricted;
	/* A waiter of the parent may have been inside the condvar. */
	if (cl.cv_ready)
		cl_init_cv();
}

void sr_client_stop(void)
{
	pthread_mutex_lock(&cl.mu);
	if (!cl.started) {
		pthread_mutex_unlock(&cl.mu);
		return;
	}
	cl.stop = true;
	cl.started = false;
	uint64_t one = 1;
	ssize_t n = write(cl.wake_fd, &one, sizeof(one));
	(void)n;
	pthread_t thr = cl.thr;
	pthread_mutex_unlock(&cl.mu);
	/* Bounded: every wait of the thread also watches wake_fd, so it
	 * ends promptly; if not, leave it rather than hang the exit. */
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += CL_JOIN_TIMEOUT_MS / 1000;
	if (pthread_timedjoin_np(thr, NULL, &dl) != 0)
		pthread_detach(thr);
	/* The doorbell number stays open (see the top of this file). */
}
