/* SPDX-License-Identifier: MIT */
/*
 * Named exporter instances TYPE[/NAME] (agent/instances.c): each
 * configuration error of issue 12 item 1 is refused with a message naming
 * file:line or the flag (one test each); per-instance settings land in
 * their instance and are laid over the agent-wide ones; base URLs get
 * /v1/traces when they have no path; OTEL_EXPORTER_OTLP_* are defaults.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "exporter.h"
#include "instances.h"
#include "otlp_conf.h"

static char err[1024];

/* A config file and flags, then finish: the return code. */
static int load(struct agent_config *c, const char *file, int argc, char **argv)
{
	agent_config_defaults(c);
	err[0] = 0;
	int r = 0;
	if (file)
		r = agent_config_parse_file(c, file, strlen(file), "t.conf", err, sizeof(err));
	if (!r && argc) {
		int action;
		char *av[32] = {"spanring-agent"};
		for (int i = 0; i < argc; i++)
			av[i + 1] = argv[i];
		r = agent_config_parse_args(c, argc + 1, av, &action, err, sizeof(err));
	}
	if (!r) {
		char *sock = strdup("/tmp/x.sock");
		c->socket_path = sock;
		r = agent_config_finish(c, err, sizeof(err));
	}
	return r;
}

static void expect_error(const char *file, int argc, char **argv, const char *p1, const char *p2)
{
	struct agent_config c;
	int r = load(&c, file, argc, argv);
	if (r == 0 || !strstr(err, p1) || (p2 && !strstr(err, p2))) {
		fprintf(stderr, "r=%d err='%s' (want '%s' '%s')\n", r, err, p1, p2 ? p2 : "");
		fail();
	}
	agent_config_free(&c);
}

static void test_unknown_key(void **state)
{
	(void)state;
	expect_error("exporters = otlp_http/tempo\notlp_http/tempo.endpointt = http://h:1\n", 0,
		     NULL, "t.conf:2:", "no setting 'endpointt'");
	char *av[] = {"--exporter", "file/a:/tmp/a.pb", "--file/a.endpoint=http://h"};
	expect_error(NULL, 3, av, "option '--file/a.endpoint=http://h'", "no setting 'endpoint'");
	expect_error("exporters = kafka/x\n", 0, NULL, "t.conf:1:", "unknown exporter 'kafka'");
}

static void test_duplicate_name(void **state)
{
	(void)state;
	/* the case: the first backend would disappear silently */
	char *av[] = {"--exporter", "otlp_http:http://127.0.0.1:14318", "--exporter",
		      "otlp_http:http://127.0.0.1:24318"};
	expect_error(NULL, 4, av, "'otlp_http' is enabled twice", "option '--exporter otlp_http'");
	char *av2[] = {"--exporter", "otlp_grpc/j:h:1", "--exporter", "otlp_grpc/j:h:2"};
	expect_error(NULL, 4, av2, "'otlp_grpc/j' is enabled twice", NULL);
	expect_error("exporters = file/a, otlp_http/t, file/a\n", 0, NULL, "t.conf:1:",
		     "'file/a' is enabled twice");
}

static void test_not_enabled(void **state)
{
	(void)state;
	expect_error("exporters = otlp_http/tempo\notlp_http/tmpo.endpoint = http://h:1\n", 0,
		     NULL, "t.conf:2:", "'otlp_http/tmpo', which is not enabled");
	char *av[] = {"--otlp-grpc/j.timeout=5s"};
	expect_error(NULL, 1, av, "option '--otlp-grpc/j.timeout=5s'", "not enabled");
}

