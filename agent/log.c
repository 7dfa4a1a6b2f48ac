/* SPDX-License-Identifier: MIT */
/* Agent logging to stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int log_level = AGENT_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void agent_log_set_level(int level)
{
	if (level >= AGENT_LOG_ERROR && level <= AGENT_LOG_DEBUG)
		log_level = level;
}

int agent_log_get_level(void)
{
	return log_level;
}

int agent_log_level_parse(const char *s)
{
	for (int i = 0; i <= AGENT_LOG_DEBUG; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	if (strcasecmp(s, "warning") == 0)
		return AGENT_LOG_WARN;
	return -1;
}

const char *agent_log_level_name(int level)
{
	if (level < AGENT_LOG_ERROR || level > AGENT_LOG_DEBUG)
		return "?";
	return level_names[level];
}

uint64_t agent_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Format the whole line first and write it with one write(2), so that a
 * line is never interleaved with another process writing the same stderr.
 */
static void log_vline(int level, const char *suffix, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void log_vline(int level, const char *suffix, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
	if (n < 0)
		return;
	size_t len = (size_t)n;
	int m = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (m > 0)
		len += (size_t)m < sizeof(line) - len ? (size_t)m : sizeof(line) - len - 1;
	if (suffix && len < sizeof(line) - 1) {
		m = snprintf(line + len, sizeof(line) - len, "%s", suffix);
		if (m > 0)
			len += (size_t)m < sizeof(line) - len ? (size_t)m : sizeof(line) - len - 1;
	}
	/* Keep it one line whatever the message contained. */
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void agent_log(int level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vline(level, NULL, fmt, ap);
	va_end(ap);
}

void agent_log_rl(struct agent_log_rl *rl, int level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	uint64_t now = agent_now_ns();
	if (rl->window_start_ns == 0 || now - rl->window_start_ns >= AGENT_LOG_RL_WINDOW_NS) {
		rl->window_start_ns = now;
		rl->in_window = 0;
	}
	if (rl->in_window >= AGENT_LOG_RL_BURST) {
		rl->suppressed++;
		return;
	}
	rl->in_window++;
	char suffix[64] = "";
	if (rl->suppressed) {
		snprintf(suffix, sizeof(suffix), " (%llu similar messages suppressed)",
			 (unsigned long long)rl->suppressed);
		rl->suppressed = 0;
	}
	va_list ap;
	va_start(ap, fmt);
	log_vline(level, suffix[0] ? suffix : NULL, fmt, ap);
	va_end(ap);
}
