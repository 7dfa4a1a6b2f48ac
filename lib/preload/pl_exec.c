/* SPDX-License-Identifier: MIT */
/*
 * Starting programs: exec*, posix_spawn*, system, popen, daemon; and
 * unshare/setns, which must not see our registration thread.
 *
 * exec* ends this image's process span (or drops a fork child's, see
 * pl_proc.c), waits until the agent has the ring (the memfd is
 * close-on-exec), and hands the new image an environment whose
 * TRACEPARENT points at the right span. The caller's argv/envp arrays
 * are never modified: a changed environment is a new array in pages from
 * mmap(), because these functions run in vfork children and in children
 * of threaded programs, where malloc() is not safe. When the file cannot
 * be executed at all (a shell trying each $PATH entry), nothing is ended.
 *
 * posix_spawn* gets the same environment treatment; system() and popen()
 * use environ, which already carries our TRACEPARENT (put there by the
 * constructor), so they only mark the span as needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "preload.h"

extern char **environ;

struct envbuf {
	void *mem;
	size_t len;
};

static void *pages(size_t n, size_t *len)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t p = pg > 0 ? (size_t)pg : 4096;
	*len = (n + p - 1) / p * p;
	void *m = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return m == MAP_FAILED ? NULL : m;
}

static char **env_for(char *const envp[], const struct pl_env_want *w, struct envbuf *b)
{
	b->mem = NULL;
	size_t need = pl_env_fix_size(envp, w);
	if (!need)
		return (char **)envp;
	b->mem = pages(need, &b->len);
	if (!b->mem)
		return (char **)envp;
	return pl_env_fix(envp, w, b->mem, b->len);
}

static void env_free(struct envbuf *b)
{
	if (b->mem)
		munmap(b->mem, b->len);
	b->mem = NULL;
}

/* Will exec find something to run? (Only a cheap guess: access().) */
static bool findable(const char *file, bool search)
{
	if (!file || !*file)
		return false;
	if (!search || strchr(file, '/'))
		return access(file, X_OK) == 0;
	const char *path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin"; /* glibc's default for execvp */
	size_t fl = strlen(file);
	char buf[PATH_MAX];
	for (const char *p = path;; p++) {
		const char *s = p;
		while (*p && *p != ':')
			p++;
		size_t dl = (size_t)(p - s);
		if (dl + 1 + fl + 1 <= sizeof(buf)) {
			if (dl) {
				memcpy(buf, s, dl);
				buf[dl] = '/';
				memcpy(buf + dl + 1, file, fl + 1);
			} else {
				memcpy(buf, file, fl + 1);
			}
			if (access(buf, X_OK) == 0)
				return true;
		}
		if (!*p)
			return false;
	}
}

static bool fd_executable(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

enum { X_EXECVE, X_EXECVPE, X_FEXECVE };

static int do_exec(int kind, const char *file, int fd, char *const argv[], char *const envp[])
{
	int (*ve)(const char *, char *const[], char *const[]) = NULL;
	int (*fe)(int, char *const[], char *const[]) = NULL;
	if (kind == X_EXECVE)
		ve = PL_REAL(execve);
	else if (kind == X_EXECVPE)
		ve = PL_REAL(execvpe);
	else
		fe = PL_REAL(fexecve);
	if (!ve && !fe) {
		errno = ENOSYS;
		return -1;
	}
	if (!pl.active || pl_busy)
		return fe ? fe(fd, argv, envp) : ve(file, argv, envp);

	int saved = errno;
	bool ok = kind == X_FEXECVE ? fd_executable(fd) : findable(file, kind == X_EXECVPE);
	struct pl_exec_tok tok;
	struct pl_env_want w;
	pl_exec_prepare(&tok, &w, ok);
	struct envbuf b;
	char **env = env_for(envp, &w, &b);
	errno = saved;
	int r = fe ? fe(fd, argv, env) : ve(file, argv, env);
	int e = errno;
	env_free(&b);
	pl_exec_failed(&tok);
	errno = e;
	return r;
}

PL_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return do_exec(X_EXECVE, path, -1, argv, envp);
}

PL_EXPORT int execv(const char *path, char *const argv[])
{
	return do_exec(X_EXECVE, path, -1, argv, environ);
}

PL_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return do_exec(X_EXECVPE, file, -1, argv, envp);
}

PL_EXPORT int execvp(const char *file, char *const argv[])
{
	return do_exec(X_EXECVPE, file, -1, argv, environ);
}

