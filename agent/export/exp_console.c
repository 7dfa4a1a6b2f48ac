/* SPDX-License-Identifier: MIT */
/*
 * Console exporter: one human-readable line per span. It decodes spans,
 * so it copies each segment out of the ring first; meant for people
 * watching a terminal, not for throughput. Every string a producer chose
 * is escaped (strings in JSON form, names as sbuf_term_str), so that
 * control sequences never reach the terminal.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pbcheck.h"
#include "batch.h"
#include "config.h"
#include "exporter.h"
#include "log.h"
#include "otlp_trace.pb-c.h"
#include "outfile.h"
#include "pbwire.h"
#include "sbuf.h"

typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

struct exp_console {
	struct exporter e;
	struct outfile out;
	uint8_t *buf;
	size_t cap;
	struct sbuf line;
};

static const char *const kind_names[] = {"UNSPECIFIED", "INTERNAL", "SERVER",
					 "CLIENT",	"PRODUCER", "CONSUMER"};

static void console_value(struct sbuf *s, const AnyValue *v)
{
	if (!v) {
		sbuf_puts(s, "null");
		return;
	}
	switch (v->value_case) {
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
		sbuf_json_str(s, v->string_value, strlen(v->string_value));
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
		sbuf_puts(s, v->bool_value ? "true" : "false");
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
		sbuf_printf(s, "%" PRId64, v->int_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
		sbuf_printf(s, "%g", v->double_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
		sbuf_puts(s, "0x");
		sbuf_hex(s, v->bytes_value.data, v->bytes_value.len);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
		sbuf_putc(s, '[');
		for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++) {
			if (i)
				sbuf_putc(s, ',');
			console_value(s, v->array_value->values[i]);
		}
		sbuf_putc(s, ']');
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
		sbuf_puts(s, "{...}");
		break;
	default:
		sbuf_puts(s, "null");
		break;
	}
}

static void console_span(struct sbuf *s, const struct exp_producer_id *p, const Span *sp)
{
	time_t sec = (time_t)(sp->start_time_unix_nano / 1000000000ull);
	struct tm tm;
	gmtime_r(&sec, &tm);
	sbuf_printf(s, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ ", tm.tm_year + 1900, tm.tm_mon + 1,
		    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		    (unsigned)(sp->start_time_unix_nano % 1000000000ull / 1000));
	/* Producer-chosen text: escaped for the terminal (log.h). */
	if (p->service[0])
		sbuf_term_str(s, p->service, strlen(p->service));
	else
		sbuf_putc(s, '?');
	sbuf_printf(s, "[%d] ", (int)p->pid);
	uint64_t dur = sp->end_time_unix_nano >= sp->start_time_unix_nano
			       ? sp->end_time_unix_nano - sp->start_time_unix_nano
			       : 0;
	sbuf_printf(s, "%.3fms %s ", (double)dur / 1e6,
		    sp->kind >= 0 && (size_t)sp->kind < 6 ? kind_names[sp->kind] : "?");
	sbuf_json_str(s, sp->name ? sp->name : "", sp->name ? strlen(sp->name) : 0);
	sbuf_puts(s, " trace=");
	sbuf_hex(s, sp->trace_id.data, sp->trace_id.len);
	sbuf_puts(s, " span=");
	sbuf_hex(s, sp->span_id.data, sp->span_id.len);
	sbuf_puts(s, " parent=");
	if (sp->parent_span_id.len)
		sbuf_hex(s, sp->parent_span_id.data, sp->parent_span_id.len);
	else
		sbuf_putc(s, '-');
	if (sp->status && sp->status->code) {
		sbuf_printf(s, " status=%s", sp->status->code == 2 ? "ERROR" : "OK");
		if (sp->status->message && *sp->status->message) {
			sbuf_putc(s, ':');
			sbuf_json_str(s, sp->status->message, strlen(sp->status->message));
		}
	}
	for (size_t i = 0; i < sp->n_attributes; i++) {
		sbuf_putc(s, ' ');
		const char *k = sp->attributes[i]->key ? sp->attributes[i]->key : "";
		sbuf_term_str(s, k, strlen(k));
		sbuf_putc(s, '=');
		console_value(s, sp->attributes[i]->value);
	}
	if (sp->n_events)
		sbuf_printf(s, " events=%zu", sp->n_events);
	if (sp->n_links)
		sbuf_printf(s, " links=%zu", sp->n_links);
	sbuf_putc(s, '\n');
}

