/* SPDX-License-Identifier: MIT */
/*
 * Agent configuration: every kind of invalid setting is refused with a
 * message naming the key, the value and (for files) the line; valid files
 * and flags set what they say; --help documents every key; the parser
 * survives arbitrary bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"

static int parse(struct agent_config *c, const char *text, char *err, size_t n)
{
	return agent_config_parse_file(c, text, strlen(text), "test.conf", err, n);
}

/* A file with one bad line: refused, message names key, value, line. */
static void bad_line(const char *line, const char *part1, const char *part2)
{
	struct agent_config c;
	agent_config_defaults(&c);
	char text[512], err[512] = "";
	snprintf(text, sizeof(text), "# comment\n\nlog_level = warn\n%s\n", line);
	int r = parse(&c, text, err, sizeof(err));
	if (r == 0 || !strstr(err, "test.conf:4:") || !strstr(err, part1) ||
	    (part2 && !strstr(err, part2))) {
		fprintf(stderr, "line '%s': r=%d err='%s' (want '%s' '%s')\n", line, r, err, part1,
			part2 ? part2 : "");
		fail();
	}
	agent_config_free(&c);
}

static void test_invalid_values(void **state)
{
	(void)state;
	bad_line("no_such_key = 1", "unknown key 'no_such_key'", NULL);
	bad_line("just some words", "expected 'key = value'", NULL);
	bad_line("= 5", "missing key", NULL);
	bad_line("socket =", "key 'socket': empty value", NULL);
	bad_line("socket_mode = 0999", "key 'socket_mode'", "'0999'");
	bad_line("socket_mode = 01777", "key 'socket_mode'", "octal");
	bad_line("control_socket_mode = rw", "key 'control_socket_mode'", "'rw'");
	bad_line("allow_uids = 0,abc", "key 'allow_uids'", "'0,abc'");
	bad_line("allow_uids = 1,,2", "key 'allow_uids'", NULL);
	bad_line("allow_gids = -1", "key 'allow_gids'", "'-1'");
	bad_line("allow_gids = 4294967295", "key 'allow_gids'", NULL);
	bad_line("max_producers = 0", "key 'max_producers'", "from 1 to 1000000");
	bad_line("max_producers = 12x", "key 'max_producers'", "'12x'");
	bad_line("max_producers_per_uid = 99999999999999999999", "max_producers_per_uid", NULL);
	bad_line("max_mapped_per_uid = 1Q", "key 'max_mapped_per_uid'", "'1Q'");
	bad_line("max_mapped_per_uid = 1K", "key 'max_mapped_per_uid'", "from 65536");
	bad_line("max_scope_bytes = 1K", "key 'max_scope_bytes'", "from 4096");
	bad_line("max_scope_bytes = 2M", "key 'max_scope_bytes'", "to 1048576");
	/* Output files: read and write bits only (issue 14 R5a). */
	bad_line("output_mode = 0777", "key 'output_mode'", "within 0666");
	bad_line("output_mode = 0601", "key 'output_mode'", "'0601'");
	bad_line("output_mode = 4600", "key 'output_mode'", NULL);
	bad_line("output_mode = 600x", "key 'output_mode'", "octal");
	bad_line("registration_timeout = 5", "key 'registration_timeout'", "with a unit");
	bad_line("registration_timeout = 5 s", "key 'registration_timeout'", NULL);
	bad_line("log_level = loud", "key 'log_level'", "'loud'");
	bad_line("poll_interval_min = 10us", "key 'poll_interval_min'", "from 50us");
	bad_line("poll_interval_max = 1h", "key 'poll_interval_max'", NULL);
	bad_line("batch_max_bytes = 1", "key 'batch_max_bytes'", "from 4096");
	bad_line("batch_max_bytes = 1T", "key 'batch_max_bytes'", NULL);
	bad_line("batch_max_age = 2 ms", "key 'batch_max_age'", "'2 ms'");
	bad_line("batch_max_age = 2min", "key 'batch_max_age'", NULL);
	bad_line("latency_bound = soon", "key 'latency_bound'", "'soon'");
	bad_line("latency_bound = 10", "key 'latency_bound'", "with a unit");
	bad_line("latency_bound = 61s", "key 'latency_bound'", NULL);
	bad_line("max_inflight_batches = 0", "key 'max_inflight_batches'", NULL);
	bad_line("watermark_pct = 101", "key 'watermark_pct'", "'101'");
	bad_line("watermark_pct = 0", "key 'watermark_pct'", NULL);
	bad_line("metrics_port = 65536", "key 'metrics_port'", "'65536'");
	bad_line("exporters = file,kafka", "key 'exporters'", "unknown exporter 'kafka'");
	bad_line("exporters = file;json", "key 'exporters'", NULL);
	bad_line("file.rotate_bytes = lots", "key 'file.rotate_bytes'", "'lots'");
	bad_line("file.rotate_keep = 1001", "key 'file.rotate_keep'", NULL);
	bad_line("json.rotate_keep = x", "key 'json.rotate_keep'", NULL);
	bad_line("export_retry_max = forever", "key 'export_retry_max'", NULL);
	bad_line("shutdown_timeout = 2d", "key 'shutdown_timeout'", NULL);
	bad_line("debug_zero_copy_check = maybe", "key 'debug_zero_copy_check'", "'maybe'");
	bad_line("file.path = \"unterminated", "unterminated quote", NULL);
	bad_line("Socket = /x", "unknown key 'Socket'", NULL);
}

