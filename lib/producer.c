/* SPDX-License-Identifier: MIT */
/*
 * Producer core: the process's ring, slot ownership by threads, the scope
 * table, fork and exit handling, and the commit of an encoded span.
 *
 * Hot path (sr_commit with an exclusively owned slot): no lock, no atomic
 * read-modify-write, no system call (except one eventfd write when a slot
 * crosses its fill watermark), no allocation.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "internal.h"
#include "mem.h"
#include "pbwire.h"
#include "resource.h"

struct sr_proc sr_g;
struct spanring_span sr_noop_span = {.state = SR_SPAN_NONREC};

/* Serialises process set-up, tracer registration and the scope table. */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t thread_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static __thread struct sr_thread *sr_tls __attribute__((tls_model("initial-exec")));

#define SCOPE_CAP (64u << 10)
#define RES_CAP (64u << 10)

static void thread_dtor(void *arg);

/* ---- fork and exit ---------------------------------------------------------- */

/*
 * Fork. POSIX allows the child of a multithreaded process only
 * async-signal-safe calls until it execs: another thread may have held
 * the allocator's lock, or any other, at the moment of the fork, and in
 * the child that lock stays taken. Such a child is "restricted" (and so is
 * every child of a restricted one): the library allocates from its private
 * arena (mem.h), makes its ring with memfd_create, ftruncate and mmap,
 * looks up no user, starts no thread and registers the ring from the
 * calling thread (client.c). docs/DESIGN-NOTES.md, "Fork", has the rule
 * and the list of paths.
 *
 * Which forks are restricted is decided in the prepare handler, in the
 * parent: any thread besides the forking one, except our registration
 * thread while it is quiet (it never allocates), makes the child
 * restricted; so does not knowing (no /proc).
 */
static bool fork_others; /* set by atfork_prepare, read by atfork_child */

static bool threads_besides_caller(void)
{
	struct stat st;
	if (stat("/proc/self/task", &st) != 0)
		return true;
	/* nlink of /proc/self/task is 2 + the number of threads. */
	nlink_t ours = 3 + (sr_client_thread_quiet() ? 1 : 0);
	return st.st_nlink > ours;
}

static void atfork_prepare(void)
{
	bool others = threads_besides_caller();
	pthread_mutex_lock(&init_lock);
	fork_others = others;
	sr_client_atfork_prepare();
	sr_mem_atfork_prepare();
}

static void atfork_parent(void)
{
	sr_mem_atfork_parent();
	pthread_mutex_unlock(&init_lock);
}

/*
 * In the child: the ring's pages are not mapped (MADV_DONTFORK) and the
 * parent's fds must go, so that the agent sees only the parent's
 * connection. The next span builds a new ring for the child. Everything
 * here is async-signal-safe (see above).
 */
static void atfork_child(void)
{
	pthread_mutex_init(&init_lock, NULL);
	sr_mem_atfork_child();
	bool restricted = fork_others || sr_mem_is_private();
	if (restricted)
		sr_mem_go_private();
	sr_g.fork_restricted = restricted;
	sr_clock_atfork_child();
	sr_resource_atfork_child();
	sr_client_atfork_child(restricted);
	if (sr_g.map.fd >= 0 && (sr_g.state == SR_PROC_ACTIVE || sr_g.state == SR_PROC_CLOSED))
		close(sr_g.map.fd);
	sr_free(sr_g.slots); /* restricted: the C library's memory is left alone */
	int disabled = sr_g.cfg.disabled;
	sr_g.slots = NULL;
	memset(&sr_g.map, 0, sizeof(sr_g.map));
	sr_g.map.fd = -1;
	sr_g.owned = 0;
	sr_g.gen++;
	sr_g.fork_gen++;
	sr_g.state = disabled ? SR_PROC_DISABLED : SR_PROC_UNINIT;
}

bool sr_proc_fork_restricted(void)
{
	return sr_g.fork_restricted;
}

void sr_proc_lock(void)
{
	pthread_mutex_lock(&init_lock);
}

void sr_proc_unlock(void)
{
	pthread_mutex_unlock(&init_lock);
}

