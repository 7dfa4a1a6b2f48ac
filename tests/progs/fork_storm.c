/* SPDX-License-Identifier: MIT */
/*
 * The fork test of the library itself (no shim):
 *
 *   fork_storm N MS
 *       Four threads allocate and make spans through the API without
 *       pause while the main thread forks N children, one after the
 *       other. Each child makes one span, "child.work" with child.index
 *       = its number, hands its ring to the agent (spanring_shutdown)
 *       and exit(5)s; it exits 6 if either failed. A child not reaped within MS ms is a
 *       hang: "hang at fork I", exit 3. Prints "forks N ok".
 *
 * With tests/malloc/spinmalloc.c preloaded and SPINMALLOC_ARM=fork_storm,
 * any allocator call in a child aborts it (tests/integration/fork_storm.sh).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <spanring/spanring.h>

static volatile int stop;

static void *worker(void *arg)
{
	spanring_tracer *tr = spanring_tracer_get("fork.storm", "1.0", NULL);
	uint64_t x = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	void *keep[16] = {0};
	for (unsigned i = 0; !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned k = (unsigned)(x % 16);
		free(keep[k]);
		keep[k] = malloc(1 + (size_t)(x >> 20) % 8192);
		if (keep[k])
			memset(keep[k], (int)i, 1);
		if (i % 1024 == 0) {
			spanring_span *s = spanring_span_start(tr, "worker.step", SPANRING_KIND_INTERNAL);
			spanring_span_set_int(s, "step", i);
			spanring_span_set_str(s, "note", "a copied string value");
			spanring_span_end(s);
		}
	}
	for (unsigned k = 0; k < 16; k++)
		free(keep[k]);
	return NULL;
}

static void put3(char *p, int v)
{
	p[0] = (char)('0' + v / 100 % 10);
	p[1] = (char)('0' + v / 10 % 10);
	p[2] = (char)('0' + v % 10);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fork_storm N MS\n");
		return 2;
	}
	int n = atoi(argv[1]);
	long hang_ms = atol(argv[2]);
	setvbuf(stdout, NULL, _IONBF, 0);
	pthread_t t[4];
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, worker, (void *)(i + 1));
	int bad = 0;
	for (int i = 0; i < n && !bad; i++) {
		pid_t p = fork();
		if (p < 0) {
			printf("fork %d failed: %d\n", i, errno);
			bad = 1;
			break;
		}
		if (p == 0) {
			spanring_tracer *tr = spanring_tracer_get("fork.child", "1.0", NULL);
			spanring_span *s = spanring_span_start(tr, "child.work", SPANRING_KIND_INTERNAL);
			spanring_span_set_int(s, "child.index", i);
			spanring_span_set_str(s, "child.note", "made in a restricted fork child");
			int e = spanring_span_end(s);
			/* Hands the ring over (now, or again if no agent took it). */
			int f = spanring_shutdown(2000);
			if (e || f) {
				/* No stdio in this child: digits by hand. */
				char m[] = "child: span_end -000 shutdown -000\n";
				put3(m + 17, -e);
				put3(m + 31, -f);
				ssize_t w = write(1, m, sizeof(m) - 1);
				(void)w;
				_exit(6);
			}
			exit(5);
		}
		int st = 0;
		long waited = 0;
		pid_t r;
		while ((r = waitpid(p, &st, WNOHANG)) == 0 && waited < hang_ms) {
			sleep_ms(1);
			waited++;
		}
		if (r == 0) {
			printf("hang at fork %d (pid %d, %ld ms)\n", i, (int)p, waited);
			if (getenv("STORM_KEEP_HUNG"))
				break; /* left for a debugger */
			kill(p, SIGKILL);
			waitpid(p, &st, 0);
			bad = 3;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 5) {
			printf("child %d (pid %d) ended with status %#x\n", i, (int)p, st);
			bad = 1;
		}
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	if (!bad)
		printf("forks %d ok\n", n);
	return bad;
}
