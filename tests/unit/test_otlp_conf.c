/* SPDX-License-Identifier: MIT */
/*
 * OTLP exporter configuration: endpoint URL rules (base URL + v1/traces,
 * traces endpoint as is, gRPC host:port), the precedence of agent settings
 * over OTEL_EXPORTER_OTLP_TRACES_* over OTEL_EXPORTER_OTLP_*, headers
 * (W3C baggage form, percent-decoding, refused entries), timeout,
 * protocol, compression.
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
#include "log.h"
#include "otlp_conf.h"

/* A fake environment: NAME=VALUE pairs. */
static const char *fake_env[32];

static const char *env_get(const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; fake_env[i]; i++)
		if (strncmp(fake_env[i], name, n) == 0 && fake_env[i][n] == '=')
			return fake_env[i] + n + 1;
	return NULL;
}

static void env_set(const char *const *kv)
{
	size_t i = 0;
	for (; kv && kv[i]; i++)
		fake_env[i] = kv[i];
	fake_env[i] = NULL;
}

struct fx {
	struct agent_config ac;
	struct otlp_conf c;
	char err[512];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	agent_log_set_level(AGENT_LOG_ERROR);
	agent_config_defaults(&f->ac);
	env_set(NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	otlp_conf_free(&f->c);
	agent_config_free(&f->ac);
	free(f);
	return 0;
}

static int resolve(struct fx *f, enum otlp_protocol forced)
{
	otlp_conf_free(&f->c);
	f->err[0] = 0;
	return otlp_conf_resolve(&f->c, &f->ac, forced, env_get, f->err, sizeof(f->err));
}

static void set(struct fx *f, const char *k, const char *v)
{
	char err[256];
	assert_int_equal(agent_config_set(&f->ac, k, v, err, sizeof(err)), 0);
}

static void test_defaults(void **state)
{
	struct fx *f = *state;
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.protocol, OTLP_PROTO_HTTP_PROTOBUF);
	assert_string_equal(f->c.url, "http://localhost:4318/v1/traces");
	assert_string_equal(f->c.u.host, "localhost");
	assert_int_equal(f->c.u.port, 4318);
	assert_string_equal(f->c.u.path, "/v1/traces");
	assert_string_equal(f->c.u.authority, "localhost:4318");
	assert_int_equal(f->c.timeout_ns, 10000000000ull);
	assert_false(f->c.gzip);
	assert_int_equal(f->c.n_headers, 0);
	assert_string_equal(f->c.src_endpoint, "default");
	/* gRPC: its own default port and the fixed method path */
	assert_int_equal(resolve(f, OTLP_PROTO_GRPC), 0);
	assert_string_equal(f->c.url, "http://localhost:4317");
	assert_int_equal(f->c.u.port, 4317);
	assert_string_equal(f->c.u.path,
			    "/opentelemetry.proto.collector.trace.v1.TraceService/Export");
	/* retry settings come from the agent config */
	assert_int_equal(f->c.retry_initial_ns, 1000000000ull);
	assert_int_equal(f->c.retry_max_backoff_ns, 10000000000ull);
	assert_int_equal(f->c.retry_max_elapsed_ns, 30000000000ull);
}

static void test_base_url_append(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{"http://h:1234", "http://h:1234/v1/traces"},
		{"http://h:1234/", "http://h:1234/v1/traces"},
		{"http://h/base", "http://h/base/v1/traces"},
		{"http://h/base/", "http://h/base/v1/traces"},
		{"http://h:1/a/b?q=1", "http://h:1/a/b/v1/traces"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *u = otlp_url_append_traces(cases[i][0]);
		assert_non_null(u);
		assert_string_equal(u, cases[i][1]);
		free(u);
	}
}

