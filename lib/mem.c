/* SPDX-License-Identifier: MIT */
/*
 * The private arena (see mem.h): memory for the library in the forked
 * child of a multithreaded process, from mmap() alone.
 *
 * Blocks carry a 16-byte header (magic, size class, usable size). Sizes
 * are rounded up to a power of two from 32 bytes to 256 KiB; freed blocks
 * go to a list per class and are reused. Larger blocks get a mapping of
 * their own, unmapped when freed. Blocks with an alignment above 16 are
 * carved from the current region and never reused (the library asks for
 * one per ring: the slot writers). All memory handed out is zeroed.
 *
 * Which memory is ours: the regions are recorded in a small table, and a
 * pointer inside none of them came from the C library before the fork;
 * sr_free() then leaks it (the C library's allocator may be locked) and
 * sr_realloc() copies out of it (the caller says how much is valid).
 *
 * Concurrency: one spin lock (another thread of the child may use the
 * library too: POSIX forbids it before exec, programs do it anyway). A
 * fork of a process that already uses the arena takes the lock in the
 * prepare handler, so the child's copy is never half-updated.
 */
#include "mem.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

int sr_mem_private;

#define ARENA_MAGIC 0x5352414du /* "SRAM" */
#define CLS_MIN 5               /* 32 bytes */
#define CLS_MAX 18              /* 256 KiB */
#define CLS_BIG 0xffu           /* a mapping of its own */
#define CLS_ALIGNED 0xfeu       /* carved with alignment: never reused */
#define REGION_SIZE (1u << 20)
#define MAX_REGIONS 64
#define HDR 16u

struct blk {
	uint32_t magic;
	uint32_t cls;
	uint64_t size; /* usable bytes after the header */
};

struct region {
	uintptr_t lo, hi; /* [lo, hi); hi == 0: free entry */
};

static struct {
	int lock;
	struct region reg[MAX_REGIONS];
	uintptr_t cur, end; /* bump range of the current region */
	void *free_[CLS_MAX + 1];
	size_t mapped;
} A;

_Static_assert(sizeof(struct blk) == HDR, "arena header");

static void lock(void)
{
	/* The CAS pairs with the release in unlock(). */
	for (unsigned spins = 0; !sr_cas_int(&A.lock, 0, 1); spins++) {
		if (spins >= 64) {
			sched_yield();
			spins = 0;
		}
	}
}

static void unlock(void)
{
	sr_store_int(&A.lock, 0); /* release: pairs with the CAS in lock() */
}

static void *map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Record [p, p+n) as ours; false when the table is full. Locked. */
static bool reg_add(void *p, size_t n)
{
	for (int i = 0; i < MAX_REGIONS; i++) {
		if (!A.reg[i].hi) {
			A.reg[i].lo = (uintptr_t)p;
			A.reg[i].hi = (uintptr_t)p + n;
			A.mapped += n;
			return true;
		}
	}
	return false;
}

/* Index of the region holding p, or -1. Locked. */
static int reg_find(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	for (int i = 0; i < MAX_REGIONS; i++)
		if (A.reg[i].hi && a >= A.reg[i].lo && a < A.reg[i].hi)
			return i;
	return -1;
}

static unsigned cls_of(size_t n)
{
	unsigned c = CLS_MIN;
	while (c <= CLS_MAX && ((size_t)1 << c) < n)
		c++;
	return c;
}

/* Bump-allocate a block of usable size n, payload aligned to align. Locked. */
static struct blk *carve(size_t n, size_t align)
{
	for (int round = 0; round < 2; round++) {
		uintptr_t pay = (A.cur + HDR + align - 1) & ~(uintptr_t)(align - 1);
		if (A.cur && pay + n <= A.end) {
			A.cur = pay + n;
			return (struct blk *)(pay - HDR);
		}
		if (round)
			break;
		/* A new region; the rest of the old one is given up. */
		void *r = map(REGION_SIZE);
		if (!r)
			return NULL;
		if (!reg_add(r, REGION_SIZE)) {
			munmap(r, REGION_SIZE);
			return NULL;
		}
		A.cur = (uintptr_t)r;
		A.end = (uintptr_t)r + REGION_SIZE;
	}
	return NULL;
}

