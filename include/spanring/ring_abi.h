/* SPDX-License-Identifier: MIT */
/*
 * spanring shared-memory ABI.
 *
 * This header is the specification of the bytes that a producer (an
 * instrumented process) and the agent share through one sealed memfd, and
 * of the registration messages on the agent's unix socket. docs/ABI.md
 * explains it in prose; the two must agree. Everything here is plain data:
 * explicit-width little-endian integers, no pointers, no enums, no
 * bitfields, every structure pinned by _Static_assert.
 *
 * Versioning policy
 *   SPANRING_ABI_MAJOR changes when a reader built for the old layout would
 *   misread the new one (a field moves, a meaning changes). The agent
 *   refuses a ring whose major differs from its own.
 *   SPANRING_ABI_MINOR changes when something is only added (a field in
 *   reserved space, a new control record, a new feature bit). Readers
 *   accept any minor; a producer may set a feature bit only if the bit is
 *   defined for its minor, and the agent refuses rings that carry
 *   "required" feature bits it does not know (SPANRING_FEAT_REQUIRED_MASK).
 *   Reserved bytes are written as zero and ignored by readers.
 *
 * Layout of the memfd (all offsets are multiples of SPANRING_PAGE):
 *
 *   0            struct spanring_ring_hdr       producer-written, 1 page
 *   prod_off     struct spanring_slot_prod[N]   producer-written, 64 B each
 *   cons_off     struct spanring_cons_hdr +
 *                struct spanring_slot_cons[N]   agent-written, 64 B each
 *   scope_off    scope table (scope_cap bytes)  producer-written, append-only
 *   res_off      encoded Resource (res_cap)     producer-written before registration
 *   data_off     slot 0 data, slot 1 data, ...  producer-written, slot_size each
 *
 * The layout is a pure function of (slot_count, slot_size, scope_cap,
 * res_cap): see sr_layout_compute() in lib/ring.h. The header stores
 * the offsets too so that a tool can read a ring without this header, but
 * the agent recomputes them and rejects a ring whose stored offsets differ.
 *
 * Slots. Each slot is a byte stream with a single writer at a time.
 *   head (slot_prod.head): bytes ever committed, written by the producer.
 *   tail (slot_cons.tail): bytes ever released, written by the agent.
 *   Both only grow. 0 <= head - tail <= slot_size. Byte number p of the
 *   stream lives at data offset (p & (slot_size - 1)) of the slot. Each
 *   slot's data is mapped twice back to back (mirror), so a record that
 *   crosses the end of the slot is contiguous in virtual memory.
 *
 * Ordering protocol (pairs):
 *
 *   producer (commit)                       agent (drain / release)
 *   A: t = load_acquire(tail)               C: h = load_acquire(head)
 *      if h0 + n - t > slot_size: drop         read records in [tail, h)
 *   write record bytes at [h0, h0+n)           ... exporters finish ...
 *   B: store_release(head, h0 + n)          D: store_release(tail, t')
 *
 *   B pairs with C: the agent sees every byte of a record whose end it
 *   has read from head. D pairs with A: the producer overwrites bytes only
 *   after the agent has finished reading them (the release of D orders the
 *   agent's reads, and the exporters' completion, before the new tail).
 *
 * Wake-up protocol (ABI 1.2, docs/ABI.md "Sleeping agent"):
 *
 *   producer (after B)                      agent (before it sleeps)
 *      compiler barrier                     E: store(need_wakeup, 1), every ring
 *   F: w = load(need_wakeup)                   membarrier(...GLOBAL_EXPEDITED or GLOBAL)
 *      if w && exchange(need_wakeup, 0):    G: C on every slot of every ring;
 *          write(doorbell, 1)                  sleep only if no head moved
 *
 *   The membarrier puts a full barrier into every running thread between
 *   E and G, so for each commit either G sees its head (B) or F sees the
 *   1 stored by E: a commit is never missed (no lost wake-up). The
 *   exchange makes one thread ring once per sleep; a producer that writes
 *   need_wakeup only changes when its own ring is drained.
 *   (ABI 1.3) A producer whose process registered for
 *   MEMBARRIER_CMD_GLOBAL_EXPEDITED says so (SPANRING_REG_F_MB_EXPEDITED);
 *   while every armed ring says so, the agent uses that command
 *   (microseconds) instead of MEMBARRIER_CMD_GLOBAL (milliseconds).
 *
 * Records. The bytes of a slot are a sequence of protobuf fields at the
 * level of the ScopeSpans message:
 *   span record:    tag(2, LEN) varint(len) <Span message bytes>
 *   control record: a field whose number is in
 *                   [SPANRING_CTRL_FIELD_MIN, SPANRING_CTRL_FIELD_MAX];
 *                   consumed by the agent, never forwarded.
 * A record never crosses head. Varints in tags and lengths are at most 5
 * bytes; a whole span record (tag, length and Span bytes) is at most
 * min(slot_size / 2, SPANRING_MAX_RECORD) bytes.
 */