PL_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	return do_exec(X_FEXECVE, NULL, fd, argv, envp);
}

/* The execl* family: argv from the variable arguments (and envp after the
 * terminating NULL for execle), in mmap'ed pages. */
static int execl_common(int kind, const char *file, const char *arg, va_list ap, bool with_env)
{
	va_list cp;
	va_copy(cp, ap);
	size_t n = 1;
	while (va_arg(cp, const char *))
		n++;
	va_end(cp);
	size_t len;
	char **argv = pages((n + 1) * sizeof(char *), &len);
	if (!argv) {
		errno = ENOMEM;
		return -1;
	}
	argv[0] = (char *)arg;
	for (size_t i = 1; i <= n; i++)
		argv[i] = va_arg(ap, char *); /* the last one is the NULL */
	char *const *envp = with_env ? va_arg(ap, char *const *) : environ;
	int r = do_exec(kind, file, -1, argv, envp);
	int e = errno;
	munmap(argv, len);
	errno = e;
	return r;
}

PL_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	int r = execl_common(X_EXECVE, path, arg, ap, false);
	va_end(ap);
	return r;
}

PL_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	int r = execl_common(X_EXECVE, path, arg, ap, true);
	va_end(ap);
	return r;
}

PL_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	int r = execl_common(X_EXECVPE, file, arg, ap, false);
	va_end(ap);
	return r;
}

/* ---- spawning ------------------------------------------------------------------------ */

typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			const posix_spawnattr_t *, char *const[], char *const[]);

static int spawn_common(spawn_fn real, pid_t *pid, const char *path,
			const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
			char *const argv[], char *const envp[])
{
	if (!real)
		return ENOSYS;
	if (!pl.active || pl_busy)
		return real(pid, path, fa, attr, argv, envp);
	int saved = errno;
	struct pl_env_want w;
	pl_spawn_want(&w);
	struct envbuf b;
	char **env = env_for(envp, &w, &b);
	errno = saved;
	int r = real(pid, path, fa, attr, argv, env);
	int e = errno;
	env_free(&b);
	errno = e;
	return r;
}

PL_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			  const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	return spawn_common(PL_REAL(posix_spawn), pid, path, fa, attr, argv, envp);
}

PL_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	return spawn_common(PL_REAL(posix_spawnp), pid, file, fa, attr, argv, envp);
}

PL_EXPORT int system(const char *cmd)
{
	int (*real)(const char *) = PL_REAL(system);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (pl.active && !pl_busy && cmd) {
		struct pl_env_want w;
		pl_spawn_want(&w);
	}
	return real(cmd);
}

PL_EXPORT FILE *popen(const char *cmd, const char *mode)
{
	FILE *(*real)(const char *, const char *) = PL_REAL(popen);
	if (!real) {
		errno = ENOSYS;
		return NULL;
	}
	if (pl.active && !pl_busy) {
		struct pl_env_want w;
		pl_spawn_want(&w);
	}
	return real(cmd, mode);
}

/*
 * daemon(): glibc's forks and calls _exit() in the parent through internal
 * aliases we cannot see, so the parent's span would never end. This is
 * the same algorithm (glibc misc/daemon.c) through the public functions.
 */
PL_EXPORT int daemon(int nochdir, int noclose)
{
	if (!pl.active || pl_busy) {
		int (*real)(int, int) = PL_REAL(daemon);
		if (!real) {
			errno = ENOSYS;
			return -1;
		}
		return real(nochdir, noclose);
	}
	switch (fork()) {
	case -1:
		return -1;
	case 0:
		break;
	default:
		_exit(0); /* ours: ends the parent's span, waits for the agent */
	}
	if (setsid() == -1)
		return -1;
	if (!nochdir)
		(void)chdir("/");
	if (!noclose) {
		struct stat st;
		int fd = open("/dev/null", O_RDWR);
		if (fd != -1 && fstat(fd, &st) == 0) {
			if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
				(void)dup2(fd, STDIN_FILENO);
				(void)dup2(fd, STDOUT_FILENO);
				(void)dup2(fd, STDERR_FILENO);
				if (fd > 2)
					(void)close(fd);
			} else {
				(void)close(fd);
				errno = ENODEV;
				return -1;
			}
		} else {
			if (fd != -1)
				(void)close(fd);
			return -1;
		}
	}
	return 0;
}