void *sr_priv_alloc(size_t n, size_t align)
{
	if (!n)
		n = 1;
	if (align < 16)
		align = 16;
	if (align > 4096 || (align & (align - 1)) || n > ((size_t)1 << 40))
		return NULL;
	struct blk *b = NULL;
	unsigned c = cls_of(n);
	lock();
	if (align > 16 && n + align <= REGION_SIZE / 4) {
		b = carve(n, align);
		if (b) {
			b->cls = CLS_ALIGNED;
			b->size = n;
		}
	} else if (align == 16 && c <= CLS_MAX) {
		size_t sz = (size_t)1 << c;
		if (A.free_[c]) {
			void *pay = A.free_[c];
			memcpy(&A.free_[c], pay, sizeof(void *));
			b = (struct blk *)((char *)pay - HDR);
			memset(pay, 0, sz);
		} else if ((b = carve(sz, 16))) {
			b->cls = c;
			b->size = sz;
		}
	} else if (align == 16) {
		size_t len = (n + HDR + 4095) & ~(size_t)4095;
		void *m = map(len);
		if (m && reg_add(m, len)) {
			b = m;
			b->cls = CLS_BIG;
			b->size = len - HDR;
		} else if (m) {
			munmap(m, len);
		}
	}
	if (b)
		b->magic = ARENA_MAGIC;
	unlock();
	return b ? (char *)b + HDR : NULL;
}

void sr_priv_free(void *p)
{
	if (!p)
		return;
	lock();
	int r = reg_find(p);
	struct blk *b = (struct blk *)((char *)p - HDR);
	if (r < 0 || b->magic != ARENA_MAGIC) {
		/* The C library's, from before the fork: left alone. */
		unlock();
		return;
	}
	if (b->cls >= CLS_MIN && b->cls <= CLS_MAX) {
		memcpy(p, &A.free_[b->cls], sizeof(void *));
		A.free_[b->cls] = p;
	} else if (b->cls == CLS_BIG) {
		size_t len = (size_t)(A.reg[r].hi - A.reg[r].lo);
		A.reg[r].lo = A.reg[r].hi = 0;
		A.mapped -= len;
		munmap(b, len);
	}
	unlock();
}

/* Usable size of an arena block, or 0 if p is not ours. */
static size_t priv_size(const void *p)
{
	lock();
	const struct blk *b = (const struct blk *)((const char *)p - HDR);
	size_t n = reg_find(p) >= 0 && b->magic == ARENA_MAGIC ? b->size : 0;
	unlock();
	return n;
}

void *sr_priv_realloc(void *p, size_t old, size_t n)
{
	if (!p)
		return sr_priv_alloc(n, 16);
	size_t have = priv_size(p);
	if (have && n <= have)
		return p;
	/* Ours: all of it is valid up to its size; the C library's: what
	 * the caller says. */
	size_t keep = have ? have : old;
	void *q = sr_priv_alloc(n, 16);
	if (!q)
		return NULL;
	memcpy(q, p, keep < n ? keep : n);
	sr_priv_free(p);
	return q;
}

int sr_memalign(void **out, size_t align, size_t n)
{
	if (!sr_mem_is_private())
		return posix_memalign(out, align, n);
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	*out = sr_priv_alloc(n, align);
	return *out ? 0 : ENOMEM;
}

char *sr_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = sr_malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

void sr_mem_go_private(void)
{
	sr_store_int(&sr_mem_private, 1); /* pairs with sr_mem_is_private() (mem.h) */
}

void sr_mem_atfork_prepare(void)
{
	if (sr_mem_is_private())
		lock();
}

void sr_mem_atfork_parent(void)
{
	if (sr_mem_is_private())
		unlock();
}

void sr_mem_atfork_child(void)
{
	if (sr_mem_is_private())
		unlock();
}

size_t sr_priv_mapped(void)
{
	lock();
	size_t n = A.mapped;
	unlock();
	return n;
}
