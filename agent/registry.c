/* SPDX-License-Identifier: MIT */
/*
 * Producer registration: the listening socket, the handshake of
 * ring_abi.h (one request with one memfd, one reply with the doorbell
 * eventfd), every check before a ring is mapped, the adoption of a ring
 * (fresh or after an agent restart) and the end of a producer.
 *
 * Order of checks: peer credentials (kernel-provided) and allow-lists,
 * the request's shape, the fd (memfd, seals, size), a private copy of the
 * header, limits, and only then mmap. Each rejection is answered with a
 * SPANRING_REG_E* code and a message, and logged (rate-limited: a client
 * that retries in a loop does not flood the log).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "atomics.h"
#include "drain.h"
#include "fdpass.h"
#include "log.h"
#include "registry.h"
#include "scope_cache.h"

#define REG_MAX_PENDING 1024
/* Connections of one uid that may be registering at once: one user cannot
 * hold every pending slot (and so keep all others from registering). */
#define REG_MAX_PENDING_PER_UID (REG_MAX_PENDING / 4)
#define REG_MAX_FDS 8

static const char *const reason_names[] = {
	[SPANRING_REG_OK] = "OK",
	[SPANRING_REG_EPROTO] = "EPROTO",
	[SPANRING_REG_EABI] = "EABI",
	[SPANRING_REG_ENOTMEMFD] = "ENOTMEMFD",
	[SPANRING_REG_ESEALS] = "ESEALS",
	[SPANRING_REG_ESIZE] = "ESIZE",
	[SPANRING_REG_EHEADER] = "EHEADER",
	[SPANRING_REG_EPERM] = "EPERM",
	[SPANRING_REG_ELIMIT] = "ELIMIT",
	[SPANRING_REG_EINTERNAL] = "EINTERNAL",
};

const char *registry_reason_name(int status)
{
	if (status < 0 || (size_t)status >= sizeof(reason_names) / sizeof(reason_names[0]) ||
	    !reason_names[status])
		return "E?";
	return reason_names[status];
}

static void registry_on_conn(struct loop_watch *w, uint32_t events);
static void registry_on_bell(struct loop_watch *w, uint32_t events);

/* ---- listening socket -------------------------------------------------- */

/*
 * Bind a unix socket at path with the given mode (what names it in
 * messages: "registration socket", "control socket"). A stale socket file
 * (nobody accepting) is replaced; a live one means another agent runs.
 * 0 or -errno with a message naming the path in err.
 */
int agent_unix_listen(const char *path, const char *what, int type, unsigned mode, int *out_fd,
		      char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		agent_errf(err, errlen, "%s %s: path too long for a unix socket", what, path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);

	/* The parent directory, e.g. /run/spanring, is created if missing. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *d = dirname(dir);
	if (mkdir(d, 0755) < 0 && errno != EEXIST)
		log_warn("%s %s: cannot create its directory %s: %s", what, path, d,
			 strerror(errno));

	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			agent_errf(err, errlen, "%s %s exists and is not a socket; not replacing it",
				   what, path);
			return -EEXIST;
		}
		int probe = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
		if (probe >= 0) {
			int r = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
			int e = errno;
			close(probe);
			if (r == 0) {
				agent_errf(err, errlen, "another agent is listening on %s %s", what,
					   path);
				return -EADDRINUSE;
			}
			if (e != ECONNREFUSED && e != ENOENT && e != EPROTOTYPE)
				log_warn("%s %s: probing it: %s", what, path, strerror(e));
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			int e = errno;
			agent_errf(err, errlen, "%s %s: cannot remove the stale socket: %s", what,
				   path, strerror(e));
			return -e;
		}
	}
	int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		agent_errf(err, errlen, "%s %s: socket: %s", what, path, strerror(e));
		return -e;
	}
	/* Bind under a strict umask, then widen to the configured mode: the
	 * socket is never more open than configured, not even briefly. */
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	if (r < 0) {
		close(fd);
		agent_errf(err, errlen, "cannot bind the %s %s: %s", what, path, strerror(e));
		return -e;
	}
	if (chmod(path, mode) < 0)
		log_warn("%s %s: chmod %04o: %s", what, path, mode, strerror(errno));
	if (listen(fd, 512) < 0) {
		e = errno;
		close(fd);
		unlink(path);
		agent_errf(err, errlen, "%s %s: listen: %s", what, path, strerror(e));
		return -e;
	}
	*out_fd = fd;
	return 0;
}

static void registry_on_accept(struct loop_watch *w, uint32_t events);

