/* SPDX-License-Identifier: MIT */
/*
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the traceparent
 * and tracestate header values, carrier inject/extract, and the
 * TRACEPARENT / TRACESTATE environment variables used to hand a context to
 * child processes.
 *
 * traceparent parsing is on the request path of servers, so it works on
 * fixed offsets with table-driven hex decoding and no allocation. Parse
 * functions never read past value[len) and need no NUL terminator.
 *
 * Decisions where the specifications leave room (Level 1 Recommendation,
 * Level 2 draft):
 *  - Version 00 keeps all eight trace-flags bits as received, so a value
 *    round-trips unchanged through parse and format. For a higher version
 *    only the sampled bit is kept: the spec says to parse just that bit of
 *    a future version and to assume nothing else about it, and we re-emit
 *    the context as version 00 where other bits have their own meaning.
 *  - tracestate keys follow the Level 1 grammar (simple-key, or
 *    tenant-id "@" system-id). Level 2 relaxes it (digit-first keys,
 *    several '@'); such keys are dropped here.
 *  - A tracestate value must be 1..256 characters: the ABNF
 *    "value = 0*255(chr) nblk-chr" requires at least one non-blank
 *    character, so "key=" is an invalid member and is dropped.
 *  - Invalid members are dropped individually, duplicates keep the first
 *    (left-most, i.e. most recent) entry, and at most 32 valid members are
 *    kept; later ones are dropped. (The W3C test suite's strictest level
 *    discards the whole header instead; the public API promises members.)
 *  - The normalised form has no optional whitespace: "k=v,k2=v2".
 *  - When the kept members exceed SPANRING_TRACESTATE_MAX (512) characters
 *    the spec's truncation order is applied: entries longer than 128
 *    characters are removed first (right-most first), then entries from
 *    the end, until the rest fits. Whole entries only, never a partial one.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "spanring/spanring.h"

/* ---- helpers ---------------------------------------------------------------- */

/* OWS of RFC 7230: space and horizontal tab only. */
static inline bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Shrink [*p, *p + *n) to exclude leading and trailing OWS. */
static void trim_ows(const char **p, size_t *n)
{
	const char *s = *p;
	size_t len = *n;
	while (len && is_ows(*s)) {
		s++;
		len--;
	}
	while (len && is_ows(s[len - 1]))
		len--;
	*p = s;
	*n = len;
}

static bool all_zero(const uint8_t *b, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= b[i];
	return acc == 0;
}

bool spanring_context_is_valid(const spanring_span_context *ctx)
{
	return ctx && !all_zero(ctx->trace_id, sizeof ctx->trace_id) &&
	       !all_zero(ctx->span_id, sizeof ctx->span_id);
}

/* ---- traceparent -------------------------------------------------------------- */

/* Field offsets in "vv-<32 trace-id>-<16 parent-id>-ff". */
enum {
	TP_TRACE_OFF = 3,
	TP_DASH2 = 35,
	TP_SPAN_OFF = 36,
	TP_DASH3 = 52,
	TP_FLAGS_OFF = 53,
};

int spanring_traceparent_parse(const char *value, size_t len, spanring_span_context *out)
{
	uint8_t version, flags, trace_id[16], span_id[8];

	if (!value || !out)
		return -EINVAL;
	trim_ows(&value, &len);
	if (len < SPANRING_TRACEPARENT_LEN)
		return -EINVAL;
	if (sr_hex_decode(value, 1, &version) || value[2] != '-' || version == 0xff)
		return -EINVAL;
	/* Version 00 is exactly 55 characters. A higher version may carry
	 * more fields, which must start with '-' and are otherwise ignored. */
	if (version == 0x00 ? len != SPANRING_TRACEPARENT_LEN
			    : len > SPANRING_TRACEPARENT_LEN && value[SPANRING_TRACEPARENT_LEN] != '-')
		return -EINVAL;
	if (value[TP_DASH2] != '-' || value[TP_DASH3] != '-')
		return -EINVAL;
	if (sr_hex_decode(value + TP_TRACE_OFF, sizeof trace_id, trace_id) ||
	    sr_hex_decode(value + TP_SPAN_OFF, sizeof span_id, span_id) ||
	    sr_hex_decode(value + TP_FLAGS_OFF, 1, &flags))
		return -EINVAL;
	if (all_zero(trace_id, sizeof trace_id) || all_zero(span_id, sizeof span_id))
		return -EINVAL;
	if (version != 0x00)
		flags &= SPANRING_FLAG_SAMPLED;

	/* Only now touch *out: a rejected header leaves the caller's context
	 * as it was. */
	memcpy(out->trace_id, trace_id, sizeof trace_id);
	memcpy(out->span_id, span_id, sizeof span_id);
	out->trace_flags = flags;
	out->is_remote = 1;
	out->trace_state_len = 0;
	out->trace_state[0] = '\0';
	return 0;
}

