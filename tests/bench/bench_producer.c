/* SPDX-License-Identifier: MIT */
/*
 * Producer hot-path benchmark: the reference span (issue 2) from start to
 * end, with a consumer thread draining the ring as the agent would.
 *
 *   bench_producer [--variant NAME] [--threads N] [--spans N] [--warmup N]
 *                  [--no-consumer] [--consumer-sleep-us N] [--batch N]
 *                  [--no-prefault] [--pin] [--json] [--per-thread] [--agent]
 *
 * Variants: reference (copying setters), reference_ref (borrowing
 * setters), emit (one-call form), attrs16, events2, unsampled, overlimit.
 *
 * Each producer thread runs, in order:
 *   1. warm-up: --warmup spans (default min(spans/10, 10000)), untimed;
 *   2. per-span phase: --spans spans, each timed alone with rdtsc
 *      (median_ns, p99_ns, ...: these include the timer's own cost,
 *      reported as timer_ns; the TSC ticks in steps of ~10 ns on some VMs,
 *      so per-span figures are quantised to that step);
 *   3. batch phase (unless --batch 0): --spans more spans in batches of
 *      --batch (default 64), each batch timed as a whole; batch_median_ns
 *      is the median over batches of the per-span mean. No per-span timer,
 *      so it is the finer and less biased central figure.
 * The consumer thread drains all slots, then sleeps --consumer-sleep-us
 * (default 20, timer slack 1 ns) before the next pass, as the agent polls
 * on an interval; 0: busy poll (sched_yield() when a pass found nothing).
 * A busy-polling consumer that shares its CPU with anything else starves
 * (sched_yield gives its turn away) and the ring fills; a sleeper wakes
 * with priority. At full speed a producer fills a 512 KiB slot in about
 * 0.5 ms, so on a loaded or virtualised machine a consumer that is not
 * scheduled in time makes the ring refuse spans (counted; see committed_*
 * below). Without a consumer thread (--no-consumer) the ring is drained
 * inline every 256 spans, outside the timed region.
 *
 * --agent: no consumer thread and no inline drain: a spanring-agent (on
 * $SPANRING_SOCKET) drains the ring; each thread waits (at most 5 s) after
 * its warm-up until the ring is registered. tests/bench/agent.py runs it
 * against an agent with the null exporter.
 * --pin pins producer i to the i-th allowed CPU and the consumer to the
 * next one (modulo the CPU count). Unpinned, the scheduler sometimes
 * wakes the consumer on a producer's CPU, and its frequent wake-ups then
 * made that producer 3-4x slower for the run (2-vCPU VM).
 * The ring's pages are faulted in before timing (--no-prefault: not).
 *
 * Output: one line of key=value (or one JSON object with --json): the
 * figures over all threads' spans, drops, the clock the library used
 * (tsc or realtime), and with --per-thread each thread's figures.
 * A span the ring refused (full) costs less than one it took, so the
 * figures are also given over committed spans only (committed_*; JSON:
 * committed_only): each thread watches its own slot's drop counters
 * around every timed span and batch (with SPANRING_SLOTS=1 the threads
 * share the slot and may see each other's drops).
 *
 * Instruction counts: one_span() is noinline, so
 *   valgrind --tool=callgrind --toggle-collect=one_span bench_producer \
 *       --no-consumer --batch 0 --warmup W --spans N
 * counts exactly the instructions of calls = W + N spans per thread (the
 * output's `calls`); the first calls include one-off set-up (thread state,
 * slot claim, scope publication), so tests/bench/run.sh takes two runs
 * with the same --warmup and different --spans and divides the difference
 * of the counts by the difference of the calls: that is exact.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "internal.h"
#include "ringread.h"
#include "spanring/spanring.h"

#define MAX_THREADS 64

static int nthreads = 1, consumer = 1, pin, json, per_thread, agent_mode;
static long consumer_sleep_us = 20;
static int prefault = 1;
static long nspans = 1000000, nwarm = -1, batch = 64;
static const char *variant = "reference";
enum { V_REF, V_REFREF, V_EMIT, V_ATTRS16, V_EVENTS2, V_UNSAMPLED, V_OVERLIMIT };
static int vid;
static atomic_int stop_consumer;
static struct sr_map cmap;
static spanring_tracer *tracer;
static spanring_span_context parent;
static double tsc_per_ns;
static int cpus[256], ncpus;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void calibrate(void)
{
	uint64_t t0 = mono_ns(), c0 = __rdtsc();
	usleep(50000);
	uint64_t t1 = mono_ns(), c1 = __rdtsc();
	tsc_per_ns = (double)(c1 - c0) / (double)(t1 - t0);
}

/* Pin the calling thread to the (i mod n)-th CPU this process may use. */
static void pin_to(int i)
{
	if (!pin || ncpus <= 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpus[i % ncpus], &set);
	int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (err)
		fprintf(stderr, "bench: pin to cpu %d: %s\n", cpus[i % ncpus], strerror(err));
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

/*
 * Fault the ring's slot pages in (both mappings of every slot, producer
 * and consumer side) before timing: a long-running process has them
 * resident after the first pass through each slot, and a first-touch
 * fault (microseconds per 4 KiB) would otherwise land in the timed spans
 * of a short run, the more so the larger the slots.
 */
static void prefault_ring(void)
{
	size_t len = (size_t)cmap.l.slot_count * 2 * cmap.l.slot_size;
	if (madvise(sr_g.map.data, len, MADV_POPULATE_WRITE) != 0) {
		/* Older kernels: touch one byte per page (no record exists yet). */
		long pg = sysconf(_SC_PAGESIZE);
		for (size_t off = 0; off < len; off += (size_t)pg)
			((volatile uint8_t *)sr_g.map.data)[off] = 0;
	}
	if (madvise(cmap.data, len, MADV_POPULATE_READ) != 0) {
		long pg = sysconf(_SC_PAGESIZE);
		uint8_t sink = 0;
		for (size_t off = 0; off < len; off += (size_t)pg)
			sink ^= ((volatile uint8_t *)cmap.data)[off];
		(void)sink;
	}
}

static void *consumer_main(void *arg)
{
	(void)arg;
	/* The consumer goes on the CPU after the producers' (shared when
	 * threads >= CPUs, as on a 2-core machine with 2 producers). */
	pin_to(nthreads);
	/* Sleep what we ask for, not 50 us more (the default timer slack). */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	while (!atomic_load(&stop_consumer)) {
		int n = rr_drain(&cmap, true, NULL, NULL);
		if (n < 0) {
			fprintf(stderr, "consumer: framing error\n");
			exit(1);
		}
		/* Poll on an interval, or busy-poll (see the head comment). */
		if (consumer_sleep_us > 0) {
			struct timespec ts = {consumer_sleep_us / 1000000,
					      (consumer_sleep_us % 1000000) * 1000L};
			nanosleep(&ts, NULL);
		} else if (n == 0) {
			sched_yield();
		}
	}
	rr_drain(&cmap, true, NULL, NULL);
	return NULL;
}

static char big[2048];

__attribute__((noinline)) void one_span(void);
__attribute__((noinline)) void one_span(void)
{
	if (vid == V_EMIT) {
		spanring_attr a[4] = {
			SPANRING_ATTR_STR("http.request.method", "GET"),
			SPANRING_ATTR_STR("url.path", "/api/users/12345"),
			SPANRING_ATTR_INT("http.response.status_code", 200),
			SPANRING_ATTR_BOOL("cache.hit", true),
		};
		spanring_span_data d = {.name = "GET /api/users/:id", .kind = SPANRING_KIND_SERVER,
					.parent = &parent, .start_ns = spanring_now_ns(),
					.attrs = a, .n_attrs = 4, .status = SPANRING_STATUS_OK};
		spanring_span_emit(tracer, &d);
		return;
	}
	spanring_span_opts o = {.kind = SPANRING_KIND_SERVER, .parent = &parent};
	spanring_span *s;
	if (vid == V_REFREF) {
		s = spanring_span_start_ex(tracer, NULL, &o);
		spanring_span_update_name(s, "GET /api/users/:id");
		spanring_span_set_str_ref(s, "http.request.method", "GET");
		spanring_span_set_str_ref(s, "url.path", "/api/users/12345");
		spanring_span_set_int_ref(s, "http.response.status_code", 200);
		spanring_span_set_bool_ref(s, "cache.hit", true);
	} else {
		s = spanring_span_start_ex(tracer, "GET /api/users/:id", &o);
		spanring_span_set_str(s, "http.request.method", "GET");
		spanring_span_set_str(s, "url.path", "/api/users/12345");
		spanring_span_set_int(s, "http.response.status_code", 200);
		spanring_span_set_bool(s, "cache.hit", true);
	}
	if (vid == V_ATTRS16) {
		static const char *keys[12] = {"a.1", "a.2", "a.3", "a.4", "a.5", "a.6",
					       "a.7", "a.8", "a.9", "a.10", "a.11", "a.12"};
		for (int i = 0; i < 12; i++)
			spanring_span_set_str(s, keys[i], "value-of-some-length");
	} else if (vid == V_EVENTS2) {
		spanring_attr ea[2] = {SPANRING_ATTR_STR("db.system", "redis"),
				       SPANRING_ATTR_INT("retries", 1)};
		spanring_span_add_event(s, "cache.miss", ea, 2);
		spanring_span_add_event(s, "db.query", ea, 1);
	} else if (vid == V_OVERLIMIT) {
		spanring_span_set_str(s, "big", big);
	}
	spanring_span_set_status(s, SPANRING_STATUS_OK, NULL);
	spanring_span_end(s);
}

/* Timed by callers to measure the timer itself. */
__attribute__((noinline)) void empty_call(void);
__attribute__((noinline)) void empty_call(void)
{
	__asm__ volatile("" ::: "memory");
}

struct stats {
	double median, p90, p99, p999, min, max, batch_median, batch_min, mean;
};

struct result {
	double *lat;     /* per-span ns, phase 2 */
	double *bmean;   /* per-batch mean ns/span, phase 3 */
	long n, nb;
	double *clat;    /* the same, committed spans / drop-free batches only */
	double *cbmean;
	long cn, cnb;
	long slot;       /* the slot this thread writes, -1: unknown */
	double batch_ns; /* wall-clock mean of phase 2 (includes the timer) */
	struct stats st, cst;
};

/* Spans this slot refused so far (its writer's own counters: cheap). */
static inline uint64_t slot_drops(long slot)
{
	if (slot < 0)
		return 0;
	const struct spanring_slot_prod *p = sr_prod(&cmap, (uint32_t)slot);
	return __atomic_load_n(&p->drop_full, __ATOMIC_RELAXED) +
	       __atomic_load_n(&p->drop_oversize, __ATOMIC_RELAXED) +
	       __atomic_load_n(&p->drop_encode, __ATOMIC_RELAXED);
}

static uint64_t slot_events(uint32_t i)
{
	const struct spanring_slot_prod *p = sr_prod(&cmap, i);
	return __atomic_load_n(&p->spans, __ATOMIC_RELAXED) +
	       __atomic_load_n(&p->drop_full, __ATOMIC_RELAXED) +
	       __atomic_load_n(&p->drop_oversize, __ATOMIC_RELAXED) +
	       __atomic_load_n(&p->drop_encode, __ATOMIC_RELAXED);
}

/*
 * Which slot does the calling thread write? One span at a time under a
 * lock, watching which slot's counters move. -1 when none does (unsampled).
 */
static pthread_mutex_t find_lock = PTHREAD_MUTEX_INITIALIZER;
static long find_slot(void)
{
	uint32_t n = cmap.l.slot_count;
	uint64_t before[64];
	long slot = -1;
	pthread_mutex_lock(&find_lock);
	for (uint32_t i = 0; i < n && i < 64; i++)
		before[i] = slot_events(i);
	one_span();
	for (uint32_t i = 0; i < n && i < 64; i++)
		if (slot_events(i) != before[i])
			slot = i;
	pthread_mutex_unlock(&find_lock);
	return slot;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *sorted, long n, double q)
{
	if (n <= 0)
		return 0;
	long i = (long)((double)n * q);
	return sorted[i < n ? i : n - 1];
}

/* Sorts its arguments in place. */
static void summarise(struct stats *st, double *lat, long n, double *bm, long nb)
{
	memset(st, 0, sizeof(*st));
	if (n > 0) {
		qsort(lat, (size_t)n, sizeof(double), cmp_double);
		st->median = pct(lat, n, 0.5);
		st->p90 = pct(lat, n, 0.90);
		st->p99 = pct(lat, n, 0.99);
		st->p999 = pct(lat, n, 0.999);
		st->min = lat[0];
		st->max = lat[n - 1];
	}
	if (nb > 0) {
		qsort(bm, (size_t)nb, sizeof(double), cmp_double);
		st->batch_median = pct(bm, nb, 0.5);
		st->batch_min = bm[0];
	}
}

struct prod_arg {
	int index;
	struct result *r;
};

static void *producer_run(void *arg)
{
	struct prod_arg *pa = arg;
	struct result *r = pa->r;
	pin_to(pa->index);
	long since_drain = 0;
	r->slot = find_slot(); /* one span, part of the warm-up */
	for (long i = 1; i < nwarm; i++) {
		one_span();
		if (!consumer && !agent_mode && ++since_drain >= 256) {
			rr_drain(&cmap, true, NULL, NULL);
			since_drain = 0;
		}
	}
	if (agent_mode) {
		spanring_stats ss;
		for (int k = 0; k < 5000 && spanring_get_stats(&ss) == 0 && !ss.registered; k++)
			usleep(1000);
	}
	r->lat = malloc(sizeof(double) * (size_t)nspans);
	r->clat = malloc(sizeof(double) * (size_t)nspans);
	r->n = nspans;
	r->cn = 0;
	uint64_t t0 = mono_ns();
	for (long i = 0; i < nspans; i++) {
		uint64_t d0 = slot_drops(r->slot);
		uint64_t c0 = __rdtsc();
		one_span();
		uint64_t c1 = __rdtsc();
		r->lat[i] = (double)(c1 - c0) / tsc_per_ns;
		if (slot_drops(r->slot) == d0)
			r->clat[r->cn++] = r->lat[i];
		/* Without a consumer thread, drain here (outside the timed call). */
		if (!consumer && !agent_mode && ++since_drain >= 256) {
			rr_drain(&cmap, true, NULL, NULL);
			since_drain = 0;
		}
	}
	r->batch_ns = nspans > 0 ? (double)(mono_ns() - t0) / (double)nspans : 0;
	r->nb = batch > 0 ? nspans / batch : 0;
	r->bmean = malloc(sizeof(double) * (size_t)(r->nb > 0 ? r->nb : 1));
	r->cbmean = malloc(sizeof(double) * (size_t)(r->nb > 0 ? r->nb : 1));
	r->cnb = 0;
	for (long b = 0; b < r->nb; b++) {
		uint64_t d0 = slot_drops(r->slot);
		uint64_t c0 = __rdtsc();
		for (long j = 0; j < batch; j++)
			one_span();
		uint64_t c1 = __rdtsc();
		r->bmean[b] = (double)(c1 - c0) / tsc_per_ns / (double)batch;
		if (slot_drops(r->slot) == d0)
			r->cbmean[r->cnb++] = r->bmean[b];
		since_drain += batch;
		if (!consumer && !agent_mode && since_drain >= 256) {
			rr_drain(&cmap, true, NULL, NULL);
			since_drain = 0;
		}
	}
	return NULL;
}

static double timer_overhead(void)
{
	enum { N = 20000 };
	static double lat[N];
	for (int i = 0; i < N; i++) {
		uint64_t c0 = __rdtsc();
		empty_call();
		uint64_t c1 = __rdtsc();
		lat[i] = (double)(c1 - c0) / tsc_per_ns;
	}
	qsort(lat, N, sizeof(double), cmp_double);
	return lat[N / 2];
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--variant V] [--threads N] [--spans N] [--warmup N] [--no-consumer]\n"
		"          [--batch N] [--consumer-sleep-us N] [--no-prefault] [--pin] [--json]\n"
		"          [--per-thread] [--agent]\n"
		"variants: reference reference_ref emit attrs16 events2 unsampled overlimit\n",
		argv0);
}

