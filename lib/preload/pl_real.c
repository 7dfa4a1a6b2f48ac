/* SPDX-License-Identifier: MIT */
/*
 * The definitions our interposed functions forward to: the next ones in
 * the lookup order after the shim (normally libc's), found with
 * dlsym(RTLD_NEXT). The constructor resolves them all before main; a
 * call that comes earlier (another library's constructor) resolves its
 * own symbol on the spot. close() and _exit() never wait for dlsym: they
 * fall back to the system call, so that they stay async-signal-safe and
 * cannot recurse through an allocator that closes files.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

#define PL_REAL_FN(ret, name, params) ret(*pl_real_##name) params;
#include "pl_real.def"
#undef PL_REAL_FN

void *pl_real_lookup(const char *name, void **slot)
{
	int saved = errno;
	void *p = dlsym(RTLD_NEXT, name);
	errno = saved;
	if (p)
		sr_store_release_ptr(slot, p); /* pairs with the load in PL_REAL() */
	return p;
}

void pl_real_init(void)
{
#define PL_REAL_FN(ret, name, params) pl_real_lookup(#name, (void **)&pl_real_##name);
#include "pl_real.def"
#undef PL_REAL_FN
}

pid_t pl_getpid(void)
{
	return (pid_t)syscall(SYS_getpid);
}

void pl_debug(const char *fmt, ...)
{
	if (!pl.cfg.debug)
		return;
	char buf[512];
	int saved = errno;
	int n = snprintf(buf, sizeof(buf), "spanring-preload[%d]: ", (int)pl_getpid());
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, buf, len);
	(void)w;
	errno = saved;
}
