/* SPDX-License-Identifier: MIT */
/*
 * Producer internals: span objects, per-thread state, per-slot writer
 * state. Hidden from the library's users.
 */
#ifndef SPANRING_LIB_INTERNAL_H
#define SPANRING_LIB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "atomics.h"
#include "ring.h"
#include "spanring/spanring.h"

#define SR_ALWAYS_INLINE static inline __attribute__((always_inline))
#define SR_LIKELY(x) __builtin_expect(!!(x), 1)
#define SR_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- configuration, read once from the environment ---------------------- */

enum sr_sampler {
	SR_SAMPLE_ALWAYS_ON,
	SR_SAMPLE_ALWAYS_OFF,
	SR_SAMPLE_RATIO,
	SR_SAMPLE_PB_ALWAYS_ON,
	SR_SAMPLE_PB_ALWAYS_OFF,
	SR_SAMPLE_PB_RATIO,
};

struct sr_config {
	bool disabled;                /* OTEL_SDK_DISABLED=true */
	enum sr_sampler sampler;
	double ratio;                 /* traceidratio argument */
	uint64_t ratio_bound;         /* sample when the id's low 56 bits < bound */
	uint32_t attr_count_limit;    /* span attributes */
	uint32_t attr_value_limit;    /* bytes; UINT32_MAX = none */
	uint32_t event_count_limit;
	uint32_t link_count_limit;
	uint32_t event_attr_limit;
	uint32_t link_attr_limit;
	uint32_t slot_count;
	uint32_t slot_size;
};

/* Defaults for the ring's geometry when the environment does not set it
 * (call before the first span; invalid values are ignored). */
SR_HIDDEN void sr_config_set_ring_defaults(uint32_t slots, uint32_t slot_size);
/* Parse the environment into *c (defaults for anything unset or invalid). */
SR_HIDDEN void sr_config_from_env(struct sr_config *c);
/* Is a span with this trace id and parent sampled? */
SR_HIDDEN bool sr_sample(const struct sr_config *c, const uint8_t trace_id[16], bool has_parent,
			 bool parent_sampled, bool parent_remote);

/* ---- attributes --------------------------------------------------------- */

/* A string attribute array item, copied into the span's arena. */
struct sr_str {
	const char *p;
	uint32_t len;
};

/* One attribute; 32 bytes. */
struct sr_kv {
	const char *key;
	union {
		const void *ptr;  /* string/bytes data, or array items */
		int64_t i;
		double d;
		bool b;
	} v;
	uint32_t key_len;
	uint32_t vlen;            /* string/bytes length, or array item count */
	uint32_t any_len;         /* cached size of the AnyValue message (encoder) */
	uint32_t msg_len;         /* cached size of the KeyValue message (encoder) */
	uint8_t type;             /* spanring_attr_type */
	uint8_t pad[7];
};
_Static_assert(sizeof(struct sr_kv) == 40, "sr_kv size");

struct sr_event {
	const char *name;
	uint64_t time_ns;
	uint32_t name_len;
	uint32_t kv_start, kv_count;  /* in span->xkv */
	uint32_t dropped_attrs;
	uint32_t enc_len;             /* cached size of the Event message */
};

struct sr_link {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	const char *trace_state;
	uint32_t ts_len;
	uint32_t flags;               /* W3C flags | remote bits, as Span.Link.flags */
	uint32_t kv_start, kv_count;
	uint32_t dropped_attrs;
	uint32_t enc_len;
};

/* Chunked arena for copied strings: never moves what it handed out. */
struct sr_chunk {
	struct sr_chunk *next;
	size_t cap;
	uint8_t data[];
};

#define SR_INLINE_KV 8
#define SR_INLINE_ARENA 256

/*
 * Span states. ZOMBIE: ended while still linked in its owner thread's
 * chain of current spans (ended out of order, or by another thread); the
 * owner unlinks and recycles it when it reaches the top of the chain.
 */
enum {
	SR_SPAN_FREE = 0,
	SR_SPAN_LIVE = 0x5350414e,
	SR_SPAN_NONREC = 0x4e4f4e52,
	SR_SPAN_ZOMBIE = 0x5a4f4d42,
};