#ifndef SPANRING_RING_ABI_H
#define SPANRING_RING_ABI_H

#include <stddef.h>
#include <stdint.h>

#define SPANRING_RING_MAGIC 0x474e49524e415053ull /* "SPANRING" in memory (little-endian) */
#define SPANRING_ABI_MAJOR 1u
#define SPANRING_ABI_MINOR 3u

#define SPANRING_PAGE 4096u      /* unit of the layout; mapping needs an MMU page of 4 KiB */
#define SPANRING_CACHELINE 64u
#define SPANRING_MAX_SLOTS 64u
#define SPANRING_MIN_SLOT_SIZE (16u * 1024u)     /* power of two, multiple of SPANRING_PAGE */
#define SPANRING_MAX_SLOT_SIZE (64u * 1024u * 1024u)
#define SPANRING_MAX_RECORD (1u << 20)           /* 1 MiB; larger spans are dropped (oversize) */
#define SPANRING_MAX_SCOPE_CAP (1u << 20)
#define SPANRING_MAX_RES_CAP (1u << 20)

/* ---- header flags (spanring_ring_hdr.flags), producer-written ---------- */
#define SPANRING_HDR_F_INITIALIZED (1u << 0) /* header, resource complete */
#define SPANRING_HDR_F_CLOSED (1u << 1)      /* advisory: producer is shutting down; commits
                                                already in progress may still land */

/* ---- feature bits (spanring_ring_hdr.features) -------------------------- */
/* None defined in 1.0. Bits in the required mask make an unknowing agent refuse. */
#define SPANRING_FEAT_REQUIRED_MASK 0xffffffff00000000ull

/*
 * struct spanring_ring_hdr: offset 0, one page. Written by the producer
 * before registration and not changed afterwards, except `flags` (CLOSED)
 * and `scope_len`. The agent reads each field once into its own copy and
 * validates it (sr_hdr_validate() in lib/ring.h).
 */
