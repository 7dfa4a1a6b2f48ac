/* SPDX-License-Identifier: MIT */
/*
 * Draining a producer's ring: read each slot's head once, validate it,
 * walk the record framing (headers only, never span payloads) by the
 * rules of the ring reader (lib/ring_read.h) and hand the span records to
 * the current batch as slices of ring memory.
 *
 * The ring is hostile input. Every value read from it is loaded once into
 * a local and checked before it is used as a length, an offset or an
 * index; the walk never leaves [pos, head) of the slot's mirror mapping.
 * A producer that breaks the framing is reported (DRAIN_BROKEN) and the
 * core quarantines it: what was valid before the fault is still exported,
 * nothing after it is read again.
 *
 * A record is never partially visible: the producer publishes head only
 * after a whole record is written (B in ring_abi.h), so a record that does
 * not end by head is a framing violation, not a race.
 */
#include <stdio.h>
#include <stdlib.h>

#include "atomics.h"
#include "batch.h"
#include "drain.h"
#include "log.h"
#include "registry.h"
#include "ring_read.h"
#include "scope_cache.h"

bool drain_producer_above_watermark(const struct agent_producer *p, uint32_t watermark_pct)
{
	if (p->state != PROD_ACTIVE || !p->mapped || !p->slots)
		return false;
	uint64_t mark = (uint64_t)p->map.l.slot_size * watermark_pct / 100;
	for (uint32_t i = 0; i < p->map.l.slot_count; i++) {
		/* Compared only, never used as a length or an offset: a
		 * hostile head can only make its own batch go out early. */
		uint64_t head = sr_load_relaxed_64(&sr_prod(&p->map, i)->head);
		if (head > p->slots[i].tail && head - p->slots[i].tail >= mark)
			return true;
	}
	return false;
}

uint64_t drain_producer_drops(const struct agent_producer *p)
{
	uint64_t sum = 0;
	if (!p->mapped)
		return 0;
	for (uint32_t i = 0; i < p->map.l.slot_count; i++) {
		const struct spanring_slot_prod *sp = sr_prod(&p->map, i);
		/* Statistics only: relaxed loads, values not trusted for anything. */
		sum += sr_load_relaxed_64(&sp->drop_full);
		sum += sr_load_relaxed_64(&sp->drop_oversize);
		sum += sr_load_relaxed_64(&sp->drop_encode);
	}
	return sum;
}

struct drain_walk {
	struct drain_pass *d;
	struct agent_producer *p;
	uint32_t slot;
	const uint8_t *run;  /* start of the pending run of span records */
	uint32_t run_len, run_n;
	const struct scope_ent *run_scope;
	uint64_t in_batch;   /* span bytes in the current batch (before the run) */
	uint64_t max_bytes;  /* batch_max_bytes */
	bool nomem;
};

/* The current batch's room for more span bytes. */
static bool drain_batch_full(const struct drain_walk *w, uint32_t more)
{
	uint64_t have = w->in_batch + w->run_len;
	return have > 0 && have + more > w->max_bytes;
}

/* The batch being filled, made if there is none. NULL when out of memory. */
static struct batch *drain_batch(struct drain_walk *w)
{
	if (!*w->d->cur)
		*w->d->cur = batch_new(w->p->ag);
	return *w->d->cur;
}

/* Hand the pending run of span records to the current batch. */
static void drain_close_run(struct drain_walk *w)
{
	if (!w->run_len)
		return;
	struct batch *b = drain_batch(w);
	if (!b || batch_add_spans(b, w->p, w->slot, w->run_scope, w->run, w->run_len, w->run_n))
		w->nomem = true;
	else
		w->in_batch = b->span_bytes;
	struct drain_slot *s = &w->p->slots[w->slot];
	s->spans += w->run_n;
	s->bytes += w->run_len;
	w->p->spans += w->run_n;
	w->p->bytes += w->run_len;
	w->run = NULL;
	w->run_len = w->run_n = 0;
}

