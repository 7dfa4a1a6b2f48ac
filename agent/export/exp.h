/* SPDX-License-Identifier: MIT */
/* Constructors of the built-in exporters (exporter.h is the interface). */
#ifndef SPANRING_AGENT_EXP_H
#define SPANRING_AGENT_EXP_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct agent;
struct exporter;

/* Permission bits of output files the agent creates (key output_mode). */
#define AGENT_OUTPUT_MODE_DEFAULT 0600u

typedef ssize_t (*exp_writev_fn)(int fd, const struct iovec *iov, int iovcnt);

struct exp_file_opts {
	const char *path;
	uint64_t rotate_bytes;  /* 0: never rotate */
	uint32_t rotate_keep;
	uint64_t retry_max_us;  /* give a failing batch up after this long */
	uint32_t mode;          /* of a file it creates; 0: AGENT_OUTPUT_MODE_DEFAULT */
	exp_writev_fn writev_fn; /* NULL: writev(2); tests observe the iovecs */
};

/*
 * The constructors open their output (creating it with the mode, refusing
 * an existing file that is not the exporter's own output); when that
 * fails they return -errno with a message naming the path in ag->err.
 */
/* Length-delimited ExportTraceServiceRequest protobuf, from ring memory. */
int exp_file_create(struct agent *ag, const struct exp_file_opts *o, struct exporter **out);
/* OTLP/JSON, one ExportTraceServiceRequest per line (copies: opt-in). */
int exp_json_create(struct agent *ag, const char *path, uint64_t rotate_bytes,
		    uint32_t rotate_keep, uint32_t mode, struct exporter **out);
/* One human-readable line per span. */
int exp_console_create(struct agent *ag, const char *path, uint32_t mode, struct exporter **out);
/* Counts and discards (benchmarks). */
int exp_null_create(struct agent *ag, struct exporter **out);

#endif
