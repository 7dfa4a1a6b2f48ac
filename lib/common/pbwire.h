/* SPDX-License-Identifier: MIT */
/*
 * Protobuf wire-format primitives: sizes and writers for the producer's
 * single-pass encoder, and a bounds-checked reader for the agent and tools,
 * which treat every byte as hostile.
 */
#ifndef SPANRING_COMMON_PBWIRE_H
#define SPANRING_COMMON_PBWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spanring/ring_abi.h"

/* Bytes of the minimal varint encoding of v (1..10). */
static inline size_t pb_varint_size(uint64_t v)
{
	/* Lengths and small integers dominate: branch for them first. */
	if (v < (1u << 7))
		return 1;
	if (v < (1u << 14))
		return 2;
	/* 64 - clz gives the bit count; 7 bits per byte. */
	unsigned bits = 64u - (unsigned)__builtin_clzll(v);
	return (bits + 6) / 7;
}

/*
 * Copy n bytes where n is usually small (keys, names, short values):
 * overlapping fixed-size moves instead of a call to memcpy.
 */
static inline void pb_copy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	if (n <= 16) {
		if (n >= 8) {
			uint64_t a, b;
			memcpy(&a, s, 8);
			memcpy(&b, s + n - 8, 8);
			memcpy(d, &a, 8);
			memcpy(d + n - 8, &b, 8);
		} else if (n >= 4) {
			uint32_t a, b;
			memcpy(&a, s, 4);
			memcpy(&b, s + n - 4, 4);
			memcpy(d, &a, 4);
			memcpy(d + n - 4, &b, 4);
		} else if (n) {
			d[0] = s[0];
			d[n / 2] = s[n / 2];
			d[n - 1] = s[n - 1];
		}
	} else if (n <= 32) {
		uint64_t a, b, c, e;
		memcpy(&a, s, 8);
		memcpy(&b, s + 8, 8);
		memcpy(&c, s + n - 16, 8);
		memcpy(&e, s + n - 8, 8);
		memcpy(d, &a, 8);
		memcpy(d + 8, &b, 8);
		memcpy(d + n - 16, &c, 8);
		memcpy(d + n - 8, &e, 8);
	} else {
		memcpy(d, s, n);
	}
}

static inline uint8_t *pb_put_varint(uint8_t *p, uint64_t v)
{
	if (v < 0x80) {
		*p = (uint8_t)v;
		return p + 1;
	}
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Tag of (field, wire type) as a varint value. */
#define PB_TAG(field, wt) (((uint32_t)(field) << 3) | (uint32_t)(wt))

/* Single-byte tags (field numbers 1..15). */
static inline uint8_t *pb_put_tag1(uint8_t *p, uint32_t field, uint32_t wt)
{
	*p++ = (uint8_t)PB_TAG(field, wt);
	return p;
}

static inline uint8_t *pb_put_fixed64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8); /* little-endian host; the library is x86-64/aarch64 LE */
	return p + 8;
}

static inline uint8_t *pb_put_fixed32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
	return p + 4;
}

static inline uint8_t *pb_put_bytes(uint8_t *p, const void *src, size_t n)
{
	p = pb_put_varint(p, n);
	pb_copy(p, src, n);
	return p + n;
}

/* Size of a length-delimited field with a 1-byte tag and n payload bytes. */
static inline size_t pb_len_field_size(size_t n)
{
	return 1 + pb_varint_size(n) + n;
}

/* ---- reader ------------------------------------------------------------ */

/*
 * Read a varint from [*pp, end). Returns 0 and advances *pp, or -1 when it
 * is truncated or longer than 10 bytes.
 */
static inline int pb_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 70; shift += 7) {
		if (p >= end)
			return -1;
		uint8_t b = *p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*pp = p;
			*out = v;
			return 0;
		}
	}
	return -1;
}

/*
 * Read one field header and find where its payload ends.
 * On success: *field, *wt set; *payload points at the payload (for LEN, after
 * the length), *next at the first byte after the field. Returns 0, or -1 on
 * truncation, a bad wire type, a zero field number or a length past end.
 */
static inline int pb_next_field(const uint8_t *p, const uint8_t *end, uint32_t *field,
				uint32_t *wt, const uint8_t **payload, const uint8_t **next,
				uint64_t *value)
{
	uint64_t tag, v;
	if (pb_get_varint(&p, end, &tag) || tag > 0xffffffffu)
		return -1;
	*field = (uint32_t)(tag >> 3);
	*wt = (uint32_t)(tag & 7);
	if (*field == 0)
		return -1;
	switch (*wt) {
	case SPANRING_WT_VARINT:
		if (pb_get_varint(&p, end, &v))
			return -1;
		*payload = p;
		*next = p;
		*value = v;
		return 0;
	case SPANRING_WT_I64:
		if (end - p < 8)
			return -1;
		*payload = p;
		*next = p + 8;
		*value = 8;
		return 0;
	case SPANRING_WT_LEN:
		if (pb_get_varint(&p, end, &v) || v > (uint64_t)(end - p))
			return -1;
		*payload = p;
		*next = p + v;
		*value = v;
		return 0;
	case SPANRING_WT_I32:
		if (end - p < 4)
			return -1;
		*payload = p;
		*next = p + 4;
		*value = 4;
		return 0;
	default:
		return -1;
	}
}

#endif
