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
 * A producer that breaks the framing is quarantined: what was valid before
 * the fault is still exported, nothing after it is read again.
 *
 * A record is never partially visible: the producer publishes head only
 * after a whole record is written (B in ring_abi.h), so a record that does
 * not end by head is a framing violation, not a race.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "atomics.h"
#include "log.h"
#include "ring_read.h"

#define DRAIN_MAX_SCOPES 4096

bool drain_producer_above_watermark(const struct agent_producer *p)
{
	if (p->state != PROD_ACTIVE || !p->mapped || !p->slots)
		return false;
	uint64_t mark = (uint64_t)p->map.l.slot_size * p->ag->cfg->watermark_pct / 100;
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

/* Binary search of the sorted cache; returns the insertion index. */
static size_t scope_find(const struct agent_producer *p, uint64_t off, bool *found)
{
	size_t lo = 0, hi = p->n_scopes;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->scopes[mid]->off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < p->n_scopes && p->scopes[lo]->off == off;
	return lo;
}

const struct scope_ent *drain_scope_lookup(struct agent_producer *p, uint64_t off,
					   const char **why)
{
	bool found;
	size_t idx = scope_find(p, off, &found);
	if (found)
		return p->scopes[idx];
	/* Real programs have a handful of tracers; a table of thousands of
	 * tiny entries is an attempt to make the agent work for nothing. */
	if (p->n_scopes >= DRAIN_MAX_SCOPES) {
		*why = "more distinct scopes than the agent caches per producer";
		return NULL;
	}
	uint32_t len;
	enum sr_read_err err = sr_scope_entry_find(&p->map, off, &len);
	if (err) {
		*why = sr_read_why(err);
		return NULL;
	}
	/*
	 * The copies are bounded: entries may not overlap one already cached
	 * (the agent's own offsets and lengths, whatever the table says now),
	 * so they add up to at most the table's size, and a producer's copies
	 * stay within max_scope_bytes, which registry_adopt() counts against
	 * the uid's max_mapped_per_uid for every ring. Without that, 1200
	 * overlapping entries of 1 MiB in one 1.1 MiB ring cost the agent
	 * 1.2 GB.
	 */
	const uint64_t hdr = sizeof(struct spanring_scope_entry);
	uint64_t cost = hdr + len + AGENT_SCOPE_ENT_OVERHEAD;
	if (idx > 0) {
		const struct scope_ent *prev = p->scopes[idx - 1];
		if (prev->off + hdr + prev->len > off) {
			*why = "scope entry overlaps an earlier one";
			return NULL;
		}
	}
	if (idx < p->n_scopes && off + hdr + len > p->scopes[idx]->off) {
		*why = "scope entry overlaps a later one";
		return NULL;
	}
	if (p->scope_bytes + cost > p->ag->cfg->max_scope_bytes) {
		*why = "scope entries beyond the max_scope_bytes the agent copies per producer";
		return NULL;
	}
	struct scope_ent *ent = calloc(1, sizeof(*ent));
	uint8_t *body = malloc(len ? len : 1);
	if (!ent || !body)
		goto nomem;
	err = sr_scope_body_copy(&p->map, off, len, body);
	if (err) {
		*why = sr_read_why(err);
		free(body);
		free(ent);
		return NULL;
	}
	if (p->n_scopes == p->cap_scopes) {
		size_t cap = p->cap_scopes ? p->cap_scopes * 2 : 8;
		struct scope_ent **n = realloc(p->scopes, cap * sizeof(*n));
		if (!n)
			goto nomem;
		p->scopes = n;
		p->cap_scopes = cap;
	}
	ent->off = off;
	ent->len = len;
	ent->body = body;
	p->scope_bytes += cost;
	memmove(p->scopes + idx + 1, p->scopes + idx, (p->n_scopes - idx) * sizeof(*p->scopes));
	p->scopes[idx] = ent;
	p->n_scopes++;
	return ent;
nomem:
	free(body);
	free(ent);
	*why = "out of memory caching a scope";
	return NULL;
}

/* The current batch's room for more span bytes. */
static bool drain_batch_full(struct agent *ag, uint64_t pending, uint32_t more)
{
	struct batch *b = ag->cur;
	uint64_t have = (b ? b->span_bytes : 0) + pending;
	return have > 0 && have + more > ag->cfg->batch_max_bytes;
}

struct drain_walk {
	struct agent *ag;
	struct agent_producer *p;
	uint32_t slot;
	const uint8_t *run;  /* start of the pending run of span records */
	uint32_t run_len, run_n;
	const struct scope_ent *run_scope;
	bool nomem;
};

/* Hand the pending run of span records to the current batch. */
static void drain_close_run(struct drain_walk *w)
{
	if (!w->run_len)
		return;
	struct batch *b = agent_batch(w->ag);
	if (!b || batch_add_spans(b, w->p, w->slot, w->run_scope, w->run, w->run_len, w->run_n))
		w->nomem = true;
	struct drain_slot *s = &w->p->slots[w->slot];
	s->spans += w->run_n;
	s->bytes += w->run_len;
	w->p->spans += w->run_n;
	w->p->bytes += w->run_len;
	w->run = NULL;
	w->run_len = w->run_n = 0;
}

/*
 * Bytes up to stream position `end` now belong to the current batch. Out
 * of memory, pos stays where it was: the bytes are walked (and exported)
 * again later, never released unexported.
 */
static void drain_cut(struct drain_walk *w, uint64_t end, uint64_t scope,
		      const struct scope_ent *ent)
{
	struct drain_slot *s = &w->p->slots[w->slot];
	drain_close_run(w);
	if (w->nomem || end == s->pos)
		return;
	struct batch *b = agent_batch(w->ag);
	if (!b || batch_add_chunk(b, w->p, w->slot, end, scope)) {
		w->nomem = true;
		return;
	}
	s->pos = end;
	s->scope = scope;
	s->scope_ent = ent;
}

/*
 * Drain slot i of p. Returns the bytes walked, or -EPROTO when the slot
 * broke the ABI (p is then quarantined), or -ENOMEM.
 */
static int64_t drain_slot(struct agent *ag, struct agent_producer *p, uint32_t i)
{
	struct drain_slot *s = &p->slots[i];
	const uint32_t size = p->map.l.slot_size;
	/* C: pairs with the producer's store-release of head (B): every byte
	 * of every record below head is visible. Read once. */
	const uint64_t head = sr_load_acquire_64(&sr_prod(&p->map, i)->head);
	if (head < s->last_head) {
		producer_quarantine(p, "slot %u: head moved backwards (%llu after %llu)", i,
				    (unsigned long long)head, (unsigned long long)s->last_head);
		return -EPROTO;
	}
	if (head - s->tail > size) {
		producer_quarantine(p, "slot %u: head %llu beyond tail %llu + slot size %u", i,
				    (unsigned long long)head, (unsigned long long)s->tail, size);
		return -EPROTO;
	}
	s->last_head = head;
	if (head == s->pos)
		return 0;

	/* pos <= head <= tail + size and tail <= pos, so the bytes fit in the
	 * mirror mapping: offset < size, length <= size. */
	const uint8_t *start = sr_slot_data(&p->map, i) + (s->pos & (size - 1));
	const uint8_t *end = start + (head - s->pos);
	const uint64_t pos0 = s->pos;
	const uint32_t maxrec = sr_max_record(size);
	uint64_t scope = s->scope;
	const struct scope_ent *ent = s->scope_ent;
	struct drain_walk w = {.ag = ag, .p = p, .slot = i};
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
			if (drain_batch_full(ag, w.run_len, len)) {
				drain_cut(&w, pos0 + (uint64_t)(q - start), scope, ent);
				agent_flush(ag);
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
				const struct scope_ent *ne = drain_scope_lookup(p, rec.v, &why);
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
	int64_t walked = (int64_t)(q - start);
	if (why || kind == SR_REC_BAD) {
		char text[160];
		sr_rec_describe(text, sizeof(text), why, kind, &rec, maxrec);
		producer_quarantine(p, "slot %u at byte %llu: %s", i,
				    (unsigned long long)(pos0 + (uint64_t)(q - start)), text);
		return -EPROTO;
	}
	if (w.nomem)
		return -ENOMEM;
	return walked;
}

int64_t drain_producer(struct agent *ag, struct agent_producer *p)
{
	if (p->state != PROD_ACTIVE || !p->mapped)
		return 0;
	int64_t total = 0;
	ag->st.drain_passes++;
	for (uint32_t i = 0; i < p->map.l.slot_count; i++) {
		int64_t r = drain_slot(ag, p, i);
		if (r == -EPROTO)
			return r;
		if (r > 0)
			total += r;
	}
	return total;
}

void drain_chunk_release(struct agent_producer *p, uint32_t i, uint64_t seq)
{
	struct drain_slot *s = &p->slots[i];
	uint64_t idx = seq - s->q_first_seq;
	if (idx >= s->q_len) {
		log_error("drain: producer %llu slot %u: release of unknown chunk %llu",
			  (unsigned long long)p->id, i, (unsigned long long)seq);
		return;
	}
	s->q[(s->q_first + idx) % s->q_cap].released = true;
	bool moved = false;
	uint64_t tail = s->tail, scope = SPANRING_SCOPE_NONE;
	while (s->q_len && s->q[s->q_first].released) {
		tail = s->q[s->q_first].end;
		scope = s->q[s->q_first].scope_at_end;
		s->q_first = (s->q_first + 1) % s->q_cap;
		s->q_len--;
		s->q_first_seq++;
		moved = true;
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
