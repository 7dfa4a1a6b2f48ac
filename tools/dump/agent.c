/* SPDX-License-Identifier: MIT */
/*
 * spanring-dump and the agent's control socket (agent/ctl.c): one command
 * per line, one JSON line per answer; `ringfd` answers carry an fd.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dump.h"
#include "fdpass.h"
#include "json.h"
#include "sockpath.h"

#define CTL_TIMEOUT_MS 3000
#define CTL_MAX_ANSWER (64u << 20)

const char *dump_ctl_path(const struct dump_ring_opts *o, char *buf, size_t n)
{
	if (o->ctl_socket) {
		int k = snprintf(buf, n, "%s", o->ctl_socket);
		return k > 0 && (size_t)k < n ? buf : NULL;
	}
	char sock[200];
	const char *s = o->agent_socket;
	if (!s)
		s = sr_socket_path(sock, sizeof(sock));
	if (!s)
		return NULL;
	int k = snprintf(buf, n, "%s.ctl", s);
	return k > 0 && (size_t)k < n ? buf : NULL;
}

int dump_ctl_connect(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int dump_ctl_call(int fd, const char *cmd, char **answer, int *fd_out)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "%s\n", cmd);
	if (n <= 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	*answer = NULL;
	if (fd_out)
		*fd_out = -1;
	for (int off = 0; off < n;) {
		ssize_t w = send(fd, line + off, (size_t)(n - off), MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (int)w;
	}
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	int64_t deadline = now_ms() + CTL_TIMEOUT_MS;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= CTL_MAX_ANSWER) {
				free(buf);
				return -EMSGSIZE;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			free(buf);
			return -ETIMEDOUT;
		}
		struct sr_fd_msg m;
		ssize_t r = sr_fd_recv(fd, buf + len, cap - 1 - len, 4, 0, &m);
		for (size_t i = 0; i < m.nfds; i++) {
			if (r > 0 && fd_out && *fd_out < 0)
				*fd_out = m.fds[i];
			else
				close(m.fds[i]);
		}
		if (r < 0 || r == 0) {
			int e = r < 0 ? -errno : -ECONNRESET;
			free(buf);
			return e;
		}
		len += (size_t)r;
		buf[len] = 0;
		char *nl = memchr(buf, '\n', len);
		if (nl) {
			*nl = 0;
			*answer = buf;
			return 0;
		}
	}
}

/* Connect and ask one command; the parsed answer in *j. Exit code. */
static int ask(const struct dump_ring_opts *o, const char *cmd, struct json *j, char *err,
	       size_t errlen, char **raw)
{
	char path[128];
	if (!dump_ctl_path(o, path, sizeof(path))) {
		snprintf(err, errlen, "no agent: control socket path too long: %s%s",
			 o->ctl_socket ? o->ctl_socket : o->agent_socket ? o->agent_socket : "(default)",
			 o->ctl_socket ? "" : ".ctl");
		return DUMP_EXIT_NOAGENT;
	}
	int fd = dump_ctl_connect(path);
	if (fd < 0) {
		snprintf(err, errlen, "no agent: cannot connect to %s: %s", path, strerror(-fd));
		return fd == -EACCES || fd == -EPERM ? DUMP_EXIT_PERM : DUMP_EXIT_NOAGENT;
	}
	char *ans;
	int e = dump_ctl_call(fd, cmd, &ans, NULL);
	close(fd);
	if (e) {
		snprintf(err, errlen, "agent at %s did not answer '%s': %s", path, cmd, strerror(-e));
		return DUMP_EXIT_NOAGENT;
	}
	char jerr[128];
	if (json_parse(ans, strlen(ans), j, jerr, sizeof(jerr))) {
		snprintf(err, errlen, "agent at %s answered '%s' with invalid JSON: %s", path, cmd,
			 jerr);
		free(ans);
		return DUMP_EXIT_ERROR;
	}
	if (j->t == JSON_OBJ && json_get(j, "ok") && !json_bool(j, "ok", true)) {
		snprintf(err, errlen, "agent: %s", json_str(j, "error", "error"));
		json_free(j);
		free(ans);
		return DUMP_EXIT_ERROR;
	}
	if (raw)
		*raw = ans;
	else
		free(ans);
	return DUMP_EXIT_OK;
}

int dump_agent_check(const struct dump_ring_opts *o, char *err, size_t errlen)
{
	struct json j;
	int rc = ask(o, "rings", &j, err, errlen, NULL);
	if (rc == DUMP_EXIT_OK)
		json_free(&j);
	return rc;
}

