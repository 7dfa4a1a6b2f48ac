/* SPDX-License-Identifier: MIT */
/*
 * Hexadecimal: the one encoder and decoder of the tree (W3C trace context
 * in the producer library, ids in the agent's logs and JSON, spanring-dump's
 * filters and input). The producer library compiles hex.c in itself.
 */
#ifndef SPANRING_COMMON_HEX_H
#define SPANRING_COMMON_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h" /* SR_HIDDEN */

/*
 * Write the 2*n lowercase hex digits of in[0..n) to out. No NUL is
 * written, so a caller can encode into the middle of a larger buffer.
 */
SR_HIDDEN void sr_hex_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decode 2*n_bytes hex digits from in into out[0..n_bytes). Only lowercase
 * digits are accepted (W3C HEXDIGLC). Returns 0, or -EINVAL when any
 * character is not a lowercase hex digit; out is then partly written and
 * must not be used.
 */
SR_HIDDEN int sr_hex_decode(const char *in, size_t n_bytes, uint8_t *out);

/* Value of a hex digit of either case, or -1. */
static inline int sr_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif /* SPANRING_COMMON_HEX_H */
