/* SPDX-License-Identifier: MIT */
/*
 * spanring-agent core: the agent, its producers (one per registered ring),
 * their slots' drain state and the refcounted batches that carry ring
 * slices to the exporters.
 *
 * Everything runs on one thread (the event loop). Shared memory is read
 * through the producer's mapping only in drain.c and registry.c, each
 * value once into a local and validated before use; what the agent writes
 * to the ring (tail, scope_at_tail, the consumer header) is never read
 * back from shared memory: the agent keeps its own copy.
 */
#ifndef SPANRING_AGENT_AGENT_H
#define SPANRING_AGENT_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config.h"
#include "exporter.h"
#include "loop.h"
#include "ring.h"

#define AGENT_VERSION "0.1.0"
#define AGENT_MAX_EXPORTERS 64 /* INST_MAX */

/* ---- producers and slots ------------------------------------------------ */

enum producer_state {
	PROD_PENDING = 0,  /* connected, request not yet received */
	PROD_ACTIVE,       /* registered, drained */
	PROD_QUARANTINED,  /* broke the ABI: no longer read, connection kept */
};

/*
 * A run of a slot's bytes handed to one batch. Chunks of a slot are in
 * stream order; tail advances over the released ones at the front.
 */
struct drain_chunk {
	uint64_t end;          /* stream position after the chunk */
	uint64_t scope_at_end; /* scope in effect at end (for scope_at_tail) */
	uint64_t batch_seq;    /* the batch holding it */
	bool released;
};

struct drain_slot {
	uint64_t tail;      /* released position: what we stored in slot_cons.tail */
	uint64_t pos;       /* walked position: records before it are in batches */
	uint64_t last_head; /* last head seen (head must not move backwards) */
	uint64_t scope;     /* scope-table offset in effect at pos, or SCOPE_NONE */
	const struct scope_ent *scope_ent; /* its cache entry (NULL for NONE) */
	/* in-flight chunks: a ring of cap entries starting at q_first */
	struct drain_chunk *q;
	uint32_t q_cap, q_first, q_len;
	uint64_t q_first_seq; /* sequence number of q[q_first] */
	uint64_t spans, bytes, lost;
};

/* What a cached scope entry costs the agent beyond its entry's bytes
 * (struct scope_ent, allocator headers, its pointer), for max_scope_bytes. */
#define AGENT_SCOPE_ENT_OVERHEAD 64u

/* A validated scope-table entry, copied into agent memory. */
struct scope_ent {
	uint64_t off;
	uint32_t len;
	uint8_t *body;
};

struct agent_producer {
	struct agent *ag;
	struct agent_producer *next, *prev;
	uint64_t id;
	int state;
	bool conn_closed;   /* the producer's connection ended */
	bool zombie;        /* done: freed by registry_reap() at a safe point */
	bool final_drained; /* ... and its ring was drained one last time */
	int conn_fd;
	struct loop_watch conn_w;
	int bell_fd;        /* doorbell eventfd (agent end) */
	struct loop_watch bell_w;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint64_t accept_ns;
	uint64_t reg_wall_ns;   /* CLOCK_REALTIME at registration */
	dev_t dev;              /* memfd identity, to refuse a ring registered twice */
	ino_t ino;
	bool mapped;
	struct sr_map map;      /* consumer mapping: data read-only */
	uint32_t abi_minor;
	uint32_t creator_pid;   /* the producer's claim, informational */
	bool reconnect;
	bool ending;          /* registered with SPANRING_REG_F_NOREPLY */
	bool wake;            /* armed with need_wakeup when the agent sleeps
				 (ABI >= 1.2 and a doorbell); else polled */
	struct drain_slot *slots;
	uint8_t *resource;      /* agent-rewritten Resource message */
	size_t resource_len;
	char service[128];      /* service.name from the resource */
	char container_id[65];  /* from its cgroup at accept; "" when none */
	struct scope_ent **scopes; /* sorted by off, never overlapping */
	size_t n_scopes, cap_scopes;
	uint64_t scope_bytes;   /* their cost: entry bytes + AGENT_SCOPE_ENT_OVERHEAD each */
	uint64_t inflight_chunks;
	uint64_t inflight_spans;  /* its spans in batches not yet released */
	uint64_t spans, bytes, lost;
	uint64_t doorbells;
	char reason[192];       /* why quarantined */
};

/* ---- batches ------------------------------------------------------------ */

/* A run of consecutive span records of one producer, slot and scope. */
struct batch_seg {
	struct agent_producer *p;
	const struct scope_ent *scope;
	const uint8_t *ptr; /* into ring memory (mirror mapping) */
	uint32_t len;
	uint32_t nspans;
	uint32_t order;
	uint32_t slot;
};

