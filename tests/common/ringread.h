/* SPDX-License-Identifier: MIT */
/*
 * Test-side ring reader: an implementation of the consumer side that is
 * independent of the agent's, used by unit tests to read what the producer
 * wrote and to build export requests for protobuf-c / protoc decoding.
 */
#ifndef SPANRING_TESTS_RINGREAD_H
#define SPANRING_TESTS_RINGREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

struct rr_record {
	uint32_t slot;
	uint32_t field;      /* 2 for spans, SPANRING_CTRL_* for control records */
	uint32_t wt;
	const uint8_t *payload; /* Span bytes for span records */
	size_t len;          /* payload length (LEN) */
	uint64_t value;      /* varint value (VARINT) */
	uint64_t pos;        /* stream position of the record's first byte */
	uint64_t scope;      /* scope-table offset in effect */
};

typedef int (*rr_cb)(const struct rr_record *r, void *arg);

/*
 * Walk the committed records [tail, head) of every slot of m, calling cb
 * for each (a non-zero return stops the walk). With consume, store-release
 * tail = head afterwards (per slot). Returns the number of records, or -1
 * on a framing error.
 */
int rr_drain(struct sr_map *m, bool consume, rr_cb cb, void *arg);

/* Map the calling process's own ring read-only, like a consumer would,
 * with writable consumer lines. Returns 0 or -errno. */
int rr_map_self(struct sr_map *out);

/*
 * Build an ExportTraceServiceRequest (one ResourceSpans with m's
 * Resource, one ScopeSpans per scope run) from all committed span records
 * into a malloc'd buffer. Returns the length, or -1.
 */
long rr_build_request(struct sr_map *m, uint8_t **out);

/* Write buf to a temporary file and run protoc --decode on it with the
 * given include dir and proto file; returns malloc'd stdout or NULL. */
char *rr_protoc_decode(const uint8_t *buf, size_t len, const char *incdir, const char *file,
		       const char *type);

#endif
