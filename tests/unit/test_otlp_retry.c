/* SPDX-License-Identifier: MIT */
/*
 * The OTLP retry policy: which HTTP statuses and gRPC codes are retried
 * (the OTLP specification's tables), Retry-After in both forms, the
 * exponential backoff with jitter, and the retry budget.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "otlp_retry.h"

static void test_http_table(void **state)
{
	(void)state;
	for (int s = 100; s < 600; s++) {
		bool want = s == 429 || s == 502 || s == 503 || s == 504;
		assert_int_equal(otlp_http_retryable(s), want);
	}
}

static void test_grpc_table(void **state)
{
	(void)state;
	/* the specification's table: code -> retryable */
	static const int yes[] = {GRPC_CANCELLED, GRPC_DEADLINE_EXCEEDED, GRPC_ABORTED,
				  GRPC_OUT_OF_RANGE, GRPC_UNAVAILABLE, GRPC_DATA_LOSS};
	for (int c = 0; c <= 16; c++) {
		bool want = false;
		for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
			want |= c == yes[i];
		assert_int_equal(otlp_grpc_retryable(c, false), want);
		if (c == GRPC_RESOURCE_EXHAUSTED)
			assert_true(otlp_grpc_retryable(c, true));
		else
			assert_int_equal(otlp_grpc_retryable(c, true), want);
	}
	assert_string_equal(otlp_grpc_code_name(GRPC_UNAVAILABLE), "UNAVAILABLE");
	assert_string_equal(otlp_grpc_code_name(99), "UNKNOWN_CODE");
	assert_int_equal(otlp_grpc_code_from_http(503), GRPC_UNAVAILABLE);
	assert_int_equal(otlp_grpc_code_from_http(404), GRPC_UNIMPLEMENTED);
	assert_int_equal(otlp_grpc_code_from_http(400), GRPC_INTERNAL);
	assert_int_equal(otlp_grpc_code_from_http(418), GRPC_UNKNOWN);
}

static void test_retry_after(void **state)
{
	(void)state;
	uint64_t d;
	const time_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
	assert_int_equal(otlp_retry_after_parse("120", 3, now, &d), 0);
	assert_int_equal(d, 120000000000ull);
	assert_int_equal(otlp_retry_after_parse(" 0 ", 3, now, &d), 0);
	assert_int_equal(d, 0);
	/* a huge value is clamped, never overflows */
	assert_int_equal(otlp_retry_after_parse("99999999999999999999", 20, now, &d), 0);
	assert_int_equal(d, 100000000ull * 1000000000ull);
	/* the three HTTP-date forms, 10 s ahead */
	const char *dates[] = {"Sun, 06 Nov 1994 08:49:47 GMT", "Sunday, 06-Nov-94 08:49:47 GMT",
			       "Sun Nov  6 08:49:47 1994"};
	for (size_t i = 0; i < 3; i++) {
		d = 1;
		assert_int_equal(otlp_retry_after_parse(dates[i], strlen(dates[i]), now, &d), 0);
		assert_int_equal(d, 10000000000ull);
	}
	/* in the past: at once */
	const char *past = "Sun, 06 Nov 1994 08:00:00 GMT";
	assert_int_equal(otlp_retry_after_parse(past, strlen(past), now, &d), 0);
	assert_int_equal(d, 0);
	static const char *const bad[] = {"", "-1", "1.5", "abc", "12s", "Sun, 06 Nov 1994",
					  "Sun, 06 Nov 1994 08:49:47 PST"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(otlp_retry_after_parse(bad[i], strlen(bad[i]), now, &d), -1);
	/* the length is honoured (not NUL-terminated input) */
	assert_int_equal(otlp_retry_after_parse("15junk", 2, now, &d), 0);
	assert_int_equal(d, 15000000000ull);
}

static void test_backoff(void **state)
{
	(void)state;
	const uint64_t ms = 1000000ull;
	/* jitter keeps every delay within [0.8, 1.2) of the base */
	for (uint32_t a = 1; a <= 12; a++) {
		uint64_t base = 100 * ms;
		for (uint32_t i = 1; i < a && base < 5000 * ms; i++)
			base *= 2;
		if (base > 5000 * ms)
			base = 5000 * ms;
		uint64_t lo = otlp_backoff_ns(100 * ms, 5000 * ms, a, 0);
		uint64_t hi = otlp_backoff_ns(100 * ms, 5000 * ms, a, UINT64_MAX);
		assert_int_equal(lo, base - base / 5);
		assert_true(hi < base + base / 5);
		assert_true(hi >= lo);
		for (uint64_t r = 1; r < 1000000; r = r * 7 + 3) {
			uint64_t d = otlp_backoff_ns(100 * ms, 5000 * ms, a, r);
			assert_true(d >= lo && d < base + base / 5);
		}
	}
	/* doubling: 100, 200, 400, 800 ms at the jitter floor */
	assert_int_equal(otlp_backoff_ns(100 * ms, 10000 * ms, 4, 0), 800 * ms * 4 / 5);
	/* no overflow for absurd attempt numbers */
	assert_int_equal(otlp_backoff_ns(1000 * ms, 30000 * ms, 4000000000u, 0), 30000 * ms * 4 / 5);
	/* budget */
	assert_true(otlp_retry_in_budget(100, 100 + 30, 30));
	assert_false(otlp_retry_in_budget(100, 100 + 31, 30));
	assert_false(otlp_retry_in_budget(100, 99, 30));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_table),
		cmocka_unit_test(test_grpc_table),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_backoff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
