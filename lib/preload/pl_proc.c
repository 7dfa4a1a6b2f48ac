/* SPDX-License-Identifier: MIT */
/*
 * The process span: started in the constructor, ended at exit, _exit,
 * exec or a fatal signal; fork children and exec'd images; TRACEPARENT
 * for children.
 *
 * Life of the span
 *   constructor   parent from TRACEPARENT/TRACESTATE (W3C), ids, sampling,
 *                 the ring (with its registration thread), one exclusive
 *                 slot reserved for the process span (sig_thr), our
 *                 instrumentation scope published, on_exit() handler,
 *                 fatal-signal handlers, and "TRACEPARENT=<our span>" put
 *                 into environ, so that every child started in any way
 *                 (system, popen, a program that copies environ) inherits
 *                 it. putenv() happens only while the process has a single
 *                 thread, i.e. before main; later changes rewrite the
 *                 digits of our own buffer in place (same length), never
 *                 the environ array.
 *   exit          on_exit() handler, registered after the library's atexit
 *                 handler so it runs before the ring is closed: end with
 *                 process.exit.code; the library's handler then waits
 *                 (SPANRING_EXIT_TIMEOUT_MS) until the agent has the ring.
 *   _exit, _Exit, quick_exit
 *                 the same, and the wait for the agent is done here.
 *   exec          end, wait for the agent, exec. If exec fails, a new span
 *                 starts (same parent) and the program goes on traced.
 *   signal        pl_process_signal(): async-signal-safe, see below.
 *
 * A fork child gets its own span (parent: the parent's span), started at
 * the fork, with its pid; its ring is made when it first needs one. If it
 * only execs (what shells do for every command) its span is dropped and
 * the new image hangs directly under the parent's span, so a traced
 * `make` shows make -> sh -> cc -> cc1 and no fork in between. The span
 * is kept as soon as something may point at it: the child forks or
 * spawns, calls an interposed function that makes a span, uses the API,
 * or exits without exec.
 *
 * The fatal-signal path commits with the library's slot writer through a
 * struct sr_thread of our own (sig_thr) that owns an exclusive slot
 * claimed in normal context: the commit is then lock free and allocation
 * free (the span object is static, pl_pspan.c) and no other thread ever
 * writes that slot. A compare-and-swap on ps_state decides which of exit,
 * exec and a signal ends the span, once. The record is published by the
 * single store of the slot's head, so a process that dies in the middle
 * leaves nothing partial. The span is lost (never partial) when the
 * process dies before its ring and slot exist (a fork child that has not
 * needed a ring yet), or when the agent never got the ring: the handler
 * waits up to SPANRING_EXIT_TIMEOUT_MS for the registration only when the
 * agent's socket exists.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "sockpath.h"
#include "resource.h"
#include "commit.h"
#include "preload.h"

struct pl_state pl = {.sig_thr = {.slot = -1}};
PL_TLS int pl_busy;
PL_TLS int pl_incall;

#define TP_PREFIX "TRACEPARENT="
#define TP_PREFIX_LEN (sizeof(TP_PREFIX) - 1)
#define PL_VERSION_STR "0.1.0"

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Random bytes without allocation or locks (getrandom, else a mix). */
static void fill_random(uint8_t *p, size_t n)
{
	static uint64_t counter;
	ssize_t r = getrandom(p, n, GRND_NONBLOCK);
	if (r == (ssize_t)n)
		return;
	uint64_t x = realtime_ns() ^ ((uint64_t)pl_getpid() << 32) ^
		     (sr_faa_64(&counter, 0x9e3779b97f4a7c15ull) + 0x9e3779b97f4a7c15ull);
	for (size_t i = 0; i < n; i++) {
		/* splitmix64 */
		if (i % 8 == 0) {
			x += 0x9e3779b97f4a7c15ull;
			uint64_t z = x;
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
			x = z ^ (z >> 31);
		}
		p[i] = (uint8_t)(x >> (8 * (i % 8)));
	}
}

static void new_id(uint8_t *id, size_t n)
{
	for (;;) {
		fill_random(id, n);
		for (size_t i = 0; i < n; i++)
			if (id[i])
				return;
	}
}

/* traceparent of c into out (56 bytes); "" if c is not valid. */
static void tp_store(const spanring_span_context *c, char *out)
{
	if (spanring_traceparent_format(c, out, SPANRING_TRACEPARENT_LEN + 1) < 0)
		out[0] = '\0';
}

