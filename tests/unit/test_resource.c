/* SPDX-License-Identifier: MIT */
/*
 * The process Resource: encode with sr_resource_encode(), decode with
 * protobuf-c and check every attribute under a controlled environment;
 * cross-check the bytes once with `protoc --decode` against both the
 * project's schema and the reference OTLP schema.
 *
 * sr_resource_encode() reads the environment at each call, so each test
 * sets what it needs (a per-test setup clears the OTEL variables).
 * The process.command_args bounds are checked by re-executing this binary
 * with many/long arguments (SR_TEST_CMDLINE_CHILD=1 selects child mode).
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "otlp_resource.pb-c.h"
#include "resource.h"
#include "spanring/spanring.h"

typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;

#define CASE_STRING OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
#define CASE_INT OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE
#define CASE_ARRAY OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE
#define REPL "\xef\xbf\xbd" /* U+FFFD */
/* Attributes present without OTEL_RESOURCE_ATTRIBUTES: service.name, three
 * telemetry.sdk.*, six process.*, host.name, os.type. */
#define N_DEFAULT 12

static int g_argc;
static char **g_argv;

/* ---- helpers ------------------------------------------------------------------ */

static int clear_env(void **state)
{
	(void)state;
	unsetenv("OTEL_SERVICE_NAME");
	unsetenv("OTEL_RESOURCE_ATTRIBUTES");
	return 0;
}

static pb_resource *encode_decode(void)
{
	static uint8_t buf[32768];
	size_t len = 0;
	pb_resource *r;

	assert_int_equal(sr_resource_encode(buf, sizeof buf, &len), 0);
	assert_true(len > 0 && len <= sizeof buf);
	r = opentelemetry__proto__resource__v1__resource__unpack(NULL, len, buf);
	assert_non_null(r);
	return r;
}

static void free_res(pb_resource *r)
{
	opentelemetry__proto__resource__v1__resource__free_unpacked(r, NULL);
}

static size_t count_key(const pb_resource *r, const char *key)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_attributes; i++)
		n += strcmp(r->attributes[i]->key, key) == 0;
	return n;
}

/* The value of key, which must appear at most once; NULL when absent. */
static const pb_any *find(const pb_resource *r, const char *key)
{
	assert_true(count_key(r, key) <= 1);
	for (size_t i = 0; i < r->n_attributes; i++)
		if (strcmp(r->attributes[i]->key, key) == 0) {
			assert_non_null(r->attributes[i]->value);
			return r->attributes[i]->value;
		}
	return NULL;
}

static void expect_str(const pb_resource *r, const char *key, const char *want)
{
	const pb_any *v = find(r, key);
	if (!v)
		fail_msg("attribute %s missing", key);
	assert_int_equal(v->value_case, CASE_STRING);
	assert_string_equal(v->string_value, want);
}

static void expect_int(const pb_resource *r, const char *key, int64_t want)
{
	const pb_any *v = find(r, key);
	if (!v)
		fail_msg("attribute %s missing", key);
	assert_int_equal(v->value_case, CASE_INT);
	assert_int_equal(v->int_value, want);
}

/* Encode with OTEL_RESOURCE_ATTRIBUTES=attrs (NULL: unset). */
static pb_resource *with_attrs(const char *attrs)
{
	if (attrs)
		setenv("OTEL_RESOURCE_ATTRIBUTES", attrs, 1);
	else
		unsetenv("OTEL_RESOURCE_ATTRIBUTES");
	return encode_decode();
}

static void exe_path(char *buf, size_t n)
{
	ssize_t r = readlink("/proc/self/exe", buf, n - 1);
	assert_true(r > 0);
	buf[r] = '\0';
}

static const char *exe_name(void)
{
	static char path[PATH_MAX];
	exe_path(path, sizeof path);
	return strrchr(path, '/') + 1;
}

/* ---- tests ---------------------------------------------------------------------- */

/* Runs first: the name is worked out on demand before any encode. */
static void test_service_name_before_encode(void **state)
{
	char want[PATH_MAX + 32];

	(void)state;
	snprintf(want, sizeof want, "unknown_service:%s", exe_name());
	assert_string_equal(sr_resource_service_name(), want);
}

