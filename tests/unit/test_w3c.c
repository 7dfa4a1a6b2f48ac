/* SPDX-License-Identifier: MIT */
/*
 * W3C Trace Context: traceparent/tracestate parsing and formatting, the
 * hex helpers, carrier inject/extract and the environment round trip.
 * Invalid traceparent forms follow the W3C specification and its test
 * suite (w3c/trace-context test/test.py).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "spanring/spanring.h"
#include "hex.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"
#define TP_EXAMPLE "00-" TID "-" PID "-01"

static const uint8_t tid_bytes[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
				      0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t pid_bytes[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

/* A context full of junk, to see what parse overwrites and what it leaves. */
static void ctx_junk(spanring_span_context *c)
{
	memset(c, 0xa5, sizeof *c);
	memcpy(c->trace_state, "junk=1", 7);
	c->trace_state_len = 6;
}

static int parse_str(const char *s, spanring_span_context *c)
{
	return spanring_traceparent_parse(s, strlen(s), c);
}

/* Parse s into ctx->trace_state starting from an empty state. */
static int ts_parse(const char *s, spanring_span_context *c)
{
	memset(c, 0, sizeof *c);
	return spanring_tracestate_parse(s, strlen(s), c);
}

/* ---- hex ------------------------------------------------------------------ */

static void test_hex_roundtrip_all_bytes(void **state)
{
	uint8_t in[256], back[256];
	char hex[513];

	(void)state;
	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)i;
	memset(hex, 'X', sizeof hex);
	sr_hex_encode(in, sizeof in, hex);
	assert_int_equal(hex[512], 'X'); /* no NUL written */
	assert_memory_equal(hex, "000102", 6);
	assert_memory_equal(hex + 2 * 0xab, "ab", 2);
	assert_memory_equal(hex + 510, "ff", 2);
	for (int i = 0; i < 512; i++)
		assert_true((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
	assert_int_equal(sr_hex_decode(hex, sizeof back, back), 0);
	assert_memory_equal(in, back, sizeof in);
}

static void test_hex_decode_rejects(void **state)
{
	uint8_t out[4];

	(void)state;
	assert_int_equal(sr_hex_decode("", 0, out), 0);
	assert_int_equal(sr_hex_decode("0aF0", 2, out), -EINVAL); /* upper case */
	assert_int_equal(sr_hex_decode("0A", 1, out), -EINVAL);
	assert_int_equal(sr_hex_decode("g0", 1, out), -EINVAL);
	assert_int_equal(sr_hex_decode("0 ", 1, out), -EINVAL);
	assert_int_equal(sr_hex_decode("-1", 1, out), -EINVAL);
	assert_int_equal(sr_hex_decode("0\0", 1, out), -EINVAL);
	assert_int_equal(sr_hex_decode("\xff" "0", 1, out), -EINVAL);
	assert_int_equal(sr_hex_decode("00112g", 3, out), -EINVAL); /* last digit bad */
	assert_int_equal(sr_hex_decode("deadbeef", 4, out), 0);
	assert_int_equal(out[0], 0xde);
	assert_int_equal(out[3], 0xef);
	/* Every byte value other than [0-9a-f] is rejected in either position. */
	for (int c = 0; c < 256; c++) {
		char s[2] = {'0', (char)c};
		int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		assert_int_equal(sr_hex_decode(s, 1, out), ok ? 0 : -EINVAL);
		s[0] = (char)c;
		s[1] = '0';
		assert_int_equal(sr_hex_decode(s, 1, out), ok ? 0 : -EINVAL);
	}
}

/* ---- traceparent ------------------------------------------------------------- */

static void test_context_is_valid(void **state)
{
	spanring_span_context c;

	(void)state;
	assert_false(spanring_context_is_valid(NULL));
	memset(&c, 0, sizeof c);
	assert_false(spanring_context_is_valid(&c));
	c.trace_id[15] = 1;
	assert_false(spanring_context_is_valid(&c)); /* span id zero */
	c.span_id[0] = 1;
	assert_true(spanring_context_is_valid(&c));
	memset(c.trace_id, 0, sizeof c.trace_id);
	assert_false(spanring_context_is_valid(&c)); /* trace id zero */
}

static void test_traceparent_parse_valid(void **state)
{
	spanring_span_context c;

	(void)state;
	ctx_junk(&c);
	assert_int_equal(parse_str(TP_EXAMPLE, &c), 0);
	assert_memory_equal(c.trace_id, tid_bytes, 16);
	assert_memory_equal(c.span_id, pid_bytes, 8);
	assert_int_equal(c.trace_flags, 0x01);
	assert_int_equal(c.is_remote, 1);
	assert_int_equal(c.trace_state_len, 0);
	assert_string_equal(c.trace_state, "");
	assert_true(spanring_context_is_valid(&c));

	/* The W3C test suite's ids. */
	assert_int_equal(parse_str("00-12345678901234567890123456789012-1234567890123456-00", &c), 0);
	assert_int_equal(c.trace_id[0], 0x12);
	assert_int_equal(c.span_id[7], 0x56);
	assert_int_equal(c.trace_flags, 0x00);
}

static void test_traceparent_flags_preserved(void **state)
{
	static const struct {
		const char *flags;
		uint8_t v00;    /* version 00: kept as is */
		uint8_t vcc;    /* future version: sampled bit only */
	} cases[] = {
		{"00", 0x00, 0x00}, {"01", 0x01, 0x01}, {"02", 0x02, 0x00}, {"03", 0x03, 0x01},
		{"09", 0x09, 0x01}, {"80", 0x80, 0x00}, {"fe", 0xfe, 0x00}, {"ff", 0xff, 0x01},
	};
	char buf[128], out[SPANRING_TRACEPARENT_LEN + 1];
	spanring_span_context c;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(buf, sizeof buf, "00-%s-%s-%s", TID, PID, cases[i].flags);
		assert_int_equal(parse_str(buf, &c), 0);
		assert_int_equal(c.trace_flags, cases[i].v00);
		assert_int_equal(spanring_traceparent_format(&c, out, sizeof out), 55);
		assert_string_equal(out, buf);

		snprintf(buf, sizeof buf, "cc-%s-%s-%s", TID, PID, cases[i].flags);
		assert_int_equal(parse_str(buf, &c), 0);
		assert_int_equal(c.trace_flags, cases[i].vcc);
	}
}

