/* SPDX-License-Identifier: MIT */
/* Recursive-descent JSON reader with a depth limit (see json.h). */
#include "hex.h"
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jp {
	const char *p, *start, *end;
	char *err;
	size_t errlen;
	bool failed;
};

static void jp_fail(struct jp *j, const char *what)
{
	if (!j->failed)
		snprintf(j->err, j->errlen, "%s at byte %zu", what, (size_t)(j->p - j->start));
	j->failed = true;
}

static void jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int jp_u4(struct jp *j, unsigned *out)
{
	if (j->end - j->p < 4) {
		jp_fail(j, "truncated \\u escape");
		return -1;
	}
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = sr_hexval(j->p[i]);
		if (h < 0) {
			jp_fail(j, "bad \\u escape");
			return -1;
		}
		v = v << 4 | (unsigned)h;
	}
	j->p += 4;
	*out = v;
	return 0;
}

static size_t utf8_put(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* After "\u" (the string ends at stop): the code point, a surrogate pair
 * joined; a lone surrogate becomes U+FFFD. */
static int jp_unicode(struct jp *j, const char *stop, unsigned *cpp)
{
	unsigned cp, lo;
	if (jp_u4(j, &cp))
		return -1;
	if (cp >= 0xd800 && cp < 0xdc00 && stop - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
		const char *save = j->p;
		j->p += 2;
		if (jp_u4(j, &lo))
			return -1;
		if (lo >= 0xdc00 && lo < 0xe000)
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		else
			j->p = save, cp = 0xfffd;
	} else if (cp >= 0xd800 && cp < 0xe000) {
		cp = 0xfffd; /* lone surrogate */
	}
	*cpp = cp;
	return 0;
}

/* At the opening quote. A decoded string is never longer than its source. */
static char *jp_string(struct jp *j, size_t *lenp)
{
	j->p++;
	const char *s = j->p;
	while (j->p < j->end && *j->p != '"') {
		if (*j->p == '\\')
			j->p++;
		j->p++;
	}
	if (j->p >= j->end) {
		jp_fail(j, "unterminated string");
		return NULL;
	}
	size_t cap = (size_t)(j->p - s) + 1;
	char *out = malloc(cap);
	if (!out) {
		jp_fail(j, "out of memory");
		return NULL;
	}
	const char *stop = j->p;
	j->p = s;
	size_t n = 0;
	while (j->p < stop) {
		unsigned char c = (unsigned char)*j->p;
		if (c < 0x20) {
			jp_fail(j, "control character in string");
			free(out);
			return NULL;
		}
		if (c != '\\') {
			out[n++] = (char)c;
			j->p++;
			continue;
		}
		j->p++;
		char e = *j->p++;
		switch (e) {
		case '"': out[n++] = '"'; break;
		case '\\': out[n++] = '\\'; break;
		case '/': out[n++] = '/'; break;
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case 't': out[n++] = '\t'; break;
		case 'u': {
			unsigned cp;
			if (jp_unicode(j, stop, &cp)) {
				free(out);
				return NULL;
			}
			/* "\uXXXX" is 6 source bytes, at most 4 decoded; a pair 12 -> 4. */
			n += utf8_put(out + n, cp);
			break;
		}
		default:
			jp_fail(j, "bad escape in string");
			free(out);
			return NULL;
		}
	}
	j->p = stop + 1;
	out[n] = 0;
	*lenp = n;
	return out;
}

static int jp_value(struct jp *j, struct json *v, int depth);

static int jp_number(struct jp *j, struct json *v)
{
	const char *s = j->p;
	if (j->p < j->end && *j->p == '-')
		j->p++;
	const char *digits = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	if (j->p == digits) {
		jp_fail(j, "invalid value");
		return -1;
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		const char *f = j->p;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
		if (j->p == f) {
			jp_fail(j, "invalid number");
			return -1;
		}
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		const char *f = j->p;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
		if (j->p == f) {
			jp_fail(j, "invalid number");
			return -1;
		}
	}
	size_t n = (size_t)(j->p - s);
	v->t = JSON_NUM;
	v->s = malloc(n + 1);
	if (!v->s) {
		jp_fail(j, "out of memory");
		return -1;
	}
	memcpy(v->s, s, n);
	v->s[n] = 0;
	v->len = n;
	v->num = strtod(v->s, NULL);
	return 0;
}

static int jp_lit(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) {
		jp_fail(j, "invalid value");
		return -1;
	}
	j->p += n;
	return 0;
}

