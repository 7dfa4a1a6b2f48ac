/* SPDX-License-Identifier: MIT */
/*
 * TRACEPARENT / TRACESTATE in the environment handed to a child.
 *
 * The caller's arrays are never modified: when the environment needs a
 * change, a new array (and the two strings) is built in a buffer the
 * caller provides, which exec* wrappers take from mmap() so that this
 * works in a vfork child and after fork() in a threaded program, where
 * malloc() is off limits. No allocation, no locale, no stdio here.
 */
#include <string.h>

#include "preload.h"

#define TP_NAME "TRACEPARENT="
#define TS_NAME "TRACESTATE="

static bool has_name(const char *e, const char *name, size_t n)
{
	return strncmp(e, name, n) == 0;
}

/* The value of the first TRACEPARENT entry, or NULL. */
static const char *find_tp(char *const envp[])
{
	for (size_t i = 0; envp && envp[i]; i++)
		if (has_name(envp[i], TP_NAME, sizeof(TP_NAME) - 1))
			return envp[i] + sizeof(TP_NAME) - 1;
	return NULL;
}

/* Must envp change? */
static bool needs_fix(char *const envp[], const struct pl_env_want *w)
{
	if (!w || !w->tp)
		return false;
	const char *cur = find_tp(envp);
	if (!cur)
		return true;
	if (strcmp(cur, w->tp) == 0)
		return false;
	for (unsigned i = 0; i < w->n_ours && i < 4; i++)
		if (w->ours[i] && w->ours[i][0] && strcmp(cur, w->ours[i]) == 0)
			return true;
	return false; /* the program's own choice */
}

static bool is_trace_var(const char *e)
{
	return has_name(e, TP_NAME, sizeof(TP_NAME) - 1) || has_name(e, TS_NAME, sizeof(TS_NAME) - 1);
}

size_t pl_env_fix_size(char *const envp[], const struct pl_env_want *w)
{
	if (!needs_fix(envp, w))
		return 0;
	size_t kept = 0;
	for (size_t i = 0; envp && envp[i]; i++)
		if (!is_trace_var(envp[i]))
			kept++;
	size_t ts = w->ts ? strlen(w->ts) : 0;
	return (kept + 3) * sizeof(char *) + sizeof(TP_NAME) + strlen(w->tp) +
	       (ts ? sizeof(TS_NAME) + ts : 0);
}

char **pl_env_fix(char *const envp[], const struct pl_env_want *w, void *buf, size_t size)
{
	size_t need = pl_env_fix_size(envp, w);
	if (!need || !buf || size < need)
		return (char **)envp;
	size_t kept = 0;
	for (size_t i = 0; envp && envp[i]; i++)
		if (!is_trace_var(envp[i]))
			kept++;
	char **out = buf;
	char *str = (char *)buf + (kept + 3) * sizeof(char *);
	size_t k = 0;
	for (size_t i = 0; envp && envp[i]; i++)
		if (!is_trace_var(envp[i]))
			out[k++] = envp[i];

	size_t tl = strlen(w->tp);
	out[k++] = str;
	memcpy(str, TP_NAME, sizeof(TP_NAME) - 1);
	memcpy(str + sizeof(TP_NAME) - 1, w->tp, tl + 1);
	str += sizeof(TP_NAME) + tl;

	size_t ts = w->ts ? strlen(w->ts) : 0;
	if (ts) {
		out[k++] = str;
		memcpy(str, TS_NAME, sizeof(TS_NAME) - 1);
		memcpy(str + sizeof(TS_NAME) - 1, w->ts, ts + 1);
	}
	out[k] = NULL;
	return out;
}
