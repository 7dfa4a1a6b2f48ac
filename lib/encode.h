/* SPDX-License-Identifier: MIT */
/*
 * Hand-written OTLP Span encoder: the producer's hot path.
 *
 * Two passes over the span's structured data, no staging buffer: the size
 * pass computes the exact length of every nested message (caching the
 * lengths that the write pass needs as prefixes), then the write pass
 * writes the bytes straight into the ring. Fields are written in field
 * number order with minimal varints and proto3 defaults omitted, which is
 * what protobuf-c produces for the same message: tests compare the bytes
 * with protobuf-c's and decode them with protoc.
 *
 * Everything here is static inline: the span API's translation unit sees
 * the whole hot path (set attribute, size, encode, commit) and the
 * compiler can inline across it.
 */
#ifndef SPANRING_LIB_ENCODE_H
#define SPANRING_LIB_ENCODE_H

#include <string.h>

#include "internal.h"
#include "pbwire.h"

/* Size of the AnyValue message of one array item. */
static inline size_t enc_item_any_size(uint8_t type, const void *items, uint32_t i)
{
	switch (type) {
	case SPANRING_ATTR_STRING_ARRAY:
		return pb_len_field_size(((const struct sr_str *)items)[i].len);
	case SPANRING_ATTR_BOOL_ARRAY:
		return 2;
	case SPANRING_ATTR_INT_ARRAY:
		return 1 + pb_varint_size((uint64_t)((const int64_t *)items)[i]);
	default: /* DOUBLE_ARRAY */
		return 9;
	}
}

/* Size of the ArrayValue message { repeated AnyValue values = 1; }. */
static inline size_t enc_array_size(const struct sr_kv *kv)
{
	size_t arr = 0;
	for (uint32_t i = 0; i < kv->vlen; i++)
		arr += pb_len_field_size(enc_item_any_size(kv->type, kv->v.ptr, i));
	return arr;
}

static inline size_t enc_any_size(const struct sr_kv *kv)
{
	switch (kv->type) {
	case SPANRING_ATTR_STRING:
	case SPANRING_ATTR_BYTES:
		return pb_len_field_size(kv->vlen);
	case SPANRING_ATTR_BOOL:
		return 2;
	case SPANRING_ATTR_INT:
		return 1 + pb_varint_size((uint64_t)kv->v.i);
	case SPANRING_ATTR_DOUBLE:
		return 9;
	default: /* ArrayValue under AnyValue field 5 */
		return pb_len_field_size(enc_array_size(kv));
	}
}

static inline size_t enc_kv_msg_size(const struct sr_kv *kv)
{
	return pb_len_field_size(kv->any_len) + pb_len_field_size(kv->key_len);
}

static inline uint32_t sr_kv_sizes(struct sr_kv *kv)
{
	kv->any_len = (uint32_t)enc_any_size(kv);
	kv->msg_len = (uint32_t)enc_kv_msg_size(kv);
	return (uint32_t)pb_len_field_size(kv->msg_len);
}

static inline size_t sr_kvs_size(struct sr_kv *kv, uint32_t n, uint32_t field)
{
	size_t total = 0;
	(void)field; /* all KeyValue fields used here have one-byte tags */
	for (uint32_t i = 0; i < n; i++) {
		kv[i].any_len = (uint32_t)enc_any_size(&kv[i]);
		kv[i].msg_len = (uint32_t)enc_kv_msg_size(&kv[i]);
		total += pb_len_field_size(kv[i].msg_len);
	}
	return total;
}

static inline uint8_t *enc_put_item_any(uint8_t *p, uint8_t type, const void *items, uint32_t i)
{
	switch (type) {
	case SPANRING_ATTR_STRING_ARRAY: {
		const struct sr_str *s = &((const struct sr_str *)items)[i];
		*p++ = 0x0a;
		return pb_put_bytes(p, s->p, s->len);
	}
	case SPANRING_ATTR_BOOL_ARRAY:
		*p++ = 0x10;
		*p++ = ((const bool *)items)[i] ? 1 : 0;
		return p;
	case SPANRING_ATTR_INT_ARRAY:
		*p++ = 0x18;
		return pb_put_varint(p, (uint64_t)((const int64_t *)items)[i]);
	default: {
		double d = ((const double *)items)[i];
		*p++ = 0x21;
		memcpy(p, &d, 8);
		return p + 8;
	}
	}
}

