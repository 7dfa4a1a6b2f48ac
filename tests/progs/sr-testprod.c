/* SPDX-License-Identifier: MIT */
/*
 * An honest raw producer for the agent's integration tests: a ring made
 * with sr_ring_create(), spans written by hand (tests/progs/testring.h),
 * registration through the library's client (lib/client.c). Each span
 * carries test.thread and test.seq so that the output can be checked span
 * by span.
 *
 *   sr-testprod [-t threads] [-n spans/thread] [-s slots] [-z slot_size]
 *               [-S service] [-r spans/s per thread] [-W] [-L]
 *               [-w ms to wait for registration] [-d ms to wait for release]
 *               [-H] [-q scope change period] [-A key=value | -A key:=int]...
 *               [-X text] [-N span name] [-D]
 *   -W  wait (retry) when the ring is full instead of dropping
 *   -L  put false process.pid/host.name/process.owner in the resource
 *   -H  hold: after writing, keep the connection until SIGTERM/SIGINT
 *   -A  one more resource attribute (a string, or an int with :=), any bytes
 *   -X  every span carries test.str=text;  -N  every span is named so
 *   -D  not dumpable (prctl PR_SET_DUMPABLE 0) before registering
 *   -l N  latency probe instead: N times, after 100 ms of quiet, commit one
 *         span and time until the agent released it (it was exported);
 *         prints "latency_us p50=.. p99=.. max=.."
 *   -i MIN:MAX  with -l: quiet intervals drawn at random (log-uniform)
 *         between MIN and MAX milliseconds instead of 100 ms; -l N runs
 *         until N probes or -T seconds, whichever comes first
 *   -T S  with -i: stop probing after S seconds
 *   -B US with -l: also print "over=N unexplained=U": probes that took
 *         longer than US µs, and how many of them the machine does not
 *         explain: a probe is explained when its time beyond US is at most
 *         what the agent's threads (-P) and this thread waited for a CPU
 *         meanwhile (tests/common/schedwait.h); each over-limit probe is
 *         described on stderr
 *   -P PID with -B: the agent's pid, for the explanation
 *   -O  be a producer of ABI 1.1: no wake-up protocol (the agent polls)
 *   -K  commit one span, then die by SIGKILL before any doorbell write
 *       (need_wakeup cleared first, as if this commit had taken it)
 *   -M  with -l: clear and set need_wakeup at random in a loop (hostile)
 * Prints "committed=N drops=D registered=R" at the end.
 */
#include <getopt.h>
#include <sys/prctl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "schedwait.h"
#include "testring.h"

static struct tr t;
static pthread_mutex_t slot_lock[SPANRING_MAX_SLOTS];
static int n_threads = 1, n_slots = 1, rate, wait_full, scope_period = 0;
static long n_spans = 100;
static uint64_t scopes[4];
static uint64_t committed, dropped;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stop;
static const char *span_text, *span_name;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
	nanosleep(&ts, NULL);
}

/* Watermark doorbell like the library: one write when a slot fills past half. */
static void doorbell(uint32_t slot, uint64_t before)
{
	uint64_t size = t.m.l.slot_size;
	uint64_t tail = sr_load_acquire_64(&sr_cons(&t.m, slot)->tail);
	uint64_t used = t.head[slot] - tail;
	if (before - tail < size / 2 && used >= size / 2) {
		int fd = sr_load_int(&sr_doorbell_fd);
		if (fd >= 0) {
			uint64_t one = 1;
			ssize_t w = write(fd, &one, sizeof(one));
			(void)w;
		}
	}
}