int dump_agent_pids(const struct dump_ring_opts *o, pid_t **pids, int *code)
{
	struct json j;
	char err[256];
	*pids = NULL;
	*code = ask(o, "rings", &j, err, sizeof(err), NULL);
	if (*code)
		return -1;
	int n = 0;
	if (j.t == JSON_ARR) {
		*pids = calloc(j.len ? j.len : 1, sizeof(pid_t));
		for (size_t i = 0; *pids && i < j.len; i++) {
			uint64_t pid;
			if (json_u64(&j.arr[i], "pid", &pid) && pid > 0 && pid < INT32_MAX)
				(*pids)[n++] = (pid_t)pid;
		}
	}
	json_free(&j);
	return n;
}

/* Counter from an object as text ("-" when the agent does not report it). */
static const char *num(const struct json *o, const char *key, char *buf, size_t n)
{
	uint64_t v;
	if (!json_u64(o, key, &v))
		return "-";
	if (v >= 10000000000ull)
		snprintf(buf, n, "%.1fG", (double)v / 1e9);
	else if (v >= 10000000ull)
		snprintf(buf, n, "%.1fM", (double)v / 1e6);
	else
		snprintf(buf, n, "%" PRIu64, v);
	return buf;
}

/* One character per slot for its fill: ' ' empty ... '@' full. */
static void fill_gauge(const struct json *slots, char *out, size_t n, double *maxp)
{
	static const char lv[] = " .:-=+*#%@";
	size_t k = 0;
	double mx = 0;
	for (size_t i = 0; slots && slots->t == JSON_ARR && i < slots->len && k + 2 < n; i++) {
		double pct = json_num(&slots->arr[i], "fill_pct", -1);
		if (pct < 0) {
			out[k++] = '?';
			continue;
		}
		if (pct > mx)
			mx = pct;
		int lvl = pct <= 0 ? 0 : 1 + (int)(pct / 100.0 * 8.999);
		out[k++] = lv[lvl > 9 ? 9 : lvl];
	}
	out[k] = 0;
	*maxp = mx;
}

/* The agent's own line and totals. */
static void list_agent(FILE *f, const struct json *ag)
{
	char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], b7[32], b8[32];
	fprintf(f, "agent %s pid %s, up %.1fs, socket ", json_str(ag, "version", "?"),
		num(ag, "pid", b1, sizeof(b1)), json_num(ag, "uptime_s", 0));
	dump_fputs_safe(f, json_str(ag, "socket", "?"));
	fprintf(f, "%s\n", json_bool(ag, "stopping", false) ? " (stopping)" : "");
	fprintf(f, "  producers %s (registered %s, rejected %s, quarantined %s, closed %s); "
		   "batches %s, spans %s, bytes %s\n",
		num(ag, "producers", b1, sizeof(b1)), num(ag, "registered", b2, sizeof(b2)),
		num(ag, "rejected", b3, sizeof(b3)), num(ag, "quarantined", b4, sizeof(b4)),
		num(ag, "closed", b5, sizeof(b5)), num(ag, "batches", b6, sizeof(b6)),
		num(ag, "spans", b7, sizeof(b7)), num(ag, "bytes", b8, sizeof(b8)));
}

/* One producer's row, and its quarantine reason and drops when it has any. */
static void list_producer(FILE *f, const struct json *p)
{
	char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], b7[32];
	char gauge[80];
	double mx;
	fill_gauge(json_get(p, "slot_state"), gauge, sizeof(gauge), &mx);
	const struct json *drops = json_get(p, "drops");
	struct {
		char s[24];
	} svc;
	/* Fixed-width, escaped service name. */
	const char *sname = json_str(p, "service", "?");
	size_t k = 0;
	for (const unsigned char *c = (const unsigned char *)sname; *c && k < 20; c++)
		svc.s[k++] = *c < 0x20 || *c == 0x7f ? '?' : (char)*c;
	svc.s[k] = 0;
	if (strlen(sname) > 20)
		svc.s[19] = '~';
	fprintf(f, "%-5s %-8s %-20s %-11s %5s [%-8.8s] %5.1f%% %7s %9s %10s %10s\n",
		num(p, "id", b1, sizeof(b1)), num(p, "pid", b2, sizeof(b2)), svc.s,
		json_str(p, "state", json_bool(p, "quarantined", false) ? "quarantined" : "?"),
		num(p, "slots", b3, sizeof(b3)), gauge, mx, num(drops, "total", b4, sizeof(b4)),
		num(p, "lost_marks", b5, sizeof(b5)), num(p, "spans", b6, sizeof(b6)),
		num(p, "bytes", b7, sizeof(b7)));
	if (json_bool(p, "quarantined", false)) {
		fprintf(f, "      quarantined: ");
		dump_fputs_safe(f, json_str(p, "reason", "?"));
		fputc('\n', f);
	}
	if (drops && json_u64(drops, "total", &(uint64_t){0})) {
		uint64_t t = 0;
		json_u64(drops, "total", &t);
		if (t)
			fprintf(f, "      drops: full %s, oversize %s, encode %s\n",
				num(drops, "full", b1, sizeof(b1)), num(drops, "oversize", b2, sizeof(b2)),
				num(drops, "encode", b3, sizeof(b3)));
	}
}