static void test_protocol_unused(void **state)
{
	(void)state;
	expect_error("exporters = otlp_grpc/j\notlp_grpc/j.endpoint = http://h:4317\n"
		     "otlp_grpc/j.max_request_bytes = 1M\n",
		     0, NULL, "t.conf:3:", "does not use 'max_request_bytes'");
	expect_error("exporters = otlp_http/t\notlp_http/t.max_streams = 4\n", 0, NULL,
		     "t.conf:2:", "does not use 'max_streams'");
	expect_error("exporters = otlp_http/t\notlp_http/t.protocol = grpc\n", 0, NULL,
		     "t.conf:2:", "protocol 'grpc' is not what type otlp_http speaks");
	/* the case: the kind silently won */
	char *av[] = {"--exporter", "otlp_http:http://h:1", "--otlp.protocol=grpc"};
	expect_error(NULL, 3, av, "otlp.protocol 'grpc' contradicts exporter 'otlp_http'", NULL);
	/* type otlp: the protocol decides what is used */
	expect_error("exporters = otlp/x\notlp/x.protocol = grpc\notlp/x.zerocopy_min = 1M\n", 0,
		     NULL, "t.conf:3:", "does not use 'zerocopy_min'");
}

static void test_value_looks_like_flag(void **state)
{
	(void)state;
	char *av[] = {"--file", "--check-config"};
	expect_error(NULL, 2, av, "option '--file' needs a value, got the flag '--check-config'",
		     NULL);
	char *av2[] = {"--exporter", "--null"};
	expect_error(NULL, 2, av2, "got the flag '--null'", NULL);
	char *av3[] = {"--otlp.timeout", "-5s"};
	expect_error(NULL, 2, av3, "got the flag '-5s'", NULL);
	/* '-' alone is a value (stdout) */
	struct agent_config c;
	char *ok[] = {"--json", "-"};
	assert_int_equal(load(&c, NULL, 2, ok), 0);
	agent_config_free(&c);
}

static void test_other_errors(void **state)
{
	(void)state;
	expect_error("exporters = otlp_http/t\notlp_http/t.endpoint = http://h:1\n"
		     "otlp_http/t.traces_endpoint = http://h:1/x\n",
		     0, NULL, "t.conf:3:", "not both");
	expect_error("exporters = file/a\n", 0, NULL, "'file/a'", "needs a path");
	expect_error("exporters = file/a, file/b\nfile/a.path = x.pb\nfile/b.path = x.pb\n", 0,
		     NULL, "write the same file", NULL);
	expect_error("exporters = otlp_http/t\notlp_http/t.timeout = 5\n", 0, NULL, "t.conf:2:",
		     "key 'otlp_http/t.timeout'");
	/* TLS settings are per instance too: one with a cleartext endpoint is refused. */
	expect_error("exporters = otlp_http/t\notlp_http/t.endpoint = http://h:1\n"
		     "otlp_http/t.tls_ca_file = /etc/hostname\n",
		     0, NULL, "otlp_http/t", "is cleartext: use an https:// endpoint");
	expect_error("exporters = otlp_http/bad-name\n", 0, NULL, "t.conf:1:", "letters, digits");
	expect_error("exporters = otlp_http/a, otlp_grpc/b\notlp.spool_dir = /tmp/sp\n", 0, NULL,
		     "same spool directory", NULL);
}

