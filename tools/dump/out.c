/* SPDX-License-Identifier: MIT */
/*
 * The span sink of spanring-dump: filters, then one of three forms.
 *
 *   lines      one aligned line per span (time, service, short ids,
 *              duration, kind, name, status, key attributes)
 *   json       one line per span, each a complete ExportTraceServiceRequest
 *              (its Resource, its scope, the one span) in the OTLP/JSON
 *              mapping, written by the encoder the agent uses (lib/common/otlp_json.c)
 *   waterfall  spans kept until the end, then per trace an indented tree
 *              with duration bars scaled to the terminal width
 *
 * Every string printed in the human forms comes from untrusted bytes:
 * control characters and invalid UTF-8 are escaped so that a producer
 * cannot drive the terminal.
 */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"
#include "dump.h"
#include "otlp_json.h"
#include "sbuf.h"

/* ---- helpers --------------------------------------------------------------- */

int dump_term_width(int fd)
{
	struct winsize ws;
	if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	if (c && *c) {
		char *end;
		long v = strtol(c, &end, 10);
		if (!*end && v >= 20 && v <= 10000)
			return (int)v;
	}
	return 100;
}

int dump_parse_duration(const char *s, uint64_t *ns)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !(v >= 0) || v > 1e12)
		return -1;
	double mul;
	if (!*end)
		mul = v == 0 ? 1 : -1; /* a unit is required, except for 0 */
	else if (strcmp(end, "ns") == 0)
		mul = 1;
	else if (strcmp(end, "us") == 0 || strcmp(end, "\xc2\xb5s") == 0)
		mul = 1e3;
	else if (strcmp(end, "ms") == 0)
		mul = 1e6;
	else if (strcmp(end, "s") == 0)
		mul = 1e9;
	else if (strcmp(end, "m") == 0)
		mul = 60e9;
	else if (strcmp(end, "h") == 0)
		mul = 3600e9;
	else
		return -1;
	if (mul < 0 || v * mul > 1.8e19)
		return -1;
	*ns = (uint64_t)llround(v * mul);
	return 0;
}

int dump_parse_trace(const char *s, struct dump_filter *f)
{
	size_t n = strlen(s);
	if (n < 1 || n > 32)
		return -1;
	memset(f->trace, 0, sizeof(f->trace));
	for (size_t i = 0; i < n; i++) {
		int h = sr_hexval(s[i]);
		if (h < 0)
			return -1;
		f->trace[i / 2] |= (uint8_t)(i % 2 ? h : h << 4);
	}
	f->trace_len = n;
	return 0;
}

static bool trace_match(const struct dump_filter *f, const ProtobufCBinaryData *id)
{
	if (!f->trace_len)
		return true;
	if (id->len * 2 < f->trace_len)
		return false;
	for (size_t i = 0; i < f->trace_len; i++) {
		unsigned a = i % 2 ? f->trace[i / 2] & 15 : f->trace[i / 2] >> 4;
		unsigned b = i % 2 ? id->data[i / 2] & 15 : id->data[i / 2] >> 4;
		if (a != b)
			return false;
	}
	return true;
}

static uint64_t span_dur(const dump_span_t *s)
{
	return s->end_time_unix_nano > s->start_time_unix_nano
		       ? s->end_time_unix_nano - s->start_time_unix_nano
		       : 0;
}

bool dump_filter_match(const struct dump_filter *f, const char *service, const dump_span_t *s)
{
	if (f->service && fnmatch(f->service, service ? service : "", 0) != 0)
		return false;
	if (f->name && !strstr(s->name ? s->name : "", f->name))
		return false;
	if (!trace_match(f, &s->trace_id))
		return false;
	if (f->min_ns && span_dur(s) < f->min_ns)
		return false;
	return true;
}