static void test_traceparent_future_version(void **state)
{
	static const char *ok[] = {
		"cc-" TID "-" PID "-01",
		"cc-" TID "-" PID "-01-what-the-future-will-be-like",
		"01-" TID "-" PID "-01-",
		"fe-" TID "-" PID "-01-x",
		"0a-" TID "-" PID "-00",
	};
	static const char *bad[] = {
		"cc-" TID "-" PID "-01.what-the-future-will-be-like",
		"cc-" TID "-" PID "-01x",
		"cc-" TID "-" PID "-011",
		"cc-" TID "-" PID "-0",                  /* shorter than 55 */
		"CC-" TID "-" PID "-01",                 /* upper-case version */
		"ff-" TID "-" PID "-01-what-the-future", /* ff is never valid */
		"cc-" TID "-" PID "-01 -x",
	};
	char out[SPANRING_TRACEPARENT_LEN + 1];
	spanring_span_context c;

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		ctx_junk(&c);
		assert_int_equal(parse_str(ok[i], &c), 0);
		assert_memory_equal(c.trace_id, tid_bytes, 16);
		assert_memory_equal(c.span_id, pid_bytes, 8);
		assert_int_equal(c.is_remote, 1);
		/* Re-emitted in the version we know. */
		assert_int_equal(spanring_traceparent_format(&c, out, sizeof out), 55);
		assert_memory_equal(out, "00-" TID "-" PID "-", 52);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(parse_str(bad[i], &c), -EINVAL);
}

static void test_traceparent_invalid(void **state)
{
	static const char *bad[] = {
		"",
		" ",
		"\t \t",
		"00",
		/* version */
		"ff-" TID "-" PID "-01",
		".0-" TID "-" PID "-01",
		"0.-" TID "-" PID "-01",
		"000-" TID "-" PID "-01",
		"0000-" TID "-" PID "-01",
		"0-" TID "-" PID "-01",
		"0A-" TID "-" PID "-01",
		"-0-" TID "-" PID "-01",
		/* trace-id */
		"00-00000000000000000000000000000000-" PID "-01",
		"00-.2345678901234567890123456789012-" PID "-01",
		"00-1234567890123456789012345678901.-" PID "-01",
		"00-123456789012345678901234567890123-" PID "-01",
		"00-1234567890123456789012345678901-" PID "-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01",
		"00-4bf92f3577b34da6a3ce929d0e0e473G-" PID "-01",
		"00-4bf92f3577b34da6a3ce929d0e0e47 6-" PID "-01",
		/* parent-id */
		"00-" TID "-0000000000000000-01",
		"00-" TID "-.234567890123456-01",
		"00-" TID "-123456789012345.-01",
		"00-" TID "-12345678901234567-01",
		"00-" TID "-123456789012345-01",
		"00-" TID "-00F067AA0BA902B7-01",
		"00-" TID "-00f067aa0ba902bz-01",
		/* trace-flags */
		"00-" TID "-" PID "-.0",
		"00-" TID "-" PID "-0.",
		"00-" TID "-" PID "-001",
		"00-" TID "-" PID "-1",
		"00-" TID "-" PID "-0A",
		"00-" TID "-" PID "-g1",
		"00-" TID "-" PID "-",
		/* separators */
		"00_" TID "-" PID "-01",
		"00-" TID "_" PID "-01",
		"00-" TID "-" PID "_01",
		"00 " TID " " PID " 01",
		"00" TID PID "01",
		"00--" TID PID "-01",
		/* version 00 with trailing data */
		"00-" TID "-" PID "-01.",
		"00-" TID "-" PID "-01-",
		"00-" TID "-" PID "-01-what-the-future-will-be-like",
		"00-" TID "-" PID "-01x",
		/* only spaces and tabs are OWS */
		"\n00-" TID "-" PID "-01",
		"00-" TID "-" PID "-01\r\n",
		"\v00-" TID "-" PID "-01",
		/* inner whitespace is not trimmed */
		"00- " TID "-" PID "-01",
	};
	spanring_span_context c, before;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ctx_junk(&c);
		before = c;
		if (parse_str(bad[i], &c) != -EINVAL)
			fail_msg("accepted invalid traceparent \"%s\"", bad[i]);
		/* A rejected value leaves the context alone. */
		assert_memory_equal(&c, &before, sizeof c);
	}
	assert_int_equal(spanring_traceparent_parse(NULL, 0, &c), -EINVAL);
	assert_int_equal(spanring_traceparent_parse(NULL, 55, &c), -EINVAL);
	assert_int_equal(spanring_traceparent_parse(TP_EXAMPLE, 55, NULL), -EINVAL);
}

