/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER so the producer core links: the agent engineer replaces this
 * file with the real background registration client (see client.h). */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int sr_doorbell_fd = -1;

const char *sr_socket_path(char *buf, size_t n)
{
	const char *env = getenv("SPANRING_SOCKET");
	int len;
	if (env && *env)
		len = snprintf(buf, n, "%s", env);
	else if (getuid() == 0)
		len = snprintf(buf, n, "/run/spanring/agent.sock");
	else if (getenv("XDG_RUNTIME_DIR"))
		len = snprintf(buf, n, "%s/spanring.sock", getenv("XDG_RUNTIME_DIR"));
	else
		len = snprintf(buf, n, "/tmp/spanring-%u.sock", (unsigned)getuid());
	return (len > 0 && (size_t)len < n) ? buf : NULL;
}

void sr_client_start(struct sr_map *m) { (void)m; }
int sr_client_flush(int timeout_ms) { (void)timeout_ms; return -ENOTCONN; }
bool sr_client_registered(void) { return false; }
void sr_client_atfork_child(void) {}
void sr_client_stop(void) {}
