/* SPDX-License-Identifier: MIT */
/* Attribute storage: validation, limits, copying into the span's arena. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attr_fast.h"
#include "encode.h"
#include "internal.h"
#include "mem.h"
#include "pbwire.h"

size_t sr_utf8_valid_prefix(const char *str, size_t n)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t i = 0;
	while (i < n) {
		/* ASCII fast path, eight bytes at a time. */
		if (n - i >= 8) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (!(w & 0x8080808080808080ull)) {
				i += 8;
				continue;
			}
		}
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (n - i < len)
			return i;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond U+10FFFF. */
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += len;
	}
	return n;
}

size_t sr_utf8_truncate_slow(const char *s, size_t n, size_t limit)
{
	if (n <= limit)
		return n;
	/* Back up over continuation bytes so no sequence is split. */
	size_t cut = limit;
	while (cut > 0 && ((uint8_t)s[cut] & 0xc0) == 0x80)
		cut--;
	return cut;
}

void *sr_arena_alloc_slow(struct spanring_span *s, size_t n, size_t align)
{
	uintptr_t cur;
	/* Next chunk kept from an earlier use of this span object, if big enough. */
	struct sr_chunk *c = s->chunk_cur ? s->chunk_cur->next : s->chunks;
	if (!c || c->cap < n + align) {
		size_t cap = n + align > 4096 ? n + align : 4096;
		struct sr_chunk *nc = sr_malloc(sizeof(*nc) + cap);
		if (!nc)
			return NULL;
		nc->cap = cap;
		/* Insert after the current position so later chunks stay reusable. */
		if (s->chunk_cur) {
			nc->next = s->chunk_cur->next;
			s->chunk_cur->next = nc;
		} else {
			nc->next = s->chunks;
			s->chunks = nc;
		}
		c = nc;
	}
	s->chunk_cur = c;
	s->a_cur = c->data;
	s->a_end = c->data + c->cap;
	cur = ((uintptr_t)s->a_cur + (align - 1)) & ~(uintptr_t)(align - 1);
	s->a_cur = (uint8_t *)(cur + n);
	return (void *)cur;
}

/* Grow a kv array (inline storage moves to the heap). */
int sr_kv_grow(struct sr_kv **kv, uint32_t *cap, uint32_t n, struct sr_kv *inline_kv)
{
	uint32_t ncap = *cap ? *cap * 2 : 8;
	struct sr_kv *nk;
	if (*kv == inline_kv) {
		nk = sr_malloc(ncap * sizeof(*nk));
		if (nk && n)
			memcpy(nk, *kv, n * sizeof(*nk));
	} else {
		nk = sr_realloc(*kv, (size_t)*cap * sizeof(*nk), ncap * sizeof(*nk));
	}
	if (!nk)
		return -ENOMEM;
	*kv = nk;
	*cap = ncap;
	return 0;
}

/* A string or bytes value of n bytes, copied into the span's arena or borrowed. */
static void kv_put(struct spanring_span *s, struct sr_kv *kv, const void *v, size_t n, bool copy)
{
	kv->v.ptr = copy ? arena_dup(s, v, n) : v;
	kv->vlen = (uint32_t)n;
}

/* The value of a string attribute: valid UTF-8, cut to the length limit. */
static int kv_fill_str(struct spanring_span *s, struct sr_kv *kv, const spanring_attr *a,
		       uint32_t limit, bool copy)
{
	const char *v = a->v.str.ptr;
	if (!v && a->v.str.len)
		return -EINVAL;
	if (!v)
		v = "";
	size_t n = a->v.str.len == SIZE_MAX ? strlen(v) : a->v.str.len;
	if (!sr_utf8_valid(v, n))
		return -EILSEQ;
	kv_put(s, kv, v, sr_utf8_truncate(v, n, limit), copy);
	return 0;
}

static int kv_fill_bytes(struct spanring_span *s, struct sr_kv *kv, const spanring_attr *a,
			 uint32_t limit, bool copy)
{
	size_t n = a->v.bytes.len;
	if (n && !a->v.bytes.ptr)
		return -EINVAL;
	kv_put(s, kv, a->v.bytes.ptr, n > limit ? limit : n, copy);
	return 0;
}

/* A string array: the item table always in the span's arena, each item
 * checked and cut like a string value. */
static int kv_fill_str_array(struct spanring_span *s, struct sr_kv *kv, const spanring_attr *a,
			     uint32_t limit, bool copy)
{
	size_t cnt = a->v.array.count;
	if (cnt && !a->v.array.items)
		return -EINVAL;
	if (cnt > UINT32_MAX / sizeof(struct sr_str))
		return -EINVAL;
	struct sr_str *items = sr_arena_alloc(s, cnt * sizeof(*items) + 1, 8);
	if (!items)
		return -ENOMEM;
	const char *const *src = a->v.array.items;
	for (size_t i = 0; i < cnt; i++) {
		const char *v = src[i] ? src[i] : "";
		size_t n = strlen(v);
		if (!sr_utf8_valid(v, n))
			return -EILSEQ;
		n = sr_utf8_truncate(v, n, limit);
		items[i].p = copy ? arena_dup(s, v, n) : v;
		if (!items[i].p)
			return -ENOMEM;
		items[i].len = (uint32_t)n;
	}
	kv->v.ptr = items;
	kv->vlen = (uint32_t)cnt;
	return 0;
}

