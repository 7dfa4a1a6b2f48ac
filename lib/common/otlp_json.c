/* SPDX-License-Identifier: MIT */
/* OTLP/JSON encoding driven by protobuf-c descriptors (see otlp_json.h). */
#include "pbcheck.h"
#include "otlp_json.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "otlp_trace_service.pb-c.h"
#include "sbuf.h"

/* Ids are hex in OTLP/JSON, unlike other bytes fields (base64). */
static int json_is_hex_id(const ProtobufCFieldDescriptor *f)
{
	return strcmp(f->name, "trace_id") == 0 || strcmp(f->name, "span_id") == 0 ||
	       strcmp(f->name, "parent_span_id") == 0;
}

static void json_name(struct sbuf *out, const char *name)
{
	sbuf_putc(out, '"');
	for (const char *p = name; *p; p++) {
		if (*p == '_' && p[1]) {
			p++;
			sbuf_putc(out, (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p));
		} else {
			sbuf_putc(out, *p);
		}
	}
	sbuf_puts(out, "\":");
}

static void json_double(struct sbuf *out, double d)
{
	if (isnan(d))
		sbuf_puts(out, "\"NaN\"");
	else if (isinf(d))
		sbuf_puts(out, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
	else
		sbuf_printf(out, "%.17g", d);
}

/* One value of field f stored at p. */
static void json_value(struct sbuf *out, const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		sbuf_printf(out, "%d", *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		sbuf_printf(out, "%u", *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		sbuf_printf(out, "\"%lld\"", (long long)*(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		sbuf_printf(out, "\"%llu\"", (unsigned long long)*(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		json_double(out, *(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		json_double(out, *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		sbuf_puts(out, *(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_ENUM:
		sbuf_printf(out, "%d", *(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		sbuf_json_str(out, s ? s : "", s ? strlen(s) : 0);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *d = p;
		sbuf_putc(out, '"');
		if (json_is_hex_id(f))
			sbuf_hex(out, d->data, d->len);
		else
			sbuf_base64(out, d->data, d->len);
		sbuf_putc(out, '"');
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
		if (m)
			otlp_json_message(out, m);
		else
			sbuf_puts(out, "{}");
		break;
	}
	}
}

/* proto3: is the singular value at p the type's default (then omitted)? */
static int json_is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return !s || !*s;
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(void *const *)p == NULL;
	case PROTOBUF_C_TYPE_BOOL:
		return !*(const protobuf_c_boolean *)p;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)p == 0 && !signbit(*(const double *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)p == 0 && !signbit(*(const float *)p);
	default: {
		size_t sz = sr_pb_value_size(f->type);
		static const uint8_t zero[8];
		return memcmp(p, zero, sz) == 0;
	}
	}
}

void otlp_json_message(struct sbuf *out, const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	const char *base = (const char *)msg;
	int first = 1;
	sbuf_putc(out, '{');
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *p = base + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			if (!n)
				continue;
			if (!first)
				sbuf_putc(out, ',');
			first = 0;
			json_name(out, f->name);
			sbuf_putc(out, '[');
			const char *arr = *(const char *const *)p;
			size_t sz = sr_pb_value_size(f->type);
			for (size_t k = 0; k < n; k++) {
				if (k)
					sbuf_putc(out, ',');
				json_value(out, f, arr + k * sz);
			}
			sbuf_putc(out, ']');
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t c = *(const uint32_t *)(base + f->quantifier_offset);
			if (c != f->id)
				continue;
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
			   f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
			if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
				continue;
		} else if (json_is_default(f, p)) {
			continue;
		}
		if (!first)
			sbuf_putc(out, ',');
		first = 0;
		json_name(out, f->name);
		json_value(out, f, p);
	}
	sbuf_putc(out, '}');
}

int otlp_json_request(struct sbuf *out, const uint8_t *buf, size_t len)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
		(void *)sr_pb_unpack(&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor, buf, len);
	if (!r)
		return -EBADMSG;
	otlp_json_message(out, &r->base);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
		r, NULL);
	return 0;
}
