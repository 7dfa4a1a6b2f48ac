/* SPDX-License-Identifier: MIT */
/*
 * Growable byte buffer for text the agent and spanring-dump produce
 * (JSON, Prometheus text, log details). An allocation failure is sticky
 * (oom) so callers check once at the end instead of after every append.
 */
#ifndef SPANRING_COMMON_SBUF_H
#define SPANRING_COMMON_SBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* Make room for n more bytes; false (and oom set) when it cannot. */
bool sbuf_reserve(struct sbuf *b, size_t n);
void sbuf_put(struct sbuf *b, const void *s, size_t n);
void sbuf_puts(struct sbuf *b, const char *s);
void sbuf_putc(struct sbuf *b, char c);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal (with quotes) of n bytes; invalid UTF-8 becomes
 * U+FFFD; control characters, DEL and C1 controls are \u-escaped. */
void sbuf_json_str(struct sbuf *b, const char *s, size_t n);
/* Lower-case hex of n bytes. */
void sbuf_hex(struct sbuf *b, const uint8_t *p, size_t n);
/* Standard base64 (with padding) of n bytes. */
void sbuf_base64(struct sbuf *b, const uint8_t *p, size_t n);
void sbuf_reset(struct sbuf *b);
void sbuf_free(struct sbuf *b);

/* Length of the valid UTF-8 sequence at s (n bytes left; 1..4), or 0 if
 * invalid (overlong, surrogate, past U+10FFFF, cut). */
size_t sbuf_utf8_seq(const unsigned char *s, size_t n);

#endif
