/* SPDX-License-Identifier: MIT */
/*
 * sr-squat PATH OUT: a listener that poses as the agent (docs/SECURITY.md
 * R1, R3). It binds a SOCK_SEQPACKET socket at PATH (mode 0777, so that
 * anybody can connect), accepts every connection, reads every message,
 * never answers, and counts the descriptors it was sent. On SIGTERM it
 * writes "connections=N fds=M" to OUT and exits 0. Run under another uid
 * by the tests (setpriv).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdpass.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: sr-squat PATH OUT\n");
		return 2;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(argv[1]) >= sizeof(sa.sun_path))
		return 2;
	strcpy(sa.sun_path, argv[1]);
	int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	unlink(argv[1]);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 64) < 0) {
		fprintf(stderr, "sr-squat: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	chmod(argv[1], 0777);
	struct sigaction act;
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_term;
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct pollfd pf[257];
	int n = 1;
	long conns = 0, fds = 0;
	pf[0].fd = l;
	pf[0].events = POLLIN;
	while (!stop) {
		if (poll(pf, (nfds_t)n, 100) <= 0)
			continue;
		if ((pf[0].revents & POLLIN) && n < 257) {
			int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0) {
				conns++;
				pf[n].fd = c;
				pf[n].events = POLLIN;
				n++;
			}
		}
		for (int i = 1; i < n; i++) {
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[512];
			struct sr_fd_msg m;
			ssize_t r = sr_fd_recv(pf[i].fd, buf, sizeof(buf), 8, MSG_DONTWAIT, &m);
			if (r > 0) {
				fds += (long)m.nfds;
				continue; /* keep the fds open: the ring stays ours */
			}
			if (r == 0 || errno != EAGAIN) {
				close(pf[i].fd);
				pf[i--] = pf[--n];
			}
		}
	}
	FILE *f = fopen(argv[2], "w");
	if (!f)
		return 1;
	fprintf(f, "connections=%ld fds=%ld\n", conns, fds);
	fclose(f);
	unlink(argv[1]);
	return 0;
}