static void test_traceparent_embedded_nul(void **state)
{
	char buf[64];
	spanring_span_context c;

	(void)state;
	memcpy(buf, TP_EXAMPLE, 56);
	buf[20] = '\0';
	assert_int_equal(spanring_traceparent_parse(buf, 55, &c), -EINVAL);
	/* A NUL right after a version 00 value makes it too long. */
	memcpy(buf, TP_EXAMPLE, 56);
	assert_int_equal(spanring_traceparent_parse(buf, 56, &c), -EINVAL);
}

static void test_traceparent_ows_trimmed(void **state)
{
	static const char *ok[] = {
		" " TP_EXAMPLE,
		"\t" TP_EXAMPLE,
		TP_EXAMPLE " ",
		TP_EXAMPLE "\t",
		"\t " TP_EXAMPLE " \t",
		"   \t\t  " TP_EXAMPLE "  \t\t   ",
		" cc-" TID "-" PID "-01-more \t",
	};
	spanring_span_context c;

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		memset(&c, 0, sizeof c);
		assert_int_equal(parse_str(ok[i], &c), 0);
		assert_memory_equal(c.trace_id, tid_bytes, 16);
		assert_memory_equal(c.span_id, pid_bytes, 8);
		assert_int_equal(c.trace_flags, 1);
	}
}

static void test_traceparent_len_respected(void **state)
{
	char buf[128];
	spanring_span_context c;

	(void)state;
	/* Not NUL-terminated at len: trailing garbage beyond len is ignored. */
	snprintf(buf, sizeof buf, "%sGARBAGE", TP_EXAMPLE);
	assert_int_equal(spanring_traceparent_parse(buf, 55, &c), 0);
	assert_int_equal(spanring_traceparent_parse(buf, 56, &c), -EINVAL);
	assert_int_equal(spanring_traceparent_parse(buf, 54, &c), -EINVAL);
	assert_int_equal(spanring_traceparent_parse(buf, 0, &c), -EINVAL);
}

static void test_traceparent_format(void **state)
{
	char out[64];
	spanring_span_context c;

	(void)state;
	memset(&c, 0, sizeof c);
	memcpy(c.trace_id, tid_bytes, 16);
	memcpy(c.span_id, pid_bytes, 8);
	c.trace_flags = SPANRING_FLAG_SAMPLED;
	memset(out, 'X', sizeof out);
	assert_int_equal(spanring_traceparent_format(&c, out, 56), 55);
	assert_string_equal(out, TP_EXAMPLE);
	assert_int_equal(out[56], 'X');

	assert_int_equal(spanring_traceparent_format(&c, out, 55), -ENOSPC);
	assert_int_equal(spanring_traceparent_format(&c, out, 0), -ENOSPC);
	assert_int_equal(spanring_traceparent_format(NULL, out, sizeof out), -EINVAL);
	assert_int_equal(spanring_traceparent_format(&c, NULL, sizeof out), -EINVAL);
	memset(c.span_id, 0, 8);
	assert_int_equal(spanring_traceparent_format(&c, out, sizeof out), -EINVAL);
	memcpy(c.span_id, pid_bytes, 8);
	memset(c.trace_id, 0, 16);
	assert_int_equal(spanring_traceparent_format(&c, out, sizeof out), -EINVAL);
}

static void test_traceparent_roundtrip(void **state)
{
	static const char *vals[] = {
		TP_EXAMPLE,
		"00-" TID "-" PID "-00",
		"00-12345678901234567890123456789012-1234567890123456-01",
		"00-00000000000000000000000000000001-0000000000000001-00",
		"00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-ff",
		"00-0123456789abcdef0123456789abcdef-fedcba9876543210-5a",
	};
	char out[SPANRING_TRACEPARENT_LEN + 1];
	spanring_span_context c;

	(void)state;
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		assert_int_equal(parse_str(vals[i], &c), 0);
		assert_int_equal(spanring_traceparent_format(&c, out, sizeof out), 55);
		assert_string_equal(out, vals[i]);
	}
}

/* ---- tracestate ----------------------------------------------------------------- */