static void test_endpoint_precedence(void **state)
{
	struct fx *f = *state;
	const char *e1[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=http://gen:1/", NULL};
	env_set(e1);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_string_equal(f->c.url, "http://gen:1/v1/traces");
	assert_string_equal(f->c.src_endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT");
	/* the signal-specific variable wins and is used as is */
	const char *e2[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=http://gen:1/",
			    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://tr:2/custom/path", NULL};
	env_set(e2);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_string_equal(f->c.url, "http://tr:2/custom/path");
	assert_string_equal(f->c.u.path, "/custom/path");
	/* a traces URL without a path: the root path */
	const char *e3[] = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://tr:2", NULL};
	env_set(e3);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_string_equal(f->c.u.path, "/");
	/* the agent's own settings win over the environment */
	env_set(e2);
	set(f, "otlp.endpoint", "http://cfg:3");
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_string_equal(f->c.url, "http://cfg:3/v1/traces");
	assert_string_equal(f->c.src_endpoint, "otlp.endpoint");
	set(f, "otlp.traces_endpoint", "http://cfg:4/x");
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_string_equal(f->c.url, "http://cfg:4/x");
	/* gRPC: no path appended, the method path is fixed */
	assert_int_equal(resolve(f, OTLP_PROTO_GRPC), 0);
	assert_string_equal(f->c.url, "http://cfg:4/x");
	assert_string_equal(f->c.u.authority, "cfg:4");
}

static void test_url_forms(void **state)
{
	(void)state;
	struct otlp_url u;
	char err[256];
	assert_int_equal(otlp_url_parse("http://[::1]:4318/v1/traces", false, &u, err, sizeof(err)), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 4318);
	assert_string_equal(u.authority, "[::1]:4318");
	otlp_url_free(&u);
	assert_int_equal(otlp_url_parse("HTTP://Example.COM/p#frag", false, &u, err, sizeof(err)), 0);
	assert_int_equal(u.port, 80);
	assert_string_equal(u.path, "/p");
	otlp_url_free(&u);
	/* gRPC accepts host:port without a scheme */
	assert_int_equal(otlp_url_parse("collector:4317", true, &u, err, sizeof(err)), 0);
	assert_string_equal(u.host, "collector");
	assert_int_equal(u.port, 4317);
	otlp_url_free(&u);
	assert_int_equal(otlp_url_parse("collector:4317", false, &u, err, sizeof(err)), -EINVAL);
	/* https: TLS, port 443 by default */
	assert_int_equal(otlp_url_parse("https://h:4318", false, &u, err, sizeof(err)), 0);
	assert_true(u.tls);
	assert_int_equal(u.port, 4318);
	otlp_url_free(&u);
	assert_int_equal(otlp_url_parse("https://h/x", false, &u, err, sizeof(err)), 0);
	assert_true(u.tls);
	assert_false(u.no_scheme);
	assert_int_equal(u.port, 443);
	otlp_url_free(&u);
	assert_int_equal(otlp_url_parse("collector:4317", true, &u, err, sizeof(err)), 0);
	assert_false(u.tls);
	assert_true(u.no_scheme);
	otlp_url_free(&u);
	static const char *const bad[] = {"http://",	   "http://h:0",      "http://h:65536",
					  "http://h:12a",  "http://u@h:1",    "http://h h/",
					  "ftp://h/",	   "http://[::1/",    "http://h:/",
					  "http://h/a b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(otlp_url_parse(bad[i], false, &u, err, sizeof(err)), -EINVAL);
}

static void test_protocol(void **state)
{
	struct fx *f = *state;
	const char *e1[] = {"OTEL_EXPORTER_OTLP_PROTOCOL=grpc", NULL};
	env_set(e1);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.protocol, OTLP_PROTO_GRPC);
	assert_string_equal(f->c.url, "http://localhost:4317");
	const char *e2[] = {"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
			    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json", NULL};
	env_set(e2);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.protocol, OTLP_PROTO_HTTP_JSON);
	/* an invalid signal value is ignored: the generic one applies */
	const char *e3[] = {"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
			    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=carrier-pigeon", NULL};
	env_set(e3);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.protocol, OTLP_PROTO_GRPC);
	/* the exporter kind wins over everything */
	assert_int_equal(resolve(f, OTLP_PROTO_HTTP_PROTOBUF), 0);
	assert_int_equal(f->c.protocol, OTLP_PROTO_HTTP_PROTOBUF);
	/* the agent setting wins over the environment; invalid is an error */
	set(f, "otlp.protocol", "http/protobuf");
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.protocol, OTLP_PROTO_HTTP_PROTOBUF);
	set(f, "otlp.protocol", "udp");
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), -EINVAL);
	assert_non_null(strstr(f->err, "otlp.protocol"));
}

static void test_headers_parse(void **state)
{
	(void)state;
	struct otlp_header *h;
	size_t n, skipped;
	char err[256];
	assert_int_equal(otlp_headers_parse(" a=b , Api-Key = s%20e%2Ccret ,,empty=,x=%41%42",
					    true, false, &h, &n, &skipped, err, sizeof(err)),
			 0);
	assert_int_equal(n, 4);
	assert_string_equal(h[0].name, "a");
	assert_string_equal(h[0].value, "b");
	assert_string_equal(h[1].name, "Api-Key");
	assert_string_equal(h[1].value, "s e,cret");
	assert_string_equal(h[2].name, "empty");
	assert_string_equal(h[2].value, "");
	assert_string_equal(h[3].value, "AB");
	otlp_headers_free(h, n);
	/* lower-cased for HTTP/2 */
	assert_int_equal(otlp_headers_parse("Api-Key=1", true, true, &h, &n, &skipped, err,
					    sizeof(err)),
			 0);
	assert_string_equal(h[0].name, "api-key");
	otlp_headers_free(h, n);
	/* refused: no '=', bad name, bad escape, CR/LF injection, our own headers */
	static const char *const bad[] = {"novalue",	     "=v",	     "a b=c",
					  "k=%zz",	     "k=%4",	     "k=a%0D%0AX-Evil: 1",
					  "Content-Type=x", "host=h",	     "k=\x01"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(otlp_headers_parse(bad[i], true, false, &h, &n, &skipped, err,
						    sizeof(err)),
				 -EINVAL);
		/* not strict (environment): skipped, the good ones kept */
		char buf[128];
		snprintf(buf, sizeof(buf), "good=1,%s", bad[i]);
		assert_int_equal(otlp_headers_parse(buf, false, false, &h, &n, &skipped, err,
						    sizeof(err)),
				 0);
		assert_int_equal(n, 1);
		assert_int_equal(skipped, 1);
		otlp_headers_free(h, n);
	}
}

