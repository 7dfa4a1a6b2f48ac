/* SPDX-License-Identifier: MIT */
/* Growable text buffer (see sbuf.h). */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "hex.h"

bool sbuf_reserve(struct sbuf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->cap - b->len > n)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len <= n) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void sbuf_put(struct sbuf *b, const void *s, size_t n)
{
	if (!sbuf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void sbuf_puts(struct sbuf *b, const char *s)
{
	sbuf_put(b, s, strlen(s));
}

void sbuf_putc(struct sbuf *b, char c)
{
	sbuf_put(b, &c, 1);
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char small[256];
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		sbuf_put(b, small, (size_t)n);
		return;
	}
	if (!sbuf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

size_t sbuf_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF are invalid. */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void sbuf_json_str(struct sbuf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	sbuf_putc(b, '"');
	size_t i = 0;
	while (i < n) {
		size_t run = i;
		/* Copy runs of plain characters at once. */
		while (run < n && u[run] >= 0x20 && u[run] < 0x7f && u[run] != '"' && u[run] != '\\')
			run++;
		if (run > i) {
			sbuf_put(b, s + i, run - i);
			i = run;
			continue;
		}
		unsigned char c = u[i];
		switch (c) {
		case '"':
			sbuf_puts(b, "\\\"");
			i++;
			continue;
		case '\\':
			sbuf_puts(b, "\\\\");
			i++;
			continue;
		case '\n':
			sbuf_puts(b, "\\n");
			i++;
			continue;
		case '\r':
			sbuf_puts(b, "\\r");
			i++;
			continue;
		case '\t':
			sbuf_puts(b, "\\t");
			i++;
			continue;
		default:
			break;
		}
		if (c < 0x20 || c == 0x7f) {
			sbuf_printf(b, "\\u%04x", c);
			i++;
			continue;
		}
		size_t l = sbuf_utf8_seq(u + i, n - i);
		if (l == 0) {
			sbuf_puts(b, "\\ufffd");
			i++;
		} else if (l == 2 && c == 0xc2 && u[i + 1] < 0xa0) {
			/* A C1 control (U+0080..U+009F; U+009B is CSI): escaped,
			 * so that the text is safe on a terminal too. */
			sbuf_printf(b, "\\u%04x", (unsigned)u[i + 1]);
			i += 2;
		} else {
			sbuf_put(b, s + i, l);
			i += l;
		}
	}
	sbuf_putc(b, '"');
}

void sbuf_hex(struct sbuf *b, const uint8_t *p, size_t n)
{
	if (!sbuf_reserve(b, 2 * n))
		return;
	sr_hex_encode(p, n, b->p + b->len);
	b->len += 2 * n;
	b->p[b->len] = 0;
}

void sbuf_base64(struct sbuf *b, const uint8_t *p, size_t n)
{
	if (!sbuf_reserve(b, SR_BASE64_LEN(n)))
		return;
	sr_base64_encode(p, n, b->p + b->len);
	b->len += SR_BASE64_LEN(n);
	b->p[b->len] = 0;
}

void sbuf_reset(struct sbuf *b)
{
	b->len = 0;
	b->oom = false;
	if (b->p)
		b->p[0] = 0;
}

void sbuf_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}
