/* SPDX-License-Identifier: MIT */
/*
 * The OTLP kinds (otlp, otlp_http, otlp_grpc): resolve an instance's
 * settings and the OTEL_EXPORTER_OTLP_* environment (otlp_conf.c), start
 * the transport the protocol names, give the instance its hold budget and
 * spool (otlp_base.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "exporter.h"
#include "log.h"
#include "otlp_base.h"

/*
 * One OTLP instance from its settings cfg; forced: the protocol its kind
 * implies (UNSET: the settings choose). name: the instance's (NULL: the
 * unnamed instance, named after its transport).
 */
static int otlp_create(const struct exp_host *host, const struct agent_config *cfg,
		       enum otlp_protocol forced, const char *name, struct exporter **out)
{
	struct otlp_conf conf;
	char err[512];
	const char *nm = name ? name : "OTLP exporter";
	int rc = otlp_conf_resolve(&conf, cfg, forced, otlp_getenv, err, sizeof(err));
	if (rc) {
		log_error("%s: %s", nm, err);
		return rc;
	}
	log_info("%s: %s to %s (endpoint from %s, protocol from %s), timeout %.3fs "
		 "(%s), %zu headers (%s), compression %s (%s)",
		 nm, otlp_protocol_name(conf.protocol), conf.url, conf.src_endpoint, conf.src_protocol,
		 (double)conf.timeout_ns / 1e9, conf.src_timeout, conf.n_headers, conf.src_headers,
		 conf.gzip ? "gzip" : "none", conf.src_compression);
	if (conf.protocol == OTLP_PROTO_GRPC)
		rc = otlp_grpc_create(host, &conf, out);
	else
		rc = otlp_http_create(host, &conf, out);
	if (rc) {
		log_error("%s: cannot start: %s", nm, strerror(-rc));
		otlp_conf_free(&conf);
		return rc;
	}
	if (name)
		snprintf((*out)->name, sizeof((*out)->name), "%s", name);
	/* Hold budget and spool: <state_dir>/spool/<name, '/' as '.'>. */
	struct otlp_base *ob = container_of(*out, struct otlp_base, e);
	char dir[PATH_MAX];
	const char *sdir = cfg->otlp_spool_dir;
	if (!sdir && cfg->otlp_spool_bytes) {
		char state[PATH_MAX - 64];
		agent_state_dir(cfg, state, sizeof(state));
		char id[sizeof(ob->e.name)];
		snprintf(id, sizeof(id), "%s", ob->e.name);
		for (char *q = id; *q; q++)
			if (*q == '/')
				*q = '.';
		snprintf(dir, sizeof(dir), "%s/spool/%s", state, id);
		sdir = dir;
	}
	rc = otlp_base_setup_spool(ob, cfg->otlp_hold_budget, cfg->otlp_probe_interval_us * 1000,
				   sdir, cfg->otlp_spool_bytes);
	if (rc) {
		log_error("%s: spool: %s", nm, strerror(-rc));
		(*out)->ops->destroy(*out);
		*out = NULL;
	}
	return rc;
}

/* The unnamed instance: one OTLP kind at most is enabled agent-wide. */
static int otlp_create_unnamed(const struct exp_host *host, const struct agent_config *cfg,
			       struct exporter **out)
{
	enum otlp_protocol forced;
	if (otlp_kind_protocol(cfg->exporters, &forced)) {
		log_error("exporters: enable one of otlp, otlp_http, otlp_grpc (one OTLP exporter "
			  "per agent)");
		return -EINVAL;
	}
	return otlp_create(host, cfg, forced, NULL, out);
}

int exp_otlp_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			 const char *name, struct exporter **out)
{
	if (!name)
		return otlp_create_unnamed(host, cfg, out);
	return otlp_create(host, cfg, OTLP_PROTO_UNSET, name, out);
}

int exp_otlp_http_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			      const char *name, struct exporter **out)
{
	if (!name)
		return otlp_create_unnamed(host, cfg, out);
	/* A named otlp_http instance may speak http/json (its protocol key). */
	bool json = cfg->otlp_protocol &&
		    otlp_protocol_parse(cfg->otlp_protocol) == OTLP_PROTO_HTTP_JSON;
	return otlp_create(host, cfg, json ? OTLP_PROTO_HTTP_JSON : OTLP_PROTO_HTTP_PROTOBUF, name,
			   out);
}

int exp_otlp_grpc_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			      const char *name, struct exporter **out)
{
	if (!name)
		return otlp_create_unnamed(host, cfg, out);
	return otlp_create(host, cfg, OTLP_PROTO_GRPC, name, out);
}
