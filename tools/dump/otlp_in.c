/* SPDX-License-Identifier: MIT */
/* OTLP protobuf and OTLP/JSON input (see otlp_in.h). */
#include "hex.h"
#include "otlp_in.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "pbwire.h"
#include "spanring/ring_abi.h"

/* ---- OTLP/JSON ----------------------------------------------------------- */

struct jd {
	char *err;
	size_t errlen;
	char path[160]; /* where we are, for messages */
};

/* "<what>: <msg>" plus where in the document. */
static int jd_fail(struct jd *j, const char *msg, const char *what)
{
	snprintf(j->err, j->errlen, "%s: %s%s%s", what, msg, j->path[0] ? " at " : "", j->path);
	return -1;
}

/* Does JSON key k name field f (lowerCamelCase, or the proto name)? */
static bool key_matches(const char *k, const char *name)
{
	if (strcmp(k, name) == 0)
		return true;
	for (const char *p = name; *p; p++) {
		char c = *p;
		if (c == '_' && p[1]) {
			p++;
			c = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		}
		if (*k++ != c)
			return false;
	}
	return *k == 0;
}

static bool is_hex_id(const ProtobufCFieldDescriptor *f)
{
	return strcmp(f->name, "trace_id") == 0 || strcmp(f->name, "span_id") == 0 ||
	       strcmp(f->name, "parent_span_id") == 0;
}

static int decode_bytes(struct jd *j, const ProtobufCFieldDescriptor *f, const struct json *v,
			ProtobufCBinaryData *out)
{
	if (v->t != JSON_STR)
		return jd_fail(j, "expected a string", f->name);
	size_t n = v->len;
	uint8_t *d = malloc(n / 2 + n + 1);
	if (!d)
		return jd_fail(j, "out of memory", f->name);
	size_t o = 0;
	if (is_hex_id(f)) {
		if (n % 2) {
			free(d);
			return jd_fail(j, "odd number of hex digits", f->name);
		}
		for (size_t i = 0; i < n; i += 2) {
			int a = sr_hexval(v->s[i]), b = sr_hexval(v->s[i + 1]);
			if (a < 0 || b < 0) {
				free(d);
				return jd_fail(j, "not hex", f->name);
			}
			d[o++] = (uint8_t)(a << 4 | b);
		}
	} else if (sr_base64_decode(v->s, n, d, &o) != 0) {
		free(d);
		return jd_fail(j, "not base64", f->name);
	}
	if (o == 0) {
		free(d);
		d = NULL;
	}
	out->data = d;
	out->len = o;
	return 0;
}

/* Integer from a JSON number or a decimal string (the JSON mapping's int64). */
static int parse_int(struct jd *j, const ProtobufCFieldDescriptor *f, const struct json *v,
		     bool is_signed, int64_t min, uint64_t max, uint64_t *out)
{
	if ((v->t != JSON_NUM && v->t != JSON_STR) || !v->s)
		return jd_fail(j, "expected an integer", f->name);
	char *end;
	errno = 0;
	if (is_signed) {
		long long x = strtoll(v->s, &end, 10);
		if (errno || end == v->s || *end || x < min || (x > 0 && (uint64_t)x > max))
			return jd_fail(j, "not an integer in range", f->name);
		*out = (uint64_t)x;
	} else {
		if (v->s[0] == '-')
			return jd_fail(j, "negative value for an unsigned field", f->name);
		unsigned long long x = strtoull(v->s, &end, 10);
		if (errno || end == v->s || *end || x > max)
			return jd_fail(j, "not an integer in range", f->name);
		*out = x;
	}
	return 0;
}

static int decode_double(struct jd *j, const ProtobufCFieldDescriptor *f, const struct json *v,
			 double *out)
{
	if (v->t == JSON_NUM) {
		*out = v->num;
		return 0;
	}
	if (v->t == JSON_STR) {
		if (strcmp(v->s, "NaN") == 0) {
			*out = NAN;
			return 0;
		}
		if (strcmp(v->s, "Infinity") == 0 || strcmp(v->s, "-Infinity") == 0) {
			*out = v->s[0] == '-' ? -INFINITY : INFINITY;
			return 0;
		}
		char *end;
		double d = strtod(v->s, &end);
		if (end != v->s && !*end) {
			*out = d;
			return 0;
		}
	}
	return jd_fail(j, "expected a number", f->name);
}

static int decode_msg(struct jd *j, const struct json *v, const ProtobufCMessageDescriptor *d,
		      ProtobufCMessage **out, int depth);