static void test_tracestate_valid_kept(void **state)
{
	spanring_span_context c;

	(void)state;
	assert_int_equal(ts_parse("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", &c), 2);
	assert_string_equal(c.trace_state, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
	assert_int_equal(c.trace_state_len, strlen(c.trace_state));

	assert_int_equal(ts_parse("congo=t61rcWkgMzE", &c), 1);
	assert_string_equal(c.trace_state, "congo=t61rcWkgMzE");

	/* Values may contain spaces (not at the end) and most punctuation. */
	assert_int_equal(ts_parse("a=x y,b= lead,c=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~", &c), 3);
	assert_string_equal(c.trace_state, "a=x y,b= lead,c=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~");

	/* Replaces an existing state. */
	assert_int_equal(spanring_tracestate_parse("x=1", 3, &c), 1);
	assert_string_equal(c.trace_state, "x=1");
	assert_int_equal(c.trace_state_len, 3);
}

static void test_tracestate_ows_normalized(void **state)
{
	spanring_span_context c;

	(void)state;
	assert_int_equal(ts_parse("foo=1 \t , \t bar=2, \t baz=3", &c), 3);
	assert_string_equal(c.trace_state, "foo=1,bar=2,baz=3");
	assert_int_equal(ts_parse("foo=1\t \t,\t \tbar=2,\t \tbaz=3", &c), 3);
	assert_string_equal(c.trace_state, "foo=1,bar=2,baz=3");
	assert_int_equal(ts_parse(" foo=1", &c), 1);
	assert_string_equal(c.trace_state, "foo=1");
	assert_int_equal(ts_parse("\tfoo=1", &c), 1);
	assert_int_equal(ts_parse("foo=1 ", &c), 1);
	assert_string_equal(c.trace_state, "foo=1");
	assert_int_equal(ts_parse("foo=1\t", &c), 1);
	assert_string_equal(c.trace_state, "foo=1");
	assert_int_equal(ts_parse("\t foo=1 \t", &c), 1);
	assert_string_equal(c.trace_state, "foo=1");
	/* Leading spaces of a value are part of it; trailing ones are not. */
	assert_int_equal(ts_parse("foo=  1  ", &c), 1);
	assert_string_equal(c.trace_state, "foo=  1");
}

static void test_tracestate_empty_members(void **state)
{
	spanring_span_context c;

	(void)state;
	c.trace_state_len = 3;
	memcpy(c.trace_state, "a=b", 4);
	assert_int_equal(spanring_tracestate_parse("", 0, &c), 0);
	assert_int_equal(c.trace_state_len, 0);
	assert_string_equal(c.trace_state, "");
	assert_int_equal(ts_parse(" \t ", &c), 0);
	assert_string_equal(c.trace_state, "");
	assert_int_equal(ts_parse(",", &c), 0);
	assert_int_equal(ts_parse(", ,\t,", &c), 0);
	assert_int_equal(ts_parse(",foo=1,, ,bar=2,", &c), 2);
	assert_string_equal(c.trace_state, "foo=1,bar=2");
}

static void test_tracestate_invalid_members_dropped(void **state)
{
	static const char *bad[] = {
		"FOO=1",      "foo =1",   "foo.bar=1",  "Foo=1",     "foo@=1",       "@foo=1",
		"foo@@bar=1", "foo@bar@baz=1", "1abc=1", "_a=1",    "=1",           "foo",
		"foo=",       "foo= ",    "foo=a=b",    "foo=\x01",  "foo=a\tb",     "foo=\x7f",
		"foo=\xc3\xa9", "f\xc3\xa9=1", "foo bar=1", "foo\t=1", "a@1b=1",   "a@B=1",
		"a@=1",       "a@b.c=1",  "-a=1",       "*a=1",      "a=b\nc",
	};
	char buf[64];
	spanring_span_context c;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (ts_parse(bad[i], &c) != 0 || c.trace_state_len != 0)
			fail_msg("kept invalid tracestate member \"%s\"", bad[i]);
		/* Dropping one member keeps its neighbours. */
		snprintf(buf, sizeof buf, "a=1,%s,b=2", bad[i]);
		if (ts_parse(buf, &c) != 2 || strcmp(c.trace_state, "a=1,b=2") != 0)
			fail_msg("\"%s\" gave \"%s\"", buf, c.trace_state);
	}
}

static void test_tracestate_all_allowed_characters(void **state)
{
	char key[64], value[128], in[256], key_v[128];
	size_t n = 0;
	spanring_span_context c;

	(void)state;
	snprintf(key, sizeof key, "abcdefghijklmnopqrstuvwxyz0123456789_-*/");
	for (int ch = 0x20; ch <= 0x7e; ch++)
		if (ch != ',' && ch != '=')
			value[n++] = (char)ch;
	value[n] = '\0';
	snprintf(in, sizeof in, "%s=%s", key, value);
	assert_int_equal(ts_parse(in, &c), 1);
	assert_string_equal(c.trace_state, in);

	snprintf(key_v, sizeof key_v, "%s@a-z0-9_-*/", key);
	snprintf(in, sizeof in, "%s=%s", key_v, value);
	assert_int_equal(ts_parse(in, &c), 1);
	assert_string_equal(c.trace_state, in);
}

