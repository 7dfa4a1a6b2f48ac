/* SPDX-License-Identifier: MIT */
/*
 * Configuration of the OTLP exporters (OTLP/HTTP and OTLP/gRPC): the
 * agent's own keys (otlp.*) and the OpenTelemetry environment variables,
 * resolved once at start with the specification's precedence:
 *
 *   agent config (file or flag)  >  OTEL_EXPORTER_OTLP_TRACES_*  >
 *   OTEL_EXPORTER_OTLP_*  >  default
 *
 * Endpoint URLs follow the OTLP exporter specification: the generic
 * endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, key otlp.endpoint) is a base URL
 * to which "v1/traces" is appended for OTLP/HTTP; the traces endpoint
 * (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, key otlp.traces_endpoint) is used
 * as it is. OTLP/gRPC uses only scheme, host and port of either.
 *
 * Everything here is pure (the environment comes through a function), so
 * the unit tests cover every rule.
 */
#ifndef SPANRING_AGENT_OTLP_CONF_H
#define SPANRING_AGENT_OTLP_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agent_config;

enum otlp_protocol {
	OTLP_PROTO_UNSET = 0,
	OTLP_PROTO_HTTP_PROTOBUF,
	OTLP_PROTO_HTTP_JSON,
	OTLP_PROTO_GRPC,
};

struct otlp_header {
	char *name;  /* lower case for gRPC, as given for HTTP/1.1 */
	char *value; /* percent-decoded */
};

struct otlp_url {
	bool tls;        /* https:// */
	bool no_scheme;  /* gRPC "host:port" (TLS unless OTEL_EXPORTER_OTLP_INSECURE=true) */
	char *host;      /* without brackets for IPv6 literals */
	uint16_t port;
	char *path;      /* path and query, starts with '/' */
	char *authority; /* Host header / :authority */
};

struct otlp_conf {
	enum otlp_protocol protocol;
	char *url;       /* the effective URL, for logs */
	struct otlp_url u;
	struct otlp_header *headers;
	size_t n_headers;
	uint64_t timeout_ns;
	bool gzip;
	uint64_t retry_initial_ns, retry_max_backoff_ns, retry_max_elapsed_ns;
	uint32_t max_held;
	uint64_t max_request_bytes;
	uint32_t max_streams;
	uint64_t zerocopy_min; /* 0: MSG_ZEROCOPY off */
	int sndbuf;            /* SO_SNDBUF of the connection, 0: the system's (tests) */
	/*
	 * TLS (tls.c): on for https:// and for a gRPC endpoint without
	 * scheme unless OTEL_EXPORTER_OTLP_[TRACES_]INSECURE=true. A TLS
	 * setting with a cleartext endpoint is an error, never ignored.
	 */
	bool tls;
	char *tls_ca_file, *tls_cert_file, *tls_key_file, *tls_server_name;
	int tls_min_version;  /* TLS1_2_VERSION (0x0303) or TLS1_3_VERSION (0x0304) */
	bool tls_insecure_skip_verify;
	const char *src_tls_ca, *src_tls_cert, *src_tls_key;
	/* where endpoint, headers, timeout, protocol, compression came from */
	const char *src_endpoint, *src_headers, *src_timeout, *src_protocol, *src_compression;
};

typedef const char *(*otlp_getenv_fn)(const char *name);

/*
 * Resolve the configuration of an OTLP exporter. forced is the protocol
 * the exporter kind implies (otlp_http, otlp_grpc) or OTLP_PROTO_UNSET
 * (kind otlp: protocol from the settings). Invalid environment values are
 * ignored with a warning (logged); invalid agent settings fail with -EINVAL
 * and a message in err. 0 or -errno.
 */
int otlp_conf_resolve(struct otlp_conf *c, const struct agent_config *ac,
		      enum otlp_protocol forced, otlp_getenv_fn env, char *err, size_t errlen);
void otlp_conf_free(struct otlp_conf *c);

/*
 * For agent_config_finish (so that --check-config and a bad start report
 * it like any setting): at most one OTLP exporter kind, and its settings
 * resolve. 0 or -EINVAL with err set.
 */
int otlp_conf_check(const struct agent_config *ac, char *err, size_t errlen);

/*
 * The protocol the enabled OTLP exporter kind implies (agent_config
 * exporters bits): otlp_http, otlp_grpc, or UNSET for kind otlp (then the
 * settings decide). -EINVAL when more than one kind is enabled, -ENOENT
 * when none is.
 */
int otlp_kind_protocol(uint32_t exporters, enum otlp_protocol *out);
/* getenv(3), as an otlp_getenv_fn. */
const char *otlp_getenv(const char *name);

/* "http/protobuf", "http/json", "grpc" -> protocol; UNSET if unknown. */
enum otlp_protocol otlp_protocol_parse(const char *s);
const char *otlp_protocol_name(enum otlp_protocol p);

/*
 * Parse an endpoint URL: http:// or https:// (u->tls; default ports 80
 * and 443); for gRPC a bare "host:port" is accepted too (u->no_scheme).
 * 0 or -EINVAL with err set.
 */
int otlp_url_parse(const char *s, bool grpc, struct otlp_url *u, char *err, size_t errlen);
void otlp_url_free(struct otlp_url *u);

/*
 * The OTLP/HTTP URL for a base URL: "v1/traces" appended to the path,
 * with exactly one '/' between. malloc'd string or NULL.
 */
char *otlp_url_append_traces(const char *base);

/*
 * Parse a header list "k1=v1,k2=v2" (W3C baggage form without
 * properties; values percent-decoded, blanks around keys and values
 * dropped). strict: the first bad entry fails (-EINVAL, err set);
 * otherwise bad entries are skipped and counted in *skipped. Names are
 * lowered when lower is set (HTTP/2). Headers the exporter writes itself
 * (content-type, content-length, host, ...) are refused.
 */
int otlp_headers_parse(const char *s, bool strict, bool lower, struct otlp_header **out,
		       size_t *n, size_t *skipped, char *err, size_t errlen);
void otlp_headers_free(struct otlp_header *h, size_t n);

#endif
