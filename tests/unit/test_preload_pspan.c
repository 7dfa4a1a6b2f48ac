/* SPDX-License-Identifier: MIT */
/*
 * The shim's static process span (pl_pspan.c): attributes, limits, end
 * attributes and status, encoded by the library's encoder and decoded by
 * protobuf-c, field by field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "otlp_trace.pb-c.h"
#include "preload/pl_pspan.c"

typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;

static struct pl_pspan ps;

static pb_span *encode(void)
{
	static uint8_t buf[16384];
	pl_pspan_sizes(&ps);
	uint64_t end = ps.s.start_ns + 1000;
	size_t n = sr_span_size(&ps.s, end);
	assert_true(n < sizeof(buf));
	uint8_t *e = sr_encode_span(buf, &ps.s, end);
	assert_int_equal((size_t)(e - buf), n);
	pb_span *sp = opentelemetry__proto__trace__v1__span__unpack(NULL, n, buf);
	assert_non_null(sp);
	return sp;
}

static const pb_kv *attr(const pb_span *sp, const char *key)
{
	for (size_t i = 0; i < sp->n_attributes; i++)
		if (!strcmp(sp->attributes[i]->key, key))
			return sp->attributes[i];
	return NULL;
}

static void init(int argc, char *const *argv, uint32_t count_limit, uint32_t value_limit)
{
	struct pl_pspan_info in = {
		.name = "make",
		.path = "/usr/bin/make",
		.argc = argc,
		.argv = argv,
		.pid = 1234,
		.ppid = 1,
		.count_limit = count_limit,
		.value_limit = value_limit,
	};
	pl_pspan_init(&ps, &in, NULL);
	memset(ps.s.trace_id, 0xab, 16);
	memset(ps.s.span_id, 0xcd, 8);
	ps.s.start_ns = 1700000000000000000ull;
}

static void test_start_attributes(void **state)
{
	(void)state;
	char *argv[] = {"make", "-j2", "all", NULL};
	init(3, argv, 128, UINT32_MAX);
	pl_pspan_set_end(&ps, PL_END_EXIT, 0, false);
	pb_span *sp = encode();
	assert_string_equal(sp->name, "make");
	assert_int_equal(sp->kind, 1);
	assert_int_equal(attr(sp, "process.pid")->value->int_value, 1234);
	assert_int_equal(attr(sp, "process.parent_pid")->value->int_value, 1);
	assert_string_equal(attr(sp, "process.executable.name")->value->string_value, "make");
	assert_string_equal(attr(sp, "process.executable.path")->value->string_value, "/usr/bin/make");
	const pb_kv *a = attr(sp, "process.command_args");
	assert_non_null(a);
	assert_int_equal(a->value->array_value->n_values, 3);
	assert_string_equal(a->value->array_value->values[1]->string_value, "-j2");
	assert_int_equal(attr(sp, "process.exit.code")->value->int_value, 0);
	assert_string_equal(attr(sp, "spanring.process.end")->value->string_value, "exit");
	assert_null(attr(sp, "spanring.process.fork"));
	assert_null(sp->status);
	assert_int_equal(sp->dropped_attributes_count, 0);
	opentelemetry__proto__trace__v1__span__free_unpacked(sp, NULL);
}

static void test_endings(void **state)
{
	(void)state;
	char *argv[] = {"make", NULL};
	init(1, argv, 128, UINT32_MAX);
	pl_pspan_set_end(&ps, PL_END_EXIT, 2, true);
	pb_span *sp = encode();
	assert_int_equal(attr(sp, "process.exit.code")->value->int_value, 2);
	assert_true(attr(sp, "spanring.process.fork")->value->bool_value);
	assert_int_equal(sp->status->code, 2);
	assert_string_equal(sp->status->message, "exit code 2");
	opentelemetry__proto__trace__v1__span__free_unpacked(sp, NULL);

	/* Ending again replaces the end attributes (a failed exec goes on). */
	pl_pspan_set_end(&ps, PL_END_SIGNAL, SIGSEGV, false);
	sp = encode();
	assert_null(attr(sp, "process.exit.code"));
	assert_null(attr(sp, "spanring.process.fork"));
	assert_string_equal(attr(sp, "spanring.process.signal")->value->string_value, "SIGSEGV");
	assert_string_equal(attr(sp, "spanring.process.end")->value->string_value, "signal");
	assert_string_equal(sp->status->message, "terminated by SIGSEGV");
	opentelemetry__proto__trace__v1__span__free_unpacked(sp, NULL);

	pl_pspan_set_end(&ps, PL_END_SIGNAL, 63, false);
	sp = encode();
	assert_string_equal(attr(sp, "spanring.process.signal")->value->string_value, "SIG63");
	opentelemetry__proto__trace__v1__span__free_unpacked(sp, NULL);

	pl_pspan_set_end(&ps, PL_END_EXEC, 0, false);
	sp = encode();
	assert_string_equal(attr(sp, "spanring.process.end")->value->string_value, "exec");
	assert_null(sp->status);
	assert_int_equal(sp->n_attributes, ps.nkv_base + 1);
	opentelemetry__proto__trace__v1__span__free_unpacked(sp, NULL);

	pl_pspan_set_pids(&ps, 77, 66);
	sp = encode();
	assert_int_equal(attr(sp, "process.pid")->value->int_value, 77);
	assert_int_equal(attr(sp, "process.parent_pid")->value->int_value, 66);
	opentelemetry__proto__trace__v1__span__free_unpacked(sp, NULL);
}

