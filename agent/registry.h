/* SPDX-License-Identifier: MIT */
/*
 * Producers (registry.c): the registration socket, the checks before a
 * ring is mapped, the adoption of a ring and the end of a producer. A
 * producer is the registry's: it creates, quarantines and frees it; the
 * drain owns its slots' consumer state, the scope cache its copies of
 * scope entries.
 */
#ifndef SPANRING_AGENT_REGISTRY_H
#define SPANRING_AGENT_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"
#include "ring.h"
#include "scope_cache.h"

struct agent;
struct drain_slot;

enum producer_state {
	PROD_PENDING = 0,  /* connected, request not yet received */
	PROD_ACTIVE,       /* registered, drained */
	PROD_QUARANTINED,  /* broke the ABI: no longer read, connection kept */
};

struct agent_producer {
	struct agent *ag;
	struct agent_producer *next, *prev;
	uint64_t id;
	enum producer_state state;
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
	bool mb_expedited;    /* (ABI 1.3) its process is registered for
				 MEMBARRIER_CMD_GLOBAL_EXPEDITED, it says */
	struct drain_slot *slots;
	uint8_t *resource;      /* agent-rewritten Resource message */
	size_t resource_len;
	char service[128];      /* service.name from the resource */
	char container_id[65];  /* from its cgroup at accept; "" when none */
	struct scope_cache scopes;
	uint64_t inflight_chunks;
	uint64_t inflight_spans;  /* its spans in batches not yet released */
	uint64_t spans, bytes, lost;
	uint64_t doorbells;
	char reason[192];       /* why quarantined */
};

/*
 * What the registry reports to the core, which installs these in
 * agent_init(): the registry never calls the core itself.
 */
struct registry_events {
	/* p registered: spans written before registration are waiting */
	void (*registered)(struct agent_producer *p);
	/* p's connection ended (or its reply failed): its heads are final */
	void (*closed)(struct agent_producer *p);
	/* p rang its doorbell */
	void (*doorbell)(struct agent_producer *p);
};

int registry_listen(struct agent *ag);
void registry_close_listener(struct agent *ag);
/* At stop: accept the connections already queued and read the requests
 * already sent, adopting those rings (never waits). */
void registry_admit_queued(struct agent *ag);
/*
 * Validate and adopt the ring behind fd for a peer (the socket path calls
 * this after reading the request; unit tests call it directly). On success
 * *out is an ACTIVE producer in ag's list and fd belongs to it; otherwise
 * returns a SPANRING_REG_E* reason with *why set and fd is untouched.
 */
int registry_adopt(struct agent *ag, int fd, uint64_t req_size, pid_t pid, uid_t uid,
		   gid_t gid, bool reconnect, struct agent_producer **out, const char **why);
/* What a ring counts for in its uid's max_mapped_per_uid beyond its size:
 * the most its scope copies may cost (scope_cache_reserve). */
uint64_t registry_scope_reserve(const struct agent *ag, const struct sr_layout *l);
/* Mark p for freeing if its connection is gone and nothing references its
 * ring; registry_reap() frees it where no caller holds pointers. */
void registry_maybe_free(struct agent_producer *p);
void registry_reap(struct agent *ag);
void registry_free(struct agent_producer *p);
/* Stop watching and close p's connection and doorbell (either may be gone). */
void registry_close_conn(struct agent_producer *p);
/* Close connections that did not register in time. */
void registry_housekeeping(struct agent *ag);
const char *registry_reason_name(int status);
/* The log level of a failed registration reply (-errno): debug when the
 * producer hung up after sending its ring (EPIPE, ECONNRESET: it exited at
 * once, its ring is drained as usual), a warning for anything else. */
int registry_reply_failure_level(int err);
void producer_quarantine(struct agent_producer *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Bind a listening unix socket (stale file replaced, live one refused);
 * what names it in the message left in err ("control socket"). */
int agent_unix_listen(const char *path, const char *what, int type, unsigned mode, int *out_fd,
		      char *err, size_t errlen);

#endif
