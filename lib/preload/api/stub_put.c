/* SPDX-License-Identifier: MIT */
/*
 * The explicit-length setters (spanring_span_put_*) of the API stub: like
 * the rest of stub.c, they do nothing (0, or -EINVAL for NULL arguments).
 */
#include <errno.h>

#include "spanring/spanring.h"

static int put_check(const spanring_span *s, const char *key, size_t key_len)
{
	return !s || !key || !key_len ? -EINVAL : 0;
}

int spanring_span_put_str(spanring_span *s, const char *key, size_t key_len, const char *value,
			  size_t value_len, unsigned flags)
{
	(void)value_len, (void)flags;
	return value ? put_check(s, key, key_len) : -EINVAL;
}

int spanring_span_put_int(spanring_span *s, const char *key, size_t key_len, int64_t value,
			  unsigned flags)
{
	(void)value, (void)flags;
	return put_check(s, key, key_len);
}

int spanring_span_put_bool(spanring_span *s, const char *key, size_t key_len, bool value,
			   unsigned flags)
{
	(void)value, (void)flags;
	return put_check(s, key, key_len);
}

int spanring_span_put_double(spanring_span *s, const char *key, size_t key_len, double value,
			     unsigned flags)
{
	(void)value, (void)flags;
	return put_check(s, key, key_len);
}