static void test_defaults(void **state)
{
	char want[PATH_MAX + 32], path[PATH_MAX], host[HOST_NAME_MAX + 1] = "";
	struct passwd *pw = getpwuid(geteuid());
	pb_resource *r;
	const pb_any *v;

	(void)state;
	r = encode_decode();
	assert_int_equal(r->dropped_attributes_count, 0);
	for (size_t i = 0; i < r->n_attributes; i++)
		assert_int_equal(count_key(r, r->attributes[i]->key), 1);
	assert_string_equal(r->attributes[0]->key, "service.name");

	snprintf(want, sizeof want, "unknown_service:%s", exe_name());
	expect_str(r, "service.name", want);
	assert_string_equal(sr_resource_service_name(), want);
	expect_str(r, "telemetry.sdk.name", "spanring");
	expect_str(r, "telemetry.sdk.language", "c");
	snprintf(want, sizeof want, "%d.%d.%d", SPANRING_VERSION_MAJOR, SPANRING_VERSION_MINOR,
		 SPANRING_VERSION_PATCH);
	expect_str(r, "telemetry.sdk.version", want);
	expect_int(r, "process.pid", getpid());
	expect_int(r, "process.parent_pid", getppid());
	exe_path(path, sizeof path);
	expect_str(r, "process.executable.path", path);
	expect_str(r, "process.executable.name", strrchr(path, '/') + 1);
	if (pw)
		expect_str(r, "process.owner", pw->pw_name);
	else {
		snprintf(want, sizeof want, "%u", (unsigned)geteuid());
		expect_str(r, "process.owner", want);
	}
	assert_int_equal(gethostname(host, sizeof host - 1), 0);
	expect_str(r, "host.name", host);
	expect_str(r, "os.type", "linux");

	/* command_args: this process's argv (short enough to be complete). */
	v = find(r, "process.command_args");
	assert_non_null(v);
	assert_int_equal(v->value_case, CASE_ARRAY);
	assert_int_equal(v->array_value->n_values, g_argc);
	for (int i = 0; i < g_argc; i++) {
		assert_int_equal(v->array_value->values[i]->value_case, CASE_STRING);
		assert_string_equal(v->array_value->values[i]->string_value, g_argv[i]);
	}
	assert_int_equal(r->n_attributes, N_DEFAULT);
	free_res(r);
}

static void test_env_attributes(void **state)
{
	pb_resource *r;

	(void)state;
	r = with_attrs("deployment.environment=prod, team = infra ,\tregion=eu-west-1\t");
	expect_str(r, "deployment.environment", "prod");
	expect_str(r, "team", "infra");
	expect_str(r, "region", "eu-west-1");
	/* User attributes come after the detected ones, in their order. */
	assert_string_equal(r->attributes[r->n_attributes - 3]->key, "deployment.environment");
	assert_string_equal(r->attributes[r->n_attributes - 1]->key, "region");
	assert_int_equal(r->n_attributes, N_DEFAULT + 3);
	free_res(r);

	/* Empty value: no extra attributes. */
	r = with_attrs("");
	assert_int_equal(r->n_attributes, N_DEFAULT);
	free_res(r);
}

static void test_percent_decoding(void **state)
{
	pb_resource *r;

	(void)state;
	r = with_attrs("k1=a%2Cb,k2=x%3Dy,k3=%E2%82%AC,k4=100%25,k5=a+b,k%2Ceq=v,"
		       "k6=%e2%82%ac,k7=%20pad%20,k8=caf%C3%A9,k9=%41%42c,k%3Dx=1");
	expect_str(r, "k1", "a,b");
	expect_str(r, "k2", "x=y");
	expect_str(r, "k3", "\xe2\x82\xac");
	expect_str(r, "k4", "100%");
	expect_str(r, "k5", "a+b"); /* '+' is not a space here */
	expect_str(r, "k,eq", "v");
	expect_str(r, "k6", "\xe2\x82\xac");
	expect_str(r, "k7", " pad "); /* encoded edges survive the trim */
	expect_str(r, "k8", "caf\xc3\xa9");
	expect_str(r, "k9", "ABc");
	expect_str(r, "k=x", "1");
	free_res(r);
}

