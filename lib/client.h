/* SPDX-License-Identifier: MIT */
/*
 * Producer-side registration with the agent (lib/client.c).
 *
 * The producer core (lib/producer.c) creates the ring, writes its header
 * and Resource, sets SPANRING_HDR_F_INITIALIZED and calls
 * sr_client_start(). From then on the client owns the connection: it
 * registers in the background (never blocking the caller), reconnects to a
 * restarted agent with backoff, and publishes the doorbell eventfd in
 * sr_doorbell_fd. None of this is on the hot path; the hot path only loads
 * sr_doorbell_fd when a slot crosses its watermark.
 */
#ifndef SPANRING_LIB_CLIENT_H
#define SPANRING_LIB_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "ring.h"

/* Doorbell eventfd from the agent, or -1. Read with ck_pr_load_int(). */
SR_HIDDEN extern int sr_doorbell_fd;

/*
 * The agent's socket path: --socket of the agent / $SPANRING_SOCKET, else
 * /run/spanring/agent.sock for uid 0, else $XDG_RUNTIME_DIR/spanring.sock,
 * else /tmp/spanring-<uid>.sock. Writes into buf; returns buf or NULL if it
 * does not fit. Shared with the agent and the tools.
 */
SR_HIDDEN const char *sr_socket_path(char *buf, size_t n);

/* Start background registration of ring m (kept by pointer). Idempotent. */
SR_HIDDEN void sr_client_start(struct sr_map *m);

/* Wait up to timeout_ms until the agent has acknowledged the ring.
 * 0, -ETIMEDOUT, or -ENOTCONN when no agent could be reached. */
SR_HIDDEN int sr_client_flush(int timeout_ms);

SR_HIDDEN bool sr_client_registered(void);

/* In a forked child: forget the parent's connection (close its fds; the
 * background thread does not exist in the child). The producer core then
 * builds a new ring and calls sr_client_start() again. */
SR_HIDDEN void sr_client_atfork_child(void);

/* Stop the background thread (at exit/shutdown). */
SR_HIDDEN void sr_client_stop(void);

#endif
