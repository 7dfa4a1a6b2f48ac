/* SPDX-License-Identifier: MIT */
/* sd_notify(3) on $NOTIFY_SOCKET, implemented directly (sdnotify.h). */
#include "sdnotify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"

int sd_notify_send(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = 0; /* abstract namespace */
	socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ssize_t r = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, sl);
	int err = r < 0 ? -errno : 1;
	close(fd);
	return err;
}

uint64_t sd_watchdog_usec(void)
{
	const char *u = getenv("WATCHDOG_USEC"), *p = getenv("WATCHDOG_PID");
	if (!u || !*u)
		return 0;
	if (p && *p && strtol(p, NULL, 10) != (long)getpid())
		return 0; /* meant for another process (a parent that exec'd us) */
	char *end;
	unsigned long long v = strtoull(u, &end, 10);
	return *end || v == 0 ? 0 : (uint64_t)v;
}

static struct {
	struct agent *ag;
	struct loop_timer t;
	uint64_t period_ns;
	bool armed;
} wd;

static void wd_on_timer(struct loop_timer *t)
{
	(void)t;
	int rc = sd_notify_send("WATCHDOG=1");
	if (rc < 0)
		AGENT_LOG_RL(AGENT_LOG_WARN, "sd_notify: WATCHDOG=1: %s", strerror(-rc));
	loop_timer_arm(&wd.ag->loop, &wd.t, agent_now_ns() + wd.period_ns);
}

void sd_notify_ready(struct agent *ag)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d\nSTATUS=serving %u exporters", (int)getpid(),
		 (unsigned)ag->n_exp);
	int rc = sd_notify_send(msg);
	if (rc < 0)
		log_warn("sd_notify: READY=1 to $NOTIFY_SOCKET: %s", strerror(-rc));
	else if (rc > 0)
		log_info("sd_notify: READY=1 sent");
	uint64_t us = sd_watchdog_usec();
	if (rc > 0 && us) {
		wd.ag = ag;
		wd.period_ns = us * 1000 / 2; /* half the interval, as systemd advises */
		wd.t.fn = wd_on_timer;
		wd.armed = true;
		sd_notify_send("WATCHDOG=1");
		loop_timer_arm(&ag->loop, &wd.t, agent_now_ns() + wd.period_ns);
		log_info("sd_notify: watchdog ping every %.3fs", (double)wd.period_ns / 1e9);
	}
}

void sd_notify_stopping(struct agent *ag)
{
	if (wd.armed) {
		loop_timer_cancel(&ag->loop, &wd.t);
		wd.armed = false;
	}
	sd_notify_send("STOPPING=1");
}
