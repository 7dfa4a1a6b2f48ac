/* SPDX-License-Identifier: MIT */
/*
 * Where the agent's socket is (docs/ABI.md 13.1): the one set of rules for
 * the agent (where it listens), the producer (where it registers) and the
 * tools (where they ask). $SPANRING_SOCKET, else the system socket, else a
 * per-user path whose directory must be private to the uid.
 */
#ifndef SPANRING_COMMON_SOCKPATH_H
#define SPANRING_COMMON_SOCKPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

/* The system agent's socket. */
#define SR_SYSTEM_SOCKET "/run/spanring/agent.sock"

/* Room for a socket path, with its NUL (a unix address's sun_path). */
#define SR_SOCKPATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* Why SPANRING_SOCKET's value v cannot be used, or NULL. */
const char *sr_sockpath_env_bad(const char *v);

/* The per-user path (for a uid other than 0): $XDG_RUNTIME_DIR/spanring.sock,
 * else (*tmp_dir set) /tmp/spanring-<uid>/agent.sock, whose directory is
 * ours to create (sr_agent_socket_path). False if it does not fit. */
bool sr_sockpath_user(char *buf, size_t n, bool *tmp_dir);

/*
 * Is the directory of path private to us: a directory (a symbolic link
 * to one only if follow) owned by the effective uid, without any
 * permission for group and others? Async-signal-safe (stat, lstat): the
 * producer checks it before every connect, also in a forked child.
 */
bool sr_sockpath_dir_private(const char *path, bool follow);

/*
 * Where a client (the tools) finds the agent: $SPANRING_SOCKET (NULL if
 * it is not an absolute path that fits a unix address), else
 * SR_SYSTEM_SOCKET for uid 0, in secure-execution mode or when that
 * socket exists, else the per-user path. Writes into buf; returns buf or
 * NULL if it does not fit. The producer's client (lib/client.c) tries
 * SR_SYSTEM_SOCKET, then the per-user path, at every attempt.
 */
const char *sr_socket_path(char *buf, size_t n);

/*
 * Where the agent listens by default: $SPANRING_SOCKET, else
 * SR_SYSTEM_SOCKET for uid 0, else the per-user path. The directory
 * /tmp/spanring-<uid> is created (0700); the per-user path's directory
 * must be private to the uid (owned by it, mode 0700). NULL with *why set
 * when it cannot be used.
 */
const char *sr_agent_socket_path(char *buf, size_t n, const char **why);

#endif