int spanring_traceparent_format(const spanring_span_context *ctx, char *out, size_t outlen)
{
	if (!out || !spanring_context_is_valid(ctx))
		return -EINVAL;
	if (outlen < SPANRING_TRACEPARENT_LEN + 1)
		return -ENOSPC;
	out[0] = '0';
	out[1] = '0';
	out[2] = '-';
	sr_hex_encode(ctx->trace_id, sizeof ctx->trace_id, out + TP_TRACE_OFF);
	out[TP_DASH2] = '-';
	sr_hex_encode(ctx->span_id, sizeof ctx->span_id, out + TP_SPAN_OFF);
	out[TP_DASH3] = '-';
	sr_hex_encode(&ctx->trace_flags, 1, out + TP_FLAGS_OFF);
	out[SPANRING_TRACEPARENT_LEN] = '\0';
	return SPANRING_TRACEPARENT_LEN;
}

/* ---- tracestate ------------------------------------------------------------------ */

#define TS_MAX_MEMBERS 32
#define TS_KEY_MAX 256        /* simple-key: lcalpha + up to 255 more */
#define TS_TENANT_MAX 241     /* tenant-id: 1 + up to 240 */
#define TS_SYSTEM_MAX 14      /* system-id: 1 + up to 13 */
#define TS_VALUE_MAX 256
#define TS_BIG_ENTRY 128      /* "entries larger than 128 characters" go first */

enum { KC_LC = 1, KC_DIGIT = 2, KC_SYM = 4 };

/* Character classes of tracestate keys: lcalpha, DIGIT, and _ - * /. */
static const uint8_t ts_keyclass[256] = {
	['a'] = KC_LC, ['b'] = KC_LC, ['c'] = KC_LC, ['d'] = KC_LC, ['e'] = KC_LC,
	['f'] = KC_LC, ['g'] = KC_LC, ['h'] = KC_LC, ['i'] = KC_LC, ['j'] = KC_LC,
	['k'] = KC_LC, ['l'] = KC_LC, ['m'] = KC_LC, ['n'] = KC_LC, ['o'] = KC_LC,
	['p'] = KC_LC, ['q'] = KC_LC, ['r'] = KC_LC, ['s'] = KC_LC, ['t'] = KC_LC,
	['u'] = KC_LC, ['v'] = KC_LC, ['w'] = KC_LC, ['x'] = KC_LC, ['y'] = KC_LC,
	['z'] = KC_LC,
	['0'] = KC_DIGIT, ['1'] = KC_DIGIT, ['2'] = KC_DIGIT, ['3'] = KC_DIGIT,
	['4'] = KC_DIGIT, ['5'] = KC_DIGIT, ['6'] = KC_DIGIT, ['7'] = KC_DIGIT,
	['8'] = KC_DIGIT, ['9'] = KC_DIGIT,
	['_'] = KC_SYM, ['-'] = KC_SYM, ['*'] = KC_SYM, ['/'] = KC_SYM,
};

static inline unsigned key_class(char c)
{
	return ts_keyclass[(uint8_t)c];
}

/* All of p[0..n) are key characters after the first (lcalpha / DIGIT / _-*\/). */
static bool ts_key_tail_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!key_class(p[i]))
			return false;
	return true;
}

