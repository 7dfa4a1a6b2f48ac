/* SPDX-License-Identifier: MIT */
/*
 * spanring tracing API.
 *
 * Spans are encoded once, as OTLP protobuf, straight into a shared-memory
 * ring that the host's spanring-agent drains. Configuration comes from the
 * OpenTelemetry environment variables (OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_SDK_DISABLED, OTEL_TRACES_SAMPLER[_ARG],
 * the attribute limits) and SPANRING_* variables; see README.md.
 *
 * Conventions
 *   - Functions returning int return 0 on success or a negative errno.
 *   - Every function accepts NULL span/tracer pointers and does nothing
 *     (returning -EINVAL where it returns int). A span pointer stays valid
 *     from spanring_span_start*() until spanring_span_end*(); using it after
 *     it ended is a bug that the library detects while the object has not
 *     been reused (-EALREADY), and cannot detect afterwards.
 *   - spanring_span_start*() never returns NULL: when tracing is disabled
 *     or the span is not sampled it returns a non-recording span that still
 *     carries a context (so children and propagation stay consistent) and
 *     on which every setter is a cheap no-op.
 *   - Setters named *_ref borrow: the key and value must stay valid and
 *     unchanged until the span ends. All other setters copy.
 *   - Strings are UTF-8. A string attribute value that is not valid UTF-8
 *     is rejected (-EILSEQ) and counted as a dropped attribute. Values
 *     longer than the attribute value length limit are truncated at a
 *     character boundary, as the OpenTelemetry specification says.
 *   - Attributes beyond the count limit are dropped and counted
 *     (-ENOSPC); setting an existing key replaces its value.
 *   - Thread safety: any thread may create and end spans. A given span
 *     must not be used by two threads at the same time. A span may be
 *     ended out of order or on another thread; if it was the current span
 *     of a thread that exits before the span ends, its memory is not
 *     reclaimed (start such spans `detached`).
 */
#ifndef SPANRING_H
#define SPANRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SPANRING_BUILD)
#define SPANRING_API __attribute__((visibility("default")))
#else
#define SPANRING_API
#endif

#define SPANRING_VERSION_MAJOR 0
#define SPANRING_VERSION_MINOR 1
#define SPANRING_VERSION_PATCH 0

/* Span kinds, values as in OTLP Span.SpanKind. */
typedef enum spanring_kind {
	SPANRING_KIND_UNSPECIFIED = 0,
	SPANRING_KIND_INTERNAL = 1,
	SPANRING_KIND_SERVER = 2,
	SPANRING_KIND_CLIENT = 3,
	SPANRING_KIND_PRODUCER = 4,
	SPANRING_KIND_CONSUMER = 5,
} spanring_kind;

/* Status codes, values as in OTLP Status.StatusCode. */
typedef enum spanring_status_code {
	SPANRING_STATUS_UNSET = 0,
	SPANRING_STATUS_OK = 1,
	SPANRING_STATUS_ERROR = 2,
} spanring_status_code;

/* ---- span context and W3C trace context --------------------------------- */

#define SPANRING_TRACEPARENT_LEN 55  /* "00-<32 hex>-<16 hex>-<2 hex>" */
#define SPANRING_TRACESTATE_MAX 512  /* W3C: at most 512 characters kept */
#define SPANRING_FLAG_SAMPLED 0x01u  /* W3C trace-flags bit 0 */

typedef struct spanring_span_context {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t trace_flags;       /* W3C trace flags */
	uint8_t is_remote;         /* 1 when extracted from a carrier */
	uint16_t trace_state_len;  /* bytes used in trace_state */
	char trace_state[SPANRING_TRACESTATE_MAX + 1]; /* NUL-terminated */
} spanring_span_context;

/* True when trace and span ids are not all zero. */
SPANRING_API bool spanring_context_is_valid(const spanring_span_context *ctx);

/*
 * Parse a W3C traceparent header value ("00-<trace-id>-<parent-id>-<flags>").
 * Leading/trailing spaces and tabs are ignored. Versions other than 00 are
 * accepted as the specification says for future versions (longer value
 * with '-' after the flags). Returns 0, or -EINVAL for any invalid form
 * (including all-zero ids, version ff, upper-case hex). On success
 * out->trace_state is emptied and out->is_remote set to 1.
 */
SPANRING_API int spanring_traceparent_parse(const char *value, size_t len,
					    spanring_span_context *out);

/* Format ctx as version 00 traceparent into out (at least 56 bytes, NUL
 * written). Returns 55, -EINVAL if ctx is NULL or invalid, -ENOSPC if
 * outlen < 56. */
SPANRING_API int spanring_traceparent_format(const spanring_span_context *ctx, char *out,
					     size_t outlen);

