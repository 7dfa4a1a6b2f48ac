/* SPDX-License-Identifier: MIT */
/*
 * The spanring API of a program running under the shim.
 *
 * The shim exports every spanring_* function. The dynamic linker looks
 * symbols up in the executable, then in LD_PRELOAD libraries, then in the
 * program's own libraries, so a program linked against libspanring-api
 * (the no-op stub) or libspanring calls these, and all the spans of the
 * process go through one producer and one ring. Most functions are the
 * library's own; the ones below differ:
 *
 *  - spanring_span_start*, spanring_span_emit: a span without an explicit
 *    parent, in a thread with no current span, becomes a child of the
 *    process span (or, with SPANRING_TRACE without "process", of the
 *    TRACEPARENT the process was given) instead of a new trace.
 *    spanring_span_start_ref then copies the name.
 *  - spanring_current_context: the process span when the thread has no
 *    current span, so that a program propagating "the current context"
 *    stays in the trace.
 *  - spanring_shutdown: waits for the agent, but leaves the ring open:
 *    the shim still has the process span to end.
 *  - every call runs with pl_busy set: what the library does inside
 *    (a first ring, a registration) is never traced itself.
 */
#include <errno.h>

#include "client.h"
#include "preload.h"

/* Parent for a span the program gave no parent: NULL to let the library
 * use the thread's current span (or start a trace). */
static const spanring_span_context *implicit_parent(void)
{
	if (!pl.active || spanring_current_span())
		return NULL;
	return pl_default_parent();
}

PL_EXPORT spanring_span *spanring_span_start(spanring_tracer *t, const char *name,
					     spanring_kind kind)
{
	pl_busy++;
	spanring_span *s;
	const spanring_span_context *p = implicit_parent();
	if (p) {
		spanring_span_opts o = {.kind = kind, .parent = p};
		s = sr_lib_span_start_ex(t, name, &o);
	} else {
		s = sr_lib_span_start(t, name, kind);
	}
	pl_busy--;
	return s;
}

PL_EXPORT spanring_span *spanring_span_start_ref(spanring_tracer *t, const char *name,
						 spanring_kind kind)
{
	pl_busy++;
	spanring_span *s;
	const spanring_span_context *p = implicit_parent();
	if (p) {
		spanring_span_opts o = {.kind = kind, .parent = p};
		s = sr_lib_span_start_ex(t, name, &o);
	} else {
		s = sr_lib_span_start_ref(t, name, kind);
	}
	pl_busy--;
	return s;
}

PL_EXPORT spanring_span *spanring_span_start_ex(spanring_tracer *t, const char *name,
						const spanring_span_opts *opts)
{
	pl_busy++;
	spanring_span *s;
	const spanring_span_context *p =
		(!opts || (!opts->parent && !opts->root)) ? implicit_parent() : NULL;
	if (p) {
		spanring_span_opts o = opts ? *opts : (spanring_span_opts){0};
		o.parent = p;
		s = sr_lib_span_start_ex(t, name, &o);
	} else {
		s = sr_lib_span_start_ex(t, name, opts);
	}
	pl_busy--;
	return s;
}

PL_EXPORT int spanring_span_emit(spanring_tracer *t, const spanring_span_data *d)
{
	pl_busy++;
	int r;
	const spanring_span_context *p = d && !d->parent && !d->root ? implicit_parent() : NULL;
	if (p) {
		spanring_span_data c = *d;
		c.parent = p;
		r = sr_lib_span_emit(t, &c);
	} else {
		r = sr_lib_span_emit(t, d);
	}
	pl_busy--;
	return r;
}

PL_EXPORT int spanring_span_end(spanring_span *s)
{
	pl_busy++;
	int r = sr_lib_span_end(s);
	pl_busy--;
	return r;
}

PL_EXPORT int spanring_span_end_at(spanring_span *s, uint64_t end_ns)
{
	pl_busy++;
	int r = sr_lib_span_end_at(s, end_ns);
	pl_busy--;
	return r;
}

PL_EXPORT int spanring_current_context(spanring_span_context *out)
{
	pl_busy++;
	int r = sr_lib_current_context(out);
	if (r == -ENOENT && out) {
		const spanring_span_context *p = pl_default_parent();
		if (p) {
			*out = *p;
			r = 0;
		}
	}
	pl_busy--;
	return r;
}

PL_EXPORT int spanring_shutdown(int timeout_ms)
{
	if (!pl.active || !(pl.cfg.trace & PL_T_PROCESS))
		return sr_lib_shutdown(timeout_ms);
	pl_busy++;
	/* Acquire: pairs with the store in sr_proc_init() (producer.c). */
	int r = sr_load_int(&sr_g.state) == SR_PROC_ACTIVE ? sr_client_flush(timeout_ms) : -ENOTCONN;
	pl_busy--;
	return r;
}
