/* SPDX-License-Identifier: MIT */
#include "pbcheck.h"

#include "pbwire.h"
#include "spanring/ring_abi.h"

/* Does a field of type f arrive with a wire type protobuf-c accepts for it
 * (packed arrays of the scalar types included)? */
static bool wire_type_fits(const ProtobufCFieldDescriptor *f, uint32_t wt, const uint8_t *payload,
			   uint64_t v)
{
	bool packed = wt == SPANRING_WT_LEN && f->label == PROTOBUF_C_LABEL_REPEATED;
	switch (f->type) {
	case PROTOBUF_C_TYPE_MESSAGE:
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
		return wt == SPANRING_WT_LEN;
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return wt == SPANRING_WT_I32 || (packed && v % 4 == 0);
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return wt == SPANRING_WT_I64 || (packed && v % 8 == 0);
	default: /* the varint types */
		if (packed) {
			const uint8_t *q = payload, *qe = payload + v;
			uint64_t x;
			while (q < qe)
				if (pb_get_varint(&q, qe, &x))
					return false;
			return true;
		}
		return wt == SPANRING_WT_VARINT;
	}
}

/*
 * The one walk of a message by its descriptor, without allocating. It
 * always checks the framing and bounds the nesting (recursion depth is at
 * most maxdepth); strict also refuses a field the schema does not know or
 * one whose wire type does not fit its type.
 */
static bool pb_walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, int maxdepth,
		    bool strict)
{
	const uint8_t *end = p + n;
	if (maxdepth < 0)
		return false;
	while (p < end) {
		uint32_t field, wt;
		const uint8_t *payload, *next;
		uint64_t v;
		if (pb_next_field(p, end, &field, &wt, &payload, &next, &v))
			return false;
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, field);
		if (strict && (!f || !wire_type_fits(f, wt, payload, v)))
			return false;
		if (f && wt == SPANRING_WT_LEN && f->type == PROTOBUF_C_TYPE_MESSAGE &&
		    !pb_walk(f->descriptor, payload, (size_t)v, maxdepth - 1, strict))
			return false;
		p = next;
	}
	return true;
}

bool sr_pb_nesting_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
		      int maxdepth)
{
	return pb_walk(d, p, n, maxdepth, false);
}

bool sr_pb_schema_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
		     int maxdepth)
{
	return pb_walk(d, p, n, maxdepth, true);
}

ProtobufCMessage *sr_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
	if (!sr_pb_nesting_ok(d, p, n, SR_PB_MAX_NESTING))
		return NULL;
	return protobuf_c_message_unpack(d, NULL, n, p);
}

size_t sr_pb_value_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	}
	return 0;
}