static void test_service_name_precedence(void **state)
{
	pb_resource *r;

	(void)state;
	setenv("OTEL_SERVICE_NAME", "from-service-name", 1);
	r = with_attrs("service.name=from-attributes,a=1");
	expect_str(r, "service.name", "from-service-name");
	assert_string_equal(r->attributes[0]->key, "service.name");
	assert_string_equal(sr_resource_service_name(), "from-service-name");
	expect_str(r, "a", "1");
	free_res(r);

	unsetenv("OTEL_SERVICE_NAME");
	r = with_attrs("a=1,service.name=from%20attributes");
	expect_str(r, "service.name", "from attributes");
	assert_string_equal(r->attributes[0]->key, "service.name");
	assert_string_equal(sr_resource_service_name(), "from attributes");
	free_res(r);

	/* Empty OTEL_SERVICE_NAME counts as unset. */
	setenv("OTEL_SERVICE_NAME", "", 1);
	r = with_attrs("service.name=svc2");
	expect_str(r, "service.name", "svc2");
	free_res(r);

	/* An empty service.name falls back to unknown_service. */
	char want[PATH_MAX + 32];
	snprintf(want, sizeof want, "unknown_service:%s", exe_name());
	r = with_attrs("service.name=");
	expect_str(r, "service.name", want);
	free_res(r);

	/* OTEL_SERVICE_NAME is used as given (UTF-8 repaired if need be). */
	setenv("OTEL_SERVICE_NAME", "  spaced %41 caf\xc3\xa9 \xff", 1);
	r = with_attrs(NULL);
	expect_str(r, "service.name", "  spaced %41 caf\xc3\xa9 " REPL);
	free_res(r);
}

static void test_env_overrides_detected(void **state)
{
	pb_resource *r;

	(void)state;
	r = with_attrs("host.name=myhost,process.pid=abc,os.type=plan9,telemetry.sdk.language=cxx");
	expect_str(r, "host.name", "myhost");
	expect_str(r, "process.pid", "abc");
	expect_str(r, "os.type", "plan9");
	expect_str(r, "telemetry.sdk.language", "cxx");
	/* Replaced in place: same number of attributes as the defaults. */
	assert_int_equal(r->n_attributes, N_DEFAULT);
	free_res(r);
}

static void test_malformed_discards_all(void **state)
{
	static const char *bad[] = {
		"novalue",          /* no '=' */
		"=v",               /* empty key */
		" \t=v",            /* key empty after trimming */
		"k=%zz",            /* bad escape */
		"k=%4",             /* short escape */
		"k=abc%",           /* '%' at the end */
		"k%=v",             /* bad escape in the key */
		"k=a=b",            /* unencoded '=' in the value */
		"k=%ff",            /* decodes to invalid UTF-8 */
		"k=%C3",            /* truncated UTF-8 sequence */
		"k=%ED%A0%80",      /* UTF-16 surrogate */
		"k=%C0%AF",         /* overlong */
		"k=%F4%90%80%80",   /* above U+10FFFF */
		"k=%00",            /* NUL */
		"k=a\001b",         /* raw control character */
		"k=a\x7f",
		"k=\xff",           /* raw invalid UTF-8 */
	};
	char buf[256], want[PATH_MAX + 32];
	pb_resource *r;

	(void)state;
	snprintf(want, sizeof want, "unknown_service:%s", exe_name());
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(buf, sizeof buf, "good=1,service.name=svc,%s,also=2", bad[i]);
		r = with_attrs(buf);
		if (find(r, "good") || find(r, "also") || find(r, "k"))
			fail_msg("\"%s\" was not discarded", buf);
		expect_str(r, "service.name", want);
		assert_int_equal(r->n_attributes, N_DEFAULT);
		free_res(r);
	}
}

static void test_lenient_forms(void **state)
{
	pb_resource *r;

	(void)state;
	r = with_attrs(",a=1,, ,b=2,");
	expect_str(r, "a", "1");
	expect_str(r, "b", "2");
	free_res(r);

	/* Baggage properties are not supported: "v;p=1x" is a value with a
	 * raw '=', which discards the whole variable. */
	r = with_attrs("empty=,dup=1,dup=2,sp=a b,utf=Z\xc3\xbcrich,semi=v;p=1x");
	assert_null(find(r, "empty"));
	assert_int_equal(r->n_attributes, N_DEFAULT);
	free_res(r);
	r = with_attrs("empty=,dup=1,dup=2,sp=a b,utf=Z\xc3\xbcrich,semi=v;p");
	expect_str(r, "empty", "");
	expect_str(r, "dup", "2"); /* last one wins */
	expect_str(r, "sp", "a b");
	expect_str(r, "utf", "Z\xc3\xbcrich");
	expect_str(r, "semi", "v;p"); /* no baggage properties: taken literally */
	free_res(r);
}