int registry_listen(struct agent *ag)
{
	int err = agent_unix_listen(ag->cfg->socket_path, "registration socket", SOCK_SEQPACKET,
				    ag->cfg->socket_mode, &ag->listen_fd, ag->err, sizeof(ag->err));
	if (err)
		return err;
	ag->listen_w.fd = ag->listen_fd;
	ag->listen_w.fn = registry_on_accept;
	err = loop_add(&ag->loop, &ag->listen_w, EPOLLIN);
	if (err) {
		registry_close_listener(ag);
		return err;
	}
	log_info("registry: listening on %s (mode %04o)", ag->cfg->socket_path,
		 ag->cfg->socket_mode);
	return 0;
}

void registry_close_listener(struct agent *ag)
{
	if (ag->listen_fd < 0)
		return;
	loop_del(&ag->loop, &ag->listen_w);
	close(ag->listen_fd);
	ag->listen_fd = -1;
	unlink(ag->cfg->socket_path);
}

/* ---- producers ---------------------------------------------------------- */

static struct agent_producer *producer_alloc(struct agent *ag)
{
	struct agent_producer *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->ag = ag;
	p->conn_fd = -1;
	p->bell_fd = -1;
	p->map.fd = -1;
	p->conn_w.fd = -1;
	p->bell_w.fd = -1;
	return p;
}

static void producer_link(struct agent *ag, struct agent_producer *p)
{
	p->prev = NULL;
	p->next = ag->producers;
	if (ag->producers)
		ag->producers->prev = p;
	ag->producers = p;
}

static void producer_unlink(struct agent *ag, struct agent_producer *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else if (ag->producers == p)
		ag->producers = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->next = p->prev = NULL;
}

/* Undo what registry_adopt() set up in p (mapping, slots, caches). */
static void producer_release_ring(struct agent_producer *p, bool close_fd)
{
	drain_slots_free(p);
	scope_cache_free(&p->scopes);
	free(p->resource);
	p->resource = NULL;
	p->resource_len = 0;
	if (p->mapped)
		sr_ring_unmap(&p->map, close_fd);
	p->mapped = false;
}

void registry_close_conn(struct agent_producer *p)
{
	struct agent *ag = p->ag;
	if (p->conn_fd >= 0) {
		loop_del(&ag->loop, &p->conn_w);
		close(p->conn_fd);
		p->conn_fd = -1;
	}
	if (p->bell_fd >= 0) {
		loop_del(&ag->loop, &p->bell_w);
		close(p->bell_fd);
		p->bell_fd = -1;
	}
}

void registry_free(struct agent_producer *p)
{
	struct agent *ag = p->ag;
	registry_close_conn(p);
	if (p->state == PROD_PENDING) {
		ag->n_pending--;
	} else {
		ag->n_producers--;
		ag->st.closed++;
		/* The ring's own count is the producer's claim: printed, never used. */
		uint64_t claimed = 0;
		for (uint32_t i = 0; p->mapped && i < p->map.l.slot_count; i++) {
			const struct spanring_slot_prod *sp = sr_prod(&p->map, i);
			claimed += sr_load_relaxed_64(&sp->spans);
			/* agent-wide totals outlive the ring */
			ag->st.gone_drop_full += sr_load_relaxed_64(&sp->drop_full);
			ag->st.gone_drop_oversize += sr_load_relaxed_64(&sp->drop_oversize);
			ag->st.gone_drop_encode += sr_load_relaxed_64(&sp->drop_encode);
		}
		log_info("producer %llu (pid %d, service '%s') released: %llu spans, %llu bytes "
			 "drained (ring says %llu committed); %llu lost marks, %llu dropped by the "
			 "producer%s%s%s",
			 (unsigned long long)p->id, (int)p->pid, p->service,
			 (unsigned long long)p->spans, (unsigned long long)p->bytes,
			 (unsigned long long)claimed, (unsigned long long)p->lost,
			 (unsigned long long)drain_producer_drops(p),
			 p->state == PROD_QUARANTINED ? "; was quarantined: " : "",
			 p->state == PROD_QUARANTINED ? p->reason : "",
			 p->ending ? " (registered as it ended)" : "");
	}
	producer_release_ring(p, true);
	producer_unlink(ag, p);
	free(p);
}

void registry_maybe_free(struct agent_producer *p)
{
	if (p->zombie || !p->conn_closed || p->inflight_chunks)
		return;
	if (p->state == PROD_ACTIVE && !p->final_drained)
		return;
	p->zombie = true;
}

