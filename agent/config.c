/* SPDX-License-Identifier: MIT */
/* Agent configuration (see config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "instances.h"
#include "log.h"
#include "otlp_conf.h"
#include "sockpath.h"

enum cfg_type {
	CT_STR,      /* non-empty string */
	CT_MODE,     /* octal permission bits, none outside the mask max */
	CT_U32,      /* decimal in [min, max] */
	CT_SIZE,     /* bytes with optional K/M/G suffix, in [min, max] */
	CT_DURATION, /* with unit ns/us/ms/s/m/h, stored in us, in [min, max] us */
	CT_BOOL,
	CT_LOGLEVEL,
	CT_IDLIST,   /* comma-separated numeric uids/gids */
	CT_EXPORTERS,
};

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t off;     /* of the value in struct agent_config */
	size_t off_n;   /* CT_IDLIST: of the count */
	uint64_t min, max;
	const char *def; /* default, as shown by --help */
	const char *help;
};

#define OFF(f) offsetof(struct agent_config, f)
#define KB 1024ull
#define MB (1024ull * 1024ull)
#define GB (1024ull * MB)
#define MS 1000ull
#define SEC 1000000ull

static const struct cfg_key cfg_keys[] = {
	{"socket", CT_STR, OFF(socket_path), 0, 0, 0,
	 "$SPANRING_SOCKET, /run/spanring/agent.sock (root), $XDG_RUNTIME_DIR/spanring.sock, "
	 "/tmp/spanring-<uid>/agent.sock",
	 "unix socket producers register on"},
	{"socket_mode", CT_MODE, OFF(socket_mode), 0, 0, 0777, "0666",
	 "permission bits of the socket (octal)"},
	{"control_socket", CT_STR, OFF(ctl_path), 0, 0, 0, "<socket>.ctl",
	 "control socket (stats, rings, ring fds for spanring-dump)"},
	{"control_socket_mode", CT_MODE, OFF(ctl_mode), 0, 0, 0777, "0666",
	 "permission bits of the control socket (octal)"},
	{"allow_uids", CT_IDLIST, OFF(allow_uids), OFF(n_allow_uids), 0, 0, "(any)",
	 "comma-separated uids allowed to register (SO_PEERCRED)"},
	{"allow_gids", CT_IDLIST, OFF(allow_gids), OFF(n_allow_gids), 0, 0, "(any)",
	 "comma-separated gids allowed to register (the peer's primary gid)"},
	{"max_producers", CT_U32, OFF(max_producers), 0, 1, 1000000, "4096",
	 "rings served at once"},
	{"max_producers_per_uid", CT_U32, OFF(max_producers_per_uid), 0, 1, 1000000, "1024",
	 "rings one uid may have registered at once"},
	{"max_mapped_per_uid", CT_SIZE, OFF(max_mapped_per_uid), 0, 64 * KB, 1024 * GB, "4G",
	 "bytes of rings one uid may have mapped in the agent (each with what its scope "
	 "copies may cost, at most max_scope_bytes)"},
	{"max_scope_bytes", CT_SIZE, OFF(max_scope_bytes), 0, 4 * KB, 1 * MB, "64K",
	 "what the scope entries the agent copies may cost per producer, 64 bytes each "
	 "beyond their own (more: quarantined)"},
	{"registration_timeout", CT_DURATION, OFF(reg_timeout_us), 0, 1 * MS, 3600 * SEC, "5s",
	 "a connection that has not sent its request by then is closed"},
	{"log_level", CT_LOGLEVEL, OFF(log_level), 0, 0, 0, "info", "error, warn, info or debug"},
	{"poll_interval_min", CT_DURATION, OFF(poll_min_us), 0, 50, 10 * SEC, "1ms",
	 "ring scan interval while spans flow fast enough to fill batches by size"},
	{"poll_interval_max", CT_DURATION, OFF(poll_max_us), 0, 50, 10 * SEC, "5ms",
	 "scan interval while a ring cannot wake the agent (ABI < 1.2, no doorbell)"},
	{"latency_bound", CT_DURATION, OFF(batch_max_age_us), 0, 0, 60 * SEC, "10ms",
	 "longest a span waits in the agent before it is handed to the exporters; "
	 "batches grow toward it at low rates (0: ship at every scan)"},
	{"batch_max_bytes", CT_SIZE, OFF(batch_max_bytes), 0, 4 * KB, 64 * MB, "256K",
	 "an export batch is sent once it holds this many span bytes"},
	{"batch_max_age", CT_DURATION, OFF(batch_max_age_us), 0, 0, 60 * SEC, "10ms",
	 "the same setting as latency_bound (older name)"},
	{"max_inflight_batches", CT_U32, OFF(max_inflight_batches), 0, 1, 1000000, "1024",
	 "batches not yet released by every exporter before draining pauses"},
	{"watermark_pct", CT_U32, OFF(watermark_pct), 0, 1, 100, "50",
	 "slot fill (percent) at which producers ring the doorbell"},
	{"metrics_port", CT_U32, OFF(metrics_port), 0, 0, 65535, "0 (off)",
	 "serve Prometheus text, /healthz and /readyz on <metrics_address>:<port>"},
	{"metrics_address", CT_STR, OFF(metrics_address), 0, 0, 0, "127.0.0.1",
	 "numeric IPv4 or IPv6 address of the metrics listener"},
	{"exporters", CT_EXPORTERS, OFF(exporters), 0, 0, 0, "console",
	 "comma-separated instances TYPE or TYPE/NAME; types: file, json, console, null, "
	 "otlp, otlp_http, otlp_grpc"},
	{"file.path", CT_STR, OFF(file_path), 0, 0, 0, "spans.pb",
	 "file exporter: output (varint-length-delimited ExportTraceServiceRequest)"},
	{"file.rotate_bytes", CT_SIZE, OFF(file_rotate_bytes), 0, 0, 1024 * GB, "64M",
	 "file exporter: rotate to <path>.1 ... at this size (0: never)"},
	{"file.rotate_keep", CT_U32, OFF(file_rotate_keep), 0, 0, 1000, "5",
	 "file exporter: rotated files kept"},
	{"json.path", CT_STR, OFF(json_path), 0, 0, 0, "spans.jsonl",
	 "OTLP/JSON exporter: output, one request per line ('-': stdout)"},
	{"json.rotate_bytes", CT_SIZE, OFF(json_rotate_bytes), 0, 0, 1024 * GB, "64M",
	 "OTLP/JSON exporter: rotation size (0: never)"},
	{"json.rotate_keep", CT_U32, OFF(json_rotate_keep), 0, 0, 1000, "5",
	 "OTLP/JSON exporter: rotated files kept"},
	{"console.path", CT_STR, OFF(console_path), 0, 0, 0, "-",
	 "console exporter: output ('-': stdout)"},
	{"output_mode", CT_MODE, OFF(output_mode), 0, 0, 0666, "0600",
	 "permission bits (octal) of the output files the agent creates (file, json, console)"},
	{"export_retry_max", CT_DURATION, OFF(export_retry_max_us), 0, 0, 24 * 3600 * SEC, "30s",
	 "how long an exporter retries a batch before letting it go (counted)"},
	{"shutdown_timeout", CT_DURATION, OFF(shutdown_timeout_us), 0, 0, 3600 * SEC, "10s",
	 "on SIGTERM, how long exporters get to finish"},
	{"host_name", CT_STR, OFF(host_name), 0, 0, 0, "gethostname()",
	 "host.name set on every producer's resource"},
	{"host_id", CT_STR, OFF(host_id), 0, 0, 0, "/etc/machine-id",
	 "host.id set on every producer's resource"},
	{"debug_zero_copy_check", CT_BOOL, OFF(zc_check), 0, 0, 0, "false",
	 "check that every span iovec handed to writev lies in a ring mapping "
	 "(also SPANRING_AGENT_ZC_CHECK=1)"},
	/* OTLP exporters: docs/EXPORTERS.md */
	{"otlp.endpoint", CT_STR, OFF(otlp_endpoint), 0, 0, 0,
	 "$OTEL_EXPORTER_OTLP_ENDPOINT, http://localhost:4318 (grpc: 4317)",
	 "OTLP base URL; HTTP appends v1/traces"},
	{"otlp.traces_endpoint", CT_STR, OFF(otlp_traces_endpoint), 0, 0, 0,
	 "$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTLP traces URL, used as is (wins over otlp.endpoint)"},
	{"otlp.protocol", CT_STR, OFF(otlp_protocol), 0, 0, 0,
	 "$OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, http/protobuf",
	 "exporter 'otlp': http/protobuf, http/json (copies) or grpc"},
	{"otlp.headers", CT_STR, OFF(otlp_headers), 0, 0, 0, "$OTEL_EXPORTER_OTLP_[TRACES_]HEADERS",
	 "request headers k1=v1,k2=v2 (values percent-decoded)"},
	{"otlp.timeout", CT_DURATION, OFF(otlp_timeout_us), 0, 0, 3600 * SEC,
	 "$OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT (ms), 10s", "OTLP: time limit of one export request"},
	{"otlp.compression", CT_STR, OFF(otlp_compression), 0, 0, 0,
	 "$OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION, none",
	 "OTLP: gzip or none (gzip rewrites the bytes: a copy)"},
	{"otlp.retry_initial", CT_DURATION, OFF(otlp_retry_initial_us), 0, 1 * MS, 3600 * SEC, "1s",
	 "OTLP: first retry backoff (doubles, with jitter; export_retry_max bounds it all)"},
	{"otlp.retry_max_backoff", CT_DURATION, OFF(otlp_retry_max_backoff_us), 0, 1 * MS,
	 3600 * SEC, "10s", "OTLP: largest backoff between two attempts"},
	{"otlp.max_held", CT_U32, OFF(otlp_max_held), 0, 1, 1000000, "16384",
	 "OTLP: batches held (sending or waiting); when full the oldest waiting is let go"},
	{"otlp.max_request_bytes", CT_SIZE, OFF(otlp_max_request_bytes), 0, 4 * KB, 256 * MB, "4M",
	 "OTLP: waiting batches are sent together in one request up to this size"},
	{"otlp.max_streams", CT_U32, OFF(otlp_max_streams), 0, 1, 1000, "8",
	 "OTLP/gRPC: concurrent streams (also capped by the server's setting)"},
	{"otlp.zerocopy_min", CT_SIZE, OFF(otlp_zerocopy_min), 0, 0, 256 * MB, "0 (off)",
	 "OTLP: MSG_ZEROCOPY for requests of at least this size on non-loopback TCP"},
	{"otlp.hold_budget", CT_SIZE, OFF(otlp_hold_budget), 0, 0, 64 * GB, "1M",
	 "OTLP: ring bytes an instance may hold (sending or waiting); beyond, its oldest "
	 "waiting batches go to its spool (without one: let go); 0: no limit"},
	{"otlp.spool_bytes", CT_SIZE, OFF(otlp_spool_bytes), 0, 0, 1024 * GB, "2G",
	 "OTLP: disk spool of an instance for what its backend cannot take (oldest let go "
	 "when full); 0: no spool"},
	{"otlp.spool_dir", CT_STR, OFF(otlp_spool_dir), 0, 0, 0, "<state_dir>/spool/<instance>",
	 "OTLP: the instance's spool directory"},
	{"otlp.probe_interval", CT_DURATION, OFF(otlp_probe_interval_us), 0, 10 * MS, 3600 * SEC,
	 "1s", "OTLP: a failed backend is tried this often while data waits"},
	{"state_dir", CT_STR, OFF(state_dir), 0, 0, 0,
	 "/var/lib/spanring (root), $XDG_STATE_HOME/spanring, ~/.local/state/spanring",
	 "the agent's state (exporter spools)"},
	/* TLS of the OTLP exporters (https://): agent/export/tls.c, docs/EXPORTERS.md */
	{"otlp.tls_ca_file", CT_STR, OFF(otlp_tls_ca_file), 0, 0, 0,
	 "$OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE, the system CA store",
	 "OTLP TLS: PEM file of the CAs that verify the server"},
	{"otlp.tls_cert_file", CT_STR, OFF(otlp_tls_cert_file), 0, 0, 0,
	 "$OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_CERTIFICATE", "OTLP TLS: client certificate (PEM, mTLS)"},
	{"otlp.tls_key_file", CT_STR, OFF(otlp_tls_key_file), 0, 0, 0,
	 "$OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_KEY", "OTLP TLS: client private key (PEM, mTLS)"},
	{"otlp.tls_server_name", CT_STR, OFF(otlp_tls_server_name), 0, 0, 0, "the endpoint's host",
	 "OTLP TLS: name sent as SNI and checked against the server certificate"},
	{"otlp.tls_min_version", CT_STR, OFF(otlp_tls_min_version), 0, 0, 0, "1.2",
	 "OTLP TLS: lowest protocol version, 1.2 or 1.3"},
	{"otlp.tls_insecure_skip_verify", CT_BOOL, OFF(otlp_tls_insecure), 0, 0, 0, "false",
	 "OTLP TLS: do not verify the server certificate (logged as a warning at every start)"},
};
#define N_KEYS (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