static void test_enospc_and_args(void **state)
{
	uint8_t big[32768], *exact;
	size_t len = 0, need = 0;

	(void)state;
	setenv("OTEL_SERVICE_NAME", "sized", 1);
	assert_int_equal(sr_resource_encode(NULL, 0, &need), -ENOSPC);
	assert_true(need > 50);
	assert_int_equal(sr_resource_encode(big, 10, &len), -ENOSPC);
	assert_int_equal(len, need);
	assert_int_equal(sr_resource_encode(big, need - 1, &len), -ENOSPC);
	exact = malloc(need);
	assert_non_null(exact);
	assert_int_equal(sr_resource_encode(exact, need, &len), 0);
	assert_int_equal(len, need);
	assert_int_equal(sr_resource_encode(big, sizeof big, &len), 0);
	assert_int_equal(len, need);
	assert_memory_equal(exact, big, need);
	free(exact);

	assert_int_equal(sr_resource_encode(big, sizeof big, NULL), -EINVAL);
	assert_int_equal(sr_resource_encode(NULL, 10, &len), -EINVAL);
}

static void test_service_name_cache_truncated(void **state)
{
	char name[400];
	const char *cached;
	size_t n;
	pb_resource *r;

	(void)state;
	/* 2 + 2 * 180 bytes: byte 255 is the second byte of a character, so
	 * the cut backs up to 254. */
	name[0] = 'x';
	name[1] = 'y';
	for (int i = 0; i < 180; i++)
		memcpy(name + 2 + 2 * i, "\xc3\xa9", 2);
	name[362] = '\0';
	setenv("OTEL_SERVICE_NAME", name, 1);
	r = encode_decode();
	expect_str(r, "service.name", name); /* never cut in the resource */
	free_res(r);
	cached = sr_resource_service_name();
	n = strlen(cached);
	assert_int_equal(n, 254); /* "xy" + 126 characters */
	assert_memory_equal(cached, name, n);
}

/* ---- process.command_args bounds (child re-exec) ------------------------------- */

/* Child mode: check the encoded command_args against our own argv. */
/* Child mode with SR_TEST_CMDLINE_WANT: process.command_args after
 * argv[0] must be exactly the '|'-separated values ("-": no attribute). */
static int cmdline_want(const char *want)
{
	uint8_t buf[65536];
	size_t len;
	const pb_any *v = NULL;
	if (sr_resource_encode(buf, sizeof buf, &len) != 0)
		return 10;
	pb_resource *r = opentelemetry__proto__resource__v1__resource__unpack(NULL, len, buf);
	if (!r)
		return 11;
	for (size_t i = 0; i < r->n_attributes; i++)
		if (strcmp(r->attributes[i]->key, "process.command_args") == 0)
			v = r->attributes[i]->value;
	int rc = 0;
	if (strcmp(want, "-") == 0) {
		rc = v ? 14 : 0;
	} else if (!v || v->value_case != CASE_ARRAY) {
		rc = 15;
	} else {
		char got[4096] = "";
		for (size_t i = 1; i < v->array_value->n_values; i++) {
			if (i > 1)
				strncat(got, "|", sizeof got - strlen(got) - 1);
			strncat(got, v->array_value->values[i]->string_value, sizeof got - strlen(got) - 1);
		}
		if (strcmp(got, want) != 0) {
			fprintf(stderr, "child: got '%s', want '%s'\n", got, want);
			rc = 16;
		}
	}
	opentelemetry__proto__resource__v1__resource__free_unpacked(r, NULL);
	return rc;
}