static void test_tracestate_multi_tenant_keys(void **state)
{
	char buf[600];
	spanring_span_context c;

	(void)state;
	assert_int_equal(ts_parse("fw529a3039@dt=a,1tenant@sys=b,t@s=c,t_-*/@s9_-*/=d", &c), 4);
	assert_string_equal(c.trace_state, "fw529a3039@dt=a,1tenant@sys=b,t@s=c,t_-*/@s9_-*/=d");

	/* tenant-id: 1..241 characters. */
	memset(buf, 't', 241);
	snprintf(buf + 241, sizeof buf - 241, "@sys=v");
	assert_int_equal(ts_parse(buf, &c), 1);
	memset(buf, 't', 242);
	snprintf(buf + 242, sizeof buf - 242, "@sys=v");
	assert_int_equal(ts_parse(buf, &c), 0);

	/* system-id: lcalpha then up to 13 more. */
	assert_int_equal(ts_parse("t@abcdefghijklmn=v", &c), 1); /* 14 */
	assert_int_equal(ts_parse("t@abcdefghijklmno=v", &c), 0); /* 15 */
	assert_int_equal(ts_parse("t@9abc=v", &c), 0);
}

static void test_tracestate_key_and_value_length(void **state)
{
	char buf[1200];
	spanring_span_context c;

	(void)state;
	/* simple-key: up to 256 characters. */
	memset(buf, 'k', 256);
	snprintf(buf + 256, sizeof buf - 256, "=v");
	assert_int_equal(ts_parse(buf, &c), 1);
	assert_int_equal(c.trace_state_len, 258);
	memset(buf, 'k', 257);
	snprintf(buf + 257, sizeof buf - 257, "=v");
	assert_int_equal(ts_parse(buf, &c), 0);

	/* value: up to 256 characters. */
	snprintf(buf, sizeof buf, "k=");
	memset(buf + 2, 'v', 256);
	buf[258] = '\0';
	assert_int_equal(ts_parse(buf, &c), 1);
	assert_int_equal(c.trace_state_len, 258);
	memset(buf + 2, 'v', 257);
	buf[259] = '\0';
	assert_int_equal(ts_parse(buf, &c), 0);
}

static void test_tracestate_max_32_members(void **state)
{
	char buf[2048], expect[1024];
	size_t n = 0, e = 0;
	spanring_span_context c;

	(void)state;
	for (int i = 0; i < 40; i++) {
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%sk%d=%d", i ? "," : "", i, i);
		if (i < 32)
			e += (size_t)snprintf(expect + e, sizeof expect - e, "%sk%d=%d", i ? "," : "", i, i);
	}
	assert_int_equal(ts_parse(buf, &c), 32);
	assert_string_equal(c.trace_state, expect);

	/* Exactly 32 members are all kept. */
	assert_int_equal(ts_parse(expect, &c), 32);
	assert_string_equal(c.trace_state, expect);

	/* Invalid and duplicate members do not use up the 32. */
	n = (size_t)snprintf(buf, sizeof buf, "BAD=1,k0=dup,");
	n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", expect);
	assert_int_equal(ts_parse(buf, &c), 32);
	/* k0 is first at "dup"; the later k0=0 is the duplicate. */
	assert_memory_equal(c.trace_state, "k0=dup,k1=1,", 12);
	assert_int_equal(strstr(c.trace_state, "k0=0") == NULL, 1);
	assert_non_null(strstr(c.trace_state, "k31=31"));
}

static void test_tracestate_duplicates_keep_first(void **state)
{
	spanring_span_context c;

	(void)state;
	assert_int_equal(ts_parse("foo=1,bar=2,foo=3", &c), 2);
	assert_string_equal(c.trace_state, "foo=1,bar=2");
	assert_int_equal(ts_parse("foo=1,foo=1", &c), 1);
	assert_string_equal(c.trace_state, "foo=1");
	/* An invalid first occurrence does not shadow a valid later one. */
	assert_int_equal(ts_parse("foo=,foo=2", &c), 1);
	assert_string_equal(c.trace_state, "foo=2");
	/* Keys are compared whole. */
	assert_int_equal(ts_parse("foo=1,foob=2,fo=3,t@foo=4", &c), 4);
}

/* "k<i>=" followed by value characters up to a member length of len. */
static size_t put_member(char *out, int i, size_t len)
{
	int k = sprintf(out, "k%d=", i);
	memset(out + k, 'a' + i % 26, len - (size_t)k);
	return len;
}