/*
 * Bytes up to stream position `end` now belong to the current batch: a
 * chunk of the slot's queue that the batch holds. Out of memory, pos stays
 * where it was: the bytes are walked (and exported) again later, never
 * released unexported.
 */
static void drain_cut(struct drain_walk *w, uint64_t end, uint64_t scope,
		      const struct scope_ent *ent)
{
	struct drain_slot *s = &w->p->slots[w->slot];
	drain_close_run(w);
	if (w->nomem || end == s->pos)
		return;
	struct batch *b = drain_batch(w);
	uint64_t seq;
	if (!b) {
		w->nomem = true;
		return;
	}
	if (!chunkq_extend(&s->chunks, b->seq, end, scope)) {
		/* Room in both places first, so that a failure leaves no half state. */
		if (batch_reserve_chunk(b) || chunkq_push(&s->chunks, b->seq, end, scope, &seq)) {
			w->nomem = true;
			return;
		}
		batch_add_chunk(b, w->p, w->slot, seq);
	}
	s->pos = end;
	s->scope = scope;
	s->scope_ent = ent;
}

/*
 * Load slot i's head (once) and check it against what the agent knows.
 * 0, or -1 with the fault in d->why.
 */
static int drain_head(struct agent_producer *p, uint32_t i, struct drain_pass *d, uint64_t *head)
{
	struct drain_slot *s = &p->slots[i];
	const uint32_t size = p->map.l.slot_size;
	/* C: pairs with the producer's store-release of head (B): every byte
	 * of every record below head is visible. Read once. */
	const uint64_t h = sr_load_acquire_64(&sr_prod(&p->map, i)->head);
	if (h < s->last_head) {
		snprintf(d->why, sizeof(d->why), "slot %u: head moved backwards (%llu after %llu)", i,
			 (unsigned long long)h, (unsigned long long)s->last_head);
		return -1;
	}
	if (h - s->tail > size) {
		snprintf(d->why, sizeof(d->why), "slot %u: head %llu beyond tail %llu + slot size %u",
			 i, (unsigned long long)h, (unsigned long long)s->tail, size);
		return -1;
	}
	s->last_head = h;
	*head = h;
	return 0;
}

/* Say in d->why where slot i broke the framing and how. */
static void drain_fault(struct drain_pass *d, uint32_t i, uint64_t at, const char *why,
			enum sr_rec_kind kind, const struct sr_rec *rec, uint32_t maxrec)
{
	char text[160];
	sr_rec_describe(text, sizeof(text), why, kind, rec, maxrec);
	snprintf(d->why, sizeof(d->why), "slot %u at byte %llu: %s", i, (unsigned long long)at,
		 text);
}

/*
 * Walk slot i of p from pos to its head, adding its span records to the
 * current batch; stop early (after a cut) when the batch is full. Adds the
 * bytes walked to d->walked, except out of memory (the slot keeps its pos).
 */
static enum drain_status drain_slot(struct agent_producer *p, uint32_t i, struct drain_pass *d)
{
	struct drain_slot *s = &p->slots[i];
	const uint32_t size = p->map.l.slot_size;
	uint64_t head;
	if (drain_head(p, i, d, &head))
		return DRAIN_BROKEN;
	if (head == s->pos)
		return DRAIN_DONE;

	/* pos <= head <= tail + size and tail <= pos, so the bytes fit in the
	 * mirror mapping: offset < size, length <= size. */
	const uint8_t *start = sr_slot_data(&p->map, i) + (s->pos & (size - 1));
	const uint8_t *end = start + (head - s->pos);
	const uint64_t pos0 = s->pos;
	const uint32_t maxrec = sr_max_record(size);
	uint64_t scope = s->scope;
	const struct scope_ent *ent = s->scope_ent;
	struct drain_walk w = {.d = d,
			       .p = p,
			       .slot = i,
			       .in_batch = *d->cur ? (*d->cur)->span_bytes : 0,
			       .max_bytes = d->batch_max_bytes};
	enum drain_status st = DRAIN_DONE;
	const char *why = NULL;
	enum sr_rec_kind kind = SR_REC_PAD;
	struct sr_rec rec;
	const uint8_t *q = start;

