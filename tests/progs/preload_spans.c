/* SPDX-License-Identifier: MIT */
/*
 * preload_spans FILE...: decode the agent's file exporter output
 * (varint-length-delimited ExportTraceServiceRequest messages) with
 * protobuf-c and print one JSON object per span, for the shim's tests:
 *
 *   {"trace":"<hex>","span":"<hex>","parent":"<hex or empty>","name":...,
 *    "kind":N,"start":NS,"end":NS,"status":N,"msg":"...","flags":N,
 *    "scope":"...","res":{resource attributes},"attrs":{span attributes}}
 *
 * Exit status 1 when a file cannot be read or a message does not decode
 * (nothing partial is acceptable), 0 otherwise.
 * With --split DIR, each message is also written to DIR/NNNN.pb, so that
 * a test can give one to `protoc --decode`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;

static void put_str(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void put_hex(const uint8_t *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	putchar('"');
}

static void put_any(const any_t *v)
{
	if (!v) {
		printf("null");
		return;
	}
	switch (v->value_case) {
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
		put_str(v->string_value, strlen(v->string_value));
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
		printf(v->bool_value ? "true" : "false");
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
		printf("%lld", (long long)v->int_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
		printf("%.17g", v->double_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
		put_hex(v->bytes_value.data, v->bytes_value.len);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
		putchar('[');
		for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++) {
			if (i)
				putchar(',');
			put_any(v->array_value->values[i]);
		}
		putchar(']');
		break;
	default:
		printf("null");
	}
}

static void put_kvs(kv_t **kv, size_t n)
{
	putchar('{');
	for (size_t i = 0; i < n; i++) {
		if (i)
			putchar(',');
		put_str(kv[i]->key, strlen(kv[i]->key));
		putchar(':');
		put_any(kv[i]->value);
	}
	putchar('}');
}

static int dump(const req_t *r)
{
	for (size_t i = 0; i < r->n_resource_spans; i++) {
		const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[i];
		for (size_t j = 0; j < rs->n_scope_spans; j++) {
			const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
			const char *scope = ss->scope && ss->scope->name ? ss->scope->name : "";
			for (size_t k = 0; k < ss->n_spans; k++) {
				const Opentelemetry__Proto__Trace__V1__Span *s = ss->spans[k];
				printf("{\"trace\":");
				put_hex(s->trace_id.data, s->trace_id.len);
				printf(",\"span\":");
				put_hex(s->span_id.data, s->span_id.len);
				printf(",\"parent\":");
				put_hex(s->parent_span_id.data, s->parent_span_id.len);
				printf(",\"name\":");
				put_str(s->name, strlen(s->name));
				printf(",\"kind\":%d,\"start\":%llu,\"end\":%llu", (int)s->kind,
				       (unsigned long long)s->start_time_unix_nano,
				       (unsigned long long)s->end_time_unix_nano);
				printf(",\"status\":%d,\"msg\":", s->status ? (int)s->status->code : 0);
				const char *m = s->status && s->status->message ? s->status->message : "";
				put_str(m, strlen(m));
				printf(",\"flags\":%u,\"dropped\":%u,\"scope\":", s->flags,
				       s->dropped_attributes_count);
				put_str(scope, strlen(scope));
				printf(",\"res\":");
				if (rs->resource)
					put_kvs(rs->resource->attributes, rs->resource->n_attributes);
				else
					printf("{}");
				printf(",\"attrs\":");
				put_kvs(s->attributes, s->n_attributes);
				printf("}\n");
			}
		}
	}
	return 0;
}

static int read_file(const char *path, const char *split, unsigned *seq)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	int bad = 0;
	for (;;) {
		uint64_t len = 0;
		int shift = 0, c;
		while ((c = getc(f)) != EOF) {
			len |= (uint64_t)(c & 0x7f) << shift;
			shift += 7;
			if (!(c & 0x80) || shift > 63)
				break;
		}
		if (c == EOF) {
			if (shift) {
				fprintf(stderr, "%s: truncated length\n", path);
				bad = 1;
			}
			break;
		}
		if (len > (64u << 20)) {
			fprintf(stderr, "%s: implausible length %llu\n", path, (unsigned long long)len);
			bad = 1;
			break;
		}
		uint8_t *buf = malloc(len ? len : 1);
		if (!buf || fread(buf, 1, len, f) != len) {
			fprintf(stderr, "%s: truncated message\n", path);
			free(buf);
			bad = 1;
			break;
		}
		if (split) {
			char out[4096];
			snprintf(out, sizeof(out), "%s/%04u.pb", split, (*seq)++);
			FILE *o = fopen(out, "wb");
			if (o) {
				fwrite(buf, 1, len, o);
				fclose(o);
			}
		}
		req_t *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
			NULL, len, buf);
		free(buf);
		if (!r) {
			fprintf(stderr, "%s: a message does not decode\n", path);
			bad = 1;
			continue;
		}
		dump(r);
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
			r, NULL);
	}
	fclose(f);
	return bad;
}

int main(int argc, char **argv)
{
	const char *split = NULL;
	unsigned seq = 0;
	int bad = 0, i = 1;
	if (argc > 2 && strcmp(argv[1], "--split") == 0) {
		split = argv[2];
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: preload_spans [--split DIR] FILE...\n");
		return 2;
	}
	for (; i < argc; i++)
		bad |= read_file(argv[i], split, &seq);
	return bad;
}