/* Three OTLP and a file instance, each with its own settings. */
static void test_instances_settings(void **state)
{
	(void)state;
	struct agent_config c;
	const char *file = "exporters = file/archive, otlp_http/tempo, otlp_http/custom, "
			   "otlp_grpc/jaeger\n"
			   "otlp.timeout = 7s\n"
			   "file/archive.path = /tmp/archive.pb\n"
			   "file/archive.rotate_keep = 2\n"
			   "otlp_http/tempo.endpoint = http://127.0.0.1:4318\n"
			   "otlp_http/tempo.headers = x-scope-orgid=t1\n"
			   "otlp_http/custom.traces_endpoint = http://127.0.0.1:9999\n"
			   "otlp_http/custom.timeout = 2s\n"
			   "otlp_http/custom.retry_max = 1m\n"
			   "otlp_grpc/jaeger.endpoint = http://127.0.0.1:4317\n"
			   "otlp_grpc/jaeger.max_streams = 3\n"
			   "otlp_grpc/jaeger.hold_budget = 4M\n"
			   "otlp_grpc/jaeger.spool_bytes = 0\n"
			   "otlp_http/tempo.spool_dir = /tmp/tempo-spool\n";
	char *av[] = {"--exporter", "otlp_http/cli:http://127.0.0.1:5318/base",
		      "--exporter", "console"};
	assert_int_equal(load(&c, file, 4, av), 0);
	assert_int_equal(c.exporters, AGENT_EXP_CONSOLE); /* the unnamed one */
	size_t enabled = 0;
	for (size_t i = 0; i < c.n_inst; i++)
		enabled += c.inst[i].enabled;
	assert_int_equal(enabled, 6);
	struct agent_config m;
	struct otlp_conf oc;
	struct exp_instance *in = inst_find(&c, "otlp_http/tempo", 15);
	assert_non_null(in);
	inst_merged_config(&c, in, &m);
	assert_int_equal(otlp_conf_resolve(&oc, &m, OTLP_PROTO_HTTP_PROTOBUF, otlp_getenv, err,
					   sizeof(err)),
			 0);
	assert_string_equal(oc.url, "http://127.0.0.1:4318/v1/traces"); /* base URL */
	assert_int_equal(oc.n_headers, 1);
	assert_int_equal(oc.timeout_ns, 7000000000ull); /* the agent-wide default */
	otlp_conf_free(&oc);
	in = inst_find(&c, "otlp_http/custom", 16);
	inst_merged_config(&c, in, &m);
	assert_int_equal(otlp_conf_resolve(&oc, &m, OTLP_PROTO_HTTP_PROTOBUF, otlp_getenv, err,
					   sizeof(err)),
			 0);
	assert_string_equal(oc.url, "http://127.0.0.1:9999"); /* as is */
	assert_int_equal(oc.timeout_ns, 2000000000ull);
	assert_int_equal(oc.retry_max_elapsed_ns, 60000000000ull);
	assert_int_equal(oc.n_headers, 0); /* tempo's are tempo's */
	otlp_conf_free(&oc);
	in = inst_find(&c, "otlp_http/cli", 13);
	inst_merged_config(&c, in, &m);
	assert_int_equal(otlp_conf_resolve(&oc, &m, OTLP_PROTO_HTTP_PROTOBUF, otlp_getenv, err,
					   sizeof(err)),
			 0);
	assert_string_equal(oc.url, "http://127.0.0.1:5318/base"); /* has a path: as is */
	otlp_conf_free(&oc);
	in = inst_find(&c, "otlp_grpc/jaeger", 16);
	inst_merged_config(&c, in, &m);
	assert_int_equal(otlp_conf_resolve(&oc, &m, OTLP_PROTO_GRPC, otlp_getenv, err, sizeof(err)),
			 0);
	assert_int_equal(oc.max_streams, 3);
	assert_int_equal(oc.u.port, 4317);
	otlp_conf_free(&oc);
	assert_int_equal(m.otlp_hold_budget, 4 << 20);
	assert_int_equal(m.otlp_spool_bytes, 0);
	inst_merged_config(&c, inst_find(&c, "otlp_http/tempo", 15), &m);
	assert_string_equal(m.otlp_spool_dir, "/tmp/tempo-spool");
	assert_int_equal(m.otlp_hold_budget, 1 << 20); /* the default */
	assert_int_equal(m.otlp_spool_bytes, 2ull << 30);
	in = inst_find(&c, "file/archive", 12);
	inst_merged_config(&c, in, &m);
	assert_string_equal(m.file_path, "/tmp/archive.pb");
	assert_int_equal(m.file_rotate_keep, 2);
	agent_config_free(&c);
}

static void test_base_url(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{"http://h:4318", "http://h:4318/v1/traces"},
		{"http://h:4318/", "http://h:4318/v1/traces"},
		{"http://h:4318/v1/traces", "http://h:4318/v1/traces"},
		{"http://h/otel/traces", "http://h/otel/traces"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *u = inst_endpoint_url(cases[i][0]);
		assert_string_equal(u, cases[i][1]);
		free(u);
	}
	/* the unnamed instance from the command line too (the 404) */
	struct agent_config c;
	char *av[] = {"--exporter", "otlp_http:http://127.0.0.1:4318"};
	assert_int_equal(load(&c, NULL, 2, av), 0);
	assert_string_equal(c.otlp_traces_endpoint, "http://127.0.0.1:4318/v1/traces");
	agent_config_free(&c);
}