static void at_exit(void)
{
	const char *v = secure_getenv("SPANRING_EXIT_TIMEOUT_MS");
	int ms = v && *v ? atoi(v) : 500;
	spanring_shutdown(ms < 0 ? 0 : ms);
}

static void once_init(void)
{
	pthread_key_create(&thread_key, thread_dtor);
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	atexit(at_exit);
}

#ifndef SR_IN_PRELOAD
/* At load, so that the fork handlers exist before the program's first
 * fork: a child must know what its parent was, and a restricted child may
 * not register them itself (pthread_atfork allocates). The LD_PRELOAD shim
 * calls once_init from its constructor instead, at a point where the
 * order of fork handlers is right for it (lib/preload/pl_proc.c). */
__attribute__((constructor)) static void sr_load(void)
{
	pthread_once(&once, once_init);
}
#endif

/* ---- process set-up ----------------------------------------------------------- */

static int ring_setup(void)
{
	struct sr_layout l;
	int err = sr_layout_compute(&l, sr_g.cfg.slot_count, sr_g.cfg.slot_size, SCOPE_CAP, RES_CAP);
	if (err)
		return err;
	err = sr_ring_create(&sr_g.map, &l, "spanring");
	if (err)
		return err;
	struct spanring_ring_hdr *h = sr_hdr(&sr_g.map);
	size_t res_len = 0;
	if (sr_resource_encode(sr_resource(&sr_g.map), l.res_cap, &res_len) == 0)
		h->res_len = (uint32_t)res_len;

	struct sr_slot_w *slots;
	if (sr_memalign((void **)&slots, 64, l.slot_count * sizeof(*slots))) {
		sr_ring_unmap(&sr_g.map, true);
		return -ENOMEM;
	}
	memset(slots, 0, l.slot_count * sizeof(*slots));
	uint32_t n_shared = l.slot_count == 1 ? 1 : (l.slot_count / 8 ? l.slot_count / 8 : 1);
	sr_g.n_exclusive = l.slot_count - n_shared;
	for (uint32_t i = 0; i < l.slot_count; i++) {
		struct sr_slot_w *w = &slots[i];
		sr_lock_init(&w->lock);
		w->data = sr_slot_data(&sr_g.map, i);
		w->prod = sr_prod(&sr_g.map, i);
		w->cons = sr_cons(&sr_g.map, i);
		w->wake = &sr_cons_hdr(&sr_g.map)->need_wakeup;
		w->mask = l.slot_size - 1;
		w->watermark = l.slot_size / 2;
		w->max_record = l.slot_size / 2 < SPANRING_MAX_RECORD ? l.slot_size / 2
								      : SPANRING_MAX_RECORD;
		w->last_scope = SPANRING_SCOPE_NONE;
		w->bell_tail = UINT64_MAX;
		w->shared = i >= sr_g.n_exclusive;
	}
	sr_g.slots = slots;
	/* Release (docs/ABI.md §10, flags): every init field and the Resource
	 * are written; the agent reads the header after it gets the fd. */
	sr_store_release_32(&h->flags, SPANRING_HDR_F_INITIALIZED);
	return 0;
}

int sr_proc_init(void)
{
	pthread_once(&once, once_init);
	pthread_mutex_lock(&init_lock);
	int state = sr_g.state;
	if (state != SR_PROC_UNINIT)
		goto out;
	/* Once per process image. Not "gen == 0": a fork child of a parent
	 * that never set up has a gen of 1 and must still read it. */
	if (!sr_g.configured) {
		sr_g.configured = true;
		sr_g.map.fd = -1;
		sr_config_from_env(&sr_g.cfg);
		sr_clock_init();
	}
	if (sr_g.cfg.disabled) {
		state = SR_PROC_DISABLED;
	} else if (ring_setup() == 0) {
		state = SR_PROC_ACTIVE;
		sr_client_start(&sr_g.map);
	} else {
		/* No ring (memfd refused, no memory): spans become non-recording. */
		state = SR_PROC_DISABLED;
	}
	/* Release: pairs with the load in sr_proc_ready() (internal.h) and
	 * the shim's loads of sr_g.state: the ring and slots are set up. */
	sr_store_int(&sr_g.state, state);
out:
	pthread_mutex_unlock(&init_lock);
	return state;
}