struct spanring_ring_hdr {
	uint64_t magic;          /* SPANRING_RING_MAGIC; also the endianness check */
	uint32_t abi_major;      /* SPANRING_ABI_MAJOR */
	uint32_t abi_minor;      /* SPANRING_ABI_MINOR */
	uint32_t header_size;    /* sizeof(struct spanring_ring_hdr) */
	uint32_t page_size;      /* SPANRING_PAGE */
	uint64_t features;       /* feature bits, 0 in 1.0 */
	uint64_t total_size;     /* size of the memfd in bytes */
	uint32_t slot_count;     /* 1 .. SPANRING_MAX_SLOTS */
	uint32_t slot_size;      /* power of two, SPANRING_MIN..MAX_SLOT_SIZE */
	uint64_t prod_off;       /* offset of slot_prod[0] */
	uint64_t cons_off;       /* offset of the consumer page(s) */
	uint64_t scope_off;      /* offset of the scope table */
	uint64_t res_off;        /* offset of the encoded Resource */
	uint64_t data_off;       /* offset of slot 0's data */
	uint32_t scope_cap;      /* bytes reserved for the scope table */
	uint32_t res_cap;        /* bytes reserved for the Resource */
	uint32_t res_len;        /* bytes of encoded Resource actually written */
	uint32_t flags;          /* SPANRING_HDR_F_*; CLOSED is stored with release */
	/*
	 * scope_len: bytes of the scope table in use. The producer appends an
	 * entry, then store-releases scope_len (pairs with the agent's
	 * load-acquire before it reads an entry).
	 */
	uint64_t scope_len;
	uint32_t creator_pid;    /* informational only: the agent uses SO_PEERCRED */
	uint32_t reserved0;
	uint64_t created_ns;     /* CLOCK_REALTIME at creation, informational */
	uint8_t reserved[4096 - 128];
};
_Static_assert(sizeof(struct spanring_ring_hdr) == 4096, "ring header is one page");
_Static_assert(offsetof(struct spanring_ring_hdr, magic) == 0, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, abi_major) == 8, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, abi_minor) == 12, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, header_size) == 16, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, page_size) == 20, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, features) == 24, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, total_size) == 32, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, slot_count) == 40, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, slot_size) == 44, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, prod_off) == 48, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, cons_off) == 56, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, scope_off) == 64, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, res_off) == 72, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, data_off) == 80, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, scope_cap) == 88, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, res_cap) == 92, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, res_len) == 96, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, flags) == 100, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, scope_len) == 104, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, creator_pid) == 112, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, created_ns) == 120, "abi");
_Static_assert(offsetof(struct spanring_ring_hdr, reserved) == 128, "abi");

/*
 * struct spanring_slot_prod: one cache line per slot, producer-written.
 * head is stored with release by the slot's current writer (B) and loaded
 * with acquire by the agent (C). The counters are plain stores by the
 * writer (relaxed); readers treat them as statistics.
 */
struct spanring_slot_prod {
	uint64_t head;             /* bytes committed to this slot, ever */
	uint64_t spans;            /* span records committed */
	uint64_t drop_full;        /* spans dropped: not enough free space */
	uint64_t drop_oversize;    /* spans dropped: record > max record size */
	uint64_t drop_encode;      /* spans dropped otherwise (scope table full, no memory) */
	uint64_t doorbells;        /* doorbell rings (watermark crossings) */
	uint64_t reserved[2];
};
_Static_assert(sizeof(struct spanring_slot_prod) == 64, "abi");
_Static_assert(offsetof(struct spanring_slot_prod, head) == 0, "abi");
_Static_assert(offsetof(struct spanring_slot_prod, spans) == 8, "abi");
_Static_assert(offsetof(struct spanring_slot_prod, drop_full) == 16, "abi");
_Static_assert(offsetof(struct spanring_slot_prod, drop_oversize) == 24, "abi");
_Static_assert(offsetof(struct spanring_slot_prod, drop_encode) == 32, "abi");
_Static_assert(offsetof(struct spanring_slot_prod, doorbells) == 40, "abi");

/*
 * struct spanring_cons_hdr: first cache line of the consumer page(s),
 * agent-written. The producer only reads it.
 */
struct spanring_cons_hdr {
	uint32_t agent_abi_major;  /* the agent's ABI major, 0 before any agent */
	uint32_t watermark_pct;    /* doorbell watermark in percent of slot_size, 1..100;
				      anything else: the producer's default (50) */
	uint64_t agent_epoch;      /* incremented by each agent that adopts the ring */
	/*
	 * (ABI 1.2) need_wakeup: the agent stores SPANRING_WAKE_ASLEEP (E)
	 * before it sleeps; a producer that loads it non-zero after a commit
	 * (F) exchanges it with 0 and, if it got the non-zero value, writes
	 * its doorbell once. The one field of this line the producer writes.
	 * The agent never reads it back.
	 */
	uint32_t need_wakeup;
	uint32_t reserved0;
	uint64_t reserved[5];
};
_Static_assert(sizeof(struct spanring_cons_hdr) == 64, "abi");
_Static_assert(offsetof(struct spanring_cons_hdr, agent_abi_major) == 0, "abi");
_Static_assert(offsetof(struct spanring_cons_hdr, watermark_pct) == 4, "abi");
_Static_assert(offsetof(struct spanring_cons_hdr, agent_epoch) == 8, "abi");
_Static_assert(offsetof(struct spanring_cons_hdr, need_wakeup) == 16, "abi");

