/* SPDX-License-Identifier: MIT */
/*
 * spanring-dump's output side (tools/dump/out.c): durations and trace-id
 * filters, the human line (escaping of hostile strings), and the waterfall
 * (width, tree, orphans, parent cycles, duplicate ids).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dump/dump.h"

static void test_durations(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int rc;
		uint64_t ns;
	} t[] = {
		{"5ms", 0, 5000000},     {"1.5s", 0, 1500000000}, {"250us", 0, 250000},
		{"100ns", 0, 100},       {"2m", 0, 120000000000}, {"1h", 0, 3600000000000},
		{"0", 0, 0},             {"\xc2\xb5s", -1, 0},     {"3\xc2\xb5s", 0, 3000},
		{"5", -1, 0},            {"ms", -1, 0},           {"-1ms", -1, 0},
		{"5 ms", -1, 0},         {"5msx", -1, 0},         {"nan", -1, 0},
		{"1e30s", -1, 0},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t ns = 12345;
		int rc = dump_parse_duration(t[i].s, &ns);
		if (rc != t[i].rc || (rc == 0 && ns != t[i].ns))
			fail_msg("'%s': rc %d ns %llu", t[i].s, rc, (unsigned long long)ns);
	}
	char b[32];
	dump_fmt_duration(999, b, sizeof(b));
	assert_string_equal(b, "999ns");
	dump_fmt_duration(1500, b, sizeof(b));
	assert_string_equal(b, "1.5us");
	dump_fmt_duration(12000000, b, sizeof(b));
	assert_string_equal(b, "12.000ms");
	dump_fmt_duration(2500000000ull, b, sizeof(b));
	assert_string_equal(b, "2.500s");
}

static uint8_t TID[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
			  0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};

static void mkspan(dump_span_t *s, uint8_t *sid, uint8_t id, const uint8_t *parent,
		   const char *name, uint64_t start, uint64_t dur)
{
	opentelemetry__proto__trace__v1__span__init(s);
	memset(sid, id, 8);
	s->trace_id.data = TID;
	s->trace_id.len = 16;
	s->span_id.data = sid;
	s->span_id.len = 8;
	if (parent) {
		s->parent_span_id.data = (uint8_t *)parent;
		s->parent_span_id.len = 8;
	}
	s->name = (char *)name;
	s->start_time_unix_nano = start;
	s->end_time_unix_nano = start + dur;
}

static void test_filters(void **state)
{
	(void)state;
	struct dump_filter f = {0};
	dump_span_t s;
	uint8_t sid[8];
	mkspan(&s, sid, 1, NULL, "GET /users", 1000, 5000000);
	assert_int_equal(dump_parse_trace("4bf92", &f), 0);
	assert_true(dump_filter_match(&f, "api", &s));
	assert_int_equal(dump_parse_trace("4BF92F3577B34DA6A3CE929D0E0E4736", &f), 0);
	assert_true(dump_filter_match(&f, "api", &s));
	assert_int_equal(dump_parse_trace("4bf93", &f), 0);
	assert_false(dump_filter_match(&f, "api", &s));
	assert_int_equal(dump_parse_trace("xyz", &f), -1);
	assert_int_equal(dump_parse_trace("4bf92f3577b34da6a3ce929d0e0e47360", &f), -1);
	memset(&f, 0, sizeof(f));
	f.service = "a*";
	assert_true(dump_filter_match(&f, "api", &s));
	assert_false(dump_filter_match(&f, "web", &s));
	f.service = NULL;
	f.name = "users";
	assert_true(dump_filter_match(&f, "api", &s));
	f.name = "orders";
	assert_false(dump_filter_match(&f, "api", &s));
	f.name = NULL;
	f.min_ns = 5000000;
	assert_true(dump_filter_match(&f, "api", &s));
	f.min_ns = 5000001;
	assert_false(dump_filter_match(&f, "api", &s));
	/* A span that ends before it starts lasts 0, not 2^64 - 1. */
	s.end_time_unix_nano = 10;
	f.min_ns = 1;
	assert_false(dump_filter_match(&f, "api", &s));
}

static char *render(enum dump_format fmt, int width, dump_span_t **spans, size_t n,
		    const char *service)
{
	/* The stream's buffer pointer lives on the heap, not in this frame. */
	char **bufp = calloc(1, sizeof(*bufp));
	size_t len = 0;
	FILE *f = open_memstream(bufp, &len);
	struct dump_out o;
	dump_out_init(&o, f, fmt);
	o.width = width;
	o.utf8 = true;
	o.utc = true;
	struct dump_ctx c = {.service = service, .slot = -1};
	for (size_t i = 0; i < n; i++)
		dump_emit(&o, &c, spans[i]);
	dump_out_finish(&o);
	fclose(f);
	char *buf = *bufp;
	free(bufp);
	return buf;
}