struct spanring_span {
	uint32_t state;              /* SR_SPAN_* */
	uint8_t kind;
	uint8_t status;
	bool has_parent;
	bool made_current;
	uint8_t trace_flags;
	bool parent_remote;
	uint16_t pad0;
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_id[8];
	struct sr_tracer *tracer;
	struct spanring_span *prev_current;
	struct sr_thread *owner;     /* thread whose current-span chain holds it */
	const char *name;
	uint32_t name_len;
	uint32_t ts_len;
	const char *trace_state;
	const char *status_msg;
	uint32_t status_msg_len;
	uint32_t dropped_attrs;
	uint64_t start_ns;

	struct sr_kv *kv;            /* span attributes: inline_kv or heap */
	uint32_t nkv, kv_cap;
	uint32_t kv_bytes;           /* encoded size of all span attribute fields */
	struct sr_event *ev;
	uint32_t nev, ev_cap, dropped_events;
	struct sr_link *ln;
	uint32_t nln, ln_cap, dropped_links;
	struct sr_kv *xkv;           /* attributes of events and links */
	uint32_t nxkv, xkv_cap;

	/* arena */
	uint8_t *a_cur, *a_end;
	struct sr_chunk *chunks;     /* extra chunks, kept across reuse */
	struct sr_chunk *chunk_cur;  /* chunk a_cur points into, NULL: inline */

	struct spanring_span *next_free;
	struct sr_kv inline_kv[SR_INLINE_KV];
	uint8_t inline_arena[SR_INLINE_ARENA];
};

/* ---- tracers / scopes ---------------------------------------------------- */

struct sr_tracer {
	struct sr_tracer *next;
	char *name, *version, *schema_url;
	uint64_t scope_off;      /* offset in the current ring's scope table */
	uint32_t scope_gen;      /* ring generation scope_off belongs to */
	uint32_t index;
	uint8_t *entry_body;     /* encoded ScopeSpans prefix (scope + schema_url) */
	uint32_t entry_len;
};

/* ---- per-slot writer state (process-local) ------------------------------ */

struct sr_slot_w {
	uint64_t head;               /* our copy of slot_prod.head */
	uint64_t tail_cache;         /* last tail loaded (acquire) */
	uint64_t last_scope;         /* scope of the previous record, NONE at start */
	uint64_t pending_lost;       /* drops not yet marked in the stream */
	uint64_t spans, drop_full, drop_oversize, drop_encode, doorbells;
	uint8_t *data;               /* mirror-mapped slot data */
	struct spanring_slot_prod *prod;
	struct spanring_slot_cons *cons;
	uint32_t *wake;              /* the ring's cons_hdr.need_wakeup */
	uint32_t mask;
	uint32_t watermark;          /* bytes */
	uint64_t bell_tail;          /* tail when we last rang the doorbell */
	uint32_t max_record;
	bool shared;
	sr_lock_t lock;              /* used when the slot is shared (last: the
					fields above are the commit's) */
} __attribute__((aligned(64)));

/* ---- per-thread state ----------------------------------------------------- */

struct sr_thread {
	uint32_t gen;                /* process ring generation of `slot` */
	int32_t slot;                /* -1: none */
	bool exclusive;
	bool counted_shared;         /* counted once in sr_g.slots_shared */
	struct spanring_span *current;
	struct spanring_span *pool;
	uint32_t npool;
	uint32_t retry_claim;        /* shared-slot threads retry exclusivity */
	uint32_t move_skip;          /* full-slot events before the next move scan */
	uint32_t rng_fork_gen;
	uint64_t rng[2];             /* xorshift128+ state */
};

/* ---- process state -------------------------------------------------------- */

struct sr_proc {
	int state;                   /* SR_PROC_* (atomic: release stores, acquire loads) */
	uint32_t gen;                /* bumped when the ring is replaced (fork) */
	uint32_t fork_gen;           /* bumped in every forked child */
	bool configured;             /* cfg read from the environment */
	bool fork_restricted;        /* a fork child of a multithreaded process
	                              * (or of such a child): see "Fork" in
	                              * docs/DESIGN-NOTES.md */
	struct sr_config cfg;
	struct sr_map map;
	struct sr_slot_w *slots;
	uint32_t n_exclusive;        /* slots [0, n_exclusive) are owned by one thread */
	uint64_t owned;              /* bitmap of owned exclusive slots */
	uint64_t shared_rr;          /* round robin over shared slots */
	uint64_t unsampled;          /* approximate (relaxed) */
	uint64_t dropped_attrs;
	uint64_t slots_shared;
};

