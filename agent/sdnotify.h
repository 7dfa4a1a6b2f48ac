/* SPDX-License-Identifier: MIT */
/*
 * The systemd notification protocol (sd_notify(3)) without libsystemd:
 * datagrams on the unix socket named by $NOTIFY_SOCKET (a path, or an
 * abstract name starting with '@'). READY=1 once the agent serves,
 * WATCHDOG=1 every half of $WATCHDOG_USEC (when $WATCHDOG_PID is unset or
 * names this process), STOPPING=1 at shutdown. Without $NOTIFY_SOCKET
 * every call does nothing.
 */
#ifndef SPANRING_AGENT_SDNOTIFY_H
#define SPANRING_AGENT_SDNOTIFY_H

#include <stdint.h>

struct agent;

/* Send one notification ("READY=1\nSTATUS=..."). 1 sent, 0 no socket, -errno. */
int sd_notify_send(const char *msg);
/* READY=1 and, when systemd asks for it, the watchdog timer on ag's loop. */
void sd_notify_ready(struct agent *ag);
/* STOPPING=1 and the watchdog timer cancelled. */
void sd_notify_stopping(struct agent *ag);
/* The watchdog interval asked for ($WATCHDOG_USEC), 0 when none. */
uint64_t sd_watchdog_usec(void);

#endif
