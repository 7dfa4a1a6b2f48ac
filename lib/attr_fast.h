/* SPDX-License-Identifier: MIT */
/*
 * Attribute fast paths (strings and scalars on spans), static inline so
 * that the span API's translation unit inlines them. The generic and
 * slow paths stay in lib/attr.c.
 */
#ifndef SPANRING_LIB_ATTR_FAST_H
#define SPANRING_LIB_ATTR_FAST_H

#include <errno.h>
#include <string.h>

#include "encode.h"
#include "internal.h"
#include "pbwire.h"

/* Grow a kv array (inline storage moves to the heap); lib/attr.c. */
SR_HIDDEN int sr_kv_grow(struct sr_kv **kv, uint32_t *cap, uint32_t n, struct sr_kv *inline_kv);

SR_ALWAYS_INLINE const char *arena_dup(struct spanring_span *s, const void *p, size_t n)
{
	char *d = sr_arena_alloc(s, n ? n : 1, 1);
	if (SR_LIKELY(d != NULL))
		pb_copy(d, p, n);
	return d;
}

SR_ALWAYS_INLINE struct sr_kv *kv_find(struct sr_kv *kv, uint32_t n, const char *key, size_t key_len)
{
	for (uint32_t i = 0; i < n; i++)
		if (kv[i].key_len == key_len &&
		    (kv[i].key == key || memcmp(kv[i].key, key, key_len) == 0))
			return &kv[i];
	return NULL;
}

/* Find or append the attribute `key`; NULL with *err set when dropped. */
SR_ALWAYS_INLINE struct sr_kv *kv_slot(struct spanring_span *s, const char *key, size_t key_len,
				    bool copy, int *err)
{
	/* key_len SIZE_MAX: NUL-terminated key, measured here. */
	if (SR_UNLIKELY(!key || (key_len == SIZE_MAX ? !*key : !key_len))) {
		*err = -EINVAL;
		return NULL;
	}
	if (key_len == SIZE_MAX)
		key_len = __builtin_strlen(key);
	if (SR_UNLIKELY(!sr_utf8_valid(key, key_len))) {
		*err = -EILSEQ;
		return NULL;
	}
	struct sr_kv *kv = kv_find(s->kv, s->nkv, key, key_len);
	if (kv)
		return kv;
	if (SR_UNLIKELY(s->nkv >= sr_g.cfg.attr_count_limit)) {
		*err = -ENOSPC;
		return NULL;
	}
	if (SR_UNLIKELY(s->nkv == s->kv_cap) &&
	    (*err = sr_kv_grow(&s->kv, &s->kv_cap, s->nkv, s->inline_kv)))
		return NULL;
	kv = &s->kv[s->nkv];
	kv->key = copy ? arena_dup(s, key, key_len) : key;
	if (SR_UNLIKELY(!kv->key)) {
		*err = -ENOMEM;
		return NULL;
	}
	kv->key_len = (uint32_t)key_len;
	kv->type = 0; /* not yet valid: s->nkv is bumped by the caller */
	return kv;
}

SR_ALWAYS_INLINE int sr_attr_set_str(struct spanring_span *s, const char *key, size_t key_len,
				  const char *val, size_t len, bool copy)
{
	int err = -EINVAL;
	if (SR_UNLIKELY(!val)) {
		if (len)
			goto dropped;
		val = "";
	}
	size_t n = len == SIZE_MAX ? strlen(val) : len;
	if (SR_UNLIKELY(!sr_utf8_valid(val, n))) {
		err = -EILSEQ;
		goto dropped;
	}
	n = sr_utf8_truncate(val, n, sr_g.cfg.attr_value_limit);
	struct sr_kv *kv = kv_slot(s, key, key_len, copy, &err);
	if (SR_UNLIKELY(!kv))
		goto dropped;
	const char *v = copy ? arena_dup(s, val, n) : val;
	if (SR_UNLIKELY(!v)) {
		err = -ENOMEM;
		goto dropped;
	}
	if (kv == &s->kv[s->nkv])
		s->nkv++;
	else
		s->kv_bytes -= (uint32_t)pb_len_field_size(kv->msg_len);
	kv->type = SPANRING_ATTR_STRING;
	kv->v.ptr = v;
	kv->vlen = (uint32_t)n;
	s->kv_bytes += sr_kv_sizes(kv);
	return 0;
dropped:
	s->dropped_attrs++;
	return err;
}

SR_ALWAYS_INLINE int sr_attr_set_scalar(struct spanring_span *s, const char *key, size_t key_len,
				     uint8_t type, int64_t i, double d, bool copy)
{
	int err;
	struct sr_kv *kv = kv_slot(s, key, key_len, copy, &err);
	if (SR_UNLIKELY(!kv)) {
		s->dropped_attrs++;
		return err;
	}
	if (kv == &s->kv[s->nkv])
		s->nkv++;
	else
		s->kv_bytes -= (uint32_t)pb_len_field_size(kv->msg_len);
	kv->type = type;
	if (type == SPANRING_ATTR_DOUBLE)
		kv->v.d = d;
	else if (type == SPANRING_ATTR_BOOL)
		kv->v.b = i != 0;
	else
		kv->v.i = i;
	s->kv_bytes += sr_kv_sizes(kv);
	return 0;
}

#endif
