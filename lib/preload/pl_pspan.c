/* SPDX-License-Identifier: MIT */
/*
 * The process span as a static span object. It is not taken from the
 * library's per-thread pools: its attributes live in struct pl_pspan,
 * so ending it allocates nothing and touches no thread's state. That is
 * what lets a fatal-signal handler commit it (pl_proc.c) with the
 * encoder and slot writer of the library, which are allocation and lock
 * free for an exclusively owned slot.
 *
 * Attributes (OpenTelemetry process semantic conventions):
 *   process.pid, process.parent_pid        int
 *   process.executable.name                the file name exec'd (AT_EXECFN)
 *   process.executable.path                /proc/self/exe
 *   process.command_args                   string array: at most
 *                                          PL_ARGS_MAX arguments ending
 *                                          within PL_ARGS_BYTES bytes; an
 *                                          argument past that is left out;
 *                                          redacted, full or none as
 *                                          SPANRING_COMMAND_ARGS says
 *                                          (lib/resource.h)
 *   process.exit.code                      int, when the process exits
 * and spanring's own:
 *   spanring.process.end                   "exit", "exec" or "signal"
 *   spanring.process.signal                "SIGSEGV" ..., death by signal
 *   spanring.process.fork                  true: a forked child that did
 *                                          not exec (it runs the parent's
 *                                          program)
 * The OpenTelemetry attribute count and value length limits apply;
 * strings that are not valid UTF-8 keep their valid prefix. Status is
 * ERROR for a non-zero exit code or a death by signal.
 */
#include <signal.h>
#include <string.h>

#include "encode.h"
#include "preload.h"
#include "resource.h"

static struct sr_kv *kv_add(struct pl_pspan *p, const char *key, uint8_t type, uint32_t limit)
{
	struct spanring_span *s = &p->s;
	if (s->nkv >= limit || s->nkv >= PL_KV_MAX) {
		s->dropped_attrs++;
		return NULL;
	}
	struct sr_kv *kv = &p->kv[s->nkv++];
	memset(kv, 0, sizeof(*kv));
	kv->key = key;
	kv->key_len = (uint32_t)strlen(key);
	kv->type = type;
	return kv;
}

/* Usable length of s[0..n): valid UTF-8 prefix within the value limit. */
static size_t str_len(const char *s, size_t n, uint32_t limit)
{
	n = sr_utf8_valid_prefix(s, n);
	return sr_utf8_truncate(s, n, limit);
}

void pl_pspan_init(struct pl_pspan *p, const struct pl_pspan_info *in, struct sr_tracer *tr)
{
	memset(p, 0, sizeof(*p));
	struct spanring_span *s = &p->s;
	const uint32_t climit = in->count_limit;
	const uint32_t vlimit = in->value_limit;
	s->state = SR_SPAN_LIVE;
	s->kind = SPANRING_KIND_INTERNAL;
	s->tracer = tr;
	s->kv = p->kv;
	s->kv_cap = PL_KV_MAX;
	s->a_cur = s->inline_arena;
	s->a_end = s->inline_arena + SR_INLINE_ARENA;

	const char *name = in->name && *in->name ? in->name : "process";
	size_t nl = str_len(name, strnlen(name, sizeof(p->name) - 1), UINT32_MAX);
	memcpy(p->name, name, nl);
	p->name[nl] = '\0';
	s->name = p->name;
	s->name_len = (uint32_t)nl;

	struct sr_kv *kv;
	p->kv_pid = p->kv_ppid = -1;
	if ((kv = kv_add(p, "process.pid", SPANRING_ATTR_INT, climit))) {
		kv->v.i = in->pid;
		p->kv_pid = (int32_t)(kv - p->kv);
	}
	if ((kv = kv_add(p, "process.parent_pid", SPANRING_ATTR_INT, climit))) {
		kv->v.i = in->ppid;
		p->kv_ppid = (int32_t)(kv - p->kv);
	}
	if ((kv = kv_add(p, "process.executable.name", SPANRING_ATTR_STRING, climit))) {
		kv->v.ptr = p->name;
		kv->vlen = (uint32_t)sr_utf8_truncate(p->name, nl, vlimit);
	}
	if (in->path && *in->path && (kv = kv_add(p, "process.executable.path", SPANRING_ATTR_STRING, climit))) {
		size_t n = str_len(in->path, strnlen(in->path, sizeof(p->path) - 1), vlimit);
		memcpy(p->path, in->path, n);
		p->path[n] = '\0';
		kv->v.ptr = p->path;
		kv->vlen = (uint32_t)n;
	}
	if (in->argc > 0 && in->argv && in->args_mode != SR_ARGS_OFF) {
		uint32_t n = 0;
		size_t used = 0;
		bool hide = false;
		for (int i = 0; i < in->argc && n < PL_ARGS_MAX && in->argv[i]; i++) {
			size_t len = strlen(in->argv[i]);
			if (in->args_mode == SR_ARGS_REDACTED) {
				/* The redacted form, written straight into argbuf. */
				len = used + 1 < sizeof(p->argbuf)
					      ? sr_arg_redact(in->argv[i], len, hide, p->argbuf + used,
							      sizeof(p->argbuf) - used - 1, &hide)
					      : SIZE_MAX;
				if (len == SIZE_MAX)
					break; /* cut by the bound: left out, with the rest */
				p->argbuf[used + len] = '\0';
			} else {
				if (used + len + 1 > sizeof(p->argbuf))
					break; /* cut by the bound: left out, with the rest */
				memcpy(p->argbuf + used, in->argv[i], len + 1);
			}
			p->args[n].p = p->argbuf + used;
			p->args[n].len = (uint32_t)str_len(p->argbuf + used, len, vlimit);
			used += len + 1;
			n++;
		}
		if (n && (kv = kv_add(p, "process.command_args", SPANRING_ATTR_STRING_ARRAY, climit))) {
			kv->v.ptr = p->args;
			kv->vlen = n;
		}
	}
	p->nkv_base = s->nkv;
	p->dropped_base = s->dropped_attrs;
	p->count_limit = climit;
}

