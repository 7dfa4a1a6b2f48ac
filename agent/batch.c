/* SPDX-License-Identifier: MIT */
/*
 * Refcounted batches of ring slices, and the ExportTraceServiceRequest
 * framing around them.
 *
 * A batch holds (1) segments: runs of span records in ring memory, each
 * with its producer and scope, and (2) chunk references: for each slot it
 * took bytes from, the run of the slot's stream it holds (span records and
 * the control records between them). The core holds one reference while it
 * hands the batch to the exporters; each exporter that keeps it longer
 * holds its own. When the last reference goes, the batch joins the done
 * list; the core then releases its chunks (each slot's tail moves over the
 * longest released prefix, drain_chunk_release) and recycles it: batches
 * may finish in any order, tails only ever move over bytes no exporter
 * still needs.
 *
 * The framing (tags, lengths, the agent's copies of the Resource and scope
 * entries) lives in agent memory; span bytes are iovecs into the ring.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "batch.h"
#include "log.h"
#include "pbwire.h"
#include "registry.h"
#include "scope_cache.h"

#define BATCH_POOL_MAX 64

struct batch *batch_new(struct agent *ag)
{
	struct batch *b = ag->free_batches;
	if (b) {
		ag->free_batches = b->next;
	} else {
		b = calloc(1, sizeof(*b));
		if (!b)
			return NULL;
	}
	b->ag = ag;
	b->next = NULL;
	b->seq = ++ag->next_batch_seq;
	b->refs = 1;
	b->created_ns = agent_now_ns();
	b->spans = b->span_bytes = 0;
	b->nsegs = b->nchunks = b->niov = 0;
	b->msg_len = 0;
	b->n_resource_spans = b->n_scope_spans = 0;
	b->finalized = false;
	ag->inflight_batches++;
	return b;
}

static void batch_destroy(struct batch *b)
{
	free(b->segs);
	free(b->chunks);
	free(b->frame);
	free(b->iov);
	free(b->iov_kind);
	free(b->glen);
	free(b);
}

void batch_pool_free(struct agent *ag)
{
	while (ag->free_batches) {
		struct batch *b = ag->free_batches;
		ag->free_batches = b->next;
		batch_destroy(b);
	}
}

/* Grow *arr (of *cap elements of size sz) to hold at least need. */
static int grow(void **arr, size_t *cap, size_t need, size_t sz)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *p = realloc(*arr, n * sz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

int batch_add_spans(struct batch *b, struct agent_producer *p, uint32_t slot,
		    const struct scope_ent *scope, const uint8_t *ptr, uint32_t len,
		    uint32_t nspans)
{
	if (b->nsegs) {
		struct batch_seg *last = &b->segs[b->nsegs - 1];
		/* The same slot drained again: continue the segment. */
		if (last->p == p && last->slot == slot && last->scope == scope &&
		    last->ptr + last->len == ptr && (uint64_t)last->len + len <= UINT32_MAX) {
			last->len += len;
			last->nspans += nspans;
			p->inflight_spans += nspans;
			b->spans += nspans;
			b->span_bytes += len;
			return 0;
		}
	}
	if (grow((void **)&b->segs, &b->cap_segs, b->nsegs + 1, sizeof(*b->segs)))
		return -ENOMEM;
	b->segs[b->nsegs] = (struct batch_seg){.p = p,
					       .scope = scope,
					       .ptr = ptr,
					       .len = len,
					       .nspans = nspans,
					       .order = (uint32_t)b->nsegs,
					       .slot = slot};
	b->nsegs++;
	p->inflight_spans += nspans;
	b->spans += nspans;
	b->span_bytes += len;
	return 0;
}

int batch_reserve_chunk(struct batch *b)
{
	return grow((void **)&b->chunks, &b->cap_chunks, b->nchunks + 1, sizeof(*b->chunks));
}

void batch_add_chunk(struct batch *b, struct agent_producer *p, uint32_t slot, uint64_t seq)
{
	b->chunks[b->nchunks++] = (struct batch_chunkref){.p = p, .slot = slot, .seq = seq};
	p->inflight_chunks++;
}

void batch_ref(struct batch *b)
{
	b->refs++;
}

void batch_unref(struct batch *b)
{
	if (!b->refs) {
		log_error("batch: unref of a released batch %llu", (unsigned long long)b->seq);
		return;
	}
	if (--b->refs)
		return;
	b->next = b->ag->done_batches;
	b->ag->done_batches = b;
}

struct batch *batch_take_done(struct agent *ag)
{
	struct batch *b = ag->done_batches;
	if (b)
		ag->done_batches = b->next;
	return b;
}

void batch_recycle(struct batch *b)
{
	struct agent *ag = b->ag;
	ag->inflight_batches--;
	size_t pooled = 0;
	for (struct batch *f = ag->free_batches; f && pooled < BATCH_POOL_MAX; f = f->next)
		pooled++;
	if (pooled >= BATCH_POOL_MAX) {
		batch_destroy(b);
		return;
	}
	b->next = ag->free_batches;
	ag->free_batches = b;
}

static int seg_cmp(const void *a, const void *b)
{
	const struct batch_seg *x = a, *y = b;
	if (x->p->id != y->p->id)
		return x->p->id < y->p->id ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static size_t field_size(uint64_t n)
{
	return 1 + pb_varint_size(n) + n;
}

static void iov_push(struct batch *b, uint8_t kind, const void *p, size_t n)
{
	if (!n)
		return;
	if (b->niov && b->iov_kind[b->niov - 1] == kind &&
	    (const uint8_t *)b->iov[b->niov - 1].iov_base + b->iov[b->niov - 1].iov_len ==
		    (const uint8_t *)p &&
	    kind != BATCH_IOV_RESOURCE && kind != BATCH_IOV_SCOPE) {
		b->iov[b->niov - 1].iov_len += n;
		return;
	}
	b->iov[b->niov].iov_base = (void *)p;
	b->iov[b->niov].iov_len = n;
	b->iov_kind[b->niov] = kind;
	b->niov++;
}

/*
 * Pass 1: the length of every ResourceSpans and ScopeSpans group into
 * b->glen, in the order pass 2 writes them; the message's length into
 * *msg and the numbers of groups into *nrs and *nss. 0 or -ENOMEM.
 */
static int batch_group_lengths(struct batch *b, uint64_t *msg, size_t *nrs, size_t *nss)
{
	if (grow((void **)&b->glen, &b->cap_glen, 2 * b->nsegs + 1, sizeof(*b->glen)))
		return -ENOMEM;
	size_t g = 0;
	*msg = 0;
	*nrs = *nss = 0;
	for (size_t i = 0; i < b->nsegs;) {
		struct agent_producer *p = b->segs[i].p;
		size_t rs_idx = g++;
		uint64_t rs_len = field_size(p->resource_len);
		while (i < b->nsegs && b->segs[i].p == p) {
			const struct scope_ent *sc = b->segs[i].scope;
			size_t ss_idx = g++;
			uint64_t ss_len = sc->len;
			while (i < b->nsegs && b->segs[i].p == p && b->segs[i].scope == sc)
				ss_len += b->segs[i++].len;
			b->glen[ss_idx] = ss_len;
			rs_len += field_size(ss_len);
			(*nss)++;
		}
		b->glen[rs_idx] = rs_len;
		*msg += field_size(rs_len);
		(*nrs)++;
	}
	return 0;
}

/*
 * Pass 2: write tags and lengths, point iovecs at resource, scope and span
 * bytes. Capacities are reserved first: iovecs point into frame, which
 * must not move once written. 0 or -ENOMEM.
 */
static int batch_write_frame(struct batch *b, uint64_t msg, size_t nrs, size_t nss)
{
	size_t frame_need = 10 + (2 * nrs + nss) * 11;
	size_t iov_need = 1 + 2 * nrs + 2 * nss + b->nsegs;
	if (grow((void **)&b->frame, &b->frame_cap, frame_need, 1))
		return -ENOMEM;
	size_t cap_kind = b->cap_iov;
	if (grow((void **)&b->iov, &b->cap_iov, iov_need, sizeof(*b->iov)) ||
	    grow((void **)&b->iov_kind, &cap_kind, b->cap_iov, 1))
		return -ENOMEM;
	uint8_t *w = b->frame;
	/* iov[0]: the length prefix of length-delimited outputs. */
	uint8_t *f = w;
	w = pb_put_varint(w, msg);
	b->iov[0] = (struct iovec){.iov_base = f, .iov_len = (size_t)(w - f)};
	b->iov_kind[0] = BATCH_IOV_FRAME;
	b->niov = 1;
	size_t g = 0;
	for (size_t i = 0; i < b->nsegs;) {
		struct agent_producer *p = b->segs[i].p;
		f = w;
		*w++ = (uint8_t)PB_TAG(1, SPANRING_WT_LEN); /* ExportTraceServiceRequest.resource_spans */
		w = pb_put_varint(w, b->glen[g++]);
		*w++ = (uint8_t)PB_TAG(1, SPANRING_WT_LEN); /* ResourceSpans.resource */
		w = pb_put_varint(w, p->resource_len);
		/* A new iovec even if adjacent to the previous frame bytes: the
		 * message proper starts at iov[1]. */
		b->iov[b->niov] = (struct iovec){.iov_base = f, .iov_len = (size_t)(w - f)};
		b->iov_kind[b->niov++] = BATCH_IOV_FRAME;
		iov_push(b, BATCH_IOV_RESOURCE, p->resource, p->resource_len);
		while (i < b->nsegs && b->segs[i].p == p) {
			const struct scope_ent *sc = b->segs[i].scope;
			f = w;
			*w++ = (uint8_t)PB_TAG(2, SPANRING_WT_LEN); /* ResourceSpans.scope_spans */
			w = pb_put_varint(w, b->glen[g++]);
			iov_push(b, BATCH_IOV_FRAME, f, (size_t)(w - f));
			iov_push(b, BATCH_IOV_SCOPE, sc->body, sc->len);
			while (i < b->nsegs && b->segs[i].p == p && b->segs[i].scope == sc) {
				iov_push(b, BATCH_IOV_SPANS, b->segs[i].ptr, b->segs[i].len);
				i++;
			}
		}
	}
	return 0;
}

int batch_finalize(struct batch *b)
{
	if (b->finalized)
		return 0;
	qsort(b->segs, b->nsegs, sizeof(*b->segs), seg_cmp);
	uint64_t msg;
	size_t nrs, nss;
	b->niov = 0;
	if (batch_group_lengths(b, &msg, &nrs, &nss) || batch_write_frame(b, msg, nrs, nss))
		return -ENOMEM;
	b->msg_len = msg;
	b->n_resource_spans = (uint32_t)nrs;
	b->n_scope_spans = (uint32_t)nss;
	b->finalized = true;
	return 0;
}