/*
 * Parse a W3C tracestate header value into ctx->trace_state (normalised
 * "k=v,k2=v2"). Invalid list members (including empty values) are dropped,
 * as are members past the 32nd; duplicate keys keep the first; if the
 * result exceeds 512 characters, members longer than 128 characters go
 * first, then members from the end. Returns the number of members kept, or
 * -EINVAL only for NULL arguments.
 */
SPANRING_API int spanring_tracestate_parse(const char *value, size_t len,
					   spanring_span_context *ctx);

/* Carrier access for inject/extract (HTTP headers, environment, ...). */
typedef const char *(*spanring_getter_fn)(void *carrier, const char *key);
typedef int (*spanring_setter_fn)(void *carrier, const char *key, const char *value);

/* Read "traceparent" and "tracestate" through get (the getter handles
 * case-insensitive names and joins repeated tracestate headers). 0,
 * -ENOENT without traceparent, -EINVAL if it is invalid; on failure *out
 * is left untouched. */
SPANRING_API int spanring_context_extract(spanring_span_context *out, spanring_getter_fn get,
					  void *carrier);
/* Write "traceparent" (and "tracestate" when non-empty) through set. */
SPANRING_API int spanring_context_inject(const spanring_span_context *ctx,
					 spanring_setter_fn set, void *carrier);
/* Extract from the TRACEPARENT / TRACESTATE environment variables; an
 * empty TRACEPARENT counts as unset (-ENOENT). */
SPANRING_API int spanring_context_from_env(spanring_span_context *out);
/* Set TRACEPARENT / TRACESTATE in the environment (setenv) for children. */
SPANRING_API int spanring_context_to_env(const spanring_span_context *ctx);

/* ---- attributes --------------------------------------------------------- */

typedef enum spanring_attr_type {
	SPANRING_ATTR_STRING = 1,
	SPANRING_ATTR_BOOL = 2,
	SPANRING_ATTR_INT = 3,
	SPANRING_ATTR_DOUBLE = 4,
	SPANRING_ATTR_BYTES = 5,
	SPANRING_ATTR_STRING_ARRAY = 6, /* v.array.items: const char *const[] */
	SPANRING_ATTR_BOOL_ARRAY = 7,   /* v.array.items: const bool[] */
	SPANRING_ATTR_INT_ARRAY = 8,    /* v.array.items: const int64_t[] */
	SPANRING_ATTR_DOUBLE_ARRAY = 9, /* v.array.items: const double[] */
} spanring_attr_type;

/* One attribute, for the bulk forms (events, links, one-call spans). */
typedef struct spanring_attr {
	const char *key;
	spanring_attr_type type;
	union {
		struct {
			const char *ptr;
			size_t len; /* SIZE_MAX: NUL-terminated */
		} str;
		bool b;
		int64_t i;
		double d;
		struct {
			const void *ptr;
			size_t len;
		} bytes;
		struct {
			const void *items;
			size_t count;
		} array;
	} v;
} spanring_attr;

#define SPANRING_ATTR_STR(k, s) \
	((spanring_attr){.key = (k), .type = SPANRING_ATTR_STRING, .v.str = {(s), SIZE_MAX}})
#define SPANRING_ATTR_BOOL(k, x) ((spanring_attr){.key = (k), .type = SPANRING_ATTR_BOOL, .v.b = (x)})
#define SPANRING_ATTR_INT(k, x) ((spanring_attr){.key = (k), .type = SPANRING_ATTR_INT, .v.i = (x)})
#define SPANRING_ATTR_DOUBLE(k, x) \
	((spanring_attr){.key = (k), .type = SPANRING_ATTR_DOUBLE, .v.d = (x)})
#define SPANRING_ATTR_BYTES(k, p, n) \
	((spanring_attr){.key = (k), .type = SPANRING_ATTR_BYTES, .v.bytes = {(p), (n)}})

/* ---- tracers (instrumentation scopes) ----------------------------------- */

typedef struct spanring_tracer spanring_tracer;
typedef struct spanring_span spanring_span;

/*
 * Get the tracer of an instrumentation scope. The same (name, version,
 * schema_url) returns the same tracer. Strings are copied; scope attributes
 * are encoded once. Tracers live until the process exits. Returns NULL with
 * errno set on invalid arguments or ENOMEM. A NULL tracer is accepted by
 * spanring_span_start*() and means the library's default tracer (scope
 * "spanring"). If the ring's scope table is full, spans of tracers not yet
 * in it are dropped at end (-ENOSPC).
 */
SPANRING_API spanring_tracer *spanring_tracer_get(const char *name, const char *version,
						  const char *schema_url);
SPANRING_API spanring_tracer *spanring_tracer_get_ex(const char *name, const char *version,
						     const char *schema_url,
						     const spanring_attr *attrs, size_t n_attrs);

/* ---- spans -------------------------------------------------------------- */

