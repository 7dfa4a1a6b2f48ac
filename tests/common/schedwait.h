/* SPDX-License-Identifier: MIT */
/*
 * How long threads have waited for a CPU: the second field of
 * /proc/PID/task/TID/schedstat (nanoseconds spent runnable on a run
 * queue, not running). The latency tests use it to tell a late span that
 * waited because the machine did not run the agent (or the probe) from
 * one the agent did not know about: a lost wake-up leaves the agent
 * asleep, which adds nothing here. A wait still in progress is counted
 * when the thread next runs, so read it after the thread has run.
 */
#ifndef SPANRING_TEST_SCHEDWAIT_H
#define SPANRING_TEST_SCHEDWAIT_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/* The run-queue wait of one schedstat file, or 0 if it cannot be read. */
static inline uint64_t schedwait_file(const char *path)
{
	char buf[128];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *end;
	(void)strtoull(buf, &end, 10);   /* time on a CPU */
	return strtoull(end, NULL, 10);  /* time waiting for one */
}

/* The calling thread's wait. */
static inline uint64_t schedwait_self(void)
{
	return schedwait_file("/proc/thread-self/schedstat");
}

/* One thread of process pid. */
static inline uint64_t schedwait_task(pid_t pid, pid_t tid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
	return schedwait_file(path);
}

/* Every thread of process pid (threads that exited meanwhile drop out). */
static inline uint64_t schedwait_proc(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	uint64_t sum = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		sum += schedwait_task(pid, (pid_t)atoi(e->d_name));
	}
	closedir(d);
	return sum;
}

#endif