/* A bool, int or double array: copied as a block (or borrowed). */
static int kv_fill_num_array(struct spanring_span *s, struct sr_kv *kv, const spanring_attr *a,
			     bool copy)
{
	size_t cnt = a->v.array.count;
	size_t w = a->type == SPANRING_ATTR_BOOL_ARRAY ? sizeof(bool) : 8;
	if (cnt && !a->v.array.items)
		return -EINVAL;
	if (cnt > UINT32_MAX / 8)
		return -EINVAL;
	if (copy) {
		void *d = sr_arena_alloc(s, cnt * w + 1, 8);
		if (!d)
			return -ENOMEM;
		if (cnt)
			memcpy(d, a->v.array.items, cnt * w);
		kv->v.ptr = d;
	} else {
		kv->v.ptr = a->v.array.items;
	}
	kv->vlen = (uint32_t)cnt;
	return 0;
}

/* Fill kv from a (validated, truncated, copied as asked). */
static int kv_fill(struct spanring_span *s, struct sr_kv *kv, const spanring_attr *a,
		   size_t key_len, bool copy)
{
	const uint32_t limit = sr_g.cfg.attr_value_limit;
	kv->key = copy ? arena_dup(s, a->key, key_len) : a->key;
	if (!kv->key)
		return -ENOMEM;
	kv->key_len = (uint32_t)key_len;
	kv->type = (uint8_t)a->type;
	int r;
	switch (a->type) {
	case SPANRING_ATTR_STRING:
		r = kv_fill_str(s, kv, a, limit, copy);
		break;
	case SPANRING_ATTR_BYTES:
		r = kv_fill_bytes(s, kv, a, limit, copy);
		break;
	case SPANRING_ATTR_BOOL:
		kv->v.b = a->v.b;
		return 0;
	case SPANRING_ATTR_INT:
		kv->v.i = a->v.i;
		return 0;
	case SPANRING_ATTR_DOUBLE:
		kv->v.d = a->v.d;
		return 0;
	case SPANRING_ATTR_STRING_ARRAY:
		r = kv_fill_str_array(s, kv, a, limit, copy);
		break;
	case SPANRING_ATTR_BOOL_ARRAY:
	case SPANRING_ATTR_INT_ARRAY:
	case SPANRING_ATTR_DOUBLE_ARRAY:
		r = kv_fill_num_array(s, kv, a, copy);
		break;
	default:
		return -EINVAL;
	}
	if (r)
		return r;
	/* A copied value that found no room in the arena. */
	return copy && !kv->v.ptr ? -ENOMEM : 0;
}

static int key_check(const char *key, size_t *len)
{
	if (!key || !*key)
		return -EINVAL;
	bool valid;
	*len = sr_str_check(key, &valid);
	return valid ? 0 : -EILSEQ;
}

int sr_attr_set(struct spanring_span *s, const spanring_attr *a, bool copy)
{
	switch (a->type) {
	case SPANRING_ATTR_STRING:
		return sr_attr_set_str(s, a->key, SIZE_MAX, a->v.str.ptr, a->v.str.len, copy);
	case SPANRING_ATTR_INT:
		return sr_attr_set_scalar(s, a->key, SIZE_MAX, SPANRING_ATTR_INT, a->v.i, 0, copy);
	case SPANRING_ATTR_BOOL:
		return sr_attr_set_scalar(s, a->key, SIZE_MAX, SPANRING_ATTR_BOOL, a->v.b, 0, copy);
	case SPANRING_ATTR_DOUBLE:
		return sr_attr_set_scalar(s, a->key, SIZE_MAX, SPANRING_ATTR_DOUBLE, 0, a->v.d, copy);
	default:
		break;
	}
	size_t key_len;
	int err = key_check(a->key, &key_len);
	if (err)
		goto dropped;
	struct sr_kv *kv = kv_find(s->kv, s->nkv, a->key, key_len);
	if (!kv) {
		if (s->nkv >= sr_g.cfg.attr_count_limit) {
			err = -ENOSPC;
			goto dropped;
		}
		if (s->nkv == s->kv_cap && (err = sr_kv_grow(&s->kv, &s->kv_cap, s->nkv, s->inline_kv)))
			goto dropped;
		kv = &s->kv[s->nkv];
		err = kv_fill(s, kv, a, key_len, copy);
		if (err)
			goto dropped;
		s->nkv++;
		s->kv_bytes += sr_kv_sizes(kv);
		return 0;
	}
	/* Replace: fill a temporary so a failure leaves the old value. */
	struct sr_kv tmp;
	err = kv_fill(s, &tmp, a, key_len, copy);
	if (err)
		goto dropped;
	s->kv_bytes -= (uint32_t)pb_len_field_size(kv->msg_len);
	*kv = tmp;
	s->kv_bytes += sr_kv_sizes(kv);
	return 0;
dropped:
	s->dropped_attrs++;
	return err;
}

int sr_attrs_append_x(struct spanring_span *s, const spanring_attr *a, size_t n, uint32_t limit,
		      uint32_t *start, uint32_t *kept, uint32_t *dropped)
{
	*start = s->nxkv;
	*kept = 0;
	*dropped = 0;
	if (n && !a)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t key_len;
		if (key_check(a[i].key, &key_len)) {
			(*dropped)++;
			continue;
		}
		struct sr_kv *kv = kv_find(s->xkv + *start, *kept, a[i].key, key_len);
		struct sr_kv tmp;
		if (!kv && *kept >= limit) {
			(*dropped)++;
			continue;
		}
		if (kv_fill(s, &tmp, &a[i], key_len, true)) {
			(*dropped)++;
			continue;
		}
		if (kv) {
			*kv = tmp;
			continue;
		}
		if (s->nxkv == s->xkv_cap && sr_kv_grow(&s->xkv, &s->xkv_cap, s->nxkv, NULL)) {
			(*dropped)++;
			continue;
		}
		s->xkv[s->nxkv++] = tmp;
		(*kept)++;
	}
	return 0;
}
