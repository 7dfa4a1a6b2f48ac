/* SPDX-License-Identifier: MIT */
/* The out-of-line part of the ring reader: reasons, scope-table entries. */
#include "ring_read.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "atomics.h"
#include "otlp_common.pb-c.h"
#include "pbcheck.h"

static const char *const why_text[] = {
	[SR_READ_OK] = "no error",
	[SR_READ_EFRAME] = "truncated or malformed record header",
	[SR_READ_ESPAN_WT] = "span field with a wire type other than LEN",
	[SR_READ_ESPAN_SIZE] = "span record larger than the record limit",
	[SR_READ_ESCOPE_WT] = "scope record with a wire type other than VARINT",
	[SR_READ_ELOST_WT] = "lost record with a wire type other than VARINT",
	[SR_READ_EFIELD] = "unexpected field",
	[SR_READ_ESCOPE_ALIGN] = "scope offset not 8-byte aligned",
	[SR_READ_ESCOPE_CAP] = "scope_len beyond the scope table's capacity",
	[SR_READ_ESCOPE_OFF] = "scope offset beyond scope_len",
	[SR_READ_ESCOPE_PAST] = "scope entry extends past scope_len",
	[SR_READ_ESCOPE_PB] = "scope entry body is not valid protobuf",
	[SR_READ_ESCOPE_FIELD] = "scope entry body has a field other than scope and schema_url",
	[SR_READ_ESCOPE_DECODE] = "scope entry's InstrumentationScope does not decode",
};

const char *sr_read_why(enum sr_read_err e)
{
	if ((size_t)e >= sizeof(why_text) / sizeof(why_text[0]))
		return "unknown ring error";
	return why_text[e];
}

void sr_rec_describe(char *buf, size_t n, const char *why, enum sr_rec_kind kind,
		     const struct sr_rec *r, uint32_t maxrec)
{
	if (!why)
		why = sr_read_why(r->err);
	if (kind == SR_REC_SCOPE)
		snprintf(buf, n, "%s (offset %" PRIu64 ")", why, r->v);
	else if (kind == SR_REC_BAD && r->err == SR_READ_ESPAN_SIZE)
		snprintf(buf, n, "%s (%" PRIu64 " > %" PRIu32 " bytes)", why, r->v, maxrec);
	else if (kind == SR_REC_BAD && r->err == SR_READ_EFIELD)
		snprintf(buf, n, "%s (field %" PRIu32 ", wire type %" PRIu32 ")", why, r->field, r->wt);
	else
		snprintf(buf, n, "%s", why);
}

enum sr_read_err sr_scope_entry_find(const struct sr_map *m, uint64_t off, uint32_t *len)
{
	if (off % 8)
		return SR_READ_ESCOPE_ALIGN;
	/* Pairs with the producer's store-release of scope_len after it
	 * appended an entry (ABI.md §10, "scope_len"): the entry's bytes
	 * below scope_len are complete. Read once. */
	uint64_t slen = sr_load_acquire_64(&sr_hdr(m)->scope_len);
	if (slen > m->l.scope_cap)
		return SR_READ_ESCOPE_CAP;
	if (off >= slen || slen - off < sizeof(struct spanring_scope_entry))
		return SR_READ_ESCOPE_OFF;
	struct spanring_scope_entry e;
	memcpy(&e, sr_scope_table(m) + off, sizeof(e)); /* the length, read once */
	if (e.len > slen - off - sizeof(e))
		return SR_READ_ESCOPE_PAST;
	*len = e.len;
	return SR_READ_OK;
}

/* The check of a private copy of an entry's body (ABI.md §6.5). */
static enum sr_read_err scope_body_check(const uint8_t *b, size_t len)
{
	const uint8_t *p = b, *end = b + len;
	while (p < end) {
		uint32_t field, wt;
		const uint8_t *payload, *next;
		uint64_t v;
		if (pb_next_field(p, end, &field, &wt, &payload, &next, &v))
			return SR_READ_ESCOPE_PB;
		if (wt != SPANRING_WT_LEN || (field != 1 && field != 3))
			return SR_READ_ESCOPE_FIELD;
		if (field == 1) {
			Opentelemetry__Proto__Common__V1__InstrumentationScope *s =
				(void *)sr_pb_unpack(&opentelemetry__proto__common__v1__instrumentation_scope__descriptor,
						     payload, (size_t)v);
			if (!s)
				return SR_READ_ESCOPE_DECODE;
			opentelemetry__proto__common__v1__instrumentation_scope__free_unpacked(s, NULL);
		}
		p = next;
	}
	return SR_READ_OK;
}

enum sr_read_err sr_scope_body_copy(const struct sr_map *m, uint64_t off, uint32_t len,
				    uint8_t *dst)
{
	/* off and len passed sr_scope_entry_find(): inside the table. The
	 * producer may change the table from now on; only dst is checked
	 * and used. */
	memcpy(dst, sr_scope_table(m) + off + sizeof(struct spanring_scope_entry), len);
	return scope_body_check(dst, len);
}