/* Point the TRACEPARENT of our environ entry at tp (same length: in place). */
static void tp_env_set(const char *tp)
{
	if (strlen(tp) == SPANRING_TRACEPARENT_LEN)
		memcpy(pl.tp_env + TP_PREFIX_LEN, tp, SPANRING_TRACEPARENT_LEN);
}

/* Start the process span now: ids, sampling, context, environment. */
static void ps_start(const struct sr_config *cfg, uint64_t start_ns)
{
	struct spanring_span *s = &pl.ps.s;
	if (pl.has_parent) {
		memcpy(s->trace_id, pl.parent.trace_id, 16);
		memcpy(s->parent_id, pl.parent.span_id, 8);
		s->has_parent = true;
		s->parent_remote = true;
		s->trace_flags = pl.parent.trace_flags;
		s->trace_state = pl.parent.trace_state;
		s->ts_len = pl.parent.trace_state_len;
	} else {
		new_id(s->trace_id, 16);
		s->has_parent = false;
		s->parent_remote = false;
		s->trace_flags = 0;
		s->trace_state = NULL;
		s->ts_len = 0;
	}
	new_id(s->span_id, 8);
	pl.ps_sampled = sr_sample(cfg, s->trace_id, s->has_parent,
				  s->trace_flags & SPANRING_FLAG_SAMPLED, s->parent_remote);
	if (pl.ps_sampled)
		s->trace_flags |= SPANRING_FLAG_SAMPLED;
	else
		s->trace_flags &= (uint8_t)~SPANRING_FLAG_SAMPLED;
	s->start_ns = start_ns;
	pl_pspan_reset_end(&pl.ps);

	memset(&pl.ctx, 0, offsetof(spanring_span_context, trace_state) + 1);
	memcpy(pl.ctx.trace_id, s->trace_id, 16);
	memcpy(pl.ctx.span_id, s->span_id, 8);
	pl.ctx.trace_flags = s->trace_flags;
	pl.ctx.trace_state_len = (uint16_t)s->ts_len;
	if (s->ts_len)
		memcpy(pl.ctx.trace_state, s->trace_state, s->ts_len);
	pl.ctx.trace_state[s->ts_len] = '\0';

	char tp[SPANRING_TRACEPARENT_LEN + 1];
	tp_store(&pl.ctx, tp);
	tp_env_set(tp);
	/* Release: pairs with the compare-and-swap in ps_claim_end() and the
	 * load in the exec path (the span is complete). */
	sr_store_int(&pl.ps_state, PL_PS_LIVE);
}

/* ---- the ring, the reserved slot, the commit --------------------------------- */

/* Claim an exclusive slot of the current ring for sig_thr (lock free,
 * as slot_claim() in lib/producer.c does it). */
static bool claim_slot(void)
{
	const uint32_t nx = sr_g.n_exclusive;
	if (!nx || !sr_g.slots)
		return false;
	const uint64_t all = nx >= 64 ? ~0ull : ((1ull << nx) - 1);
	for (;;) {
		uint64_t owned = sr_load_relaxed_64(&sr_g.owned);
		uint64_t free_ = ~owned & all;
		if (!free_)
			return false;
		uint32_t i = (uint32_t)__builtin_ctzll(free_);
		/* Pairs with the CAS of slot_release() (producer.c). */
		if (sr_cas_64(&sr_g.owned, owned, owned | (1ull << i))) {
			pl.sig_thr.slot = (int32_t)i;
			pl.sig_thr.exclusive = true;
			/* gen last: the signal path trusts slot only when gen
			 * matches. Release: pairs with the load in sig_slot_ok(). */
			sr_store_release_32(&pl.sig_thr.gen, sr_g.gen);
			return true;
		}
	}
}

static bool sig_slot_ok(void)
{
	/* Acquire: pairs with the store of gen in claim_slot(). */
	return sr_load_acquire_32(&pl.sig_thr.gen) == sr_g.gen &&
	       pl.sig_thr.slot >= 0 && pl.sig_thr.exclusive;
}

static bool scope_ok(void)
{
	/* Acquire: pairs with the store-release in sr_scope_publish() (producer.c). */
	return pl.tracer && sr_load_acquire_32(&pl.tracer->scope_gen) == sr_g.gen + 1;
}

