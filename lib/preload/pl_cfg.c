/* SPDX-License-Identifier: MIT */
/*
 * The shim's own settings (the library reads the OTEL_* ones itself):
 *
 *   SPANRING_TRACE            categories, comma-separated (see README):
 *                             process, exec, dns, connect, wait, fsync,
 *                             all, none, default; "-name" removes one. A
 *                             list of removals only starts from the default.
 *   SPANRING_MIN_DURATION_US  interposed calls shorter than this give no span
 *   SPANRING_SIGNALS          all (default), crash, none
 *   SPANRING_EXIT_TIMEOUT_MS  as the library: wait for the agent at exit
 *   SPANRING_EXCLUDE          executables (fnmatch patterns) left alone
 *   SPANRING_COMMAND_ARGS     redacted (default), full, off: parsed by
 *                             sr_args_mode_parse() (lib/args.c), set by pl_ctor
 *   SPANRING_DEBUG            report on stderr
 *
 * Everything here is pure (values in, settings out) so that the unit
 * tests can drive it without touching the environment.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "preload.h"

static const struct {
	const char *name;
	unsigned bits;
} categories[] = {
	{"process", PL_T_PROCESS}, {"exec", PL_T_EXEC},   {"dns", PL_T_DNS},
	{"connect", PL_T_CONNECT}, {"wait", PL_T_WAIT},   {"fsync", PL_T_FSYNC},
	{"all", PL_T_ALL},         {"default", PL_T_DEFAULT},
};

static bool is_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == ':';
}

static unsigned parse_trace(const char *v, bool *bad)
{
	if (!v || !*v)
		return PL_T_DEFAULT;
	/* First pass: does the list name anything positively? */
	bool positive = false;
	for (const char *p = v; *p;) {
		while (*p && is_sep(*p))
			p++;
		if (*p && *p != '-')
			positive = true;
		while (*p && !is_sep(*p))
			p++;
	}
	unsigned t = positive ? 0 : PL_T_DEFAULT;
	for (const char *p = v; *p;) {
		while (*p && is_sep(*p))
			p++;
		if (!*p)
			break;
		bool minus = *p == '-';
		if (minus)
			p++;
		const char *s = p;
		while (*p && !is_sep(*p))
			p++;
		size_t n = (size_t)(p - s);
		if (n == 4 && strncasecmp(s, "none", 4) == 0) {
			t = 0;
			continue;
		}
		size_t i;
		for (i = 0; i < sizeof(categories) / sizeof(categories[0]); i++)
			if (strlen(categories[i].name) == n && strncasecmp(s, categories[i].name, n) == 0)
				break;
		if (i == sizeof(categories) / sizeof(categories[0])) {
			*bad = true;
			continue;
		}
		if (minus)
			t &= ~categories[i].bits;
		else
			t |= categories[i].bits;
	}
	return t;
}

/* Unsigned decimal; false if v is not one (or overflows 2^53). */
static bool parse_uint(const char *v, uint64_t *out)
{
	uint64_t x = 0;
	if (!v || !*v)
		return false;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9' || x > (1ull << 53))
			return false;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	*out = x;
	return true;
}

void pl_config_parse(struct pl_config *c, const char *trace, const char *min_us,
		     const char *signals, const char *exit_ms, const char *debug)
{
	bool bad = false;
	uint64_t x;

	memset(c, 0, sizeof(*c));
	c->trace = parse_trace(trace, &bad);
	if (bad)
		c->bad |= 1u << 0;

	if (min_us && *min_us) {
		if (parse_uint(min_us, &x))
			c->min_duration_ns = x * 1000u;
		else
			c->bad |= 1u << 1;
	}

	c->signals = PL_SIG_ALL;
	if (signals && *signals) {
		if (strcasecmp(signals, "all") == 0 || strcasecmp(signals, "default") == 0)
			c->signals = PL_SIG_ALL;
		else if (strcasecmp(signals, "crash") == 0)
			c->signals = PL_SIG_CRASH;
		else if (strcasecmp(signals, "none") == 0 || strcmp(signals, "0") == 0)
			c->signals = PL_SIG_NONE;
		else
			c->bad |= 1u << 2;
	}

	c->exit_timeout_ms = 500;
	if (exit_ms && *exit_ms) {
		if (parse_uint(exit_ms, &x) && x <= 3600000)
			c->exit_timeout_ms = (int)x;
		else
			c->bad |= 1u << 3;
	}
	c->debug = debug && *debug && strcmp(debug, "0") != 0;
}

bool pl_name_listed(const char *exe, const char *list)
{
	char pat[256];
	if (!exe || !list)
		return false;
	for (const char *p = list; *p;) {
		while (*p && is_sep(*p))
			p++;
		const char *s = p;
		while (*p && !is_sep(*p))
			p++;
		size_t n = (size_t)(p - s);
		if (!n || n >= sizeof(pat))
			continue;
		memcpy(pat, s, n);
		pat[n] = '\0';
		if (fnmatch(pat, exe, 0) == 0)
			return true;
	}
	return false;
}

bool pl_sdk_disabled(const char *v)
{
	/* The library's own rule (lib/config.c), so both agree. */
	return v && strcasecmp(v, "true") == 0;
}

const char *pl_inert_reason(unsigned long at_secure, const char *sdk_disabled, const char *exe,
			    const char *exclude, unsigned trace)
{
	if (at_secure)
		return "secure execution (AT_SECURE)";
	if (pl_sdk_disabled(sdk_disabled))
		return "OTEL_SDK_DISABLED=true";
	/* The agent must never trace itself into its own rings. */
	if (exe && (strncmp(exe, "spanring-agent", 14) == 0 || strcmp(exe, "spanring-dump") == 0))
		return "spanring's own program";
	if (pl_name_listed(exe, exclude))
		return "SPANRING_EXCLUDE";
	if (!trace)
		return "SPANRING_TRACE=none";
	return NULL;
}