int spanring_init(void)
{
	int s = sr_proc_ready();
	return s == SR_PROC_ACTIVE ? 0 : s == SR_PROC_DISABLED ? -ECANCELED : -ESHUTDOWN;
}

int spanring_shutdown(int timeout_ms)
{
	pthread_mutex_lock(&init_lock);
	int state = sr_g.state;
	if (state == SR_PROC_ACTIVE) {
		sr_store_int(&sr_g.state, SR_PROC_CLOSED); /* release, as above */
		struct spanring_ring_hdr *h = sr_hdr(&sr_g.map);
		/* Release (docs/ABI.md §10, flags): CLOSED at shutdown. */
		sr_store_release_32(&h->flags, h->flags | SPANRING_HDR_F_CLOSED);
	}
	pthread_mutex_unlock(&init_lock);
	if (state != SR_PROC_ACTIVE)
		return state == SR_PROC_CLOSED ? 0 : -ENOTCONN;
	int err = sr_client_flush(timeout_ms);
	sr_client_stop();
	return err;
}

/* ---- threads ---------------------------------------------------------------- */

void sr_rng_seed(struct sr_thread *t)
{
	uint64_t seed[2] = {0, 0};
	if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed)) {
		/* Early boot without entropy: fall back to something unique. */
		seed[0] = sr_clock_ns() ^ ((uint64_t)getpid() << 32);
		seed[1] = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ull;
	}
	t->rng[0] = seed[0] | 1;
	t->rng[1] = seed[1];
	t->rng_fork_gen = sr_g.fork_gen;
}

struct sr_thread *sr_thread_get(void)
{
	struct sr_thread *t = sr_tls;
	if (SR_LIKELY(t != NULL))
		return t;
	pthread_once(&once, once_init);
	t = sr_calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->slot = -1;
	sr_rng_seed(t);
	sr_tls = t;
	/* pthread_setspecific() may allocate (a key past the first 32): not
	 * in a restricted fork child, which then leaks this state if the
	 * thread ends. */
	if (!sr_g.fork_restricted)
		pthread_setspecific(thread_key, t);
	return t;
}

static void slot_release(struct sr_thread *t)
{
	if (t->slot >= 0 && t->exclusive && t->gen == sr_g.gen) {
		/* Release pairs with the CAS in sr_slot_claim(): the next owner sees
		 * our writer state (head copy, last scope). */
		uint64_t bit = 1ull << t->slot;
		uint64_t old;
		do {
			old = sr_load_relaxed_64(&sr_g.owned);
		} while (!sr_cas_64(&sr_g.owned, old, old & ~bit));
	}
	t->slot = -1;
}

static void thread_dtor(void *arg)
{
	struct sr_thread *t = arg;
	slot_release(t);
	while (t->pool) {
		struct spanring_span *s = t->pool;
		t->pool = s->next_free;
		sr_span_free(s);
	}
	sr_tls = NULL;
	sr_free(t);
}

/* Claim an exclusive slot if one is free, else join a shared one. */
void sr_slot_claim(struct sr_thread *t)
{
	/* A thread's first span: a registration left for later starts now. */
	if (SR_UNLIKELY(sr_client_deferred()))
		sr_client_start_deferred();
	const uint32_t nx = sr_g.n_exclusive;
	const uint64_t all = nx >= 64 ? ~0ull : ((1ull << nx) - 1);
	t->gen = sr_g.gen;
	for (;;) {
		uint64_t owned = sr_load_relaxed_64(&sr_g.owned);
		uint64_t free_ = ~owned & all;
		if (!free_)
			break;
		uint32_t i = (uint32_t)__builtin_ctzll(free_);
		/* Pairs with the CAS that let the slot go in slot_release():
		 * the previous owner's writer state is visible. */
		if (sr_cas_64(&sr_g.owned, owned, owned | (1ull << i))) {
			t->slot = (int32_t)i;
			t->exclusive = true;
			return;
		}
	}
	uint32_t nshared = sr_g.map.l.slot_count - nx;
	if (!t->counted_shared) {
		t->counted_shared = true;
		sr_faa_64(&sr_g.slots_shared, 1);
	}
	t->slot = (int32_t)(nx + sr_faa_64(&sr_g.shared_rr, 1) % nshared);
	t->exclusive = false;
	t->retry_claim = 1024;
}

