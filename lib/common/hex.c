/* SPDX-License-Identifier: MIT */
/* Hexadecimal encoding and decoding (see hex.h). */
#include "hex.h"

#include <errno.h>

static const char hex_digits[] = "0123456789abcdef";

/* Digit value plus one; 0 marks a character that is not a lowercase hex
 * digit (the zero default of the initializer covers all other bytes). */
static const uint8_t hex_val1[256] = {
	['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
	['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
	['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

void sr_hex_encode(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex_digits[in[i] >> 4];
		out[2 * i + 1] = hex_digits[in[i] & 0x0f];
	}
}

int sr_hex_decode(const char *in, size_t n_bytes, uint8_t *out)
{
	/* Branch-free loop: an invalid digit maps to UINT_MAX (0 - 1), which
	 * sets bits above the low nibble in bad; checked once at the end. */
	unsigned bad = 0;
	for (size_t i = 0; i < n_bytes; i++) {
		unsigned hi = hex_val1[(uint8_t)in[2 * i]] - 1u;
		unsigned lo = hex_val1[(uint8_t)in[2 * i + 1]] - 1u;
		bad |= hi | lo;
		out[i] = (uint8_t)((hi << 4) | (lo & 0x0fu));
	}
	return (bad & ~0x0fu) ? -EINVAL : 0;
}
