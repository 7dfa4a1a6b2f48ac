/* SPDX-License-Identifier: MIT */
/*
 * Agent logging: one line per event on stderr, with a level, and rate
 * limiting of conditions that can repeat (a hostile producer reconnecting
 * in a loop must not flood the journal).
 */
#ifndef SPANRING_AGENT_LOG_H
#define SPANRING_AGENT_LOG_H

#include <stddef.h>
#include <stdint.h>

enum agent_log_level {
	AGENT_LOG_ERROR = 0,
	AGENT_LOG_WARN = 1,
	AGENT_LOG_INFO = 2,
	AGENT_LOG_DEBUG = 3,
};

/* Lines above this level are not written. Default AGENT_LOG_INFO. */
void agent_log_set_level(int level);
int agent_log_get_level(void);
/* "error", "warn", "info", "debug" -> level, or -1. */
int agent_log_level_parse(const char *s);
const char *agent_log_level_name(int level);

void agent_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Rate limiter state of one call site: at most AGENT_LOG_RL_BURST lines per
 * AGENT_LOG_RL_WINDOW_NS; the lines held back are counted and the count is
 * appended to the next line that gets through.
 */
struct agent_log_rl {
	uint64_t window_start_ns;
	uint32_t in_window;
	uint64_t suppressed;
};
#define AGENT_LOG_RL_BURST 5u
#define AGENT_LOG_RL_WINDOW_NS (10ull * 1000000000ull)

void agent_log_rl(struct agent_log_rl *rl, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Rate-limited log with a limiter private to the call site. */
#define AGENT_LOG_RL(level, ...)                                   \
	do {                                                       \
		static struct agent_log_rl agent_log_rl_site_;     \
		agent_log_rl(&agent_log_rl_site_, level, __VA_ARGS__); \
	} while (0)

/*
 * The limiters of one owner (an exporter instance, its spool), one per
 * call site. A site shared by instances limits each on its own: a dead
 * backend's flood of lines does not use up the budget of a healthy one's,
 * whose lines would then be counted as "similar messages" on a line that
 * names the other instance.
 */
#define AGENT_LOG_RL_SITES 16
struct agent_log_rls {
	const void *site[AGENT_LOG_RL_SITES];
	struct agent_log_rl rl[AGENT_LOG_RL_SITES];
};

/* The limiter of site in rls (taken on first use; an owner with more
 * sites than AGENT_LOG_RL_SITES shares the last one among the rest). */
struct agent_log_rl *agent_log_rl_of(struct agent_log_rls *rls, const void *site);

/* Rate-limited log with the call site's limiter in the owner's set rls. */
#define AGENT_LOG_RL_OF(rls, level, ...)                                         \
	do {                                                                     \
		static const char agent_log_rl_site_;                            \
		agent_log_rl(agent_log_rl_of((rls), &agent_log_rl_site_), level, \
			     __VA_ARGS__);                                       \
	} while (0)

#define log_error(...) agent_log(AGENT_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) agent_log(AGENT_LOG_WARN, __VA_ARGS__)
#define log_info(...) agent_log(AGENT_LOG_INFO, __VA_ARGS__)
#define log_debug(...) agent_log(AGENT_LOG_DEBUG, __VA_ARGS__)

/*
 * Text that reaches a terminal or a log (log lines, the console exporter)
 * holds strings that producers and backends chose. agent_text_char()
 * returns the length of the printable character at s (n bytes left):
 * printable ASCII, or a valid UTF-8 sequence that is not a C1 control;
 * 0 when s[0] must be escaped (C0 controls such as ESC, DEL, C1 controls,
 * invalid UTF-8). agent_text_escape() copies src (n bytes) to dst with
 * those bytes escaped as \n, \t or \xNN (the same form as spanring-dump),
 * NUL-terminated, cut at a whole character to fit cap; returns the length.
 */
size_t agent_text_char(const unsigned char *s, size_t n);

/* Format an error message into err (errlen bytes); nothing if err is NULL
 * or errlen 0. The configuration and set-up code report through it. */
void agent_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
size_t agent_text_escape(char *dst, size_t cap, const char *src, size_t n);
/* Append s (n bytes) to b for a terminal (no quotes), escaped as by
 * agent_text_escape(). */
struct sbuf;
void sbuf_term_str(struct sbuf *b, const char *s, size_t n);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t agent_now_ns(void);

#endif