void pl_pspan_set_pids(struct pl_pspan *p, int64_t pid, int64_t ppid)
{
	if (p->kv_pid >= 0)
		p->kv[p->kv_pid].v.i = pid;
	if (p->kv_ppid >= 0)
		p->kv[p->kv_ppid].v.i = ppid;
}

void pl_pspan_reset_end(struct pl_pspan *p)
{
	p->s.nkv = p->nkv_base;
	p->s.dropped_attrs = p->dropped_base;
	p->s.status = SPANRING_STATUS_UNSET;
	p->s.status_msg = NULL;
	p->s.status_msg_len = 0;
}

static const struct {
	int sig;
	const char *name;
} signames[] = {
	{SIGSEGV, "SIGSEGV"}, {SIGBUS, "SIGBUS"},   {SIGILL, "SIGILL"},       {SIGFPE, "SIGFPE"},
	{SIGABRT, "SIGABRT"}, {SIGSYS, "SIGSYS"},   {SIGTRAP, "SIGTRAP"},     {SIGTERM, "SIGTERM"},
	{SIGINT, "SIGINT"},   {SIGHUP, "SIGHUP"},   {SIGQUIT, "SIGQUIT"},     {SIGPIPE, "SIGPIPE"},
	{SIGALRM, "SIGALRM"}, {SIGUSR1, "SIGUSR1"}, {SIGUSR2, "SIGUSR2"},     {SIGXCPU, "SIGXCPU"},
	{SIGXFSZ, "SIGXFSZ"}, {SIGPROF, "SIGPROF"}, {SIGVTALRM, "SIGVTALRM"}, {SIGKILL, "SIGKILL"},
};

const char *pl_signame(int sig)
{
	for (size_t i = 0; i < sizeof(signames) / sizeof(signames[0]); i++)
		if (signames[i].sig == sig)
			return signames[i].name;
	return NULL;
}

/* Append the decimal v at p (async-signal-safe); returns the end. */
static char *put_int(char *p, long v)
{
	char tmp[24];
	int n = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10) && n < (int)sizeof(tmp));
	if (v < 0)
		*p++ = '-';
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_str(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

void pl_pspan_set_end(struct pl_pspan *p, enum pl_end how, int code, bool fork)
{
	struct spanring_span *s = &p->s;
	const uint32_t climit = p->count_limit;
	struct sr_kv *kv;
	char *m = p->status_msg;

	pl_pspan_reset_end(p);
	if (fork && (kv = kv_add(p, "spanring.process.fork", SPANRING_ATTR_BOOL, climit)))
		kv->v.b = true;
	static const char *const reason[] = {"exit", "exec", "signal"};
	if ((kv = kv_add(p, "spanring.process.end", SPANRING_ATTR_STRING, climit))) {
		kv->v.ptr = reason[how];
		kv->vlen = (uint32_t)strlen(reason[how]);
	}
	if (how == PL_END_EXIT) {
		if ((kv = kv_add(p, "process.exit.code", SPANRING_ATTR_INT, climit)))
			kv->v.i = code;
		if (code != 0) {
			m = put_int(put_str(m, "exit code "), code);
			s->status = SPANRING_STATUS_ERROR;
		}
	} else if (how == PL_END_SIGNAL) {
		const char *name = pl_signame(code);
		char *sn = p->signame;
		if (name)
			sn = put_str(sn, name);
		else
			sn = put_int(put_str(sn, "SIG"), code);
		*sn = '\0';
		if ((kv = kv_add(p, "spanring.process.signal", SPANRING_ATTR_STRING, climit))) {
			kv->v.ptr = p->signame;
			kv->vlen = (uint32_t)(sn - p->signame);
		}
		m = put_str(put_str(m, "terminated by "), p->signame);
		s->status = SPANRING_STATUS_ERROR;
	}
	*m = '\0';
	if (m != p->status_msg) {
		s->status_msg = p->status_msg;
		s->status_msg_len = (uint32_t)(m - p->status_msg);
	}
}

void pl_pspan_sizes(struct pl_pspan *p)
{
	uint32_t total = 0;
	for (uint32_t i = 0; i < p->s.nkv; i++)
		total += sr_kv_sizes(&p->kv[i]);
	p->s.kv_bytes = total;
}
