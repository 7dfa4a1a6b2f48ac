/* SPDX-License-Identifier: MIT */
/*
 * The descriptors of the shim (the ring's memfd, the agent socket, the
 * registration thread's eventfd, the doorbell eventfd) must survive a
 * program that closes every descriptor (daemons, `closefrom(3)`, shells
 * cleaning up), and must not sit where the program expects to find its
 * own (`exec 3>file` in a shell is dup2(x, 3)). So:
 *
 *  - The library's calls that create them (memfd_create, socket,
 *    eventfd, recvmsg with SCM_RIGHTS) are wrapped at link time
 *    (-Wl,--wrap, only inside the shim): each new descriptor is moved
 *    high (F_DUPFD_CLOEXEC from 15/16 of min(RLIMIT_NOFILE, 1024), i.e.
 *    960 and up) and recorded. All are close-on-exec.
 *  - close(), close_range() and closefrom() from the program skip the
 *    recorded descriptors: close() of one fails with EBADF (as if it were
 *    not open, which for the program it is not), the ranges are split
 *    around them. Our own code (pl_busy) closes them normally.
 *  - The registration thread is started through a wrapped
 *    pthread_create() that marks it pl_busy for its whole life: nothing
 *    it does is traced or refused.
 *
 * What this does not cover: a program that dup2()s onto one of our
 * numbers, or closes them with a raw system call. See README.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

#define PL_FD_MAX 16

/*
 * The table is read by any thread's close() and written by the library's
 * own calls, without a lock: each entry and fd_low are stored with release
 * (or a compare-and-swap) in fd_track(), fd_untrack(), low_update() and
 * pl_fd_forget_all(), and loaded with acquire in pl_fd_is_ours(),
 * low_update() and close_range_keep(); each store pairs with those loads.
 */
static int fds[PL_FD_MAX] = {[0 ... PL_FD_MAX - 1] = -1};
static int fd_low = INT_MAX; /* no recorded descriptor is below this */

static int raw_close(int fd)
{
	/* Acquire: pairs with the store-release in pl_real_lookup() (pl_real.c). */
	int (*real)(int) = sr_load_acquire_ptr(&pl_real_close);
	if (real)
		return real(fd);
	return (int)syscall(SYS_close, fd);
}

int pl_fd_close(int fd)
{
	return raw_close(fd);
}

static void low_update(void)
{
	int low = INT_MAX;
	for (int i = 0; i < PL_FD_MAX; i++) {
		int v = sr_load_int(&fds[i]);
		if (v >= 0 && v < low)
			low = v;
	}
	sr_store_int(&fd_low, low);
}

static void fd_track(int fd)
{
	for (int i = 0; i < PL_FD_MAX; i++) {
		if (sr_cas_int(&fds[i], -1, fd))
			break;
	}
	int low = sr_load_int(&fd_low);
	while (fd < low && !sr_cas_int_value(&fd_low, low, fd, &low))
		;
}

static void fd_untrack(int fd)
{
	for (int i = 0; i < PL_FD_MAX; i++) {
		sr_cas_int(&fds[i], fd, -1);
	}
	low_update();
}

bool pl_fd_is_ours(int fd)
{
	if (fd < sr_load_int(&fd_low))
		return false;
	for (int i = 0; i < PL_FD_MAX; i++)
		if (sr_load_int(&fds[i]) == fd)
			return true;
	return false;
}

void pl_fd_forget_all(void)
{
	for (int i = 0; i < PL_FD_MAX; i++)
		sr_store_int(&fds[i], -1);
	sr_store_int(&fd_low, INT_MAX);
}

/* Where our descriptors go: out of the way of dup2(x, small n). */
static int fd_base(void)
{
	static int base;
	/* Relaxed: every thread computes the same value. */
	int b = sr_load_relaxed_int(&base);
	if (!b) {
		struct rlimit rl;
		rlim_t lim = 1024;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < lim)
			lim = rl.rlim_cur;
		b = lim >= 64 ? (int)(lim - lim / 16) : -1;
		sr_store_relaxed_int(&base, b);
	}
	return b;
}

static int fd_adopt(int fd)
{
	if (fd < 0)
		return fd;
	int b = fd_base();
	if (b > 0 && fd < b) {
		int saved = errno;
		int n = fcntl(fd, F_DUPFD_CLOEXEC, b);
		if (n >= 0) {
			raw_close(fd);
			fd = n;
		}
		errno = saved;
	}
	fd_track(fd);
	return fd;
}

/* ---- link-time wrappers of the library's own calls (-Wl,--wrap) ------------------- */

int __real_memfd_create(const char *name, unsigned int flags);
int __wrap_memfd_create(const char *name, unsigned int flags);
int __real_socket(int domain, int type, int protocol);
int __wrap_socket(int domain, int type, int protocol);
int __real_eventfd(unsigned int initval, int flags);
int __wrap_eventfd(unsigned int initval, int flags);
ssize_t __real_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags);
int __real_pthread_create(pthread_t *thr, const pthread_attr_t *attr, void *(*fn)(void *),
			  void *arg);
int __wrap_pthread_create(pthread_t *thr, const pthread_attr_t *attr, void *(*fn)(void *),
			  void *arg);