/*
 * May this process make its ring now, to commit its process span? Not
 * in the child of a threaded program that has not made one yet, at _exit
 * or exec: that is the path of a child that only calls async-signal-safe
 * functions (fork, exec fails, _exit). Making the ring there would be
 * safe (a restricted child makes it with memfd_create, ftruncate and mmap
 * from the library's private arena, and registers it without a thread:
 * lib/producer.c, "Fork"), but costs a memfd, its mappings and a
 * connection for a span that says only that the child ended; the span
 * is dropped instead. (exit() and the interposed calls' spans make it.)
 */
static bool ring_allowed(void)
{
	/* Acquire: pairs with the store in sr_proc_init() (producer.c). */
	return !(pl.forked && pl.fork_threaded) || sr_load_int(&sr_g.state) == SR_PROC_ACTIVE;
}

/* Normal context: make the ring (if it does not exist yet), reserve our
 * slot in it and publish our scope, so that a signal can commit later. */
static bool ring_ready(void)
{
	pl_busy++;
	bool ok = sr_proc_ready() == SR_PROC_ACTIVE;
	if (ok) {
		if (!sig_slot_ok()) {
			pl.sig_thr.slot = -1;
			claim_slot();
		}
		if (!scope_ok() && pl.tracer)
			sr_scope_publish(pl.tracer);
	}
	pl_busy--;
	return ok;
}

/* Commit the ended process span. async: from a signal handler (or from
 * inside our own code), where only the reserved slot may be used. */
static void ps_commit(uint64_t end_ns, bool async)
{
	if (!pl.ps_sampled)
		return;
	if (!async && !ring_allowed())
		return;
	if (async) {
		/* Acquire: pairs with the store in sr_proc_init() (producer.c). */
		if (sr_load_int(&sr_g.state) != SR_PROC_ACTIVE || !sig_slot_ok() || !scope_ok())
			return;
	} else if (!ring_ready()) {
		return;
	}
	if (end_ns < pl.ps.s.start_ns)
		end_ns = pl.ps.s.start_ns;
	pl_pspan_sizes(&pl.ps);
	struct sr_thread *t = NULL;
	if (sig_slot_ok())
		t = &pl.sig_thr;
	else if (!async)
		t = sr_thread_get();
	if (!t)
		return;
	pl_busy++;
	sr_client_hold++; /* the last span: register at the end, not now */
	int r = sr_commit(t, &pl.ps.s, end_ns);
	sr_client_hold--;
	pl_busy--;
	(void)r;
}

static bool ps_claim_end(void)
{
	/* Pairs with the store-release of LIVE in the process span's start. */
	return sr_cas_int(&pl.ps_state, PL_PS_LIVE, PL_PS_ENDED);
}

static bool process_on(void)
{
	return pl.active && (pl.cfg.trace & PL_T_PROCESS);
}

/* Wait until the agent has the ring, within the exit timeout. */
static void flush(void)
{
	/* Acquire: pairs with the store in sr_proc_init() (producer.c). */
	if (sr_load_int(&sr_g.state) != SR_PROC_ACTIVE)
		return;
	pl_busy++;
	sr_client_flush(pl.cfg.exit_timeout_ms);
	pl_busy--;
}

/* ---- endings ------------------------------------------------------------------- */

/*
 * What spanring_shutdown() does (ring marked closed, then wait up to the
 * exit timeout until the agent has it), without stopping and joining the
 * registration thread: the process is about to end, which ends the
 * thread, and joining it costs a wake-up of that thread, on a loaded
 * machine the longest part of a short process's exit. The library's own
 * exit handler then finds the ring closed and returns at once.
 */
static void ring_close_for_exit(void)
{
	pl_busy++;
	sr_proc_lock();
	bool active = sr_g.state == SR_PROC_ACTIVE;
	if (active) {
		/* Release: pairs with the loads of sr_g.state (sr_proc_ready()). */
		sr_store_int(&sr_g.state, SR_PROC_CLOSED);
		struct spanring_ring_hdr *h = sr_hdr(&sr_g.map);
		sr_store_release_32(&h->flags, h->flags | SPANRING_HDR_F_CLOSED);
	}
	sr_proc_unlock();
	if (active)
		sr_client_flush(pl.cfg.exit_timeout_ms);
	pl_busy--;
}

/* Registered after the library's exit handler, so it runs just before it
 * (same DSO, last in first out), after every other exit handler. */
static void late_exit_handler(void)
{
	int saved = errno;
	if (pl.active && !pl_busy && pl_getpid() == pl.pid)
		ring_close_for_exit();
	errno = saved;
}