enum { SR_PROC_UNINIT = 0, SR_PROC_ACTIVE = 1, SR_PROC_DISABLED = 2, SR_PROC_CLOSED = 3 };

SR_HIDDEN extern struct sr_proc sr_g;
SR_HIDDEN extern struct spanring_span sr_noop_span;

/* The process lock (set-up, tracers, scope table); fork-safe. */
SR_HIDDEN void sr_proc_lock(void);
SR_HIDDEN void sr_proc_unlock(void);

/* Slow path of first use in a process (or after fork). Returns SR_PROC_*. */
SR_HIDDEN int sr_proc_init(void);
static inline int sr_proc_ready(void)
{
	/* Acquire: pairs with the store of state in sr_proc_init() (producer.c). */
	int s = sr_load_int(&sr_g.state);
	return SR_LIKELY(s != SR_PROC_UNINIT) ? s : sr_proc_init();
}

/* The calling thread's state (created on first use). NULL on ENOMEM. */
SR_HIDDEN struct sr_thread *sr_thread_get(void);

/* Commit a finished recording span: lib/commit.h (static inline). Its slow paths: */
SR_HIDDEN void sr_slot_claim(struct sr_thread *t);
/* Free a span that is not in a thread's pool, with its heap parts. */
SR_HIDDEN void sr_span_free(struct spanring_span *s);
SR_HIDDEN bool sr_slot_move(struct sr_thread *t);
SR_HIDDEN void sr_doorbell_check(struct sr_slot_w *w, uint64_t head);
SR_HIDDEN void sr_wake_agent(struct sr_slot_w *w);

/* Scope table: make sure tracer's scope entry exists in the current ring. */
SR_HIDDEN int sr_scope_publish(struct sr_tracer *tr);

/* ---- encoder: lib/encode.h (static inline) ------------------------------- */

/* ---- ids and time --------------------------------------------------------- */