void dump_fmt_duration(uint64_t ns, char *out, size_t n)
{
	if (ns < 1000)
		snprintf(out, n, "%" PRIu64 "ns", ns);
	else if (ns < 1000000)
		snprintf(out, n, "%.1fus", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(out, n, "%.3fms", (double)ns / 1e6);
	else if (ns < 100000000000ull)
		snprintf(out, n, "%.3fs", (double)ns / 1e9);
	else
		snprintf(out, n, "%.0fs", (double)ns / 1e9);
}

const char *dump_service_name(const dump_resource_t *r)
{
	for (size_t i = 0; r && i < r->n_attributes; i++) {
		const dump_kv_t *kv = r->attributes[i];
		if (kv && kv->key && strcmp(kv->key, "service.name") == 0 && kv->value &&
		    kv->value->value_case ==
			    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
			return kv->value->string_value;
	}
	return NULL;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t u8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t k;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		k = 2, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		k = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 4, min = 0x10000;
	else
		return 0;
	if (n < k)
		return 0;
	unsigned cp = c & (0x7f >> k);
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000) ||
	    (cp >= 0x80 && cp < 0xa0))
		return 0; /* overlong, surrogate, out of range, C1 control */
	return k;
}

/*
 * Append s to b as safe terminal text, at most maxw columns (0: no limit;
 * one column per character, an approximation). Returns the columns used.
 * Truncation ends in '~'. With pad, pads with spaces to maxw.
 */
static int put_safe(struct sbuf *b, const char *str, int maxw, bool pad)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	size_t n = strlen((const char *)s);
	int w = 0;
	for (size_t i = 0; i < n;) {
		char esc[8];
		const char *piece;
		size_t plen;
		int pw;
		size_t k = u8_len(s + i, n - i);
		if (k == 1 && s[i] >= 0x20 && s[i] != 0x7f) {
			piece = (const char *)s + i;
			plen = 1;
			pw = 1;
		} else if (k > 1) {
			piece = (const char *)s + i;
			plen = k;
			pw = 1;
		} else {
			if (s[i] == '\n')
				snprintf(esc, sizeof(esc), "\\n");
			else if (s[i] == '\t')
				snprintf(esc, sizeof(esc), "\\t");
			else
				snprintf(esc, sizeof(esc), "\\x%02x", s[i]);
			piece = esc;
			plen = strlen(esc);
			pw = (int)plen;
			k = 1;
		}
		if (maxw && w + pw > maxw - (i + k < n ? 1 : 0)) {
			if (maxw - w >= 1) {
				sbuf_putc(b, '~');
				w++;
			}
			break;
		}
		sbuf_put(b, piece, plen);
		w += pw;
		i += k;
	}
	while (pad && w < maxw) {
		sbuf_putc(b, ' ');
		w++;
	}
	return w;
}

static void put_hex(struct sbuf *b, const ProtobufCBinaryData *d, size_t maxbytes)
{
	size_t n = d->len < maxbytes ? d->len : maxbytes;
	if (!n) {
		sbuf_putc(b, '-');
		for (size_t i = 1; i < maxbytes * 2; i++)
			sbuf_putc(b, ' ');
		return;
	}
	sbuf_hex(b, d->data, n);
	for (size_t i = n * 2; i < maxbytes * 2; i++)
		sbuf_putc(b, ' ');
}

static const char *kind_name(int k)
{
	static const char *names[] = {"-", "internal", "server", "client", "producer", "consumer"};
	return k >= 0 && k <= 5 ? names[k] : "?";
}

static void put_time(struct sbuf *b, uint64_t ns, bool utc, bool date)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;
	if (!ns || !(utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm))) {
		sbuf_puts(b, date ? "-                      " : "-           ");
		return;
	}
	char buf[40];
	strftime(buf, sizeof(buf), date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm);
	sbuf_printf(b, "%s.%03u", buf, (unsigned)(ns / 1000000ull % 1000));
}

