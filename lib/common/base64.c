/* SPDX-License-Identifier: MIT */
/* Base64 encoding and decoding (see base64.h). */
#include "base64.h"

#include <errno.h>

static const char b64_digits[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void sr_base64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
		*out++ = b64_digits[v >> 18];
		*out++ = b64_digits[(v >> 12) & 63];
		*out++ = b64_digits[(v >> 6) & 63];
		*out++ = b64_digits[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		*out++ = b64_digits[v >> 18];
		*out++ = b64_digits[(v >> 12) & 63];
		*out++ = '=';
		*out++ = '=';
	} else if (n - i == 2) {
		uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
		*out++ = b64_digits[v >> 18];
		*out++ = b64_digits[(v >> 12) & 63];
		*out++ = b64_digits[(v >> 6) & 63];
		*out++ = '=';
	}
}

/* Value of a digit of either alphabet, or -1. */
static int b64_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int sr_base64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen)
{
	while (n && in[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -EINVAL;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_val((unsigned char)in[i]);
		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	*outlen = o;
	return 0;
}
