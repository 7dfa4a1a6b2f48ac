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
static inline uint64_t sr_faa_64(uint64_t *p, uint64_t d)
{
	return __atomic_fetch_add(p, d, __ATOMIC_ACQ_REL);
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
static inline uint64_t sr_faa_64(uint64_t *p, uint64_t d)
{
	return ck_pr_faa_64(p, d);
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

#endif