static int cmdline_child(int argc, char **argv)
{
	if (getenv("SR_TEST_CMDLINE_WANT"))
		return cmdline_want(getenv("SR_TEST_CMDLINE_WANT"));
	uint8_t buf[65536];
	size_t len, used = 0;
	int want = 0;
	pb_resource *r;
	const pb_any *v = NULL;

	if (sr_resource_encode(buf, sizeof buf, &len) != 0)
		return 10;
	r = opentelemetry__proto__resource__v1__resource__unpack(NULL, len, buf);
	if (!r)
		return 11;
	for (size_t i = 0; i < r->n_attributes; i++)
		if (strcmp(r->attributes[i]->key, "process.command_args") == 0)
			v = r->attributes[i]->value;
	/* Expected: the arguments whose terminating NUL falls within 4 KiB,
	 * at most 64 of them. */
	while (want < argc && want < 64 && used + strlen(argv[want]) + 1 <= 4096)
		used += strlen(argv[want++]) + 1;
	if (!v || v->value_case != CASE_ARRAY || (int)v->array_value->n_values != want) {
		fprintf(stderr, "child: want %d args, got %d\n", want,
			v && v->value_case == CASE_ARRAY ? (int)v->array_value->n_values : -1);
		return 12;
	}
	for (int i = 0; i < want; i++) {
		const char *exp = strcmp(argv[i], "\xff\xfe") == 0 ? REPL REPL : argv[i];
		if (strcmp(v->array_value->values[i]->string_value, exp) != 0) {
			fprintf(stderr, "child: arg %d differs\n", i);
			return 13;
		}
	}
	opentelemetry__proto__resource__v1__resource__free_unpacked(r, NULL);
	return 0;
}

/* Re-run this binary in child mode with argv[1..] = args, and
 * SPANRING_COMMAND_ARGS=mode, SR_TEST_CMDLINE_WANT=want unless NULL. */
static void run_child_want(char **args, int n_args, const char *mode, const char *want)
{
	char path[PATH_MAX];
	char **argv = calloc((size_t)n_args + 2, sizeof *argv);
	int status;
	pid_t pid;

	assert_non_null(argv);
	exe_path(path, sizeof path);
	argv[0] = path;
	for (int i = 0; i < n_args; i++)
		argv[i + 1] = args[i];
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("SR_TEST_CMDLINE_CHILD", "1", 1);
		if (mode)
			setenv("SPANRING_COMMAND_ARGS", mode, 1);
		if (want)
			setenv("SR_TEST_CMDLINE_WANT", want, 1);
		execv(path, argv);
		_exit(127);
	}
	free(argv);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void run_child(char **args, int n_args)
{
	run_child_want(args, n_args, NULL, NULL);
}

/* SPANRING_COMMAND_ARGS: redacted by default, full, off (lib/args.c). */
static void test_command_args_modes(void **state)
{
	char *args[] = {"--password=hunter2", "--token", "tok", "https://u:p@h/x", "-v", "plain"};
	const char *red = "--password=REDACTED|--token|REDACTED|https://REDACTED@h/x|-v|plain";

	(void)state;
	run_child_want(args, 6, NULL, red);
	run_child_want(args, 6, "redacted", red);
	run_child_want(args, 6, "bogus", red);
	run_child_want(args, 6, "full", "--password=hunter2|--token|tok|https://u:p@h/x|-v|plain");
	run_child_want(args, 6, "off", "-");
}

static void test_command_args_bounds(void **state)
{
	static char many[100][16], longs[10][1001];
	char *args[100];

	(void)state;
	/* 101 arguments: only 64 are kept. */
	for (int i = 0; i < 100; i++) {
		snprintf(many[i], sizeof many[i], "a%d", i);
		args[i] = many[i];
	}
	run_child(args, 100);
	/* 63 extra arguments + argv[0] = exactly 64: all kept. */
	run_child(args, 63);
	/* Long arguments: the one that crosses 4 KiB and all after it go. */
	for (int i = 0; i < 10; i++) {
		memset(longs[i], 'a' + i, 1000);
		longs[i][1000] = '\0';
		args[i] = longs[i];
	}
	run_child(args, 10);
	/* Invalid UTF-8 in an argument is repaired, not dropped. */
	args[0] = "ok";
	args[1] = "\xff\xfe";
	args[2] = "";
	args[3] = "last";
	run_child(args, 4);
}