static inline uint8_t *enc_put_any(uint8_t *p, const struct sr_kv *kv)
{
	switch (kv->type) {
	case SPANRING_ATTR_STRING:
		*p++ = 0x0a;
		return pb_put_bytes(p, kv->v.ptr, kv->vlen);
	case SPANRING_ATTR_BYTES:
		*p++ = 0x3a;
		return pb_put_bytes(p, kv->v.ptr, kv->vlen);
	case SPANRING_ATTR_BOOL:
		*p++ = 0x10;
		*p++ = kv->v.b ? 1 : 0;
		return p;
	case SPANRING_ATTR_INT:
		*p++ = 0x18;
		return pb_put_varint(p, (uint64_t)kv->v.i);
	case SPANRING_ATTR_DOUBLE:
		*p++ = 0x21;
		memcpy(p, &kv->v.d, 8);
		return p + 8;
	default: {
		size_t arr = enc_array_size(kv);
		*p++ = 0x2a;
		p = pb_put_varint(p, arr);
		for (uint32_t i = 0; i < kv->vlen; i++) {
			*p++ = 0x0a;
			p = pb_put_varint(p, enc_item_any_size(kv->type, kv->v.ptr, i));
			p = enc_put_item_any(p, kv->type, kv->v.ptr, i);
		}
		return p;
	}
	}
}

static inline uint8_t *sr_encode_kvs(uint8_t *p, const struct sr_kv *kv, uint32_t n, uint32_t field)
{
	const uint8_t tag = (uint8_t)PB_TAG(field, SPANRING_WT_LEN);
	for (uint32_t i = 0; i < n; i++) {
		*p++ = tag;
		p = pb_put_varint(p, kv[i].msg_len);
		/* Keys are never empty (rejected when set). */
		*p++ = 0x0a;
		p = pb_put_bytes(p, kv[i].key, kv[i].key_len);
		*p++ = 0x12;
		p = pb_put_varint(p, kv[i].any_len);
		p = enc_put_any(p, &kv[i]);
	}
	return p;
}

static inline size_t enc_status_size(const struct spanring_span *s)
{
	size_t n = 0;
	if (s->status_msg_len)
		n += pb_len_field_size(s->status_msg_len);
	if (s->status)
		n += 2;
	return n;
}

static inline size_t enc_varint_field_size(uint64_t v)
{
	return v ? 1 + pb_varint_size(v) : 0;
}

static inline uint32_t enc_span_flags(const struct spanring_span *s)
{
	/* Bits 0-7: W3C trace flags. Bit 8: we know whether the parent is
	 * remote. Bit 9: it is. */
	return (uint32_t)s->trace_flags | 0x100u | (s->parent_remote ? 0x200u : 0u);
}

static inline size_t sr_span_size(struct spanring_span *s, uint64_t end_ns)
{
	size_t n = 18 + 10; /* trace_id, span_id */
	if (s->ts_len)
		n += pb_len_field_size(s->ts_len);
	if (s->has_parent)
		n += 10;
	if (s->name_len)
		n += pb_len_field_size(s->name_len);
	if (s->kind)
		n += 2;
	if (s->start_ns)
		n += 9;
	if (end_ns)
		n += 9;
	n += s->kv_bytes; /* kept up to date as attributes are set */
	n += enc_varint_field_size(s->dropped_attrs);
	for (uint32_t i = 0; i < s->nev; i++) {
		struct sr_event *e = &s->ev[i];
		size_t m = e->time_ns ? 9 : 0;
		if (e->name_len)
			m += pb_len_field_size(e->name_len);
		m += sr_kvs_size(s->xkv + e->kv_start, e->kv_count, 3);
		m += enc_varint_field_size(e->dropped_attrs);
		e->enc_len = (uint32_t)m;
		n += pb_len_field_size(m);
	}
	n += enc_varint_field_size(s->dropped_events);
	for (uint32_t i = 0; i < s->nln; i++) {
		struct sr_link *l = &s->ln[i];
		size_t m = 18 + 10;
		if (l->ts_len)
			m += pb_len_field_size(l->ts_len);
		m += sr_kvs_size(s->xkv + l->kv_start, l->kv_count, 4);
		m += enc_varint_field_size(l->dropped_attrs);
		if (l->flags)
			m += 5;
		l->enc_len = (uint32_t)m;
		n += pb_len_field_size(m);
	}
	n += enc_varint_field_size(s->dropped_links);
	if (s->status || s->status_msg_len)
		n += pb_len_field_size(enc_status_size(s));
	n += 6; /* flags: 2-byte tag + fixed32, never 0 (bit 8 is always set) */
	return n;
}