/* Value of an attribute, safe and shortened. */
static void put_any(struct sbuf *b, const dump_any_t *v, int maxw, int depth)
{
	if (!v) {
		sbuf_puts(b, "null");
		return;
	}
	switch (v->value_case) {
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: {
		const char *s = v->string_value ? v->string_value : "";
		bool quote = !*s || strpbrk(s, " \"=") != NULL;
		if (quote)
			sbuf_putc(b, '"');
		put_safe(b, s, maxw, false);
		if (quote)
			sbuf_putc(b, '"');
		break;
	}
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
		sbuf_puts(b, v->bool_value ? "true" : "false");
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
		sbuf_printf(b, "%" PRId64, v->int_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
		sbuf_printf(b, "%g", v->double_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
		sbuf_printf(b, "<%zu bytes>", v->bytes_value.len);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
		const Opentelemetry__Proto__Common__V1__ArrayValue *a = v->array_value;
		sbuf_putc(b, '[');
		for (size_t i = 0; a && i < a->n_values; i++) {
			if (i)
				sbuf_putc(b, ',');
			if (i >= 8 || depth > 3) {
				sbuf_puts(b, "...");
				break;
			}
			put_any(b, a->values[i], maxw ? maxw / 2 : 0, depth + 1);
		}
		sbuf_putc(b, ']');
		break;
	}
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
		const Opentelemetry__Proto__Common__V1__KeyValueList *l = v->kvlist_value;
		sbuf_putc(b, '{');
		for (size_t i = 0; l && i < l->n_values; i++) {
			if (i)
				sbuf_putc(b, ',');
			if (i >= 8 || depth > 3) {
				sbuf_puts(b, "...");
				break;
			}
			put_safe(b, l->values[i]->key, 32, false);
			sbuf_putc(b, '=');
			put_any(b, l->values[i]->value, maxw ? maxw / 2 : 0, depth + 1);
		}
		sbuf_putc(b, '}');
		break;
	}
	default:
		sbuf_puts(b, "null");
	}
}

static void put_attrs(struct sbuf *b, dump_kv_t *const *kv, size_t n, bool verbose)
{
	size_t lim = verbose ? n : (n < 6 ? n : 6);
	for (size_t i = 0; i < lim; i++) {
		sbuf_putc(b, ' ');
		put_safe(b, kv[i]->key, verbose ? 0 : 40, false);
		sbuf_putc(b, '=');
		put_any(b, kv[i]->value, verbose ? 0 : 48, 0);
	}
	if (lim < n)
		sbuf_printf(b, " (+%zu)", n - lim);
}

/* ---- the sink ------------------------------------------------------------------ */

struct wf_span {
	uint8_t trace[16], span[8], parent[8];
	bool has_parent;
	uint64_t start, end;
	int kind, status;
	char *name, *service;
};

void dump_out_init(struct dump_out *o, FILE *f, enum dump_format fmt)
{
	memset(o, 0, sizeof(*o));
	o->f = f;
	o->fmt = fmt;
	o->width = 100;
	const char *lc = getenv("LC_ALL");
	if (!lc || !*lc)
		lc = getenv("LC_CTYPE");
	if (!lc || !*lc)
		lc = getenv("LANG");
	o->utf8 = lc && (strstr(lc, "UTF-8") || strstr(lc, "utf8") || strstr(lc, "UTF8") ||
			 strstr(lc, "utf-8"));
}

void dump_fputs_safe(FILE *f, const char *s)
{
	struct sbuf b = {0};
	put_safe(&b, s, 0, false);
	if (!b.oom && b.len)
		fwrite(b.p, 1, b.len, f);
	sbuf_free(&b);
}

void dump_note(struct dump_out *o, const char *fmt, ...)
{
	if (o->quiet)
		return;
	FILE *f = o->fmt == DUMP_FMT_JSON ? stderr : o->f;
	va_list ap;
	va_start(ap, fmt);
	fputs("-- ", f);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	va_end(ap);
	fflush(f);
}

/* --verbose: the full ids, scope, pid and slot, then one line per event
 * and per link. */
static void emit_line_details(struct sbuf *b, const struct dump_ctx *c, const dump_span_t *s)
{
	char dur[32];
	sbuf_puts(b, "    trace ");
	put_hex(b, &s->trace_id, 16);
	sbuf_puts(b, " span ");
	put_hex(b, &s->span_id, 8);
	sbuf_puts(b, " parent ");
	put_hex(b, &s->parent_span_id, 8);
	if (c->scope) {
		sbuf_puts(b, " scope ");
		put_safe(b, c->scope->name, 0, false);
		if (c->scope->version && *c->scope->version) {
			sbuf_putc(b, '@');
			put_safe(b, c->scope->version, 0, false);
		}
	}
	if (c->pid)
		sbuf_printf(b, " pid %d slot %d", (int)c->pid, c->slot);
	sbuf_putc(b, '\n');
	for (size_t i = 0; i < s->n_events; i++) {
		const Opentelemetry__Proto__Trace__V1__Span__Event *e = s->events[i];
		sbuf_puts(b, "    event +");
		dump_fmt_duration(e->time_unix_nano > s->start_time_unix_nano
					  ? e->time_unix_nano - s->start_time_unix_nano
					  : 0,
				  dur, sizeof(dur));
		sbuf_printf(b, "%s ", dur);
		put_safe(b, e->name, 0, false);
		put_attrs(b, e->attributes, e->n_attributes, true);
		sbuf_putc(b, '\n');
	}
	for (size_t i = 0; i < s->n_links; i++) {
		const Opentelemetry__Proto__Trace__V1__Span__Link *l = s->links[i];
		sbuf_puts(b, "    link trace ");
		put_hex(b, &l->trace_id, 16);
		sbuf_puts(b, " span ");
		put_hex(b, &l->span_id, 8);
		put_attrs(b, l->attributes, l->n_attributes, true);
		sbuf_putc(b, '\n');
	}
}

