/* SPDX-License-Identifier: MIT */
/*
 * Named exporter instances, in the OpenTelemetry Collector's style
 * TYPE[/NAME]: otlp_http/tempo, otlp_grpc/jaeger, file/archive, console.
 *
 * Every instance is one row of the table in struct agent_config (inst,
 * n_inst). An unnamed instance (TYPE alone) is configured by the agent-wide
 * keys as before (file.path, otlp.*); a named one by keys
 * "TYPE/NAME.KEY = value" (file) or --TYPE/NAME.KEY=value (flag). A
 * per-instance KEY is the agent-wide key of its type without the prefix:
 * for OTLP instances every otlp.* key (otlp.timeout -> .timeout; a key
 * added to otlp.* later, TLS for instance, is per-instance at once),
 * for file path/rotate_bytes/rotate_keep, and retry_max for
 * export_retry_max. The instance keeps its own values in a private
 * struct agent_config (ov) and, to build its exporter, lays them over the
 * agent's (inst_merged_config): agent-wide otlp.* values other than the
 * endpoint are defaults for every OTLP instance, then the
 * OTEL_EXPORTER_OTLP_* environment, then the built-in defaults.
 */
#ifndef SPANRING_AGENT_INSTANCES_H
#define SPANRING_AGENT_INSTANCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agent_config;

#define INST_MAX 64    /* instances at once (named and unnamed) */
#define INST_ID_MAX 32 /* "TYPE/NAME" with its NUL: fits exporter.name */

struct inst_setting {
	char *key;   /* the agent-wide key it maps to (otlp.timeout) */
	char *ikey;  /* as written (timeout) */
	char *where; /* "file:line" or "--flag" */
};

struct exp_instance {
	char id[INST_ID_MAX];  /* "otlp_http/tempo", or "file" (unnamed) */
	uint32_t type;         /* AGENT_EXP_* bit of its kind (exporter.h, exp_kinds) */
	bool named;
	bool enabled;
	bool from_list;        /* enabled by the 'exporters' key (which replaces) */
	char *enabled_at;
	struct agent_config *ov; /* the instance's own values (named only) */
	struct inst_setting *set;
	size_t n_set;
	char *url;             /* effective traces URL of 'endpoint' (merged view) */
};

/*
 * Enable instance ID (TYPE or TYPE/NAME). from_list: by the 'exporters'
 * key. An instance enabled twice (other than by the list, which replaces
 * itself) is an error naming both places. 0 or -EINVAL / -ENOMEM.
 */
int inst_enable(struct agent_config *c, const char *id, size_t idlen, bool from_list,
		const char *where, char *err, size_t errlen);

/* The 'exporters' key: replaces what the previous list enabled. */
int inst_set_list(struct agent_config *c, const char *value, const char *where, char *err,
		  size_t errlen);

/*
 * key is "TYPE/NAME.KEY": store the value for that instance. -ENOENT when
 * key is not of that form (an agent-wide key), -EINVAL with err set for an
 * unknown type, name or key, or a bad value.
 */
int inst_set(struct agent_config *c, const char *key, const char *value, const char *where,
	     char *err, size_t errlen);

/* The instance that has this id, or NULL. */
struct exp_instance *inst_find(const struct agent_config *c, const char *id, size_t idlen);

/*
 * Checks at agent_config_finish: settings of an instance that is not
 * enabled, settings the instance's protocol does not use, each named OTLP
 * instance resolves. 0 or -EINVAL with err set.
 */
int inst_finish(struct agent_config *c, char *err, size_t errlen);

/*
 * The configuration instance in works with: c with the instance's own
 * values laid over it (a shallow copy: owns nothing; valid while c and
 * the instance live). For OTLP instances the agent-wide endpoint keys do
 * not apply (each instance names its own backend).
 */
void inst_merged_config(const struct agent_config *c, const struct exp_instance *in,
			struct agent_config *out);

/* The enum otlp_protocol an OTLP instance's type implies (UNSET for type
 * otlp: its settings decide), with its merged configuration m. */
int inst_forced_protocol(const struct exp_instance *in, const struct agent_config *m);

/*
 * An endpoint as a user types it (CLI, 'endpoint' of an instance): a base
 * URL; "/v1/traces" is appended when it has no path. malloc'd or NULL.
 */
char *inst_endpoint_url(const char *url);

void inst_free_all(struct agent_config *c);

#endif