/* Grow a malloc'd array of elem-sized items to hold at least want. */
static int grow(void **arr, size_t *cap, size_t want, size_t elem)
{
	if (want <= *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 4;
	while (nc < want)
		nc *= 2;
	void *n = realloc(*arr, nc * elem);
	if (!n)
		return -1;
	*arr = n;
	*cap = nc;
	return 0;
}

static int jp_array(struct jp *j, struct json *v, int depth)
{
	size_t cap = 0;
	j->p++;
	v->t = JSON_ARR;
	jp_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return 0;
	}
	for (;;) {
		if (grow((void **)&v->arr, &cap, v->len + 1, sizeof(*v->arr))) {
			jp_fail(j, "out of memory");
			return -1;
		}
		struct json *it = &v->arr[v->len];
		memset(it, 0, sizeof(*it));
		v->len++;
		if (jp_value(j, it, depth + 1))
			return -1;
		jp_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return 0;
		}
		jp_fail(j, j->p < j->end ? "expected ',' or ']'" : "truncated array");
		return -1;
	}
}

static int jp_object(struct jp *j, struct json *v, int depth)
{
	size_t cap = 0;
	j->p++;
	v->t = JSON_OBJ;
	jp_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		jp_ws(j);
		if (j->p >= j->end || *j->p != '"') {
			jp_fail(j, j->p < j->end ? "expected a member name" : "truncated object");
			return -1;
		}
		if (grow((void **)&v->obj, &cap, v->len + 1, sizeof(*v->obj))) {
			jp_fail(j, "out of memory");
			return -1;
		}
		struct json_member *m = &v->obj[v->len];
		memset(m, 0, sizeof(*m));
		v->len++;
		size_t kl;
		m->key = jp_string(j, &kl);
		if (!m->key)
			return -1;
		jp_ws(j);
		if (j->p >= j->end || *j->p != ':') {
			jp_fail(j, j->p < j->end ? "expected ':'" : "truncated object");
			return -1;
		}
		j->p++;
		if (jp_value(j, &m->v, depth + 1))
			return -1;
		jp_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return 0;
		}
		jp_fail(j, j->p < j->end ? "expected ',' or '}'" : "truncated object");
		return -1;
	}
}

static int jp_value(struct jp *j, struct json *v, int depth)
{
	if (depth > JSON_MAX_DEPTH) {
		jp_fail(j, "nesting too deep");
		return -1;
	}
	jp_ws(j);
	if (j->p >= j->end) {
		jp_fail(j, "truncated input");
		return -1;
	}
	switch (*j->p) {
	case '{':
		return jp_object(j, v, depth);
	case '[':
		return jp_array(j, v, depth);
	case '"':
		v->t = JSON_STR;
		v->s = jp_string(j, &v->len);
		return v->s ? 0 : -1;
	case 't':
		v->t = JSON_BOOL;
		v->b = true;
		return jp_lit(j, "true");
	case 'f':
		v->t = JSON_BOOL;
		return jp_lit(j, "false");
	case 'n':
		v->t = JSON_NULL;
		return jp_lit(j, "null");
	default:
		return jp_number(j, v);
	}
}

int json_parse(const char *buf, size_t len, struct json *out, char *err, size_t errlen)
{
	struct jp j = {.p = buf, .start = buf, .end = buf + len, .err = err, .errlen = errlen};
	memset(out, 0, sizeof(*out));
	if (jp_value(&j, out, 0) == 0) {
		jp_ws(&j);
		if (j.p == j.end)
			return 0;
		jp_fail(&j, "trailing characters after the value");
	}
	json_free(out);
	return -1;
}

void json_free(struct json *v)
{
	if (!v)
		return;
	if (v->t == JSON_ARR)
		for (size_t i = 0; i < v->len && v->arr; i++)
			json_free(&v->arr[i]);
	if (v->t == JSON_OBJ)
		for (size_t i = 0; i < v->len && v->obj; i++) {
			free(v->obj[i].key);
			json_free(&v->obj[i].v);
		}
	free(v->arr);
	free(v->obj);
	free(v->s);
	memset(v, 0, sizeof(*v));
}

const struct json *json_get(const struct json *v, const char *key)
{
	if (!v || v->t != JSON_OBJ)
		return NULL;
	for (size_t i = 0; i < v->len; i++)
		if (strcmp(v->obj[i].key, key) == 0)
			return &v->obj[i].v;
	return NULL;
}

const char *json_str(const struct json *v, const char *key, const char *dflt)
{
	const struct json *m = json_get(v, key);
	return m && m->t == JSON_STR ? m->s : dflt;
}

double json_num(const struct json *v, const char *key, double dflt)
{
	const struct json *m = json_get(v, key);
	return m && m->t == JSON_NUM ? m->num : dflt;
}

bool json_bool(const struct json *v, const char *key, bool dflt)
{
	const struct json *m = json_get(v, key);
	return m && m->t == JSON_BOOL ? m->b : dflt;
}

bool json_u64(const struct json *v, const char *key, uint64_t *out)
{
	const struct json *m = json_get(v, key);
	if (!m || (m->t != JSON_NUM && m->t != JSON_STR) || !m->s || m->s[0] == '-')
		return false;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(m->s, &end, 10);
	if (errno || end == m->s || *end)
		return false;
	*out = x;
	return true;
}