struct batch_chunkref {
	struct agent_producer *p;
	uint32_t slot;
	uint64_t seq;
};

enum batch_iov_kind {
	BATCH_IOV_FRAME = 0, /* tags and lengths written by the agent */
	BATCH_IOV_RESOURCE,  /* the agent's copy of a producer's Resource */
	BATCH_IOV_SCOPE,     /* the agent's copy of a scope entry body */
	BATCH_IOV_SPANS,     /* span records, in ring memory */
};

struct batch {
	struct agent *ag;
	struct batch *next_free;
	uint64_t seq;
	uint32_t refs;
	uint64_t created_ns;
	uint64_t spans, span_bytes;
	struct batch_seg *segs;
	size_t nsegs, cap_segs;
	struct batch_chunkref *chunks;
	size_t nchunks, cap_chunks;
	/* Built by batch_finalize(); read-only afterwards. iov[0] is the
	 * varint length of the message (for length-delimited outputs), the
	 * message itself is iov[1 .. niov). */
	uint8_t *frame;
	size_t frame_cap;
	struct iovec *iov;
	uint8_t *iov_kind;
	size_t niov, cap_iov;
	uint64_t *glen; /* scratch: lengths of the groups */
	size_t cap_glen;
	size_t msg_len;
	uint32_t n_resource_spans, n_scope_spans;
	bool finalized;
};

/* ---- the agent ------------------------------------------------------------ */

struct agent_stats {
	uint64_t accepted, registered, rejected, quarantined, closed;
	uint64_t rejected_by_reason[16];
	uint64_t polls, doorbells, drain_passes;
	uint64_t batches, spans, bytes, empty_batches;
	uint64_t zc_iov_checked, zc_violations;
	uint64_t paused_inflight; /* drain rounds skipped for max_inflight_batches */
	uint64_t sleeps;      /* times every ring was armed and the agent slept */
	uint64_t wakeups;     /* doorbells that woke a sleeping agent */
	uint64_t spurious;    /* ... of which found nothing new */
	uint64_t membarriers; /* membarrier() calls (one per sleep attempt) */
	/* drops counted by producers that have exited (their rings are gone):
	 * the agent-wide totals add the live producers' counters */
	uint64_t gone_drop_full, gone_drop_oversize, gone_drop_encode;
};

/* How the agent learns of a commit (see core.c and docs/ABI.md). */
enum agent_wake_mode {
	AGENT_WAKE_POLL = 0,       /* no membarrier(MEMBARRIER_CMD_GLOBAL): poll */
	AGENT_WAKE_MEMBARRIER = 1, /* sleep with need_wakeup set in every ring */
};

struct ctl_conn;
struct http_conn;

struct agent {
	struct agent_config *cfg;
	struct loop loop;
	int listen_fd;
	struct loop_watch listen_w;
	int ctl_fd;
	struct loop_watch ctl_w;
	int metrics_fd;
	struct loop_watch metrics_w;
	int sig_fd;
	struct loop_watch sig_w;
	struct loop_timer poll_t, house_t; /* poll_t: the next scan of every ring */
	uint64_t poll_us;     /* interval to the next scan when polling */
	int wake_mode;        /* enum agent_wake_mode */
	bool armed;           /* asleep: every ring armed, no scan scheduled */
	bool arming;          /* need_wakeup stored (E), membarrier in flight */
	uint64_t arm_t0;      /* when E began */
	/* The membarrier runs on a helper thread (it takes milliseconds; the
	 * loop keeps serving meanwhile): mb_req wakes it, mb_done reports. */
	int mb_req, mb_done;  /* pipes: request numbers out, answers back */
	uint64_t mb_seq;      /* the last request's number */
	bool mb_busy;         /* a request is being served */
	bool mb_want;         /* ... and E was stored again since it was made */
	struct loop_watch mb_w;
	int mb_fds[2];        /* the helper's ends of the pipes */
	pthread_t mb_th;
	bool mb_thread;
	bool accept_paused;   /* out of fds: accepting resumes at housekeeping */
	bool drain_complete;  /* the last agent_drain_all() visited every ring */
	uint64_t seen_ns;     /* every span committed before this was walked */
	uint64_t scan_ns;     /* start of the last scan */
	uint64_t cur_deadline_ns; /* the current batch goes out by then */
	uint64_t shipped_at_scan; /* batches shipped when the last scan ended */
	struct agent_producer *producers;
	uint32_t n_producers; /* registered (not pending) */
	uint32_t n_pending;
	uint64_t next_producer_id;
	struct exporter *exp[AGENT_MAX_EXPORTERS];
	size_t n_exp;
	struct exp_host xhost; /* what the exporters are lent (exporters.c) */
	struct batch *cur;
	struct batch *free_batches;
	uint64_t next_batch_seq;
	uint32_t inflight_batches;
	char host_name[256];
	char host_id[128];  /* host_id, else /etc/machine-id; "" when unknown */
	bool stopping;
	bool ready;       /* listening and every exporter constructed (/readyz) */
	bool exit_now;
	bool no_release;  /* exiting: unreferenced batches do not move tails */
	uint64_t stop_deadline_ns;
	uint64_t start_ns, start_wall_ns;
	struct agent_stats st;
	struct ctl_conn *ctl_conns;
	struct http_conn *http_conns;
	/* Why the last start-up step failed (a socket, an output file),
	 * naming the path; empty when nothing said more than an errno. */
	char err[512];
	/* test hook: observe every finished batch before the exporters */
	void (*on_batch)(struct agent *ag, struct batch *b);
};

