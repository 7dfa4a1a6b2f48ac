/* SPDX-License-Identifier: MIT */
/*
 * The process's OpenTelemetry Resource, encoded once at start-up into the
 * ring's resource area. Start-up code, not hot path.
 */
#ifndef SPANRING_LIB_RESOURCE_H
#define SPANRING_LIB_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h" /* SR_HIDDEN */

/*
 * Encode this process's Resource message (OTLP
 * opentelemetry.proto.resource.v1.Resource) into buf (cap bytes).
 * Returns 0 and sets *len; -ENOSPC if it does not fit (then *len is set to
 * the size needed, so buf may be NULL with cap 0 to ask for it); -ENOMEM;
 * -EINVAL if len is NULL.
 *
 * The environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) and the
 * process facts are read afresh at every call: nothing is cached but the
 * service name below and the executable's path (which only exec changes),
 * so a test can vary the environment between calls.
 */
SR_HIDDEN int sr_resource_encode(uint8_t *buf, size_t cap, size_t *len);

/*
 * The service.name that the resource carries (for logs/tools); valid after
 * any call. Before the first sr_resource_encode() it is worked out from
 * the environment on demand. The string lives in a static buffer that each
 * sr_resource_encode() call rewrites (the library calls it once, at
 * start-up); names longer than 255 bytes are cut at a UTF-8 boundary here,
 * never in the encoded resource.
 */
SR_HIDDEN const char *sr_resource_service_name(void);

/*
 * Leave out what costs most to detect and is carried elsewhere: the
 * LD_PRELOAD shim calls this before its ring exists. process.owner (an
 * NSS lookup) and host.name (uname) are what the agent replaces anyway
 * with values it verifies (SO_PEERCRED, its own host name); the command
 * line (a read of /proc/self/cmdline) is on the shim's process span as
 * process.command_args. A ring read without the agent (spanring-dump
 * --no-agent) then shows none of the three.
 */
SR_HIDDEN void sr_resource_lean(void);

/* The executable's path (what /proc/self/exe reads), when the caller has
 * read it already: saves reading it again. NULL or "": unknown. */
SR_HIDDEN void sr_resource_set_exe(const char *path);

/* In a fork child: the locks of the caches may have been held by a
 * thread that does not exist here. */
SR_HIDDEN void sr_resource_atfork_child(void);

/*
 * process.command_args: SPANRING_COMMAND_ARGS = full, redacted (the
 * default) or off (lib/args.c). In redacted form:
 *  - a URL's user information is replaced: scheme://REDACTED@host/...;
 *  - an argument NAME=VALUE or NAME:VALUE (NAME with leading dashes
 *    allowed, made of letters, digits, '_', '.', '-') whose NAME contains
 *    one of the key words keeps NAME and the separator, VALUE becomes
 *    REDACTED (--password=REDACTED, Authorization:REDACTED);
 *  - an option -NAME or --NAME alone whose NAME contains a key word hides
 *    the next argument unless that starts with '-' (--token REDACTED).
 * Key words, in any case: pass, pwd, secret, token, key, auth,
 * credential, cookie. Single-letter options (mysql -pSECRET, curl -u
 * user:pass) are not recognised: use off for such programs.
 */
enum sr_args_mode { SR_ARGS_REDACTED = 0, SR_ARGS_FULL, SR_ARGS_OFF };

/* The mode named by v (NULL or "" : redacted); *bad set if v names none
 * (then redacted). */
SR_HIDDEN enum sr_args_mode sr_args_mode_parse(const char *v, bool *bad);

/*
 * The reported form of one argument a[0..len) in redacted mode, written
 * to out (at most cap bytes, no terminator). hide: the argument before
 * asked for this one to be hidden; *hide_next: this one asks for the next
 * to be hidden. Returns the length, or SIZE_MAX if it does not fit.
 * Pure: no allocation, no lock (async-signal-safe).
 */
SR_HIDDEN size_t sr_arg_redact(const char *a, size_t len, bool hide, char *out, size_t cap,
			       bool *hide_next);

#endif /* SPANRING_LIB_RESOURCE_H */
