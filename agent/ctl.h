/* SPDX-License-Identifier: MIT */
/*
 * The control socket (ctl.c) and the metrics endpoint (metrics.c): what
 * the agent reports about itself, as JSON and Prometheus text. They read
 * the agent's state and change nothing in it.
 */
#ifndef SPANRING_AGENT_CTL_H
#define SPANRING_AGENT_CTL_H

#include <stdint.h>

struct agent;
struct sbuf;

int ctl_listen(struct agent *ag);
void ctl_close(struct agent *ag);
/* Close connections past their time limits (every second). */
void ctl_housekeeping(struct agent *ag);
int metrics_listen(struct agent *ag);
void metrics_close(struct agent *ag);
void metrics_housekeeping(struct agent *ag);
/* only_uid >= 0: the producers of that uid only (a non-root caller). */
void stats_json(struct agent *ag, struct sbuf *out, int64_t only_uid);
void stats_rings_json(struct agent *ag, struct sbuf *out, int64_t only_uid);
void stats_prometheus(struct agent *ag, struct sbuf *out);

#endif