static void test_headers_precedence(void **state)
{
	struct fx *f = *state;
	const char *e1[] = {"OTEL_EXPORTER_OTLP_HEADERS=a=1,b=2", NULL};
	env_set(e1);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.n_headers, 2);
	/* the signal-specific list replaces the generic one */
	const char *e2[] = {"OTEL_EXPORTER_OTLP_HEADERS=a=1,b=2",
			    "OTEL_EXPORTER_OTLP_TRACES_HEADERS=c=3", NULL};
	env_set(e2);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.n_headers, 1);
	assert_string_equal(f->c.headers[0].name, "c");
	assert_string_equal(f->c.src_headers, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
	/* a bad entry in the environment is skipped */
	const char *e3[] = {"OTEL_EXPORTER_OTLP_TRACES_HEADERS=c=3,bad", NULL};
	env_set(e3);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.n_headers, 1);
	/* the agent setting wins; a bad entry there is an error */
	set(f, "otlp.headers", "K=v");
	assert_int_equal(resolve(f, OTLP_PROTO_GRPC), 0);
	assert_int_equal(f->c.n_headers, 1);
	assert_string_equal(f->c.headers[0].name, "k");
	set(f, "otlp.headers", "K=v,bad");
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), -EINVAL);
	assert_non_null(strstr(f->err, "otlp.headers"));
}

static void test_timeout_compression(void **state)
{
	struct fx *f = *state;
	const char *e1[] = {"OTEL_EXPORTER_OTLP_TIMEOUT=2500", NULL};
	env_set(e1);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.timeout_ns, 2500000000ull);
	const char *e2[] = {"OTEL_EXPORTER_OTLP_TIMEOUT=2500", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=700",
			    "OTEL_EXPORTER_OTLP_COMPRESSION=gzip", NULL};
	env_set(e2);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.timeout_ns, 700000000ull);
	assert_true(f->c.gzip);
	/* invalid timeouts are ignored (the next source applies) */
	const char *e3[] = {"OTEL_EXPORTER_OTLP_TIMEOUT=2500", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=1s",
			    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=none",
			    "OTEL_EXPORTER_OTLP_COMPRESSION=gzip", NULL};
	env_set(e3);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.timeout_ns, 2500000000ull);
	assert_false(f->c.gzip);
	/* agent settings win */
	set(f, "otlp.timeout", "3s");
	set(f, "otlp.compression", "gzip");
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.timeout_ns, 3000000000ull);
	assert_true(f->c.gzip);
	set(f, "otlp.compression", "zstd");
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), -EINVAL);
}

