/* SPDX-License-Identifier: MIT */
#include "spanwalk.h"

#include "pbwire.h"

bool pb_each_field(const uint8_t *p, const uint8_t *end, pb_field_fn fn, void *arg)
{
	while (p < end) {
		uint32_t field, wt;
		const uint8_t *payload, *next;
		uint64_t v;
		if (pb_next_field(p, end, &field, &wt, &payload, &next, &v) ||
		    !fn(field, wt, payload, next, v, arg))
			return false;
		p = next;
	}
	return true;
}

/* The field numbers down to the spans, and the caller's function. */
static const uint32_t span_path[] = {1, 2, 2, 0}; /* resource_spans, scope_spans, spans */

struct walk {
	const uint32_t *path;
	bool (*fn)(const uint8_t *p, const uint8_t *end, void *arg);
	void *arg;
};

static bool path_field(uint32_t field, uint32_t wt, const uint8_t *p, const uint8_t *end,
		       uint64_t v, void *arg)
{
	const struct walk *w = arg;
	(void)v;
	if (field != w->path[0] || wt != SPANRING_WT_LEN)
		return true;
	if (!w->path[1])
		return w->fn(p, end, w->arg);
	struct walk in = {w->path + 1, w->fn, w->arg};
	return pb_each_field(p, end, path_field, &in);
}

bool otlp_each_span(const uint8_t *p, const uint8_t *end,
		    bool (*fn)(const uint8_t *p, const uint8_t *end, void *arg), void *arg)
{
	struct walk w = {span_path, fn, arg};
	return pb_each_field(p, end, path_field, &w);
}