static inline uint8_t *enc_put_varint_field(uint8_t *p, uint8_t tag, uint64_t v)
{
	if (!v)
		return p;
	*p++ = tag;
	return pb_put_varint(p, v);
}

/* trace_id (field 1) and span_id (field 2): the first fields of a Span
 * and of a Link. */
static inline uint8_t *enc_put_ids(uint8_t *p, const uint8_t *trace_id, const uint8_t *span_id)
{
	*p++ = 0x0a;
	*p++ = 16;
	memcpy(p, trace_id, 16);
	p += 16;
	*p++ = 0x12;
	*p++ = 8;
	memcpy(p, span_id, 8);
	return p + 8;
}

/* Span.events[i] (field 11): one Event message. */
static inline uint8_t *enc_put_event(uint8_t *p, const struct spanring_span *s,
				     const struct sr_event *e)
{
	*p++ = 0x5a;
	p = pb_put_varint(p, e->enc_len);
	if (e->time_ns) {
		*p++ = 0x09;
		p = pb_put_fixed64(p, e->time_ns);
	}
	if (e->name_len) {
		*p++ = 0x12;
		p = pb_put_bytes(p, e->name, e->name_len);
	}
	p = sr_encode_kvs(p, s->xkv + e->kv_start, e->kv_count, 3);
	return enc_put_varint_field(p, 0x20, e->dropped_attrs);
}

/* Span.links[i] (field 13): one Link message. */
static inline uint8_t *enc_put_link(uint8_t *p, const struct spanring_span *s,
				    const struct sr_link *l)
{
	*p++ = 0x6a;
	p = pb_put_varint(p, l->enc_len);
	p = enc_put_ids(p, l->trace_id, l->span_id);
	if (l->ts_len) {
		*p++ = 0x1a;
		p = pb_put_bytes(p, l->trace_state, l->ts_len);
	}
	p = sr_encode_kvs(p, s->xkv + l->kv_start, l->kv_count, 4);
	p = enc_put_varint_field(p, 0x28, l->dropped_attrs);
	if (l->flags) {
		*p++ = 0x35;
		p = pb_put_fixed32(p, l->flags);
	}
	return p;
}

/* Span.status (field 15). */
static inline uint8_t *enc_put_status(uint8_t *p, const struct spanring_span *s)
{
	*p++ = 0x7a;
	p = pb_put_varint(p, enc_status_size(s));
	if (s->status_msg_len) {
		*p++ = 0x12;
		p = pb_put_bytes(p, s->status_msg, s->status_msg_len);
	}
	if (s->status) {
		*p++ = 0x18;
		*p++ = s->status;
	}
	return p;
}

static inline uint8_t *sr_encode_span(uint8_t *p, const struct spanring_span *s, uint64_t end_ns)
{
	p = enc_put_ids(p, s->trace_id, s->span_id);
	if (s->ts_len) {
		*p++ = 0x1a;
		p = pb_put_bytes(p, s->trace_state, s->ts_len);
	}
	if (s->has_parent) {
		*p++ = 0x22;
		*p++ = 8;
		memcpy(p, s->parent_id, 8);
		p += 8;
	}
	if (s->name_len) {
		*p++ = 0x2a;
		p = pb_put_bytes(p, s->name, s->name_len);
	}
	if (s->kind) {
		*p++ = 0x30;
		*p++ = s->kind;
	}
	if (s->start_ns) {
		*p++ = 0x39;
		p = pb_put_fixed64(p, s->start_ns);
	}
	if (end_ns) {
		*p++ = 0x41;
		p = pb_put_fixed64(p, end_ns);
	}
	p = sr_encode_kvs(p, s->kv, s->nkv, 9);
	p = enc_put_varint_field(p, 0x50, s->dropped_attrs);
	for (uint32_t i = 0; i < s->nev; i++)
		p = enc_put_event(p, s, &s->ev[i]);
	p = enc_put_varint_field(p, 0x60, s->dropped_events);
	for (uint32_t i = 0; i < s->nln; i++)
		p = enc_put_link(p, s, &s->ln[i]);
	p = enc_put_varint_field(p, 0x70, s->dropped_links);
	if (s->status || s->status_msg_len)
		p = enc_put_status(p, s);
	*p++ = 0x85; /* field 16, wire type 5: varint 133 */
	*p++ = 0x01;
	return pb_put_fixed32(p, enc_span_flags(s));
}

#endif