static void emit_line(struct dump_out *o, const struct dump_ctx *c, const dump_span_t *s)
{
	struct sbuf b = {0};
	if (!o->header_done) {
		o->header_done = true;
		sbuf_printf(&b, "%-*s  %-16s %-8s %-8s %10s  %-8s %s\n", o->verbose ? 23 : 12,
			    "TIME", "SERVICE", "TRACE", "SPAN", "DURATION", "KIND", "NAME  ATTRIBUTES");
	}
	char dur[32];
	put_time(&b, s->start_time_unix_nano, o->utc, o->verbose);
	sbuf_puts(&b, "  ");
	put_safe(&b, c->service, 16, true);
	sbuf_putc(&b, ' ');
	put_hex(&b, &s->trace_id, 4);
	sbuf_putc(&b, ' ');
	put_hex(&b, &s->span_id, 4);
	if (s->end_time_unix_nano >= s->start_time_unix_nano)
		dump_fmt_duration(span_dur(s), dur, sizeof(dur));
	else
		snprintf(dur, sizeof(dur), "-");
	sbuf_printf(&b, " %10s  %-8s ", dur, kind_name(s->kind));
	put_safe(&b, s->name, o->verbose ? 0 : 32, !o->verbose);
	if (s->status && s->status->code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR) {
		sbuf_puts(&b, " ERROR");
		if (s->status->message && *s->status->message) {
			sbuf_putc(&b, '(');
			put_safe(&b, s->status->message, 60, false);
			sbuf_putc(&b, ')');
		}
	}
	put_attrs(&b, s->attributes, s->n_attributes, o->verbose);
	if (!o->verbose && s->n_events)
		sbuf_printf(&b, " events=%zu", s->n_events);
	if (!o->verbose && s->n_links)
		sbuf_printf(&b, " links=%zu", s->n_links);
	sbuf_putc(&b, '\n');
	if (o->verbose)
		emit_line_details(&b, c, s);
	if (!b.oom)
		fwrite(b.p, 1, b.len, o->f);
	sbuf_free(&b);
}

static void emit_json(struct dump_out *o, const struct dump_ctx *c, const dump_span_t *s)
{
	Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
	Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
		OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	dump_request_t req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	/* Only pointers into the caller's structures: nothing here is freed. */
	dump_span_t *spans[1] = {(dump_span_t *)s};
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp[1] = {&ss};
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp[1] = {&rs};
	ss.scope = (dump_scope_t *)c->scope;
	ss.n_spans = 1;
	ss.spans = spans;
	if (c->scope_schema)
		ss.schema_url = (char *)c->scope_schema;
	rs.resource = (dump_resource_t *)c->resource;
	rs.n_scope_spans = 1;
	rs.scope_spans = ssp;
	if (c->resource_schema)
		rs.schema_url = (char *)c->resource_schema;
	req.n_resource_spans = 1;
	req.resource_spans = rsp;
	struct sbuf b = {0};
	otlp_json_message(&b, &req.base);
	sbuf_putc(&b, '\n');
	if (!b.oom)
		fwrite(b.p, 1, b.len, o->f);
	sbuf_free(&b);
}

