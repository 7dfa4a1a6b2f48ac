/* SPDX-License-Identifier: MIT */
/*
 * Commit of an encoded span into the calling thread's slot: the producer's
 * hot path. Static inline so that spanring_span_end() and
 * spanring_span_emit() inline it together with the encoder. Ordering
 * pairs (A/B with the agent's C/D) are described in ring_abi.h.
 */
#ifndef SPANRING_LIB_COMMIT_H
#define SPANRING_LIB_COMMIT_H

#include <errno.h>

#include "encode.h"
#include "internal.h"
#include "pbwire.h"

/* Bytes of a varint control record (2-byte tag). */
static inline size_t ctrl_size(uint64_t v)
{
	return 2 + pb_varint_size(v);
}

static inline uint8_t *put_ctrl(uint8_t *p, uint32_t field, uint64_t v)
{
	p = pb_put_varint(p, PB_TAG(field, SPANRING_WT_VARINT));
	return pb_put_varint(p, v);
}

/*
 * may_move: the caller owns w exclusively and can move to another slot,
 * so a full slot returns -EAGAIN without counting a drop (the caller
 * retries elsewhere, or here with may_move false, which counts it).
 */
static inline int slot_commit(struct sr_slot_w *w, struct spanring_span *s, uint64_t end_ns,
		       uint64_t scope, bool may_move)
{
	const uint64_t size = (uint64_t)w->mask + 1;
	size_t n = sr_span_size(s, end_ns);
	size_t rec = 1 + pb_varint_size(n) + n;
	if (SR_UNLIKELY(rec > w->max_record)) {
		w->drop_oversize++;
		w->pending_lost++;
		sr_store_relaxed_64(&w->prod->drop_oversize, w->drop_oversize);
		return -E2BIG;
	}
	size_t total = rec;
	if (SR_UNLIKELY(scope != w->last_scope))
		total += ctrl_size(scope);
	if (SR_UNLIKELY(w->pending_lost))
		total += ctrl_size(w->pending_lost);

	const uint64_t head = w->head;
	uint64_t used = head - w->tail_cache;
	if (SR_UNLIKELY(used + total > size)) {
		/* A: pairs with the agent's store-release of tail (D). */
		uint64_t tail = sr_load_acquire_64(&w->cons->tail);
		if (tail <= head && head - tail <= size)
			w->tail_cache = tail;
		used = head - w->tail_cache;
		if (used + total > size) {
			if (may_move)
				return -EAGAIN;
			w->drop_full++;
			w->pending_lost++;
			sr_store_relaxed_64(&w->prod->drop_full, w->drop_full);
			return -ENOSPC;
		}
	}

	uint8_t *p = w->data + (head & w->mask);
	if (SR_UNLIKELY(w->pending_lost)) {
		p = put_ctrl(p, SPANRING_CTRL_LOST, w->pending_lost);
		w->pending_lost = 0;
	}
	if (SR_UNLIKELY(scope != w->last_scope)) {
		p = put_ctrl(p, SPANRING_CTRL_SCOPE, scope);
		w->last_scope = scope;
	}
	*p++ = (uint8_t)PB_TAG(SPANRING_SPAN_FIELD, SPANRING_WT_LEN);
	p = pb_put_varint(p, n);
	p = sr_encode_span(p, s, end_ns);

	w->head = head + total;
	/* B: pairs with the agent's load-acquire of head (C). */
	sr_store_release_64(&w->prod->head, w->head);
	/* F: after B, load need_wakeup (ring_abi.h, wake-up protocol; pairs
	 * with the agent's E through its membarrier, docs/ABI.md §10.1). The
	 * compiler barrier is all this side needs: the agent's membarrier()
	 * between its E and G is the hardware fence of both sides. */
	sr_wake_barrier();
	if (SR_UNLIKELY(sr_load_relaxed_32(w->wake)))
		sr_wake_agent(w);
	w->spans++;
	sr_store_relaxed_64(&w->prod->spans, w->spans);
	if (SR_UNLIKELY(used + total >= w->watermark))
		sr_doorbell_check(w, w->head);
	return 0;
}

/* A span that cannot be committed for a reason other than space: counted. */
static inline int slot_drop_other(struct sr_slot_w *w, int err)
{
	w->drop_encode++;
	w->pending_lost++;
	sr_store_relaxed_64(&w->prod->drop_encode, w->drop_encode);
	return err;
}

static inline int commit_locked(struct sr_slot_w *w, struct spanring_span *s, uint64_t end_ns,
				struct sr_tracer *tr, int scope_err, bool may_move)
{
	if (SR_UNLIKELY(scope_err))
		return slot_drop_other(w, scope_err);
	return slot_commit(w, s, end_ns, tr->scope_off, may_move);
}

static inline int sr_commit(struct sr_thread *t, struct spanring_span *s, uint64_t end_ns)
{
	if (SR_UNLIKELY(sr_proc_ready() != SR_PROC_ACTIVE))
		return 0;
	struct sr_tracer *tr = s->tracer;
	int scope_err = 0;
	/* Acquire: pairs with the store-release of scope_gen in
	 * sr_scope_publish() (producer.c). */
	if (SR_UNLIKELY(sr_load_acquire_32(&tr->scope_gen) != sr_g.gen + 1))
		scope_err = sr_scope_publish(tr);
	if (SR_UNLIKELY(t->gen != sr_g.gen || t->slot < 0))
		sr_slot_claim(t);
	struct sr_slot_w *w = &sr_g.slots[t->slot];
	if (SR_LIKELY(t->exclusive)) {
		int r = commit_locked(w, s, end_ns, tr, scope_err, true);
		if (SR_UNLIKELY(r == -EAGAIN)) {
			/* Our slot is full: move to a free exclusive slot with
			 * room, else count the drop here. */
			if (sr_slot_move(t))
				w = &sr_g.slots[t->slot];
			r = commit_locked(w, s, end_ns, tr, scope_err, false);
		}
		return r;
	}

	/* Shared slot: every 1024 spans, try to become exclusive again. */
	if (SR_UNLIKELY(--t->retry_claim == 0)) {
		t->retry_claim = 1024;
		uint64_t nx_mask = sr_g.n_exclusive >= 64 ? ~0ull : (1ull << sr_g.n_exclusive) - 1;
		if (~sr_load_relaxed_64(&sr_g.owned) & nx_mask) {
			sr_slot_claim(t);
			w = &sr_g.slots[t->slot];
			if (t->exclusive)
				return commit_locked(w, s, end_ns, tr, scope_err, false);
		}
	}
	sr_lock(&w->lock);
	int r = commit_locked(w, s, end_ns, tr, scope_err, false);
	sr_unlock(&w->lock);
	return r;
}

#endif
