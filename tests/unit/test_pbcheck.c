/* SPDX-License-Identifier: MIT */
/*
 * Regression: a span made of deeply nested AnyValue arrays crashed
 * protobuf-c's unpack (unbounded recursion) in the agent's console/JSON
 * exporters and scope check. sr_pb_unpack refuses it; normal spans decode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "otlp_trace.pb-c.h"
#include "pbcheck.h"
#include "pbwire.h"

/* Span { attributes: KeyValue { key "k", value: AnyValue { array: ArrayValue {
 * values: AnyValue { array ... } } } } } with `depth` arrays, built inside out. */
static uint8_t *nested_span(int depth, size_t *len)
{
	size_t cap = (size_t)depth * 12 + 64;
	uint8_t *buf = malloc(cap), *end = buf + cap, *p = end;
	/* innermost AnyValue: int 1 */
	*--p = 1;
	*--p = 0x18;
	for (int i = 0; i < depth; i++) {
		size_t any = (size_t)(end - p);
		/* ArrayValue { values(1) = any } */
		uint8_t tmp[10], *q = pb_put_varint(tmp, any);
		p -= q - tmp;
		memcpy(p, tmp, (size_t)(q - tmp));
		*--p = 0x0a;
		size_t arr = (size_t)(end - p);
		/* AnyValue { array_value(5) = arr } */
		q = pb_put_varint(tmp, arr);
		p -= q - tmp;
		memcpy(p, tmp, (size_t)(q - tmp));
		*--p = 0x2a;
	}
	size_t anyv = (size_t)(end - p);
	uint8_t tmp[10], *q = pb_put_varint(tmp, anyv);
	p -= q - tmp;
	memcpy(p, tmp, (size_t)(q - tmp));
	*--p = 0x12; /* KeyValue.value */
	*--p = 'k';
	*--p = 1;
	*--p = 0x0a; /* KeyValue.key */
	size_t kv = (size_t)(end - p);
	q = pb_put_varint(tmp, kv);
	p -= q - tmp;
	memcpy(p, tmp, (size_t)(q - tmp));
	*--p = 0x4a; /* Span.attributes */
	*len = (size_t)(end - p);
	memmove(buf, p, *len);
	return buf;
}

static void test_nesting_bomb_refused(void **state)
{
	(void)state;
	size_t n;
	uint8_t *b = nested_span(100000, &n);
	assert_false(sr_pb_nesting_ok(&opentelemetry__proto__trace__v1__span__descriptor, b, n,
				      SR_PB_MAX_NESTING));
	assert_null(sr_pb_unpack(&opentelemetry__proto__trace__v1__span__descriptor, b, n));
	free(b);
}

static void test_reasonable_nesting_decodes(void **state)
{
	(void)state;
	size_t n;
	uint8_t *b = nested_span(8, &n);
	Opentelemetry__Proto__Trace__V1__Span *s =
		(void *)sr_pb_unpack(&opentelemetry__proto__trace__v1__span__descriptor, b, n);
	assert_non_null(s);
	assert_int_equal(s->n_attributes, 1);
	assert_string_equal(s->attributes[0]->key, "k");
	opentelemetry__proto__trace__v1__span__free_unpacked(s, NULL);
	free(b);
	/* Truncated framing is refused too. */
	b = nested_span(8, &n);
	assert_null(sr_pb_unpack(&opentelemetry__proto__trace__v1__span__descriptor, b, n - 1));
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nesting_bomb_refused),
		cmocka_unit_test(test_reasonable_nesting_decodes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