static void test_valid_file(void **state)
{
	(void)state;
	struct agent_config c;
	agent_config_defaults(&c);
	char err[512] = "";
	const char *text = "  # spanring agent\n"
			   "; another comment\n"
			   "socket = /tmp/x.sock\r\n"
			   "socket_mode=0660\n"
			   "allow_uids = 0, 1000 ,1001\n"
			   "allow_gids =\n"
			   "log_level = DEBUG\n"
			   "poll_interval_min = 500us\n"
			   "poll_interval_max = 1s\n"
			   "batch_max_bytes = 512K\n"
			   "batch_max_age = 0\n"
			   "max_mapped_per_uid = 2GiB\n"
			   "exporters = file, json\n"
			   "file.path = \"/var/tmp/a b.pb\"\n"
			   "registration_timeout = 1500000ns\n"
			   "debug_zero_copy_check = on\n"
			   "output_mode = 0640\n"
			   "max_scope_bytes = 1M\n"
			   "host_id = 0123abcd\n"
			   "metrics_port = 9464";
	assert_int_equal(parse(&c, text, err, sizeof(err)), 0);
	assert_string_equal(c.socket_path, "/tmp/x.sock");
	assert_int_equal(c.socket_mode, 0660);
	assert_int_equal(c.n_allow_uids, 3);
	assert_int_equal(c.allow_uids[1], 1000);
	assert_int_equal(c.n_allow_gids, 0);
	assert_int_equal(c.log_level, AGENT_LOG_DEBUG);
	assert_int_equal(c.poll_min_us, 500);
	assert_int_equal(c.poll_max_us, 1000000);
	assert_int_equal(c.batch_max_bytes, 512 * 1024);
	assert_int_equal(c.batch_max_age_us, 0);
	assert_int_equal(c.max_mapped_per_uid, 2ull << 30);
	assert_int_equal(c.output_mode, 0640);
	assert_int_equal(c.max_scope_bytes, 1u << 20);
	assert_string_equal(c.host_id, "0123abcd");
	assert_int_equal(c.exporters, AGENT_EXP_FILE | AGENT_EXP_JSON);
	assert_string_equal(c.file_path, "/var/tmp/a b.pb");
	assert_int_equal(c.reg_timeout_us, 1500);
	assert_true(c.zc_check);
	assert_int_equal(c.metrics_port, 9464);
	assert_int_equal(agent_config_finish(&c, err, sizeof(err)), 0);
	assert_string_equal(c.ctl_path, "/tmp/x.sock.ctl");
	agent_config_free(&c);
}

