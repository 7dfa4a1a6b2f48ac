/* SPDX-License-Identifier: MIT */
/*
 * Rate-limited log lines per owner (agent/log.c, AGENT_LOG_RL_OF): one call
 * site used for two exporter instances limits each on its own. A dead
 * backend flooding a site must not silence a healthy instance's line
 * there, nor have that line counted among its own "similar messages".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

static char out_path[] = "/tmp/spanring-log-rl-test.XXXXXX";
static int saved_stderr = -1;

/* The agent's log lines (stderr) go to a file the test reads back. */
static int setup(void **state)
{
	(void)state;
	int fd = mkstemp(out_path);
	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	unlink(out_path);
	return 0;
}

/* How many lines logged so far contain needle. */
static int lines_with(const char *needle)
{
	fflush(stderr);
	FILE *f = fopen(out_path, "r");
	assert_non_null(f);
	char line[512];
	int n = 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* One call site, as an exporter's: the owner's limiters and its name. */
static void let_go_line(struct agent_log_rls *rls, const char *name)
{
	AGENT_LOG_RL_OF(rls, AGENT_LOG_WARN, "exporter %s: letting go", name);
}

static void other_line(struct agent_log_rls *rls, const char *name)
{
	AGENT_LOG_RL_OF(rls, AGENT_LOG_WARN, "exporter %s: another site", name);
}

static void one_site_two_owners(void **state)
{
	(void)state;
	struct agent_log_rls dead = {0}, healthy = {0};
	for (int i = 0; i < 50; i++)
		let_go_line(&dead, "otlp_http/c");
	assert_int_equal(lines_with("otlp_http/c: letting go"), AGENT_LOG_RL_BURST);
	/* the healthy instance's one line gets through, and carries no count
	 * of the other's suppressed lines */
	let_go_line(&healthy, "otlp_http/a");
	assert_int_equal(lines_with("otlp_http/a: letting go"), 1);
	assert_int_equal(lines_with("similar messages suppressed"), 0);
	/* another site of the flooding owner has its own limit too */
	other_line(&dead, "otlp_http/c");
	assert_int_equal(lines_with("otlp_http/c: another site"), 1);
}

static void sites_past_the_table_share_the_last(void **state)
{
	(void)state;
	struct agent_log_rls rls = {0};
	int marks[AGENT_LOG_RL_SITES + 2];
	for (int i = 0; i < AGENT_LOG_RL_SITES + 2; i++)
		assert_ptr_equal(agent_log_rl_of(&rls, &marks[i]),
				 &rls.rl[i < AGENT_LOG_RL_SITES ? i : AGENT_LOG_RL_SITES - 1]);
	/* a site seen before finds its own limiter again */
	assert_ptr_equal(agent_log_rl_of(&rls, &marks[3]), &rls.rl[3]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_site_two_owners),
		cmocka_unit_test(sites_past_the_table_share_the_last),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
