/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the agent's ring validation, adoption, drain walk, batch
 * building and release over arbitrary ring memory.
 *
 * Each input is a small program run against a real ring: a sealed memfd
 * of a fixed layout (1 or 2 slots of 16 KiB, 4 KiB scope table and
 * resource) made by sr_ring_create(), mapped twice like in production
 * (the "producer" mapping read-write, the agent's through
 * registry_adopt() read-only, slot data mirrored). The program writes any
 * bytes anywhere in the ring (header, slot control lines, consumer lines,
 * scope table, resource, slot data), appends records, moves head to any
 * value, adopts the ring (fresh or as a reconnect), drains, releases held
 * batches in any order and closes the producer. Input format, one op per
 * byte (op % 10), little-endian operands:
 *
 *   0 WRITE  region:u8 off:u16 n:u8 bytes[n]  region 0 hdr, 1 prod lines,
 *            2 consumer lines, 3 scope table, 4 resource, 5.. slot data
 *   1 APPEND slot:u8 n:u16 bytes[n]           raw bytes after the pending ones
 *   2 COMMIT slot:u8                          head += pending (store-release)
 *   3 HEAD   slot:u8 delta:u32                head += (int32)delta
 *   4 ADOPT                                    registry_adopt (once)
 *   5 DRAIN                                    agent_drain_all + agent_flush
 *   6 RELEASE idx:u8                           drop a held batch
 *   7 CLOSE                                    the producer's connection ends
 *   8 SPAN   slot:u8 n:u8 bytes[n]             append tag(2,LEN) len bytes
 *   9 CTRL   slot:u8 kind:u8 v:u32             append SCOPE/LOST/PAD record
 * The first byte configures: bit 0 two slots, bit 1 reconnect adoption,
 * bit 2 small batches (cuts inside a walk), bit 3 max 2 in-flight batches,
 * bit 4 keep no batch (released at submit).
 *
 * Invariants checked (abort = a finding): adoption fails only with a
 * SPANRING_REG_E* code and a reason; every finished batch is a
 * well-framed ExportTraceServiceRequest whose lengths add up, whose span
 * iovecs lie in the ring's data mapping (zc_check_iov) and inside the
 * slot's mirror window, and whose segments are exactly whole span records
 * of at most the record limit; tails only grow, never pass what was walked
 * or the last head; once every batch is released, tail == walked position.
 * ASan/UBSan catch the rest.
 */
#include <errno.h>
#include <unistd.h>

#include "fuzz.h"

#include "agent.h"
#include "drain.h"
#include "log.h"
#include "testring.h"

#define SLOT_SIZE 16384u
#define MAX_HELD 64

struct hold {
	struct exporter e;
	struct batch *b[MAX_HELD];
	size_t n;
	bool keep;
};

static int hold_submit(struct exporter *e, struct batch *b)
{
	struct hold *h = (struct hold *)e;
	if (h->keep && h->n < MAX_HELD) {
		batch_ref(b);
		h->b[h->n++] = b;
	}
	return 0;
}

static size_t hold_flush(struct exporter *e, uint64_t deadline)
{
	(void)deadline;
	return ((struct hold *)e)->n;
}

static void hold_destroy(struct exporter *e)
{
	struct hold *h = (struct hold *)e;
	for (size_t i = 0; i < h->n; i++)
		batch_unref(h->b[i]);
	h->n = 0;
}

static const struct exporter_ops hold_ops = {
	.kind = "fuzz-hold",
	.submit = hold_submit,
	.flush = hold_flush,
	.destroy = hold_destroy,
};

static struct agent_config cfg;
static uint64_t seen_tail[SPANRING_MAX_SLOTS];
static int base_fds;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	agent_log_set_level(getenv("FUZZ_LOG") ? AGENT_LOG_DEBUG : AGENT_LOG_ERROR);
	agent_config_defaults(&cfg);
	cfg.host_name = strdup("fuzz-host");
	base_fds = fz_count_fds();
	return 0;
}

/* The producer that owns a given data pointer (NULL if none). */
static struct agent_producer *owner(struct agent *ag, const uint8_t *ptr)
{
	for (struct agent_producer *p = ag->producers; p; p = p->next)
		if (p->mapped && ptr >= p->map.data && ptr < p->map.data + p->map.data_span)
			return p;
	return NULL;
}