static int console_submit(struct exporter *e, struct batch *b)
{
	struct exp_console *c = container_of(e, struct exp_console, e);
	sbuf_reset(&c->line);
	uint64_t bad = 0;
	for (size_t i = 0; i < b->nsegs; i++) {
		const struct batch_seg *sg = &b->segs[i];
		struct exp_producer_id who = e->host->producer_id(sg->p);
		if (sg->len > c->cap) {
			uint8_t *n = realloc(c->buf, sg->len);
			if (!n)
				return -ENOMEM;
			c->buf = n;
			c->cap = sg->len;
		}
		/* Decode a private copy, never memory the producer can change. */
		memcpy(c->buf, sg->ptr, sg->len);
		const uint8_t *q = c->buf, *end = c->buf + sg->len;
		while (q < end) {
			uint32_t field, wt;
			const uint8_t *payload, *next;
			uint64_t v;
			if (pb_next_field(q, end, &field, &wt, &payload, &next, &v)) {
				bad++;
				break;
			}
			Span *sp = (void *)sr_pb_unpack(&opentelemetry__proto__trace__v1__span__descriptor, payload, (size_t)v);
			if (sp) {
				console_span(&c->line, &who, sp);
				opentelemetry__proto__trace__v1__span__free_unpacked(sp, NULL);
			} else {
				bad++;
			}
			q = next;
		}
	}
	if (bad)
		AGENT_LOG_RL_OF(&c->out.log_rl, AGENT_LOG_WARN, "exporter %s: %llu spans do not decode",
				e->name, (unsigned long long)bad);
	if (c->line.oom)
		return -ENOMEM;
	struct iovec v = {.iov_base = c->line.p, .iov_len = c->line.len};
	int err = c->line.len ? outfile_write(&c->out, &v, 1, c->line.len) : 0;
	if (err) {
		e->st.failures++;
		e->st.let_go_batches++;
		e->st.let_go_spans += b->spans;
		AGENT_LOG_RL_OF(&c->out.log_rl, AGENT_LOG_WARN,
				"exporter %s: write to %s: %s; %llu spans let go", e->name,
				c->out.is_stdout ? "standard output" : c->out.path, strerror(-err),
			     (unsigned long long)b->spans);
		return err;
	}
	e->st.batches++;
	e->st.spans += b->spans;
	e->st.bytes += c->line.len;
	return 0;
}

static size_t console_flush(struct exporter *e, uint64_t deadline_ns)
{
	(void)e;
	(void)deadline_ns;
	return 0;
}

static int console_reopen(struct exporter *e)
{
	return outfile_reopen(&container_of(e, struct exp_console, e)->out);
}

static void console_destroy(struct exporter *e)
{
	struct exp_console *c = container_of(e, struct exp_console, e);
	outfile_close(&c->out);
	free(c->buf);
	sbuf_free(&c->line);
	free(c);
}

static const struct exporter_ops console_ops = {
	.kind = "console",
	.submit = console_submit,
	.flush = console_flush,
	.reopen = console_reopen,
	.destroy = console_destroy,
};

int exp_console_create(const struct exp_host *host, const char *path, uint32_t mode,
		       struct exporter **out)
{
	struct exp_console *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->e.ops = &console_ops;
	c->e.host = host;
	snprintf(c->e.name, sizeof(c->e.name), "console");
	int err = outfile_open(&c->out, "exporter console", path, 0, 0,
			       mode ? mode : AGENT_OUTPUT_MODE_DEFAULT, NULL, host->err, host->errlen);
	if (err) {
		free(c);
		return err;
	}
	*out = &c->e;
	return 0;
}

int exp_console_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			    const char *name, struct exporter **out)
{
	return exp_console_create(host, cfg->console_path, cfg->output_mode, out);
}
