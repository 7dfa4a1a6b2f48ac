/* SPDX-License-Identifier: MIT */
/* Named exporter instances (instances.h). */
#include "instances.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "exporter.h"
#include "otlp_conf.h"

#define OTLP_BITS (AGENT_EXP_OTLP | AGENT_EXP_OTLP_HTTP | AGENT_EXP_OTLP_GRPC)

/* The name of an instance's type, for messages. */
static const char *type_name(uint32_t bit)
{
	const struct exp_kind *k = exp_kind_by_bit(bit);
	return k ? k->type : "?";
}

struct exp_instance *inst_find(const struct agent_config *c, const char *id, size_t idlen)
{
	for (size_t i = 0; i < c->n_inst; i++)
		if (strlen(c->inst[i].id) == idlen && strncmp(c->inst[i].id, id, idlen) == 0)
			return &c->inst[i];
	return NULL;
}

static bool name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_';
}

/* The instance with this id, created (not enabled) if new. */
static struct exp_instance *inst_get(struct agent_config *c, const char *id, size_t idlen,
				     char *err, size_t errlen)
{
	const char *slash = memchr(id, '/', idlen);
	size_t tlen = slash ? (size_t)(slash - id) : idlen;
	const struct exp_kind *kind = exp_kind_by_type(id, tlen);
	if (!kind) {
		char known[128] = "";
		for (size_t i = 0, off = 0; i < exp_n_kinds && off < sizeof(known); i++)
			off += (size_t)snprintf(known + off, sizeof(known) - off, "%s%s",
						i ? ", " : "", exp_kinds[i].type);
		agent_errf(err, errlen,
		     "unknown exporter '%.*s' (known types: %s; an instance is TYPE or TYPE/NAME)",
		     (int)(tlen > 64 ? 64 : tlen), id, known);
		return NULL;
	}
	if (slash) {
		const char *n = slash + 1, *ne = id + idlen;
		bool ok = n < ne;
		for (const char *q = n; q < ne; q++)
			ok = ok && name_char(*q);
		if (!ok) {
			agent_errf(err, errlen,
			     "exporter '%.*s': the name after '/' must be letters, digits and '_'",
			     (int)(idlen > 64 ? 64 : idlen), id);
			return NULL;
		}
	}
	if (idlen >= INST_ID_MAX) {
		agent_errf(err, errlen, "exporter '%.*s': longer than %d characters",
		     (int)(idlen > 64 ? 64 : idlen), id, INST_ID_MAX - 1);
		return NULL;
	}
	struct exp_instance *in = inst_find(c, id, idlen);
	if (in)
		return in;
	if (c->n_inst >= INST_MAX) {
		agent_errf(err, errlen, "more than %d exporter instances", INST_MAX);
		return NULL;
	}
	struct exp_instance *ni = realloc(c->inst, (c->n_inst + 1) * sizeof(*ni));
	if (!ni) {
		agent_errf(err, errlen, "out of memory");
		return NULL;
	}
	c->inst = ni;
	in = &c->inst[c->n_inst];
	memset(in, 0, sizeof(*in));
	memcpy(in->id, id, idlen);
	in->id[idlen] = 0;
	in->type = kind->bit;
	in->named = slash != NULL;
	if (in->named) {
		in->ov = malloc(sizeof(*in->ov));
		if (!in->ov) {
			agent_errf(err, errlen, "out of memory");
			return NULL;
		}
		agent_config_defaults(in->ov);
	}
	c->n_inst++;
	return in;
}

/* The unnamed instances are enabled through the exporters bit mask, which
 * the rest of the agent reads. */
static void recompute_mask(struct agent_config *c)
{
	uint32_t m = 0;
	for (size_t i = 0; i < c->n_inst; i++)
		if (c->inst[i].enabled && !c->inst[i].named)
			m |= c->inst[i].type;
	c->exporters = m;
}

