/* SPDX-License-Identifier: MIT */
/*
 * The reader of the ring ABI: the rules by which a consumer (the agent's
 * drain, spanring-dump) reads slot records and scope-table entries that a
 * producer wrote. One copy of the rules, so that the two readers cannot
 * drift apart. The header itself is checked by sr_hdr_validate() (ring.h).
 *
 * Shared memory is hostile input here. Every length and offset taken from
 * the ring is checked before it is used; a producer-written field is
 * loaded once. The record step works on bytes the caller bounded: the
 * agent's drain walks [pos, head) of the mirror mapping in place, the dump
 * tool walks a private copy. Neither the step nor the scope reader keeps
 * any state: caching, quarantine and printing are the callers' policy.
 *
 * The per-record step is inline: the agent's drain calls it once per span
 * (a few nanoseconds each, docs/BENCHMARKS.md) and a call would be a
 * measurable part of that.
 */
#ifndef SPANRING_LIB_RING_READ_H
#define SPANRING_LIB_RING_READ_H

#include <stddef.h>
#include <stdint.h>

#include "pbwire.h"
#include "ring.h"

/* Why bytes of a ring break the ABI. sr_read_why() gives the text. */
enum sr_read_err {
	SR_READ_OK = 0,
	/* records (sr_rec_read) */
	SR_READ_EFRAME,        /* a record header is truncated or not protobuf */
	SR_READ_ESPAN_WT,      /* span field (2) not LEN */
	SR_READ_ESPAN_SIZE,    /* span longer than sr_max_record() */
	SR_READ_ESCOPE_WT,     /* SCOPE record not VARINT */
	SR_READ_ELOST_WT,      /* LOST record not VARINT */
	SR_READ_EFIELD,        /* neither a span nor a control-range field */
	/* scope-table entries (sr_scope_entry_find, sr_scope_body_copy) */
	SR_READ_ESCOPE_ALIGN,  /* offset not 8-byte aligned */
	SR_READ_ESCOPE_CAP,    /* scope_len beyond scope_cap */
	SR_READ_ESCOPE_OFF,    /* no entry header below scope_len at the offset */
	SR_READ_ESCOPE_PAST,   /* the entry's body reaches past scope_len */
	SR_READ_ESCOPE_PB,     /* the body is not protobuf */
	SR_READ_ESCOPE_FIELD,  /* the body has a field other than 1 and 3 (LEN) */
	SR_READ_ESCOPE_DECODE, /* field 1 is not an InstrumentationScope */
};

/* What a record is. */
enum sr_rec_kind {
	SR_REC_SPAN,    /* ScopeSpans.spans: payload, v bytes of a Span */
	SR_REC_SCOPE,   /* v: scope-table offset of the spans that follow */
	SR_REC_LOST,    /* v: spans the producer dropped at this point */
	SR_REC_PAD,     /* padding, skipped */
	SR_REC_UNKNOWN, /* another control-range field, skipped by its wire type */
	SR_REC_BAD,     /* breaks the framing (err): nothing from here on is readable */
};

/* One record as sr_rec_read() found it. */
struct sr_rec {
	enum sr_read_err err;    /* SR_REC_BAD only */
	uint32_t field, wt;
	uint64_t v;              /* LEN: payload bytes; VARINT: the value */
	const uint8_t *payload;
	const uint8_t *next;     /* first byte after the record */
};

/* The text of a reason, as users see it in quarantine and dump messages. */
SR_HIDDEN const char *sr_read_why(enum sr_read_err e);

/* Largest span payload the ABI allows in a slot of slot_size bytes. */
static inline uint32_t sr_max_record(uint32_t slot_size)
{
	uint32_t half = slot_size / 2;
	return half < SPANRING_MAX_RECORD ? half : SPANRING_MAX_RECORD;
}

static inline enum sr_rec_kind sr_rec_bad(struct sr_rec *r, enum sr_read_err e)
{
	r->err = e;
	return SR_REC_BAD;
}

