/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the ring reader (lib/ring_read.h) alone, the rules that
 * both the agent's drain and spanring-dump apply to a slot's records and
 * to the scope table. fuzz_ring and fuzz_dump_ring reach the same code
 * through a whole agent or dump tool; this target feeds it directly, many
 * times faster, and checks what the reader promises.
 *
 * Input:
 *   conf:u8            bit 7 set: the record limit is conf & 0x7f bytes;
 *                      else sr_max_record(16 KiB << (conf % 8))
 *   n:u16              bytes of scope table that follow (at most 4096)
 *   scope_len:u64      the header's scope_len, any value
 *   table[n]           the scope table (the rest of its 4096 bytes zero)
 *   slot bytes         the rest: records, walked from the first byte
 *
 * Every buffer the reader is given ends where the reader must stop (the
 * slot bytes, the scope table and each body copy are heap blocks of
 * exactly that size), so ASan reports any read past it.
 *
 * Invariants: a record that is not BAD ends after its start and no later
 * than the bytes given, and its kind matches its field and wire type; the
 * inline span-header path agrees with the general protobuf reader; BAD
 * carries a record reason; every reason has a text. For each SCOPE record
 * the entry is looked up: a found entry lies inside scope_len, which lies
 * inside the table; a body that passes the check holds only fields 1
 * and 3 of wire type LEN.
 */
#include "fuzz.h"

#include "pbwire.h"
#include "ring_read.h"

#define TABLE 4096u

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* What the general reader says about the record at q (no fast path). */
static void check_against_general(const uint8_t *q, const uint8_t *end, enum sr_rec_kind kind,
				  const struct sr_rec *r)
{
	uint32_t field, wt;
	const uint8_t *payload, *next;
	uint64_t v;
	if (pb_next_field(q, end, &field, &wt, &payload, &next, &v)) {
		FZ_CHECK(kind == SR_REC_BAD && r->err == SR_READ_EFRAME);
		return;
	}
	FZ_CHECK(kind != SR_REC_BAD || r->err != SR_READ_EFRAME);
	FZ_CHECK(r->field == field && r->wt == wt && r->v == v);
	FZ_CHECK(r->payload == payload && r->next == next);
}

static void check_kind(enum sr_rec_kind kind, const struct sr_rec *r, const uint8_t *q,
		       const uint8_t *end, uint32_t maxrec)
{
	FZ_CHECK(sr_read_why(r->err) != NULL);
	if (kind == SR_REC_BAD) {
		FZ_CHECK(r->err >= SR_READ_EFRAME && r->err <= SR_READ_EFIELD);
		char text[160];
		sr_rec_describe(text, sizeof(text), NULL, kind, r, maxrec);
		FZ_CHECK(strncmp(text, sr_read_why(r->err), strlen(sr_read_why(r->err))) == 0);
		return;
	}
	FZ_CHECK(r->next > q && r->next <= end);
	switch (kind) {
	case SR_REC_SPAN:
		FZ_CHECK(r->field == SPANRING_SPAN_FIELD && r->wt == SPANRING_WT_LEN);
		FZ_CHECK(r->v <= maxrec && r->payload > q && r->payload + r->v == r->next);
		break;
	case SR_REC_SCOPE:
		FZ_CHECK(r->field == SPANRING_CTRL_SCOPE && r->wt == SPANRING_WT_VARINT);
		break;
	case SR_REC_LOST:
		FZ_CHECK(r->field == SPANRING_CTRL_LOST && r->wt == SPANRING_WT_VARINT);
		break;
	case SR_REC_PAD:
		FZ_CHECK(r->field == SPANRING_CTRL_PAD);
		break;
	case SR_REC_UNKNOWN:
		FZ_CHECK(r->field >= SPANRING_CTRL_FIELD_MIN && r->field <= SPANRING_CTRL_FIELD_MAX);
		FZ_CHECK(r->field != SPANRING_CTRL_SCOPE && r->field != SPANRING_CTRL_LOST &&
			 r->field != SPANRING_CTRL_PAD);
		break;
	case SR_REC_BAD:
		break;
	}
}

/* Look up the entry a SCOPE record names, as the drain and the dump do. */
static void check_scope(const struct sr_map *m, uint64_t off, uint64_t scope_len)
{
	uint32_t len = 0;
	enum sr_read_err e = sr_scope_entry_find(m, off, &len);
	if (e) {
		FZ_CHECK(e >= SR_READ_ESCOPE_ALIGN && e <= SR_READ_ESCOPE_PAST);
		return;
	}
	FZ_CHECK(off % 8 == 0 && scope_len <= TABLE);
	FZ_CHECK(off + sizeof(struct spanring_scope_entry) + len <= scope_len);
	uint8_t *body = malloc(len ? len : 1);
	FZ_CHECK(body);
	e = sr_scope_body_copy(m, off, len, body);
	if (e) {
		FZ_CHECK(e >= SR_READ_ESCOPE_PB && e <= SR_READ_ESCOPE_DECODE);
	} else {
		const uint8_t *p = body, *end = body + len;
		while (p < end) {
			uint32_t field, wt;
			const uint8_t *payload, *next;
			uint64_t v;
			FZ_CHECK(pb_next_field(p, end, &field, &wt, &payload, &next, &v) == 0);
			FZ_CHECK(wt == SPANRING_WT_LEN && (field == 1 || field == 3));
			p = next;
		}
	}
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = {data, size};
	uint8_t conf = fz_u8(&in);
	uint32_t maxrec = (conf & 0x80) ? conf & 0x7fu
					: sr_max_record(SPANRING_MIN_SLOT_SIZE << (conf % 8));
	size_t want = fz_u16(&in) % (TABLE + 1), got;
	uint64_t scope_len = fz_u64(&in);
	const uint8_t *tb = fz_bytes(&in, want, &got);

	/* The header page and the scope table, the table last in the block. */
	uint8_t *ctrl = calloc(1, SPANRING_PAGE + TABLE);
	FZ_CHECK(ctrl);
	struct sr_map m = {.fd = -1, .ctrl = ctrl};
	m.l.scope_off = SPANRING_PAGE;
	m.l.scope_cap = TABLE;
	memcpy(sr_scope_table(&m), tb, got);
	sr_hdr(&m)->scope_len = scope_len;

	size_t n = fz_left(&in);
	uint8_t *slot = malloc(n ? n : 1);
	FZ_CHECK(slot);
	memcpy(slot, in.p, n);
	const uint8_t *q = slot, *end = slot + n;
	while (q < end) {
		struct sr_rec r;
		memset(&r, 0, sizeof(r));
		enum sr_rec_kind kind = sr_rec_read(q, end, maxrec, &r);
		check_against_general(q, end, kind, &r);
		check_kind(kind, &r, q, end, maxrec);
		if (kind == SR_REC_BAD)
			break;
		if (kind == SR_REC_SCOPE)
			check_scope(&m, r.v, scope_len);
		q = r.next;
	}
	free(slot);
	free(ctrl);
	return 0;
}
