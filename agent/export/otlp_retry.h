/* SPDX-License-Identifier: MIT */
/*
 * The OTLP retry policy, as pure functions (unit-tested):
 *
 * - OTLP/HTTP: 429, 502, 503, 504 are retryable, every other 4xx/5xx (and
 *   anything else that is not 2xx) is not; Retry-After (delta-seconds or
 *   an HTTP-date) gives the delay.
 * - OTLP/gRPC: CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE,
 *   UNAVAILABLE, DATA_LOSS are retryable; RESOURCE_EXHAUSTED only when
 *   the server sent a google.rpc.RetryInfo; the rest are not. RetryInfo's
 *   retry_delay gives the delay.
 * - Transport failures (refused, reset, closed before the answer,
 *   timeout, DNS) are retryable.
 * - Without a server-given delay: exponential backoff, initial * 2^(n-1)
 *   capped at max_backoff, with +-20% jitter.
 * - Whatever the delay, a batch is let go once its next attempt would
 *   start later than max_elapsed after its first one.
 */
#ifndef SPANRING_AGENT_OTLP_RETRY_H
#define SPANRING_AGENT_OTLP_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_ALREADY_EXISTS = 6,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_DATA_LOSS = 15,
	GRPC_UNAUTHENTICATED = 16,
};

bool otlp_http_retryable(int status);
bool otlp_grpc_retryable(int code, bool has_retry_info);
const char *otlp_grpc_code_name(int code);
/* gRPC code for an HTTP/2 response without grpc-status (gRPC's mapping). */
int otlp_grpc_code_from_http(int http_status);

/*
 * Parse a Retry-After value (n bytes): delta-seconds or an HTTP-date
 * (IMF-fixdate, RFC 850 or asctime form), relative to now_wall (seconds
 * since the epoch). A date in the past gives 0. 0 with *delay_ns set, or
 * -1 when the value is neither.
 */
int otlp_retry_after_parse(const char *v, size_t n, time_t now_wall, uint64_t *delay_ns);

/* Backoff before attempt number `attempt` (1 = the first retry); rnd is
 * a uniform random 64-bit value. */
uint64_t otlp_backoff_ns(uint64_t initial_ns, uint64_t max_ns, uint32_t attempt, uint64_t rnd);

/* Should a batch first tried at first_ns be tried again at next_ns? */
static inline bool otlp_retry_in_budget(uint64_t first_ns, uint64_t next_ns, uint64_t max_elapsed_ns)
{
	return next_ns >= first_ns && next_ns - first_ns <= max_elapsed_ns;
}

#endif
