/* SPDX-License-Identifier: MIT */
/*
 * What the sleeping agent's membarrier costs on this machine (docs/ABI.md
 * 10.1): the wall time of one membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)
 * with no registered process running and with one registered process
 * spinning (the kernel then interrupts its CPU), and of
 * membarrier(MEMBARRIER_CMD_GLOBAL), which a 1.2 producer makes the agent
 * use. One call every 500 µs, as a sleeping agent would at most.
 *
 *   bench_membarrier [--calls N] [--global-calls N]
 * Prints one JSON line per case: {"case":..,"calls":..,"p50_us":..,
 * "p99_us":..,"max_us":..}.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long mb(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int run(const char *name, int cmd, int n)
{
	double *d = calloc((size_t)n, sizeof(*d));
	if (!d)
		return 1;
	for (int i = 0; i < n; i++) {
		double t = now_us();
		if (mb(cmd) != 0) {
			fprintf(stderr, "bench_membarrier: %s: %s\n", name, strerror(errno));
			free(d);
			return 1;
		}
		d[i] = now_us() - t;
		struct timespec p = {0, 500000};
		nanosleep(&p, NULL);
	}
	qsort(d, (size_t)n, sizeof(*d), cmp_d);
	printf("{\"case\":\"%s\",\"calls\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
	       name, n, d[n / 2], d[n * 99 / 100], d[n - 1]);
	free(d);
	return 0;
}

int main(int argc, char **argv)
{
	int n = 2000, ng = 50;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--calls") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--global-calls") && i + 1 < argc)
			ng = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_membarrier [--calls N] [--global-calls N]\n");
			return 2;
		}
	}
	if (n < 1 || ng < 1) {
		fprintf(stderr, "bench_membarrier: counts must be >= 1\n");
		return 2;
	}
	long q = mb(MEMBARRIER_CMD_QUERY);
	if (q < 0 || !(q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) || !(q & MEMBARRIER_CMD_GLOBAL)) {
		fprintf(stderr, "bench_membarrier: this kernel lacks the commands (query %ld)\n", q);
		return 77;
	}
	int rc = run("expedited, no registered process running", MEMBARRIER_CMD_GLOBAL_EXPEDITED, n);
	pid_t c = fork();
	if (c == 0) {
		if (mb(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0)
			_exit(1);
		alarm(600); /* never outlives a lost parent for long */
		for (;;)
			;
	}
	if (c < 0)
		return 1;
	struct timespec settle = {0, 100000000};
	nanosleep(&settle, NULL);
	rc |= run("expedited, a registered process spinning", MEMBARRIER_CMD_GLOBAL_EXPEDITED, n);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	rc |= run("global", MEMBARRIER_CMD_GLOBAL, ng);
	return rc;
}