void agent_config_defaults(struct agent_config *c)
{
	memset(c, 0, sizeof(*c));
	c->socket_mode = 0666;
	c->ctl_mode = 0666;
	c->max_producers = 4096;
	c->max_producers_per_uid = 1024;
	c->max_mapped_per_uid = 4 * GB;
	c->max_scope_bytes = 64 * KB; /* the library's whole scope table */
	c->reg_timeout_us = 5 * SEC;
	c->log_level = AGENT_LOG_INFO;
	c->poll_min_us = 1 * MS;
	c->poll_max_us = 5 * MS;
	c->batch_max_bytes = 256 * KB; /* half a default slot: its doorbell watermark */
	c->batch_max_age_us = 10 * MS; /* latency_bound */
	c->max_inflight_batches = 1024;
	c->watermark_pct = 50;
	c->file_rotate_bytes = 64 * MB;
	c->file_rotate_keep = 5;
	c->json_rotate_bytes = 64 * MB;
	c->json_rotate_keep = 5;
	c->output_mode = 0600;
	c->export_retry_max_us = 30 * SEC;
	c->shutdown_timeout_us = 10 * SEC;
	c->otlp_retry_initial_us = 1 * SEC;
	c->otlp_retry_max_backoff_us = 10 * SEC;
	c->otlp_max_held = 16384;
	c->otlp_max_request_bytes = 4 * MB;
	c->otlp_max_streams = 8;
	c->otlp_hold_budget = 1 * MB;
	c->otlp_spool_bytes = 2 * GB; /* > 10 min at 10 k spans/s of 270 bytes */
	c->otlp_probe_interval_us = 1 * SEC;
}

