/* SPDX-License-Identifier: MIT */
/* File descriptors over Unix sockets (see fdpass.h). */
#include "fdpass.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Control-message buffer for SR_FDPASS_MAX descriptors, aligned as a
 * cmsghdr must be. */
union fd_cmsg {
	struct cmsghdr h;
	char buf[CMSG_SPACE(SR_FDPASS_MAX * sizeof(int))];
};

ssize_t sr_fd_send(int s, const void *buf, size_t n, const int *fds, size_t nfds, int flags)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	union fd_cmsg cm;
	if (nfds > SR_FDPASS_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (nfds) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	ssize_t r;
	do
		r = sendmsg(s, &mh, flags);
	while (r < 0 && errno == EINTR);
	return r;
}

/* Collect the descriptors of every SCM_RIGHTS message of mh into m;
 * any beyond SR_FDPASS_MAX (there is no room for them) are closed. */
static void fd_collect(struct msghdr *mh, struct sr_fd_msg *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0)) {
			m->foreign = true;
			continue;
		}
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t j = 0; j < k; j++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
			if (m->nfds < SR_FDPASS_MAX)
				m->fds[m->nfds++] = fd;
			else
				close(fd);
		}
	}
}

ssize_t sr_fd_recv(int s, void *buf, size_t n, size_t max, int flags, struct sr_fd_msg *m)
{
	struct iovec iov = {.iov_base = buf, .iov_len = n};
	union fd_cmsg cm;
	if (max > SR_FDPASS_MAX)
		max = SR_FDPASS_MAX;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			    .msg_controllen = CMSG_SPACE(max * sizeof(int))};
	ssize_t r;
	m->nfds = 0;
	m->flags = 0;
	m->foreign = false;
	do
		r = recvmsg(s, &mh, flags | MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r >= 0) {
		m->flags = mh.msg_flags;
		fd_collect(&mh, m);
	}
	return r;
}