/* core.c */
/* Set up the agent without any socket (unit tests) or with them (run). */
int agent_init(struct agent *ag, struct agent_config *cfg, bool with_sockets);
void agent_fini(struct agent *ag);
/* Run until SIGTERM/SIGINT has been handled. Returns the exit status. */
int agent_run(struct agent *ag);
/* Begin the orderly shutdown (what SIGTERM does). */
void agent_stop(struct agent *ag);
/* Drain every active ring into the current batch. Returns bytes walked;
 * ag->drain_complete tells whether every ring was visited. */
uint64_t agent_drain_all(struct agent *ag);
/* Finish the current batch and hand it to every exporter. */
void agent_flush(struct agent *ag);
/* The batch being filled, created (and its age timer armed) if needed.
 * NULL only when out of memory. */
struct batch *agent_batch(struct agent *ag);
/* Probe membarrier(MEMBARRIER_CMD_GLOBAL), choose ag->wake_mode, log it. */
void agent_wake_setup(struct agent *ag);
/* Make sure every ring is scanned within us microseconds. */
void agent_poll_soon(struct agent *ag, uint64_t us);
/* The producer's connection ended: drain it one last time. */
void agent_producer_closed(struct agent_producer *p);
/* The producer rang its doorbell. */
void agent_on_doorbell(struct agent *ag, struct agent_producer *p);
/* SIGHUP: reopen every exporter's output. */
void agent_reopen(struct agent *ag);
/* Bind a listening unix socket (stale file replaced, live one refused);
 * what names it in the message left in err ("control socket"). */
int agent_unix_listen(const char *path, const char *what, int type, unsigned mode, int *out_fd,
		      char *err, size_t errlen);

/* exporters.c: the core's side of agent/export/exporter.h */
/* Fill ag->xhost (agent_init). */
void agent_exp_host_init(struct agent *ag);
int agent_add_exporter(struct agent *ag, struct exporter *e);
/* Create the exporters the configuration enables. 0 or -errno. */
int agent_exporters_from_config(struct agent *ag);

/* registry.c */
int registry_listen(struct agent *ag);
void registry_close_listener(struct agent *ag);
/* At stop: accept the connections already queued and read the requests
 * already sent, adopting those rings (never waits). */
void registry_admit_queued(struct agent *ag);
/* Make sure housekeeping (house_t) runs by when_ns: registration
 * deadlines, control and metrics connection timeouts. */
void agent_house_arm(struct agent *ag, uint64_t when_ns);
/*
 * Validate and adopt the ring behind fd for a peer (the socket path calls
 * this after reading the request; unit tests call it directly). On success
 * *out is an ACTIVE producer in ag's list and fd belongs to it; otherwise
 * returns a SPANRING_REG_E* reason with *why set and fd is untouched.
 */
int registry_adopt(struct agent *ag, int fd, uint64_t req_size, pid_t pid, uid_t uid,
		   gid_t gid, bool reconnect, struct agent_producer **out, const char **why);
/* What a ring counts for in its uid's max_mapped_per_uid beyond its size:
 * the most its scope copies may cost (entries of at least 8 bytes that do
 * not overlap: 9 times its table, at most max_scope_bytes). */
uint64_t registry_scope_reserve(const struct agent *ag, const struct sr_layout *l);
/* Mark p for freeing if its connection is gone and nothing references its
 * ring; registry_reap() frees it where no caller holds pointers. */
void registry_maybe_free(struct agent_producer *p);
void registry_reap(struct agent *ag);
void registry_free(struct agent_producer *p);
/* Close connections that did not register in time. */
void registry_housekeeping(struct agent *ag);
const char *registry_reason_name(int status);
/* The log level of a failed registration reply (-errno): debug when the
 * producer hung up after sending its ring (EPIPE, ECONNRESET: it exited at
 * once, its ring is drained as usual), a warning for anything else. */
