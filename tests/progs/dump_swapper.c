/* SPDX-License-Identifier: MIT */
/*
 * A hostile process for spanring-dump's /proc reader (SECURITY.md R8):
 * it holds a real ring (memfd "spanring-test") at fd RINGFD and keeps
 * swapping other files onto that fd number with dup2, as fast as it can,
 * so that a reader that looks at the link (readlinkat) and then opens it
 * meets the other file:
 *
 *   - a FIFO opened read-only with no writer: a blocking open for reading
 *     waits for a writer forever;
 *   - /dev/null (a character device), a directory, a regular file, a
 *     socket, and a memfd that is no ring (named "decoy").
 *
 *   dump_swapper DIR [KINDS [NFDS]]
 *       DIR: where to create the FIFO and the regular file. KINDS: "all"
 *       (the default) or a subset of "fifo,chr,dir,reg,sock,memfd". NFDS
 *       (default 16): swap fds RINGFD .. RINGFD+NFDS-1, each a chance per
 *       reader's scan to hit the window. The ring keeps its first fd too
 *       (to be put back from), so a reader always finds it there. Prints
 *       "ready RINGFD" and swaps until SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testring.h"

#define RINGFD 200

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static bool want(const char *kinds, const char *k)
{
	if (!kinds)
		return true;
	size_t n = strlen(k);
	for (const char *p = kinds; (p = strstr(p, k)); p += n)
		if ((p == kinds || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: dump_swapper DIR [KINDS]\n");
		return 2;
	}
	const char *dir = argv[1], *kinds = argc > 2 && strcmp(argv[2], "all") ? argv[2] : NULL;
	uint8_t res[256];
	size_t res_len = tr_encode_resource(res, "swapper", false);
	struct tr t;
	if (tr_create(&t, 2, 64 * 1024, res, res_len)) {
		fprintf(stderr, "dump_swapper: cannot create the ring\n");
		return 1;
	}
	int nfds = argc > 3 ? atoi(argv[3]) : 16;
	if (nfds < 1 || nfds > 64)
		nfds = 16;
	/* The ring's own fd stays (we need it to put the ring back), so a
	 * reader always finds the ring there, and meets anything at RINGFD. */
	int ring = t.m.fd;
	int decoy[8], nd = 0;
	char p[4096];
	if (want(kinds, "fifo")) {
		snprintf(p, sizeof(p), "%s/swap.fifo", dir);
		if (mkfifo(p, 0666) && errno != EEXIST)
			return 1;
		/* Read end only, no writer anywhere: a blocking O_RDONLY open waits. */
		decoy[nd++] = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	}
	if (want(kinds, "chr"))
		decoy[nd++] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (want(kinds, "dir"))
		decoy[nd++] = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (want(kinds, "reg")) {
		snprintf(p, sizeof(p), "%s/swap.reg", dir);
		decoy[nd++] = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	}
	if (want(kinds, "sock"))
		decoy[nd++] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (want(kinds, "memfd"))
		decoy[nd++] = memfd_create("decoy", MFD_CLOEXEC);
	for (int i = 0; i < nd; i++)
		if (decoy[i] < 0) {
			perror("dump_swapper: decoy");
			return 1;
		}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	printf("ready %d\n", RINGFD);
	fflush(stdout);
	for (unsigned long n = 0; !stop; n++) {
		for (int i = 0; i < nfds; i++)
			dup2(ring, RINGFD + i);
		for (int i = 0; i < nfds; i++)
			dup2(decoy[(n + (unsigned long)i) % (unsigned)nd], RINGFD + i);
	}
	return 0;
}
