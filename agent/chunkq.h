/* SPDX-License-Identifier: MIT */
/*
 * The chunk queue of one slot: the runs of the slot's byte stream that
 * batches hold, in stream order. drain.c appends a chunk when it hands
 * bytes to a batch and releases it when that batch is done; the slot's
 * tail may move over the released chunks at the front of the queue (and
 * only over those: batches finish in any order).
 *
 * A plain data structure: it knows nothing of rings, batches or
 * producers. Chunks are named by a sequence number that grows by one per
 * chunk pushed.
 */
#ifndef SPANRING_AGENT_CHUNKQ_H
#define SPANRING_AGENT_CHUNKQ_H

#include <stdbool.h>
#include <stdint.h>

struct chunkq_ent {
	uint64_t end;          /* stream position after the chunk */
	uint64_t scope_at_end; /* scope in effect at end (for scope_at_tail) */
	uint64_t batch_seq;    /* the batch holding it */
	bool released;
};

/* A ring buffer of cap entries starting at first. */
struct chunkq {
	struct chunkq_ent *q;
	uint32_t cap, first, len;
	uint64_t first_seq; /* sequence number of q[first] */
};

/* Grow the last chunk to end (scope_at_end) if batch_seq holds it and it
 * is not released yet: a slot drained twice into one batch is one chunk.
 * False when a new chunk is needed. */
bool chunkq_extend(struct chunkq *cq, uint64_t batch_seq, uint64_t end, uint64_t scope_at_end);
/* Append a chunk; *seq names it. 0 or -ENOMEM (the queue unchanged). */
int chunkq_push(struct chunkq *cq, uint64_t batch_seq, uint64_t end, uint64_t scope_at_end,
		uint64_t *seq);
/*
 * Mark chunk seq released and drop the released chunks at the front.
 * Returns 1 with the end and scope of the last chunk dropped (where the
 * tail may move), 0 when the front is still held, -ENOENT when seq is not
 * in the queue.
 */
int chunkq_release(struct chunkq *cq, uint64_t seq, uint64_t *end, uint64_t *scope_at_end);
void chunkq_free(struct chunkq *cq);

#endif
