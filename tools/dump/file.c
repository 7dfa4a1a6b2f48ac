/* SPDX-License-Identifier: MIT */
/*
 * spanring-dump read: the agent's export files.
 *   protobuf  a sequence of varint(length) + ExportTraceServiceRequest
 *             (the file exporter, agent/export/exp_file.c)
 *   JSON      one ExportTraceServiceRequest per line in the OTLP/JSON
 *             mapping (the json exporter, agent/export/exp_json.c)
 * Everything valid before an error is printed; the error names the record
 * or line and its byte offset, and the exit code is DUMP_EXIT_FILE.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "json.h"
#include "otlp_in.h"

/* The agent's batches are at most 64 MiB; anything far larger is garbage. */
#define FILE_MAX_RECORD (256ull << 20)

void dump_emit_request(struct dump_out *o, const dump_request_t *r)
{
	for (size_t i = 0; i < r->n_resource_spans; i++) {
		const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[i];
		const char *svc = dump_service_name(rs->resource);
		for (size_t k = 0; k < rs->n_scope_spans; k++) {
			const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[k];
			struct dump_ctx c = {
				.resource = rs->resource,
				.resource_schema = rs->schema_url,
				.scope = ss->scope,
				.scope_schema = ss->schema_url,
				.service = svc ? svc : "?",
				.slot = -1,
			};
			for (size_t s = 0; s < ss->n_spans; s++)
				dump_emit(o, &c, ss->spans[s]);
		}
	}
}

static int read_pb(FILE *f, const char *name, struct dump_out *o)
{
	uint64_t off = 0, rec = 0;
	int rc = DUMP_EXIT_OK;
	for (;;) {
		uint64_t len = 0;
		int shift = 0, c = 0;
		uint64_t start = off;
		for (;;) {
			c = getc(f);
			if (c == EOF)
				break;
			off++;
			len |= (uint64_t)(c & 0x7f) << shift;
			shift += 7;
			if (!(c & 0x80) || shift >= 70)
				break;
		}
		if (c == EOF) {
			if (ferror(f)) {
				fprintf(stderr, "spanring-dump: %s: read error: %s\n", name, strerror(errno));
				return dump_exit_merge(rc, DUMP_EXIT_ERROR);
			}
			if (off == start)
				return rc; /* clean end between records */
			fprintf(stderr,
				"spanring-dump: %s: truncated: record %" PRIu64 " at byte %" PRIu64
				": the length prefix is cut off by the end of the file\n",
				name, rec + 1, start);
			return DUMP_EXIT_FILE;
		}
		if ((c & 0x80) || len > FILE_MAX_RECORD) {
			fprintf(stderr,
				"spanring-dump: %s: corrupt: record %" PRIu64 " at byte %" PRIu64
				": implausible length prefix%s\n",
				name, rec + 1, start,
				rec == 0 ? " (not a spanring protobuf file? try --format json)" : "");
			return DUMP_EXIT_FILE;
		}
		uint8_t *buf = malloc(len ? len : 1);
		if (!buf) {
			fprintf(stderr, "spanring-dump: %s: out of memory (record of %" PRIu64 " bytes)\n",
				name, len);
			return DUMP_EXIT_ERROR;
		}
		size_t got = fread(buf, 1, len, f);
		off += got;
		rec++;
		if (got < len) {
			free(buf);
			if (ferror(f)) {
				fprintf(stderr, "spanring-dump: %s: read error: %s\n", name, strerror(errno));
				return dump_exit_merge(rc, DUMP_EXIT_ERROR);
			}
			fprintf(stderr,
				"spanring-dump: %s: truncated: record %" PRIu64 " at byte %" PRIu64
				" announces %" PRIu64 " bytes, the file ends after %zu\n",
				name, rec, start, len, got);
			return DUMP_EXIT_FILE;
		}
		dump_request_t *r = (dump_request_t *)sr_pb_unpack(
			&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
			buf, len);
		free(buf);
		if (!r) {
			/* The framing still holds: report and go on with the next record. */
			fprintf(stderr,
				"spanring-dump: %s: corrupt: record %" PRIu64 " at byte %" PRIu64 " (%" PRIu64
				" bytes) does not decode as an ExportTraceServiceRequest\n",
				name, rec, start, len);
			rc = DUMP_EXIT_FILE;
			continue;
		}
		dump_emit_request(o, r);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
}

static int read_json(FILE *f, const char *name, struct dump_out *o)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	uint64_t lineno = 0, off = 0;
	int rc = DUMP_EXIT_OK;
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		uint64_t start = off;
		off += (uint64_t)n;
		bool has_nl = n > 0 && line[n - 1] == '\n';
		size_t len = (size_t)n;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		size_t ws = 0;
		while (ws < len && (line[ws] == ' ' || line[ws] == '\t'))
			ws++;
		if (ws == len)
			continue;
		struct json j;
		char err[160];
		if (json_parse(line, len, &j, err, sizeof(err))) {
			if (!has_nl)
				fprintf(stderr,
					"spanring-dump: %s: truncated: line %" PRIu64 " (byte %" PRIu64
					") is incomplete at the end of the file: %s\n",
					name, lineno, start, err);
			else
				fprintf(stderr,
					"spanring-dump: %s: corrupt: line %" PRIu64 " (byte %" PRIu64
					") is not JSON: %s\n",
					name, lineno, start, err);
			rc = DUMP_EXIT_FILE;
			continue;
		}
		ProtobufCMessage *m = NULL;
		if (otlp_json_decode(
			    &j, &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
			    &m, err, sizeof(err))) {
			fprintf(stderr,
				"spanring-dump: %s: corrupt: line %" PRIu64
				" is not an OTLP/JSON ExportTraceServiceRequest: %s\n",
				name, lineno, err);
			json_free(&j);
			rc = DUMP_EXIT_FILE;
			continue;
		}
		json_free(&j);
		dump_emit_request(o, (dump_request_t *)m);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	if (ferror(f)) {
		fprintf(stderr, "spanring-dump: %s: read error: %s\n", name, strerror(errno));
		rc = dump_exit_merge(rc, DUMP_EXIT_ERROR);
	}
	free(line);
	return rc;
}

