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
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <spanring/spanring.h>

#include "storm.h"

static spanring_tracer *worker_tr;

static void worker_step(unsigned i)
{
	if (i % 1024)
		return;
	spanring_span *s = spanring_span_start(worker_tr, "worker.step", SPANRING_KIND_INTERNAL);
	spanring_span_set_int(s, "step", i);
	spanring_span_set_str(s, "note", "a copied string value");
	spanring_span_end(s);
}

static void put3(char *p, int v)
{
	p[0] = (char)('0' + v / 100 % 10);
	p[1] = (char)('0' + v / 10 % 10);
	p[2] = (char)('0' + v % 10);
}

static void child(int i)
{
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

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fork_storm N MS\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	worker_tr = spanring_tracer_get("fork.storm", "1.0", NULL);
	return storm_run(atoi(argv[1]), atol(argv[2]), worker_step, child);
}
