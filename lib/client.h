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

/* Doorbell eventfd from the agent, or -1. Stored with sr_store_int()
 * (release) in client.c, cl_install_doorbell() and where the connection
 * ends; read with sr_load_int() (acquire) in sr_doorbell_check() and
 * sr_wake_agent() (producer.c) and by the shim (pl_proc.c), which pair
 * with those stores. */
SR_HIDDEN extern int sr_doorbell_fd;

/* Start background registration of ring m (kept by pointer). Idempotent. */
SR_HIDDEN void sr_client_start(struct sr_map *m);

/* Wait up to timeout_ms until the agent has acknowledged the ring.
 * 0, -ETIMEDOUT, or -ENOTCONN when no agent could be reached. */
SR_HIDDEN int sr_client_flush(int timeout_ms);

SR_HIDDEN bool sr_client_registered(void);

/* Is the background registration thread running (one thread of ours)? */
SR_HIDDEN bool sr_client_thread_alive(void);

/*
 * Deferred registration (the LD_PRELOAD shim: most traced processes are
 * short and make one span). After sr_client_defer(), sr_client_start()
 * only records the ring: no thread, no connection. The ring is then
 * registered either by the background thread, which
 * sr_client_start_deferred() starts (the producer core calls it when a
 * thread makes its first span), or, if the process ends first, by
 * sr_client_register_final(): one connection from the calling thread
 * with SPANRING_REG_F_NOREPLY, nothing awaited, the connection left open
 * until exit or exec closes it. sr_client_flush() does the latter on a
 * ring still deferred. sr_client_register_final() is async-signal-safe
 * (socket, connect, sendmsg, nanosleep; no lock, no allocation): a fatal
 * signal's handler may call it. 0 when the ring was sent (now or by an
 * earlier call), -ENOTCONN without an agent (now or before),
 * -EINPROGRESS while another call is sending it (a signal that
 * interrupted it), -EALREADY when the thread owns the registration (or
 * registration is not deferred): then wait for the thread instead.
 */
SR_HIDDEN void sr_client_defer(void);
/* While non-zero in a thread, its first span does not start the thread
 * (the shim's own process span, committed as the process ends). */
SR_HIDDEN extern __thread int sr_client_hold;
SR_HIDDEN bool sr_client_deferred(void);
SR_HIDDEN void sr_client_start_deferred(void);
SR_HIDDEN int sr_client_register_final(int timeout_ms);

/* In a forked child: forget the parent's connection (close its fds; the
 * background thread does not exist in the child). The producer core then
 * builds a new ring and calls sr_client_start() again. restricted: the
 * child of a multithreaded process (lib/producer.c, "Fork"): from now on
 * no thread is started; a ring is registered from the calling thread
 * with the final registration, and offered again at the end if no agent
 * took it. Async-signal-safe. */
SR_HIDDEN void sr_client_atfork_child(bool restricted);

/* Fork prepare handler (producer core): resolves the socket path if no
 * ring has yet, so that a restricted child need not. */
SR_HIDDEN void sr_client_atfork_prepare(void);

/* Is the registration thread in its loop, where it allocates nothing and
 * takes no lock but ours (a fork need not count it as another thread)? */
SR_HIDDEN bool sr_client_thread_quiet(void);

/* Stop the background thread (at exit/shutdown). */
SR_HIDDEN void sr_client_stop(void);

/* Start the background thread again after sr_client_stop(), deferred
 * registration or not (the shim stops it around unshare and setns). */
SR_HIDDEN void sr_client_restart(struct sr_map *m);

#endif