int inst_enable(struct agent_config *c, const char *id, size_t idlen, bool from_list,
		const char *where, char *err, size_t errlen)
{
	struct exp_instance *in = inst_get(c, id, idlen, err, errlen);
	if (!in)
		return -EINVAL;
	if (in->enabled && in->from_list && !from_list) {
		/* the config file's list, then a flag that gives its argument */
	} else if (in->enabled) {
		agent_errf(err, errlen, "exporter '%s' is enabled twice (first at %s): give each instance "
				  "its own name, TYPE/NAME",
		     in->id, in->enabled_at ? in->enabled_at : "?");
		return -EINVAL;
	}
	char *w = strdup(where ? where : "?");
	if (!w) {
		agent_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	free(in->enabled_at);
	in->enabled_at = w;
	in->enabled = true;
	in->from_list = from_list;
	recompute_mask(c);
	return 0;
}

int inst_set_list(struct agent_config *c, const char *value, const char *where, char *err,
		  size_t errlen)
{
	/* The list replaces what the previous list enabled. */
	for (size_t i = 0; i < c->n_inst; i++) {
		if (c->inst[i].enabled && c->inst[i].from_list) {
			c->inst[i].enabled = false;
			free(c->inst[i].enabled_at);
			c->inst[i].enabled_at = NULL;
		}
	}
	recompute_mask(c);
	const char *p = value;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *b = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		size_t len = (size_t)(p - b);
		while (*p == ' ' || *p == '\t')
			p++;
		if (len == 0 && !*p && b == value + strspn(value, " \t"))
			break; /* empty value: no exporter (the default applies) */
		if (len == 0 || (*p && *p != ',')) {
			agent_errf(err, errlen, "invalid value '%s': expected a comma-separated list of "
					  "TYPE or TYPE/NAME",
			     value);
			return -EINVAL;
		}
		char msg[256];
		int r = inst_enable(c, b, len, true, where, msg, sizeof(msg));
		if (r) {
			agent_errf(err, errlen, "invalid value '%s': %s", value, msg);
			return r;
		}
		if (!*p)
			break;
		p++;
	}
	return 0;
}

/* Per-instance key (as written) -> the agent-wide key. NULL if none. */
static const char *map_key(uint32_t type, const char *ikey, char *buf, size_t buflen)
{
	const struct exp_kind *k = exp_kind_by_bit(type);
	if (strcmp(ikey, "retry_max") == 0 && k->retry_max)
		return "export_retry_max";
	const char *pre = k->key_prefix;
	if (!pre || strchr(ikey, '.'))
		return NULL;
	snprintf(buf, buflen, "%s%s", pre, ikey);
	if (!agent_config_has_key(buf))
		return NULL;
	return buf;
}

int inst_set(struct agent_config *c, const char *key, const char *value, const char *where,
	     char *err, size_t errlen)
{
	const char *slash = strchr(key, '/');
	const char *dot = slash ? strchr(slash, '.') : NULL;
	if (!slash || (strchr(key, '.') && strchr(key, '.') < slash))
		return -ENOENT;
	if (!dot) {
		agent_errf(err, errlen, "unknown key '%s': a per-instance key is TYPE/NAME.KEY", key);
		return -EINVAL;
	}
	char msg[256];
	struct exp_instance *in = inst_get(c, key, (size_t)(dot - key), msg, sizeof(msg));
	if (!in) {
		agent_errf(err, errlen, "key '%s': %s", key, msg);
		return -EINVAL;
	}
	const char *ikey = dot + 1;
	char buf[128];
	const char *gkey = map_key(in->type, ikey, buf, sizeof(buf));
	if (!gkey) {
		agent_errf(err, errlen, "unknown key '%s': exporter type %s has no setting '%s' (see --help)",
		     key, type_name(in->type), ikey);
		return -EINVAL;
	}
	int r = agent_config_set(in->ov, gkey, value, msg, sizeof(msg));
	if (r) {
		/* the message names the agent-wide key: name the one written */
		agent_errf(err, errlen, "key '%s': %s", key, msg);
		return r;
	}
	for (size_t i = 0; i < in->n_set; i++) {
		if (strcmp(in->set[i].key, gkey) == 0) {
			char *w = strdup(where ? where : "?");
			if (!w)
				return -ENOMEM;
			free(in->set[i].where);
			in->set[i].where = w; /* the later one wins, as for every key */
			return 0;
		}
	}
	struct inst_setting *ns = realloc(in->set, (in->n_set + 1) * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	in->set = ns;
	ns[in->n_set].key = strdup(gkey);
	ns[in->n_set].ikey = strdup(ikey);
	ns[in->n_set].where = strdup(where ? where : "?");
	if (!ns[in->n_set].key || !ns[in->n_set].ikey || !ns[in->n_set].where) {
		free(ns[in->n_set].key);
		free(ns[in->n_set].ikey);
		free(ns[in->n_set].where);
		return -ENOMEM;
	}
	in->n_set++;
	return 0;
}

static const struct inst_setting *inst_setting(const struct exp_instance *in, const char *key)
{
	for (size_t i = 0; i < in->n_set; i++)
		if (strcmp(in->set[i].key, key) == 0)
			return &in->set[i];
	return NULL;
}

char *inst_endpoint_url(const char *url)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	p += strcspn(p, "/?#");
	size_t plen = strcspn(p, "?#");
	if (plen > 1 || (plen == 1 && p[0] != '/'))
		return strdup(url); /* it has a path: as is */
	return otlp_url_append_traces(url);
}