/*
 * t's exclusive slot is full. Take another free exclusive slot that is at
 * most half full (by the agent's tail), and give ours back: one thread
 * can then use every slot nobody else owns, instead of dropping while
 * they sit empty. Lock free (two CAS on the owned mask, as in
 * sr_slot_claim), async-signal-safe. Returns false (and t keeps its slot)
 * when no free slot has room. A thread's spans stay in order within each
 * slot; across slots the agent does not need an order.
 */
bool sr_slot_move(struct sr_thread *t)
{
	/* After a scan that found nothing, the next 64 full-slot events drop
	 * without scanning: a full ring stays cheap to be full. */
	if (t->move_skip) {
		t->move_skip--;
		return false;
	}
	const uint32_t nx = sr_g.n_exclusive;
	const uint64_t all = nx >= 64 ? ~0ull : ((1ull << nx) - 1);
	const uint32_t from = (uint32_t)t->slot;
	uint64_t owned = sr_load_relaxed_64(&sr_g.owned);
	uint64_t free_ = ~owned & all;
	while (free_) {
		uint32_t i = (uint32_t)__builtin_ctzll(free_);
		free_ &= free_ - 1;
		struct sr_slot_w *w = &sr_g.slots[i];
		/* The shared head, not our copy: another thread may claim the
		 * slot and write the copy while we look. A stale value only
		 * makes the choice worse; the CAS below decides. The loads are
		 * C and A of docs/ABI.md §10 (pairing with B and D). */
		uint64_t head = sr_load_acquire_64(&w->prod->head);
		uint64_t tail = sr_load_acquire_64(&w->cons->tail);
		uint64_t size = (uint64_t)w->mask + 1;
		if (tail > head || head - tail > size / 2)
			continue;
		for (;;) {
			owned = sr_load_relaxed_64(&sr_g.owned);
			if (owned & (1ull << i))
				break; /* taken meanwhile: try the next one */
			/* Pairs with the CAS of slot_release(), as in sr_slot_claim(). */
			if (sr_cas_64(&sr_g.owned, owned, owned | (1ull << i))) {
				uint64_t old;
				do {
					old = sr_load_relaxed_64(&sr_g.owned);
				} while (!sr_cas_64(&sr_g.owned, old, old & ~(1ull << from)));
				t->slot = (int32_t)i;
				return true;
			}
		}
	}
	t->move_skip = 64;
	return false;
}

/* ---- spans' heap parts ---------------------------------------------------------- */

void sr_span_free(struct spanring_span *s)
{
	if (s->kv != s->inline_kv)
		sr_free(s->kv);
	sr_free(s->ev);
	sr_free(s->ln);
	sr_free(s->xkv);
	while (s->chunks) {
		struct sr_chunk *c = s->chunks;
		s->chunks = c->next;
		sr_free(c);
	}
	sr_free(s);
}

/* ---- scope table ------------------------------------------------------------- */

int sr_scope_publish(struct sr_tracer *tr)
{
	int err = 0;
	pthread_mutex_lock(&init_lock);
	if (tr->scope_gen == sr_g.gen + 1)
		goto out; /* another thread did it */
	if (sr_g.state != SR_PROC_ACTIVE) {
		err = -ESHUTDOWN;
		goto out;
	}
	struct spanring_ring_hdr *h = sr_hdr(&sr_g.map);
	uint64_t len = h->scope_len;
	uint64_t need = (sizeof(struct spanring_scope_entry) + tr->entry_len + 7) & ~7ull;
	if (len + need > sr_g.map.l.scope_cap) {
		err = -ENOSPC;
		goto out;
	}
	uint8_t *base = sr_scope_table(&sr_g.map) + len;
	struct spanring_scope_entry e = {.len = tr->entry_len};
	memcpy(base, &e, sizeof(e));
	memcpy(base + sizeof(e), tr->entry_body, tr->entry_len);
	/* Pairs with the agent's load-acquire of scope_len before it reads
	 * entries (docs/ABI.md §10, scope_len). */
	sr_store_release_64(&h->scope_len, len + need);
	tr->scope_off = len;
	/* scope_gen is gen+1 so that a zeroed tracer never matches. Release:
	 * pairs with the load-acquires of scope_gen in sr_commit() (commit.h)
	 * and scope_ok() (pl_proc.c): scope_off is set. */
	sr_store_release_32(&tr->scope_gen, sr_g.gen + 1);
out:
	pthread_mutex_unlock(&init_lock);
	return err;
}