#define SPANRING_WAKE_ASLEEP 1u
/* The first ABI minor whose producers check need_wakeup; the agent polls
 * rings of older minors while they are registered. */
#define SPANRING_ABI_MINOR_WAKE 2u

/*
 * struct spanring_slot_cons: one cache line per slot, agent-written,
 * following the consumer header. tail is stored with release (D) by the
 * agent and loaded with acquire by the producer (A). scope_at_tail is the
 * scope-table offset of the scope in effect at `tail` (so an agent that
 * restarts in the middle of a scope run knows the scope), or
 * SPANRING_SCOPE_NONE; it is stored before tail.
 */
struct spanring_slot_cons {
	uint64_t tail;             /* bytes released in this slot, ever */
	uint64_t scope_at_tail;    /* scope in effect at tail */
	uint64_t reserved[6];
};
_Static_assert(sizeof(struct spanring_slot_cons) == 64, "abi");
_Static_assert(offsetof(struct spanring_slot_cons, tail) == 0, "abi");
_Static_assert(offsetof(struct spanring_slot_cons, scope_at_tail) == 8, "abi");

#define SPANRING_SCOPE_NONE UINT64_MAX

/*
 * Scope table. Append-only sequence of entries, each 8-byte aligned:
 *   uint32_t len;      bytes of `body`
 *   uint32_t reserved; zero
 *   uint8_t  body[len]; fields at the level of ScopeSpans other than spans:
 *                      tag(1,LEN) InstrumentationScope, optionally
 *                      tag(3,LEN) schema_url
 * An entry is identified by its offset in the table. The agent forwards
 * `body` as the beginning of a ScopeSpans message.
 */
struct spanring_scope_entry {
	uint32_t len;
	uint32_t reserved;
	/* uint8_t body[len]; padded to a multiple of 8 */
};
_Static_assert(sizeof(struct spanring_scope_entry) == 8, "abi");

/*
 * Control records: protobuf fields in a reserved range that OTLP does not
 * use at the ScopeSpans level. Tags of these fields are two bytes.
 *
 *   SPANRING_CTRL_SCOPE  (VARINT)  value: scope-table offset of the scope
 *                                  of the span records that follow.
 *   SPANRING_CTRL_LOST   (VARINT)  value: spans dropped in this slot since
 *                                  the previous record (in-order drop mark).
 *   SPANRING_CTRL_PAD    (LEN)     padding; payload ignored.
 * Unknown fields in the control range are skipped by their wire type.
 */
#define SPANRING_CTRL_FIELD_MIN 1900u
#define SPANRING_CTRL_FIELD_MAX 1999u
#define SPANRING_CTRL_SCOPE 1900u
#define SPANRING_CTRL_LOST 1901u
#define SPANRING_CTRL_PAD 1902u

#define SPANRING_SPAN_FIELD 2u /* ScopeSpans.spans */

/* Protobuf wire types used in records. */
#define SPANRING_WT_VARINT 0u
#define SPANRING_WT_I64 1u
#define SPANRING_WT_LEN 2u
#define SPANRING_WT_I32 5u

/* ------------------------------------------------------------------------
 * Registration protocol, on the agent's unix socket (SOCK_SEQPACKET).
 *
 * 1. The producer connects and sends one struct spanring_reg_req with the
 *    ring's memfd attached (SCM_RIGHTS, exactly one fd).
 * 2. The agent checks the peer (SO_PEERCRED, allow-lists), the fd (a memfd
 *    with F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL and without F_SEAL_WRITE or
 *    F_SEAL_FUTURE_WRITE, size), the header, and
 *    answers one struct spanring_reg_resp. On success it attaches one
 *    eventfd, the doorbell, which the producer writes (8 bytes, value 1)
 *    when a slot crosses the watermark, when it finds need_wakeup set
 *    (ABI 1.2), and once right after it installed the doorbell (ABI 1.2:
 *    a commit made before that found no doorbell to ring).
 * 3. The connection stays open for the ring's life. Its end (the producer
 *    exited, crashed or closed it) tells the agent to drain and unmap.
 * With SPANRING_REG_F_NOREPLY step 2 sends nothing back (no answer, no
 * doorbell); everything else is the same.
 * -------------------------------------------------------------------- */
