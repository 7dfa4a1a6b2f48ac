/* SPDX-License-Identifier: MIT */
/*
 * Draining a producer's ring into the current batch (drain.c), and giving
 * the slots' bytes back when the batches holding them are done.
 *
 * The drain owns each slot's consumer side: what it walked (pos), what it
 * released (tail, which only it stores into the ring) and the chunks that
 * batches hold in between.
 */
#ifndef SPANRING_AGENT_DRAIN_H
#define SPANRING_AGENT_DRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "chunkq.h"

struct agent_producer;
struct batch;
struct scope_ent;

struct drain_slot {
	uint64_t tail;      /* released position: what we stored in slot_cons.tail */
	uint64_t pos;       /* walked position: records before it are in batches */
	uint64_t last_head; /* last head seen (head must not move backwards) */
	uint64_t scope;     /* scope-table offset in effect at pos, or SCOPE_NONE */
	const struct scope_ent *scope_ent; /* its cache entry (NULL for NONE) */
	struct chunkq chunks; /* runs of [tail, pos) held by batches */
	uint64_t spans, bytes, lost;
};

/* What a drain pass ended with, besides the bytes it walked. */
enum drain_status {
	DRAIN_DONE = 0,      /* every slot walked up to its head */
	DRAIN_BATCH_FULL,    /* the batch is full: ship it and call again */
	DRAIN_BROKEN,        /* the ring broke the ABI: quarantine p for out->why */
	DRAIN_NOMEM,         /* out of memory: a slot stopped short of its head and
			      * keeps its position; walk p again later */
};

/*
 * One drain of one producer, over as many calls as it takes. Span records
 * go to *cur, which is created with batch_new() when NULL and there is
 * something to add. A slot that runs out of memory keeps its position
 * (its bytes are walked again by a later drain) and the others go on;
 * the pass then ends with DRAIN_NOMEM, so that the caller neither takes
 * p as drained nor frees it.
 */
struct drain_pass {
	struct batch **cur;
	uint64_t batch_max_bytes;
	uint64_t max_scope_bytes; /* what p's scope cache may cost */
	uint32_t next_slot; /* where the next call continues */
	uint64_t walked;    /* bytes walked so far */
	bool nomem;         /* a slot stopped short for memory */
	char why[192];      /* DRAIN_BROKEN: what the ring did wrong */
};

/*
 * Walk the slots of p from d->next_slot and add their span records to
 * *d->cur. A batch is never shipped from here: on DRAIN_BATCH_FULL the
 * caller ships *d->cur and calls again with the same d.
 */
enum drain_status drain_producer(struct agent_producer *p, struct drain_pass *d);
/* The batch holding chunk seq of slot i is done: move the slot's tail over
 * the released prefix. */
void drain_chunk_release(struct agent_producer *p, uint32_t i, uint64_t seq);
/* Some slot of p holds at least watermark_pct % of its size in bytes the
 * agent has not released (head loaded now, the agent's own tail). */
bool drain_producer_above_watermark(const struct agent_producer *p, uint32_t watermark_pct);
/* Sum of the producer-side drop counters of every slot. */
uint64_t drain_producer_drops(const struct agent_producer *p);
/* Free the slots' state (their chunk queues). */
void drain_slots_free(struct agent_producer *p);

#endif
