/* SPDX-License-Identifier: MIT */
/*
 * Producer process for the agent benchmarks (tests/bench/agent.py drives
 * it): writes the reference span into a ring registered with a running
 * spanring-agent, flat out or at a set rate, until --duration-ms passed or
 * SIGTERM; prints one JSON line at the end.
 *
 *   bench_agentprod [--mode api|raw] [--threads N] [--rate SPANS/S/THREAD]
 *                   [--duration-ms MS] [--latency] [--lat-every N]
 *                   [--chunk N] [--hold] [--wait-reg MS] [--quiet-start MS]
 *
 * --mode api (default): the library's public API, the reference span of
 *   bench_producer (name, kind SERVER, remote parent, 4 attributes, status
 *   OK), default ring (SPANRING_SLOTS / SPANRING_SLOT_SIZE apply). What an
 *   instrumented program costs and supplies.
 * --mode raw: a ring made with sr_ring_create() (tests/progs/testring.h),
 *   registered through the library's client, one slot per thread, and the
 *   reference span pre-encoded once (same fields as the library writes)
 *   and copied in with fresh timestamps: ~10x cheaper than the API, so that
 *   a producer can outrun the agent and its throughput limit shows.
 *   Doorbell at 50 % fill like the library.
 * --rate R: each thread paces itself to R spans/s (in chunks of 100 µs
 *   worth of spans, or --chunk N spans between two clock checks / sleeps);
 *   0 = flat out (the deadline is checked every 256/threads spans).
 * --latency: a monitor thread polls the slot's tail (every ~20 µs) and
 *   for every --lat-every'th committed span records the time from its
 *   commit (the span's end: the library stamps end_ns just before it
 *   commits) until the agent released it, i.e. until every exporter had
 *   finished with it (the file exporter: its writev returned; null: the
 *   batch was handed over). Thread 0 only.
 * --hold: after the run, stay alive (ring registered) until SIGTERM; the
 *   scale benchmark measures memory then.
 *
 * Output (stdout, one JSON object): committed, drops (ring full), cpu_s
 * (getrusage, whole process), wall_s, registered, ring_bytes, threads
 * sharing slots, and the latency quantiles in µs.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "internal.h"
#include "ringread.h"
#include "spanring/spanring.h"
#include "testring.h"

#define MAX_THREADS 4096

static int mode_raw, nthreads = 1, latency, hold, lat_every = 1;
static long rate, duration_ms = 2000, wait_reg = 5000, chunk_opt;
static atomic_int stop, go;
static spanring_tracer *tracer;
static spanring_span_context parent;
static struct sr_map cmap; /* api mode: our own ring, mapped as a consumer */
static struct tr raw;      /* raw mode */
static uint64_t raw_scope;
static uint8_t rec[512];   /* raw mode: one span record, pre-encoded */
static size_t rec_len, off_start, off_end;

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t mono)
{
	struct timespec ts = {.tv_sec = (time_t)(mono / 1000000000ull),
			      .tv_nsec = (long)(mono % 1000000000ull)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !stop)
		;
}

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop, 1);
}

/* ---- the reference span ---------------------------------------------------- */

static void api_span(void)
{
	spanring_span_opts o = {.kind = SPANRING_KIND_SERVER, .parent = &parent};
	spanring_span *s = spanring_span_start_ex(tracer, "GET /api/users/:id", &o);
	spanring_span_set_str(s, "http.request.method", "GET");
	spanring_span_set_str(s, "url.path", "/api/users/12345");
	spanring_span_set_int(s, "http.response.status_code", 200);
	spanring_span_set_bool(s, "cache.hit", true);
	spanring_span_set_status(s, SPANRING_STATUS_OK, NULL);
	spanring_span_end(s);
}

static uint8_t *put_kv_bool(uint8_t *p, const char *key, bool v)
{
	size_t kl = strlen(key);
	size_t kv = pb_len_field_size(kl) + pb_len_field_size(2);
	p = pb_put_tag1(p, 9, SPANRING_WT_LEN);
	p = pb_put_varint(p, kv);
	p = pb_put_tag1(p, 1, SPANRING_WT_LEN);
	p = pb_put_bytes(p, key, kl);
	p = pb_put_tag1(p, 2, SPANRING_WT_LEN);
	p = pb_put_varint(p, 2);
	p = pb_put_tag1(p, 2, SPANRING_WT_VARINT);
	return pb_put_varint(p, v);
}

