/* SPDX-License-Identifier: MIT */
#include "pbcheck.h"

#include "pbwire.h"
#include "spanring/ring_abi.h"

static const ProtobufCFieldDescriptor *field_by_number(const ProtobufCMessageDescriptor *d,
						       uint32_t num)
{
	for (unsigned i = 0; i < d->n_fields; i++)
		if (d->fields[i].id == num)
			return &d->fields[i];
	return NULL;
}

bool sr_pb_nesting_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
		      int maxdepth)
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
		if (wt == SPANRING_WT_LEN) {
			const ProtobufCFieldDescriptor *f = field_by_number(d, field);
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
			    !sr_pb_nesting_ok(f->descriptor, payload, (size_t)v, maxdepth - 1))
				return false;
		}
		p = next;
	}
	return true;
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