/* Options of spanring_span_start_ex(); zero-initialise, set what you need. */
typedef struct spanring_span_opts {
	spanring_kind kind;
	/* Explicit parent. NULL: the thread's current span (if any). */
	const spanring_span_context *parent;
	bool root;              /* ignore any parent: start a new trace */
	bool detached;          /* do not make the new span the thread's current span */
	uint64_t start_ns;      /* 0: now (CLOCK_REALTIME) */
	const spanring_attr *attrs; /* initial attributes (copied); visible to the sampler */
	size_t n_attrs;
} spanring_span_opts;

/*
 * Start a span as a child of the thread's current span (or a root span)
 * and make it the thread's current span until it ends. The name is copied.
 */
SPANRING_API spanring_span *spanring_span_start(spanring_tracer *t, const char *name,
						spanring_kind kind);
/* As spanring_span_start(), but the name is borrowed until the span ends. */
SPANRING_API spanring_span *spanring_span_start_ref(spanring_tracer *t, const char *name,
						    spanring_kind kind);
SPANRING_API spanring_span *spanring_span_start_ex(spanring_tracer *t, const char *name,
						   const spanring_span_opts *opts);

/* End the span now / at end_ns, encode it into the ring and release it.
 * -EALREADY if it already ended; -ENOSPC if the ring was full (dropped and
 * counted); -E2BIG if the encoded span exceeds the record limit (dropped,
 * counted); 0 otherwise (also for non-recording spans). */
SPANRING_API int spanring_span_end(spanring_span *s);
SPANRING_API int spanring_span_end_at(spanring_span *s, uint64_t end_ns);

SPANRING_API bool spanring_span_is_recording(const spanring_span *s);
SPANRING_API int spanring_span_get_context(const spanring_span *s, spanring_span_context *out);
SPANRING_API int spanring_span_update_name(spanring_span *s, const char *name);
SPANRING_API int spanring_span_set_status(spanring_span *s, spanring_status_code code,
					  const char *message);
/* Replace the span's tracestate (validated like spanring_tracestate_parse). */
SPANRING_API int spanring_span_set_trace_state(spanring_span *s, const char *tracestate);

/* Attributes. Copying forms: */
SPANRING_API int spanring_span_set_attr(spanring_span *s, const spanring_attr *a);
SPANRING_API int spanring_span_set_str(spanring_span *s, const char *key, const char *value);
SPANRING_API int spanring_span_set_strn(spanring_span *s, const char *key, const char *value,
					size_t len);
SPANRING_API int spanring_span_set_int(spanring_span *s, const char *key, int64_t value);
SPANRING_API int spanring_span_set_bool(spanring_span *s, const char *key, bool value);
SPANRING_API int spanring_span_set_double(spanring_span *s, const char *key, double value);
SPANRING_API int spanring_span_set_bytes(spanring_span *s, const char *key, const void *value,
					 size_t len);
/* Borrowing forms (key and value must outlive the span): */
SPANRING_API int spanring_span_set_attr_ref(spanring_span *s, const spanring_attr *a);
SPANRING_API int spanring_span_set_str_ref(spanring_span *s, const char *key, const char *value);
SPANRING_API int spanring_span_set_int_ref(spanring_span *s, const char *key, int64_t value);
SPANRING_API int spanring_span_set_bool_ref(spanring_span *s, const char *key, bool value);
SPANRING_API int spanring_span_set_double_ref(spanring_span *s, const char *key, double value);

/*
 * Setters with explicit lengths in bytes (key_len must be > 0; a string
 * value may contain NUL bytes). flags 0 copies key and value, like the
 * setters above; SPANRING_BORROW borrows them (the *_ref contract). Same
 * return codes as the setters above.
 */
#define SPANRING_BORROW 1u
SPANRING_API int spanring_span_put_str(spanring_span *s, const char *key, size_t key_len,
				       const char *value, size_t value_len, unsigned flags);
SPANRING_API int spanring_span_put_int(spanring_span *s, const char *key, size_t key_len,
				       int64_t value, unsigned flags);
SPANRING_API int spanring_span_put_bool(spanring_span *s, const char *key, size_t key_len,
					bool value, unsigned flags);
SPANRING_API int spanring_span_put_double(spanring_span *s, const char *key, size_t key_len,
					  double value, unsigned flags);

/* Events (time 0: now) and links; attributes are copied. */
SPANRING_API int spanring_span_add_event(spanring_span *s, const char *name,
					 const spanring_attr *attrs, size_t n_attrs);
SPANRING_API int spanring_span_add_event_at(spanring_span *s, const char *name, uint64_t time_ns,
					    const spanring_attr *attrs, size_t n_attrs);
/* An "exception" event with the semantic-convention attributes; sets no status. */
SPANRING_API int spanring_span_record_exception(spanring_span *s, const char *type,
						const char *message, const char *stacktrace);