/* One exporter's row: its counters, then whatever else it reports (path,
 * file_bytes, ...) as key=value. */
static void list_exporter(FILE *f, const struct json *e)
{
	char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], b7[32];
	fprintf(f, "%-10.10s %-8.8s %9s %10s %12s %8s %8s %8s %6s ", json_str(e, "name", "?"),
		json_str(e, "kind", "?"), num(e, "batches", b1, sizeof(b1)),
		num(e, "spans", b2, sizeof(b2)), num(e, "bytes", b3, sizeof(b3)),
		num(e, "failures", b4, sizeof(b4)), num(e, "retries", b5, sizeof(b5)),
		num(e, "let_go_spans", b6, sizeof(b6)), num(e, "held", b7, sizeof(b7)));
	static const char *known[] = {"name", "kind", "batches", "spans", "bytes", "failures",
				      "retries", "let_go_batches", "let_go_spans", "held"};
	for (size_t k = 0; e->t == JSON_OBJ && k < e->len; k++) {
		bool skip = false;
		for (size_t q = 0; q < sizeof(known) / sizeof(known[0]); q++)
			skip |= strcmp(e->obj[k].key, known[q]) == 0;
		const struct json *v = &e->obj[k].v;
		if (skip || (v->t != JSON_STR && v->t != JSON_NUM && v->t != JSON_BOOL))
			continue;
		fputc(' ', f);
		dump_fputs_safe(f, e->obj[k].key);
		fputc('=', f);
		if (v->t == JSON_BOOL)
			fputs(v->b ? "true" : "false", f);
		else
			dump_fputs_safe(f, v->s);
	}
	fputc('\n', f);
}

int dump_list(const struct dump_ring_opts *o, bool json_out, FILE *f, char *err, size_t errlen)
{
	struct json st;
	char *raw = NULL;
	int rc = ask(o, "stats", &st, err, errlen, &raw);
	if (rc)
		return rc;
	if (json_out) {
		fprintf(f, "%s\n", raw);
		free(raw);
		json_free(&st);
		return DUMP_EXIT_OK;
	}
	free(raw);
	list_agent(f, json_get(&st, "agent"));

	const struct json *prods = json_get(&st, "producers");
	fprintf(f, "\n%-5s %-8s %-20s %-11s %5s %-10s %6s %7s %9s %10s %10s\n", "ID", "PID", "SERVICE",
		"STATE", "SLOTS", "FILL", "MAX%", "DROPS", "LOST", "SPANS", "BYTES");
	size_t np = prods && prods->t == JSON_ARR ? prods->len : 0;
	for (size_t i = 0; i < np; i++)
		list_producer(f, &prods->arr[i]);
	if (!np)
		fprintf(f, "(no producers)\n");

	const struct json *ex = json_get(&st, "exporters");
	fprintf(f, "\n%-10s %-8s %9s %10s %12s %8s %8s %8s %6s  %s\n", "EXPORTER", "KIND", "BATCHES",
		"SPANS", "BYTES", "FAILURES", "RETRIES", "LET_GO", "HELD", "DETAILS");
	size_t ne = ex && ex->t == JSON_ARR ? ex->len : 0;
	for (size_t i = 0; i < ne; i++)
		list_exporter(f, &ex->arr[i]);
	if (!ne)
		fprintf(f, "(no exporters)\n");
	json_free(&st);
	fflush(f);
	return DUMP_EXIT_OK;
}