void agent_state_dir(const struct agent_config *c, char *buf, size_t n)
{
	const char *x;
	if (c->state_dir)
		snprintf(buf, n, "%s", c->state_dir);
	else if (geteuid() == 0)
		snprintf(buf, n, "/var/lib/spanring");
	else if ((x = getenv("XDG_STATE_HOME")) && x[0] == '/')
		snprintf(buf, n, "%s/spanring", x);
	else if ((x = getenv("HOME")) && x[0] == '/')
		snprintf(buf, n, "%s/.local/state/spanring", x);
	else
		snprintf(buf, n, "/tmp/spanring-%u/state", (unsigned)geteuid());
}

void agent_config_free(struct agent_config *c)
{
	inst_free_all(c);
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		if (k->type == CT_STR || k->type == CT_IDLIST) {
			void **p = (void **)((char *)c + k->off);
			free(*p);
			*p = NULL;
		}
	}
}

/* Decimal unsigned integer; the whole of [s, e) must be digits. */
static int parse_u64(const char *s, const char *e, uint64_t *out)
{
	if (s == e)
		return -1;
	uint64_t v = 0;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	const char *e = s;
	while (*e >= '0' && *e <= '9')
		e++;
	uint64_t v, mul = 1;
	if (parse_u64(s, e, &v))
		return -1;
	if (*e) {
		static const struct {
			const char *suf;
			uint64_t mul;
		} sufs[] = {{"b", 1},	    {"k", KB},	     {"kb", KB},     {"kib", KB},
			    {"m", MB},	    {"mb", MB},	     {"mib", MB},    {"g", GB},
			    {"gb", GB},	    {"gib", GB},     {"t", 1024 * GB}, {"tib", 1024 * GB}};
		size_t i;
		for (i = 0; i < sizeof(sufs) / sizeof(sufs[0]); i++)
			if (strcasecmp(e, sufs[i].suf) == 0)
				break;
		if (i == sizeof(sufs) / sizeof(sufs[0]))
			return -1;
		mul = sufs[i].mul;
	}
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

/* Duration with a unit, in microseconds (sub-microsecond values round up). */
static int parse_duration_us(const char *s, uint64_t *out)
{
	const char *e = s;
	while (*e >= '0' && *e <= '9')
		e++;
	uint64_t v;
	if (parse_u64(s, e, &v))
		return -1;
	if (!*e) {
		if (v != 0) /* a bare number is ambiguous, except 0 */
			return -1;
		*out = 0;
		return 0;
	}
	if (strcmp(e, "ns") == 0) {
		*out = v / 1000 + (v % 1000 != 0);
		return 0;
	}
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = {{"us", 1}, {"ms", MS}, {"s", SEC}, {"m", 60 * SEC}, {"h", 3600 * SEC}};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(e, units[i].unit) == 0) {
			if (v > UINT64_MAX / units[i].mul)
				return -1;
			*out = v * units[i].mul;
			return 0;
		}
	}
	return -1;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* Comma-separated numeric ids; an empty value clears the list. */
