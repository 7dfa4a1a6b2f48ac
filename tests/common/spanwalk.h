/* SPDX-License-Identifier: MIT */
/*
 * Walking an ExportTraceServiceRequest of the test receivers down to its
 * spans, without decoding the rest (pbwire.h's guarded reader): the
 * benchmark sink reads each span's end time, the checking receiver its
 * ids.
 */
#ifndef SPANRING_TESTS_SPANWALK_H
#define SPANRING_TESTS_SPANWALK_H

#include <stdbool.h>
#include <stdint.h>

/* A field of a message: its number, wire type, payload [p, end) and
 * value (the length for LEN, the value for VARINT). */
typedef bool (*pb_field_fn)(uint32_t field, uint32_t wt, const uint8_t *p, const uint8_t *end,
			    uint64_t v, void *arg);

/* fn for each field of the message [p, end); false when the framing is
 * bad or fn returns false. */
bool pb_each_field(const uint8_t *p, const uint8_t *end, pb_field_fn fn, void *arg);

/* fn for each Span (ResourceSpans 1 -> ScopeSpans 2 -> Span 2) of the
 * request [p, end): its bytes. False as pb_each_field. */
bool otlp_each_span(const uint8_t *p, const uint8_t *end,
		    bool (*fn)(const uint8_t *p, const uint8_t *end, void *arg), void *arg);

#endif