SR_HIDDEN void sr_rng_seed(struct sr_thread *t);
static inline uint64_t sr_rng_next(struct sr_thread *t)
{
	/* xorshift128+: fast, statistically fine for ids (not for secrets). */
	uint64_t s1 = t->rng[0];
	const uint64_t s0 = t->rng[1];
	const uint64_t r = s0 + s1;
	t->rng[0] = s0;
	s1 ^= s1 << 23;
	t->rng[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
	return r;
}

/* Span clock (lib/clock.c): CLOCK_REALTIME, extrapolated from the TSC when safe. */
enum { SR_CLK_OFF = 0, SR_CLK_CALIBRATING = 1, SR_CLK_TSC = 2 };
struct sr_clock {
	uint32_t seq;          /* seqlock: odd while the base is being replaced */
	int state;             /* SR_CLK_* */
	uint64_t base_tsc, base_ns, mult, next_tsc;
	uint64_t cal_tsc, cal_ns; /* start of the calibration interval (under lock) */
	int lock;
};
SR_HIDDEN extern struct sr_clock sr_clk;
SR_HIDDEN void sr_clock_init(void);
SR_HIDDEN uint64_t sr_clock_slow(void);
SR_HIDDEN void sr_clock_atfork_child(void);
/* Is this process a restricted fork child (see "Fork" in lib/producer.c)? */
SR_HIDDEN bool sr_proc_fork_restricted(void);

#if defined(__x86_64__)
#include <x86intrin.h>
/* Seqlock read: pairs with sr_seq_write_begin()/_end() in recalibrate()
 * (lib/clock.c). state is read relaxed: the seqlock validates what it
 * guards, and a stale state only sends this read to sr_clock_slow(). */
static inline uint64_t sr_clock_ns(void)
{
	if (SR_LIKELY(sr_hot_load_relaxed_int(&sr_clk.state) == SR_CLK_TSC)) {
		for (;;) {
			uint32_t seq = sr_seq_read_begin(&sr_clk.seq);
			uint64_t tsc = __rdtsc();
			uint64_t bt = sr_seq_load_64(&sr_clk.base_tsc);
			uint64_t bn = sr_seq_load_64(&sr_clk.base_ns);
			uint64_t m = sr_seq_load_64(&sr_clk.mult);
			uint64_t nt = sr_seq_load_64(&sr_clk.next_tsc);
			if (SR_UNLIKELY((seq & 1) || seq != sr_seq_read_end(&sr_clk.seq)))
				continue;
			if (SR_UNLIKELY(tsc >= nt || tsc < bt))
				break;
			return bn + (uint64_t)(((unsigned __int128)(tsc - bt) * m) >> 32);
		}
	}
	return sr_clock_slow();
}
#else
static inline uint64_t sr_clock_ns(void)
{
	return sr_clock_slow();
}
#endif

/* ---- attribute helpers (lib/attr.c) --------------------------------------- */

/* Length of the longest valid UTF-8 prefix of s[0..n). */
SR_HIDDEN size_t sr_utf8_valid_prefix(const char *s, size_t n);
/* Truncate n to at most limit bytes without splitting a UTF-8 sequence. */
SR_HIDDEN size_t sr_utf8_truncate_slow(const char *s, size_t n, size_t limit);
static inline size_t sr_utf8_truncate(const char *s, size_t n, size_t limit)
{
	return SR_LIKELY(n <= limit) ? n : sr_utf8_truncate_slow(s, n, limit);
}
/* Slow path of sr_arena_alloc: a new chunk. */
SR_HIDDEN void *sr_arena_alloc_slow(struct spanring_span *s, size_t n, size_t align);
/* n bytes from the span's arena (stable until the span is recycled); NULL on ENOMEM. */
static inline void *sr_arena_alloc(struct spanring_span *s, size_t n, size_t align)
{
	uintptr_t cur = ((uintptr_t)s->a_cur + (align - 1)) & ~(uintptr_t)(align - 1);
	if (SR_LIKELY(cur + n <= (uintptr_t)s->a_end)) {
		s->a_cur = (uint8_t *)(cur + n);
		return (void *)cur;
	}
	return sr_arena_alloc_slow(s, n, align);
}
/* True when s[0..n) is all ASCII: overlapping word loads, no per-byte loop. */
static inline bool sr_is_ascii(const char *s, size_t n)
{
	uint64_t acc = 0, w;
	if (n >= 8) {
		size_t i = 0;
		for (; i + 8 <= n; i += 8) {
			__builtin_memcpy(&w, s + i, 8);
			acc |= w;
		}
		__builtin_memcpy(&w, s + n - 8, 8);
		return !((acc | w) & 0x8080808080808080ull);
	}
	if (n >= 4) {
		uint32_t a, b;
		__builtin_memcpy(&a, s, 4);
		__builtin_memcpy(&b, s + n - 4, 4);
		return !((a | b) & 0x80808080u);
	}
	for (size_t i = 0; i < n; i++)
		acc |= (uint8_t)s[i];
	return !(acc & 0x80);
}
/* Is s[0..n) valid UTF-8? */
static inline bool sr_utf8_valid(const char *s, size_t n)
{
	return SR_LIKELY(sr_is_ascii(s, n)) || sr_utf8_valid_prefix(s, n) == n;
}
/* Length of the NUL-terminated s, and whether it is valid UTF-8. */
static inline size_t sr_str_check(const char *s, bool *valid)
{
	size_t n = __builtin_strlen(s);
	*valid = sr_utf8_valid(s, n);
	return n;
}
/* Inline validity of a span context (ids not all zero). */
static inline bool sr_ctx_valid(const spanring_span_context *c)
{
	uint64_t a, b, d;
	__builtin_memcpy(&a, c->trace_id, 8);
	__builtin_memcpy(&b, c->trace_id + 8, 8);
	__builtin_memcpy(&d, c->span_id, 8);
	return (a | b) && d;
}
/*
 * Append or replace an attribute in kv[0..*n) (capacity grown as needed,
 * limit enforced). copy: duplicate key/value into the arena.
 * Returns 0, -ENOSPC (limit: dropped), -EILSEQ, -EINVAL, -ENOMEM.
 */
SR_HIDDEN int sr_attr_set(struct spanring_span *s, const spanring_attr *a, bool copy);
/* Fast paths for string and scalar attributes: lib/attr_fast.h. */
/* Append n attributes for an event/link into s->xkv; returns kept count via
 * *kept and dropped via *dropped. */
SR_HIDDEN int sr_attrs_append_x(struct spanring_span *s, const spanring_attr *a, size_t n,
				uint32_t limit, uint32_t *start, uint32_t *kept, uint32_t *dropped);

#endif