static int parse_idlist(const char *s, uint32_t **out, size_t *n_out, const char **bad)
{
	uint32_t *ids = NULL;
	size_t n = 0;
	const char *p = s;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p) {
		*out = NULL;
		*n_out = 0;
		return 0;
	}
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *b = p;
		while (*p >= '0' && *p <= '9')
			p++;
		const char *e = p;
		while (*p == ' ' || *p == '\t')
			p++;
		uint64_t v;
		if (parse_u64(b, e, &v) || v >= UINT32_MAX || (*p && *p != ',')) {
			*bad = b;
			free(ids);
			return -1;
		}
		uint32_t *nids = realloc(ids, (n + 1) * sizeof(*ids));
		if (!nids) {
			free(ids);
			return -2;
		}
		ids = nids;
		ids[n++] = (uint32_t)v;
		if (!*p)
			break;
		p++; /* ',' */
	}
	*out = ids;
	*n_out = n;
	return 0;
}

static const struct cfg_key *cfg_find(const char *key)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(cfg_keys[i].name, key) == 0)
			return &cfg_keys[i];
	return NULL;
}

bool agent_config_has_key(const char *key)
{
	return cfg_find(key) != NULL;
}

void agent_config_copy_key(struct agent_config *dst, const struct agent_config *src,
			   const char *key)
{
	const struct cfg_key *k = cfg_find(key);
	if (!k)
		return;
	size_t sz;
	switch (k->type) {
	case CT_STR:
	case CT_IDLIST:
		sz = sizeof(void *);
		break;
	case CT_SIZE:
	case CT_DURATION:
		sz = sizeof(uint64_t);
		break;
	case CT_BOOL:
		sz = sizeof(bool);
		break;
	case CT_LOGLEVEL:
		sz = sizeof(int);
		break;
	default:
		sz = sizeof(uint32_t);
		break;
	}
	memcpy((char *)dst + k->off, (const char *)src + k->off, sz);
	if (k->type == CT_IDLIST)
		memcpy((char *)dst + k->off_n, (const char *)src + k->off_n, sizeof(size_t));
}

/* Where the key being set was written ("file:line", "--flag"), for the
 * checks that can only be made at the end (instances). */
static const char *cfg_where;

static int cfg_set_str(void *dst, const char *key, const char *value, char *err, size_t errlen)
{
	if (!*value) {
		agent_errf(err, errlen, "key '%s': empty value", key);
		return -EINVAL;
	}
	if (strlen(value) >= PATH_MAX) {
		agent_errf(err, errlen, "key '%s': value too long (%zu bytes)", key, strlen(value));
		return -EINVAL;
	}
	char *s = strdup(value);
	if (!s) {
		agent_errf(err, errlen, "key '%s': out of memory", key);
		return -ENOMEM;
	}
	free(*(char **)dst);
	*(char **)dst = s;
	return 0;
}

/* Octal permission bits within k->max, the mask of the bits allowed. */
static int cfg_set_mode(const struct cfg_key *k, void *dst, const char *key, const char *value,
			char *err, size_t errlen)
{
	uint64_t v = 0;
	const char *p = value;
	if (!*p)
		goto bad_mode;
	for (; *p; p++) {
		if (*p < '0' || *p > '7' || v > 07777)
			goto bad_mode;
		v = v * 8 + (uint64_t)(*p - '0');
	}
	if (v & ~k->max)
		goto bad_mode;
	*(uint32_t *)dst = (uint32_t)v;
	return 0;
bad_mode:
	agent_errf(err, errlen,
	     "key '%s': invalid value '%s': expected octal permission bits like 0660, "
	     "within %04llo",
	     key, value, (unsigned long long)k->max);
	return -EINVAL;
}