static void keep_span(struct dump_out *o, const struct dump_ctx *c, const dump_span_t *s)
{
	if (o->n_wf == o->cap_wf) {
		size_t nc = o->cap_wf ? o->cap_wf * 2 : 64;
		struct wf_span *n = realloc(o->wf, nc * sizeof(*n));
		if (!n)
			return;
		o->wf = n;
		o->cap_wf = nc;
	}
	struct wf_span *w = &o->wf[o->n_wf];
	memset(w, 0, sizeof(*w));
	/* An absent id is (NULL, 0): memcpy must not see the NULL. */
	if (s->trace_id.len)
		memcpy(w->trace, s->trace_id.data, s->trace_id.len < 16 ? s->trace_id.len : 16);
	if (s->span_id.len)
		memcpy(w->span, s->span_id.data, s->span_id.len < 8 ? s->span_id.len : 8);
	if (s->parent_span_id.len) {
		w->has_parent = true;
		memcpy(w->parent, s->parent_span_id.data,
		       s->parent_span_id.len < 8 ? s->parent_span_id.len : 8);
	}
	w->start = s->start_time_unix_nano;
	w->end = s->end_time_unix_nano > s->start_time_unix_nano ? s->end_time_unix_nano : w->start;
	w->kind = s->kind;
	w->status = s->status ? s->status->code : 0;
	w->name = strdup(s->name ? s->name : "");
	w->service = strdup(c->service ? c->service : "");
	if (!w->name || !w->service) {
		free(w->name);
		free(w->service);
		return;
	}
	o->n_wf++;
}

void dump_emit(struct dump_out *o, const struct dump_ctx *c, const dump_span_t *s)
{
	if (o->quiet)
		return;
	/* --count N: a poll may read many spans at once; print N, not more. */
	if (o->limit && o->shown >= o->limit)
		return;
	o->seen++;
	if (!dump_filter_match(&o->flt, c->service, s))
		return;
	o->shown++;
	switch (o->fmt) {
	case DUMP_FMT_LINES:
		emit_line(o, c, s);
		break;
	case DUMP_FMT_JSON:
		emit_json(o, c, s);
		break;
	case DUMP_FMT_WATERFALL:
		keep_span(o, c, s);
		break;
	}
}

/* ---- waterfall --------------------------------------------------------------------- */

static int cmp_trace_start(const void *a, const void *b)
{
	const struct wf_span *x = a, *y = b;
	int c = memcmp(x->trace, y->trace, 16);
	if (c)
		return c;
	return x->start < y->start ? -1 : x->start > y->start;
}

struct wf_node {
	size_t span;        /* index into the trace's spans */
	size_t first_child; /* into kids[] */
	size_t n_children;
};

/* Sorted span-id index of one trace for parent lookups. */
struct wf_idx {
	const uint8_t *id;
	size_t i;
};

static int cmp_idx(const void *a, const void *b)
{
	const struct wf_idx *x = a, *y = b;
	int c = memcmp(x->id, y->id, 8);
	if (c)
		return c;
	return x->i < y->i ? -1 : x->i > y->i;
}

#define WF_MAX_INDENT 24

/* Status ERROR: marked with '!'. */
static bool wf_failed(const struct wf_span *s)
{
	return s->status == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
}

static void wf_bar(struct sbuf *b, const struct dump_out *o, const struct wf_span *s, uint64_t t0,
		   uint64_t total, int bw)
{
	double a = (double)(s->start - t0) / (double)total * bw;
	double e = (double)(s->end - t0) / (double)total * bw;
	int from = (int)floor(a), to = (int)ceil(e);
	if (from >= bw)
		from = bw - 1;
	if (from < 0)
		from = 0;
	if (to <= from)
		to = from + 1;
	if (to > bw)
		to = bw;
	sbuf_putc(b, '|');
	for (int i = 0; i < bw; i++) {
		if (i >= from && i < to)
			sbuf_puts(b, o->utf8 ? "\xe2\x96\x88" : (wf_failed(s) ? "!" : "#"));
		else
			sbuf_putc(b, ' ');
	}
	sbuf_putc(b, '|');
}

/* One trace's tree: each span's parent (SIZE_MAX for a root or an orphan)
 * and its children in start order, kids[first[i] ... first[i] + nkids[i]). */
struct wf_tree {
	size_t *parent, *kids, *nkids, *first;
};

/* Each span's parent, looked up by id in a sorted index. Returns the
 * number of roots, or SIZE_MAX without memory. */