/* TLS settings: precedence, and never accepted with a cleartext endpoint. */
static void test_tls(void **state)
{
	struct fx *f = *state;
	/* a readable file for the CA / certificate / key settings */
	const char *file = "/proc/self/status";
	const char *e1[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4318", NULL};
	env_set(e1);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_true(f->c.tls);
	assert_int_equal(f->c.tls_min_version, 0x0303);
	assert_null(f->c.tls_ca_file);
	/* TRACES_CERTIFICATE wins over CERTIFICATE; the agent key over both */
	const char *e2[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4318",
			    "OTEL_EXPORTER_OTLP_CERTIFICATE=/nonexistent",
			    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE=/proc/self/status", NULL};
	env_set(e2);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_string_equal(f->c.tls_ca_file, file);
	assert_string_equal(f->c.src_tls_ca, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE");
	const char *e3[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4318",
			    "OTEL_EXPORTER_OTLP_CERTIFICATE=/nonexistent", NULL};
	env_set(e3);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), -EINVAL); /* unreadable: named */
	assert_non_null(strstr(f->err, "OTEL_EXPORTER_OTLP_CERTIFICATE"));
	set(f, "otlp.tls_ca_file", file);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_string_equal(f->c.src_tls_ca, "otlp.tls_ca_file");
	/* a client certificate needs its key */
	const char *e4[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4318",
			    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=/proc/self/status", NULL};
	env_set(e4);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), -EINVAL);
	assert_non_null(strstr(f->err, "without"));
	const char *e5[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4318",
			    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=/proc/self/status",
			    "OTEL_EXPORTER_OTLP_CLIENT_KEY=/proc/self/status", NULL};
	env_set(e5);
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_string_equal(f->c.tls_cert_file, file);
	assert_string_equal(f->c.tls_key_file, file);
	/* the case: a certificate with a cleartext gRPC endpoint */
	const char *e6[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317",
			    "OTEL_EXPORTER_OTLP_CERTIFICATE=/proc/self/status", NULL};
	env_set(e6);
	agent_config_free(&f->ac);
	agent_config_defaults(&f->ac);
	assert_int_equal(resolve(f, OTLP_PROTO_GRPC), -EINVAL);
	assert_non_null(strstr(f->err, "is cleartext"));
	/* host:port (gRPC): TLS unless INSECURE=true */
	const char *e7[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317", NULL};
	env_set(e7);
	assert_int_equal(resolve(f, OTLP_PROTO_GRPC), 0);
	assert_true(f->c.tls);
	const char *e8[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317",
			    "OTEL_EXPORTER_OTLP_TRACES_INSECURE=TRUE", "OTEL_EXPORTER_OTLP_INSECURE=false",
			    NULL};
	env_set(e8);
	assert_int_equal(resolve(f, OTLP_PROTO_GRPC), 0);
	assert_false(f->c.tls);
	const char *e9[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4317",
			    "OTEL_EXPORTER_OTLP_INSECURE=true", NULL};
	env_set(e9);
	assert_int_equal(resolve(f, OTLP_PROTO_GRPC), -EINVAL); /* contradicts https:// */
	const char *e10[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317",
			     "OTEL_EXPORTER_OTLP_INSECURE=maybe", NULL};
	env_set(e10);
	assert_int_equal(resolve(f, OTLP_PROTO_GRPC), -EINVAL);
	/* agent keys that only make sense with TLS */
	env_set(NULL);
	set(f, "otlp.traces_endpoint", "http://collector:4318/v1/traces");
	static const char *const only[][2] = {{"otlp.tls_server_name", "x"},
					      {"otlp.tls_min_version", "1.3"},
					      {"otlp.tls_insecure_skip_verify", "true"}};
	for (size_t i = 0; i < 3; i++) {
		set(f, only[i][0], only[i][1]);
		assert_int_equal(resolve(f, OTLP_PROTO_UNSET), -EINVAL);
		assert_non_null(strstr(f->err, only[i][0]));
		set(f, "otlp.traces_endpoint", "https://collector:4318/v1/traces");
		assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
		agent_config_free(&f->ac);
		agent_config_defaults(&f->ac);
		set(f, "otlp.traces_endpoint", "http://collector:4318/v1/traces");
	}
	set(f, "otlp.traces_endpoint", "https://collector:4318/v1/traces");
	set(f, "otlp.tls_min_version", "1.3");
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), 0);
	assert_int_equal(f->c.tls_min_version, 0x0304);
	set(f, "otlp.tls_min_version", "1.1");
	assert_int_equal(resolve(f, OTLP_PROTO_UNSET), -EINVAL);
}

static void test_exporter_kinds(void **state)
{
	struct fx *f = *state;
	char err[256];
	assert_int_equal(agent_config_set(&f->ac, "exporters", "file,otlp_grpc", err, sizeof(err)), 0);
	assert_int_equal(f->ac.exporters, AGENT_EXP_FILE | AGENT_EXP_OTLP_GRPC);
	assert_int_equal(agent_config_set(&f->ac, "exporters", "otlp", err, sizeof(err)), 0);
	assert_int_equal(f->ac.exporters, AGENT_EXP_OTLP);
	/* --exporter NAME:URL sets the traces endpoint */
	char *argv[] = {"agent", "--exporter", "otlp_http:http://h:1/t", NULL};
	int action;
	assert_int_equal(agent_config_parse_args(&f->ac, 3, argv, &action, err, sizeof(err)), 0);
	assert_true(f->ac.exporters & AGENT_EXP_OTLP_HTTP);
	assert_string_equal(f->ac.otlp_traces_endpoint, "http://h:1/t");
	char *argv2[] = {"agent", "--otlp.retry-initial=50ms", "--otlp.max-streams", "3", NULL};
	assert_int_equal(agent_config_parse_args(&f->ac, 4, argv2, &action, err, sizeof(err)), 0);
	assert_int_equal(f->ac.otlp_retry_initial_us, 50000);
	assert_int_equal(f->ac.otlp_max_streams, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_base_url_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_url_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_protocol, setup, teardown),
		cmocka_unit_test_setup_teardown(test_headers_parse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_headers_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_compression, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exporter_kinds, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