/* ---- commit --------------------------------------------------------------------- */

/*
 * The slot looks at least watermark-full by the cached tail. Load the real
 * tail (A) and ring the doorbell when the slot really is above the
 * watermark and the agent has not moved the tail since we last rang: one
 * system call per crossing, not one per span while the slot stays full.
 * The watermark comes from the agent (cons_hdr.watermark_pct) when set.
 */
void sr_doorbell_check(struct sr_slot_w *w, uint64_t head)
{
	const uint64_t size = (uint64_t)w->mask + 1;
	/* A: pairs with the agent's store-release of tail (D). */
	uint64_t tail = sr_load_acquire_64(&w->cons->tail);
	if (tail > head || head - tail > size)
		return; /* not a tail we can use (no agent yet, or a broken one) */
	w->tail_cache = tail;
	/* Acquire: pairs with the agent's store of watermark_pct (docs/ABI.md §10). */
	uint32_t pct = sr_load_acquire_32(&sr_cons_hdr(&sr_g.map)->watermark_pct);
	if (pct >= 1 && pct <= 100)
		w->watermark = (uint32_t)(size * pct / 100);
	if (head - tail < w->watermark || tail == w->bell_tail)
		return;
	/* Acquire: pairs with the store in cl_install_doorbell() (client.c). */
	int fd = sr_load_int(&sr_doorbell_fd);
	if (fd < 0)
		return;
	w->bell_tail = tail;
	uint64_t one = 1;
	/* Non-blocking eventfd: EAGAIN only when the counter would overflow. */
	ssize_t r = write(fd, &one, sizeof(one));
	(void)r;
	w->doorbells++;
	sr_store_relaxed_64(&w->prod->doorbells, w->doorbells);
}

/*
 * The agent said it sleeps (need_wakeup, F in ring_abi.h). The exchange
 * lets one thread of this process ring once per sleep; the others find 0.
 * Without a doorbell (not registered yet) nothing is lost: the client
 * rings once right after it installs one (cl_install_doorbell).
 */
void sr_wake_agent(struct sr_slot_w *w)
{
	/* F (docs/ABI.md §10.1): the exchange pairs with the agent's store of
	 * need_wakeup (E); only the thread that takes the 1 rings. */
	if (!sr_xchg_32(w->wake, 0))
		return;
	/* Acquire: pairs with the store in cl_install_doorbell() (client.c). */
	int fd = sr_load_int(&sr_doorbell_fd);
	if (fd < 0)
		return;
	uint64_t one = 1;
	ssize_t r = write(fd, &one, sizeof(one));
	(void)r;
	w->doorbells++;
	sr_store_relaxed_64(&w->prod->doorbells, w->doorbells);
}

int spanring_get_stats(spanring_stats *out)
{
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	/* Acquire: pairs with the store of state in sr_proc_init(). */
	if (sr_load_int(&sr_g.state) == SR_PROC_UNINIT || !sr_g.slots)
		return 0;
	for (uint32_t i = 0; i < sr_g.map.l.slot_count; i++) {
		struct spanring_slot_prod *p = sr_prod(&sr_g.map, i);
		out->spans += sr_load_relaxed_64(&p->spans);
		out->drop_full += sr_load_relaxed_64(&p->drop_full);
		out->drop_oversize += sr_load_relaxed_64(&p->drop_oversize);
		out->drop_encode += sr_load_relaxed_64(&p->drop_encode);
	}
	out->unsampled = sr_load_relaxed_64(&sr_g.unsampled);
	out->dropped_attrs = sr_load_relaxed_64(&sr_g.dropped_attrs);
	out->slots_shared = sr_load_relaxed_64(&sr_g.slots_shared);
	out->registered = sr_client_registered();
	return 0;
}
