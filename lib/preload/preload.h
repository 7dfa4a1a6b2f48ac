/* SPDX-License-Identifier: MIT */
/*
 * libspanring-preload.so internals. The shim is the producer library
 * (the lib/ sources, compiled a second time with lib_rename.h) plus the files of
 * this directory; README.md "Tracing unmodified programs (LD_PRELOAD)"
 * is the user's view, this header the map of the parts:
 *
 *   pl_real.c   the next definitions of interposed functions (RTLD_NEXT)
 *   pl_cfg.c    SPANRING_* settings, parsed once (pure, unit-tested)
 *   pl_env.c    TRACEPARENT in a child's environment (pure, unit-tested)
 *   pl_pspan.c  the process span object and its commit paths
 *   pl_proc.c   constructor, exit/_exit, fork, exec bookkeeping
 *   pl_signal.c fatal-signal handlers and the sigaction() shadow
 *   pl_fd.c     our descriptors: kept high, out of the program's reach
 *   pl_exec.c   exec*, posix_spawn*, system, popen, daemon, unshare
 *   pl_net.c    getaddrinfo and connect spans
 *   pl_sys.c    wait* and fsync spans
 *   pl_api.c    the spanring_* API as seen by a program under the shim
 *
 * Two thread-local flags keep the shim out of its own way:
 *   pl_busy    spanring code is running in this thread (our constructor,
 *              an API call, span creation, the registration thread,
 *              which has it set for life). Interposed calls made while it
 *              is set go straight to libc: no spans, no recursion, and
 *              close() may close our own descriptors.
 *   pl_incall  a traced call is inside libc; calls it makes through
 *              interposed symbols are not traced again.
 */
#ifndef SPANRING_PRELOAD_H
#define SPANRING_PRELOAD_H

#include <netdb.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "internal.h"
#include "spanring/spanring.h"

#define PL_EXPORT __attribute__((visibility("default")))
#define PL_TLS __thread __attribute__((tls_model("initial-exec")))

/* ---- configuration (pl_cfg.c) --------------------------------------------- */

/* SPANRING_TRACE categories. */
enum {
	PL_T_PROCESS = 1u << 0, /* one span per process, fatal-signal handlers */
	PL_T_EXEC = 1u << 1,    /* TRACEPARENT for children */
	PL_T_DNS = 1u << 2,     /* getaddrinfo */
	PL_T_CONNECT = 1u << 3, /* connect */
	PL_T_WAIT = 1u << 4,    /* wait, waitpid, wait4, waitid */
	PL_T_FSYNC = 1u << 5,   /* fsync, fdatasync */
	PL_T_ALL = (1u << 6) - 1,
	PL_T_DEFAULT = PL_T_PROCESS | PL_T_EXEC | PL_T_DNS | PL_T_CONNECT,
};

/* SPANRING_SIGNALS. */
enum { PL_SIG_NONE = 0, PL_SIG_CRASH = 1, PL_SIG_ALL = 2 };

struct pl_config {
	unsigned trace;            /* PL_T_* */
	uint64_t min_duration_ns;  /* SPANRING_MIN_DURATION_US */
	int signals;               /* PL_SIG_* */
	int exit_timeout_ms;       /* SPANRING_EXIT_TIMEOUT_MS */
	bool debug;                /* SPANRING_DEBUG */
	unsigned bad;              /* bit per variable that was invalid (debug report) */
	int command_args;          /* SPANRING_COMMAND_ARGS: enum sr_args_mode (set by pl_ctor) */
};

/* Fill *c from the variables' values (NULL: unset). Pure; never fails. */
SR_HIDDEN void pl_config_parse(struct pl_config *c, const char *trace, const char *min_us,
			       const char *signals, const char *exit_ms, const char *debug);
/* Is exe (a basename) in list, a comma-separated list of fnmatch patterns? */
SR_HIDDEN bool pl_name_listed(const char *exe, const char *list);
/* Does OTEL_SDK_DISABLED's value turn everything off? */
SR_HIDDEN bool pl_sdk_disabled(const char *v);
/* Should the shim stay inert: secure execution (AT_SECURE), disabled SDK,
 * excluded program, nothing to trace. Returns a reason or NULL. */
SR_HIDDEN const char *pl_inert_reason(unsigned long at_secure, const char *sdk_disabled,
				      const char *exe, const char *exclude, unsigned trace);

/* ---- children's environment (pl_env.c) --------------------------------------- */

/*
 * What a child's environment should say. tp: the TRACEPARENT value the
 * child must see (55 characters). ts: TRACESTATE to go with it ("" for
 * none). ours[]: values that are ours to replace (what we inherited,
 * earlier values of our own): a TRACEPARENT equal to one of them, or
 * none at all, becomes tp; any other value was chosen by the program and
 * is kept, with its TRACESTATE.
 */