/* ---- single-thread-only calls ----------------------------------------------------------- */

/*
 * unshare(CLONE_NEWUSER ...) and setns() into a user or mount namespace
 * fail with EINVAL in a process with several threads, and the
 * registration thread makes every traced process one. The call is made
 * as it is; only if it fails with EINVAL while that thread is the only
 * other one is it made again with the thread stopped (and restarted
 * afterwards: it registers the ring again). Flags the kernel does not
 * know fail the same way either time and are not retried.
 */
#define UNSHARE_KNOWN                                                                        \
	(CLONE_FILES | CLONE_FS | CLONE_NEWCGROUP | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWNS | \
	 CLONE_NEWPID | CLONE_NEWUSER | CLONE_NEWUTS | CLONE_SYSVSEM | CLONE_THREAD |            \
	 CLONE_SIGHAND | CLONE_VM | 0x00000080 /* CLONE_NEWTIME */)

static bool only_our_thread(void)
{
	struct stat st;
	/* nlink of /proc/self/task is 2 + the number of threads. */
	/* Acquire: pairs with the store in sr_proc_init() (producer.c). */
	return sr_load_int(&sr_g.state) == SR_PROC_ACTIVE && stat("/proc/self/task", &st) == 0 &&
	       st.st_nlink == 4;
}

/*
 * After the registration thread was stopped: pthread_join() returns when
 * the kernel clears the thread's tid, which is before the thread has left
 * the thread group; until it has, the kernel still sees two threads and
 * the call fails with EINVAL again (1 run in 10 of preload_procs'
 * connect-unshare under ASan). Wait for that, at most 200 ms.
 */
static void wait_single_thread(bool was)
{
	struct stat st;
	struct timespec ms1 = {0, 1000000};
	for (int i = 0; was && i < 200; i++) {
		if (stat("/proc/self/task", &st) != 0 || st.st_nlink <= 3)
			return;
		nanosleep(&ms1, NULL);
	}
}

PL_EXPORT int unshare(int flags)
{
	int (*real)(int) = PL_REAL(unshare);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	int r = real(flags);
	if (r == 0 || errno != EINVAL || !pl.active || pl_busy || (flags & ~UNSHARE_KNOWN) ||
	    !(flags & (CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)))
		return r;
	int e = errno;
	if (!only_our_thread()) {
		errno = e;
		return r;
	}
	bool was = pl_client_pause();
	wait_single_thread(was);
	r = real(flags);
	e = errno;
	pl_client_resume(was);
	errno = e;
	return r;
}

PL_EXPORT int setns(int fd, int nstype)
{
	int (*real)(int, int) = PL_REAL(setns);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	int r = real(fd, nstype);
	/* 0 and pidfd masks may mean a user or mount namespace. */
	if (r == 0 || errno != EINVAL || !pl.active || pl_busy ||
	    (nstype && !(nstype & (CLONE_NEWUSER | CLONE_NEWNS))))
		return r;
	int e = errno;
	if (!only_our_thread()) {
		errno = e;
		return r;
	}
	bool was = pl_client_pause();
	wait_single_thread(was);
	r = real(fd, nstype);
	e = errno;
	pl_client_resume(was);
	errno = e;
	return r;
}

/* ---- endings ------------------------------------------------------------------------------- */

static void __attribute__((noreturn)) exit_now(void (*real)(int), int code)
{
	if (real)
		real(code);
	for (;;)
		syscall(SYS_exit_group, code);
}

PL_EXPORT void _exit(int code)
{
	int saved = errno;
	pl_process_exit(code, true);
	errno = saved;
	/* No lookup here (dlsym is not async-signal-safe); the load-acquire
	 * pairs with the store-release in pl_real_lookup(). */
	exit_now(sr_load_acquire_ptr(&pl_real__exit), code);
}

PL_EXPORT void _Exit(int code)
{
	int saved = errno;
	pl_process_exit(code, true);
	errno = saved;
	exit_now(sr_load_acquire_ptr(&pl_real__Exit), code); /* as in _exit() */
}

PL_EXPORT void quick_exit(int code)
{
	void (*real)(int) = PL_REAL(quick_exit);
	/* quick_exit runs the at_quick_exit handlers, then _Exit inside libc:
	 * end the span first (the handlers may still make spans of their own,
	 * which the flush below does not wait for). */
	pl_process_exit(code, true);
	if (real)
		real(code);
	exit_now(NULL, code);
}