static void test_env_defaults(void **state)
{
	(void)state;
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://envhost:4318", 1);
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "a=b", 1);
	struct agent_config c;
	assert_int_equal(load(&c,
			      "exporters = otlp_http/a, otlp_http/b\n"
			      "otlp_http/b.endpoint = http://own:1\notlp_http/b.headers = c=d,e=f\n",
			      0, NULL),
			 0);
	struct agent_config m;
	struct otlp_conf oc;
	inst_merged_config(&c, inst_find(&c, "otlp_http/a", 11), &m);
	assert_int_equal(otlp_conf_resolve(&oc, &m, OTLP_PROTO_HTTP_PROTOBUF, otlp_getenv, err,
					   sizeof(err)),
			 0);
	assert_string_equal(oc.url, "http://envhost:4318/v1/traces");
	assert_int_equal(oc.n_headers, 1);
	otlp_conf_free(&oc);
	inst_merged_config(&c, inst_find(&c, "otlp_http/b", 11), &m);
	assert_int_equal(otlp_conf_resolve(&oc, &m, OTLP_PROTO_HTTP_PROTOBUF, otlp_getenv, err,
					   sizeof(err)),
			 0);
	assert_string_equal(oc.url, "http://own:1/v1/traces");
	assert_int_equal(oc.n_headers, 2);
	otlp_conf_free(&oc);
	agent_config_free(&c);
	unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	unsetenv("OTEL_EXPORTER_OTLP_HEADERS");
}

static void test_many_instances(void **state)
{
	(void)state;
	struct agent_config c;
	char text[8192] = "exporters = ";
	for (int i = 0; i < 20; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%sotlp_http/b%d",
			 i ? "," : "", i);
	strcat(text, "\n");
	for (int i = 0; i < 20; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 "otlp_http/b%d.endpoint = http://127.0.0.1:%d\n", i, 10000 + i);
	assert_int_equal(load(&c, text, 0, NULL), 0);
	assert_int_equal(c.n_inst, 20);
	agent_config_free(&c);
}

/* The table of kinds: one row per TYPE and bit, both lookups agree, and
 * the unknown-type message lists every kind in the table's order. */
static void test_kinds(void **state)
{
	(void)state;
	assert_int_equal(exp_n_kinds, 7);
	for (size_t i = 0; i < exp_n_kinds; i++) {
		const struct exp_kind *k = &exp_kinds[i];
		assert_non_null(k->create);
		assert_ptr_equal(exp_kind_by_type(k->type, strlen(k->type)), k);
		assert_ptr_equal(exp_kind_by_bit(k->bit), k);
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(exp_kinds[j].bit, k->bit);
	}
	assert_null(exp_kind_by_type("otlp_", 5));
	assert_null(exp_kind_by_bit(0));
	expect_error("exporters = kafka\n", 0, NULL, "t.conf:1:",
		     "(known types: file, json, console, null, otlp, otlp_http, otlp_grpc; an "
		     "instance is TYPE or TYPE/NAME)");
	/* retry_max: the kinds that retry take it, console and null do not */
	expect_error("exporters = console/c\nconsole/c.retry_max = 1s\n", 0, NULL, "t.conf:2:",
		     "no setting 'retry_max'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_key),	    cmocka_unit_test(test_duplicate_name),
		cmocka_unit_test(test_not_enabled),	    cmocka_unit_test(test_protocol_unused),
		cmocka_unit_test(test_value_looks_like_flag), cmocka_unit_test(test_other_errors),
		cmocka_unit_test(test_instances_settings),  cmocka_unit_test(test_base_url),
		cmocka_unit_test(test_env_defaults),	    cmocka_unit_test(test_many_instances),
		cmocka_unit_test(test_kinds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