/* CT_U32, CT_SIZE and CT_DURATION: a number within [k->min, k->max]. */
static int cfg_set_number(const struct cfg_key *k, void *dst, const char *key, const char *value,
			  char *err, size_t errlen)
{
	uint64_t v = 0;
	int bad = k->type == CT_U32	 ? parse_u64(value, value + strlen(value), &v)
		  : k->type == CT_SIZE ? parse_size(value, &v)
				       : parse_duration_us(value, &v);
	unsigned long long lo = k->min, hi = k->max;
	if (!bad && v >= k->min && v <= k->max) {
		if (k->type == CT_U32)
			*(uint32_t *)dst = (uint32_t)v;
		else
			*(uint64_t *)dst = v;
		return 0;
	}
	if (k->type == CT_U32)
		agent_errf(err, errlen,
		     "key '%s': invalid value '%s': expected an integer from %llu to %llu", key,
		     value, lo, hi);
	else if (k->type == CT_SIZE)
		agent_errf(err, errlen,
		     "key '%s': invalid value '%s': expected a size from %llu to %llu bytes "
		     "(suffix K, M or G allowed)",
		     key, value, lo, hi);
	else
		agent_errf(err, errlen,
		     "key '%s': invalid value '%s': expected a duration with a unit (ns, us, ms, "
		     "s, m, h) from %lluus to %lluus",
		     key, value, lo, hi);
	return -EINVAL;
}

static int cfg_set_idlist(struct agent_config *c, const struct cfg_key *k, void *dst,
			  const char *key, const char *value, char *err, size_t errlen)
{
	uint32_t *ids;
	size_t n;
	const char *bad = value;
	int r = parse_idlist(value, &ids, &n, &bad);
	if (r == -2) {
		agent_errf(err, errlen, "key '%s': out of memory", key);
		return -ENOMEM;
	}
	if (r) {
		agent_errf(err, errlen,
		     "key '%s': invalid value '%s': expected comma-separated numeric ids "
		     "(bad entry at '%.32s')",
		     key, value, bad);
		return -EINVAL;
	}
	free(*(uint32_t **)dst);
	*(uint32_t **)dst = ids;
	*(size_t *)((char *)c + k->off_n) = n;
	return 0;
}