#define SPANRING_REG_MAGIC 0x31474552u /* "REG1" */

struct spanring_reg_req {
	uint32_t magic;          /* SPANRING_REG_MAGIC */
	uint32_t abi_major;
	uint32_t abi_minor;
	uint32_t flags;          /* SPANRING_REG_F_* */
	uint64_t ring_size;      /* must equal the memfd's size */
	uint64_t reserved[5];
};
_Static_assert(sizeof(struct spanring_reg_req) == 64, "abi");
_Static_assert(offsetof(struct spanring_reg_req, magic) == 0, "abi");
_Static_assert(offsetof(struct spanring_reg_req, abi_major) == 4, "abi");
_Static_assert(offsetof(struct spanring_reg_req, abi_minor) == 8, "abi");
_Static_assert(offsetof(struct spanring_reg_req, flags) == 12, "abi");
_Static_assert(offsetof(struct spanring_reg_req, ring_size) == 16, "abi");
_Static_assert(offsetof(struct spanring_reg_req, reserved) == 24, "abi");

#define SPANRING_REG_F_RECONNECT (1u << 0) /* the ring was registered before */
/* (ABI 1.1) Send no reply and make no doorbell: the producer does not
 * wait (it is ending: exit, exec, a fatal signal). The agent drains the
 * ring at once, polls it while the connection lasts and drains it when
 * the connection ends. An agent of ABI 1.0 ignores the bit and answers;
 * the producer never reads the answer. */
#define SPANRING_REG_F_NOREPLY (1u << 1)
/* (ABI 1.3) The producer's process is registered for
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED (membarrier(2)), so the agent may use that
 * command for G of the wake-up protocol. A claim that is not true delays
 * only this producer's own spans. Agents of ABI < 1.3 ignore the bit. */
#define SPANRING_REG_F_MB_EXPEDITED (1u << 2)

struct spanring_reg_resp {
	uint32_t magic;          /* SPANRING_REG_MAGIC */
	int32_t status;          /* SPANRING_REG_OK or a SPANRING_REG_E* reason */
	uint32_t abi_major;      /* the agent's */
	uint32_t abi_minor;
	uint64_t producer_id;    /* agent-assigned id, for logs and tools */
	char message[40];        /* NUL-terminated human-readable reason */
};
_Static_assert(sizeof(struct spanring_reg_resp) == 64, "abi");
_Static_assert(offsetof(struct spanring_reg_resp, magic) == 0, "abi");
_Static_assert(offsetof(struct spanring_reg_resp, status) == 4, "abi");
_Static_assert(offsetof(struct spanring_reg_resp, abi_major) == 8, "abi");
_Static_assert(offsetof(struct spanring_reg_resp, abi_minor) == 12, "abi");
_Static_assert(offsetof(struct spanring_reg_resp, producer_id) == 16, "abi");
_Static_assert(offsetof(struct spanring_reg_resp, message) == 24, "abi");

/* Reason codes answered to a producer (spanring_reg_resp.status). */
#define SPANRING_REG_OK 0
#define SPANRING_REG_EPROTO 1     /* malformed request or missing/extra fd */
#define SPANRING_REG_EABI 2       /* unsupported ABI major or required feature */
#define SPANRING_REG_ENOTMEMFD 3  /* fd is not a memfd */
#define SPANRING_REG_ESEALS 4     /* memfd lacks the required seals */
#define SPANRING_REG_ESIZE 5      /* size mismatch or out of bounds */
#define SPANRING_REG_EHEADER 6    /* header fields invalid or inconsistent */
#define SPANRING_REG_EPERM 7      /* peer not allowed */
#define SPANRING_REG_ELIMIT 8     /* per-uid or global limit reached */
#define SPANRING_REG_EINTERNAL 9  /* agent-side failure (mmap, memory) */

#endif /* SPANRING_RING_ABI_H */
