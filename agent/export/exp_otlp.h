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

struct agent_config;
/*
 * The same for one instance: its settings in cfg (instances.h,
 * inst_merged_config), forced_proto an enum otlp_protocol (UNSET: from
 * the settings), name the exporter's name (NULL: the kind's).
 */
int exp_otlp_create_cfg(struct agent *ag, const struct agent_config *cfg, int forced_proto,
			const char *name, struct exporter **out);

#endif