int registry_reply_failure_level(int err);
void producer_quarantine(struct agent_producer *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* drain.c */
/* Drain every slot of p into ag->cur. Returns bytes walked or -EPROTO. */
int64_t drain_producer(struct agent *ag, struct agent_producer *p);
/* Find or validate-and-cache the scope entry at off. NULL with *why. */
const struct scope_ent *drain_scope_lookup(struct agent_producer *p, uint64_t off,
					   const char **why);
/* Release the chunk seq of slot i: advance tail over the released prefix. */
void drain_chunk_release(struct agent_producer *p, uint32_t i, uint64_t seq);
/* Some slot of p holds at least its doorbell watermark of bytes the agent
 * has not released (head loaded now, the agent's own tail). */
bool drain_producer_above_watermark(const struct agent_producer *p);
/* Sum of the producer-side drop counters of every slot. */
uint64_t drain_producer_drops(const struct agent_producer *p);

/* batch.c */
struct batch *batch_new(struct agent *ag);
void batch_ref(struct batch *b);
void batch_unref(struct batch *b);
/* Append span records [ptr, ptr+len) (nspans of them) to b. 0 or -ENOMEM. */
int batch_add_spans(struct batch *b, struct agent_producer *p, uint32_t slot,
		    const struct scope_ent *scope, const uint8_t *ptr, uint32_t len,
		    uint32_t nspans);
/* Record that b holds slot bytes up to `end` (scope at end). 0 or -ENOMEM. */
int batch_add_chunk(struct batch *b, struct agent_producer *p, uint32_t slot, uint64_t end,
		    uint64_t scope_at_end);
/* Build the framing and the iovecs. 0 or -ENOMEM. */
int batch_finalize(struct batch *b);
void batch_pool_free(struct agent *ag);
/* Bytes of request iov[1..] (== msg_len) and helpers for exporters. */
static inline const struct iovec *batch_msg_iov(const struct batch *b, size_t *n)
{
	*n = b->niov - 1;
	return b->iov + 1;
}

/* ctl.c: control socket; metrics.c: stats as JSON and Prometheus text */
int ctl_listen(struct agent *ag);
void ctl_close(struct agent *ag);
/* Close connections past their time limits (every second). */
void ctl_housekeeping(struct agent *ag);
int metrics_listen(struct agent *ag);
void metrics_close(struct agent *ag);
void metrics_housekeeping(struct agent *ag);
struct sbuf;
/* only_uid >= 0: the producers of that uid only (a non-root caller). */
void stats_json(struct agent *ag, struct sbuf *out, int64_t only_uid);
void stats_rings_json(struct agent *ag, struct sbuf *out, int64_t only_uid);
void stats_prometheus(struct agent *ag, struct sbuf *out);

/* zc.c: the zero-copy proof */
/*
 * Check that every BATCH_IOV_SPANS entry of iov[0..n) lies inside the data
 * mapping of a registered ring, that no other entry does, and that the
 * span entries add up to span_bytes (not checked when UINT64_MAX). Counts into ag->st; returns the
 * number of violations (0 = proven zero-copy).
 */
size_t zc_check_iov(struct agent *ag, const struct iovec *iov, const uint8_t *kind, size_t n,
		    uint64_t span_bytes);

/* res_rewrite.c */
/* What the agent verified about a producer: it replaces the producer's own
 * claims in the Resource (NULL or "" strings: unknown, attribute absent). */
struct res_identity {
	pid_t pid;                /* SO_PEERCRED */
	uid_t uid;                /* SO_PEERCRED: the effective uid */
	const char *host_name;    /* the agent's host_name */
	const char *host_id;      /* the agent's host_id (/etc/machine-id) */
	const char *container_id; /* from the peer's cgroup (registry.c) */
};
/*
 * Decode the producer's Resource (len bytes), drop every attribute the
 * agent sets or refuses to pass on (agent_resource_key_reserved: process
 * pid and user, host.*, container.id, real and saved user), add the
 * verified ones from id and encode it into *out (malloc'd). service
 * (svclen) receives service.name. 0, -EBADMSG (does not decode) or -ENOMEM.
 */
int agent_resource_rewrite(const uint8_t *in, size_t len, const struct res_identity *id,
			   uint8_t **out, size_t *out_len, char *service, size_t svclen);
bool agent_resource_key_reserved(const char *key);
/* The container id (64 hex digits) in a /proc/PID/cgroup text (n bytes):
 * the last one of the last line that has one; false when there is none. */
bool agent_cgroup_container_id(const char *text, size_t n, char out[65]);

#endif
