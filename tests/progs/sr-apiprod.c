/* SPDX-License-Identifier: MIT */
/*
 * sr-apiprod [N]: a program linked with libspanring (statically, as the
 * test helpers are) that makes N spans (default 3) through the public API
 * and ends with spanring_shutdown(2000). Prints "shutdown=R" (0: the agent
 * took the ring). The security tests make a set-user-ID copy of it
 * (docs/SECURITY.md R3) and run it as other users (R1).
 */
#include <stdio.h>
#include <stdlib.h>

#include "spanring/spanring.h"

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 3;
	spanring_init();
	spanring_tracer *t = spanring_tracer_get("sr-apiprod", "1", NULL);
	for (int i = 0; i < n; i++) {
		spanring_span *s = spanring_span_start(t, "apiprod-span", SPANRING_KIND_INTERNAL);
		spanring_span_set_int(s, "test.seq", i);
		spanring_span_end(s);
	}
	int r = spanring_shutdown(2000);
	printf("shutdown=%d\n", r);
	return 0;
}
