/* SPDX-License-Identifier: MIT */
/*
 * libspanring-api.so.0: the whole spanring.h API, doing nothing.
 *
 * A program that links against this library (-lspanring-api, or
 * `pkg-config --libs spanring-api`) instead of libspanring runs untraced
 * at the cost of a call that returns at once, and runs traced, with no
 * rebuild, when libspanring-preload.so is preloaded: the dynamic linker
 * searches LD_PRELOAD objects before the program's libraries, so every
 * spanring_* call then binds to the shim, which is the full producer. The
 * symbols carry the same version (SPANRING_0.1, lib/libspanring.map) as
 * libspanring's, so either library satisfies a program built against the
 * other.
 *
 * Behaviour is that of libspanring with OTEL_SDK_DISABLED=true: spans are
 * non-recording with an all-zero context, setters return 0, NULL
 * arguments -EINVAL. The W3C trace-context helpers are real (lib/w3c.c is
 * linked in), since a program may propagate context without tracing.
 */
/* This file defines the setters that spanring.h otherwise wraps inline. */
#define SPANRING_IMPL
#include <errno.h>
#include <string.h>
#include <time.h>

#include "spanring/spanring.h"

struct spanring_span {
	int unused;
};
struct spanring_tracer {
	int unused;
};

static struct spanring_span noop_span;
static struct spanring_tracer noop_tracer;

spanring_tracer *spanring_tracer_get(const char *name, const char *version,
				     const char *schema_url)
{
	(void)name, (void)version, (void)schema_url;
	return &noop_tracer;
}

spanring_tracer *spanring_tracer_get_ex(const char *name, const char *version,
					const char *schema_url, const spanring_attr *attrs,
					size_t n_attrs)
{
	(void)name, (void)version, (void)schema_url;
	if (n_attrs && !attrs) {
		errno = EINVAL;
		return NULL;
	}
	return &noop_tracer;
}

spanring_span *spanring_span_start(spanring_tracer *t, const char *name, spanring_kind kind)
{
	(void)t, (void)name, (void)kind;
	return &noop_span;
}

spanring_span *spanring_span_start_ref(spanring_tracer *t, const char *name, spanring_kind kind)
{
	(void)t, (void)name, (void)kind;
	return &noop_span;
}

spanring_span *spanring_span_start_ex(spanring_tracer *t, const char *name,
				      const spanring_span_opts *opts)
{
	(void)t, (void)name, (void)opts;
	return &noop_span;
}

int spanring_span_end(spanring_span *s)
{
	return s ? 0 : -EINVAL;
}

int spanring_span_end_at(spanring_span *s, uint64_t end_ns)
{
	(void)end_ns;
	return s ? 0 : -EINVAL;
}

bool spanring_span_is_recording(const spanring_span *s)
{
	(void)s;
	return false;
}

int spanring_span_get_context(const spanring_span *s, spanring_span_context *out)
{
	if (!s || !out)
		return -EINVAL;
	memset(out, 0, offsetof(spanring_span_context, trace_state) + 1);
	return 0;
}

int spanring_span_update_name(spanring_span *s, const char *name)
{
	(void)name;
	return s ? 0 : -EINVAL;
}

int spanring_span_set_status(spanring_span *s, spanring_status_code code, const char *message)
{
	(void)code, (void)message;
	return s ? 0 : -EINVAL;
}

int spanring_span_set_trace_state(spanring_span *s, const char *tracestate)
{
	(void)tracestate;
	return s ? 0 : -EINVAL;
}

int spanring_span_set_attr(spanring_span *s, const spanring_attr *a)
{
	return s && a ? 0 : -EINVAL;
}

int spanring_span_set_attr_ref(spanring_span *s, const spanring_attr *a)
{
	return s && a ? 0 : -EINVAL;
}

int spanring_span_set_str(spanring_span *s, const char *key, const char *value)
{
	(void)key, (void)value;
	return s ? 0 : -EINVAL;
}

int spanring_span_set_strn(spanring_span *s, const char *key, const char *value, size_t len)
{
	(void)key, (void)value, (void)len;
	return s ? 0 : -EINVAL;
}

int spanring_span_set_int(spanring_span *s, const char *key, int64_t value)
{
	(void)key, (void)value;
	return s ? 0 : -EINVAL;
}

int spanring_span_set_bool(spanring_span *s, const char *key, bool value)
{
	(void)key, (void)value;
	return s ? 0 : -EINVAL;
}

int spanring_span_set_double(spanring_span *s, const char *key, double value)
{
	(void)key, (void)value;
	return s ? 0 : -EINVAL;
}

int spanring_span_set_bytes(spanring_span *s, const char *key, const void *value, size_t len)
{
	(void)key, (void)value, (void)len;
	return s ? 0 : -EINVAL;
}

int spanring_span_set_str_ref(spanring_span *s, const char *key, const char *value)
{
	(void)key, (void)value;
	return s ? 0 : -EINVAL;
}

int spanring_span_set_int_ref(spanring_span *s, const char *key, int64_t value)
{
	(void)key, (void)value;
	return s ? 0 : -EINVAL;
}

int spanring_span_set_bool_ref(spanring_span *s, const char *key, bool value)
{
	(void)key, (void)value;
	return s ? 0 : -EINVAL;
}

int spanring_span_set_double_ref(spanring_span *s, const char *key, double value)
{
	(void)key, (void)value;
	return s ? 0 : -EINVAL;
}

int spanring_span_add_event(spanring_span *s, const char *name, const spanring_attr *attrs,
			    size_t n_attrs)
{
	(void)name, (void)attrs, (void)n_attrs;
	return s ? 0 : -EINVAL;
}

int spanring_span_add_event_at(spanring_span *s, const char *name, uint64_t time_ns,
			       const spanring_attr *attrs, size_t n_attrs)
{
	(void)name, (void)time_ns, (void)attrs, (void)n_attrs;
	return s ? 0 : -EINVAL;
}

int spanring_span_record_exception(spanring_span *s, const char *type, const char *message,
				   const char *stacktrace)
{
	(void)stacktrace;
	if (!type && !message)
		return -EINVAL;
	return s ? 0 : -EINVAL;
}

int spanring_span_add_link(spanring_span *s, const spanring_span_context *ctx,
			   const spanring_attr *attrs, size_t n_attrs)
{
	(void)ctx, (void)attrs, (void)n_attrs;
	return s ? 0 : -EINVAL;
}

spanring_span *spanring_current_span(void)
{
	return NULL;
}

int spanring_current_context(spanring_span_context *out)
{
	return out ? -ENOENT : -EINVAL;
}

int spanring_span_emit(spanring_tracer *t, const spanring_span_data *d)
{
	(void)t;
	if (!d || (d->n_attrs && !d->attrs))
		return -EINVAL;
	if (d->out_ctx)
		memset(d->out_ctx, 0, offsetof(spanring_span_context, trace_state) + 1);
	return 0;
}

int spanring_init(void)
{
	return -ECANCELED;
}

int spanring_shutdown(int timeout_ms)
{
	(void)timeout_ms;
	return -ENOTCONN;
}

uint64_t spanring_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int spanring_get_stats(spanring_stats *out)
{
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	return 0;
}