void inst_merged_config(const struct agent_config *c, const struct exp_instance *in,
			struct agent_config *out)
{
	*out = *c;
	/* What these point to belongs to c and the instances: the copy owns
	 * nothing (agent_config_free must not see it). */
	out->inst = NULL;
	out->n_inst = 0;
	if (!in->named)
		return;
	if (in->type & OTLP_BITS) {
		/* each instance names its own backend (or the environment's) */
		out->otlp_endpoint = NULL;
		out->otlp_traces_endpoint = NULL;
		/* the agent-wide protocol is for the unnamed 'otlp' kind */
		if (in->type != AGENT_EXP_OTLP)
			out->otlp_protocol = NULL;
	}
	for (size_t i = 0; i < in->n_set; i++)
		agent_config_copy_key(out, in->ov, in->set[i].key);
	if ((in->type & OTLP_BITS) && in->url && !inst_setting(in, "otlp.traces_endpoint")) {
		out->otlp_traces_endpoint = in->url;
		out->otlp_endpoint = NULL;
	}
}

int inst_forced_protocol(const struct exp_instance *in, const struct agent_config *m)
{
	if (in->type == AGENT_EXP_OTLP_GRPC)
		return OTLP_PROTO_GRPC;
	if (in->type != AGENT_EXP_OTLP_HTTP)
		return OTLP_PROTO_UNSET;
	if (m->otlp_protocol && otlp_protocol_parse(m->otlp_protocol) == OTLP_PROTO_HTTP_JSON)
		return OTLP_PROTO_HTTP_JSON;
	return OTLP_PROTO_HTTP_PROTOBUF;
}

/* Keys only one transport uses. */
static const char *const http_only[] = {"otlp.max_request_bytes", "otlp.zerocopy_min"};
static const char *const grpc_only[] = {"otlp.max_streams"};

/* A named OTLP instance's merged settings resolve, and it sets no key
 * its protocol does not use. 0 or -errno with err set. */
