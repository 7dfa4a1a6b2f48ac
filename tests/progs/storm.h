/* SPDX-License-Identifier: MIT */
/*
 * The fork storm shared by tests/progs/fork_storm.c (the library alone)
 * and preload_victim fork-storm (under the shim): four threads run
 * storm_work(), which allocates and calls work() without pause, while the
 * caller forks n children one after the other; each child runs child(i),
 * which must exit(5). A child not reaped within hang_ms is a hang ("hang
 * at fork I", 3; STORM_KEEP_HUNG leaves it for a debugger); another end
 * is 1. Prints "forks N ok" when all went well.
 */
#ifndef SPANRING_TESTS_STORM_H
#define SPANRING_TESTS_STORM_H

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

static volatile int storm_stop_flag;
static void (*storm_work_fn)(unsigned i);

static void *storm_thread(void *arg)
{
	uint64_t x = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	void *keep[16] = {0};
	for (unsigned i = 0; !__atomic_load_n(&storm_stop_flag, __ATOMIC_RELAXED); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned k = (unsigned)(x % 16);
		free(keep[k]);
		keep[k] = malloc(1 + (size_t)(x >> 20) % 8192);
		if (keep[k])
			memset(keep[k], (int)i, 1);
		storm_work_fn(i);
	}
	for (unsigned k = 0; k < 16; k++)
		free(keep[k]);
	return NULL;
}

static void storm_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* 0: the child exited 5 in time; 3: a hang; 1: anything else. */
static int storm_reap(int i, pid_t p, long hang_ms)
{
	int st = 0;
	long waited = 0;
	pid_t r;
	while ((r = waitpid(p, &st, WNOHANG)) == 0 && waited < hang_ms) {
		storm_sleep_ms(1);
		waited++;
	}
	if (r == 0) {
		printf("hang at fork %d (pid %d, %ld ms)\n", i, (int)p, waited);
		if (getenv("STORM_KEEP_HUNG"))
			return 3; /* left for a debugger */
		kill(p, SIGKILL);
		waitpid(p, &st, 0);
		return 3;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 5) {
		printf("child %d (pid %d) ended with status %#x\n", i, (int)p, st);
		return 1;
	}
	return 0;
}

static int storm_run(int n, long hang_ms, void (*work)(unsigned i), void (*child)(int i))
{
	storm_work_fn = work;
	pthread_t t[4];
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, storm_thread, (void *)(i + 1));
	int bad = 0;
	for (int i = 0; i < n && !bad; i++) {
		pid_t p = fork();
		if (p < 0) {
			printf("fork %d failed: %d\n", i, errno);
			bad = 1;
			break;
		}
		if (p == 0) {
			child(i);
			_exit(1); /* child() must not return */
		}
		bad = storm_reap(i, p, hang_ms);
	}
	__atomic_store_n(&storm_stop_flag, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	if (!bad)
		printf("forks %d ok\n", n);
	return bad;
}

#endif