void pl_process_exit(int code, bool flush_now)
{
	if (!pl.active || pl_getpid() != pl.pid)
		return; /* a vfork or clone child shares our memory: not ours to end */
	bool async = pl_busy > 0;
	/* exit() runs the program's exit handlers: not an async-signal-safe
	 * path, the ring may be made there even in a threaded program's child. */
	if (!flush_now && pl.forked)
		pl.fork_threaded = false;
	if (process_on() && ps_claim_end()) {
		pl_pspan_set_end(&pl.ps, PL_END_EXIT, code & 0xff, pl.forked);
		ps_commit(async ? realtime_ns() : sr_clock_ns(), async);
	}
	if (flush_now && !async) {
		/* No exit handler runs after _exit(): close the ring and wait
		 * for the agent here. */
		ring_close_for_exit();
	}
}

static void on_exit_handler(int status, void *arg)
{
	(void)arg;
	int saved = errno;
	pl_process_exit(status, false);
	errno = saved;
}

void pl_process_signal(int sig)
{
	if (!process_on() || pl_getpid() != pl.pid || !ps_claim_end())
		return;
	pl_pspan_set_end(&pl.ps, PL_END_SIGNAL, sig, pl.forked);
	ps_commit(realtime_ns(), true);

	/* The ring dies with us unless the agent has it. Hand it over from
	 * here if nothing has registered it yet (async-signal-safe); else
	 * wait for the registration thread, if there is an agent to wait for.
	 * pl_busy: the library's connect() to the agent is ours, not the
	 * program's (a "connect" span of it would be committed otherwise). */
	pl_busy++;
	int fr = sr_client_register_final(pl.cfg.exit_timeout_ms);
	pl_busy--;
	if (fr != -EALREADY)
		return;
	/* Acquire: pairs with the store in cl_install_doorbell() (client.c). */
	if (sr_load_int(&sr_doorbell_fd) >= 0 || !pl.sock_path[0])
		return;
	struct stat st;
	if (stat(pl.sock_path, &st) != 0 || !S_ISSOCK(st.st_mode))
		return;
	int waited = 0;
	const int limit = pl.cfg.exit_timeout_ms;
	struct timespec ms2 = {0, 2000000};
	/* Acquire, as above. */
	while (sr_load_int(&sr_doorbell_fd) < 0 && waited < limit) {
		nanosleep(&ms2, NULL);
		waited += 2;
	}
}

/* ---- exec and spawn -------------------------------------------------------------- */

static void want_fill(struct pl_env_want *w, const char *tp)
{
	memset(w, 0, sizeof(*w));
	w->tp = tp;
	w->ts = pl.has_parent ? pl.parent.trace_state : "";
	/* Values that are ours to replace: what this image inherited, the
	 * value it published at start (a shell that builds its children's
	 * environment from its own variables keeps passing that one on in
	 * its forked subshells), a fork child's parent, the current one. */
	w->ours[w->n_ours++] = pl.tp_inherited;
	w->ours[w->n_ours++] = pl.tp_image;
	w->ours[w->n_ours++] = pl.tp_parent;
	w->ours[w->n_ours++] = pl.tp_env + TP_PREFIX_LEN;
}

void pl_exec_prepare(struct pl_exec_tok *tok, struct pl_env_want *w, bool likely_ok)
{
	tok->kind = PL_EXEC_NOTHING;
	memset(w, 0, sizeof(*w));
	if (!pl.active)
		return;
	bool prop = process_on() && (pl.cfg.trace & PL_T_EXEC);
	if (pl_getpid() != pl.pid) {
		/* A vfork child: our memory is its parent's. Read only, except
		 * for the flag that keeps the (parent's) span. */
		if (prop) {
			pl.needs_span = true;
			want_fill(w, pl.tp_env + TP_PREFIX_LEN);
		}
		return;
	}
	if (process_on() && pl.forked && !pl.needs_span &&
	    sr_load_int(&pl.ps_state) == PL_PS_LIVE) { /* pairs with the store of LIVE */
		/* A fork child that only execs: no span; the new image is a
		 * child of our parent's span. */
		if (prop) {
			char own[SPANRING_TRACEPARENT_LEN + 1];
			memcpy(own, pl.tp_env + TP_PREFIX_LEN, sizeof(own));
			tp_env_set(pl.tp_parent);
			want_fill(w, pl.tp_parent);
			memcpy(pl.tp_own_saved, own, sizeof(own));
			w->ours[3] = pl.tp_own_saved;
		}
		tok->kind = PL_EXEC_KEPT_FORK;
		return;
	}
	if (!likely_ok) {
		/* The exec is going to fail (no such file): keep the span. */
		if (prop)
			want_fill(w, pl.tp_env + TP_PREFIX_LEN);
		return;
	}
	if (process_on() && ps_claim_end()) {
		pl_pspan_set_end(&pl.ps, PL_END_EXEC, 0, pl.forked);
		ps_commit(sr_clock_ns(), pl_busy > 0);
		tok->kind = PL_EXEC_ENDED;
	}
	if (!pl_busy)
		flush();
	if (prop)
		want_fill(w, pl.tp_env + TP_PREFIX_LEN);
}

