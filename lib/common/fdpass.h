/* SPDX-License-Identifier: MIT */
/*
 * Passing file descriptors over a Unix socket (SCM_RIGHTS): the producer
 * sends its ring's memfd to the agent and gets an eventfd back, the agent's
 * control socket hands spanring-dump a read-only ring, and the tests play
 * either side. One sender and one receiver for all of them.
 */
#ifndef SPANRING_COMMON_FDPASS_H
#define SPANRING_COMMON_FDPASS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Most descriptors one message carries either way. */
#define SR_FDPASS_MAX 8

/*
 * sendmsg(2) of buf[0..n) on s with the nfds (<= SR_FDPASS_MAX) descriptors
 * of fds attached (no control message when nfds is 0). flags go to
 * sendmsg (MSG_NOSIGNAL, MSG_DONTWAIT are the caller's choice); EINTR is
 * retried. Returns what sendmsg returned: the bytes sent, or -1 with errno.
 *
 * Async-signal-safe, and must stay so: the producer sends its final
 * registration from a forked child of a multithreaded process
 * (sr_client_register_final(), docs/DESIGN-NOTES.md "Fork"). No allocation,
 * no stdio, no locks; errno changes only when -1 is returned.
 */
ssize_t sr_fd_send(int s, const void *buf, size_t n, const int *fds, size_t nfds, int flags);

/* What sr_fd_recv() received besides the bytes. */
struct sr_fd_msg {
	int fds[SR_FDPASS_MAX]; /* the descriptors, in order: the caller's to close */
	size_t nfds;
	int flags;    /* recvmsg's msg_flags: MSG_TRUNC, MSG_CTRUNC (descriptors dropped) */
	bool foreign; /* a control message other than SCM_RIGHTS came along (ignored) */
};

/*
 * recvmsg(2) of up to n bytes into buf on s, with room for max
 * (<= SR_FDPASS_MAX) descriptors, rounded up to the control buffer's
 * alignment (an odd max takes one more on 64-bit); more are dropped by
 * the kernel, which sets MSG_CTRUNC. flags go to recvmsg, MSG_CMSG_CLOEXEC added; EINTR is
 * retried. Returns what recvmsg returned. m is filled whatever the result:
 * descriptors can come with an empty message, and must be closed then too.
 */
ssize_t sr_fd_recv(int s, void *buf, size_t n, size_t max, int flags, struct sr_fd_msg *m);

#endif