/* One value of field f into the storage at p (an element for repeated fields). */
static int decode_value(struct jd *j, const ProtobufCFieldDescriptor *f, const struct json *v,
			void *p, int depth)
{
	uint64_t u;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (parse_int(j, f, v, true, INT32_MIN, INT32_MAX, &u))
			return -1;
		*(int32_t *)p = (int32_t)(int64_t)u;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (parse_int(j, f, v, false, 0, UINT32_MAX, &u))
			return -1;
		*(uint32_t *)p = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (parse_int(j, f, v, true, INT64_MIN, INT64_MAX, &u))
			return -1;
		*(int64_t *)p = (int64_t)u;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (parse_int(j, f, v, false, 0, UINT64_MAX, &u))
			return -1;
		*(uint64_t *)p = u;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT: {
		double d;
		if (decode_double(j, f, v, &d))
			return -1;
		*(float *)p = (float)d;
		return 0;
	}
	case PROTOBUF_C_TYPE_DOUBLE:
		return decode_double(j, f, v, (double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		if (v->t != JSON_BOOL)
			return jd_fail(j, "expected true or false", f->name);
		*(protobuf_c_boolean *)p = v->b;
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		if (v->t == JSON_STR && ed) {
			const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, v->s);
			if (ev) {
				*(int *)p = ev->value;
				return 0;
			}
		}
		if (parse_int(j, f, v, true, INT32_MIN, INT32_MAX, &u))
			return -1;
		*(int *)p = (int)(int64_t)u;
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING: {
		if (v->t != JSON_STR)
			return jd_fail(j, "expected a string", f->name);
		char *s = strdup(v->s);
		if (!s)
			return jd_fail(j, "out of memory", f->name);
		*(char **)p = s;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES:
		return decode_bytes(j, f, v, p);
	case PROTOBUF_C_TYPE_MESSAGE:
		return decode_msg(j, v, f->descriptor, (ProtobufCMessage **)p, depth + 1);
	}
	return jd_fail(j, "unsupported field type", f->name);
}

/* A repeated field: a JSON array, each element decoded into a new C array. */
static int decode_repeated(struct jd *j, const ProtobufCFieldDescriptor *f, const struct json *v,
			   char *base, int depth)
{
	if (v->t != JSON_ARR)
		return jd_fail(j, "expected an array", f->name);
	size_t n = v->len, es = sr_pb_value_size(f->type);
	if (!n)
		return 0;
	void *arr = calloc(n, es);
	if (!arr)
		return jd_fail(j, "out of memory", f->name);
	/* Published before filling so that a failure frees what exists. */
	*(void **)(base + f->offset) = arr;
	size_t *np = (size_t *)(base + f->quantifier_offset);
	size_t klen = strlen(j->path);
	for (size_t k = 0; k < n; k++) {
		snprintf(j->path + klen, sizeof(j->path) - klen, "[%zu]", k);
		if (decode_value(j, f, &v->arr[k], (char *)arr + k * es, depth))
			return -1;
		*np = k + 1;
	}
	return 0;
}

/* A singular field, a oneof member (at most one per oneof) or not. */
static int decode_single(struct jd *j, const ProtobufCFieldDescriptor *f, const struct json *v,
			 char *base, int depth)
{
	void *p = base + f->offset;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *qc = (uint32_t *)(base + f->quantifier_offset);
		if (*qc)
			return jd_fail(j, "two members of one oneof", f->name);
		if (decode_value(j, f, v, p, depth))
			return -1;
		*qc = f->id;
		return 0;
	}
	if (decode_value(j, f, v, p, depth))
		return -1;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
		*(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
	return 0;
}

static int decode_msg(struct jd *j, const struct json *v, const ProtobufCMessageDescriptor *d,
		      ProtobufCMessage **out, int depth)
{
	if (depth > SR_PB_MAX_NESTING)
		return jd_fail(j, "nesting too deep", d->short_name);
	if (v->t != JSON_OBJ)
		return jd_fail(j, "expected an object", d->short_name);
	ProtobufCMessage *m = calloc(1, d->sizeof_message);
	if (!m)
		return jd_fail(j, "out of memory", d->short_name);
	protobuf_c_message_init(d, m);
	char *base = (char *)m;
	uint64_t seen = 0; /* field indexes already set (OTLP messages have < 64 fields) */
	size_t plen = strlen(j->path);
	for (size_t i = 0; i < v->len; i++) {
		const struct json_member *mem = &v->obj[i];
		j->path[plen] = 0;
		const ProtobufCFieldDescriptor *f = NULL;
		unsigned fi;
		for (fi = 0; fi < d->n_fields; fi++)
			if (key_matches(mem->key, d->fields[fi].name)) {
				f = &d->fields[fi];
				break;
			}
		if (!f || mem->v.t == JSON_NULL)
			continue; /* unknown names are ignored (OTLP/JSON), null is the default */
		if (fi < 64 && (seen & (1ull << fi))) {
			jd_fail(j, "duplicate field", f->name);
			goto fail;
		}
		if (fi < 64)
			seen |= 1ull << fi;
		snprintf(j->path + plen, sizeof(j->path) - plen, "%s%s", plen ? "." : "",
			 mem->key);
		if (f->label == PROTOBUF_C_LABEL_REPEATED ? decode_repeated(j, f, &mem->v, base, depth)
							  : decode_single(j, f, &mem->v, base, depth))
			goto fail;
		j->path[plen] = 0;
	}
	*out = m;
	return 0;
fail:
	protobuf_c_message_free_unpacked(m, NULL);
	return -1;
}

int otlp_json_decode(const struct json *v, const ProtobufCMessageDescriptor *d,
		     ProtobufCMessage **out, char *err, size_t errlen)
{
	struct jd j = {.err = err, .errlen = errlen};
	*out = NULL;
	return decode_msg(&j, v, d, out, 0);
}
