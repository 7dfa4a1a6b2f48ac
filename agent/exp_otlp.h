/* SPDX-License-Identifier: MIT */
/* The OTLP exporters (OTLP/HTTP and OTLP/gRPC): see docs/EXPORTERS.md. */
#ifndef SPANRING_AGENT_EXP_OTLP_H
#define SPANRING_AGENT_EXP_OTLP_H

struct agent;
struct exporter;

/*
 * Create the OTLP exporter the agent configuration enables (exporter kind
 * otlp, otlp_http or otlp_grpc; at most one), with the otlp.* settings and
 * the OTEL_EXPORTER_OTLP_* environment. Errors are logged. 0 or -errno.
 */
int exp_otlp_create(struct agent *ag, struct exporter **out);

#endif