struct pl_env_want {
	const char *tp;
	const char *ts;
	const char *ours[4];
	unsigned n_ours;
};

/* Bytes pl_env_fix() needs for envp (0: envp can be used as it is). */
SR_HIDDEN size_t pl_env_fix_size(char *const envp[], const struct pl_env_want *w);
/* Build the fixed environment in buf (pl_env_fix_size() bytes, pointer
 * aligned); returns the new envp inside buf. Pure: no allocation, so it
 * is usable in a vfork child and after fork in a threaded program. */
SR_HIDDEN char **pl_env_fix(char *const envp[], const struct pl_env_want *w, void *buf,
			    size_t size);

/* ---- the process span (pl_pspan.c) ------------------------------------------ */

#define PL_ARGS_MAX 64      /* process.command_args: at most this many ... */
#define PL_ARGS_BYTES 4096  /* ... of at most this many bytes in all */
#define PL_KV_MAX 12

enum pl_end { PL_END_EXIT, PL_END_EXEC, PL_END_SIGNAL };

struct pl_pspan {
	struct spanring_span s;
	struct sr_kv kv[PL_KV_MAX];
	uint32_t nkv_base;            /* attributes set at start */
	uint32_t dropped_base;        /* attributes dropped at start */
	uint32_t count_limit;
	int32_t kv_pid, kv_ppid;      /* indices of process.pid / parent_pid, -1: dropped */
	struct sr_str args[PL_ARGS_MAX];
	char argbuf[PL_ARGS_BYTES];
	char name[256];
	char path[4096];
	char status_msg[64];
	char signame[16];
};

struct pl_pspan_info {
	const char *name;         /* span name and process.executable.name */
	const char *path;         /* process.executable.path, or NULL */
	int argc;
	char *const *argv;        /* copied */
	int args_mode;            /* enum sr_args_mode */
	int64_t pid, ppid;
	uint32_t count_limit;     /* OTel attribute count limit */
	uint32_t value_limit;     /* OTel attribute value length limit */
};

/* Fill p's static span: start attributes (copied into p), kind INTERNAL,
 * no ids yet. Allocation free. */
SR_HIDDEN void pl_pspan_init(struct pl_pspan *p, const struct pl_pspan_info *in,
			     struct sr_tracer *tr);
/* New pid / parent pid (a forked child). */
SR_HIDDEN void pl_pspan_set_pids(struct pl_pspan *p, int64_t pid, int64_t ppid);
/* Drop the end attributes again (after a failed exec, for a new span). */
SR_HIDDEN void pl_pspan_reset_end(struct pl_pspan *p);
/* Set the end attributes and status: exit code (PL_END_EXIT), signal
 * number (PL_END_SIGNAL) or nothing (PL_END_EXEC); fork marks the span of
 * a forked child. Allocation free and async-signal-safe. */
SR_HIDDEN void pl_pspan_set_end(struct pl_pspan *p, enum pl_end how, int code, bool fork);
/* Recompute the cached attribute sizes before an encode. */
SR_HIDDEN void pl_pspan_sizes(struct pl_pspan *p);
/* "SIGSEGV" etc. for the signals the shim handles, else NULL. */
SR_HIDDEN const char *pl_signame(int sig);

/* ---- process state (pl_proc.c) ------------------------------------------------ */

enum { PL_PS_NONE = 0, PL_PS_LIVE = 1, PL_PS_ENDED = 2 };

struct pl_state {
	bool active;                  /* the shim does anything at all in this image */
	struct pl_config cfg;
	struct sr_tracer *tracer;     /* scope "spanring.preload" */
	pid_t pid;                    /* of this process (updated in a fork child) */

	/* The process span. */
	int ps_state;                 /* PL_PS_*, atomic */
	bool ps_sampled;
	bool forked;                  /* a fork child: no span if it only execs */
	bool needs_span;              /* something points at our span: commit it */
	bool fork_threaded;           /* forked from a program with threads of its own */
	spanring_span_context parent; /* the span's parent (remote), if has_parent */
	bool has_parent;
	spanring_span_context ctx;    /* the span's own context */
	struct pl_pspan ps;
	struct sr_thread sig_thr;     /* commits of the process span: own exclusive slot */

	/* Children's environment. */
	bool tp_in_environ;           /* tp_env is in environ (putenv) */
	char tp_env[12 + SPANRING_TRACEPARENT_LEN + 1]; /* "TRACEPARENT=..." */
	char tp_inherited[SPANRING_TRACEPARENT_LEN + 1];
	char tp_image[SPANRING_TRACEPARENT_LEN + 1];     /* published at start */
	char tp_parent[SPANRING_TRACEPARENT_LEN + 1];   /* a fork child's parent span */
	char tp_own_saved[SPANRING_TRACEPARENT_LEN + 1];