static uint32_t max_record(const struct agent_producer *p)
{
	uint32_t half = p->map.l.slot_size / 2;
	return half < SPANRING_MAX_RECORD ? half : SPANRING_MAX_RECORD;
}

/* A ScopeSpans message: scope (1), schema_url (3), then spans (2). */
static uint64_t walk_scope_spans(const uint8_t *p, const uint8_t *end)
{
	uint64_t spans = 0;
	bool in_spans = false;
	while (p < end) {
		uint32_t field, wt;
		const uint8_t *payload, *next;
		uint64_t v;
		FZ_CHECK(pb_next_field(p, end, &field, &wt, &payload, &next, &v) == 0);
		FZ_CHECK(wt == SPANRING_WT_LEN);
		if (field == 2) {
			in_spans = true;
			spans++;
		} else {
			FZ_CHECK(!in_spans && (field == 1 || field == 3));
		}
		p = next;
	}
	return spans;
}

/* A ResourceSpans message: resource (1) first, then ScopeSpans (2). */
static uint64_t walk_resource_spans(const uint8_t *p, const uint8_t *end)
{
	uint64_t spans = 0;
	bool first = true;
	while (p < end) {
		uint32_t field, wt;
		const uint8_t *payload, *next;
		uint64_t v;
		FZ_CHECK(pb_next_field(p, end, &field, &wt, &payload, &next, &v) == 0);
		FZ_CHECK(wt == SPANRING_WT_LEN);
		FZ_CHECK(field == (first ? 1u : 2u));
		if (field == 2)
			spans += walk_scope_spans(payload, next);
		first = false;
		p = next;
	}
	FZ_CHECK(!first);
	return spans;
}

static void check_batch(struct agent *ag, struct batch *b)
{
	FZ_CHECK(b->finalized && b->niov >= 1);
	/* iov[0]: varint(msg_len) */
	uint8_t pre[10];
	uint8_t *pe = pb_put_varint(pre, b->msg_len);
	FZ_CHECK(b->iov[0].iov_len == (size_t)(pe - pre) &&
		 memcmp(b->iov[0].iov_base, pre, b->iov[0].iov_len) == 0);
	size_t n;
	const struct iovec *iov = batch_msg_iov(b, &n);
	uint64_t sum = 0, span_sum = 0;
	for (size_t i = 0; i < n; i++) {
		sum += iov[i].iov_len;
		if (b->iov_kind[i + 1] == BATCH_IOV_SPANS)
			span_sum += iov[i].iov_len;
	}
	FZ_CHECK(sum == b->msg_len);
	FZ_CHECK(span_sum == b->span_bytes);
	FZ_CHECK(zc_check_iov(ag, b->iov, b->iov_kind, b->niov, b->span_bytes) == 0);

	/* Segments: inside their slot's mirror window, whole span records. */
	uint64_t seg_spans = 0;
	for (size_t i = 0; i < b->nsegs; i++) {
		const struct batch_seg *s = &b->segs[i];
		struct agent_producer *p = owner(ag, s->ptr);
		FZ_CHECK(p == s->p);
		FZ_CHECK(s->slot < p->map.l.slot_count);
		const uint8_t *base = sr_slot_data(&p->map, s->slot);
		uint32_t size = p->map.l.slot_size;
		FZ_CHECK(s->ptr >= base && (size_t)(s->ptr - base) < size);
		FZ_CHECK(s->len <= size && (size_t)(s->ptr - base) + s->len <= 2 * (size_t)size);
		const uint8_t *q = s->ptr, *end = s->ptr + s->len;
		uint32_t recs = 0;
		while (q < end) {
			uint32_t field, wt;
			const uint8_t *payload, *next;
			uint64_t v;
			FZ_CHECK(pb_next_field(q, end, &field, &wt, &payload, &next, &v) == 0);
			FZ_CHECK(field == SPANRING_SPAN_FIELD && wt == SPANRING_WT_LEN);
			FZ_CHECK(v <= max_record(p));
			recs++;
			q = next;
		}
		FZ_CHECK(recs == s->nspans);
		seg_spans += recs;
	}
	FZ_CHECK(seg_spans == b->spans);

	/* The whole request, gathered: framing that adds up. */
	uint8_t *buf = malloc(b->msg_len ? b->msg_len : 1);
	FZ_CHECK(buf);
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	const uint8_t *q = buf, *end = buf + off;
	uint64_t spans = 0, groups = 0;
	while (q < end) {
		uint32_t field, wt;
		const uint8_t *payload, *next;
		uint64_t v;
		FZ_CHECK(pb_next_field(q, end, &field, &wt, &payload, &next, &v) == 0);
		FZ_CHECK(field == 1 && wt == SPANRING_WT_LEN);
		spans += walk_resource_spans(payload, next);
		groups++;
		q = next;
	}
	FZ_CHECK(spans == b->spans);
	FZ_CHECK(groups == b->n_resource_spans);
	free(buf);
}