SPANRING_API int spanring_span_add_link(spanring_span *s, const spanring_span_context *ctx,
					const spanring_attr *attrs, size_t n_attrs);

/* The thread's current span (NULL when none) and its context. */
SPANRING_API spanring_span *spanring_current_span(void);
SPANRING_API int spanring_current_context(spanring_span_context *out);

/* ---- one-call spans ------------------------------------------------------ */

typedef struct spanring_span_data {
	const char *name;
	spanring_kind kind;
	const spanring_span_context *parent; /* NULL: current span of the thread */
	bool root;
	uint64_t start_ns, end_ns;           /* end 0: now; start 0: end */
	const spanring_attr *attrs;
	size_t n_attrs;
	spanring_status_code status;
	const char *status_message;
	spanring_span_context *out_ctx;      /* optional: receives the new span's context */
} spanring_span_data;

/* Emit a finished span with one encode; nothing is copied but into the ring. */
SPANRING_API int spanring_span_emit(spanring_tracer *t, const spanring_span_data *d);

/* ---- process-wide -------------------------------------------------------- */

/* Optional: read the environment and set up now instead of on first use.
 * Returns 0, or -ECANCELED when OTEL_SDK_DISABLED=true. */
SPANRING_API int spanring_init(void);
/* Mark the ring closed and make sure the agent has it (registers if it had
 * not yet, waiting at most timeout_ms). Spans started afterwards are not
 * recorded. Called automatically at exit with a short timeout. */
SPANRING_API int spanring_shutdown(int timeout_ms);
/* CLOCK_REALTIME in nanoseconds, the clock spans use. */
SPANRING_API uint64_t spanring_now_ns(void);

/* Counters of this process (all slots). */
typedef struct spanring_stats {
	uint64_t spans;           /* spans committed to the ring */
	uint64_t drop_full;       /* dropped: ring full */
	uint64_t drop_oversize;   /* dropped: larger than the record limit */
	uint64_t drop_encode;     /* dropped: other encoding failures */
	uint64_t unsampled;       /* spans not sampled */
	uint64_t dropped_attrs;   /* attributes dropped by limits or validation */
	uint64_t slots_shared;    /* threads that had to share a slot */
	bool registered;          /* the agent has the ring */
} spanring_stats;
SPANRING_API int spanring_get_stats(spanring_stats *out);


/*
 * Inline front ends. With GCC or clang the string setters, and the scalar
 * setters' keys, go through spanring_span_put_*() with the lengths
 * measured at the call site; for string literals the compiler measures
 * them, which saves the library a strlen() per string. The behaviour and
 * return codes are those of the functions above, which stay exported
 * (for function pointers and other compilers). Define SPANRING_NO_INLINE
 * before including this header to call them directly.
 */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(SPANRING_NO_INLINE) && \
	!defined(SPANRING_IMPL)
#define SPANRING__INLINE static inline __attribute__((always_inline, unused))
SPANRING__INLINE size_t spanring__len(const char *s)
{
	return s ? __builtin_strlen(s) : 0;
}
SPANRING__INLINE int spanring__set_str(spanring_span *s, const char *k, const char *v, unsigned f)
{
	return spanring_span_put_str(s, k, spanring__len(k), v, spanring__len(v), f);
}
SPANRING__INLINE int spanring__set_int(spanring_span *s, const char *k, int64_t v, unsigned f)
{
	return spanring_span_put_int(s, k, spanring__len(k), v, f);
}
SPANRING__INLINE int spanring__set_bool(spanring_span *s, const char *k, bool v, unsigned f)
{
	return spanring_span_put_bool(s, k, spanring__len(k), v, f);
}
SPANRING__INLINE int spanring__set_double(spanring_span *s, const char *k, double v, unsigned f)
{
	return spanring_span_put_double(s, k, spanring__len(k), v, f);
}
#define spanring_span_set_str(s, k, v) spanring__set_str((s), (k), (v), 0)
#define spanring_span_set_str_ref(s, k, v) spanring__set_str((s), (k), (v), SPANRING_BORROW)
#define spanring_span_set_int(s, k, v) spanring__set_int((s), (k), (v), 0)
#define spanring_span_set_int_ref(s, k, v) spanring__set_int((s), (k), (v), SPANRING_BORROW)
#define spanring_span_set_bool(s, k, v) spanring__set_bool((s), (k), (v), 0)
#define spanring_span_set_bool_ref(s, k, v) spanring__set_bool((s), (k), (v), SPANRING_BORROW)
#define spanring_span_set_double(s, k, v) spanring__set_double((s), (k), (v), 0)
#define spanring_span_set_double_ref(s, k, v) spanring__set_double((s), (k), (v), SPANRING_BORROW)
#endif

#ifdef __cplusplus
}
#endif
#endif /* SPANRING_H */