static size_t wf_parents(const struct wf_span *sp, size_t n, size_t *parent)
{
	struct wf_idx *idx = calloc(n, sizeof(*idx));
	if (!idx)
		return SIZE_MAX;
	for (size_t i = 0; i < n; i++)
		idx[i] = (struct wf_idx){sp[i].span, i};
	qsort(idx, n, sizeof(*idx), cmp_idx);
	size_t roots = 0;
	for (size_t i = 0; i < n; i++) {
		parent[i] = SIZE_MAX;
		if (sp[i].has_parent) {
			struct wf_idx key = {sp[i].parent, 0};
			/* First span with that id (duplicates: the earliest index). */
			size_t lo = 0, hi = n;
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;
				if (memcmp(idx[mid].id, key.id, 8) < 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < n && memcmp(idx[lo].id, key.id, 8) == 0 && idx[lo].i != i)
				parent[i] = idx[lo].i;
		}
		if (parent[i] == SIZE_MAX)
			roots++;
	}
	free(idx);
	return roots;
}

/* Children lists in start order (sp is sorted by start): counting sort. */
static void wf_children(struct wf_tree *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (t->parent[i] != SIZE_MAX)
			t->nkids[t->parent[i]]++;
	size_t acc = 0;
	for (size_t i = 0; i < n; i++) {
		t->first[i] = acc;
		acc += t->nkids[i];
		t->nkids[i] = 0;
	}
	for (size_t i = 0; i < n; i++)
		if (t->parent[i] != SIZE_MAX) {
			size_t p = t->parent[i];
			t->kids[t->first[p] + t->nkids[p]++] = i;
		}
}

/* Where a trace's rows go: its time span, and the widths of the label
 * column (tree prefix + name, + service where it changes) and the bars.
 * Row: label, ' ', '|', bars, '|', ' ', status mark, duration (9). */
struct wf_geom {
	uint64_t t0, total;
	int label_w, bw;
};

/* The row of span i at depth d; last[k]: the ancestor at depth k is its
 * parent's last child (no more "|" below it). */
static void wf_row(struct sbuf *b, const struct dump_out *o, const struct wf_span *sp,
		   const size_t *parent, size_t i, int depth, const bool *last,
		   const struct wf_geom *g)
{
	const struct wf_span *s = &sp[i];
	struct sbuf lb = {0};
	int d = depth < WF_MAX_INDENT ? depth : WF_MAX_INDENT;
	for (int k = 1; k < d; k++)
		sbuf_puts(&lb, last[k] ? "   " : (o->utf8 ? "\xe2\x94\x82  " : "|  "));
	if (d >= 1)
		sbuf_puts(&lb, last[d] ? (o->utf8 ? "\xe2\x94\x94\xe2\x94\x80 " : "`- ")
				       : (o->utf8 ? "\xe2\x94\x9c\xe2\x94\x80 " : "|- "));
	int used = 3 * d;
	bool svc = parent[i] == SIZE_MAX || strcmp(sp[parent[i]].service, s->service) != 0;
	struct sbuf nm = {0};
	sbuf_puts(&nm, s->name);
	if (svc && *s->service) {
		sbuf_puts(&nm, " [");
		sbuf_puts(&nm, s->service);
		sbuf_putc(&nm, ']');
	}
	sbuf_putc(&nm, 0);
	if (!nm.oom && !lb.oom) {
		if (lb.len)
			sbuf_put(b, lb.p, lb.len);
		put_safe(b, nm.p, g->label_w - used > 4 ? g->label_w - used : 4, true);
	}
	sbuf_free(&nm);
	sbuf_free(&lb);
	sbuf_putc(b, ' ');
	wf_bar(b, o, s, g->t0, g->total, g->bw);
	char dur[32];
	dump_fmt_duration(s->end - s->start, dur, sizeof(dur));
	sbuf_printf(b, " %c%9s\n", wf_failed(s) ? '!' : ' ', dur);
}

struct wf_frame {
	size_t span, next;
	int depth;
};

