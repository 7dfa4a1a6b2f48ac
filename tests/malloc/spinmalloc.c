/* SPDX-License-Identifier: MIT */
/*
 * A deliberately fork-unsafe malloc for the fork tests
 * (tests/integration/preload_fork_storm.sh), preloaded before the shim.
 *
 * One global spin lock, held a little longer than needed (to widen the
 * window in which a fork catches another thread inside), and no fork
 * handlers: in the child of a multithreaded process the lock may stay
 * taken forever, as with allocators that do not reset their locks at
 * fork. Memory comes from mmap'd chunks and is reused through one free
 * list per power-of-two size class.
 *
 * With SPINMALLOC_ARM=NAME in the environment, a process whose short name
 * is NAME also catches any allocator call made in a forked child (a pid
 * other than its own at start): it writes "spinmalloc: <call> in a fork
 * child" to stderr and aborts. That turns "the child could hang" into a
 * failure every time the child calls the allocator at all.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHUNK (64u << 20)
#define NCLS 40
#define HDR 16u

extern char *program_invocation_short_name;

static int lk;
static char *cur, *end;
static void *freel[NCLS];
static pid_t armed_pid; /* 0: not armed */

static void check_child(const char *what)
{
	if (!armed_pid || (pid_t)syscall(SYS_getpid) == armed_pid)
		return;
	static const char pre[] = "spinmalloc: ";
	static const char post[] = " in a fork child\n";
	ssize_t r = write(2, pre, sizeof(pre) - 1);
	r = write(2, what, strlen(what));
	r = write(2, post, sizeof(post) - 1);
	(void)r;
	abort();
}

static void lock(void)
{
	while (__atomic_exchange_n(&lk, 1, __ATOMIC_ACQUIRE))
		__builtin_ia32_pause();
}

static void unlock(void)
{
	/* Stay a little: a fork now finds the lock taken. */
	for (int i = 0; i < 50; i++)
		__builtin_ia32_pause();
	__atomic_store_n(&lk, 0, __ATOMIC_RELEASE);
}

static unsigned cls_of(size_t n)
{
	unsigned c = 4;
	while (c < NCLS - 1 && ((size_t)1 << c) < n)
		c++;
	return c;
}

static void *alloc_locked(size_t n, size_t align)
{
	if (n > ((size_t)1 << 38))
		return NULL;
	unsigned c = cls_of(n);
	size_t sz = (size_t)1 << c;
	if (align <= 16 && freel[c]) {
		void *p = freel[c];
		memcpy(&freel[c], p, sizeof(void *));
		return p;
	}
	for (int round = 0; round < 2; round++) {
		uintptr_t pay = ((uintptr_t)cur + HDR + align - 1) & ~(uintptr_t)(align - 1);
		if (cur && pay + sz <= (uintptr_t)end) {
			cur = (char *)(pay + sz);
			uint64_t *h = (uint64_t *)(pay - HDR);
			h[0] = c;
			h[1] = 0x5350494e;
			return (void *)pay;
		}
		size_t len = sz + align + HDR > CHUNK ? sz + align + HDR : CHUNK;
		void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		cur = m;
		end = (char *)m + len;
	}
	return NULL;
}

static size_t usable(void *p)
{
	return (size_t)1 << ((uint64_t *)((char *)p - HDR))[0];
}

static void *do_alloc(size_t n, size_t align, const char *what)
{
	check_child(what);
	lock();
	void *p = alloc_locked(n ? n : 1, align < 16 ? 16 : align);
	unlock();
	if (!p)
		errno = ENOMEM;
	return p;
}

void *malloc(size_t n)
{
	return do_alloc(n, 16, "malloc");
}

void free(void *p)
{
	if (!p)
		return;
	check_child("free");
	lock();
	unsigned c = (unsigned)((uint64_t *)((char *)p - HDR))[0];
	memcpy(p, &freel[c], sizeof(void *));
	freel[c] = p;
	unlock();
}

void *calloc(size_t n, size_t sz)
{
	if (sz && n > SIZE_MAX / sz) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = do_alloc(n * sz, 16, "calloc");
	if (p)
		memset(p, 0, n * sz);
	return p;
}

void *realloc(void *p, size_t n)
{
	if (!p)
		return do_alloc(n, 16, "realloc");
	if (n <= usable(p)) {
		check_child("realloc");
		return p;
	}
	void *q = do_alloc(n, 16, "realloc");
	if (q) {
		memcpy(q, p, usable(p));
		free(p);
	}
	return q;
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	void *p = do_alloc(n, align, "posix_memalign");
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
	return do_alloc(n, align, "aligned_alloc");
}

void *memalign(size_t align, size_t n)
{
	return do_alloc(n, align, "memalign");
}

void *valloc(size_t n)
{
	return do_alloc(n, 4096, "valloc");
}

void *pvalloc(size_t n)
{
	return do_alloc((n + 4095) & ~(size_t)4095, 4096, "pvalloc");
}

size_t malloc_usable_size(void *p)
{
	return p ? usable(p) : 0;
}

__attribute__((constructor)) static void spinmalloc_init(void)
{
	const char *arm = getenv("SPINMALLOC_ARM");
	if (arm && *arm && !strcmp(arm, program_invocation_short_name))
		armed_pid = (pid_t)syscall(SYS_getpid);
}