void pl_exec_failed(const struct pl_exec_tok *tok)
{
	if (tok->kind == PL_EXEC_KEPT_FORK) {
		tp_env_set(pl.tp_own_saved);
	} else if (tok->kind == PL_EXEC_ENDED) {
		/* The program goes on: a new span for the rest of its life. */
		ps_start(&sr_g.cfg, sr_clock_ns());
	}
}

void pl_spawn_want(struct pl_env_want *w)
{
	memset(w, 0, sizeof(*w));
	if (!process_on() || !(pl.cfg.trace & PL_T_EXEC))
		return;
	pl.needs_span = true;
	want_fill(w, pl.tp_env + TP_PREFIX_LEN);
}

const spanring_span_context *pl_default_parent(void)
{
	if (!pl.active)
		return NULL;
	if (process_on()) {
		pl.needs_span = true;
		return &pl.ctx;
	}
	return pl.has_parent ? &pl.parent : NULL;
}

void pl_emit(const char *name, uint64_t start_ns, uint64_t end_ns, const spanring_attr *attrs,
	     size_t n, int status, const char *msg)
{
	pl_busy++;
	spanring_span_data d = {
		.name = name,
		.kind = SPANRING_KIND_CLIENT,
		.start_ns = start_ns,
		.end_ns = end_ns > start_ns ? end_ns : start_ns,
		.attrs = attrs,
		.n_attrs = n,
		.status = (spanring_status_code)status,
		.status_message = msg,
	};
	if (!spanring_current_span())
		d.parent = pl_default_parent();
	if (pl.forked && process_on())
		ring_ready();
	sr_lib_span_emit((spanring_tracer *)pl.tracer, &d);
	pl_busy--;
}

/* ---- registration thread around single-thread-only calls ---------------------------- */

/* Stop the registration thread, if one runs (a shim process starts it
 * only at its first span besides the process span): true if it did. */
bool pl_client_pause(void)
{
	/* Acquire: pairs with the store in sr_proc_init() (producer.c). */
	if (sr_load_int(&sr_g.state) != SR_PROC_ACTIVE || !sr_client_thread_alive())
		return false;
	pl_busy++;
	sr_client_stop();
	pl_busy--;
	return true;
}

void pl_client_resume(bool was_running)
{
	/* Acquire: pairs with the store in sr_proc_init() (producer.c). */
	if (!was_running || sr_load_int(&sr_g.state) != SR_PROC_ACTIVE)
		return;
	pl_busy++;
	sr_client_restart(&sr_g.map); /* it ran: it registers the ring again */
	pl_busy--;
}

/* ---- fork -------------------------------------------------------------------------- */

static void atfork_prepare(void)
{
	if (!pl.active)
		return;
	/* A child of ours will point at our span. */
	if (process_on())
		pl.needs_span = true;
}

static void atfork_child_first(void)
{
	/* Runs before the library's child handler, which closes the parent's
	 * descriptors: let those close() calls through. */
	pl_busy++;
}

static void atfork_child_last(void)
{
	pid_t parent = pl.pid;
	pl.pid = pl_getpid();
	pl_fd_forget_all();
	pl.sig_thr.slot = -1;
	pl.sig_thr.gen = UINT32_MAX;
	/* The library's child handler, which ran before this one, decided
	 * whether this child of a multithreaded program is restricted to
	 * async-signal-safe calls (lib/producer.c, "Fork"). */
	pl.fork_threaded = sr_proc_fork_restricted();
	if (process_on()) {
		pl.parent = pl.ctx;
		pl.parent.is_remote = 1;
		pl.has_parent = true;
		tp_store(&pl.parent, pl.tp_parent);
		pl.forked = true;
		pl.needs_span = false;
		pl_pspan_set_pids(&pl.ps, pl.pid, parent);
		ps_start(&sr_g.cfg, sr_clock_ns());
	}
	pl_busy--;
}