void registry_reap(struct agent *ag)
{
	struct agent_producer *next;
	for (struct agent_producer *p = ag->producers; p; p = next) {
		next = p->next;
		if (p->zombie)
			registry_free(p);
	}
}

void producer_quarantine(struct agent_producer *p, const char *fmt, ...)
{
	if (p->state != PROD_ACTIVE)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
	va_end(ap);
	p->state = PROD_QUARANTINED;
	p->ag->st.quarantined++;
	if (p->bell_fd >= 0) {
		loop_del(&p->ag->loop, &p->bell_w);
		close(p->bell_fd);
		p->bell_fd = -1;
	}
	/* Once per producer: the state change happens once. */
	log_warn("producer %llu (pid %d, uid %u, service '%s') quarantined: %s; its ring is no "
		 "longer read, other producers are not affected",
		 (unsigned long long)p->id, (int)p->pid, (unsigned)p->uid, p->service, p->reason);
}

static bool id_in(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Allow-lists: a peer passes if no list is set, or its uid or gid is listed. */
static bool registry_peer_allowed(const struct agent_config *c, uid_t uid, gid_t gid)
{
	if (!c->n_allow_uids && !c->n_allow_gids)
		return true;
	return id_in(c->allow_uids, c->n_allow_uids, (uint32_t)uid) ||
	       id_in(c->allow_gids, c->n_allow_gids, (uint32_t)gid);
}

uint64_t registry_scope_reserve(const struct agent *ag, const struct sr_layout *l)
{
	return scope_cache_reserve(l, ag->cfg->max_scope_bytes);
}

/* The agent's producer limit, and the uid's count and bytes: each ring
 * counts with the most its scope copies may cost (registry_scope_reserve),
 * so the agent's memory for a uid is bounded by the budget, whatever its
 * producers write in their tables. */
static int registry_check_limits(struct agent *ag, uid_t uid, const struct sr_layout *l,
				 const char **why)
{
	if (ag->n_producers >= ag->cfg->max_producers) {
		*why = "too many producers";
		return SPANRING_REG_ELIMIT;
	}
	uint32_t uid_count = 0;
	uint64_t uid_bytes = 0;
	for (struct agent_producer *q = ag->producers; q; q = q->next) {
		if (q->mapped && q->uid == uid) {
			uid_count++;
			uid_bytes += q->map.l.total_size + registry_scope_reserve(ag, &q->map.l);
		}
	}
	if (uid_count >= ag->cfg->max_producers_per_uid) {
		*why = "too many producers for this uid";
		return SPANRING_REG_ELIMIT;
	}
	if (uid_bytes + l->total_size + registry_scope_reserve(ag, l) > ag->cfg->max_mapped_per_uid) {
		*why = "too many ring bytes mapped for this uid";
		return SPANRING_REG_ELIMIT;
	}
	return SPANRING_REG_OK;
}

/*
 * The checks before a ring is mapped: the fd (memfd, seals, size), that
 * the ring is not registered already, a private copy of the header
 * (validated once, never re-read) into *hdr and *l, and the limits of
 * the agent and of the uid. SPANRING_REG_OK or a reason with *why.
 */
static int registry_check_ring(struct agent *ag, int fd, uint64_t req_size, uid_t uid,
			       struct stat *st, struct spanring_ring_hdr *hdr,
			       struct sr_layout *l, const char **why)
{
	struct sr_fd_info info;
	int rc = sr_fd_check(fd, &info, why);
	if (rc)
		return rc;
	if (req_size != info.size) {
		*why = "request ring_size differs from the memfd size";
		return SPANRING_REG_ESIZE;
	}
	if (fstat(fd, st) < 0) {
		*why = "fstat failed";
		return SPANRING_REG_EINTERNAL;
	}
	for (struct agent_producer *q = ag->producers; q; q = q->next) {
		if (q->mapped && q->dev == st->st_dev && q->ino == st->st_ino) {
			*why = "ring already registered";
			return SPANRING_REG_EPROTO;
		}
	}
	if (pread(fd, hdr, sizeof(*hdr), 0) != (ssize_t)sizeof(*hdr)) {
		*why = "cannot read the ring header";
		return SPANRING_REG_EHEADER;
	}
	rc = sr_hdr_validate(hdr, info.size, l, why);
	if (rc)
		return rc;
	if (!(hdr->flags & SPANRING_HDR_F_INITIALIZED)) {
		*why = "ring header not initialized";
		return SPANRING_REG_EHEADER;
	}
	return registry_check_limits(ag, uid, l, why);
}

/* Copy the Resource out of shared memory, then decode only the copy and
 * rewrite it with what the agent verified about the peer. */
static int registry_load_resource(struct agent *ag, struct agent_producer *p, uint32_t res_len,
				  const char **why)
{
	uint8_t *res = malloc(res_len ? res_len : 1);
	if (!res) {
		*why = "out of memory";
		return SPANRING_REG_EINTERNAL;
	}
	memcpy(res, sr_resource(&p->map), res_len);
	struct res_identity id = {.pid = p->pid,
				  .uid = p->uid,
				  .host_name = ag->host_name,
				  .host_id = ag->host_id,
				  .container_id = p->container_id};
	int err = agent_resource_rewrite(res, res_len, &id, &p->resource, &p->resource_len,
					 p->service, sizeof(p->service));
	free(res);
	if (err) {
		*why = err == -EBADMSG ? "resource does not decode" : "out of memory";
		return err == -EBADMSG ? SPANRING_REG_EHEADER : SPANRING_REG_EINTERNAL;
	}
	return SPANRING_REG_OK;
}

/*
 * Adopt each slot where the previous agent (or nobody) left it. The
 * stored tail and scope_at_tail are in memory the producer can write:
 * validated like everything else.
 */
static int registry_adopt_slots(struct agent *ag, struct agent_producer *p, const char **why)
{
	const struct sr_layout *l = &p->map.l;
	for (uint32_t i = 0; i < l->slot_count; i++) {
		struct drain_slot *s = &p->slots[i];
		/* C (ABI §10): pairs with the producer's store-release of head
		 * (B), like the drain's load. */
		uint64_t head = sr_load_acquire_64(&sr_prod(&p->map, i)->head);
		/* tail and scope_at_tail: read at adoption only (ABI §10); a
		 * previous agent stored them, nobody else does. */
		uint64_t tail = sr_load_relaxed_64(&sr_cons(&p->map, i)->tail);
		uint64_t sat = sr_load_relaxed_64(&sr_cons(&p->map, i)->scope_at_tail);
		if (tail > head || head - tail > l->slot_size) {
			*why = "a slot's stored tail is inconsistent with its head";
			return SPANRING_REG_EHEADER;
		}
		const struct scope_ent *ent = NULL;
		/* At tail 0 nothing was released: the stream starts with a
		 * scope record, whatever the (maybe zeroed) field says. */
		if (tail == 0)
			sat = SPANRING_SCOPE_NONE;
		if (sat != SPANRING_SCOPE_NONE) {
			const char *sw;
			ent = scope_cache_get(&p->scopes, &p->map, ag->cfg->max_scope_bytes, sat, &sw);
			if (!ent) {
				*why = "a slot's stored scope_at_tail is invalid";
				return SPANRING_REG_EHEADER;
			}
		}
		s->tail = s->pos = tail;
		s->last_head = head;
		s->scope = sat;
		s->scope_ent = ent;
	}
	return SPANRING_REG_OK;
}

/* Take the ring over: the consumer header says which agent drains it. */
static void registry_claim_ring(struct agent *ag, struct agent_producer *p)
{
	struct spanring_cons_hdr *ch = sr_cons_hdr(&p->map);
	uint64_t epoch = sr_load_relaxed_64(&ch->agent_epoch);
	ch->agent_abi_major = SPANRING_ABI_MAJOR;
	ch->watermark_pct = ag->cfg->watermark_pct;
	/* Not armed until the agent sleeps with this ring's doorbell in its
	 * epoll set (whatever a previous agent left here). */
	sr_store_relaxed_32(&ch->need_wakeup, 0);
	p->wake = false;
	/* ABI §10 (agent_epoch): store-released after the fields above; no
	 * reader in this tree acquires it (spanring-dump only prints it). */
	sr_store_release_64(&ch->agent_epoch, epoch + 1);
}

/* p's ring is adopted: it becomes an ACTIVE producer in ag's list. */
static void registry_activate(struct agent *ag, struct agent_producer *p, bool own,
			      bool reconnect, const struct spanring_ring_hdr *hdr)
{
	p->id = ++ag->next_producer_id;
	p->reconnect = reconnect;
	p->abi_minor = hdr->abi_minor;
	p->creator_pid = hdr->creator_pid;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	p->reg_wall_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (p->state == PROD_PENDING && !own)
		ag->n_pending--;
	p->state = PROD_ACTIVE;
	ag->n_producers++;
	ag->st.registered++;
	if (own)
		producer_link(ag, p);
}

int registry_adopt(struct agent *ag, int fd, uint64_t req_size, pid_t pid, uid_t uid,
		   gid_t gid, bool reconnect, struct agent_producer **out, const char **why)
{
	struct stat st;
	struct spanring_ring_hdr hdr;
	struct sr_layout l;
	int rc = registry_check_ring(ag, fd, req_size, uid, &st, &hdr, &l, why);
	if (rc)
		return rc;
	struct agent_producer *p = *out ? *out : producer_alloc(ag);
	bool own = !*out;
	if (!p) {
		*why = "out of memory";
		return SPANRING_REG_EINTERNAL;
	}
	p->slots = calloc(l.slot_count, sizeof(*p->slots));
	if (!p->slots) {
		*why = "out of memory";
		rc = SPANRING_REG_EINTERNAL;
		goto fail;
	}
	if (sr_ring_map_consumer(&p->map, fd, &l, true)) {
		p->map.fd = -1;
		*why = "cannot map the ring";
		rc = SPANRING_REG_EINTERNAL;
		goto fail;
	}
	p->mapped = true;
	p->dev = st.st_dev;
	p->ino = st.st_ino;
	p->pid = pid;
	p->uid = uid;
	p->gid = gid;
	if ((rc = registry_load_resource(ag, p, hdr.res_len, why)) ||
	    (rc = registry_adopt_slots(ag, p, why)))
		goto fail;
	registry_claim_ring(ag, p);
	registry_activate(ag, p, own, reconnect, &hdr);
	*out = p;
	return SPANRING_REG_OK;
fail:
	producer_release_ring(p, false);
	p->map.fd = -1;
	if (own)
		free(p);
	return rc;
}

/* ---- the handshake --------------------------------------------------------- */

/* Send the reply, with the doorbell fd when bell >= 0. 0 or -errno. */
static int registry_reply(int conn, int status, uint64_t id, const char *msg, int bell)
{
	struct spanring_reg_resp resp;
	memset(&resp, 0, sizeof(resp));
	resp.magic = SPANRING_REG_MAGIC;
	resp.status = status;
	resp.abi_major = SPANRING_ABI_MAJOR;
	resp.abi_minor = SPANRING_ABI_MINOR;
	resp.producer_id = id;
	snprintf(resp.message, sizeof(resp.message), "%s", msg ? msg : "");
	ssize_t r = sr_fd_send(conn, &resp, sizeof(resp), &bell, bell >= 0,
			       MSG_NOSIGNAL | MSG_DONTWAIT);
	if (r < 0)
		return -errno;
	return r == (ssize_t)sizeof(resp) ? 0 : -EIO;
}

int registry_reply_failure_level(int err)
{
	return err == -EPIPE || err == -ECONNRESET ? AGENT_LOG_DEBUG : AGENT_LOG_WARN;
}

static void registry_reject(struct agent_producer *p, int status, const char *why)
{
	struct agent *ag = p->ag;
	ag->st.rejected++;
	if (status >= 0 && status < 16)
		ag->st.rejected_by_reason[status]++;
	/* One limiter per reason: a flood of one kind does not hide others. */
	static struct agent_log_rl rl[16];
	agent_log_rl(&rl[status >= 0 && status < 16 ? status : 0], AGENT_LOG_WARN,
		     "registry: rejected pid %d uid %u: %s (%d): %s", (int)p->pid, (unsigned)p->uid,
		     registry_reason_name(status), status, why);
	(void)registry_reply(p->conn_fd, status, 0, why, -1);
	registry_free(p);
}

/* A request as it came off the socket: its bytes and every fd it carried. */
struct reg_msg {
	ssize_t n;          /* bytes received, <= 0: the connection ended */
	int flags;          /* msg_flags */
	bool bad_cmsg;      /* a control message other than SCM_RIGHTS */
	uint8_t buf[sizeof(struct spanring_reg_req) + 1];
	int fds[REG_MAX_FDS];
	size_t nfds;
};

/*
 * Receive one message. Every fd the peer sent is collected, whatever else
 * is wrong, so that none leaks: also with an empty message, which reads
 * like the end of the connection but may carry fds. -1 when there is
 * nothing to read yet.
 */
static int registry_recv(int conn, struct reg_msg *m)
{
	struct sr_fd_msg fm;
	m->n = sr_fd_recv(conn, m->buf, sizeof(m->buf), REG_MAX_FDS, MSG_DONTWAIT, &fm);
	if (m->n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return -1;
	m->flags = fm.flags;
	m->bad_cmsg = fm.foreign;
	m->nfds = fm.nfds;
	memcpy(m->fds, fm.fds, fm.nfds * sizeof(int));
	return 0;
}

/* The request's shape and the peer's permission, before its ring is
 * looked at: SPANRING_REG_OK with *req filled, or a reason with *why. */
static int registry_check_request(struct agent_producer *p, const struct reg_msg *m,
				  struct spanring_reg_req *req, const char **why)
{
	if (m->flags & MSG_CTRUNC) {
		*why = "control message truncated (too many fds)";
		return SPANRING_REG_EPROTO;
	}
	if (m->bad_cmsg) {
		*why = "unexpected control message";
		return SPANRING_REG_EPROTO;
	}
	if (m->n != (ssize_t)sizeof(*req) || (m->flags & MSG_TRUNC)) {
		*why = "request has the wrong size";
		return SPANRING_REG_EPROTO;
	}
	memcpy(req, m->buf, sizeof(*req));
	if (req->magic != SPANRING_REG_MAGIC) {
		*why = "bad request magic";
		return SPANRING_REG_EPROTO;
	}
	if (m->nfds != 1) {
		*why = m->nfds ? "more than one fd attached" : "no fd attached";
		return SPANRING_REG_EPROTO;
	}
	if (!registry_peer_allowed(p->ag->cfg, p->uid, p->gid)) {
		*why = "uid/gid not in the allow-list";
		return SPANRING_REG_EPERM;
	}
	if (req->abi_major != SPANRING_ABI_MAJOR) {
		*why = "unsupported ABI major version";
		return SPANRING_REG_EABI;
	}
	return SPANRING_REG_OK;
}

/* The doorbell: an eventfd in the loop, handed over with the reply. */
static void registry_make_bell(struct agent_producer *p)
{
	struct agent *ag = p->ag;
	p->bell_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->bell_fd < 0) {
		log_error("registry: eventfd: %s", strerror(errno));
		return;
	}
	p->bell_w.fd = p->bell_fd;
	p->bell_w.fn = registry_on_bell;
	if (loop_add(&ag->loop, &p->bell_w, EPOLLIN)) {
		close(p->bell_fd);
		p->bell_fd = -1;
	}
}

/* p registered and wants a reply: its doorbell, the reply, the event. */
static void registry_welcome(struct agent_producer *p)
{
	struct agent *ag = p->ag;
	registry_make_bell(p);
	/* ABI 1.2 producers check need_wakeup after each commit; older ones
	 * are polled while they are registered (core.c). */
	p->wake = p->abi_minor >= SPANRING_ABI_MINOR_WAKE && p->bell_fd >= 0;
	int err = registry_reply(p->conn_fd, SPANRING_REG_OK, p->id, "registered", p->bell_fd);
	if (err) {
		/* EPIPE, ECONNRESET: the producer hung up after sending its ring
		 * (it exited at once). Its ring is adopted and drained like any
		 * ended producer's: nothing is wrong. Anything else is worth a
		 * warning. */
		int lvl = registry_reply_failure_level(err);
		agent_log(lvl, "registry: reply to pid %d failed: %s%s", (int)p->pid, strerror(-err),
			  lvl == AGENT_LOG_DEBUG
				  ? " (it hung up after sending its ring, which is drained)"
				  : "; its ring is drained as if it had disconnected");
		/* The ring is adopted; treat it as a producer whose connection ended. */
		p->conn_closed = true;
		loop_del(&ag->loop, &p->conn_w);
		close(p->conn_fd);
		p->conn_fd = -1;
	}
	log_info("producer %llu registered: pid %d uid %u service '%s', %u slots x %u bytes%s%s",
		 (unsigned long long)p->id, (int)p->pid, (unsigned)p->uid, p->service,
		 p->map.l.slot_count, p->map.l.slot_size, p->reconnect ? " (reconnect)" : "",
		 p->wake ? "" : " (polled: ABI minor < 2 or no doorbell)");
	if (!p->conn_closed)
		ag->reg_ev->registered(p);
	else
		ag->reg_ev->closed(p);
}

/* Read the request of a pending connection and register or reject it. */
static void registry_on_request(struct agent_producer *p)
{
	struct reg_msg m;
	if (registry_recv(p->conn_fd, &m))
		return;
	if (m.n <= 0) {
		for (size_t j = 0; j < m.nfds; j++)
			close(m.fds[j]);
		registry_free(p);
		return;
	}
	struct spanring_reg_req req;
	const char *why = NULL;
	int status = registry_check_request(p, &m, &req, &why);
	if (status == SPANRING_REG_OK) {
		struct agent_producer *pp = p;
		status = registry_adopt(p->ag, m.fds[0], req.ring_size, p->pid, p->uid, p->gid,
					(req.flags & SPANRING_REG_F_RECONNECT) != 0, &pp, &why);
		if (status == SPANRING_REG_OK)
			m.nfds = 0; /* the fd belongs to the mapping now */
	}
	for (size_t j = 0; j < m.nfds; j++)
		close(m.fds[j]);
	if (status != SPANRING_REG_OK) {
		registry_reject(p, status, why);
		return;
	}
	/* Trusted only for this producer's own wake-ups (docs/ABI.md 10.1). */
	p->mb_expedited = (req.flags & SPANRING_REG_F_MB_EXPEDITED) != 0;
	if (!(req.flags & SPANRING_REG_F_NOREPLY)) {
		registry_welcome(p);
		return;
	}
	/* An ending producer (exit, exec, fatal signal): it reads no answer
	 * and rings no doorbell. Its connection usually ends at once; the
	 * ring is drained then, as for any producer. One info line per such
	 * producer (its "released" line): a traced build makes thousands of
	 * them. */
	p->ending = true;
	log_debug("producer %llu registered: pid %d uid %u service '%s', %u slots x %u bytes "
		  "(ending, no reply)",
		  (unsigned long long)p->id, (int)p->pid, (unsigned)p->uid, p->service,
		  p->map.l.slot_count, p->map.l.slot_size);
	p->ag->reg_ev->registered(p);
}

static void registry_on_bell(struct loop_watch *w, uint32_t events)
{
	struct agent_producer *p = container_of(w, struct agent_producer, bell_w);
	uint64_t v;
	ssize_t r = read(p->bell_fd, &v, sizeof(v));
	(void)events;
	if (r != sizeof(v))
		return;
	p->doorbells++;
	p->ag->st.doorbells++;
	p->ag->reg_ev->doorbell(p);
}

static void registry_on_conn(struct loop_watch *w, uint32_t events)
{
	struct agent_producer *p = container_of(w, struct agent_producer, conn_w);
	if (p->state == PROD_PENDING) {
		if (events & EPOLLIN)
			registry_on_request(p);
		else if (events & (EPOLLHUP | EPOLLERR))
			registry_free(p);
		return;
	}
	/* Registered: the producer sends nothing more; read and drop whatever
	 * comes (bounded), and notice the end of the connection. */
	bool closed = (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0;
	if (!closed && (events & EPOLLIN)) {
		char buf[256];
		for (int i = 0; i < 16; i++) {
			ssize_t r = recv(p->conn_fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				closed = true;
				break;
			}
			if (r < 0)
				break;
		}
	}
	if (closed)
		p->ag->reg_ev->closed(p);
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

/*
 * The container the peer runs in, as the kernel sees it: the container id
 * in its cgroup path (/proc/PID/cgroup), never what the producer claims.
 * The pid could be reused once the peer has exited, so the file is read
 * only through the identity SO_PEERPIDFD pins (Linux 6.5): after the read
 * the pidfd must show the process still running. Without it, or when the
 * peer has already exited (a producer that registers as it ends), the
 * container is not known and container.id is absent.
 */
static void registry_peer_container(struct agent_producer *p, int conn)
{
	p->container_id[0] = 0;
	int pidfd = -1;
	socklen_t len = sizeof(pidfd);
	if (getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0 || len != sizeof(pidfd) ||
	    pidfd < 0)
		return;
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)p->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;
	if (fd >= 0) {
		do
			n = read(fd, buf, sizeof(buf));
		while (n < 0 && errno == EINTR);
		close(fd);
	}
	struct pollfd pf = {.fd = pidfd, .events = POLLIN};
	bool alive = poll(&pf, 1, 0) == 0;
	close(pidfd);
	char id[65];
	if (n > 0 && alive && agent_cgroup_container_id(buf, (size_t)n, id))
		memcpy(p->container_id, id, sizeof(id));
}

static void registry_on_accept(struct loop_watch *w, uint32_t events)
{
	struct agent *ag = container_of(w, struct agent, listen_w);
	(void)events;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(ag->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR)
				AGENT_LOG_RL(AGENT_LOG_WARN, "registry: accept on %s: %s",
					     ag->cfg->socket_path, strerror(e));
			/* Out of fds (or memory): the connection stays queued and
			 * the socket readable, so the loop would spin on it. Stop
			 * watching it; housekeeping resumes it within a second. */
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				loop_mod(&ag->loop, &ag->listen_w, 0);
				ag->accept_paused = true;
				loop_timer_arm_by(&ag->loop, &ag->house_t, agent_now_ns() + 1000000000ull);
			}
			return;
		}
		ag->st.accepted++;
		if (ag->n_pending >= REG_MAX_PENDING) {
			AGENT_LOG_RL(AGENT_LOG_WARN,
				     "registry: %u connections have not registered yet; closing new "
				     "ones",
				     ag->n_pending);
			close(fd);
			continue;
		}
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    len != sizeof(cred)) {
			AGENT_LOG_RL(AGENT_LOG_WARN, "registry: SO_PEERCRED of a connection to %s: %s",
				     ag->cfg->socket_path, strerror(errno));
			close(fd);
			continue;
		}
		uint32_t same_uid = 0;
		for (struct agent_producer *q = ag->producers; q; q = q->next)
			if (q->state == PROD_PENDING && q->uid == cred.uid)
				same_uid++;
		if (same_uid >= REG_MAX_PENDING_PER_UID) {
			AGENT_LOG_RL(AGENT_LOG_WARN,
				     "registry: uid %u has %u connections that have not registered "
				     "yet; closing its new ones",
				     (unsigned)cred.uid, same_uid);
			close(fd);
			continue;
		}
		struct agent_producer *p = producer_alloc(ag);
		if (!p) {
			close(fd);
			continue;
		}
		p->state = PROD_PENDING;
		p->conn_fd = fd;
		p->pid = cred.pid;
		p->uid = cred.uid;
		p->gid = cred.gid;
		registry_peer_container(p, fd);
		p->accept_ns = agent_now_ns();
		p->conn_w.fd = fd;
		p->conn_w.fn = registry_on_conn;
		if (loop_add(&ag->loop, &p->conn_w, EPOLLIN | EPOLLRDHUP)) {
			close(fd);
			free(p);
			continue;
		}
		producer_link(ag, p);
		ag->n_pending++;
		/* Its registration deadline: an exact timer, not a periodic one. */
		loop_timer_arm_by(&ag->loop, &ag->house_t, p->accept_ns + ag->cfg->reg_timeout_us * 1000 + 1);
	}
}

