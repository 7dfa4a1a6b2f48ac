/* SPDX-License-Identifier: MIT */
/* The LD_PRELOAD shim's settings and the decision to stay inert (pl_cfg.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "preload/pl_cfg.c"

static void test_defaults(void **state)
{
	(void)state;
	struct pl_config c;
	pl_config_parse(&c, NULL, NULL, NULL, NULL, NULL);
	assert_int_equal(c.trace, PL_T_DEFAULT);
	assert_int_equal(c.trace, PL_T_PROCESS | PL_T_EXEC | PL_T_DNS | PL_T_CONNECT);
	assert_int_equal(c.min_duration_ns, 0);
	assert_int_equal(c.signals, PL_SIG_ALL);
	assert_int_equal(c.exit_timeout_ms, 500);
	assert_false(c.debug);
	assert_int_equal(c.bad, 0);
	pl_config_parse(&c, "", "", "", "", "");
	assert_int_equal(c.trace, PL_T_DEFAULT);
	assert_int_equal(c.bad, 0);
	assert_false(c.debug);
}

static void test_trace_lists(void **state)
{
	(void)state;
	struct pl_config c;
	pl_config_parse(&c, "process,exec", NULL, NULL, NULL, NULL);
	assert_int_equal(c.trace, PL_T_PROCESS | PL_T_EXEC);
	pl_config_parse(&c, " dns , connect ", NULL, NULL, NULL, NULL);
	assert_int_equal(c.trace, PL_T_DNS | PL_T_CONNECT);
	pl_config_parse(&c, "all", NULL, NULL, NULL, NULL);
	assert_int_equal(c.trace, PL_T_ALL);
	pl_config_parse(&c, "all,-fsync", NULL, NULL, NULL, NULL);
	assert_int_equal(c.trace, PL_T_ALL & ~PL_T_FSYNC);
	/* Removals only: from the default. */
	pl_config_parse(&c, "-connect", NULL, NULL, NULL, NULL);
	assert_int_equal(c.trace, PL_T_DEFAULT & ~PL_T_CONNECT);
	pl_config_parse(&c, "default,wait", NULL, NULL, NULL, NULL);
	assert_int_equal(c.trace, PL_T_DEFAULT | PL_T_WAIT);
	pl_config_parse(&c, "none", NULL, NULL, NULL, NULL);
	assert_int_equal(c.trace, 0);
	pl_config_parse(&c, "PROCESS:Dns", NULL, NULL, NULL, NULL);
	assert_int_equal(c.trace, PL_T_PROCESS | PL_T_DNS);
	/* Unknown names are ignored and reported. */
	pl_config_parse(&c, "process,bogus", NULL, NULL, NULL, NULL);
	assert_int_equal(c.trace, PL_T_PROCESS);
	assert_true(c.bad & 1);
	pl_config_parse(&c, "proc", NULL, NULL, NULL, NULL);
	assert_int_equal(c.trace, 0);
	assert_true(c.bad & 1);
}

static void test_numbers(void **state)
{
	(void)state;
	struct pl_config c;
	pl_config_parse(&c, NULL, "250", "crash", "0", "1");
	assert_int_equal(c.min_duration_ns, 250000);
	assert_int_equal(c.signals, PL_SIG_CRASH);
	assert_int_equal(c.exit_timeout_ms, 0);
	assert_true(c.debug);
	pl_config_parse(&c, NULL, "-1", "sometimes", "1e3", "0");
	assert_int_equal(c.min_duration_ns, 0);
	assert_int_equal(c.signals, PL_SIG_ALL);
	assert_int_equal(c.exit_timeout_ms, 500);
	assert_false(c.debug);
	assert_int_equal(c.bad, (1u << 1) | (1u << 2) | (1u << 3));
	pl_config_parse(&c, NULL, "99999999999999999999", "NONE", "3600001", NULL);
	assert_int_equal(c.min_duration_ns, 0);
	assert_int_equal(c.signals, PL_SIG_NONE);
	assert_int_equal(c.exit_timeout_ms, 500);
	assert_int_equal(c.bad, (1u << 1) | (1u << 3));
}

static void test_lists(void **state)
{
	(void)state;
	assert_true(pl_name_listed("make", "cc,make"));
	assert_true(pl_name_listed("cc1plus", "cc1*"));
	assert_true(pl_name_listed("python3.11", "sh python3.*"));
	assert_false(pl_name_listed("make", "cc,gmake"));
	assert_false(pl_name_listed("make", ""));
	assert_false(pl_name_listed("make", NULL));
	assert_false(pl_name_listed(NULL, "make"));
}

static void test_inert(void **state)
{
	(void)state;
	assert_null(pl_inert_reason(0, NULL, "make", NULL, PL_T_DEFAULT));
	assert_non_null(pl_inert_reason(1, NULL, "make", NULL, PL_T_DEFAULT));
	assert_string_equal(pl_inert_reason(1, NULL, "su", NULL, PL_T_DEFAULT),
			    "secure execution (AT_SECURE)");
	assert_non_null(pl_inert_reason(0, "true", "make", NULL, PL_T_DEFAULT));
	assert_non_null(pl_inert_reason(0, "True", "make", NULL, PL_T_DEFAULT));
	assert_null(pl_inert_reason(0, "false", "make", NULL, PL_T_DEFAULT));
	assert_null(pl_inert_reason(0, "1", "make", NULL, PL_T_DEFAULT));
	assert_non_null(pl_inert_reason(0, NULL, "spanring-agent", NULL, PL_T_DEFAULT));
	assert_non_null(pl_inert_reason(0, NULL, "spanring-dump", NULL, PL_T_DEFAULT));
	assert_non_null(pl_inert_reason(0, NULL, "make", "gcc,make", PL_T_DEFAULT));
	assert_non_null(pl_inert_reason(0, NULL, "make", NULL, 0));
	assert_null(pl_inert_reason(0, NULL, NULL, NULL, PL_T_DNS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults), cmocka_unit_test(test_trace_lists),
		cmocka_unit_test(test_numbers),  cmocka_unit_test(test_lists),
		cmocka_unit_test(test_inert),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
