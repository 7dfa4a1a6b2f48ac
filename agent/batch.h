/* SPDX-License-Identifier: MIT */
/*
 * Refcounted batches of ring slices (batch.c): what drain.c fills, the
 * core ships and the exporters hold, and the ExportTraceServiceRequest
 * framing around them.
 *
 * A batch whose last reference is dropped goes on the agent's list of
 * done batches; the core gives their ring bytes back (agent_settle in
 * core.c) and recycles them. batch_unref() itself calls nothing above it.
 */
#ifndef SPANRING_AGENT_BATCH_H
#define SPANRING_AGENT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct agent;
struct agent_producer;
struct scope_ent;

/* A run of consecutive span records of one producer, slot and scope. */
struct batch_seg {
	struct agent_producer *p; /* the core's (registry.h); exporters name it
				     through exp_host.producer_id */
	const struct scope_ent *scope;
	const uint8_t *ptr; /* into ring memory (mirror mapping) */
	uint32_t len;
	uint32_t nspans;
	uint32_t order;
	uint32_t slot;
};

/* A chunk of a slot's stream the batch holds (chunkq.h). */
struct batch_chunkref {
	struct agent_producer *p;
	uint32_t slot;
	uint64_t seq;
};

enum batch_iov_kind {
	BATCH_IOV_FRAME = 0, /* tags and lengths written by the agent */
	BATCH_IOV_RESOURCE,  /* the agent's copy of a producer's Resource */
	BATCH_IOV_SCOPE,     /* the agent's copy of a scope entry body */
	BATCH_IOV_SPANS,     /* span records, in ring memory */
};

struct batch {
	struct agent *ag;
	struct batch *next; /* on the agent's free or done list */
	uint64_t seq;
	uint32_t refs;
	uint64_t created_ns;
	uint64_t spans, span_bytes;
	struct batch_seg *segs;
	size_t nsegs, cap_segs;
	struct batch_chunkref *chunks;
	size_t nchunks, cap_chunks;
	/* Built by batch_finalize(); read-only afterwards. iov[0] is the
	 * varint length of the message (for length-delimited outputs), the
	 * message itself is iov[1 .. niov). */
	uint8_t *frame;
	size_t frame_cap;
	struct iovec *iov;
	uint8_t *iov_kind;
	size_t niov, cap_iov;
	uint64_t *glen; /* scratch: lengths of the groups */
	size_t cap_glen;
	size_t msg_len;
	uint32_t n_resource_spans, n_scope_spans;
	bool finalized;
};

/* A new batch with one reference (the caller's); counts as in flight
 * until it is recycled. NULL when out of memory. */
struct batch *batch_new(struct agent *ag);
void batch_ref(struct batch *b);
/* Drop a reference; the last one puts b on the done list (batch_take_done). */
void batch_unref(struct batch *b);
/* Append span records [ptr, ptr+len) (nspans of them) to b. 0 or -ENOMEM. */
int batch_add_spans(struct batch *b, struct agent_producer *p, uint32_t slot,
		    const struct scope_ent *scope, const uint8_t *ptr, uint32_t len,
		    uint32_t nspans);
/* Room for one more chunk reference. 0 or -ENOMEM. */
int batch_reserve_chunk(struct batch *b);
/* Record that b holds chunk seq of the slot (after batch_reserve_chunk). */
void batch_add_chunk(struct batch *b, struct agent_producer *p, uint32_t slot, uint64_t seq);
/* Build the framing and the iovecs. 0 or -ENOMEM. */
int batch_finalize(struct batch *b);
/* A batch nobody references any more, or NULL; the caller gives its
 * chunks back, then hands it to batch_recycle(). */
struct batch *batch_take_done(struct agent *ag);
/* Keep b for reuse (or free it); it is no longer in flight. */
void batch_recycle(struct batch *b);
void batch_pool_free(struct agent *ag);
/* Bytes of request iov[1..] (== msg_len) and helpers for exporters. */
static inline const struct iovec *batch_msg_iov(const struct batch *b, size_t *n)
{
	*n = b->niov - 1;
	return b->iov + 1;
}

#endif