int dump_read_file(const char *path, enum dump_file_kind kind, struct dump_out *o)
{
	bool is_stdin = strcmp(path, "-") == 0;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	if (!f) {
		int e = errno;
		fprintf(stderr, "spanring-dump: %s: %s\n", path, strerror(e));
		return e == EACCES || e == EPERM ? DUMP_EXIT_PERM : DUMP_EXIT_ERROR;
	}
	const char *name = is_stdin ? "<stdin>" : path;
	if (kind == DUMP_FILE_AUTO) {
		/* A JSON line starts with '{' and goes on with a member name or
		 * white space; a protobuf record whose length is 123 starts with
		 * 0x7b as well, but is followed by 0x0a (resource_spans' tag). */
		int c0 = getc(f), c1 = c0 == EOF ? EOF : getc(f);
		kind = c0 == '{' && c1 != 0x0a ? DUMP_FILE_JSON : DUMP_FILE_PB;
		if (is_stdin) {
			/* glibc keeps more than the one byte of push-back C promises. */
			if (c1 != EOF)
				ungetc(c1, f);
			if (c0 != EOF)
				ungetc(c0, f);
		} else if (fseek(f, 0, SEEK_SET) != 0) {
			fprintf(stderr, "spanring-dump: %s: cannot rewind: %s\n", name, strerror(errno));
			fclose(f);
			return DUMP_EXIT_ERROR;
		}
	}
	int rc = kind == DUMP_FILE_JSON ? read_json(f, name, o) : read_pb(f, name, o);
	if (!is_stdin)
		fclose(f);
	return rc;
}