static size_t columns(const char *line, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)line[i] & 0xc0) != 0x80)
			c++;
	return c;
}

static void test_line_escapes(void **state)
{
	(void)state;
	dump_span_t s;
	uint8_t sid[8];
	mkspan(&s, sid, 2, NULL, "evil\x1b]0;title\x07\x1b[31mred\xff\xc2\x9b", 1700000000000000000ull,
	       1500);
	char *out = render(DUMP_FMT_LINES, 100, (dump_span_t *[]){&s}, 1, "svc\nnext");
	assert_null(strchr(out, '\x1b'));
	assert_null(strchr(out, '\x07'));
	assert_null(strstr(out, "\xc2\x9b")); /* C1 CSI */
	assert_non_null(strstr(out, "evil\\x1b]0;title\\x07\\x1b[31mr")); /* cut at 32 columns */
	assert_non_null(strstr(out, "svc\\nnext"));
	assert_non_null(strstr(out, "22:13:20.000  "));
	assert_non_null(strstr(out, " 4bf92f35 02020202 "));
	assert_non_null(strstr(out, "1.5us"));
	free(out);
}

static void test_waterfall(void **state)
{
	(void)state;
	enum { N = 7 };
	dump_span_t s[N];
	uint8_t id[N][8];
	uint64_t t0 = 1700000000000000000ull;
	mkspan(&s[0], id[0], 1, NULL, "root", t0, 10000000);
	mkspan(&s[1], id[1], 2, id[0], "child-a", t0 + 1000000, 2000000);
	mkspan(&s[2], id[2], 3, id[1], "grandchild", t0 + 1500000, 500000);
	mkspan(&s[3], id[3], 4, id[0], "child-b with a rather long name that will not fit",
	       t0 + 5000000, 5000000);
	static const uint8_t missing[8] = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee};
	mkspan(&s[4], id[4], 5, missing, "orphan", t0 + 2000000, 1000000);
	/* A parent cycle (hostile data): 6 -> 7 -> 6. */
	mkspan(&s[5], id[5], 6, NULL, "cycle-1", t0 + 3000000, 100000);
	mkspan(&s[6], id[6], 7, id[5], "cycle-2", t0 + 3100000, 100000);
	s[5].parent_span_id.data = id[6];
	s[5].parent_span_id.len = 8;
	dump_span_t *p[N];
	for (int i = 0; i < N; i++)
		p[i] = &s[i];
	for (int width = 40; width <= 160; width += 60) {
		char *out = render(DUMP_FMT_WATERFALL, width, p, N, "svc");
		/* Every span printed once, every row within the width. */
		static const char *names[] = {"root", "child-a", "grandchild", "child-b", "orphan",
					      "cycle-1", "cycle-2"};
		for (int i = 0; i < N; i++) {
			const char *a = strstr(out, names[i]);
			if (!a)
				fail_msg("width %d: %s missing:\n%s", width, names[i], out);
		}
		int rows = 0;
		for (char *l = out; *l;) {
			char *nl = strchr(l, '\n');
			size_t n = nl ? (size_t)(nl - l) : strlen(l);
			if (strncmp(l, "trace ", 6) != 0) {
				rows++;
				if ((int)columns(l, n) > width)
					fail_msg("width %d: row of %zu columns:\n%s", width, columns(l, n),
						 out);
			}
			l += n + (nl ? 1 : 0);
		}
		assert_int_equal(rows, N);
		assert_non_null(strstr(out, "trace 4bf92f3577b34da6a3ce929d0e0e4736  7 spans, 10.000ms"));
		assert_non_null(strstr(out, "root [svc]"));
		assert_non_null(strstr(out, "\xe2\x94\x9c\xe2\x94\x80 child-a")); /* ├─ */
		assert_non_null(strstr(out, "\xe2\x94\x82  \xe2\x94\x94\xe2\x94\x80 grandchild")); /* │  └─ */
		if (width >= 100)
			assert_non_null(strstr(out, "\xe2\x94\x94\xe2\x94\x80 child-b")); /* └─ */
		free(out);
	}
	/* The root's bar spans the whole bar area. */
	char *out = render(DUMP_FMT_WATERFALL, 100, p, 1, "svc");
	const char *bar = strchr(out + strlen("trace "), '|');
	assert_non_null(bar);
	const char *end = strchr(bar + 1, '|');
	assert_non_null(end);
	for (const char *c = bar + 1; c < end; c += 3)
		assert_memory_equal(c, "\xe2\x96\x88", 3);
	free(out);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_line_escapes),
		cmocka_unit_test(test_waterfall),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