int agent_config_set(struct agent_config *c, const char *key, const char *value, char *err,
		     size_t errlen)
{
	const struct cfg_key *k = cfg_find(key);
	if (!k) {
		int ir = inst_set(c, key, value, cfg_where ? cfg_where : key, err, errlen);
		if (ir != -ENOENT)
			return ir;
		agent_errf(err, errlen, "unknown key '%s' (see --help)", key);
		return -ENOENT;
	}
	void *dst = (char *)c + k->off;
	switch (k->type) {
	case CT_STR:
		return cfg_set_str(dst, key, value, err, errlen);
	case CT_MODE:
		return cfg_set_mode(k, dst, key, value, err, errlen);
	case CT_U32:
	case CT_SIZE:
	case CT_DURATION:
		return cfg_set_number(k, dst, key, value, err, errlen);
	case CT_BOOL:
		if (parse_bool(value, (bool *)dst)) {
			agent_errf(err, errlen, "key '%s': invalid value '%s': expected true or false", key,
			     value);
			return -EINVAL;
		}
		return 0;
	case CT_LOGLEVEL: {
		int lvl = agent_log_level_parse(value);
		if (lvl < 0) {
			agent_errf(err, errlen,
			     "key '%s': invalid value '%s': expected error, warn, info or debug", key,
			     value);
			return -EINVAL;
		}
		*(int *)dst = lvl;
		return 0;
	}
	case CT_IDLIST:
		return cfg_set_idlist(c, k, dst, key, value, err, errlen);
	case CT_EXPORTERS: {
		char msg[384];
		int r = inst_set_list(c, value, cfg_where ? cfg_where : key, msg, sizeof(msg));
		if (r) {
			agent_errf(err, errlen, "key '%s': %s", key, msg);
			return r;
		}
		return 0;
	}
	}
	agent_errf(err, errlen, "key '%s': internal error", key);
	return -EINVAL;
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Apply one line (llen bytes, no newline) of a configuration file. */
static int cfg_parse_line(struct agent_config *c, const char *name, size_t lineno,
			  const char *line, size_t llen, char *err, size_t errlen)
{
	if (memchr(line, '\0', llen)) {
		agent_errf(err, errlen, "%s:%zu: NUL byte in line", name, lineno);
		return -EINVAL;
	}
	const char *b = line, *e = line + llen;
	while (b < e && is_blank(*b))
		b++;
	while (e > b && is_blank(e[-1]))
		e--;
	if (b == e || *b == '#' || *b == ';')
		return 0;
	if ((size_t)(e - b) > 8192) {
		agent_errf(err, errlen, "%s:%zu: line too long", name, lineno);
		return -EINVAL;
	}
	const char *eq = memchr(b, '=', (size_t)(e - b));
	if (!eq) {
		agent_errf(err, errlen, "%s:%zu: expected 'key = value', got '%.*s'", name, lineno,
		     (int)(e - b > 80 ? 80 : e - b), b);
		return -EINVAL;
	}
	const char *ke = eq;
	while (ke > b && is_blank(ke[-1]))
		ke--;
	const char *vb = eq + 1;
	while (vb < e && is_blank(*vb))
		vb++;
	if (ke == b) {
		agent_errf(err, errlen, "%s:%zu: missing key before '='", name, lineno);
		return -EINVAL;
	}
	char key[128];
	if ((size_t)(ke - b) >= sizeof(key)) {
		agent_errf(err, errlen, "%s:%zu: unknown key '%.64s...'", name, lineno, b);
		return -EINVAL;
	}
	memcpy(key, b, (size_t)(ke - b));
	key[ke - b] = 0;
	size_t vlen = (size_t)(e - vb);
	/* "quoted value": the quotes are dropped, nothing is unescaped. */
	if (vlen >= 1 && *vb == '"') {
		if (vlen < 2 || vb[vlen - 1] != '"') {
			agent_errf(err, errlen, "%s:%zu: key '%s': unterminated quote in value", name,
			     lineno, key);
			return -EINVAL;
		}
		vb++;
		vlen -= 2;
	}
	char *value = malloc(vlen + 1);
	if (!value) {
		agent_errf(err, errlen, "%s:%zu: out of memory", name, lineno);
		return -ENOMEM;
	}
	memcpy(value, vb, vlen);
	value[vlen] = 0;
	char where[300], msg[512];
	snprintf(where, sizeof(where), "%.256s:%zu", name, lineno);
	cfg_where = where;
	int r = agent_config_set(c, key, value, msg, sizeof(msg));
	cfg_where = NULL;
	free(value);
	if (r) {
		agent_errf(err, errlen, "%s:%zu: %s", name, lineno, msg);
		return r == -ENOMEM ? -ENOMEM : -EINVAL;
	}
	return 0;
}

int agent_config_parse_file(struct agent_config *c, const char *buf, size_t len,
			    const char *name, char *err, size_t errlen)
{
	size_t lineno = 0;
	size_t pos = 0;
	if (!name)
		name = "config";
	while (pos < len) {
		lineno++;
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos;
		pos += llen + (nl ? 1 : 0);
		int r = cfg_parse_line(c, name, lineno, line, llen, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

int agent_config_load(struct agent_config *c, const char *path, char *err, size_t errlen)
{
	int err_no;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err_no = errno;
		agent_errf(err, errlen, "config file '%s': %s", path, strerror(err_no));
		return -err_no;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
		agent_errf(err, errlen, "config file '%s': not a regular file of at most 1 MiB", path);
		close(fd);
		return -EINVAL;
	}
	size_t len = (size_t)st.st_size;
	char *buf = malloc(len + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	int r = agent_config_parse_file(c, buf, got, path, err, errlen);
	free(buf);
	return r;
}

/* Flag name (without leading dashes) -> config key: dashes become '_'. */
static void flag_to_key(const char *flag, size_t n, char *key, size_t keylen)
{
	size_t i;
	for (i = 0; i < n && i + 1 < keylen; i++)
		key[i] = flag[i] == '-' ? '_' : flag[i];
	key[i] = 0;
}

/* Enable an instance from a flag (where: the flag); then set its path or
 * endpoint from the flag's argument, if any. */
static int add_exporter(struct agent_config *c, const char *id, size_t idlen, const char *arg,
			const char *where, char *err, size_t errlen)
{
	int r = inst_enable(c, id, idlen, false, where, err, errlen);
	if (r || !arg)
		return r;
	struct exp_instance *in = inst_find(c, id, idlen);
	bool otlp = in->type & (AGENT_EXP_OTLP | AGENT_EXP_OTLP_HTTP | AGENT_EXP_OTLP_GRPC);
	char key[INST_ID_MAX + 32];
	if (in->type == AGENT_EXP_NULL) {
		agent_errf(err, errlen, "exporter '%s' takes no path", in->id);
		return -EINVAL;
	}
	if (in->named) {
		snprintf(key, sizeof(key), "%s.%s", in->id, otlp ? "endpoint" : "path");
		return agent_config_set(c, key, arg, err, errlen);
	}
	if (!otlp) {
		snprintf(key, sizeof(key), "%s.path", in->id);
		return agent_config_set(c, key, arg, err, errlen);
	}
	/* The unnamed OTLP instance: a base URL, v1/traces when no path. */
	char *url = inst_endpoint_url(arg);
	if (!url)
		return -ENOMEM;
	r = agent_config_set(c, "otlp.traces_endpoint", url, err, errlen);
	free(url);
	return r;
}

/* Load every -c FILE, --config FILE, --config=FILE, in order. */
static int cfg_args_config_files(struct agent_config *c, int argc, char **argv, char *err,
				 size_t errlen)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *path = NULL;
		if (strcmp(a, "--") == 0)
			break;
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				agent_errf(err, errlen, "%s: missing file name", a);
				return -EINVAL;
			}
			path = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			path = a + 9;
		}
		if (path) {
			int r = agent_config_load(c, path, err, errlen);
			if (r)
				return r;
		}
	}
	return 0;
}

/* Apply a flag with a value (-s X, --name X, --name=X) at argv[*i]; *i
 * moves past a value given as the next argument. */