/* Tails: only grow, never beyond what was walked or the last head seen. */
static void check_tails(struct agent_producer *p)
{
	for (uint32_t i = 0; i < p->map.l.slot_count; i++) {
		const struct drain_slot *s = &p->slots[i];
		FZ_CHECK(s->tail <= s->pos && s->pos <= s->last_head);
		FZ_CHECK(s->last_head - s->tail <= p->map.l.slot_size);
		FZ_CHECK(s->tail >= seen_tail[i]);
		seen_tail[i] = s->tail;
	}
}

static bool producer_live(struct agent *ag, const struct agent_producer *p)
{
	for (struct agent_producer *q = ag->producers; q; q = q->next)
		if (q == p)
			return true;
	return false;
}

static void on_batch(struct agent *ag, struct batch *b)
{
	check_batch(ag, b);
}

/* Region r of the producer's mapping: base and size. */
static uint8_t *region(struct tr *t, uint32_t r, size_t *size)
{
	const struct sr_layout *l = &t->m.l;
	switch (r) {
	case 0: *size = SPANRING_PAGE; return t->m.ctrl;
	case 1: *size = l->cons_off - l->prod_off; return t->m.ctrl + l->prod_off;
	case 2: *size = l->scope_off - l->cons_off; return t->m.ctrl + l->cons_off;
	case 3: *size = l->scope_cap; return t->m.ctrl + l->scope_off;
	case 4: *size = l->res_cap; return t->m.ctrl + l->res_off;
	default:
		*size = l->slot_size;
		return sr_slot_data(&t->m, (r - 5) % l->slot_count);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = {data, size};
	uint8_t conf = fz_u8(&in);
	uint32_t slots = (conf & 1) ? 2 : 1;
	bool reconnect = conf & 2;
	cfg.batch_max_age_us = 0;
	cfg.batch_max_bytes = (conf & 4) ? 300 : (1u << 20);
	cfg.max_inflight_batches = (conf & 8) ? 2 : 1024;

	struct agent ag;
	FZ_CHECK(agent_init(&ag, &cfg, false) == 0);
	ag.on_batch = on_batch;
	struct hold *h = calloc(1, sizeof(*h));
	FZ_CHECK(h);
	h->e.ops = &hold_ops;
	h->keep = !(conf & 16);
	snprintf(h->e.name, sizeof(h->e.name), "hold");
	FZ_CHECK(agent_add_exporter(&ag, &h->e) == 0);

	static struct tr t;
	uint8_t res[256];
	size_t rl = tr_encode_resource(res, "fuzz", true);
	FZ_CHECK(tr_create_ex(&t, slots, SLOT_SIZE, SPANRING_PAGE, res, rl) == 0);
	uint64_t scope0 = tr_add_scope(&t, "fuzz-scope", "1.0", NULL);
	(void)tr_add_scope(&t, "other", NULL, "https://example.com/s");
	memset(seen_tail, 0, sizeof(seen_tail));

	struct agent_producer *p = NULL;
	bool adopted = false, failed = false;
	while (fz_left(&in) && !failed) {
		uint8_t op = fz_u8(&in) % 10;
		switch (op) {
		case 0: { /* WRITE */
			uint32_t r = fz_u8(&in) % (5 + slots);
			uint16_t off = fz_u16(&in);
			size_t want = fz_u8(&in), got, rsize;
			const uint8_t *b = fz_bytes(&in, want, &got);
			uint8_t *base = region(&t, r, &rsize);
			size_t o = off % rsize;
			if (got > rsize - o)
				got = rsize - o;
			memcpy(base + o, b, got);
			break;
		}
		case 1: { /* APPEND */
			uint32_t s = fz_u8(&in) % slots;
			size_t want = fz_u16(&in) % (SLOT_SIZE + 1), got;
			const uint8_t *b = fz_bytes(&in, want, &got);
			tr_put_raw(&t, s, b, got);
			t.pending[s] %= SLOT_SIZE + 1;
			break;
		}
		case 2: { /* COMMIT */
			uint32_t s = fz_u8(&in) % slots;
			tr_commit(&t, s);
			break;
		}
		case 3: { /* HEAD */
			uint32_t s = fz_u8(&in) % slots;
			int32_t d = (int32_t)fz_u32(&in);
			tr_set_head(&t, s, t.head[s] + (uint64_t)(int64_t)d);
			break;
		}
		case 4: /* ADOPT */
		case 5: /* DRAIN */
		case 6: /* RELEASE */
		case 7: /* CLOSE */
			if (!adopted) {
				int fd = dup(t.m.fd);
				const char *why = NULL;
				p = NULL;
				int rc = registry_adopt(&ag, fd, t.m.l.total_size, getpid(), getuid(),
							getgid(), reconnect, &p, &why);
				adopted = true;
				if (rc) {
					FZ_CHECK(rc > 0 && rc <= SPANRING_REG_EINTERNAL && why && *why);
					FZ_CHECK(!p && !ag.producers && ag.n_producers == 0);
					close(fd);
					failed = true;
					break;
				}
				FZ_CHECK(p && p->state == PROD_ACTIVE && p->mapped);
				for (uint32_t i = 0; i < slots; i++)
					seen_tail[i] = p->slots[i].tail;
			}
			if (op == 4)
				break;
			if (op == 5) {
				agent_drain_all(&ag);
				agent_flush(&ag);
			} else if (op == 6) {
				uint8_t idx = fz_u8(&in);
				if (h->n) {
					size_t k = idx % h->n;
					struct batch *b = h->b[k];
					h->b[k] = h->b[--h->n];
					batch_unref(b);
					agent_settle(&ag);
				}
			} else if (p && !p->conn_closed) {
				agent_producer_closed(p);
				agent_flush(&ag);
			}
			registry_reap(&ag);
			if (p && !producer_live(&ag, p))
				p = NULL; /* freed: closed and nothing in flight */
			if (p && p->mapped)
				check_tails(p);
			break;
		case 8: { /* SPAN */
			uint32_t s = fz_u8(&in) % slots;
			size_t want = fz_u8(&in), got;
			const uint8_t *b = fz_bytes(&in, want, &got);
			uint8_t hdr[8];
			uint8_t *e = pb_put_tag1(hdr, SPANRING_SPAN_FIELD, SPANRING_WT_LEN);
			e = pb_put_varint(e, got);
			tr_put_raw(&t, s, hdr, (size_t)(e - hdr));
			tr_put_raw(&t, s, b, got);
			t.pending[s] %= SLOT_SIZE + 1;
			break;
		}
		case 9: { /* CTRL */
			uint32_t s = fz_u8(&in) % slots;
			uint8_t kind = fz_u8(&in) % 4;
			uint32_t v = fz_u32(&in);
			uint8_t rec[32];
			size_t n;
			if (kind == 0)
				n = tr_ctrl_varint(rec, SPANRING_CTRL_SCOPE, scope0 + (v % 64) * 8);
			else if (kind == 1)
				n = tr_ctrl_varint(rec, SPANRING_CTRL_LOST, v);
			else if (kind == 2)
				n = tr_ctrl_varint(rec, SPANRING_CTRL_SCOPE, v);
			else {
				uint8_t *e = pb_put_varint(rec, PB_TAG(SPANRING_CTRL_PAD, SPANRING_WT_LEN));
				uint32_t pad = v % 8;
				e = pb_put_varint(e, pad);
				memset(e, 0, pad);
				n = (size_t)(e - rec) + pad;
			}
			tr_put_raw(&t, s, rec, n);
			break;
		}
		}
	}

	/* Every batch released: the tails reach what was walked. */
	if (p && producer_live(&ag, p)) {
		while (h->n)
			batch_unref(h->b[--h->n]);
		agent_flush(&ag);
		registry_reap(&ag);
		if (producer_live(&ag, p) && p->mapped) {
			check_tails(p);
			if (ag.inflight_batches == 0)
				for (uint32_t i = 0; i < p->map.l.slot_count; i++)
					FZ_CHECK(p->slots[i].tail == p->slots[i].pos &&
						 p->slots[i].chunks.len == 0);
		}
	}
	agent_fini(&ag); /* destroys the hold exporter and every producer */
	free(h);
	sr_ring_unmap(&t.m, true);
	FZ_CHECK_FDS(base_fds); /* every fd closed, the memfd's too */
	return 0;
}
