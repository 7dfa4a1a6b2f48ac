/* SPDX-License-Identifier: MIT */
/*
 * Guarded protobuf-c decoding of untrusted bytes (producers' rings,
 * receivers' answers, files). protobuf-c recurses once per nested message
 * and has no depth limit, so a small input of deeply nested AnyValue
 * arrays overflows the stack. Check the nesting first, iteratively bounded.
 */
#ifndef SPANRING_COMMON_PBCHECK_H
#define SPANRING_COMMON_PBCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "ring.h"

/* Deepest message nesting accepted (OTLP spans need well under 20). */
#define SR_PB_MAX_NESTING 32

/* Does [p, p+n), read as message d, nest messages at most maxdepth deep
 * (and is it well framed)? Recursion depth is bounded by maxdepth. */
SR_HIDDEN bool sr_pb_nesting_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
				int maxdepth);

/* Stricter: as sr_pb_nesting_ok, and every field is known to the schema
 * and has a wire type its type allows, at every level: what protobuf-c's
 * unpack accepts, minus unknown fields, without allocating (the file
 * exporter checks a whole existing output file with it at start). */
SR_HIDDEN bool sr_pb_schema_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
			       int maxdepth);

/* protobuf_c_message_unpack() after sr_pb_nesting_ok(SR_PB_MAX_NESTING);
 * NULL when either fails. Free with protobuf_c_message_free_unpacked(). */
SR_HIDDEN ProtobufCMessage *sr_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p,
					 size_t n);

/* Bytes one value of type t takes in a protobuf-c message (one element of
 * a repeated field's array), for code that walks messages by descriptor. */
SR_HIDDEN size_t sr_pb_value_size(ProtobufCType t);

#endif