/* simple-key / multi-tenant-key of Trace Context Level 1. */
static bool ts_key_ok(const char *k, size_t n)
{
	const char *at = memchr(k, '@', n);
	if (!at)
		return n >= 1 && n <= TS_KEY_MAX && key_class(k[0]) == KC_LC &&
		       ts_key_tail_ok(k + 1, n - 1);

	size_t tn = (size_t)(at - k), sn = n - tn - 1;
	/* tenant-id = (lcalpha / DIGIT) 0*240(keychar);
	 * system-id = lcalpha 0*13(keychar). A second '@' fails the tail check. */
	return tn >= 1 && tn <= TS_TENANT_MAX && (key_class(k[0]) & (KC_LC | KC_DIGIT)) &&
	       ts_key_tail_ok(k + 1, tn - 1) && sn >= 1 && sn <= TS_SYSTEM_MAX &&
	       key_class(at[1]) == KC_LC && ts_key_tail_ok(at + 2, sn - 1);
}

/* value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr;
 * nblk-chr = %x21-2B / %x2D-3C / %x3E-7E (printable except ',' and '=').
 * The "not ending in a space" part needs no check: the member was trimmed
 * of trailing OWS before, and a space there is OWS, not value. */
static bool ts_value_ok(const char *v, size_t n)
{
	if (n < 1 || n > TS_VALUE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
			return false;
	}
	return true;
}

struct ts_member {
	const char *p;   /* "key=value", OWS already trimmed */
	size_t len;
	size_t key_len;
	bool dropped;
};

/* Validate one list member (already trimmed, non-empty); fills *m. */
static bool ts_member_ok(const char *p, size_t n, struct ts_member *m)
{
	const char *eq = memchr(p, '=', n);
	if (!eq)
		return false;
	size_t kn = (size_t)(eq - p);
	if (!ts_key_ok(p, kn) || !ts_value_ok(eq + 1, n - kn - 1))
		return false;
	m->p = p;
	m->len = n;
	m->key_len = kn;
	m->dropped = false;
	return true;
}

static bool ts_key_seen(const struct ts_member *m, size_t count, const struct ts_member *cand)
{
	for (size_t i = 0; i < count; i++)
		if (m[i].key_len == cand->key_len && memcmp(m[i].p, cand->p, cand->key_len) == 0)
			return true;
	return false;
}

/* Split value into valid, unique members (at most TS_MAX_MEMBERS). */
static size_t ts_collect(const char *value, size_t len, struct ts_member *m)
{
	size_t count = 0;
	const char *p = value, *end = value + len;

	while (p <= end && count < TS_MAX_MEMBERS) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *mend = comma ? comma : end;
		const char *s = p;
		size_t n = (size_t)(mend - p);
		struct ts_member cand;

		trim_ows(&s, &n);
		/* Empty and whitespace-only members are allowed and skipped. */
		if (n && ts_member_ok(s, n, &cand) && !ts_key_seen(m, count, &cand))
			m[count++] = cand;
		if (!comma)
			break;
		p = comma + 1;
	}
	return count;
}

/* Drop whole entries until the joined list fits SPANRING_TRACESTATE_MAX,
 * in the order the spec recommends (big entries first, then from the end). */
static void ts_fit(struct ts_member *m, size_t count)
{
	/* need = sum(len + 1): the joined length plus one, so that an empty
	 * list (need 0) and the separators are both accounted for. */
	size_t need = 0;
	for (size_t i = 0; i < count; i++)
		need += m[i].len + 1;
	for (size_t i = count; i-- > 0 && need > SPANRING_TRACESTATE_MAX + 1;) {
		if (m[i].len > TS_BIG_ENTRY) {
			m[i].dropped = true;
			need -= m[i].len + 1;
		}
	}
	for (size_t i = count; i-- > 0 && need > SPANRING_TRACESTATE_MAX + 1;) {
		if (!m[i].dropped) {
			m[i].dropped = true;
			need -= m[i].len + 1;
		}
	}
}

int spanring_tracestate_parse(const char *value, size_t len, spanring_span_context *ctx)
{
	struct ts_member m[TS_MAX_MEMBERS];
	size_t count, used = 0;
	int kept = 0;

	if (!ctx)
		return -EINVAL;
	if (!value) {
		ctx->trace_state_len = 0;
		ctx->trace_state[0] = '\0';
		return -EINVAL;
	}
	count = ts_collect(value, len, m);
	ts_fit(m, count);

	/* Members are written in input order and each lands at or before its
	 * source position (normalising only removes characters), so memmove
	 * makes re-parsing ctx->trace_state in place safe. */
	for (size_t i = 0; i < count; i++) {
		if (m[i].dropped)
			continue;
		if (used)
			ctx->trace_state[used++] = ',';
		memmove(ctx->trace_state + used, m[i].p, m[i].len);
		used += m[i].len;
		kept++;
	}
	ctx->trace_state[used] = '\0';
	ctx->trace_state_len = (uint16_t)used;
	return kept;
}