static void test_limits(void **state)
{
	(void)state;
	/* Count limit 3: the first three start attributes, the rest counted. */
	char *argv[] = {"a", "b", NULL};
	init(2, argv, 3, UINT32_MAX);
	pl_pspan_set_end(&ps, PL_END_EXIT, 1, false);
	pb_span *sp = encode();
	assert_int_equal(sp->n_attributes, 3);
	assert_int_equal(sp->dropped_attributes_count, 4); /* path, args, end, exit.code */
	assert_int_equal(sp->status->code, 2);
	opentelemetry__proto__trace__v1__span__free_unpacked(sp, NULL);

	/* Value length limit 4: strings and array items cut, at UTF-8 boundaries. */
	char *argv2[] = {"abcdefgh", "\xc3\xa9\xc3\xa9\xc3\xa9", "\xff\xfe" "bad", NULL};
	init(3, argv2, 128, 4);
	pl_pspan_set_end(&ps, PL_END_EXIT, 0, false);
	sp = encode();
	assert_string_equal(attr(sp, "process.executable.path")->value->string_value, "/usr");
	const pb_kv *a = attr(sp, "process.command_args");
	assert_string_equal(a->value->array_value->values[0]->string_value, "abcd");
	assert_string_equal(a->value->array_value->values[1]->string_value, "\xc3\xa9\xc3\xa9");
	/* Not UTF-8: the valid prefix (empty here). */
	assert_string_equal(a->value->array_value->values[2]->string_value, "");
	opentelemetry__proto__trace__v1__span__free_unpacked(sp, NULL);
}

static void test_args_bound(void **state)
{
	(void)state;
	/* 100 arguments of 100 bytes: only those that end within 4 KiB, at most 64. */
	static char big[100][101];
	char *argv[101];
	for (int i = 0; i < 100; i++) {
		memset(big[i], 'a' + i % 26, 100);
		big[i][100] = '\0';
		argv[i] = big[i];
	}
	argv[100] = NULL;
	init(100, argv, 128, UINT32_MAX);
	pl_pspan_set_end(&ps, PL_END_EXIT, 0, false);
	pb_span *sp = encode();
	const pb_kv *a = attr(sp, "process.command_args");
	assert_int_equal(a->value->array_value->n_values, PL_ARGS_BYTES / 101);
	opentelemetry__proto__trace__v1__span__free_unpacked(sp, NULL);

	char *many[80];
	for (int i = 0; i < 79; i++)
		many[i] = "x";
	many[79] = NULL;
	init(79, many, 128, UINT32_MAX);
	sp = encode();
	a = attr(sp, "process.command_args");
	assert_int_equal(a->value->array_value->n_values, PL_ARGS_MAX);
	opentelemetry__proto__trace__v1__span__free_unpacked(sp, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_attributes),
		cmocka_unit_test(test_endings),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_args_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