static void *worker(void *arg)
{
	long id = (long)arg;
	uint32_t slot = (uint32_t)(id % n_slots);
	uint64_t period = rate ? 1000000000ull / (uint64_t)rate : 0;
	uint64_t next = now_ns();
	uint64_t c = 0, d = 0;
	for (long k = 0; k < n_spans && !stop; k++) {
		struct tr_span s;
		memset(&s, 0, sizeof(s));
		uint64_t r = ((uint64_t)getpid() << 32) ^ ((uint64_t)id << 24) ^ (uint64_t)k;
		memcpy(s.trace_id, &r, 8);
		memcpy(s.trace_id + 8, &id, 8);
		memcpy(s.span_id, &r, 8);
		char name[64];
		snprintf(name, sizeof(name), "t%ld-s%ld", id, k);
		s.name = span_name ? span_name : name;
		s.kind = 1 + (uint32_t)(k % 5);
		s.start_ns = now_ns();
		s.end_ns = s.start_ns + 1000;
		s.seq = k;
		s.thread = id;
		s.str = (k % 4 == 0) ? "a longer string value so that record sizes vary" : NULL;
		if (span_text)
			s.str = span_text;
		uint64_t scope = scopes[scope_period ? (k / scope_period) % 2 : 0];
		for (;;) {
			pthread_mutex_lock(&slot_lock[slot]);
			uint64_t before = t.head[slot];
			int err = tr_write_span(&t, slot, scope, &s);
			if (!err)
				doorbell(slot, before);
			pthread_mutex_unlock(&slot_lock[slot]);
			if (!err) {
				c++;
				break;
			}
			if (!wait_full || stop) {
				d++;
				break;
			}
			sleep_ns(200000);
		}
		if (period) {
			next += period;
			uint64_t now = now_ns();
			if (next > now)
				sleep_ns(next - now);
		}
	}
	pthread_mutex_lock(&count_lock);
	committed += c;
	dropped += d;
	pthread_mutex_unlock(&count_lock);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double iv_min_ms = 100, iv_max_ms = 100;
static int probe_secs;
static long over_us = -1;
static pid_t agent_pid;

/* xorshift64*, seeded from the pid and the clock */
static uint64_t rnd(void)
{
	static uint64_t x;
	if (!x)
		x = now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	return x * 0x2545f4914f6cdd1dull;
}

/* Hostile: set and clear our own ring's need_wakeup at random. */
static void *flag_flipper(void *arg)
{
	(void)arg;
	uint32_t *w = &sr_cons_hdr(&t.m)->need_wakeup;
	while (!stop) {
		sr_store_relaxed_32(w, (uint32_t)(rnd() & 1));
		if ((rnd() & 15) == 0) {
			uint64_t one = 1;
			int fd = sr_load_int(&sr_doorbell_fd);
			if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
				(void)0;
		}
		sleep_ns(rnd() % 200000);
	}
	return NULL;
}

/* Commit one span at a time on a quiet ring; time until it is released. */
static int latency_probe(int n, int reg)
{
	static uint64_t lat[100000];
	if (n > 100000)
		n = 100000;
	uint64_t t_end = probe_secs ? now_ns() + (uint64_t)probe_secs * 1000000000ull : 0;
	int done = 0, over = 0, unexplained = 0;
	for (int i = 0; i < n; i++) {
		if (t_end && now_ns() >= t_end)
			break;
		double ms = iv_min_ms;
		if (iv_max_ms > iv_min_ms) {
			double u = (double)(rnd() >> 11) / 9007199254740992.0;
			ms = iv_min_ms * pow(iv_max_ms / iv_min_ms, u);
		}
		sleep_ns((uint64_t)(ms * 1e6));
		struct tr_span s;
		memset(&s, 0, sizeof(s));
		s.trace_id[0] = 1;
		s.span_id[0] = 1;
		s.name = "probe";
		s.start_ns = s.end_ns = now_ns();
		s.seq = i;
		uint64_t wa0 = agent_pid ? schedwait_proc(agent_pid) : 0;
		uint64_t wm0 = schedwait_self();
		if (tr_write_span(&t, 0, scopes[0], &s))
			return 1;
		uint64_t t0 = now_ns();
		while (tr_unreleased(&t, 0)) {
			if (now_ns() - t0 > 5000000000ull) {
				printf("probe %d: not released after 5 s\n", i);
				return 1;
			}
			sleep_ns(iv_max_ms > iv_min_ms ? 200000 : 20000);
		}
		lat[i] = (now_ns() - t0) / 1000;
		if (over_us >= 0 && lat[i] > (uint64_t)over_us) {
			uint64_t wa = agent_pid ? (schedwait_proc(agent_pid) - wa0) / 1000 : 0;
			uint64_t wm = (schedwait_self() - wm0) / 1000;
			bool ok = lat[i] - (uint64_t)over_us <= wa + wm;
			over++;
			unexplained += !ok;
			fprintf(stderr,
				"probe %d: %llu us, over %ld us; meanwhile the agent waited %llu us "
				"and this probe %llu us for a CPU: %s\n",
				i, (unsigned long long)lat[i], over_us, (unsigned long long)wa,
				(unsigned long long)wm, ok ? "explained" : "NOT EXPLAINED");
		}
		if (lat[i] > 1000000)
			fprintf(stderr, "slow probe %d: %llu us (t0 %llu ns), need_wakeup now %u\n", i,
				(unsigned long long)lat[i], (unsigned long long)t0,
				sr_load_relaxed_32(&sr_cons_hdr(&t.m)->need_wakeup));
		done++;
	}
	n = done;
	if (!n)
		return 1;
	qsort(lat, (size_t)n, sizeof(lat[0]), cmp_u64);
	printf("committed=%d drops=0 registered=%d\n", n, reg == 0);
	if (over_us >= 0)
		printf("over=%d unexplained=%d\n", over, unexplained);
	printf("latency_us p50=%llu p99=%llu max=%llu\n", (unsigned long long)lat[n / 2],
	       (unsigned long long)lat[n * 99 / 100], (unsigned long long)lat[n - 1]);
	sr_client_stop();
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	uint32_t slot_size = 65536;
	const char *service = "testprod";
	int lie = 0, hold = 0, wait_reg = 5000, wait_drain = 10000, probes = 0, opt, nodump = 0;
	int old_minor = 0, kill_mode = 0, flipper = 0;
	const char *extra[16];
	int n_extra = 0;
	while ((opt = getopt(argc, argv, "t:n:s:z:S:r:WLHw:d:q:l:A:X:N:Di:T:B:P:OKM")) != -1) {
		switch (opt) {
		case 't': n_threads = atoi(optarg); break;
		case 'n': n_spans = atol(optarg); break;
		case 's': n_slots = atoi(optarg); break;
		case 'z': slot_size = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'S': service = optarg; break;
		case 'r': rate = atoi(optarg); break;
		case 'W': wait_full = 1; break;
		case 'L': lie = 1; break;
		case 'H': hold = 1; break;
		case 'w': wait_reg = atoi(optarg); break;
		case 'd': wait_drain = atoi(optarg); break;
		case 'q': scope_period = atoi(optarg); break;
		case 'l': probes = atoi(optarg); break;
		case 'A':
			if (n_extra < 16)
				extra[n_extra++] = optarg;
			break;
		case 'X': span_text = optarg; break;
		case 'N': span_name = optarg; break;
		case 'D': nodump = 1; break;
		case 'i':
			if (sscanf(optarg, "%lf:%lf", &iv_min_ms, &iv_max_ms) != 2 ||
			    iv_min_ms <= 0 || iv_max_ms < iv_min_ms) {
				fprintf(stderr, "sr-testprod: -i MIN:MAX (ms)\n");
				return 2;
			}
			break;
		case 'T': probe_secs = atoi(optarg); break;
		case 'B': over_us = atol(optarg); break;
		case 'P': agent_pid = (pid_t)atoi(optarg); break;
		case 'O': old_minor = 1; break;
		case 'K': kill_mode = 1; break;
		case 'M': flipper = 1; break;
		default:
			fprintf(stderr, "usage: see the comment at the top of sr-testprod.c\n");
			return 2;
		}
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	uint8_t res[4096];
	size_t rl = tr_encode_resource(res, service, lie);
	for (int i = 0; i < n_extra; i++) {
		char key[256];
		const char *eq = strchr(extra[i], '=');
		if (!eq || (size_t)(eq - extra[i]) >= sizeof(key) || rl + 300 + strlen(eq) > sizeof(res)) {
			fprintf(stderr, "sr-testprod: bad -A %s\n", extra[i]);
			return 2;
		}
		bool is_int = eq > extra[i] && eq[-1] == ':';
		size_t kl = (size_t)(eq - extra[i]) - (is_int ? 1 : 0);
		memcpy(key, extra[i], kl);
		key[kl] = 0;
		uint8_t *e = is_int ? tr_put_kv_int(res + rl, 1, key, strtoll(eq + 1, NULL, 10))
				    : tr_put_kv_str(res + rl, 1, key, eq + 1);
		rl = (size_t)(e - res);
	}
	if (nodump)
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	int err = tr_create(&t, (uint32_t)n_slots, slot_size, res, rl);
	if (err) {
		fprintf(stderr, "sr-testprod: ring: %s\n", strerror(-err));
		return 1;
	}
	if (!old_minor)
		tr_wake_enable(&t, &sr_doorbell_fd);
	scopes[0] = tr_add_scope(&t, "sr-testprod", "1.0", NULL);
	scopes[1] = tr_add_scope(&t, "sr-testprod-other", "2.0", "https://opentelemetry.io/schemas/1.21.0");
	for (unsigned i = 0; i < SPANRING_MAX_SLOTS; i++)
		pthread_mutex_init(&slot_lock[i], NULL);
	sr_client_start(&t.m);
	int reg = wait_reg > 0 ? sr_client_flush(wait_reg) : -1;
	if (kill_mode) {
		/* Let the agent fall asleep with our ring armed, take the
		 * wake-up as the library's exchange would, commit, and die
		 * before the doorbell write. */
		sleep_ns(300000000ull);
		sr_xchg_32(&sr_cons_hdr(&t.m)->need_wakeup, 0);
		struct tr_span s;
		memset(&s, 0, sizeof(s));
		s.trace_id[0] = 7;
		s.span_id[0] = 7;
		s.name = "killed";
		s.start_ns = s.end_ns = now_ns();
		const int *bell = t.bell;
		t.bell = NULL; /* no F step: we "die" before it */
		if (tr_write_span(&t, 0, scopes[0], &s))
			return 1;
		t.bell = bell;
		printf("committed=1 then SIGKILL\n");
		fflush(stdout);
		raise(SIGKILL);
	}
	if (flipper) {
		pthread_t ft;
		pthread_create(&ft, NULL, flag_flipper, NULL);
		pthread_detach(ft);
	}
	if (probes > 0)
		return latency_probe(probes, reg);
	pthread_t th[256];
	if (n_threads > 256)
		n_threads = 256;
	for (long i = 0; i < n_threads; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	for (int i = 0; i < n_threads; i++)
		pthread_join(th[i], NULL);
	printf("committed=%llu drops=%llu registered=%d\n", (unsigned long long)committed,
	       (unsigned long long)dropped, reg == 0 || sr_client_registered());
	fflush(stdout);
	/* Wait until the agent released everything (it has exported it). */
	uint64_t end = now_ns() + (uint64_t)wait_drain * 1000000ull;
	while (!stop && now_ns() < end) {
		bool all = true;
		for (int i = 0; i < n_slots; i++)
			if (tr_unreleased(&t, (uint32_t)i))
				all = false;
		if (all)
			break;
		sleep_ns(2000000);
	}
	while (hold && !stop)
		sleep_ns(10000000);
	uint64_t left = 0;
	for (int i = 0; i < n_slots; i++)
		left += tr_unreleased(&t, (uint32_t)i);
	printf("unreleased=%llu\n", (unsigned long long)left);
	struct spanring_ring_hdr *h = sr_hdr(&t.m);
	sr_store_release_32(&h->flags, h->flags | SPANRING_HDR_F_CLOSED);
	sr_client_stop();
	return 0;
}