/* The reference span as the library encodes it, as one slot record. */
static void raw_encode(void)
{
	uint8_t span[400], *p = span;
	static const uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
					0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
	static const uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	static const uint8_t pid[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
	p = pb_put_tag1(p, 1, SPANRING_WT_LEN);
	p = pb_put_bytes(p, tid, 16);
	p = pb_put_tag1(p, 2, SPANRING_WT_LEN);
	p = pb_put_bytes(p, sid, 8);
	p = pb_put_tag1(p, 4, SPANRING_WT_LEN);
	p = pb_put_bytes(p, pid, 8);
	p = pb_put_tag1(p, 5, SPANRING_WT_LEN);
	p = pb_put_bytes(p, "GET /api/users/:id", 18);
	p = pb_put_tag1(p, 6, SPANRING_WT_VARINT);
	p = pb_put_varint(p, 2); /* SERVER */
	p = pb_put_tag1(p, 7, SPANRING_WT_I64);
	size_t o_start = (size_t)(p - span);
	p = pb_put_fixed64(p, 0);
	p = pb_put_tag1(p, 8, SPANRING_WT_I64);
	size_t o_end = (size_t)(p - span);
	p = pb_put_fixed64(p, 0);
	p = tr_put_kv_str(p, 9, "http.request.method", "GET");
	p = tr_put_kv_str(p, 9, "url.path", "/api/users/12345");
	p = tr_put_kv_int(p, 9, "http.response.status_code", 200);
	p = put_kv_bool(p, "cache.hit", true);
	/* status { code: STATUS_CODE_OK } */
	p = pb_put_tag1(p, 15, SPANRING_WT_LEN);
	p = pb_put_varint(p, 2);
	p = pb_put_tag1(p, 3, SPANRING_WT_VARINT);
	p = pb_put_varint(p, 1);
	/* flags: sampled, remote parent known */
	p = pb_put_tag1(p, 16, SPANRING_WT_I32);
	p = pb_put_fixed32(p, 0x301);
	size_t n = (size_t)(p - span);
	uint8_t *q = rec;
	q = pb_put_tag1(q, SPANRING_SPAN_FIELD, SPANRING_WT_LEN);
	q = pb_put_varint(q, n);
	size_t hdr = (size_t)(q - rec);
	memcpy(q, span, n);
	rec_len = hdr + n;
	off_start = hdr + o_start;
	off_end = hdr + o_end;
}

/* ---- latency monitor --------------------------------------------------------- */

#define LAT_Q 65536
static struct {
	uint64_t head, t;
} latq[LAT_Q];
static _Atomic uint64_t latq_w, latq_r;
static uint64_t *lat_us;
static size_t lat_n, lat_cap = 4000000;
static long lat_slot = -1;
static atomic_int mon_stop;
static uint64_t lat_overflow;

static const struct spanring_slot_cons *mon_cons(void)
{
	return mode_raw ? sr_cons(&raw.m, 0) : sr_cons(&cmap, (uint32_t)lat_slot);
}
static uint64_t slot_head(long slot)
{
	return mode_raw ? raw.head[slot] : __atomic_load_n(&sr_prod(&cmap, (uint32_t)slot)->head, __ATOMIC_RELAXED);
}

static inline void lat_note(uint64_t head)
{
	uint64_t w = atomic_load_explicit(&latq_w, memory_order_relaxed);
	if (w - atomic_load_explicit(&latq_r, memory_order_acquire) >= LAT_Q) {
		lat_overflow++;
		return;
	}
	latq[w % LAT_Q].head = head;
	latq[w % LAT_Q].t = now_ns(CLOCK_MONOTONIC);
	atomic_store_explicit(&latq_w, w + 1, memory_order_release);
}

static void *monitor(void *arg)
{
	(void)arg;
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	const struct spanring_slot_cons *c = NULL;
	for (;;) {
		int last = atomic_load(&mon_stop);
		if (!c && lat_slot >= 0)
			c = mon_cons();
		if (c) {
			uint64_t tail = __atomic_load_n(&c->tail, __ATOMIC_ACQUIRE);
			uint64_t now = now_ns(CLOCK_MONOTONIC);
			uint64_t r = atomic_load_explicit(&latq_r, memory_order_relaxed);
			uint64_t w = atomic_load_explicit(&latq_w, memory_order_acquire);
			while (r < w && latq[r % LAT_Q].head <= tail) {
				if (lat_n < lat_cap)
					lat_us[lat_n++] = (now - latq[r % LAT_Q].t + 500) / 1000;
				r++;
			}
			atomic_store_explicit(&latq_r, r, memory_order_release);
		}
		if (last)
			break;
		struct timespec ts = {0, 20000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* ---- producers ------------------------------------------------------------------ */

struct worker {
	pthread_t th;
	long index;
	uint64_t committed, drops;
};

/* Which slot does this (api) thread write? Watch the slot counters around one span. */
static long api_find_slot(void)
{
	uint64_t before[SPANRING_MAX_SLOTS];
	uint32_t n = cmap.l.slot_count;
	for (uint32_t i = 0; i < n; i++)
		before[i] = __atomic_load_n(&sr_prod(&cmap, i)->spans, __ATOMIC_RELAXED) +
			    __atomic_load_n(&sr_prod(&cmap, i)->drop_full, __ATOMIC_RELAXED);
	api_span();
	for (uint32_t i = 0; i < n; i++)
		if (__atomic_load_n(&sr_prod(&cmap, i)->spans, __ATOMIC_RELAXED) +
			    __atomic_load_n(&sr_prod(&cmap, i)->drop_full, __ATOMIC_RELAXED) !=
		    before[i])
			return (long)i;
	return -1;
}

/* raw mode: one span into slot i; 0, or -ENOSPC (counted as a drop). */
static inline int raw_span(uint32_t i, uint64_t *tail_cache, uint64_t end_ns)
{
	struct tr *t = &raw;
	uint64_t size = t->m.l.slot_size;
	uint64_t head = t->head[i];
	if (head + rec_len - *tail_cache > size) {
		*tail_cache = __atomic_load_n(&sr_cons(&t->m, i)->tail, __ATOMIC_ACQUIRE);
		if (head + rec_len - *tail_cache > size) {
			t->drops[i]++;
			__atomic_store_n(&sr_prod(&t->m, i)->drop_full, t->drops[i], __ATOMIC_RELAXED);
			return -ENOSPC;
		}
	}
	uint8_t *d = sr_slot_data(&t->m, i) + (head & (size - 1));
	memcpy(d, rec, rec_len);
	uint64_t st = end_ns - 1000;
	memcpy(d + off_start, &st, 8);
	memcpy(d + off_end, &end_ns, 8);
	t->head[i] = head + rec_len;
	t->spans[i]++;
	__atomic_store_n(&sr_prod(&t->m, i)->spans, t->spans[i], __ATOMIC_RELAXED);
	__atomic_store_n(&sr_prod(&t->m, i)->head, t->head[i], __ATOMIC_RELEASE);
	/* Doorbell when the slot crosses half full (as the library does). */
	uint64_t used = t->head[i] - *tail_cache;
	if (used >= size / 2 && used - rec_len < size / 2) {
		int fd = sr_load_int(&sr_doorbell_fd);
		if (fd >= 0) {
			uint64_t one = 1;
			ssize_t w = write(fd, &one, sizeof(one));
			(void)w;
		}
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	long slot = -1;
	uint64_t tail_cache = 0;
	uint32_t rslot = (uint32_t)(w->index % (mode_raw ? raw.m.l.slot_count : 1));
	if (!mode_raw) {
		if (w->index == 0 && latency) {
			slot = api_find_slot();
			lat_slot = slot;
		} else {
			api_span(); /* claims the thread's slot */
		}
		w->committed++;
	} else if (w->index == 0) {
		lat_slot = 0;
	}
	while (!atomic_load_explicit(&go, memory_order_acquire))
		usleep(1000);
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	uint64_t deadline = duration_ms > 0 ? t0 + (uint64_t)duration_ms * 1000000ull : UINT64_MAX;
	/* Pacing in chunks of ~100 µs worth of spans. */
	long chunk = rate > 0 ? (rate / 10000 > 0 ? rate / 10000 : 1)
			      : (256 / nthreads > 0 ? 256 / nthreads : 1);
	if (chunk_opt > 0)
		chunk = chunk_opt;
	uint64_t n = 0;
	bool lat_here = latency && w->index == 0;
	uint64_t raw_ts = 0; /* raw mode: span timestamps, read once per chunk */
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if (rate > 0) {
			uint64_t due = t0 + (uint64_t)((double)n * 1e9 / (double)rate);
			if (now_ns(CLOCK_MONOTONIC) < due)
				sleep_until(due);
		}
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		if (now >= deadline)
			break;
		if (mode_raw)
			raw_ts = now_ns(CLOCK_REALTIME);
		for (long k = 0; k < chunk; k++) {
			bool sample = lat_here && (n + (uint64_t)k) % (uint64_t)lat_every == 0;
			if (mode_raw) {
				uint64_t end = sample ? now_ns(CLOCK_REALTIME) : raw_ts + (uint64_t)k;
				if (raw_span(rslot, &tail_cache, end) == 0) {
					w->committed++;
					if (sample)
						lat_note(raw.head[rslot]);
				} else {
					w->drops++;
				}
			} else {
				api_span();
				w->committed++;
				if (sample)
					lat_note(slot_head(slot));
			}
		}
		n += (uint64_t)chunk;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long quiet_start = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--mode") && v)
			mode_raw = !strcmp(argv[++i], "raw");
		else if (!strcmp(a, "--threads") && v)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(a, "--rate") && v)
			rate = atol(argv[++i]);
		else if (!strcmp(a, "--duration-ms") && v)
			duration_ms = atol(argv[++i]);
		else if (!strcmp(a, "--chunk") && v)
			chunk_opt = atol(argv[++i]);
		else if (!strcmp(a, "--lat-every") && v)
			lat_every = atoi(argv[++i]);
		else if (!strcmp(a, "--wait-reg") && v)
			wait_reg = atol(argv[++i]);
		else if (!strcmp(a, "--quiet-start") && v)
			quiet_start = atol(argv[++i]);
		else if (!strcmp(a, "--latency"))
			latency = 1;
		else if (!strcmp(a, "--hold"))
			hold = 1;
		else {
			fprintf(stderr, "usage: see the head comment of tests/bench/bench_agentprod.c\n");
			return 2;
		}
	}
	if (nthreads < 1 || nthreads > MAX_THREADS || lat_every < 1) {
		fprintf(stderr, "bench_agentprod: 1 <= threads <= %d, lat-every >= 1\n", MAX_THREADS);
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	setenv("SPANRING_EXIT_TIMEOUT_MS", "2000", 0);
	int registered = 0;
	uint64_t ring_bytes = 0;
	if (mode_raw) {
		uint8_t res[256];
		size_t rl = tr_encode_resource(res, "bench-raw", false);
		uint32_t slots = (uint32_t)nthreads < SPANRING_MAX_SLOTS ? (uint32_t)nthreads : SPANRING_MAX_SLOTS;
		const char *zs = getenv("SPANRING_SLOT_SIZE");
		uint32_t size = zs ? (uint32_t)strtoul(zs, NULL, 0) << (strchr(zs, 'M') ? 20 : strchr(zs, 'K') ? 10 : 0)
				   : 512u * 1024;
		int err = tr_create(&raw, slots, size, res, rl);
		if (err) {
			fprintf(stderr, "bench_agentprod: ring: %s\n", strerror(-err));
			return 1;
		}
		raw_scope = tr_add_scope(&raw, "bench", "1.0", NULL);
		raw_encode();
		/* The scope record opens every slot's stream. */
		for (uint32_t i = 0; i < slots; i++) {
			uint8_t c[16];
			size_t cl = tr_ctrl_varint(c, SPANRING_CTRL_SCOPE, raw_scope);
			tr_put_raw(&raw, i, c, cl);
			tr_commit(&raw, i);
		}
		ring_bytes = (uint64_t)slots * size;
		sr_client_start(&raw.m);
		registered = sr_client_flush((int)wait_reg) == 0;
	} else {
		if (spanring_init() != 0 || rr_map_self(&cmap) != 0) {
			fprintf(stderr, "bench_agentprod: no ring\n");
			return 1;
		}
		tracer = spanring_tracer_get("bench", "1.0", NULL);
		spanring_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
					   55, &parent);
		ring_bytes = (uint64_t)cmap.l.slot_count * cmap.l.slot_size;
		uint64_t t0 = now_ns(CLOCK_MONOTONIC);
		spanring_stats st;
		while (spanring_get_stats(&st) == 0 && !st.registered &&
		       now_ns(CLOCK_MONOTONIC) - t0 < (uint64_t)wait_reg * 1000000ull) {
			api_span(); /* registration starts on first use */
			usleep(2000);
		}
		registered = st.registered;
	}
	if (quiet_start > 0)
		usleep((useconds_t)quiet_start * 1000);
	pthread_t mt;
	if (latency) {
		lat_us = malloc(sizeof(uint64_t) * lat_cap);
		pthread_create(&mt, NULL, monitor, NULL);
	}
	struct worker *ws = calloc((size_t)nthreads, sizeof(*ws));
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int started = 0;
	for (int i = 0; i < nthreads; i++) {
		ws[i].index = i;
		if (pthread_create(&ws[i].th, &attr, worker_main, &ws[i]) != 0)
			break;
		started++;
	}
	uint64_t w0 = now_ns(CLOCK_MONOTONIC);
	atomic_store_explicit(&go, 1, memory_order_release);
	uint64_t committed = 0, drops = 0;
	for (int i = 0; i < started; i++) {
		pthread_join(ws[i].th, NULL);
		committed += ws[i].committed;
		drops += ws[i].drops;
	}
	double wall = (double)(now_ns(CLOCK_MONOTONIC) - w0) / 1e9;
	spanring_stats st = {0};
	uint64_t shared = 0;
	if (!mode_raw) {
		spanring_get_stats(&st);
		drops = st.drop_full + st.drop_oversize + st.drop_encode;
		committed = st.spans;
		shared = st.slots_shared;
	}
	if (latency) {
		/* Give the agent time to release the last sampled spans. */
		uint64_t until = now_ns(CLOCK_MONOTONIC) + 3000000000ull;
		while (atomic_load(&latq_r) < atomic_load(&latq_w) && now_ns(CLOCK_MONOTONIC) < until)
			usleep(1000);
		atomic_store(&mon_stop, 1);
		pthread_join(mt, NULL);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	printf("{\"mode\":\"%s\",\"pid\":%d,\"threads\":%d,\"threads_started\":%d,\"rate\":%ld,"
	       "\"committed\":%llu,\"drops\":%llu,\"cpu_s\":%.6f,\"wall_s\":%.6f,\"registered\":%s,"
	       "\"ring_bytes\":%llu,\"record_bytes\":%zu,\"slots_shared\":%llu",
	       mode_raw ? "raw" : "api", (int)getpid(), nthreads, started, rate,
	       (unsigned long long)committed, (unsigned long long)drops, cpu, wall,
	       registered ? "true" : "false", (unsigned long long)ring_bytes, rec_len,
	       (unsigned long long)shared);
	if (latency && lat_n > 0) {
		qsort(lat_us, lat_n, sizeof(uint64_t), cmp_u64);
		printf(",\"lat\":{\"n\":%zu,\"p50_us\":%llu,\"p90_us\":%llu,\"p99_us\":%llu,"
		       "\"p999_us\":%llu,\"max_us\":%llu,\"overflow\":%llu}",
		       lat_n, (unsigned long long)lat_us[lat_n / 2],
		       (unsigned long long)lat_us[lat_n * 9 / 10], (unsigned long long)lat_us[lat_n * 99 / 100],
		       (unsigned long long)lat_us[lat_n * 999 / 1000], (unsigned long long)lat_us[lat_n - 1],
		       (unsigned long long)lat_overflow);
	}
	printf("}\n");
	fflush(stdout);
	while (hold && !atomic_load(&stop))
		usleep(10000);
	if (mode_raw) {
		/* Wait (bounded) until the agent has everything, then close the ring. */
		uint64_t until = now_ns(CLOCK_MONOTONIC) + 2000000000ull;
		for (;;) {
			bool all = true;
			for (uint32_t i = 0; i < raw.m.l.slot_count; i++)
				if (tr_unreleased(&raw, i))
					all = false;
			if (all || now_ns(CLOCK_MONOTONIC) > until)
				break;
			usleep(1000);
		}
		struct spanring_ring_hdr *h = sr_hdr(&raw.m);
		sr_store_release_32(&h->flags, h->flags | SPANRING_HDR_F_CLOSED);
		sr_client_stop();
	} else {
		spanring_shutdown(2000);
	}
	return 0;
}