static void print_stats_kv(const struct stats *st, const char *pfx)
{
	printf(" %smedian_ns=%.1f %sp90_ns=%.1f %sp99_ns=%.1f %sp999_ns=%.1f %smin_ns=%.1f "
	       "%smax_ns=%.1f %sbatch_median_ns=%.1f %sbatch_min_ns=%.1f",
	       pfx, st->median, pfx, st->p90, pfx, st->p99, pfx, st->p999, pfx, st->min, pfx,
	       st->max, pfx, st->batch_median, pfx, st->batch_min);
}

static void print_stats_json(const struct stats *st)
{
	printf("\"median_ns\":%.1f,\"p90_ns\":%.1f,\"p99_ns\":%.1f,\"p999_ns\":%.1f,"
	       "\"min_ns\":%.1f,\"max_ns\":%.1f,\"batch_median_ns\":%.2f,\"batch_min_ns\":%.2f,"
	       "\"mean_ns\":%.1f",
	       st->median, st->p90, st->p99, st->p999, st->min, st->max, st->batch_median,
	       st->batch_min, st->mean);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--spans") && i + 1 < argc)
			nspans = atol(argv[++i]);
		else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
			nwarm = atol(argv[++i]);
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			batch = atol(argv[++i]);
		else if (!strcmp(argv[i], "--variant") && i + 1 < argc)
			variant = argv[++i];
		else if (!strcmp(argv[i], "--no-consumer"))
			consumer = 0;
		else if (!strcmp(argv[i], "--agent"))
			consumer = 0, agent_mode = 1;
		else if (!strcmp(argv[i], "--consumer-sleep-us") && i + 1 < argc)
			consumer_sleep_us = atol(argv[++i]);
		else if (!strcmp(argv[i], "--no-prefault"))
			prefault = 0;
		else if (!strcmp(argv[i], "--pin"))
			pin = 1;
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--per-thread"))
			per_thread = 1;
		else {
			usage(argv[0]);
			return 2;
		}
	}
	if (nthreads < 1 || nthreads > MAX_THREADS || nspans < 1 || batch < 0 ||
	    consumer_sleep_us < 0) {
		fprintf(stderr, "bench: need 1 <= threads <= %d, spans >= 1, batch >= 0, sleep >= 0\n",
			MAX_THREADS);
		return 2;
	}
	if (nwarm < 0)
		nwarm = nspans / 10 < 10000 ? nspans / 10 : 10000;
	if (!getenv("SPANRING_SOCKET"))
		setenv("SPANRING_SOCKET", "/nonexistent/bench.sock", 1);
	setenv("SPANRING_EXIT_TIMEOUT_MS", "0", 0);
	if (strcmp(variant, "unsampled") == 0)
		setenv("OTEL_TRACES_SAMPLER", "always_off", 1);
	if (strcmp(variant, "overlimit") == 0)
		setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "256", 1);
	memset(big, 'q', sizeof(big) - 1);
	static const char *names[] = {"reference", "reference_ref", "emit", "attrs16",
				      "events2", "unsampled", "overlimit"};
	vid = -1;
	for (int i = 0; i < 7; i++)
		if (strcmp(variant, names[i]) == 0)
			vid = i;
	if (vid < 0) {
		fprintf(stderr, "unknown variant %s\n", variant);
		usage(argv[0]);
		return 2;
	}
	if (pin) {
		cpu_set_t set;
		if (sched_getaffinity(0, sizeof(set), &set) == 0)
			for (int c = 0; c < CPU_SETSIZE && ncpus < 256; c++)
				if (CPU_ISSET(c, &set))
					cpus[ncpus++] = c;
	}
	if (spanring_init() != 0 || rr_map_self(&cmap) != 0) {
		fprintf(stderr, "bench: no ring\n");
		return 1;
	}
	/*
	 * The library reads the clock with clock_gettime for its first 20 ms
	 * and then switches to the TSC (when the kernel's clocksource is tsc
	 * and SPANRING_CLOCK is not realtime). calibrate() sleeps 50 ms after
	 * spanring_init() and the clock read below completes the switch, so
	 * that no timed span runs on the start-up clock.
	 */
	if (prefault)
		prefault_ring();
	calibrate();
	(void)spanring_now_ns();
	const char *clock = __atomic_load_n(&sr_clk.state, __ATOMIC_ACQUIRE) == SR_CLK_TSC
				    ? "tsc"
				    : "realtime";
	double timer_ns = timer_overhead();
	tracer = spanring_tracer_get("bench", "1.0", NULL);
	spanring_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55,
				   &parent);
	pthread_t ct, pt[MAX_THREADS];
	static struct result res[MAX_THREADS];
	static struct prod_arg pa[MAX_THREADS];
	if (consumer)
		pthread_create(&ct, NULL, consumer_main, NULL);
	for (int i = 0; i < nthreads; i++) {
		pa[i] = (struct prod_arg){.index = i, .r = &res[i]};
		pthread_create(&pt[i], NULL, producer_run, &pa[i]);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(pt[i], NULL);
	atomic_store(&stop_consumer, 1);
	if (consumer)
		pthread_join(ct, NULL);

	/* All threads together, then each (sorting each thread's arrays in place). */
	long total = 0, totalb = 0, ctotal = 0, ctotalb = 0;
	double mean = 0;
	for (int i = 0; i < nthreads; i++) {
		total += res[i].n, totalb += res[i].nb, mean += res[i].batch_ns;
		ctotal += res[i].cn, ctotalb += res[i].cnb;
	}
	double *all = malloc(sizeof(double) * (size_t)total);
	double *allb = malloc(sizeof(double) * (size_t)(totalb > 0 ? totalb : 1));
	double *call = malloc(sizeof(double) * (size_t)(ctotal > 0 ? ctotal : 1));
	double *callb = malloc(sizeof(double) * (size_t)(ctotalb > 0 ? ctotalb : 1));
	long k = 0, kb = 0, ck = 0, ckb = 0;
	for (int i = 0; i < nthreads; i++) {
		struct result *r = &res[i];
		memcpy(all + k, r->lat, sizeof(double) * (size_t)r->n);
		memcpy(allb + kb, r->bmean, sizeof(double) * (size_t)r->nb);
		memcpy(call + ck, r->clat, sizeof(double) * (size_t)r->cn);
		memcpy(callb + ckb, r->cbmean, sizeof(double) * (size_t)r->cnb);
		k += r->n, kb += r->nb, ck += r->cn, ckb += r->cnb;
		summarise(&r->st, r->lat, r->n, r->bmean, r->nb);
		summarise(&r->cst, r->clat, r->cn, r->cbmean, r->cnb);
		r->st.mean = r->cst.mean = r->batch_ns;
		free(r->lat);
		free(r->bmean);
		free(r->clat);
		free(r->cbmean);
	}
	struct stats st, cst;
	summarise(&st, all, total, allb, totalb);
	summarise(&cst, call, ctotal, callb, ctotalb);
	st.mean = cst.mean = mean / nthreads;
	free(all);
	free(allb);
	free(call);
	free(callb);

	spanring_stats ss;
	spanring_get_stats(&ss);
	unsigned long long drops = (unsigned long long)(ss.drop_full + ss.drop_oversize);
	long calls = nwarm + nspans + (batch > 0 ? (nspans / batch) * batch : 0);
	unsigned slots = sr_g.map.l.slot_count;
	if (json) {
		printf("{\"variant\":\"%s\",\"threads\":%d,\"agent\":%s,\"consumer\":%s,\"spans\":%ld,"
		       "\"warmup\":%ld,\"batch\":%ld,\"calls\":%ld,\"slots\":%u,\"clock\":\"%s\","
		       "\"consumer_sleep_us\":%ld,\"prefault\":%s,\"pinned\":%s,\"tsc_ghz\":%.4f,\"timer_ns\":%.1f,",
		       variant, nthreads, agent_mode ? "true" : "false", consumer ? "true" : "false", total, nwarm, batch, calls,
		       slots, clock, consumer ? consumer_sleep_us : -1, prefault ? "true" : "false",
		       pin ? "true" : "false", tsc_per_ns,
		       timer_ns);
		print_stats_json(&st);
		printf(",\"drops\":%llu,\"committed\":%llu,\"slots_shared\":%llu,"
		       "\"timed_spans_dropped\":%ld,\"timed_batches_with_drops\":%ld,\"committed_only\":{",
		       drops, (unsigned long long)ss.spans, (unsigned long long)ss.slots_shared,
		       total - ctotal, totalb - ctotalb);
		print_stats_json(&cst);
		printf("},\"per_thread\":[");
		for (int i = 0; i < nthreads; i++) {
			printf("%s{\"slot\":%ld,\"timed_spans_dropped\":%ld,", i ? "," : "", res[i].slot,
			       res[i].n - res[i].cn);
			print_stats_json(&res[i].st);
			printf(",\"committed_only\":{");
			print_stats_json(&res[i].cst);
			printf("}}");
		}
		printf("]}\n");
	} else {
		/* The first fields keep their historical order and meaning. */
		printf("variant=%s threads=%d spans=%ld median_ns=%.1f p99_ns=%.1f mean_ns=%.1f "
		       "drops=%llu committed=%llu",
		       variant, nthreads, total, st.median, st.p99, st.mean, drops,
		       (unsigned long long)ss.spans);
		printf(" consumer=%d warmup=%ld batch=%ld calls=%ld slots=%u clock=%s pinned=%d "
		       "timer_ns=%.1f p90_ns=%.1f p999_ns=%.1f min_ns=%.1f max_ns=%.1f "
		       "batch_median_ns=%.2f batch_min_ns=%.2f timed_spans_dropped=%ld "
		       "committed_median_ns=%.1f committed_p99_ns=%.1f committed_batch_median_ns=%.2f\n",
		       consumer, nwarm, batch, calls, slots, clock, pin, timer_ns, st.p90, st.p999,
		       st.min, st.max, st.batch_median, st.batch_min, total - ctotal, cst.median,
		       cst.p99, cst.batch_median);
		if (per_thread)
			for (int i = 0; i < nthreads; i++) {
				printf("thread=%d", i);
				print_stats_kv(&res[i].st, "");
				printf(" mean_ns=%.1f\n", res[i].st.mean);
			}
	}
	return 0;
}