void registry_admit_queued(struct agent *ag)
{
	/* Connections the kernel has queued, and requests already in their
	 * sockets: producers that handed their ring over before the stop. A
	 * registration at the end of a process (NOREPLY) expects no answer,
	 * so its ring would otherwise be dropped unread with its spans. Only
	 * what is already there: nothing here waits. */
	for (int i = 0; i < 64 && ag->listen_fd >= 0; i++) {
		uint64_t before = ag->st.accepted;
		registry_on_accept(&ag->listen_w, EPOLLIN);
		if (ag->st.accepted - before < 64)
			break;
	}
	struct agent_producer *next;
	for (struct agent_producer *p = ag->producers; p; p = next) {
		next = p->next;
		if (p->state == PROD_PENDING)
			registry_on_request(p);
	}
}

void registry_housekeeping(struct agent *ag)
{
	/* Resume accepting if a lack of fds paused it (registry_on_accept). */
	if (ag->listen_fd >= 0 && ag->accept_paused) {
		ag->accept_paused = false;
		loop_mod(&ag->loop, &ag->listen_w, EPOLLIN);
	}
	uint64_t now = agent_now_ns();
	uint64_t limit = ag->cfg->reg_timeout_us * 1000;
	uint64_t next_due = 0;
	struct agent_producer *next;
	for (struct agent_producer *p = ag->producers; p; p = next) {
		next = p->next;
		if (p->state == PROD_PENDING && now - p->accept_ns <= limit) {
			uint64_t due = p->accept_ns + limit + 1;
			if (!next_due || due < next_due)
				next_due = due;
		}
		if (p->state == PROD_PENDING && now - p->accept_ns > limit) {
			AGENT_LOG_RL(AGENT_LOG_WARN,
				     "registry: pid %d uid %u sent no request within %llums; closed",
				     (int)p->pid, (unsigned)p->uid,
				     (unsigned long long)(limit / 1000000));
			registry_free(p);
		}
	}
	if (next_due)
		loop_timer_arm_by(&ag->loop, &ag->house_t, next_due);
	if (ag->accept_paused)
		loop_timer_arm_by(&ag->loop, &ag->house_t, now + 1000000000ull);
}
