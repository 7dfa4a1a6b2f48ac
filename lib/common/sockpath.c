/* SPDX-License-Identifier: MIT */
/* Where the agent's socket is (see sockpath.h). */
#include "sockpath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

/* Secure-execution mode (AT_SECURE: a set-user-ID program). */
static bool secure_exec(void)
{
	return getauxval(AT_SECURE) != 0;
}

const char *sr_sockpath_env_bad(const char *v)
{
	if (v[0] != '/')
		return "not an absolute path";
	if (strlen(v) >= SR_SOCKPATH_MAX)
		return "longer than a unix socket address allows (107 bytes)";
	return NULL;
}

bool sr_sockpath_user(char *buf, size_t n, bool *tmp_dir)
{
	const char *xdg = secure_getenv("XDG_RUNTIME_DIR");
	int len;
	*tmp_dir = !(xdg && *xdg);
	if (!*tmp_dir)
		len = snprintf(buf, n, "%s/spanring.sock", xdg);
	else
		len = snprintf(buf, n, "/tmp/spanring-%u/agent.sock", (unsigned)geteuid());
	return len > 0 && (size_t)len < n && (size_t)len < SR_SOCKPATH_MAX;
}

bool sr_sockpath_dir_private(const char *path, bool follow)
{
	char dir[SR_SOCKPATH_MAX];
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] != '/')
		n--;
	if (n <= 1 || n - 1 >= sizeof(dir))
		return false;
	memcpy(dir, path, n - 1);
	dir[n - 1] = '\0';
	struct stat st;
	int r = follow ? stat(dir, &st) : lstat(dir, &st);
	return r == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 077);
}

const char *sr_socket_path(char *buf, size_t n)
{
	int len;
	bool tmp_dir;
	struct stat st;
	if (!secure_exec()) {
		const char *env = secure_getenv("SPANRING_SOCKET");
		if (env && *env) {
			if (sr_sockpath_env_bad(env))
				return NULL;
			len = snprintf(buf, n, "%s", env);
			return len > 0 && (size_t)len < n ? buf : NULL;
		}
	}
	if (secure_exec() || geteuid() == 0 ||
	    (stat(SR_SYSTEM_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode))) {
		len = snprintf(buf, n, "%s", SR_SYSTEM_SOCKET);
		return len > 0 && (size_t)len < n ? buf : NULL;
	}
	return sr_sockpath_user(buf, n, &tmp_dir) ? buf : NULL;
}

const char *sr_agent_socket_path(char *buf, size_t n, const char **why)
{
	int len;
	bool tmp_dir;
	const char *env = secure_getenv("SPANRING_SOCKET");
	*why = NULL;
	if (env && *env) {
		if ((*why = sr_sockpath_env_bad(env)))
			return NULL;
		len = snprintf(buf, n, "%s", env);
	} else if (geteuid() == 0) {
		len = snprintf(buf, n, "%s", SR_SYSTEM_SOCKET);
	} else {
		if (!sr_sockpath_user(buf, n, &tmp_dir)) {
			*why = "the per-user path is longer than a unix socket address allows";
			return NULL;
		}
		/* Ours to make, private; one that exists must be private already
		 * (another uid may have made it first: then refuse, never use it). */
		if (tmp_dir) {
			char dir[SR_SOCKPATH_MAX];
			snprintf(dir, sizeof(dir), "/tmp/spanring-%u", (unsigned)geteuid());
			if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
				*why = "cannot create its directory /tmp/spanring-<uid>";
				return NULL;
			}
		}
		if (!sr_sockpath_dir_private(buf, !tmp_dir)) {
			*why = "its directory is not a directory of this uid with mode 0700 (another "
			       "user may have made it: remove it, or set SPANRING_SOCKET)";
			return NULL;
		}
		return buf;
	}
	return len > 0 && (size_t)len < n ? buf : NULL;
}
