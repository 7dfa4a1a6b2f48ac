/* SPDX-License-Identifier: MIT */
/*
 * Agent configuration: defaults, a `key = value` file and command-line
 * flags (every key is also a flag: --key=value). Each invalid setting is
 * reported with the key, the value and where it came from.
 */
#ifndef SPANRING_AGENT_CONFIG_H
#define SPANRING_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exporter kinds (bits of agent_config.exporters). */
enum {
	AGENT_EXP_FILE = 1u << 0,
	AGENT_EXP_JSON = 1u << 1,
	AGENT_EXP_CONSOLE = 1u << 2,
	AGENT_EXP_NULL = 1u << 3,
	AGENT_EXP_OTLP = 1u << 4,      /* OTLP, protocol from otlp.protocol / env */
	AGENT_EXP_OTLP_HTTP = 1u << 5, /* OTLP/HTTP (protobuf) */
	AGENT_EXP_OTLP_GRPC = 1u << 6, /* OTLP/gRPC */
};

struct agent_config {
	char *socket_path;          /* NULL until agent_config_finish(): sr_socket_path() */
	uint32_t socket_mode;
	char *ctl_path;             /* NULL: <socket>.ctl */
	uint32_t ctl_mode;
	uint32_t *allow_uids;       /* NULL/0: every uid */
	size_t n_allow_uids;
	uint32_t *allow_gids;
	size_t n_allow_gids;
	uint32_t max_producers;
	uint32_t max_producers_per_uid;
	uint64_t max_mapped_per_uid; /* bytes of rings (and scope copies) of one uid */
	uint64_t max_scope_bytes;   /* scope entries copied per producer */
	uint64_t reg_timeout_us;    /* a connection must register within this */
	int log_level;
	uint64_t poll_min_us, poll_max_us;
	uint64_t batch_max_bytes;
	uint64_t batch_max_age_us;  /* latency_bound (batch_max_age is its old name) */
	uint32_t max_inflight_batches;
	uint32_t watermark_pct;
	uint32_t metrics_port;      /* 0: no Prometheus listener */
	char *metrics_address;      /* NULL: 127.0.0.1 */
	uint32_t exporters;         /* AGENT_EXP_* */
	char *file_path;
	uint64_t file_rotate_bytes;
	uint32_t file_rotate_keep;
	char *json_path;
	uint64_t json_rotate_bytes;
	uint32_t json_rotate_keep;
	char *console_path;
	uint32_t output_mode;       /* permission bits of output files it creates */
	uint64_t export_retry_max_us;
	uint64_t shutdown_timeout_us;
	char *host_name;            /* NULL: gethostname() */
	char *host_id;              /* NULL: /etc/machine-id */
	bool zc_check;              /* debug_zero_copy_check */
	/* OTLP exporters (agent/export/otlp_conf.c): unset (NULL, 0) means the
	 * OTEL_EXPORTER_OTLP_* environment, then the defaults. */
	char *otlp_endpoint;        /* base URL, v1/traces appended */
	char *otlp_traces_endpoint; /* full URL, used as is */
	char *otlp_protocol;
	char *otlp_headers;
	char *otlp_compression;
	uint64_t otlp_timeout_us;
	uint64_t otlp_retry_initial_us, otlp_retry_max_backoff_us;
	uint32_t otlp_max_held;
	uint64_t otlp_max_request_bytes;
	uint32_t otlp_max_streams;
	uint64_t otlp_zerocopy_min; /* 0: MSG_ZEROCOPY off */
	/* Isolation of OTLP instances (per instance as TYPE/NAME.KEY) */
	uint64_t otlp_hold_budget;  /* ring bytes held; 0: no limit */
	uint64_t otlp_spool_bytes;  /* 0: no spool */
	char *otlp_spool_dir;       /* NULL: <state_dir>/spool/<instance> */
	uint64_t otlp_probe_interval_us;
	char *state_dir;            /* NULL: agent_state_dir() */
	/* Exporter instances TYPE[/NAME] (agent/instances.h); the unnamed
	 * ones enabled are also the bits of `exporters`. */
	struct exp_instance *inst;
	size_t n_inst;
	/* TLS (https://): NULL/false means the environment, then the default */
	char *otlp_tls_ca_file, *otlp_tls_cert_file, *otlp_tls_key_file;
	char *otlp_tls_server_name, *otlp_tls_min_version;
	bool otlp_tls_insecure;
};

void agent_config_defaults(struct agent_config *c);
void agent_config_free(struct agent_config *c);

/*
 * Set one key from its text value. A key TYPE/NAME.KEY sets that of an
 * exporter instance (agent/instances.h). Returns 0, or -EINVAL / -ENOENT
 * (unknown key) with a message in err naming the key and the value.
 */
int agent_config_set(struct agent_config *c, const char *key, const char *value, char *err,
		     size_t errlen);

/* Is key an agent-wide key? */
bool agent_config_has_key(const char *key);
/* Copy the value of key from src to dst (shallow for strings and lists). */
void agent_config_copy_key(struct agent_config *dst, const struct agent_config *src,
			   const char *key);

/*
 * Parse the contents of a config file (buf, len bytes, need not be
 * NUL-terminated; `name` is used in messages). Lines are `key = value`;
 * blank lines and lines starting with '#' or ';' are ignored; a value may
 * be in double quotes. Stops at the first error: returns -EINVAL with
 * "name:line: ..." in err. Safe on arbitrary bytes (a fuzz target).
 */
int agent_config_parse_file(struct agent_config *c, const char *buf, size_t len,
			    const char *name, char *err, size_t errlen);

/* Read the file at path and parse it. 0 or -errno with err set. */
int agent_config_load(struct agent_config *c, const char *path, char *err, size_t errlen);

enum agent_config_action {
	AGENT_CFG_RUN = 0,
	AGENT_CFG_HELP,
	AGENT_CFG_VERSION,
	AGENT_CFG_CHECK, /* --check-config: validate and exit */
};

/*
 * Apply the command line: --config FILE first (wherever it is), then every
 * other flag in order, so flags override the file. *action tells main what
 * to do. 0 or -EINVAL with err set.
 */
int agent_config_parse_args(struct agent_config *c, int argc, char **argv, int *action,
			    char *err, size_t errlen);

/*
 * Fill what depends on other settings or the environment (socket path from
 * $SPANRING_SOCKET and the defaults, control socket path, default
 * exporter) and check combinations. 0 or -EINVAL with err set.
 */
int agent_config_finish(struct agent_config *c, char *err, size_t errlen);

/*
 * The agent's state directory (spools): state_dir, else /var/lib/spanring
 * for root, $XDG_STATE_HOME/spanring, $HOME/.local/state/spanring,
 * /tmp/spanring-<uid>/state.
 */
void agent_state_dir(const struct agent_config *c, char *buf, size_t n);

/* --help text: every flag and key with its default. */
void agent_config_usage(FILE *f);

#endif