static void test_tracestate_512_limit(void **state)
{
	char buf[2048], *p;
	spanring_span_context c;

	(void)state;
	/* 8 members of 64 characters: 8 * 64 + 7 = 519 > 512, the last goes. */
	p = buf;
	for (int i = 0; i < 8; i++) {
		p += put_member(p, i, 64);
		*p++ = ',';
	}
	p[-1] = '\0';
	assert_int_equal(ts_parse(buf, &c), 7);
	assert_int_equal(c.trace_state_len, 7 * 64 + 6);
	assert_memory_equal(c.trace_state, buf, 7 * 64 + 6);
	assert_int_equal(c.trace_state[c.trace_state_len], '\0');

	/* Exactly 512 fits: 4 * 127 + 3 commas = 511, one member one longer. */
	p = buf;
	for (int i = 0; i < 4; i++) {
		p += put_member(p, i, i == 3 ? 128 : 127);
		*p++ = ',';
	}
	p[-1] = '\0';
	assert_int_equal(strlen(buf), 512);
	assert_int_equal(ts_parse(buf, &c), 4);
	assert_int_equal(c.trace_state_len, 512);
	assert_string_equal(c.trace_state, buf);

	/* Entries over 128 characters go first, even when not at the end:
	 * 202 + 202 + 102 + 102 + 3 = 611; dropping the second big one fits. */
	char a[256], b[256], cc[256], d[256], expect[1024];
	a[put_member(a, 0, 202)] = '\0';
	b[put_member(b, 1, 202)] = '\0';
	cc[put_member(cc, 2, 102)] = '\0';
	d[put_member(d, 3, 102)] = '\0';
	snprintf(buf, sizeof buf, "%s,%s,%s,%s", a, b, cc, d);
	snprintf(expect, sizeof expect, "%s,%s,%s", a, cc, d);
	assert_int_equal(ts_parse(buf, &c), 3);
	assert_string_equal(c.trace_state, expect);

	/* Big entries are removed right-most first, then from the end. */
	char big[3][256];
	for (int i = 0; i < 3; i++)
		big[i][put_member(big[i], i, 200)] = '\0';
	snprintf(buf, sizeof buf, "%s,%s,small=1,%s", big[0], big[1], big[2]);
	snprintf(expect, sizeof expect, "%s,%s,small=1", big[0], big[1]);
	assert_int_equal(ts_parse(buf, &c), 3);
	assert_string_equal(c.trace_state, expect);

	/* A single member longer than 512 (256-char key, 256-char value). */
	memset(buf, 'k', 256);
	buf[256] = '=';
	memset(buf + 257, 'v', 256);
	buf[513] = '\0';
	assert_int_equal(ts_parse(buf, &c), 0);
	assert_int_equal(c.trace_state_len, 0);
	/* ... next to a small one that survives. */
	memmove(buf + 4, buf, 514);
	memcpy(buf, "x=1,", 4);
	assert_int_equal(ts_parse(buf, &c), 1);
	assert_string_equal(c.trace_state, "x=1");
}

static void test_tracestate_args_and_aliasing(void **state)
{
	char buf[64];
	spanring_span_context c;

	(void)state;
	assert_int_equal(spanring_tracestate_parse("a=1", 3, NULL), -EINVAL);
	memset(&c, 0, sizeof c);
	memcpy(c.trace_state, "x=1", 4);
	c.trace_state_len = 3;
	assert_int_equal(spanring_tracestate_parse(NULL, 0, &c), -EINVAL);
	assert_int_equal(c.trace_state_len, 0);
	assert_string_equal(c.trace_state, "");

	/* len is respected: no NUL needed, nothing read past it. */
	memcpy(buf, "a=1,b=2GARBAGE", 15);
	assert_int_equal(spanring_tracestate_parse(buf, 7, &c), 2);
	assert_string_equal(c.trace_state, "a=1,b=2");

	/* Re-parsing the context's own state in place normalises it. */
	snprintf(c.trace_state, sizeof c.trace_state, " a=1 , B=2 ,\tc=3,a=4 ");
	c.trace_state_len = (uint16_t)strlen(c.trace_state);
	assert_int_equal(spanring_tracestate_parse(c.trace_state, c.trace_state_len, &c), 2);
	assert_string_equal(c.trace_state, "a=1,c=3");
	assert_int_equal(c.trace_state_len, 7);
}

/* ---- carriers -------------------------------------------------------------------- */

/* A tiny HTTP-like header carrier: case-insensitive names, last set wins. */
#define CARRIER_MAX 8
struct carrier {
	int n;
	char name[CARRIER_MAX][32];
	char value[CARRIER_MAX][600];
	int fail_on_set;  /* error returned by set() once n reaches this */
};

static const char *carrier_get(void *cp, const char *key)
{
	struct carrier *c = cp;
	for (int i = c->n - 1; i >= 0; i--)
		if (strcasecmp(c->name[i], key) == 0)
			return c->value[i];
	return NULL;
}

static int carrier_set(void *cp, const char *key, const char *value)
{
	struct carrier *c = cp;
	if (c->fail_on_set && c->n + 1 >= c->fail_on_set)
		return -EIO;
	if (c->n == CARRIER_MAX || strlen(value) >= sizeof c->value[0])
		return -ENOSPC;
	snprintf(c->name[c->n], sizeof c->name[0], "%s", key);
	snprintf(c->value[c->n], sizeof c->value[0], "%s", value);
	c->n++;
	return 0;
}

static void carrier_add(struct carrier *c, const char *k, const char *v)
{
	assert_int_equal(carrier_set(c, k, v), 0);
}

