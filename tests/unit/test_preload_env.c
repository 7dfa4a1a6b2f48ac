/* SPDX-License-Identifier: MIT */
/* TRACEPARENT in a child's environment (pl_env.c): which environments
 * change, how, and that the caller's arrays never do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "preload/pl_env.c"

#define OURS "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define INHERITED "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"
#define FOREIGN "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

static const struct pl_env_want want = {
	.tp = OURS, .ts = "vendor=x", .ours = {INHERITED, "", OURS}, .n_ours = 3};

static char **fix(char *const envp[], const struct pl_env_want *w, size_t *need)
{
	*need = pl_env_fix_size(envp, w);
	if (!*need)
		return pl_env_fix(envp, w, NULL, 0);
	void *buf = malloc(*need);
	assert_non_null(buf);
	char **out = pl_env_fix(envp, w, buf, *need);
	assert_ptr_equal(out, buf);
	return out;
}

static size_t count(char *const e[])
{
	size_t n = 0;
	while (e && e[n])
		n++;
	return n;
}

static void test_adds_when_missing(void **state)
{
	(void)state;
	char *env[] = {"A=1", "B=2", NULL};
	size_t need;
	char **out = fix(env, &want, &need);
	assert_true(need > 0);
	assert_int_equal(count(out), 4);
	assert_string_equal(out[0], "A=1");
	assert_string_equal(out[1], "B=2");
	assert_string_equal(out[2], "TRACEPARENT=" OURS);
	assert_string_equal(out[3], "TRACESTATE=vendor=x");
	/* The caller's array is as it was. */
	assert_string_equal(env[0], "A=1");
	assert_null(env[2]);
	free(out);
	/* NULL environment (execve allows it on Linux): ours only. */
	out = fix(NULL, &want, &need);
	assert_int_equal(count(out), 2);
	free(out);
}

static void test_keeps_ours_and_foreign(void **state)
{
	(void)state;
	size_t need;
	char *mine[] = {"A=1", "TRACEPARENT=" OURS, "TRACESTATE=whatever", NULL};
	assert_ptr_equal(fix(mine, &want, &need), mine);
	assert_int_equal(need, 0);
	char *theirs[] = {"TRACEPARENT=" FOREIGN, "TRACESTATE=t=1", NULL};
	assert_ptr_equal(fix(theirs, &want, &need), theirs);
	assert_int_equal(need, 0);
}

static void test_replaces_stale(void **state)
{
	(void)state;
	size_t need;
	char *env[] = {"TRACESTATE=old=1", "X=y", "TRACEPARENT=" INHERITED, "TRACEPARENT=" FOREIGN,
		       NULL};
	char **out = fix(env, &want, &need);
	assert_int_equal(count(out), 3);
	assert_string_equal(out[0], "X=y");
	assert_string_equal(out[1], "TRACEPARENT=" OURS);
	assert_string_equal(out[2], "TRACESTATE=vendor=x");
	free(out);
	/* No tracestate to give: none in the result. */
	struct pl_env_want w = want;
	w.ts = "";
	out = fix(env, &w, &need);
	assert_int_equal(count(out), 2);
	assert_string_equal(out[1], "TRACEPARENT=" OURS);
	free(out);
}

static void test_edges(void **state)
{
	(void)state;
	char *env[] = {"TRACEPARENTX=1", "TRACEPARENT", "A=1", NULL};
	size_t need;
	/* Names that only start like ours are not ours. */
	char **out = fix(env, &want, &need);
	assert_int_equal(count(out), 5);
	assert_string_equal(out[0], "TRACEPARENTX=1");
	free(out);
	/* Nothing wanted: nothing changes. */
	struct pl_env_want none = {0};
	assert_ptr_equal(pl_env_fix(env, &none, NULL, 0), env);
	assert_int_equal(pl_env_fix_size(env, &none), 0);
	/* A buffer too small: the environment as it is, untouched. */
	char small[8];
	assert_ptr_equal(pl_env_fix(env, &want, small, sizeof(small)), env);
	/* Empty strings in ours[] never match. */
	char *empty_tp[] = {"TRACEPARENT=", NULL};
	assert_int_equal(pl_env_fix_size(empty_tp, &want), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adds_when_missing),
		cmocka_unit_test(test_keeps_ours_and_foreign),
		cmocka_unit_test(test_replaces_stale),
		cmocka_unit_test(test_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