/* ---- main ------------------------------------------------------------------------------ */

/*
 * The constructor runs before __libc_start_main() registers the dynamic
 * linker's fini handler, so an exit handler registered there would run
 * after every library destructor, including the one that runs the
 * library's own exit handler (closing the ring). The process span must
 * end before that, and after the program's own exit handlers: so the
 * handler is registered again when main() starts, by interposing
 * __libc_start_main(), which _start calls through the PLT. (The
 * constructor's registration stays as a fallback for programs that do
 * not start through glibc's __libc_start_main; ending is idempotent.)
 */
typedef int (*main_fn)(int, char **, char **);
static main_fn real_main;

static int main_hook(int argc, char **argv, char **envp)
{
	if (pl.active && (pl.cfg.trace & PL_T_PROCESS))
		on_exit(on_exit_handler, NULL);
	return real_main(argc, argv, envp);
}

int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
		      void (*rtld_fini)(void), void *stack_end);
PL_EXPORT int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
				void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
	int (*real)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *) =
		PL_REAL(__libc_start_main);
	if (!real)
		syscall(SYS_exit_group, 127);
	real_main = main;
	return real(main_hook, argc, argv, init, fini, rtld_fini, stack_end);
}

/* ---- constructor ---------------------------------------------------------------------- */

static bool single_threaded(void)
{
	struct stat st;
	return stat("/proc/self/task", &st) == 0 && st.st_nlink == 3;
}

/*
 * Our own environ entry; only while nothing else can read environ. The
 * array is edited directly: putenv()/unsetenv() may be the program's own
 * (bash defines them, on its variable table, which does not exist yet).
 * An existing TRACEPARENT entry is repointed in place; otherwise a new
 * array replaces environ (glibc's setenv copies arrays it did not make).
 */
extern char **environ;

static void env_publish(void)
{
	if (!single_threaded()) {
		pl_debug("not alone in the constructor: TRACEPARENT only through exec/spawn");
		return;
	}
	size_t n = 0, tp = SIZE_MAX;
	for (; environ && environ[n]; n++)
		if (tp == SIZE_MAX && strncmp(environ[n], TP_PREFIX, TP_PREFIX_LEN) == 0)
			tp = n;
	if (tp != SIZE_MAX) {
		environ[tp] = pl.tp_env;
	} else {
		char **ne = malloc((n + 2) * sizeof(char *));
		if (!ne)
			return;
		if (n)
			memcpy(ne, environ, n * sizeof(char *));
		ne[n] = pl.tp_env;
		ne[n + 1] = NULL;
		environ = ne;
		n++;
	}
	pl.tp_in_environ = true;
	/* A tracestate without a usable traceparent belongs to nobody. */
	if (!pl.has_parent) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (strncmp(environ[i], "TRACESTATE=", 11) != 0)
				environ[k++] = environ[i];
		environ[k] = NULL;
	}
}

static void exe_name(char *out, size_t n)
{
	const char *fn = (const char *)getauxval(AT_EXECFN);
	const char *base = NULL;
	if (fn && *fn) {
		base = strrchr(fn, '/');
		base = base ? base + 1 : fn;
	}
	if (!base || !*base)
		base = program_invocation_short_name;
	snprintf(out, n, "%s", base ? base : "");
}

/* The shim's settings from the environment. False if it stays inactive
 * in this process (said with SPANRING_DEBUG). */
static bool pl_configure(void)
{
	pl_config_parse(&pl.cfg, secure_getenv("SPANRING_TRACE"),
			secure_getenv("SPANRING_MIN_DURATION_US"), secure_getenv("SPANRING_SIGNALS"),
			secure_getenv("SPANRING_EXIT_TIMEOUT_MS"), secure_getenv("SPANRING_DEBUG"));
	const char *why = pl_inert_reason(getauxval(AT_SECURE), secure_getenv("OTEL_SDK_DISABLED"),
					  pl.exe_name, secure_getenv("SPANRING_EXCLUDE"), pl.cfg.trace);
	if (why) {
		pl_debug("%s: inactive (%s)", pl.exe_name, why);
		return false;
	}
	if (pl.cfg.bad)
		pl_debug("ignoring invalid SPANRING_* values (mask %#x)", pl.cfg.bad);
	bool bad_args;
	const char *args_v = secure_getenv("SPANRING_COMMAND_ARGS");
	pl.cfg.command_args = (int)sr_args_mode_parse(args_v, &bad_args);
	if (bad_args)
		pl_debug("ignoring invalid SPANRING_COMMAND_ARGS=\"%s\" (full, redacted or off): "
			 "redacted", args_v);
	return true;
}