static void test_inject_extract_roundtrip(void **state)
{
	struct carrier car = {0};
	spanring_span_context c, back;

	(void)state;
	assert_int_equal(parse_str(TP_EXAMPLE, &c), 0);
	assert_int_equal(spanring_tracestate_parse("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE", 40, &c),
			 2);
	assert_int_equal(spanring_context_inject(&c, carrier_set, &car), 0);
	assert_int_equal(car.n, 2);
	assert_string_equal(carrier_get(&car, "traceparent"), TP_EXAMPLE);
	assert_string_equal(carrier_get(&car, "tracestate"), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");

	ctx_junk(&back);
	assert_int_equal(spanring_context_extract(&back, carrier_get, &car), 0);
	assert_memory_equal(back.trace_id, c.trace_id, 16);
	assert_memory_equal(back.span_id, c.span_id, 8);
	assert_int_equal(back.trace_flags, c.trace_flags);
	assert_int_equal(back.is_remote, 1);
	assert_string_equal(back.trace_state, c.trace_state);
	assert_int_equal(back.trace_state_len, c.trace_state_len);
}

static void test_inject_without_tracestate(void **state)
{
	struct carrier car = {0};
	spanring_span_context c;

	(void)state;
	assert_int_equal(parse_str(TP_EXAMPLE, &c), 0);
	assert_int_equal(spanring_context_inject(&c, carrier_set, &car), 0);
	assert_int_equal(car.n, 1);
	assert_null(carrier_get(&car, "tracestate"));
}

static void test_inject_errors(void **state)
{
	struct carrier car = {0};
	spanring_span_context c;

	(void)state;
	memset(&c, 0, sizeof c);
	assert_int_equal(spanring_context_inject(&c, carrier_set, &car), -EINVAL);
	assert_int_equal(spanring_context_inject(NULL, carrier_set, &car), -EINVAL);
	assert_int_equal(car.n, 0);
	assert_int_equal(parse_str(TP_EXAMPLE, &c), 0);
	assert_int_equal(spanring_context_inject(&c, NULL, &car), -EINVAL);
	c.trace_state_len = SPANRING_TRACESTATE_MAX + 1;
	assert_int_equal(spanring_context_inject(&c, carrier_set, &car), -EINVAL);
	assert_int_equal(car.n, 0);

	/* A setter's error is passed on. */
	assert_int_equal(spanring_tracestate_parse("a=1", 3, &c), 1);
	car.fail_on_set = 1;
	assert_int_equal(spanring_context_inject(&c, carrier_set, &car), -EIO);
	car.fail_on_set = 2;
	assert_int_equal(spanring_context_inject(&c, carrier_set, &car), -EIO);
	assert_int_equal(car.n, 1);

	/* A stale byte after trace_state_len is not sent. */
	struct carrier car2 = {0};
	c.trace_state[3] = 'X';
	assert_int_equal(spanring_context_inject(&c, carrier_set, &car2), 0);
	assert_string_equal(carrier_get(&car2, "tracestate"), "a=1");
}

static void test_extract_cases(void **state)
{
	spanring_span_context c, before;

	(void)state;
	{	/* no traceparent: -ENOENT, even with a tracestate */
		struct carrier car = {0};
		carrier_add(&car, "tracestate", "a=1");
		ctx_junk(&c);
		before = c;
		assert_int_equal(spanring_context_extract(&c, carrier_get, &car), -ENOENT);
		assert_memory_equal(&c, &before, sizeof c);
	}
	{	/* invalid traceparent: -EINVAL, tracestate not used, ctx untouched */
		struct carrier car = {0};
		carrier_add(&car, "traceparent", "00-" TID "-0000000000000000-01");
		carrier_add(&car, "tracestate", "a=1");
		ctx_junk(&c);
		before = c;
		assert_int_equal(spanring_context_extract(&c, carrier_get, &car), -EINVAL);
		assert_memory_equal(&c, &before, sizeof c);
	}
	{	/* empty traceparent is present but invalid */
		struct carrier car = {0};
		carrier_add(&car, "traceparent", "");
		assert_int_equal(spanring_context_extract(&c, carrier_get, &car), -EINVAL);
	}
	{	/* an invalid tracestate does not affect the traceparent */
		struct carrier car = {0};
		carrier_add(&car, "TraceParent", " " TP_EXAMPLE);
		carrier_add(&car, "TRACESTATE", "BAD KEY=1");
		ctx_junk(&c);
		assert_int_equal(spanring_context_extract(&c, carrier_get, &car), 0);
		assert_memory_equal(c.trace_id, tid_bytes, 16);
		assert_int_equal(c.trace_state_len, 0);
		assert_string_equal(c.trace_state, "");
	}
	{	/* combined repeated tracestate fields, as a carrier would join them */
		struct carrier car = {0};
		carrier_add(&car, "traceparent", TP_EXAMPLE);
		carrier_add(&car, "tracestate", "foo=1,bar=2,rojo=1,congo=2,baz=3");
		assert_int_equal(spanring_context_extract(&c, carrier_get, &car), 0);
		assert_string_equal(c.trace_state, "foo=1,bar=2,rojo=1,congo=2,baz=3");
	}
	{	/* future version in, version 00 out */
		struct carrier car = {0}, out = {0};
		carrier_add(&car, "traceparent", "cc-" TID "-" PID "-01-what-the-future-will-be-like");
		assert_int_equal(spanring_context_extract(&c, carrier_get, &car), 0);
		assert_int_equal(spanring_context_inject(&c, carrier_set, &out), 0);
		assert_string_equal(carrier_get(&out, "traceparent"), TP_EXAMPLE);
	}
	struct carrier car = {0};
	assert_int_equal(spanring_context_extract(NULL, carrier_get, &car), -EINVAL);
	assert_int_equal(spanring_context_extract(&c, NULL, &car), -EINVAL);
}

/* ---- environment ------------------------------------------------------------------- */

static void test_env_roundtrip(void **state)
{
	spanring_span_context c, back;

	(void)state;
	assert_int_equal(parse_str(TP_EXAMPLE, &c), 0);
	assert_int_equal(spanring_tracestate_parse("congo=t61rcWkgMzE", 17, &c), 1);
	assert_int_equal(spanring_context_to_env(&c), 0);
	assert_string_equal(getenv("TRACEPARENT"), TP_EXAMPLE);
	assert_string_equal(getenv("TRACESTATE"), "congo=t61rcWkgMzE");

	ctx_junk(&back);
	assert_int_equal(spanring_context_from_env(&back), 0);
	assert_memory_equal(back.trace_id, tid_bytes, 16);
	assert_memory_equal(back.span_id, pid_bytes, 8);
	assert_int_equal(back.trace_flags, 1);
	assert_int_equal(back.is_remote, 1);
	assert_string_equal(back.trace_state, "congo=t61rcWkgMzE");

	/* An empty state removes a stale TRACESTATE. */
	c.trace_state_len = 0;
	c.trace_state[0] = '\0';
	c.trace_flags = 0;
	assert_int_equal(spanring_context_to_env(&c), 0);
	assert_string_equal(getenv("TRACEPARENT"), "00-" TID "-" PID "-00");
	assert_null(getenv("TRACESTATE"));
	assert_int_equal(spanring_context_from_env(&back), 0);
	assert_int_equal(back.trace_flags, 0);
	assert_int_equal(back.trace_state_len, 0);
}

static void test_env_errors(void **state)
{
	spanring_span_context c, before;

	(void)state;
	unsetenv("TRACEPARENT");
	setenv("TRACESTATE", "a=1", 1);
	ctx_junk(&c);
	before = c;
	assert_int_equal(spanring_context_from_env(&c), -ENOENT);
	assert_memory_equal(&c, &before, sizeof c);

	setenv("TRACEPARENT", "", 1); /* empty counts as unset */
	assert_int_equal(spanring_context_from_env(&c), -ENOENT);

	setenv("TRACEPARENT", "00-" TID "-" PID "-0x", 1);
	assert_int_equal(spanring_context_from_env(&c), -EINVAL);
	assert_memory_equal(&c, &before, sizeof c);

	setenv("TRACEPARENT", TP_EXAMPLE, 1);
	setenv("TRACESTATE", "", 1);
	assert_int_equal(spanring_context_from_env(&c), 0);
	assert_int_equal(c.trace_state_len, 0);
	assert_int_equal(spanring_context_from_env(NULL), -EINVAL);

	/* to_env refuses an invalid context and leaves the environment be. */
	memset(&c, 0, sizeof c);
	assert_int_equal(spanring_context_to_env(&c), -EINVAL);
	assert_int_equal(spanring_context_to_env(NULL), -EINVAL);
	assert_string_equal(getenv("TRACEPARENT"), TP_EXAMPLE);
	unsetenv("TRACEPARENT");
	unsetenv("TRACESTATE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex_roundtrip_all_bytes),
		cmocka_unit_test(test_hex_decode_rejects),
		cmocka_unit_test(test_context_is_valid),
		cmocka_unit_test(test_traceparent_parse_valid),
		cmocka_unit_test(test_traceparent_flags_preserved),
		cmocka_unit_test(test_traceparent_future_version),
		cmocka_unit_test(test_traceparent_invalid),
		cmocka_unit_test(test_traceparent_embedded_nul),
		cmocka_unit_test(test_traceparent_ows_trimmed),
		cmocka_unit_test(test_traceparent_len_respected),
		cmocka_unit_test(test_traceparent_format),
		cmocka_unit_test(test_traceparent_roundtrip),
		cmocka_unit_test(test_tracestate_valid_kept),
		cmocka_unit_test(test_tracestate_ows_normalized),
		cmocka_unit_test(test_tracestate_empty_members),
		cmocka_unit_test(test_tracestate_invalid_members_dropped),
		cmocka_unit_test(test_tracestate_all_allowed_characters),
		cmocka_unit_test(test_tracestate_multi_tenant_keys),
		cmocka_unit_test(test_tracestate_key_and_value_length),
		cmocka_unit_test(test_tracestate_max_32_members),
		cmocka_unit_test(test_tracestate_duplicates_keep_first),
		cmocka_unit_test(test_tracestate_512_limit),
		cmocka_unit_test(test_tracestate_args_and_aliasing),
		cmocka_unit_test(test_inject_extract_roundtrip),
		cmocka_unit_test(test_inject_without_tracestate),
		cmocka_unit_test(test_inject_errors),
		cmocka_unit_test(test_extract_cases),
		cmocka_unit_test(test_env_roundtrip),
		cmocka_unit_test(test_env_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
