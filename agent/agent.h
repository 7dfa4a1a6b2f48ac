/* SPDX-License-Identifier: MIT */
/*
 * spanring-agent: the agent's state (struct agent) and the core (core.c),
 * which owns the scans, the current batch and the shutdown.
 *
 * Calls go one way: core -> registry -> drain -> batch -> exporters (and
 * every module -> the chunk queue, scope cache, loop, log, config below
 * them). What flows back up does so as return values (a drain pass that
 * filled its batch, a ring that broke the ABI) or as events the core
 * applies: batches done (batch_take_done) and the registry's events
 * (struct registry_events).
 *
 * Everything runs on one thread (the event loop). Shared memory is read
 * through the producer's mapping only in drain.c, scope_cache.c and
 * registry.c, each value once into a local and validated before use; what
 * the agent writes to the ring (tail, scope_at_tail, the consumer header)
 * is never read back from shared memory: the agent keeps its own copy.
 *
 * Exporters do not include this header (nor any core module's): they see
 * the batches they are handed (batch.h) and what struct exp_host lends
 * them (agent/export/exporter.h).
 */
#ifndef SPANRING_AGENT_AGENT_H
#define SPANRING_AGENT_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "batch.h"
#include "config.h"
#include "exporter.h"
#include "loop.h"
#include "registry.h"
#include "ring.h"
#include "scope_cache.h"
#include "version.h"

#define AGENT_MAX_EXPORTERS 64 /* INST_MAX */

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
	uint64_t membarriers_expedited; /* ... of which MEMBARRIER_CMD_GLOBAL_EXPEDITED */
	uint64_t drain_nomem; /* drains that stopped short for memory */
	/* drops counted by producers that have exited (their rings are gone):
	 * the agent-wide totals add the live producers' counters */
	uint64_t gone_drop_full, gone_drop_oversize, gone_drop_encode;
};

/* How the agent learns of a commit (see core.c and docs/ABI.md). */
enum agent_wake_mode {
	AGENT_WAKE_POLL = 0,       /* no membarrier(MEMBARRIER_CMD_GLOBAL): poll */
	AGENT_WAKE_MEMBARRIER = 1, /* sleep with need_wakeup set in every ring */
};

struct agent_producer;
struct ctl_conn;
struct http_conn;
struct registry_events;

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
	enum agent_wake_mode wake_mode;
	bool mb_expedited;    /* the kernel offers MEMBARRIER_CMD_GLOBAL_EXPEDITED */
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
	bool cur_timed;       /* cur's deadline is set (cur_deadline_ns) */
	/* batch.c's lists: batches to reuse, and batches no one references
	 * any more whose chunks the core has not given back yet */
	struct batch *free_batches, *done_batches;
	uint64_t next_batch_seq;
	uint32_t inflight_batches; /* made and not yet recycled */
	char host_name[256];
	char host_id[128];  /* host_id, else /etc/machine-id; "" when unknown */
	bool stopping;
	bool ready;       /* listening and every exporter constructed (/readyz) */
	bool exit_now;
	bool no_release;  /* exiting: unreferenced batches do not move tails */
	uint64_t stop_deadline_ns;
	uint64_t start_ns, start_wall_ns;
	struct agent_stats st;
	const struct registry_events *reg_ev; /* set by agent_init */
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
/* Give the ring bytes of every done batch back to their slots and recycle
 * the batches (what batch_unref left on the done list). The loop does it
 * after every callback (loop.after), the core after it ships or flushes;
 * a caller that drops references outside the loop (tests) does it itself. */
void agent_settle(struct agent *ag);
/* Probe membarrier(MEMBARRIER_CMD_GLOBAL), choose ag->wake_mode, log it. */
void agent_wake_setup(struct agent *ag);
/* Make sure every ring is scanned within us microseconds. */
void agent_poll_soon(struct agent *ag, uint64_t us);
/* exporters.c: the core's side of agent/export/exporter.h */
/* Fill ag->xhost (agent_init). */
void agent_exp_host_init(struct agent *ag);
int agent_add_exporter(struct agent *ag, struct exporter *e);
/* Create the exporters the configuration enables. 0 or -errno. */
int agent_exporters_from_config(struct agent *ag);
/* SIGHUP: reopen every exporter's output. */
void agent_reopen(struct agent *ag);
/* What the core does for the registry's events (struct registry_events):
 * the producer's connection ended (drain it one last time), it rang its
 * doorbell. */
void agent_producer_closed(struct agent_producer *p);
void agent_on_doorbell(struct agent *ag, struct agent_producer *p);

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