/*
 * Read the record at q, which lies below end (q < end). maxrec is
 * sr_max_record() of the slot. Nothing at or beyond end is read; on
 * anything but SR_REC_BAD, r->next lies in (q, end] and the payload
 * [r->payload, r->payload + r->v) of a SPAN or PAD inside it.
 */
static inline enum sr_rec_kind sr_rec_read(const uint8_t *q, const uint8_t *end, uint32_t maxrec,
					   struct sr_rec *r)
{
	/* Span records are nearly all there is: their header (tag 0x12 and a
	 * length of one or two bytes) is decoded here; anything else takes
	 * the general reader. */
	if (q[0] == (uint8_t)PB_TAG(SPANRING_SPAN_FIELD, SPANRING_WT_LEN) && end - q >= 3 &&
	    (q[1] < 0x80 || q[2] < 0x80)) {
		r->field = SPANRING_SPAN_FIELD;
		r->wt = SPANRING_WT_LEN;
		if (q[1] < 0x80) {
			r->v = q[1];
			r->payload = q + 2;
		} else {
			r->v = (uint64_t)(q[1] & 0x7f) | ((uint64_t)q[2] << 7);
			r->payload = q + 3;
		}
		if (r->v > (uint64_t)(end - r->payload))
			return sr_rec_bad(r, SR_READ_EFRAME);
		r->next = r->payload + r->v;
	} else if (pb_next_field(q, end, &r->field, &r->wt, &r->payload, &r->next, &r->v)) {
		return sr_rec_bad(r, SR_READ_EFRAME);
	}
	switch (r->field) {
	case SPANRING_SPAN_FIELD:
		if (r->wt != SPANRING_WT_LEN)
			return sr_rec_bad(r, SR_READ_ESPAN_WT);
		if (r->v > maxrec)
			return sr_rec_bad(r, SR_READ_ESPAN_SIZE);
		return SR_REC_SPAN;
	case SPANRING_CTRL_SCOPE:
		if (r->wt != SPANRING_WT_VARINT)
			return sr_rec_bad(r, SR_READ_ESCOPE_WT);
		return SR_REC_SCOPE;
	case SPANRING_CTRL_LOST:
		if (r->wt != SPANRING_WT_VARINT)
			return sr_rec_bad(r, SR_READ_ELOST_WT);
		return SR_REC_LOST;
	case SPANRING_CTRL_PAD:
		return SR_REC_PAD;
	default:
		if (r->field < SPANRING_CTRL_FIELD_MIN || r->field > SPANRING_CTRL_FIELD_MAX)
			return sr_rec_bad(r, SR_READ_EFIELD);
		return SR_REC_UNKNOWN;
	}
}

/*
 * Describe a record the caller refused, for "slot N at byte P: <text>":
 * why (or, when NULL, the reason sr_rec_read() gave) and the offending
 * value: the span's length against maxrec, the field and wire type, or
 * a SCOPE record's offset.
 */
SR_HIDDEN void sr_rec_describe(char *buf, size_t n, const char *why, enum sr_rec_kind kind,
			       const struct sr_rec *r, uint32_t maxrec);

/*
 * Find the scope-table entry at offset off of m: aligned, inside the
 * scope_len the producer published, its body inside that too. Returns
 * SR_READ_OK with *len, the body's length (read once), or the reason.
 * The body is not read: the caller applies its own limits to *len, then
 * copies it with sr_scope_body_copy().
 */
SR_HIDDEN enum sr_read_err sr_scope_entry_find(const struct sr_map *m, uint64_t off,
						 uint32_t *len);

/*
 * Copy the body of the entry at off (len from sr_scope_entry_find()) to
 * dst and check the copy, which the producer can no longer change: only
 * ScopeSpans fields 1 (an InstrumentationScope that decodes) and 3
 * (schema_url) may occur, so that forwarding the body verbatim as the
 * start of a ScopeSpans cannot inject spans or break the request.
 */
SR_HIDDEN enum sr_read_err sr_scope_body_copy(const struct sr_map *m, uint64_t off, uint32_t len,
					      uint8_t *dst);

#endif
