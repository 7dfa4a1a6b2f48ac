/* SPDX-License-Identifier: MIT */
/* The OTLP retry policy (otlp_retry.h). */
#include "otlp_retry.h"

#include <string.h>

bool otlp_http_retryable(int status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

bool otlp_grpc_retryable(int code, bool has_retry_info)
{
	switch (code) {
	case GRPC_CANCELLED:
	case GRPC_DEADLINE_EXCEEDED:
	case GRPC_ABORTED:
	case GRPC_OUT_OF_RANGE:
	case GRPC_UNAVAILABLE:
	case GRPC_DATA_LOSS:
		return true;
	case GRPC_RESOURCE_EXHAUSTED:
		return has_retry_info;
	default:
		return false;
	}
}

const char *otlp_grpc_code_name(int code)
{
	static const char *const names[] = {
		"OK",		    "CANCELLED",	 "UNKNOWN",	     "INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED", "NOT_FOUND",	 "ALREADY_EXISTS",   "PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",	     "OUT_OF_RANGE",
		"UNIMPLEMENTED",     "INTERNAL",	 "UNAVAILABLE",	     "DATA_LOSS",
		"UNAUTHENTICATED",
	};
	if (code >= 0 && (size_t)code < sizeof(names) / sizeof(names[0]))
		return names[code];
	return "UNKNOWN_CODE";
}

int otlp_grpc_code_from_http(int s)
{
	switch (s) {
	case 400:
		return GRPC_INTERNAL;
	case 401:
		return GRPC_UNAUTHENTICATED;
	case 403:
		return GRPC_PERMISSION_DENIED;
	case 404:
		return GRPC_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return GRPC_UNAVAILABLE;
	default:
		return GRPC_UNKNOWN;
	}
}

int otlp_retry_after_parse(const char *v, size_t n, time_t now_wall, uint64_t *delay_ns)
{
	char buf[64];
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, v, n);
	buf[n] = 0;
	if (buf[0] >= '0' && buf[0] <= '9') {
		uint64_t s = 0;
		for (size_t i = 0; i < n; i++) {
			if (buf[i] < '0' || buf[i] > '9')
				return -1;
			s = s * 10 + (uint64_t)(buf[i] - '0');
			if (s > 100000000ull) /* about 3 years: clamp, never overflow */
				s = 100000000ull;
		}
		*delay_ns = s * 1000000000ull;
		return 0;
	}
	/* HTTP-date, the three forms of RFC 9110 5.6.7; always GMT. */
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT", /* obsolete RFC 850 */
		"%a %b %e %H:%M:%S %Y",      /* asctime */
	};
	for (size_t i = 0; i < 3; i++) {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(buf, fmts[i], &tm);
		if (!end || *end)
			continue;
		time_t t = timegm(&tm);
		if (t == (time_t)-1)
			return -1;
		*delay_ns = t > now_wall ? (uint64_t)(t - now_wall) * 1000000000ull : 0;
		return 0;
	}
	return -1;
}

uint64_t otlp_backoff_ns(uint64_t initial_ns, uint64_t max_ns, uint32_t attempt, uint64_t rnd)
{
	uint64_t d = initial_ns;
	for (uint32_t i = 1; i < attempt && d < max_ns; i++)
		d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
	if (d > max_ns)
		d = max_ns;
	/* jitter: d * [0.8, 1.2) */
	uint64_t span = d / 5 * 2;
	uint64_t j = span ? rnd % span : 0;
	return d - d / 5 + j;
}
