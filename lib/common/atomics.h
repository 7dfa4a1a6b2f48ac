/* SPDX-License-Identifier: MIT */
/*
 * The few shared-memory orderings spanring needs, named by what they do.
 *
 * Normal builds use Concurrency Kit (ck_pr loads/stores and fences).
 * ThreadSanitizer cannot see ck_pr's inline assembly or its standalone
 * fences, so it would report every record handed over through head/tail
 * as a race. Under TSan the same operations map to the compiler's
 * __atomic builtins with identical acquire/release semantics, which TSan
 * models. The protocol (who pairs with whom) is the same in both builds;
 * see the diagram in include/spanring/ring_abi.h.
 *
 * Every atomic access of the library, the shim and the tools goes through
 * these names, for process-local data (the clock, the fd table, the
 * client's state, span states) as for the ring. Naming: _acquire and
 * _release say the ordering; sr_load_int/sr_store_int are acquire and
 * release; _relaxed orders nothing; sr_cas_* (when it succeeds), sr_xchg_*
 * and sr_faa_64 order at least acquire-release (full barriers on x86-64).
 * At the end: pointers, the few words touched on every span (sr_hot_*)
 * and a seqlock (sr_seq_*). Each acquire/release pair is commented at
 * both ends where it is used.
 */
#ifndef SPANRING_LIB_ATOMICS_H
#define SPANRING_LIB_ATOMICS_H

#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define SR_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SR_TSAN 1
#endif
#endif

#ifdef SR_TSAN
#include <pthread.h>

