/* SPDX-License-Identifier: MIT */
/*
 * Decoding OTLP input for spanring-dump, all of it untrusted: protobuf
 * bytes (ring records, export files) through sr_pb_unpack(), protobuf-c
 * after a nesting check, and OTLP/JSON (the specification's JSON mapping) into the same
 * protobuf-c structures, driven by their descriptors.
 */
#ifndef SPANRING_DUMP_OTLP_IN_H
#define SPANRING_DUMP_OTLP_IN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "json.h"
#include "pbcheck.h" /* sr_pb_unpack(), SR_PB_MAX_NESTING */

/*
 * Build a message of type d from its OTLP/JSON form. Keys are the
 * lowerCamelCase field names (the proto names are accepted too), unknown
 * keys are ignored, null is the default value, traceId/spanId/parentSpanId
 * are hex, other bytes base64, 64-bit integers strings or numbers, enums
 * integers (names accepted). Returns 0 and *out (free it with
 * protobuf_c_message_free_unpacked(*out, NULL)), or -1 with err set.
 */
int otlp_json_decode(const struct json *v, const ProtobufCMessageDescriptor *d,
		     ProtobufCMessage **out, char *err, size_t errlen);

#endif