static int cfg_flag_value(struct agent_config *c, int argc, char **argv, int *i, char *err,
			  size_t errlen)
{
	const char *a = argv[*i];
	const char *name, *value = NULL;
	size_t nlen;
	if (strcmp(a, "-s") == 0) {
		name = "socket";
		nlen = 6;
	} else if (strcmp(a, "-l") == 0) {
		name = "log-level";
		nlen = 9;
	} else if (strncmp(a, "--", 2) == 0 && a[2]) {
		name = a + 2;
		const char *eq = strchr(name, '=');
		nlen = eq ? (size_t)(eq - name) : strlen(name);
		if (eq)
			value = eq + 1;
	} else {
		agent_errf(err, errlen, "unexpected argument '%s' (see --help)", a);
		return -EINVAL;
	}
	char key[128];
	flag_to_key(name, nlen, key, sizeof(key));
	bool shortcut = strcmp(key, "file") == 0 || strcmp(key, "json") == 0 ||
			strcmp(key, "exporter") == 0;
	if (!shortcut && !cfg_find(key) && !strchr(key, '/')) {
		agent_errf(err, errlen, "unknown option '%s' (see --help)", a);
		return -EINVAL;
	}
	if (!value) {
		if (*i + 1 >= argc) {
			agent_errf(err, errlen, "option '%s' needs a value", a);
			return -EINVAL;
		}
		value = argv[++*i];
		/* "--file --check-config" is a forgotten value, not a file
		 * name: a value that starts with '-' goes in --KEY=VALUE. */
		if (value[0] == '-' && value[1]) {
			agent_errf(err, errlen,
			     "option '%s' needs a value, got the flag '%s' (a value that starts "
			     "with '-' is given as %.*s=VALUE)",
			     a, value, (int)(strchr(a, '=') ? strchr(a, '=') - a : (long)strlen(a)),
			     a);
			return -EINVAL;
		}
	}
	char where[160], msg[512];
	int r;
	snprintf(where, sizeof(where), "option '%.100s'", a);
	cfg_where = where;
	if (strcmp(key, "file") == 0) {
		r = add_exporter(c, "file", 4, value, where, msg, sizeof(msg));
	} else if (strcmp(key, "json") == 0) {
		r = add_exporter(c, "json", 4, value, where, msg, sizeof(msg));
	} else if (strcmp(key, "exporter") == 0) {
		/* --exporter TYPE[/NAME][:PATH_OR_URL] adds an instance (the
		 * 'exporters' key replaces the list). */
		const char *colon = strchr(value, ':');
		size_t nl = colon ? (size_t)(colon - value) : strlen(value);
		snprintf(where, sizeof(where), "option '%.40s %.*s'", a, (int)(nl < 64 ? nl : 64),
			 value);
		r = add_exporter(c, value, nl, colon ? colon + 1 : NULL, where, msg, sizeof(msg));
	} else {
		r = agent_config_set(c, key, value, msg, sizeof(msg));
	}
	cfg_where = NULL;
	if (r) {
		agent_errf(err, errlen, "option '%s': %s", a, msg);
		return -EINVAL;
	}
	return 0;
}

int agent_config_parse_args(struct agent_config *c, int argc, char **argv, int *action,
			    char *err, size_t errlen)
{
	char msg[512];
	*action = AGENT_CFG_RUN;
	/* The config file first, so that every flag overrides it. */
	int r = cfg_args_config_files(c, argc, argv, err, errlen);
	if (r)
		return r;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			i++;
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0)
			continue;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			*action = AGENT_CFG_HELP;
			return 0;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			*action = AGENT_CFG_VERSION;
			return 0;
		}
		if (strcmp(a, "--check-config") == 0) {
			*action = AGENT_CFG_CHECK;
			continue;
		}
		if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			c->log_level = AGENT_LOG_DEBUG;
			continue;
		}
		if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			c->log_level = AGENT_LOG_WARN;
			continue;
		}
		bool console = strcmp(a, "--console") == 0;
		if (console || strcmp(a, "--null") == 0) {
			r = add_exporter(c, console ? "console" : "null", console ? 7 : 4, NULL, a, msg,
					 sizeof(msg));
			if (r) {
				agent_errf(err, errlen, "option '%s': %s", a, msg);
				return -EINVAL;
			}
			continue;
		}
		if ((r = cfg_flag_value(c, argc, argv, &i, err, errlen)))
			return r;
	}
	return 0;
}

/* The registration and control socket paths: defaults, and checks. */
static int cfg_finish_sockets(struct agent_config *c, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	if (!c->socket_path) {
		const char *why = "does not fit";
		if (!sr_agent_socket_path(buf, sizeof(buf), &why)) {
			const char *env = getenv("SPANRING_SOCKET");
			if (env && *env)
				agent_errf(err, errlen, "socket: SPANRING_SOCKET '%s': %s", env, why);
			else
				agent_errf(err, errlen, "socket: default path '%s': %s", buf, why);
			return -EINVAL;
		}
		c->socket_path = strdup(buf);
		if (!c->socket_path)
			return -ENOMEM;
	}
	if (strlen(c->socket_path) >= 108) {
		agent_errf(err, errlen, "socket: path '%s' is longer than a unix socket address allows",
		     c->socket_path);
		return -EINVAL;
	}
	if (!c->ctl_path) {
		int n = snprintf(buf, sizeof(buf), "%s.ctl", c->socket_path);
		if (n < 0 || (size_t)n >= sizeof(buf))
			return -EINVAL;
		c->ctl_path = strdup(buf);
		if (!c->ctl_path)
			return -ENOMEM;
	}
	if (strlen(c->ctl_path) >= 108) {
		agent_errf(err, errlen,
		     "control_socket: path '%s' is longer than a unix socket address allows",
		     c->ctl_path);
		return -EINVAL;
	}
	if (strcmp(c->ctl_path, c->socket_path) == 0) {
		agent_errf(err, errlen, "control_socket: must differ from socket ('%s')", c->socket_path);
		return -EINVAL;
	}
	return 0;
}

/* The exporters: console when none is enabled, the output files' default
 * paths, and the checks between them. */
