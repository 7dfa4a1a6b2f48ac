/* SPDX-License-Identifier: MIT */
/*
 * Optional CLIENT spans for calls that block (SPANRING_TRACE=wait,fsync):
 *
 * wait, waitpid, wait4, waitid   span "wait" for a blocking wait (never for
 *                 WNOHANG: those do not block, and they are what SIGCHLD
 *                 handlers call): spanring.wait.pid (the argument),
 *                 spanring.wait.child_pid (the result), process.exit.code
 *                 of the child when it exited.
 * fsync, fdatasync  span "fsync" / "fdatasync": file.path when the
 *                 descriptor has one, error.type on failure.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "preload.h"

static void wait_span(uint64_t t0, uint64_t t1, int64_t pid_arg, pid_t r, int e, int status,
		      bool have_status)
{
	spanring_attr a[5];
	size_t n = 0;
	a[n++] = SPANRING_ATTR_INT("spanring.wait.pid", pid_arg);
	if (r > 0) {
		a[n++] = SPANRING_ATTR_INT("spanring.wait.child_pid", r);
		if (have_status && WIFEXITED(status))
			a[n++] = SPANRING_ATTR_INT("process.exit.code", WEXITSTATUS(status));
	}
	const char *msg = NULL;
	bool failed = r < 0 && e != EINTR;
	if (failed) {
		const char *en = strerrorname_np(e);
		a[n++] = SPANRING_ATTR_STR("error.type", en ? en : "_OTHER");
		msg = strerrordesc_np(e);
	}
	pl_emit("wait", t0, t1, a, n, failed ? SPANRING_STATUS_ERROR : SPANRING_STATUS_UNSET, msg);
}

PL_EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
	pid_t (*real)(pid_t, int *, int) = PL_REAL(waitpid);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (!pl_tracing(PL_T_WAIT) || (options & WNOHANG))
		return real(pid, status, options);
	int st = 0;
	pl_incall++;
	uint64_t t0 = sr_clock_ns();
	pid_t r = real(pid, &st, options);
	int e = errno;
	uint64_t t1 = sr_clock_ns();
	pl_incall--;
	if (status)
		*status = st;
	if (t1 - t0 >= pl.cfg.min_duration_ns)
		wait_span(t0, t1, pid, r, e, st, true);
	errno = e;
	return r;
}

PL_EXPORT pid_t wait(int *status)
{
	return waitpid(-1, status, 0);
}

PL_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	pid_t (*real)(pid_t, int *, int, struct rusage *) = PL_REAL(wait4);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (!pl_tracing(PL_T_WAIT) || (options & WNOHANG))
		return real(pid, status, options, ru);
	int st = 0;
	pl_incall++;
	uint64_t t0 = sr_clock_ns();
	pid_t r = real(pid, &st, options, ru);
	int e = errno;
	uint64_t t1 = sr_clock_ns();
	pl_incall--;
	if (status)
		*status = st;
	if (t1 - t0 >= pl.cfg.min_duration_ns)
		wait_span(t0, t1, pid, r, e, st, true);
	errno = e;
	return r;
}

PL_EXPORT int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
	int (*real)(idtype_t, id_t, siginfo_t *, int) = PL_REAL(waitid);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (!pl_tracing(PL_T_WAIT) || (options & WNOHANG))
		return real(idtype, id, info, options);
	pl_incall++;
	uint64_t t0 = sr_clock_ns();
	int r = real(idtype, id, info, options);
	int e = errno;
	uint64_t t1 = sr_clock_ns();
	pl_incall--;
	if (t1 - t0 >= pl.cfg.min_duration_ns) {
		pid_t child = r == 0 && info ? info->si_pid : (r < 0 ? -1 : 0);
		int st = info && info->si_code == CLD_EXITED ? W_EXITCODE(info->si_status, 0) : 0;
		wait_span(t0, t1, idtype == P_PID ? (int64_t)id : -1, child, e, st,
			  info && info->si_code == CLD_EXITED);
	}
	errno = e;
	return r;
}

static int sync_common(const char *name, int (*real)(int), int fd)
{
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (!pl_tracing(PL_T_FSYNC))
		return real(fd);
	pl_incall++;
	uint64_t t0 = sr_clock_ns();
	int r = real(fd);
	int e = errno;
	uint64_t t1 = sr_clock_ns();
	pl_incall--;
	if (t1 - t0 >= pl.cfg.min_duration_ns) {
		spanring_attr a[2];
		size_t n = 0;
		char link[32], path[4096];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t pn = readlink(link, path, sizeof(path) - 1);
		if (pn > 0 && path[0] == '/') {
			path[pn] = '\0';
			a[n++] = SPANRING_ATTR_STR("file.path", path);
		}
		const char *msg = NULL;
		if (r != 0) {
			const char *en = strerrorname_np(e);
			a[n++] = SPANRING_ATTR_STR("error.type", en ? en : "_OTHER");
			msg = strerrordesc_np(e);
		}
		pl_emit(name, t0, t1, a, n, r ? SPANRING_STATUS_ERROR : SPANRING_STATUS_UNSET, msg);
	}
	errno = e;
	return r;
}

PL_EXPORT int fsync(int fd)
{
	return sync_common("fsync", PL_REAL(fsync), fd);
}

PL_EXPORT int fdatasync(int fd)
{
	return sync_common("fdatasync", PL_REAL(fdatasync), fd);
}
