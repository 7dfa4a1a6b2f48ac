/* SPDX-License-Identifier: MIT */
/*
 * process.command_args without credentials: the SPANRING_COMMAND_ARGS
 * modes and the redaction rule (see resource.h). Used by the library's
 * Resource (resource.c) and by the LD_PRELOAD shim's process span
 * (lib/preload/pl_pspan.c), in the constructor, so everything here is
 * pure and allocation free. The rule errs on the side of hiding: an
 * argument that merely looks like a secret's name (--author, --keep-key)
 * loses its value too.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "resource.h"

#define REDACTED "REDACTED"

static const char *const key_words[] = {"pass", "pwd", "secret", "token", "key",
					"auth", "credential", "cookie"};

enum sr_args_mode sr_args_mode_parse(const char *v, bool *bad)
{
	*bad = false;
	if (!v || !*v || strcasecmp(v, "redacted") == 0)
		return SR_ARGS_REDACTED;
	if (strcasecmp(v, "full") == 0)
		return SR_ARGS_FULL;
	if (strcasecmp(v, "off") == 0)
		return SR_ARGS_OFF;
	*bad = true;
	return SR_ARGS_REDACTED;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

/* Does s[0..n) contain a key word (any case)? */
static bool has_key_word(const char *s, size_t n)
{
	for (size_t w = 0; w < sizeof(key_words) / sizeof(key_words[0]); w++) {
		size_t k = strlen(key_words[w]);
		for (size_t i = 0; i + k <= n; i++)
			if (strncasecmp(s + i, key_words[w], k) == 0)
				return true;
	}
	return false;
}

struct out {
	char *p;
	size_t n, cap;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->n) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
}

/* Copy a[0..len) with every URL's user information replaced. */
static void put_urls(struct out *o, const char *a, size_t len)
{
	size_t i = 0;
	while (i < len) {
		const char *sep = memmem(a + i, len - i, "://", 3);
		if (!sep) {
			put(o, a + i, len - i);
			return;
		}
		size_t auth = (size_t)(sep - a) + 3, end = auth, at = SIZE_MAX;
		while (end < len && a[end] != '/' && a[end] != '?' && a[end] != '#') {
			if (a[end] == '@')
				at = end;
			end++;
		}
		put(o, a + i, auth - i);
		if (at != SIZE_MAX) {
			put(o, REDACTED, sizeof(REDACTED) - 1);
			put(o, a + at, end - at);
		} else {
			put(o, a + auth, end - auth);
		}
		i = end;
	}
}

size_t sr_arg_redact(const char *a, size_t len, bool hide, char *out, size_t cap, bool *hide_next)
{
	struct out o = {.p = out, .cap = cap};
	*hide_next = false;
	if (hide && !(len && a[0] == '-')) {
		put(&o, REDACTED, sizeof(REDACTED) - 1);
		return o.full ? SIZE_MAX : o.n;
	}
	/* [-]*NAME, then '=' or ':' (not "://"), or the end. */
	size_t d = 0;
	while (d < len && d < 2 && a[d] == '-')
		d++;
	size_t e = d;
	while (e < len && name_char(a[e]))
		e++;
	bool named = e > d && has_key_word(a + d, e - d);
	if (named && e < len && (a[e] == '=' || (a[e] == ':' && !(e + 2 < len && a[e + 1] == '/' &&
								   a[e + 2] == '/')))) {
		put(&o, a, e + 1);
		if (e + 1 < len)
			put(&o, REDACTED, sizeof(REDACTED) - 1);
		return o.full ? SIZE_MAX : o.n;
	}
	if (named && e == len && d > 0)
		*hide_next = true;
	put_urls(&o, a, len);
	return o.full ? SIZE_MAX : o.n;
}