static void test_flags(void **state)
{
	(void)state;
	char path[] = "/tmp/spanring-cfg-XXXXXX";
	int fd = mkstemp(path);
	const char *file = "batch_max_age = 7ms\nwatermark_pct = 70\nexporters = json\n";
	assert_int_equal(write(fd, file, strlen(file)), (ssize_t)strlen(file));
	close(fd);
	char *argv[] = {"agent",	    "--batch-max-age=3ms", "-s",	 "/tmp/f.sock",
			"--config",	    path,		   "--file",	 "/tmp/o.pb",
			"--exporter",	    "console:/tmp/c.txt",  "--metrics_port", "1234",
			"-l",		    "error",		   "--check-config", NULL};
	int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
	struct agent_config c;
	agent_config_defaults(&c);
	char err[512] = "";
	int action;
	assert_int_equal(agent_config_parse_args(&c, argc, argv, &action, err, sizeof(err)), 0);
	assert_int_equal(action, AGENT_CFG_CHECK);
	assert_int_equal(c.batch_max_age_us, 3000);   /* flag beats the file */
	/* latency_bound is the same setting under its new name */
	char *argv2[] = {"agent", "--latency-bound", "25ms", "--check-config", NULL};
	struct agent_config c2;
	agent_config_defaults(&c2);
	assert_int_equal(c2.batch_max_age_us, 10000); /* default 10 ms */
	assert_int_equal(agent_config_parse_args(&c2, 4, argv2, &action, err, sizeof(err)), 0);
	assert_int_equal(c2.batch_max_age_us, 25000);
	agent_config_free(&c2);
	assert_int_equal(c.watermark_pct, 70);       /* from the file */
	assert_string_equal(c.socket_path, "/tmp/f.sock");
	assert_string_equal(c.file_path, "/tmp/o.pb");
	assert_string_equal(c.console_path, "/tmp/c.txt");
	assert_int_equal(c.exporters, AGENT_EXP_JSON | AGENT_EXP_FILE | AGENT_EXP_CONSOLE);
	assert_int_equal(c.metrics_port, 1234);
	assert_int_equal(c.log_level, AGENT_LOG_ERROR);
	agent_config_free(&c);

	struct {
		char *args[4];
		const char *part;
	} bad[] = {
		{{"agent", "--bogus=1", NULL}, "unknown option '--bogus=1'"},
		{{"agent", "--batch-max-age", NULL}, "needs a value"},
		{{"agent", "--batch-max-age=x", NULL}, "key 'batch_max_age': invalid value 'x'"},
		{{"agent", "stray", NULL}, "unexpected argument 'stray'"},
		{{"agent", "--exporter", "kafka", NULL}, "unknown exporter 'kafka'"},
		{{"agent", "--exporter", "null:/x", NULL}, "takes no path"},
		{{"agent", "-c", "/nonexistent/spanring.conf", NULL}, "/nonexistent/spanring.conf"},
		{{"agent", "--config", NULL}, "missing file name"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = 0;
		while (bad[i].args[n])
			n++;
		agent_config_defaults(&c);
		err[0] = 0;
		int r = agent_config_parse_args(&c, n, bad[i].args, &action, err, sizeof(err));
		if (r == 0 || !strstr(err, bad[i].part)) {
			fprintf(stderr, "case %zu: r=%d err='%s' want '%s'\n", i, r, err, bad[i].part);
			fail();
		}
		agent_config_free(&c);
	}
	unlink(path);
}

static void test_finish_checks(void **state)
{
	(void)state;
	struct agent_config c;
	char err[512];
	agent_config_defaults(&c);
	c.poll_min_us = 10000;
	c.poll_max_us = 1000;
	assert_int_equal(agent_config_finish(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "poll_interval_min"));
	agent_config_free(&c);

	agent_config_defaults(&c);
	assert_int_equal(agent_config_set(&c, "exporters", "file", err, sizeof(err)), 0);
	assert_int_equal(agent_config_set(&c, "file.path", "-", err, sizeof(err)), 0);
	assert_int_equal(agent_config_finish(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "file.path"));
	agent_config_free(&c);

	agent_config_defaults(&c);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	assert_int_equal(agent_config_set(&c, "socket", longp, err, sizeof(err)), 0);
	assert_int_equal(agent_config_finish(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than a unix socket address"));
	agent_config_free(&c);

	/* Defaults: socket from $SPANRING_SOCKET, console exporter. */
	setenv("SPANRING_SOCKET", "/tmp/env.sock", 1);
	agent_config_defaults(&c);
	assert_int_equal(agent_config_finish(&c, err, sizeof(err)), 0);
	assert_string_equal(c.socket_path, "/tmp/env.sock");
	assert_string_equal(c.ctl_path, "/tmp/env.sock.ctl");
	assert_true(c.exporters & AGENT_EXP_CONSOLE);
	agent_config_free(&c);
	unsetenv("SPANRING_SOCKET");
}

static void test_help_lists_every_key(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	agent_config_usage(f);
	fclose(f);
	const char *keys[] = {"socket",
			      "socket_mode",
			      "control_socket",
			      "allow_uids",
			      "allow_gids",
			      "max_producers",
			      "max_producers_per_uid",
			      "max_mapped_per_uid",
			      "registration_timeout",
			      "log_level",
			      "poll_interval_min",
			      "poll_interval_max",
			      "batch_max_bytes",
			      "batch_max_age",
			      "max_inflight_batches",
			      "watermark_pct",
			      "metrics_port",
			      "exporters",
			      "file.path",
			      "file.rotate_bytes",
			      "file.rotate_keep",
			      "json.path",
			      "console.path",
			      "export_retry_max",
			      "shutdown_timeout",
			      "host_name",
			      "host_id",
			      "output_mode",
			      "max_scope_bytes",
			      "debug_zero_copy_check",
			      "--config",
			      "--check-config",
			      "SIGHUP"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char pat[64];
		snprintf(pat, sizeof(pat), "%s", keys[i]);
		if (!strstr(buf, pat)) {
			fprintf(stderr, "--help lacks %s\n", keys[i]);
			fail();
		}
	}
	free(buf);
}

/* Arbitrary bytes: an error or success, never a crash or a leak. */
static void test_parser_random_bytes(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz_.= \t\n#\";,0123456789KMGsmu\r\0\xff";
	for (int iter = 0; iter < 20000; iter++) {
		char buf[256];
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t n = (size_t)(x % sizeof(buf));
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = (iter & 1) ? (char)(x & 0xff) : alphabet[x % (sizeof(alphabet) - 1)];
		}
		struct agent_config c;
		agent_config_defaults(&c);
		char err[256];
		(void)agent_config_parse_file(&c, buf, n, "fuzz", err, sizeof(err));
		agent_config_free(&c);
	}
	/* Well-formed keys with random values. */
	const char *keys[] = {"socket_mode", "allow_uids", "batch_max_age", "batch_max_bytes",
			      "exporters", "log_level", "debug_zero_copy_check", "watermark_pct"};
	for (int iter = 0; iter < 20000; iter++) {
		char buf[128];
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int k = snprintf(buf, sizeof(buf), "%s = ", keys[x % 8]);
		size_t n = (size_t)k + (size_t)((x >> 8) % 20);
		for (size_t i = (size_t)k; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = alphabet[x % (sizeof(alphabet) - 2)];
		}
		struct agent_config c;
		agent_config_defaults(&c);
		char err[256];
		(void)agent_config_parse_file(&c, buf, n, "fuzz", err, sizeof(err));
		agent_config_free(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invalid_values),
		cmocka_unit_test(test_valid_file),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_finish_checks),
		cmocka_unit_test(test_help_lists_every_key),
		cmocka_unit_test(test_parser_random_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