static int cfg_finish_outputs(struct agent_config *c, char *err, size_t errlen)
{
	bool any = false;
	for (size_t i = 0; i < c->n_inst; i++)
		any = any || c->inst[i].enabled;
	if (!any) {
		int r = inst_enable(c, "console", 7, true, "default", err, errlen);
		if (r)
			return r;
	}
	static const char *const defs[] = {"spans.pb", "spans.jsonl", "-"};
	char **paths[] = {&c->file_path, &c->json_path, &c->console_path};
	for (size_t i = 0; i < 3; i++) {
		if (!*paths[i]) {
			*paths[i] = strdup(defs[i]);
			if (!*paths[i])
				return -ENOMEM;
		}
	}
	if ((c->exporters & AGENT_EXP_FILE) && strcmp(c->file_path, "-") == 0) {
		agent_errf(err, errlen, "file.path: the file exporter needs a file, not '-'");
		return -EINVAL;
	}
	if ((c->exporters & AGENT_EXP_FILE) && (c->exporters & AGENT_EXP_JSON) &&
	    strcmp(c->file_path, c->json_path) == 0) {
		agent_errf(err, errlen, "file.path and json.path are the same file ('%s')", c->file_path);
		return -EINVAL;
	}
	return 0;
}

int agent_config_finish(struct agent_config *c, char *err, size_t errlen)
{
	int r = cfg_finish_sockets(c, err, errlen);
	if (r)
		return r;
	if (c->poll_min_us > c->poll_max_us) {
		agent_errf(err, errlen,
		     "poll_interval_min (%lluus) is larger than poll_interval_max (%lluus)",
		     (unsigned long long)c->poll_min_us, (unsigned long long)c->poll_max_us);
		return -EINVAL;
	}
	if ((r = cfg_finish_outputs(c, err, errlen)))
		return r;
	const char *zc = getenv("SPANRING_AGENT_ZC_CHECK");
	if (zc && *zc && strcmp(zc, "0") != 0)
		c->zc_check = true;
	r = otlp_conf_check(c, err, errlen); /* OTLP endpoint, headers, ... */
	if (r)
		return r;
	return inst_finish(c, err, errlen); /* named instances */
}

void agent_config_usage(FILE *f)
{
	fprintf(f,
		"Usage: spanring-agent [options]\n"
		"\n"
		"The spanring host agent: accepts producer rings on a unix socket, drains their\n"
		"spans and hands them to exporters without copying span bytes.\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE     read settings from FILE (key = value lines, # comments);\n"
		"                        flags given on the command line override it\n"
		"  -s, --socket PATH     same as --socket=PATH (key 'socket')\n"
		"  -l, --log-level LVL   same as --log-level=LVL (key 'log_level')\n"
		"  -v, --verbose         log_level = debug;  -q, --quiet: log_level = warn\n"
		"      --file PATH       enable the file exporter writing PATH\n"
		"      --json PATH       enable the OTLP/JSON lines exporter writing PATH ('-': stdout)\n"
		"      --console         enable the console exporter (one line per span)\n"
		"      --null            enable the null exporter (discards; for benchmarks)\n"
		"      --exporter NAME[:PATH]  enable exporter NAME (file, json, console, null),\n"
		"                        writing PATH for file, json and console\n"
		"      --exporter otlp_http[:URL], otlp_grpc[:URL], otlp[:URL]\n"
		"                        OTLP/HTTP or OTLP/gRPC to URL, a base URL (/v1/traces\n"
		"                        appended when it has no path);\n"
		"                        OTEL_EXPORTER_OTLP_* apply, see docs/EXPORTERS.md\n"
		"      --exporter TYPE/NAME[:URL_OR_PATH]  a named instance (any type, any number\n"
		"                        of them: otlp_http/tempo, otlp_grpc/jaeger, file/archive)\n"
		"      --check-config    validate the configuration and exit\n"
		"  -h, --help            this text;  -V, --version: the version\n"
		"\n"
		"Every configuration key below is also a flag: --KEY=VALUE or --KEY VALUE, with\n"
		"'-' or '_' alike (--latency-bound=5ms). Durations need a unit (ns, us, ms, s, m, h);\n"
		"sizes take K, M, G suffixes (powers of 1024). A value that starts with '-' is\n"
		"given as --KEY=VALUE.\n"
		"\n"
		"Named exporter instances: each key of a type is also TYPE/NAME.KEY (file) or\n"
		"--TYPE/NAME.KEY=VALUE (flag): otlp_* types take every otlp.* key without\n"
		"'otlp.' (endpoint: a base URL; traces_endpoint: as is) and retry_max; file and\n"
		"json take path, rotate_bytes, rotate_keep, retry_max; console takes path.\n"
		"The otlp.* keys (endpoint and protocol excepted) and OTEL_EXPORTER_OTLP_* are\n"
		"defaults for every OTLP instance. Unknown keys, duplicate names, settings of\n"
		"instances not enabled or not used by their protocol are errors.\n"
		"Each OTLP instance holds at most otlp.hold_budget bytes of the rings; beyond\n"
		"that, and while its backend is down, its batches go to its own bounded disk\n"
		"spool (otlp.spool_bytes, under state_dir), replayed oldest first once the\n"
		"backend answers (probed every otlp.probe_interval) and after a restart.\n"
		"\n"
		"Keys (default in brackets):\n");
	for (size_t i = 0; i < N_KEYS; i++)
		fprintf(f, "  %-22s %s [%s]\n", cfg_keys[i].name, cfg_keys[i].help, cfg_keys[i].def);
	fprintf(f,
		"\n"
		"Signals: SIGTERM/SIGINT drain every ring, flush the exporters and exit 0;\n"
		"SIGHUP reopens the output files. Environment: SPANRING_SOCKET (socket path),\n"
		"SPANRING_AGENT_ZC_CHECK=1 (debug_zero_copy_check), SPANRING_AGENT_POLL=1 (poll the\n"
		"rings every poll_interval_max instead of sleeping until a producer commits).\n"
		"See docs/AGENT.md.\n");
}