static int check_otlp_settings(const struct agent_config *c, const struct exp_instance *in,
			       char *err, size_t errlen)
{
	const struct inst_setting *s;
	struct agent_config m;
	inst_merged_config(c, in, &m);
	enum otlp_protocol forced = (enum otlp_protocol)inst_forced_protocol(in, &m);
	struct otlp_conf oc;
	char msg[512];
	int rc = otlp_conf_resolve(&oc, &m, forced, otlp_getenv, msg, sizeof(msg));
	if (rc) {
		agent_errf(err, errlen, "exporter '%s': %s", in->id, msg);
		return rc == -ENOMEM ? rc : -EINVAL;
	}
	bool grpc = oc.protocol == OTLP_PROTO_GRPC;
	otlp_conf_free(&oc);
	const char *const *unused = grpc ? http_only : grpc_only;
	size_t n_unused = grpc ? sizeof(http_only) / sizeof(http_only[0])
			       : sizeof(grpc_only) / sizeof(grpc_only[0]);
	for (size_t k = 0; k < n_unused; k++) {
		if ((s = inst_setting(in, unused[k]))) {
			agent_errf(err, errlen, "%s: exporter '%s' speaks %s, which does not use '%s'",
			     s->where, in->id, grpc ? "OTLP/gRPC" : "OTLP/HTTP", s->ikey);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_instance(struct agent_config *c, struct exp_instance *in, char *err,
			  size_t errlen)
{
	const struct inst_setting *s;
	if (!in->enabled) {
		if (in->n_set) {
			agent_errf(err, errlen,
			     "%s: key '%s.%s' is for exporter '%s', which is not enabled (add it to "
			     "'exporters' or give --exporter %s)",
			     in->set[0].where, in->id, in->set[0].ikey, in->id, in->id);
			return -EINVAL;
		}
		return 0;
	}
	if (!in->named && (in->type == AGENT_EXP_OTLP_HTTP || in->type == AGENT_EXP_OTLP_GRPC) &&
	    c->otlp_protocol) {
		enum otlp_protocol got = otlp_protocol_parse(c->otlp_protocol);
		if (in->type == AGENT_EXP_OTLP_GRPC ? got != OTLP_PROTO_GRPC
						    : got == OTLP_PROTO_GRPC) {
			agent_errf(err, errlen,
			     "otlp.protocol '%s' contradicts exporter '%s' (%s): use exporter 'otlp' "
			     "to choose the protocol by otlp.protocol",
			     c->otlp_protocol, in->id, in->enabled_at ? in->enabled_at : "?");
			return -EINVAL;
		}
	}
	if (in->named && (in->type == AGENT_EXP_FILE || in->type == AGENT_EXP_JSON) &&
	    !inst_setting(in, in->type == AGENT_EXP_FILE ? "file.path" : "json.path")) {
		agent_errf(err, errlen, "exporter '%s' (%s) needs a path: %s.path = FILE or --exporter %s:FILE",
		     in->id, in->enabled_at ? in->enabled_at : "?", in->id, in->id);
		return -EINVAL;
	}
	if (!in->named || !(in->type & OTLP_BITS))
		return 0;
	const struct inst_setting *ep = inst_setting(in, "otlp.endpoint");
	const struct inst_setting *tep = inst_setting(in, "otlp.traces_endpoint");
	if (ep && tep) {
		agent_errf(err, errlen, "%s: exporter '%s': set one of endpoint (base URL) and "
				  "traces_endpoint (used as is), not both (the other is at %s)",
		     tep->where, in->id, ep->where);
		return -EINVAL;
	}
	free(in->url);
	in->url = NULL;
	if (ep) {
		/* gRPC uses scheme, host and port only */
		in->url = in->type == AGENT_EXP_OTLP_GRPC ? strdup(in->ov->otlp_endpoint)
							  : inst_endpoint_url(in->ov->otlp_endpoint);
		if (!in->url)
			return -ENOMEM;
	}
	if ((s = inst_setting(in, "otlp.protocol")) && in->type != AGENT_EXP_OTLP) {
		enum otlp_protocol want =
			in->type == AGENT_EXP_OTLP_GRPC ? OTLP_PROTO_GRPC : OTLP_PROTO_HTTP_PROTOBUF;
		enum otlp_protocol got = otlp_protocol_parse(in->ov->otlp_protocol);
		if (got != want && !(in->type == AGENT_EXP_OTLP_HTTP && got == OTLP_PROTO_HTTP_JSON)) {
			agent_errf(err, errlen,
			     "%s: exporter '%s': protocol '%s' is not what type %s speaks (use type "
			     "otlp, or the type of that protocol)",
			     s->where, in->id, in->ov->otlp_protocol, type_name(in->type));
			return -EINVAL;
		}
	}
	return check_otlp_settings(c, in, err, errlen);
}

/* The output file of an enabled file-writing instance, or NULL. */
static const char *inst_path(const struct agent_config *c, const struct exp_instance *in)
{
	if (!in->enabled || !(in->type & (AGENT_EXP_FILE | AGENT_EXP_JSON)))
		return NULL;
	const struct agent_config *src = in->named ? in->ov : c;
	const char *p = in->type == AGENT_EXP_FILE ? src->file_path : src->json_path;
	return p && strcmp(p, "-") != 0 ? p : NULL;
}

int inst_finish(struct agent_config *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->n_inst; i++) {
		int rc = check_instance(c, &c->inst[i], err, errlen);
		if (rc)
			return rc;
	}
	/* Two OTLP instances sharing one spool directory would mix their
	 * records (otlp.spool_dir set agent-wide applies to every one). */
	for (size_t i = 0; i < c->n_inst; i++) {
		struct exp_instance *a = &c->inst[i];
		if (!a->enabled || !(a->type & OTLP_BITS))
			continue;
		struct agent_config ma;
		inst_merged_config(c, a, &ma);
		for (size_t j = i + 1; ma.otlp_spool_dir && ma.otlp_spool_bytes && j < c->n_inst; j++) {
			struct exp_instance *b = &c->inst[j];
			if (!b->enabled || !(b->type & OTLP_BITS))
				continue;
			struct agent_config mb;
			inst_merged_config(c, b, &mb);
			if (mb.otlp_spool_dir && mb.otlp_spool_bytes &&
			    strcmp(ma.otlp_spool_dir, mb.otlp_spool_dir) == 0) {
				agent_errf(err, errlen,
				     "exporters '%s' and '%s' have the same spool directory ('%s'): set "
				     "spool_dir per instance (the default is one per instance)",
				     a->id, b->id, ma.otlp_spool_dir);
				return -EINVAL;
			}
		}
	}
	/* Two instances writing one file would interleave their records. */
	for (size_t i = 0; i < c->n_inst; i++) {
		const char *pi = inst_path(c, &c->inst[i]);
		for (size_t j = i + 1; pi && j < c->n_inst; j++) {
			const char *pj = inst_path(c, &c->inst[j]);
			if (pj && strcmp(pi, pj) == 0) {
				agent_errf(err, errlen, "exporters '%s' and '%s' write the same file ('%s')",
				     c->inst[i].id, c->inst[j].id, pi);
				return -EINVAL;
			}
		}
	}
	return 0;
}

void inst_free_all(struct agent_config *c)
{
	for (size_t i = 0; i < c->n_inst; i++) {
		struct exp_instance *in = &c->inst[i];
		if (in->ov) {
			agent_config_free(in->ov);
			free(in->ov);
		}
		for (size_t k = 0; k < in->n_set; k++) {
			free(in->set[k].key);
			free(in->set[k].ikey);
			free(in->set[k].where);
		}
		free(in->set);
		free(in->enabled_at);
		free(in->url);
	}
	free(c->inst);
	c->inst = NULL;
	c->n_inst = 0;
}