static inline uint64_t sr_load_acquire_64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void sr_store_release_64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline uint64_t sr_load_relaxed_64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void sr_store_relaxed_64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline uint32_t sr_load_acquire_32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void sr_store_release_32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline int sr_load_int(const int *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void sr_store_int(int *p, int v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline _Bool sr_cas_64(uint64_t *p, uint64_t old, uint64_t new_)
{
	return __atomic_compare_exchange_n(p, &old, new_, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline _Bool sr_cas_int(int *p, int old, int new_)
{
	return __atomic_compare_exchange_n(p, &old, new_, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}
/* As sr_cas_int, and *seen is the value found (old if it succeeded). */
static inline _Bool sr_cas_int_value(int *p, int old, int new_, int *seen)
{
	_Bool ok = __atomic_compare_exchange_n(p, &old, new_, 0, __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE);
	*seen = old;
	return ok;
}
static inline uint64_t sr_faa_64(uint64_t *p, uint64_t d)
{
	return __atomic_fetch_add(p, d, __ATOMIC_ACQ_REL);
}
static inline int sr_load_relaxed_int(const int *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void sr_store_relaxed_int(int *p, int v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline int sr_xchg_int(int *p, int v)
{
	return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}
static inline void *sr_load_acquire_vptr(void *const *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void sr_store_release_vptr(void **p, void *v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
/* Drop one reference; true when it was the last (acquire and release:
 * the last one sees every write made before the other drops). */
static inline _Bool sr_dec_zero_32(uint32_t *p)
{
	return __atomic_sub_fetch(p, 1, __ATOMIC_ACQ_REL) == 0;
}
/* Wake-up protocol (ring_abi.h, E/F/G). TSan does not model membarrier:
 * here the producer's barrier is a real fence, so that what TSan sees is
 * a protocol it can check. */
static inline uint32_t sr_load_relaxed_32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void sr_store_relaxed_32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline uint32_t sr_xchg_32(uint32_t *p, uint32_t v)
{
	return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}
static inline void sr_wake_barrier(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
static inline void sr_fence_full(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
static inline void sr_fence_acquire(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

/* Process-local lock for slots shared by several threads. */
typedef pthread_mutex_t sr_lock_t;
#define SR_LOCK_INIT PTHREAD_MUTEX_INITIALIZER
static inline void sr_lock_init(sr_lock_t *l) { pthread_mutex_init(l, NULL); }
static inline void sr_lock(sr_lock_t *l) { pthread_mutex_lock(l); }
static inline void sr_unlock(sr_lock_t *l) { pthread_mutex_unlock(l); }

#else /* Concurrency Kit */
#include <ck_pr.h>

static inline uint64_t sr_load_acquire_64(const uint64_t *p)
{
	uint64_t v = ck_pr_load_64(p);
	ck_pr_fence_acquire();
	return v;
}
static inline void sr_store_release_64(uint64_t *p, uint64_t v)
{
	ck_pr_fence_release();
	ck_pr_store_64(p, v);
}
static inline uint64_t sr_load_relaxed_64(const uint64_t *p)
{
	return ck_pr_load_64(p);
}
static inline void sr_store_relaxed_64(uint64_t *p, uint64_t v)
{
	ck_pr_store_64(p, v);
}
static inline uint32_t sr_load_acquire_32(const uint32_t *p)
{
	uint32_t v = ck_pr_load_32(p);
	ck_pr_fence_acquire();
	return v;
}
static inline void sr_store_release_32(uint32_t *p, uint32_t v)
{
	ck_pr_fence_release();
	ck_pr_store_32(p, v);
}
static inline int sr_load_int(const int *p)
{
	int v = ck_pr_load_int(p);
	ck_pr_fence_acquire();
	return v;
}
static inline void sr_store_int(int *p, int v)
{
	ck_pr_fence_release();
	ck_pr_store_int(p, v);
}
static inline _Bool sr_cas_64(uint64_t *p, uint64_t old, uint64_t new_)
{
	return ck_pr_cas_64(p, old, new_); /* full barrier on x86-64 */
}
static inline _Bool sr_cas_int(int *p, int old, int new_)
{
	return ck_pr_cas_int(p, old, new_); /* full barrier on x86-64 */
}
/* As sr_cas_int, and *seen is the value found (old if it succeeded). */
static inline _Bool sr_cas_int_value(int *p, int old, int new_, int *seen)
{
	return ck_pr_cas_int_value(p, old, new_, seen); /* full barrier on x86-64 */
}
static inline uint64_t sr_faa_64(uint64_t *p, uint64_t d)
{
	return ck_pr_faa_64(p, d);
}
static inline int sr_load_relaxed_int(const int *p)
{
	return ck_pr_load_int(p);
}
static inline void sr_store_relaxed_int(int *p, int v)
{
	ck_pr_store_int(p, v);
}
static inline int sr_xchg_int(int *p, int v)
{
	return ck_pr_fas_int(p, v); /* full barrier on x86-64 */
}
static inline void *sr_load_acquire_vptr(void *const *p)
{
	void *v = ck_pr_load_ptr(p);
	ck_pr_fence_acquire();
	return v;
}
static inline void sr_store_release_vptr(void **p, void *v)
{
	ck_pr_fence_release();
	ck_pr_store_ptr(p, v);
}
static inline _Bool sr_dec_zero_32(uint32_t *p)
{
	_Bool zero;
	ck_pr_dec_32_zero(p, &zero); /* full barrier on x86-64 */
	return zero;
}
/* Wake-up protocol (ring_abi.h, E/F/G). */
static inline uint32_t sr_load_relaxed_32(const uint32_t *p)
{
	return ck_pr_load_32(p);
}
static inline void sr_store_relaxed_32(uint32_t *p, uint32_t v)
{
	ck_pr_store_32(p, v);
}
static inline uint32_t sr_xchg_32(uint32_t *p, uint32_t v)
{
	return ck_pr_fas_32(p, v); /* full barrier on x86-64 */
}
/* The producer's side of the asymmetric fence: only the compiler may not
 * reorder; the agent's membarrier() supplies the hardware barrier. */
static inline void sr_wake_barrier(void)
{
	ck_pr_barrier();
}
static inline void sr_fence_full(void)
{
	ck_pr_fence_memory();
}
/* Loads before it (plain ones too, e.g. a memcpy of shared bytes) are
 * ordered before loads after it: a seqlock reader's check. */
static inline void sr_fence_acquire(void)
{
	ck_pr_fence_load();
}

/*
 * Process-local lock for slots shared by several threads: a glibc
 * adaptive mutex (spins briefly, then sleeps in the kernel). It was a
 * ck_spinlock with exponential backoff, which never gives the CPU away:
 * with more waiters than CPUs a preempted holder left every waiter
 * spinning out its time slice, and 1024 threads on 2 CPUs committed
 * 0.22 M spans/s (docs/BENCHMARKS.md, scale). Uncontended, both cost one
 * atomic instruction each way.
 */
#include <pthread.h>
typedef pthread_mutex_t sr_lock_t;
#define SR_LOCK_INIT PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
static inline void sr_lock_init(sr_lock_t *l)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(l, &a);
	pthread_mutexattr_destroy(&a);
}
static inline void sr_lock(sr_lock_t *l) { pthread_mutex_lock(l); }
static inline void sr_unlock(sr_lock_t *l) { pthread_mutex_unlock(l); }
#endif

/* A pointer of any type, a function pointer included (POSIX gives them
 * the representation of void *): load-acquire, store-release, built on
 * the operations above. */
#define sr_load_acquire_ptr(pp) ((__typeof__(*(pp)))sr_load_acquire_vptr((void *const *)(pp)))
#define sr_store_release_ptr(pp, v) sr_store_release_vptr((void **)(pp), (void *)(v))

/*
 * Process-local words read or written on every span (a span's state, the
 * clock's state and seqlock below): the compiler's builtins in every
 * build, not ck_pr. The data never leaves the process, and ck_pr's asm
 * operands (each one a compiler barrier with its address in a register)
 * changed gcc's code for span_begin() and spanring_span_end_at(): an extra
 * lea per clock read, other registers and block layout (compared with
 * objdump). The orderings are those of the general operations above.
 */
static inline int sr_hot_load_relaxed_int(const int *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline uint32_t sr_hot_load_acquire_32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void sr_hot_store_release_32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline void sr_hot_store_relaxed_32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/*
 * Seqlock over process-local data (the span clock: written by
 * lib/clock.c, read on every span's start and end by sr_clock_ns() in
 * lib/internal.h). One writer at a time (the caller holds its own lock)
 * makes the count odd, stores the data with sr_seq_store_64(), and makes
 * the count even again. A reader takes the count, loads the data with
 * sr_seq_load_64(), takes the count again with sr_seq_read_end(), and
 * uses the data only if the first count was even and equals the second:
 *
 *   writer                                   reader
 *   sr_seq_write_begin: count odd, then      sr_seq_read_begin: acquire count
 *     release fence ────────────────┐        sr_seq_load_64 of the data
 *   sr_seq_store_64 of the data     └───▶    sr_seq_read_end: acquire fence,
 *   sr_seq_write_end: release count ────▶      then reload the count
 *
 * The release fence of write_begin pairs with the acquire fence of
 * read_end: a reader that saw any new datum sees the odd count. The
 * release of write_end pairs with the acquire of read_begin: a reader that
 * saw the new even count sees all the new data. Like the sr_hot_*
 * operations above, these are the compiler's builtins in every build.
 */
static inline uint32_t sr_seq_read_begin(const uint32_t *seq)
{
	return __atomic_load_n(seq, __ATOMIC_ACQUIRE);
}
static inline uint64_t sr_seq_load_64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline uint32_t sr_seq_read_end(const uint32_t *seq)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(seq, __ATOMIC_RELAXED);
}
static inline void sr_seq_write_begin(uint32_t *seq)
{
	__atomic_store_n(seq, *seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}
static inline void sr_seq_store_64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline void sr_seq_write_end(uint32_t *seq)
{
	__atomic_store_n(seq, *seq + 1, __ATOMIC_RELEASE);
}

#endif