int __wrap_memfd_create(const char *name, unsigned int flags)
{
	return fd_adopt(__real_memfd_create(name, flags));
}

int __wrap_socket(int domain, int type, int protocol)
{
	return fd_adopt(__real_socket(domain, type, protocol));
}

int __wrap_eventfd(unsigned int initval, int flags)
{
	return fd_adopt(__real_eventfd(initval, flags));
}

ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t n = __real_recvmsg(fd, msg, flags);
	if (n < 0 || !msg || !msg->msg_control)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t j = 0; j < k; j++) {
			int v;
			memcpy(&v, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
			v = fd_adopt(v);
			memcpy(CMSG_DATA(c) + j * sizeof(int), &v, sizeof(int));
		}
	}
	return n;
}

/*
 * The registration thread must not call malloc() or free(): its first
 * call would make glibc set up a thread cache and an arena for it (a
 * 64 MiB reservation and several system calls) in every traced process.
 * So its start routine and argument are handed over in static storage
 * (a handover slot; heap only if two threads were started at once), and
 * it runs on a small stack of its own size instead of RLIMIT_STACK's.
 */
#define BOOT_STACK (256u << 10)

struct boot {
	void *(*fn)(void *);
	void *arg;
	int heap;
};

static struct boot boot_slot;
static int boot_busy;

static void *boot_main(void *p)
{
	struct boot b = *(struct boot *)p;
	if (b.heap)
		free(p);
	else /* Release: pairs with the compare-and-swap in __wrap_pthread_create(). */
		sr_store_int(&boot_busy, 0);
	pl_busy = 1; /* the library's thread: never traced, may close our fds */
	return b.fn(b.arg);
}

int __wrap_pthread_create(pthread_t *thr, const pthread_attr_t *attr, void *(*fn)(void *),
			  void *arg)
{
	struct boot *b = &boot_slot;
	/* Takes boot_slot; pairs with its release in boot_main() or below (the
	 * slot's last reader is done with it). */
	if (!sr_cas_int(&boot_busy, 0, 1)) {
		b = malloc(sizeof(*b));
		if (!b)
			return EAGAIN;
		b->heap = 1;
	} else {
		b->heap = 0;
	}
	b->fn = fn;
	b->arg = arg;
	pthread_attr_t own;
	bool own_attr = !attr && pthread_attr_init(&own) == 0;
	if (own_attr && pthread_attr_setstacksize(&own, BOOT_STACK) == 0)
		attr = &own;
	int r = __real_pthread_create(thr, attr, boot_main, b);
	if (own_attr)
		pthread_attr_destroy(&own);
	if (r) {
		if (b->heap)
			free(b);
		else
			sr_store_int(&boot_busy, 0);
	}
	return r;
}

/* ---- the program's close calls ------------------------------------------------------ */

PL_EXPORT int close(int fd)
{
	if (__builtin_expect(pl_fd_is_ours(fd), 0)) {
		if (!pl_busy) {
			errno = EBADF;
			return -1;
		}
		fd_untrack(fd);
	}
	return raw_close(fd);
}

static int raw_close_range(unsigned first, unsigned last, int flags)
{
	int (*real)(unsigned, unsigned, int) = PL_REAL(close_range);
	if (real)
		return real(first, last, flags);
	return (int)syscall(SYS_close_range, first, last, flags);
}

/* close_range() that leaves our descriptors open. */
static int close_range_keep(unsigned first, unsigned last, int flags)
{
	int ours[PL_FD_MAX], n = 0;
	for (int i = 0; i < PL_FD_MAX; i++) {
		int v = sr_load_int(&fds[i]);
		if (v >= 0 && (unsigned)v >= first && (unsigned)v <= last)
			ours[n++] = v;
	}
	if (!n)
		return raw_close_range(first, last, flags);
	/* Sort (tiny n), then close the gaps. */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && ours[j - 1] > ours[j]; j--) {
			int t = ours[j];
			ours[j] = ours[j - 1];
			ours[j - 1] = t;
		}
	unsigned lo = first;
	int ret = 0, err = 0;
	for (int i = 0; i < n; i++) {
		unsigned o = (unsigned)ours[i];
		if (o > lo && raw_close_range(lo, o - 1, flags) != 0 && !err) {
			err = errno;
			ret = -1;
		}
		lo = o + 1;
	}
	if (lo <= last && lo != 0 && raw_close_range(lo, last, flags) != 0 && !err) {
		err = errno;
		ret = -1;
	}
	if (ret)
		errno = err;
	return ret;
}

PL_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	/* Setting close-on-exec on ours changes nothing: they have it. */
	if (pl_busy || (flags & CLOSE_RANGE_CLOEXEC) || first > last)
		return raw_close_range(first, last, flags);
	return close_range_keep(first, last, flags);
}

PL_EXPORT void closefrom(int lowfd)
{
	int saved = errno;
	if (lowfd < 0)
		lowfd = 0;
	if (pl_busy || (close_range_keep((unsigned)lowfd, ~0u, 0) != 0 && errno == ENOSYS)) {
		/* Ours, or no close_range (kernel < 5.9): libc's closefrom. */
		void (*real)(int) = PL_REAL(closefrom);
		if (real)
			real(lowfd);
	}
	errno = saved;
}
