/* SPDX-License-Identifier: MIT */
/*
 * The OTLP/JSON mapping of the specification, for any protobuf-c message
 * of the OTLP schema: lowerCamelCase field names, trace and span ids as
 * hex, other bytes as base64, 64-bit integers as decimal strings, enums as
 * integers, default values omitted (oneof members always shown). Also used
 * by spanring-dump --json.
 */
#ifndef SPANRING_COMMON_OTLP_JSON_H
#define SPANRING_COMMON_OTLP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct sbuf;

/* Append msg as one JSON object (no newline). */
void otlp_json_message(struct sbuf *out, const ProtobufCMessage *msg);

/* Decode an ExportTraceServiceRequest (len bytes) and append its JSON.
 * 0 or -EBADMSG. */
int otlp_json_request(struct sbuf *out, const uint8_t *buf, size_t len);

#endif