/* The process span: ids and the sampling decision first, so that the
 * environment can be set while we are the only thread (the ring comes
 * with a registration thread). */
static void ps_begin(int argc, char **argv, uint64_t start)
{
	struct sr_config cfg;
	sr_config_from_env(&cfg);
	char path[4096];
	ssize_t pn = readlink("/proc/self/exe", path, sizeof(path) - 1);
	path[pn > 0 ? pn : 0] = '\0';
	sr_resource_set_exe(pn > 0 && (size_t)pn < sizeof(path) - 1 ? path : NULL);
	struct pl_pspan_info info = {
		.name = pl.exe_name,
		.path = path,
		.argc = argc,
		.argv = argv,
		.args_mode = pl.cfg.command_args,
		.pid = pl.pid,
		.ppid = getppid(),
		.count_limit = cfg.attr_count_limit,
		.value_limit = cfg.attr_value_limit,
	};
	pl_pspan_init(&pl.ps, &info, NULL);
	ps_start(&cfg, start);
	memcpy(pl.tp_image, pl.tp_env + TP_PREFIX_LEN, SPANRING_TRACEPARENT_LEN);
	if (pl.cfg.trace & PL_T_EXEC)
		env_publish();
}

__attribute__((constructor)) static void pl_ctor(int argc, char **argv, char **envp)
{
	(void)envp;
	int saved = errno;
	uint64_t start = realtime_ns();

	pl_real_init();
	pl.pid = pl_getpid();
	exe_name(pl.exe_name, sizeof(pl.exe_name));
	if (!pl_configure()) {
		errno = saved;
		return;
	}
	pl_busy++;
	pthread_atfork(NULL, NULL, atfork_child_first);
	pl.active = true;
	/* Most traced processes are short-lived: a smaller ring (4 x 128 KiB:
	 * 9 mappings instead of 17, an eighth of the memory) unless
	 * SPANRING_SLOTS / SPANRING_SLOT_SIZE say otherwise. */
	sr_config_set_ring_defaults(4, 128u << 10);
	/* ... and it registers that ring only when a thread makes a span
	 * other than the process span, or at its end (exit, exec, fatal
	 * signal) with one message and no answer awaited: no thread, no
	 * round trip for a process that makes no other span. */
	sr_client_defer();
	sr_resource_lean();

	spanring_span_context in;
	if (spanring_context_from_env(&in) == 0) {
		pl.parent = in;
		pl.has_parent = true;
		tp_store(&in, pl.tp_inherited);
	}
	memcpy(pl.tp_env, TP_PREFIX, TP_PREFIX_LEN);
	memset(pl.tp_env + TP_PREFIX_LEN, '0', SPANRING_TRACEPARENT_LEN);

	if (pl.cfg.trace & PL_T_PROCESS)
		ps_begin(argc, argv, start);
	if (pl.cfg.trace & ~PL_T_EXEC) {
		int r = spanring_init();
		pl.tracer = (struct sr_tracer *)spanring_tracer_get("spanring.preload", PL_VERSION_STR,
								   NULL);
		pl.ps.s.tracer = pl.tracer;
		if (r)
			pl_debug("no ring (%d): spans are not recorded", r);
		atexit(late_exit_handler);
	}
	if (pl.cfg.trace & PL_T_PROCESS) {
		ring_ready();
		sr_thread_get(); /* the main thread's state, now rather than in a handler */
		on_exit(on_exit_handler, NULL);
		pl_signals_install(pl.cfg.signals);
		if (!sr_socket_path(pl.sock_path, sizeof(pl.sock_path)))
			pl.sock_path[0] = '\0';
	}
	pthread_atfork(atfork_prepare, NULL, atfork_child_last);
	pl_debug("%s: tracing (categories %#x), set up in %llu us", pl.exe_name, pl.cfg.trace,
		 (unsigned long long)(realtime_ns() - start) / 1000);
	pl_busy--;
	errno = saved;
}
