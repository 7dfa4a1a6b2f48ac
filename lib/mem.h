/* SPDX-License-Identifier: MIT */
/*
 * The library's allocator (lib/mem.c): every allocation the producer
 * library and the LD_PRELOAD shim make goes through these functions.
 *
 * Normally they are the C library's malloc family. In the forked child of
 * a multithreaded process (sr_mem_go_private(), called by the producer
 * core's fork handler) the C library's allocator may be locked forever by
 * a thread that no longer exists, so from then on they take memory from a
 * private arena built on mmap() alone, and memory from before the fork is
 * never handed back to the C library (sr_free() leaks it). POSIX allows
 * only async-signal-safe functions in such a child; the arena uses only
 * mmap() and atomics. See docs/DESIGN-NOTES.md, "Fork".
 */
#ifndef SPANRING_LIB_MEM_H
#define SPANRING_LIB_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "atomics.h"

#ifndef SR_HIDDEN
#define SR_HIDDEN __attribute__((visibility("hidden")))
#endif

/* Non-zero once this process image allocates from the private arena. */
SR_HIDDEN extern int sr_mem_private;

SR_HIDDEN void *sr_priv_alloc(size_t n, size_t align);
SR_HIDDEN void *sr_priv_realloc(void *p, size_t old, size_t n);
SR_HIDDEN void sr_priv_free(void *p);

static inline bool sr_mem_is_private(void)
{
	/* Acquire: pairs with the store in sr_mem_go_private() (mem.c). */
	return __builtin_expect(sr_load_int(&sr_mem_private) != 0, 0);
}

static inline void *sr_malloc(size_t n)
{
	return sr_mem_is_private() ? sr_priv_alloc(n, 16) : malloc(n);
}

static inline void *sr_calloc(size_t n, size_t size)
{
	if (!sr_mem_is_private())
		return calloc(n, size);
	if (size && n > (size_t)-1 / size)
		return NULL;
	return sr_priv_alloc(n * size, 16); /* arena memory is zeroed */
}

/* realloc(); old: the bytes of p that are valid (its size when it was
 * allocated, or less), needed to move a block from before the fork. */
static inline void *sr_realloc(void *p, size_t old, size_t n)
{
	return sr_mem_is_private() ? sr_priv_realloc(p, old, n) : realloc(p, n);
}

static inline void sr_free(void *p)
{
	if (sr_mem_is_private())
		sr_priv_free(p);
	else
		free(p);
}

/* posix_memalign() with the same rules (0 or an errno value). */
SR_HIDDEN int sr_memalign(void **out, size_t align, size_t n);
SR_HIDDEN char *sr_strdup(const char *s);

/* From now on in this process image: the private arena. Called in the
 * fork child, before any other thread can exist. */
SR_HIDDEN void sr_mem_go_private(void);

/* Fork handlers: keep the arena consistent across a fork of a process
 * that already uses it (prepare takes its lock, parent and child drop it). */
SR_HIDDEN void sr_mem_atfork_prepare(void);
SR_HIDDEN void sr_mem_atfork_parent(void);
SR_HIDDEN void sr_mem_atfork_child(void);

/* For tests: bytes the arena holds from the kernel. */
SR_HIDDEN size_t sr_priv_mapped(void);

#endif