	char sock_path[108];          /* the agent's socket, for the signal path */
	char exe_name[256];
};

SR_HIDDEN extern struct pl_state pl;
SR_HIDDEN extern PL_TLS int pl_busy;
SR_HIDDEN extern PL_TLS int pl_incall;

/* Is category on in this image (and not inside our own code)? */
static inline bool pl_tracing(unsigned cat)
{
	return __builtin_expect(pl.active, 1) && (pl.cfg.trace & cat) && !pl_busy && !pl_incall;
}

/* The context a span without a current parent should have as parent, or
 * NULL (new trace). Marks the process span as needed. */
SR_HIDDEN const spanring_span_context *pl_default_parent(void);

/* Before exec*: end (or drop) the process span and flush; fills want with
 * what the new image's environment must carry. Returns a token for
 * pl_exec_failed(). vfork children (other pid) change nothing. */
enum pl_exec_done {
	PL_EXEC_NOTHING,   /* nothing done */
	PL_EXEC_ENDED,     /* the process span ended */
	PL_EXEC_KEPT_FORK, /* a fork child's span kept for later */
};
struct pl_exec_tok {
	enum pl_exec_done kind;
};
SR_HIDDEN void pl_exec_prepare(struct pl_exec_tok *tok, struct pl_env_want *want, bool likely_ok);
SR_HIDDEN void pl_exec_failed(const struct pl_exec_tok *tok);
/* What spawned children (posix_spawn, system, popen) see; marks the span needed. */
SR_HIDDEN void pl_spawn_want(struct pl_env_want *want);
/* End the process span (normal context) and, for _exit paths, flush. */
SR_HIDDEN void pl_process_exit(int code, bool flush);
/* Async-signal-safe end on a fatal signal. */
SR_HIDDEN void pl_process_signal(int sig);
/* Registration thread: stop it around calls that need a single thread. */
SR_HIDDEN bool pl_client_pause(void);
SR_HIDDEN void pl_client_resume(bool was_running);

/* The getpid system call (never cached). */
SR_HIDDEN pid_t pl_getpid(void);
/* Debug line on stderr when SPANRING_DEBUG is set (async-signal-safe). */
SR_HIDDEN void pl_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- signals (pl_signal.c) ------------------------------------------------------- */

SR_HIDDEN void pl_signals_install(int which);

/* ---- descriptors (pl_fd.c) -------------------------------------------------------- */

SR_HIDDEN bool pl_fd_is_ours(int fd);
SR_HIDDEN void pl_fd_forget_all(void);
/* Raw close of our own descriptor (bypasses the protection). */
SR_HIDDEN int pl_fd_close(int fd);

/* ---- next definitions (pl_real.c) -------------------------------------------------- */

/* Resolve every symbol now (constructor). */
SR_HIDDEN void pl_real_init(void);
SR_HIDDEN void *pl_real_lookup(const char *name, void **slot);

#define PL_REAL_FN(ret, name, params) SR_HIDDEN extern ret(*pl_real_##name) params;
#include "pl_real.def"
#undef PL_REAL_FN

/* The next definition of name, resolved on first use if the constructor
 * has not run yet. NULL if there is none. The load-acquire pairs with the
 * store-release in pl_real_lookup(). */
#define PL_REAL(name)                                                                  \
	(__builtin_expect(sr_load_acquire_ptr(&pl_real_##name) != NULL, 1)               \
		 ? pl_real_##name                                                        \
		 : (__typeof__(pl_real_##name))pl_real_lookup(#name, (void **)&pl_real_##name))

/* ---- the library under its own names (lib_rename.h) -------------------------------- */

SR_HIDDEN spanring_span *sr_lib_span_start(spanring_tracer *t, const char *name,
					   spanring_kind kind);
SR_HIDDEN spanring_span *sr_lib_span_start_ref(spanring_tracer *t, const char *name,
					       spanring_kind kind);
SR_HIDDEN spanring_span *sr_lib_span_start_ex(spanring_tracer *t, const char *name,
					      const spanring_span_opts *opts);
SR_HIDDEN int sr_lib_span_emit(spanring_tracer *t, const spanring_span_data *d);
SR_HIDDEN int sr_lib_span_end(spanring_span *s);
SR_HIDDEN int sr_lib_span_end_at(spanring_span *s, uint64_t end_ns);
SR_HIDDEN int sr_lib_current_context(spanring_span_context *out);
SR_HIDDEN int sr_lib_shutdown(int timeout_ms);

/* Emit a finished CLIENT span for an interposed call (normal context). */
SR_HIDDEN void pl_emit(const char *name, uint64_t start_ns, uint64_t end_ns,
		       const spanring_attr *attrs, size_t n, int status, const char *msg);

#endif
