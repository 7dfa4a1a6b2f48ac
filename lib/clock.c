/* SPDX-License-Identifier: MIT */
/*
 * Span timestamps: CLOCK_REALTIME, read through the TSC when that is safe.
 *
 * clock_gettime(CLOCK_REALTIME) costs about 24 ns here (vDSO, TSC-backed
 * in a VM) and a span needs two; rdtsc costs about 10 ns. When the kernel
 * itself uses the TSC as its clocksource (it then has checked that the TSC
 * is invariant and synchronised across CPUs), we extrapolate realtime
 * from a (tsc, realtime) base with a calibrated multiplier:
 *
 *   ns = base_ns + ((tsc - base_tsc) * mult) >> 32
 *
 * Calibration starts after the first 20 ms of the process (until then
 * clock_gettime is used) and is redone every second against
 * clock_gettime, so NTP slewing and steps are followed within a second.
 * Readers use a seqlock; one thread recalibrates (trylock), others keep
 * reading the old parameters meanwhile. SPANRING_CLOCK=realtime disables
 * the TSC path. Only x86-64 has it; other machines use clock_gettime.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct sr_clock sr_clk;

#define CAL_FIRST_NS 20000000ull /* first calibration after 20 ms */
#define CAL_PERIOD_NS 1000000000ull

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#if defined(__x86_64__)
#include <x86intrin.h>

static bool kernel_uses_tsc(void)
{
	char buf[32] = {0};
	int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		      O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n >= 3 && strncmp(buf, "tsc", 3) == 0 && (buf[3] == '\n' || buf[3] == 0);
}

void sr_clock_init(void)
{
	const char *v = secure_getenv("SPANRING_CLOCK");
	memset(&sr_clk, 0, sizeof(sr_clk));
	if ((v && strcmp(v, "realtime") == 0) || !kernel_uses_tsc())
		return;
	sr_clk.cal_tsc = __rdtsc();
	sr_clk.cal_ns = realtime_ns();
	sr_clk.state = SR_CLK_CALIBRATING;
}

/*
 * Take a new (tsc, ns) base; derive mult from the interval since the last.
 * Orderings: the lock's exchange (acquire) pairs with its store (release)
 * at the end, between recalibrating threads; the seqlock write pairs with
 * the reader sr_clock_ns() in internal.h; the release of state pairs with
 * the acquire in sr_clock_slow() (the relaxed read in sr_clock_ns() is
 * re-checked by the seqlock).
 */
static void recalibrate(uint64_t tsc_now)
{
	if (sr_xchg_int(&sr_clk.lock, 1))
		return; /* someone else is at it */
	uint64_t ns = realtime_ns();
	uint64_t tsc = __rdtsc();
	(void)tsc_now;
	uint64_t cal_tsc = sr_load_relaxed_64(&sr_clk.cal_tsc);
	uint64_t cal_ns = sr_load_relaxed_64(&sr_clk.cal_ns);
	uint64_t dt = tsc - cal_tsc, dn = ns - cal_ns;
	if (ns > cal_ns && dt > 0 && dn > CAL_FIRST_NS / 2) {
		uint64_t mult = (uint64_t)(((unsigned __int128)dn << 32) / dt);
		/* Seqlock write: pairs with sr_seq_read_begin()/_end() in
		 * sr_clock_ns() (lib/internal.h). */
		sr_seq_write_begin(&sr_clk.seq);
		sr_seq_store_64(&sr_clk.base_tsc, tsc);
		sr_seq_store_64(&sr_clk.base_ns, ns);
		sr_seq_store_64(&sr_clk.mult, mult);
		sr_seq_store_64(&sr_clk.next_tsc,
				tsc + (uint64_t)(((unsigned __int128)CAL_PERIOD_NS << 32) / mult));
		sr_seq_write_end(&sr_clk.seq);
		sr_store_relaxed_64(&sr_clk.cal_tsc, tsc);
		sr_store_relaxed_64(&sr_clk.cal_ns, ns);
		/* Pairs with the load of state in sr_clock_slow(). */
		sr_store_int(&sr_clk.state, SR_CLK_TSC);
	} else if (ns < cal_ns) {
		/* Realtime stepped back: start the interval again. */
		sr_store_relaxed_64(&sr_clk.cal_tsc, tsc);
		sr_store_relaxed_64(&sr_clk.cal_ns, ns);
	}
	/* Release: pairs with the exchange above in the next recalibrating thread. */
	sr_store_int(&sr_clk.lock, 0);
}

uint64_t sr_clock_slow(void)
{
	uint64_t tsc = __rdtsc();
	/* Acquire: pairs with the store of state in recalibrate(). */
	int st = sr_load_int(&sr_clk.state);
	if (st == SR_CLK_CALIBRATING) {
		uint64_t ns = realtime_ns();
		if (ns - sr_load_relaxed_64(&sr_clk.cal_ns) >= CAL_FIRST_NS)
			recalibrate(tsc);
		return ns;
	}
	if (st == SR_CLK_TSC && tsc >= sr_load_relaxed_64(&sr_clk.next_tsc))
		recalibrate(tsc);
	return realtime_ns();
}

void sr_clock_atfork_child(void)
{
	sr_clk.lock = 0;
}
#else
void sr_clock_init(void)
{
	memset(&sr_clk, 0, sizeof(sr_clk));
}
uint64_t sr_clock_slow(void)
{
	return realtime_ns();
}
void sr_clock_atfork_child(void)
{
}
#endif