/* Depth first from root r: each span's row once, children in start order. */
static void wf_walk(struct sbuf *b, const struct dump_out *o, const struct wf_span *sp,
		    const struct wf_tree *t, size_t r, bool *done, struct wf_frame *stack,
		    const struct wf_geom *g)
{
	bool last[WF_MAX_INDENT + 1];
	size_t top = 0;
	stack[top++] = (struct wf_frame){r, 0, 0};
	done[r] = true;
	while (top) {
		struct wf_frame *f = &stack[top - 1];
		if (f->next == 0) /* first visit */
			wf_row(b, o, sp, t->parent, f->span, f->depth, last, g);
		/* Next unvisited child. */
		size_t sidx = f->span;
		while (f->next < t->nkids[sidx] && done[t->kids[t->first[sidx] + f->next]])
			f->next++;
		if (f->next >= t->nkids[sidx]) {
			top--;
			continue;
		}
		size_t c = t->kids[t->first[sidx] + f->next++];
		/* Is c the last not-yet-printed child? */
		bool is_last = true;
		for (size_t k = f->next; k < t->nkids[sidx]; k++)
			if (!done[t->kids[t->first[sidx] + k]]) {
				is_last = false;
				break;
			}
		int cd = f->depth + 1;
		if (cd <= WF_MAX_INDENT)
			last[cd] = is_last;
		done[c] = true;
		stack[top++] = (struct wf_frame){c, 0, cd};
	}
}

static void wf_trace(struct dump_out *o, struct wf_span *sp, size_t n)
{
	struct wf_geom g = {.t0 = UINT64_MAX};
	uint64_t t1 = 0;
	for (size_t i = 0; i < n; i++) {
		if (sp[i].start < g.t0)
			g.t0 = sp[i].start;
		if (sp[i].end > t1)
			t1 = sp[i].end;
	}
	g.total = t1 > g.t0 ? t1 - g.t0 : 1;

	struct wf_tree t = {
		.parent = calloc(n, sizeof(size_t)),
		.kids = calloc(n, sizeof(size_t)),
		.nkids = calloc(n + 1, sizeof(size_t)),
		.first = calloc(n + 1, sizeof(size_t)),
	};
	bool *done = calloc(n, sizeof(*done));
	struct wf_frame *stack = calloc(n + 1, sizeof(*stack));
	struct sbuf b = {0};
	size_t roots = SIZE_MAX;
	if (t.parent && t.kids && t.nkids && t.first && done && stack)
		roots = wf_parents(sp, n, t.parent);
	if (roots == SIZE_MAX)
		goto out;
	wf_children(&t, n);

	char dur[32];
	dump_fmt_duration(g.total, dur, sizeof(dur));
	sbuf_puts(&b, "trace ");
	sbuf_hex(&b, sp[0].trace, 16);
	sbuf_printf(&b, "  %zu span%s, %s, from ", n, n == 1 ? "" : "s", dur);
	put_time(&b, g.t0, o->utc, true);
	if (roots > 1)
		sbuf_printf(&b, "  (%zu roots: parents not seen)", roots);
	sbuf_putc(&b, '\n');

	int width = o->width < 40 ? 40 : o->width;
	g.label_w = width * 45 / 100;
	g.bw = width - g.label_w - 14;
	/* Roots in start order, then whatever a cycle kept unreached. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t r = 0; r < n; r++)
			if (!done[r] && (pass == 1 || t.parent[r] == SIZE_MAX))
				wf_walk(&b, o, sp, &t, r, done, stack, &g);
	if (!b.oom)
		fwrite(b.p, 1, b.len, o->f);
out:
	sbuf_free(&b);
	free(t.parent);
	free(t.kids);
	free(t.nkids);
	free(t.first);
	free(done);
	free(stack);
}

void dump_out_finish(struct dump_out *o)
{
	if (o->fmt == DUMP_FMT_WATERFALL && o->n_wf) {
		qsort(o->wf, o->n_wf, sizeof(*o->wf), cmp_trace_start);
		for (size_t i = 0; i < o->n_wf;) {
			size_t j = i + 1;
			while (j < o->n_wf && memcmp(o->wf[j].trace, o->wf[i].trace, 16) == 0)
				j++;
			if (i)
				fputc('\n', o->f);
			wf_trace(o, o->wf + i, j - i);
			i = j;
		}
	}
	for (size_t i = 0; i < o->n_wf; i++) {
		free(o->wf[i].name);
		free(o->wf[i].service);
	}
	free(o->wf);
	o->wf = NULL;
	o->n_wf = o->cap_wf = 0;
	fflush(o->f);
}