/* ---- carriers ------------------------------------------------------------------------- */

/*
 * Header names are passed to the getter in lowercase ("traceparent",
 * "tracestate"); matching them case-insensitively, and joining repeated
 * tracestate fields with ',' as RFC 7230 says, is the carrier's job.
 * On any failure *out is left untouched.
 */
int spanring_context_extract(spanring_span_context *out, spanring_getter_fn get, void *carrier)
{
	const char *tp, *ts;
	int rc;

	if (!out || !get)
		return -EINVAL;
	tp = get(carrier, "traceparent");
	if (!tp)
		return -ENOENT;
	rc = spanring_traceparent_parse(tp, strlen(tp), out);
	if (rc < 0)
		return rc; /* and, as the spec requires, tracestate is not looked at */
	ts = get(carrier, "tracestate");
	/* A bad tracestate never invalidates the traceparent: at worst the
	 * state stays empty. */
	if (ts)
		(void)spanring_tracestate_parse(ts, strlen(ts), out);
	return 0;
}

/* Copy ctx's tracestate into buf as a C string; -EINVAL if its length is
 * out of range. The copy guards against a context whose terminator was
 * not maintained. */
static int ts_copy(const spanring_span_context *ctx, char buf[SPANRING_TRACESTATE_MAX + 1])
{
	if (ctx->trace_state_len > SPANRING_TRACESTATE_MAX)
		return -EINVAL;
	memcpy(buf, ctx->trace_state, ctx->trace_state_len);
	buf[ctx->trace_state_len] = '\0';
	return 0;
}

/* Writes traceparent, then tracestate when non-empty. A negative setter
 * result is returned as is; traceparent may then already be set. */
int spanring_context_inject(const spanring_span_context *ctx, spanring_setter_fn set,
			    void *carrier)
{
	char tp[SPANRING_TRACEPARENT_LEN + 1], ts[SPANRING_TRACESTATE_MAX + 1];
	int rc;

	if (!set)
		return -EINVAL;
	rc = spanring_traceparent_format(ctx, tp, sizeof tp);
	if (rc < 0)
		return rc;
	rc = ts_copy(ctx, ts);
	if (rc < 0)
		return rc;
	rc = set(carrier, "traceparent", tp);
	if (rc < 0)
		return rc;
	if (ctx->trace_state_len) {
		rc = set(carrier, "tracestate", ts);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Getter over the process environment. Following the OpenTelemetry
 * convention for environment variables, an empty value counts as unset. */
static const char *env_get(void *carrier, const char *key)
{
	const char *name, *v;
	(void)carrier;
	if (strcmp(key, "traceparent") == 0)
		name = "TRACEPARENT";
	else if (strcmp(key, "tracestate") == 0)
		name = "TRACESTATE";
	else
		return NULL;
	v = getenv(name);
	return v && *v ? v : NULL;
}

int spanring_context_from_env(spanring_span_context *out)
{
	return spanring_context_extract(out, env_get, NULL);
}

/* setenv() is not safe against concurrent getenv() in other threads; call
 * this where the process launches children, typically single-threaded
 * code around fork/exec. */
int spanring_context_to_env(const spanring_span_context *ctx)
{
	char tp[SPANRING_TRACEPARENT_LEN + 1], ts[SPANRING_TRACESTATE_MAX + 1];
	int rc = spanring_traceparent_format(ctx, tp, sizeof tp);

	if (rc < 0)
		return rc;
	rc = ts_copy(ctx, ts);
	if (rc < 0)
		return rc;
	if (setenv("TRACEPARENT", tp, 1) != 0)
		return -errno;
	/* An old TRACESTATE would otherwise be paired with the new parent. */
	if (ctx->trace_state_len ? setenv("TRACESTATE", ts, 1) : unsetenv("TRACESTATE"))
		return -errno;
	return 0;
}
