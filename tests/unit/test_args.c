/* SPDX-License-Identifier: MIT */
/*
 * process.command_args redaction (lib/args.c, SPANRING_COMMAND_ARGS): the
 * modes, and the rule argument by argument, as a command line goes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "resource.h"

/* The redacted form of argv, joined with single spaces. */
static const char *redact(const char *const *argv)
{
	static char line[1024];
	size_t n = 0;
	bool hide = false;
	for (size_t i = 0; argv[i]; i++) {
		char out[256];
		size_t k = sr_arg_redact(argv[i], strlen(argv[i]), hide, out, sizeof(out), &hide);
		assert_true(k != SIZE_MAX);
		if (i)
			line[n++] = ' ';
		memcpy(line + n, out, k);
		n += k;
	}
	line[n] = '\0';
	return line;
}

#define R(...) redact((const char *const[]){__VA_ARGS__, NULL})

static void test_modes(void **state)
{
	(void)state;
	bool bad;
	assert_int_equal(sr_args_mode_parse(NULL, &bad), SR_ARGS_REDACTED);
	assert_false(bad);
	assert_int_equal(sr_args_mode_parse("", &bad), SR_ARGS_REDACTED);
	assert_int_equal(sr_args_mode_parse("redacted", &bad), SR_ARGS_REDACTED);
	assert_int_equal(sr_args_mode_parse("FULL", &bad), SR_ARGS_FULL);
	assert_false(bad);
	assert_int_equal(sr_args_mode_parse("off", &bad), SR_ARGS_OFF);
	assert_int_equal(sr_args_mode_parse("none", &bad), SR_ARGS_REDACTED);
	assert_true(bad);
}

static void test_rule(void **state)
{
	(void)state;
	/* Values attached to a key name. */
	assert_string_equal(R("mysql", "--password=hunter2", "-u", "bob"),
			    "mysql --password=REDACTED -u bob");
	assert_string_equal(R("x", "--api-key=abc", "--Token=t", "-secret=s", "PGPASSWORD=p"),
			    "x --api-key=REDACTED --Token=REDACTED -secret=REDACTED PGPASSWORD=REDACTED");
	assert_string_equal(R("curl", "-H", "Authorization: Bearer abc"),
			    "curl -H Authorization:REDACTED");
	assert_string_equal(R("openssl", "enc", "-pass", "pass:s3cret"),
			    "openssl enc -pass REDACTED");
	assert_string_equal(R("x", "--passwd="), "x --passwd=");
	/* Values following a key-named option. */
	assert_string_equal(R("tool", "--token", "abc", "--verbose", "file"),
			    "tool --token REDACTED --verbose file");
	assert_string_equal(R("tool", "--credentials", "--dry-run", "x"),
			    "tool --credentials --dry-run x");
	assert_string_equal(R("tool", "--auth", "--cookie", "c", "y"),
			    "tool --auth --cookie REDACTED y");
	/* User information in URLs, wherever it is. */
	assert_string_equal(R("git", "clone", "https://bob:pw@example.com/r.git"),
			    "git clone https://REDACTED@example.com/r.git");
	assert_string_equal(R("x", "--db=postgres://u:p@h:5432/db?sslmode=x"),
			    "x --db=postgres://REDACTED@h:5432/db?sslmode=x");
	assert_string_equal(R("x", "a=https://tok@h/ b", "ftp://h/p@x"),
			    "x a=https://REDACTED@h/ b ftp://h/p@x");
	/* Left alone: no key word, the program's name, single-letter options. */
	assert_string_equal(R("/usr/bin/ssh-keygen", "-f", "id", "--user=bob", "https://h/x"),
			    "/usr/bin/ssh-keygen -f id --user=bob https://h/x");
	assert_string_equal(R("mysql", "-psecret", "-p", "x"), "mysql -psecret -p x");
}

static void test_bounds(void **state)
{
	(void)state;
	char out[16];
	bool hide;
	assert_int_equal(sr_arg_redact("--token=abc", 11, false, out, 10, &hide), SIZE_MAX);
	assert_int_equal(sr_arg_redact("--token=abc", 11, false, out, 16, &hide), 16);
	assert_memory_equal(out, "--token=REDACTED", 16);
	assert_int_equal(sr_arg_redact("x", 1, true, out, 7, &hide), SIZE_MAX);
	assert_int_equal(sr_arg_redact("", 0, false, out, 0, &hide), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_rule),
		cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
