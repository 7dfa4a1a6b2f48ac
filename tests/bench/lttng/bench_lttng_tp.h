/* SPDX-License-Identifier: MIT */
/*
 * LTTng-UST tracepoint provider for the comparison benchmark: one event
 * with the payload of spanring's reference span (trace id, span id, parent
 * id, name, start/end times, kind, and the 4 reference attributes; the
 * attribute keys are the field names, so they live in the trace metadata,
 * not in every event). Built by tests/bench/lttng.sh, not by make.
 */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER spanring_bench

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./bench_lttng_tp.h"

#if !defined(BENCH_LTTNG_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define BENCH_LTTNG_TP_H

#include <lttng/tracepoint.h>
#include <stdint.h>

/* The span, passed by pointer (a tracepoint takes at most 10 arguments). */
#ifndef BENCH_SPAN_DEFINED
#define BENCH_SPAN_DEFINED
struct bench_span {
	uint8_t trace_id[16], span_id[8], parent_id[8];
	const char *name, *method, *path;
	uint64_t start_ns, end_ns;
	int64_t status_code;
	uint8_t kind, cache_hit;
};
#endif

LTTNG_UST_TRACEPOINT_EVENT(
	spanring_bench, span,
	LTTNG_UST_TP_ARGS(const struct bench_span *, s),
	LTTNG_UST_TP_FIELDS(
		lttng_ust_field_array_hex(uint8_t, trace_id, s->trace_id, 16)
		lttng_ust_field_array_hex(uint8_t, span_id, s->span_id, 8)
		lttng_ust_field_array_hex(uint8_t, parent_span_id, s->parent_id, 8)
		lttng_ust_field_string(name, s->name)
		lttng_ust_field_integer(uint64_t, start_time_unix_nano, s->start_ns)
		lttng_ust_field_integer(uint64_t, end_time_unix_nano, s->end_ns)
		lttng_ust_field_integer(uint8_t, kind, s->kind)
		lttng_ust_field_string(http_request_method, s->method)
		lttng_ust_field_string(url_path, s->path)
		lttng_ust_field_integer(int64_t, http_response_status_code, s->status_code)
		lttng_ust_field_integer(uint8_t, cache_hit, s->cache_hit)
	)
)

/* The smallest event, for scale: one integer. */
LTTNG_UST_TRACEPOINT_EVENT(
	spanring_bench, one_int,
	LTTNG_UST_TP_ARGS(int64_t, v),
	LTTNG_UST_TP_FIELDS(lttng_ust_field_integer(int64_t, v, v))
)

#endif

#include <lttng/tracepoint-event.h>