	while (q < end && !w.nomem) {
		/* Prefetch ahead: the agent is the first to touch these lines
		 * on this core. */
		__builtin_prefetch(q + 512);
		kind = sr_rec_read(q, end, maxrec, &rec);
		if (kind == SR_REC_BAD)
			break;
		if (kind == SR_REC_SPAN) {
			if (!ent) {
				why = "span record before any scope record";
				break;
			}
			uint32_t len = (uint32_t)(rec.next - q);
			if (drain_batch_full(&w, len)) {
				/* The caller ships the batch and calls again: the
				 * walk goes on from here into a new one. */
				st = DRAIN_BATCH_FULL;
				break;
			}
			if (w.run_len && (w.run + w.run_len != q || w.run_scope != ent))
				drain_close_run(&w);
			if (!w.run_len) {
				w.run = q;
				w.run_scope = ent;
			}
			w.run_len += len;
			w.run_n++;
		} else if (kind == SR_REC_SCOPE) {
			if (rec.v != scope) {
				const struct scope_ent *ne = scope_cache_get(
					&p->scopes, &p->map, d->max_scope_bytes, rec.v, &why);
				if (!ne && why == scope_cache_nomem) {
					/* Ours, not the producer's: read again later. */
					why = NULL;
					w.nomem = true;
				}
				if (!ne)
					break;
				drain_close_run(&w);
				scope = rec.v;
				ent = ne;
			}
		} else if (kind == SR_REC_LOST) {
			s->lost += rec.v;
			p->lost += rec.v;
		}
		/* PAD and unknown control fields: skipped. */
		q = rec.next;
	}
	/* Everything before q was valid and goes out, even after a fault. */
	drain_cut(&w, pos0 + (uint64_t)(q - start), scope, ent);
	if (why || kind == SR_REC_BAD) {
		drain_fault(d, i, pos0 + (uint64_t)(q - start), why, kind, &rec, maxrec);
		return DRAIN_BROKEN;
	}
	if (w.nomem)
		return DRAIN_NOMEM; /* walked again by a later drain */
	d->walked += (uint64_t)(q - start);
	return st;
}

enum drain_status drain_producer(struct agent_producer *p, struct drain_pass *d)
{
	if (p->state != PROD_ACTIVE || !p->mapped)
		return DRAIN_DONE;
	for (; d->next_slot < p->map.l.slot_count; d->next_slot++) {
		enum drain_status st = drain_slot(p, d->next_slot, d);
		if (st == DRAIN_NOMEM)
			d->nomem = true;
		else if (st != DRAIN_DONE)
			return st;
	}
	return d->nomem ? DRAIN_NOMEM : DRAIN_DONE;
}

void drain_chunk_release(struct agent_producer *p, uint32_t i, uint64_t seq)
{
	struct drain_slot *s = &p->slots[i];
	uint64_t tail, scope;
	int moved = chunkq_release(&s->chunks, seq, &tail, &scope);
	if (moved < 0) {
		log_error("drain: producer %llu slot %u: release of unknown chunk %llu",
			  (unsigned long long)p->id, i, (unsigned long long)seq);
		return;
	}
	if (!moved)
		return;
	struct spanring_slot_cons *c = sr_cons(&p->map, i);
	/* scope_at_tail before tail, so that an agent that adopts the ring
	 * later finds the scope of the bytes at tail. */
	sr_store_relaxed_64(&c->scope_at_tail, scope);
	/* D: pairs with the producer's load-acquire of tail (A). Every read of
	 * the released bytes (the exporters' writev, done) is ordered before,
	 * so the producer may overwrite them from now on. */
	sr_store_release_64(&c->tail, tail);
	s->tail = tail;
}

void drain_slots_free(struct agent_producer *p)
{
	if (!p->slots)
		return;
	for (uint32_t i = 0; i < p->map.l.slot_count; i++)
		chunkq_free(&p->slots[i].chunks);
	free(p->slots);
	p->slots = NULL;
}
