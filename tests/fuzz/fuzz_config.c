/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the agent's configuration parsers.
 *
 * First byte even: the rest is a configuration file, parsed by
 * agent_config_parse_file() straight from the (not NUL-terminated) fuzz
 * buffer. Odd: the rest is split at NUL bytes into command-line arguments
 * for agent_config_parse_args() (arguments that would load a file are
 * dropped). A configuration that parses is then completed with
 * agent_config_finish().
 *
 * Invariants: the result is 0, -EINVAL or -ENOMEM; an error message is
 * NUL-terminated, non-empty and, for files, starts with "<name>:<line>:";
 * parsing the same input again gives the same result (no hidden state);
 * a finished configuration keeps poll_interval_min <= poll_interval_max
 * and a socket path; nothing leaks (LeakSanitizer).
 */
#include <errno.h>

#include "fuzz.h"

#include "config.h"
#include "instances.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* agent_config_finish() consults these; keep the run independent of them. */
	unsetenv("SPANRING_SOCKET");
	unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	setenv("XDG_RUNTIME_DIR", "/tmp", 1);
	return 0;
}

static void check_err(int r, const char *err, size_t errlen, bool file)
{
	FZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (!r)
		return;
	FZ_CHECK(memchr(err, 0, errlen) != NULL);
	FZ_CHECK(err[0] != 0);
	if (file)
		FZ_CHECK(strncmp(err, "fuzz.conf:", 10) == 0);
}

static void finish(struct agent_config *c)
{
	char err[512];
	int r = agent_config_finish(c, err, sizeof(err));
	check_err(r, err, sizeof(err), false);
	if (r == 0) {
		FZ_CHECK(c->poll_min_us <= c->poll_max_us);
		FZ_CHECK(c->socket_path && c->socket_path[0]);
		/* At least one exporter: an unnamed one (a bit of exporters) or a
		 * named instance TYPE/NAME enabled. */
		bool any = c->exporters != 0;
		for (size_t i = 0; i < c->n_inst && !any; i++)
			any = c->inst[i].enabled;
		FZ_CHECK(any);
	}
}

static int parse_file(const uint8_t *p, size_t n, char *err, size_t errlen, bool fin)
{
	struct agent_config c;
	agent_config_defaults(&c);
	int r = agent_config_parse_file(&c, (const char *)p, n, "fuzz.conf", err, errlen);
	check_err(r, err, errlen, true);
	if (r == 0 && fin)
		finish(&c);
	agent_config_free(&c);
	return r;
}

static int parse_args(const uint8_t *p, size_t n, char *err, size_t errlen, bool fin)
{
	/* argv[0], then the arguments: NUL-separated pieces of the input. */
	char *copy = malloc(n + 1);
	FZ_CHECK(copy);
	memcpy(copy, p, n);
	copy[n] = 0;
	char *argv[66];
	int argc = 0;
	argv[argc++] = (char *)"spanring-agent";
	for (size_t i = 0; i <= n && argc < 64;) {
		char *a = copy + i;
		size_t l = strlen(a);
		/* --config/-c would read a file named by the input: not here. */
		bool file = strcmp(a, "-c") == 0 || strncmp(a, "--config", 8) == 0 ||
			    strncmp(a, "--conf", 6) == 0;
		if (!file)
			argv[argc++] = a;
		i += l + 1;
	}
	argv[argc] = NULL;
	struct agent_config c;
	agent_config_defaults(&c);
	int action = -1;
	int r = agent_config_parse_args(&c, argc, argv, &action, err, errlen);
	check_err(r, err, errlen, false);
	if (r == 0) {
		FZ_CHECK(action >= AGENT_CFG_RUN && action <= AGENT_CFG_CHECK);
		if (fin)
			finish(&c);
	}
	agent_config_free(&c);
	free(copy);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char err1[512], err2[512];
	bool args = data[0] & 1;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	int r1 = args ? parse_args(p, n, err1, sizeof(err1), true)
		      : parse_file(p, n, err1, sizeof(err1), true);
	int r2 = args ? parse_args(p, n, err2, sizeof(err2), false)
		      : parse_file(p, n, err2, sizeof(err2), false);
	FZ_CHECK(r1 == r2);
	if (r1)
		FZ_CHECK(strcmp(err1, err2) == 0);
	return 0;
}
