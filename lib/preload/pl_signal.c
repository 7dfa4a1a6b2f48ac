/* SPDX-License-Identifier: MIT */
/*
 * Fatal signals: end the process span, then die exactly as before.
 *
 * For each signal whose default action ends the process (crash signals,
 * and with SPANRING_SIGNALS=all also the terminating ones: SIGTERM,
 * SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1/2, SIGXCPU, SIGXFSZ,
 * SIGVTALRM, SIGPROF) and that is at SIG_DFL when the constructor runs,
 * the shim installs a handler. Ignored signals (a background job's
 * SIGINT, a pipeline's SIGPIPE set to SIG_IGN) are left alone. The
 * handler ends the span (pl_process_signal, async-signal-safe), restores
 * SIG_DFL and re-raises, so the process dies by the same signal, with the
 * same wait status and core dump. A fault raised by an instruction
 * (SIGSEGV, SIGBUS, SIGILL, SIGFPE from the CPU) is not re-raised: the
 * return re-executes the instruction, which faults again under SIG_DFL.
 *
 * The program must not see the difference, so sigaction(), signal() and
 * bsd_signal() keep a shadow of what the program set for those signals:
 * a query returns SIG_DFL (or what the program last set), setting SIG_DFL
 * keeps our handler in place, and setting a handler or SIG_IGN replaces
 * ours for real (the program's handler then decides; we record nothing
 * for that signal). A disposition changed behind our back (sigset(),
 * sysv_signal(), a raw system call) is noticed at the next call.
 * SIGTRAP is left alone (debuggers), as are SIGKILL and SIGSTOP (no
 * handler possible).
 */
#include <errno.h>
#include <string.h>

#include "preload.h"

static struct sigaction shadow[NSIG];
static unsigned char hooked[NSIG];  /* our handler is installed */
static unsigned char wanted[NSIG];  /* we would hook it at SIG_DFL */

static const int crash_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
static const int term_sigs[] = {SIGTERM, SIGINT,  SIGHUP,  SIGQUIT, SIGPIPE,   SIGALRM,
				SIGUSR1, SIGUSR2, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF};

static int real_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	int (*real)(int, const struct sigaction *, struct sigaction *) = PL_REAL(sigaction);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	return real(sig, act, old);
}

static bool is_fault(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE;
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	int saved = errno;
	pl_process_signal(sig);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	real_sigaction(sig, &dfl, NULL);
	hooked[sig] = 0;
	/* Blocked while we run: delivered, with its default action, when the
	 * handler returns. */
	if (!(si && si->si_code > 0 && is_fault(sig)))
		raise(sig);
	errno = saved;
}

static bool is_default(const struct sigaction *a)
{
	/* sa_handler and sa_sigaction share storage. */
	return a->sa_handler == SIG_DFL;
}

static void our_action(struct sigaction *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sa_sigaction = on_signal;
	sa->sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	/* Nothing else interrupts the span's end. */
	sigfillset(&sa->sa_mask);
}

static int install(int sig)
{
	struct sigaction sa;
	our_action(&sa);
	int r = real_sigaction(sig, &sa, NULL);
	if (r == 0)
		hooked[sig] = 1;
	return r;
}

void pl_signals_install(int which)
{
	if (which == PL_SIG_NONE)
		return;
	for (size_t i = 0; i < sizeof(crash_sigs) / sizeof(crash_sigs[0]); i++)
		wanted[crash_sigs[i]] = 1;
	if (which == PL_SIG_ALL)
		for (size_t i = 0; i < sizeof(term_sigs) / sizeof(term_sigs[0]); i++)
			wanted[term_sigs[i]] = 1;
	/* One call per signal: install, and put back what was there unless
	 * it was the default (ignored signals stay ignored). We are alone in
	 * the process here (constructor), so nothing sees the moment between. */
	struct sigaction sa;
	our_action(&sa);
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction old;
		if (!wanted[sig] || real_sigaction(sig, &sa, &old) != 0)
			continue;
		if (is_default(&old)) {
			shadow[sig] = old;
			hooked[sig] = 1;
		} else {
			real_sigaction(sig, &old, NULL);
		}
	}
}

/* Is our handler still the installed one? (It may have been replaced
 * by a path we do not see.) */
static bool still_ours(int sig)
{
	struct sigaction cur;
	if (real_sigaction(sig, NULL, &cur) != 0)
		return false;
	return (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_signal;
}

PL_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sig <= 0 || sig >= NSIG || !wanted[sig] || pl_busy)
		return real_sigaction(sig, act, old);
	if (hooked[sig] && !still_ours(sig))
		hooked[sig] = 0;
	if (hooked[sig]) {
		struct sigaction prev = shadow[sig];
		if (act) {
			if (is_default(act)) {
				shadow[sig] = *act;
			} else {
				int r = real_sigaction(sig, act, NULL);
				if (r != 0)
					return r;
				hooked[sig] = 0;
			}
		}
		if (old)
			*old = prev;
		return 0;
	}
	int r = real_sigaction(sig, act, old);
	if (r == 0 && act && is_default(act) && pl.active && (pl.cfg.trace & PL_T_PROCESS)) {
		/* Back to the default: our handler serves it again. */
		int saved = errno;
		shadow[sig] = *act;
		install(sig);
		errno = saved;
	}
	return r;
}

/* signal() with glibc's (BSD) semantics, through our sigaction(). */
static sighandler_t bsd_signal_impl(int sig, sighandler_t handler, sighandler_t (*real)(int, sighandler_t))
{
	if (sig <= 0 || sig >= NSIG || !wanted[sig] || pl_busy) {
		if (!real) {
			errno = ENOSYS;
			return SIG_ERR;
		}
		return real(sig, handler);
	}
	struct sigaction act, old;
	memset(&act, 0, sizeof(act));
	act.sa_handler = handler;
	sigemptyset(&act.sa_mask);
	sigaddset(&act.sa_mask, sig);
	act.sa_flags = SA_RESTART;
	if (handler == SIG_ERR) {
		errno = EINVAL;
		return SIG_ERR;
	}
	if (sigaction(sig, &act, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

PL_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	return bsd_signal_impl(sig, handler, PL_REAL(signal));
}

/* Not declared by <signal.h> under _GNU_SOURCE (POSIX.1-2008 removed it). */
sighandler_t bsd_signal(int sig, sighandler_t handler);
PL_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler)
{
	return bsd_signal_impl(sig, handler, PL_REAL(bsd_signal));
}