/* ---- protoc cross-check ---------------------------------------------------------- */

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Run cmd, return its stdout (malloc'd) or NULL if it failed. */
static char *run_capture(const char *cmd)
{
	size_t cap = 1 << 16, n = 0, r;
	char *out = malloc(cap);
	FILE *f = popen(cmd, "r");

	assert_non_null(out);
	assert_non_null(f);
	while ((r = fread(out + n, 1, cap - 1 - n, f)) > 0)
		n += r;
	out[n] = '\0';
	if (pclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static void test_protoc_cross_check(void **state)
{
	const char *src = getenv("SPANRING_TEST_SRC");
	const char *ref = getenv("SPANRING_OTLP_PROTO_DIR");
	char tmp[] = "/tmp/sr_resource_XXXXXX", path[PATH_MAX], cmd[3 * PATH_MAX];
	uint8_t buf[32768];
	size_t len;
	char *ours, *theirs, line[128];
	int fd;

	(void)state;
	if (!ref)
		ref = "/work/shared/otlp-proto";
	if (!src)
		src = ".";
	snprintf(path, sizeof path, "%s/opentelemetry/proto/resource/v1/resource.proto", ref);
	if (!exists(path) || system("command -v protoc >/dev/null 2>&1") != 0) {
		print_message("protoc or %s missing: cross-check skipped\n", ref);
		skip();
	}
	snprintf(path, sizeof path, "%s/proto/otlp_resource.proto", src);
	if (!exists(path) || strchr(src, '\'') || strchr(ref, '\'')) {
		print_message("project schema not found (set SPANRING_TEST_SRC): skipped\n");
		skip();
	}

	setenv("OTEL_SERVICE_NAME", "cross check", 1);
	setenv("OTEL_RESOURCE_ATTRIBUTES", "k=v%2Cw,euro=%E2%82%AC,quote=a\"b", 1);
	assert_int_equal(sr_resource_encode(buf, sizeof buf, &len), 0);
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);

	snprintf(cmd, sizeof cmd,
		 "protoc --decode=opentelemetry.proto.resource.v1.Resource -I'%s/proto' "
		 "otlp_resource.proto < %s",
		 src, tmp);
	ours = run_capture(cmd);
	snprintf(cmd, sizeof cmd,
		 "protoc --decode=opentelemetry.proto.resource.v1.Resource -I'%s' "
		 "opentelemetry/proto/resource/v1/resource.proto < %s",
		 ref, tmp);
	theirs = run_capture(cmd);
	unlink(tmp);
	assert_non_null(ours);
	assert_non_null(theirs);
	assert_string_equal(ours, theirs);
	assert_non_null(strstr(theirs, "key: \"telemetry.sdk.name\""));
	assert_non_null(strstr(theirs, "string_value: \"spanring\""));
	assert_non_null(strstr(theirs, "string_value: \"cross check\""));
	assert_non_null(strstr(theirs, "string_value: \"v,w\""));
	assert_non_null(strstr(theirs, "key: \"process.command_args\""));
	assert_non_null(strstr(theirs, "array_value {"));
	snprintf(line, sizeof line, "int_value: %d\n", (int)getpid());
	assert_non_null(strstr(theirs, line));
	free(ours);
	free(theirs);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_service_name_before_encode, clear_env),
		cmocka_unit_test_setup(test_defaults, clear_env),
		cmocka_unit_test_setup(test_env_attributes, clear_env),
		cmocka_unit_test_setup(test_percent_decoding, clear_env),
		cmocka_unit_test_setup(test_service_name_precedence, clear_env),
		cmocka_unit_test_setup(test_env_overrides_detected, clear_env),
		cmocka_unit_test_setup(test_malformed_discards_all, clear_env),
		cmocka_unit_test_setup(test_lenient_forms, clear_env),
		cmocka_unit_test_setup(test_enospc_and_args, clear_env),
		cmocka_unit_test_setup(test_service_name_cache_truncated, clear_env),
		cmocka_unit_test_setup(test_command_args_bounds, clear_env),
		cmocka_unit_test_setup(test_command_args_modes, clear_env),
		cmocka_unit_test_setup(test_protoc_cross_check, clear_env),
	};

	if (getenv("SR_TEST_CMDLINE_CHILD"))
		return cmdline_child(argc, argv);
	g_argc = argc;
	g_argv = argv;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
