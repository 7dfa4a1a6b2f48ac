/* SPDX-License-Identifier: MIT */
/* Agent logging to stderr (see log.h). */
#include "log.h"
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"

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

void agent_errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

size_t agent_text_char(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return s[0] >= 0x20 && s[0] != 0x7f ? 1 : 0;
	/* Invalid UTF-8 (overlong forms, surrogates, past U+10FFFF) and the
	 * C1 controls (U+0080..U+009F, 0xc2 0x80..0x9f; CSI is U+009B) are
	 * escaped. */
	size_t len = sbuf_utf8_seq(s, n);
	if (len == 2 && s[0] == 0xc2 && s[1] < 0xa0)
		return 0;
	return len;
}

size_t agent_text_escape(char *dst, size_t cap, const char *src, size_t n)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;
	if (!cap)
		return 0;
	for (size_t i = 0; i < n;) {
		size_t k = agent_text_char(s + i, n - i);
		char esc[4];
		const char *piece = (const char *)s + i;
		size_t plen = k;
		if (!k) {
			esc[0] = '\\';
			if (s[i] == '\n') {
				esc[1] = 'n';
				plen = 2;
			} else if (s[i] == '\t') {
				esc[1] = 't';
				plen = 2;
			} else {
				esc[1] = 'x';
				sr_hex_encode(&s[i], 1, esc + 2);
				plen = 4;
			}
			piece = esc;
			k = 1;
		}
		if (o + plen >= cap)
			break; /* never half an escape or half a character */
		memcpy(dst + o, piece, plen);
		o += plen;
		i += k;
	}
	dst[o] = 0;
	return o;
}

void sbuf_term_str(struct sbuf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t k = agent_text_char(u + i, n - i);
		if (k) {
			sbuf_put(b, s + i, k);
			i += k;
			continue;
		}
		char esc[5];
		agent_text_escape(esc, sizeof(esc), s + i, 1);
		sbuf_puts(b, esc);
		i++;
	}
}

/*
 * Format the whole line first and write it with one write(2), so that a
 * line is never interleaved with another process writing the same stderr.
 * The message is escaped (agent_text_escape): it holds strings producers
 * and backends chose (service names, server messages), which must neither
 * reach a terminal as control sequences nor break the line in two.
 */
static void log_vline(int level, const char *suffix, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void log_vline(int level, const char *suffix, const char *fmt, va_list ap)
{
	char msg[1024];
	char line[2048];
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
	size_t mlen = 0;
	int m = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (m > 0)
		mlen = (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
	if (suffix && mlen < sizeof(msg) - 1) {
		m = snprintf(msg + mlen, sizeof(msg) - mlen, "%s", suffix);
		if (m > 0)
			mlen += (size_t)m < sizeof(msg) - mlen ? (size_t)m : sizeof(msg) - mlen - 1;
	}
	/* One line whatever the message held; room kept for the newline. */
	len += agent_text_escape(line + len, sizeof(line) - len - 1, msg, mlen);
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

struct agent_log_rl *agent_log_rl_of(struct agent_log_rls *rls, const void *site)
{
	size_t i = 0;
	while (i < AGENT_LOG_RL_SITES - 1 && rls->site[i] && rls->site[i] != site)
		i++;
	rls->site[i] = site;
	return &rls->rl[i];
}
