/* SPDX-License-Identifier: MIT */
/* OTLP exporter configuration: URLs, headers, environment (otlp_conf.h). */
#include "otlp_conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "hex.h"
#include "log.h"
#include "otlp_wire.h"

#define OTLP_DEFAULT_HTTP "http://localhost:4318"
#define OTLP_DEFAULT_GRPC "http://localhost:4317"
#define OTLP_DEFAULT_TIMEOUT_NS (10ull * 1000000000ull)

enum otlp_protocol otlp_protocol_parse(const char *s)
{
	if (!s)
		return OTLP_PROTO_UNSET;
	if (strcmp(s, "http/protobuf") == 0)
		return OTLP_PROTO_HTTP_PROTOBUF;
	if (strcmp(s, "http/json") == 0)
		return OTLP_PROTO_HTTP_JSON;
	if (strcmp(s, "grpc") == 0)
		return OTLP_PROTO_GRPC;
	return OTLP_PROTO_UNSET;
}

const char *otlp_protocol_name(enum otlp_protocol p)
{
	switch (p) {
	case OTLP_PROTO_HTTP_PROTOBUF:
		return "http/protobuf";
	case OTLP_PROTO_HTTP_JSON:
		return "http/json";
	case OTLP_PROTO_GRPC:
		return "grpc";
	default:
		return "unset";
	}
}

void otlp_url_free(struct otlp_url *u)
{
	free(u->host);
	free(u->path);
	free(u->authority);
	memset(u, 0, sizeof(*u));
}

static char *strndup0(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

/* The port of an authority (digits between ps and ae, 1..65535), or 0. */
static uint16_t url_port(const char *ps, const char *ae)
{
	unsigned long port = 0;
	if (ps == ae)
		return 0;
	for (const char *q = ps; q < ae; q++) {
		if (*q < '0' || *q > '9')
			return 0;
		port = port * 10 + (unsigned long)(*q - '0');
		if (port > 65535)
			return 0;
	}
	return (uint16_t)port;
}

/*
 * The authority a (alen bytes) of URL s: host [h, he) (a name, an address
 * or a bracketed IPv6 literal) and *port (tls: 443 by default, else 80).
 * 0 or -EINVAL with err set.
 */
static int url_authority(const char *s, const char *a, size_t alen, bool tls, const char **h,
			 const char **he, uint16_t *port, char *err, size_t errlen)
{
	const char *ae = a + alen, *colon = NULL;
	if (memchr(a, '@', alen)) {
		agent_errf(err, errlen, "endpoint '%s': user information in the URL is not supported", s);
		return -EINVAL;
	}
	if (a < ae && *a == '[') {
		const char *rb = memchr(a, ']', alen);
		if (!rb) {
			agent_errf(err, errlen, "endpoint '%s': unterminated IPv6 literal", s);
			return -EINVAL;
		}
		*h = a + 1;
		*he = rb;
		if (rb + 1 < ae) {
			if (rb[1] != ':')
				goto bad_authority;
			colon = rb + 1;
		}
	} else {
		*h = a;
		colon = memchr(a, ':', alen);
		*he = colon ? colon : ae;
	}
	if (*h == *he)
		goto bad_authority;
	for (const char *q = *h; q < *he; q++)
		if (!(isalnum((unsigned char)*q) || *q == '-' || *q == '.' || *q == '_' ||
		      (*a == '[' && (*q == ':' || *q == '%'))))
			goto bad_authority;
	*port = colon ? url_port(colon + 1, ae) : tls ? 443 : 80;
	if (*port)
		return 0;
bad_authority:
	agent_errf(err, errlen, "endpoint '%s': expected http[s]://host[:port][/path]", s);
	return -EINVAL;
}

/* path and query of the rest of a URL; the fragment is dropped; no path:
 * "/". malloc'd, NULL when out of memory. */
static char *url_path(const char *path)
{
	size_t plen = strcspn(path, "#");
	if (plen && *path != '?')
		return strndup0(path, plen);
	char *out = malloc(plen + 2);
	if (out) {
		out[0] = '/';
		memcpy(out + 1, path, plen);
		out[plen + 1] = 0;
	}
	return out;
}

int otlp_url_parse(const char *s, bool grpc, struct otlp_url *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	const char *p = s;
	if (strncasecmp(p, "http://", 7) == 0) {
		p += 7;
	} else if (strncasecmp(p, "https://", 8) == 0) {
		p += 8;
		u->tls = true;
	} else if (strstr(p, "://") || !grpc) {
		agent_errf(err, errlen, "endpoint '%s': expected an http:// or https:// URL", s);
		return -EINVAL;
	} else {
		u->no_scheme = true;
	}
	/* authority: up to the path, query or fragment */
	size_t alen = strcspn(p, "/?#");
	const char *h, *he;
	int rc = url_authority(s, p, alen, u->tls, &h, &he, &u->port, err, errlen);
	if (rc)
		return rc;
	u->host = strndup0(h, (size_t)(he - h));
	u->authority = strndup0(p, alen);
	u->path = url_path(p + alen);
	if (!u->host || !u->authority || !u->path) {
		otlp_url_free(u);
		agent_errf(err, errlen, "endpoint: out of memory");
		return -ENOMEM;
	}
	for (const char *q = u->path; *q; q++) {
		if ((unsigned char)*q <= ' ' || *q == 0x7f) {
			otlp_url_free(u);
			agent_errf(err, errlen, "endpoint '%s': space or control character in the path", s);
			return -EINVAL;
		}
	}
	return 0;
}

char *otlp_url_append_traces(const char *base)
{
	/* The path part starts after "scheme://authority". */
	const char *p = strstr(base, "://");
	p = p ? p + 3 : base;
	p += strcspn(p, "/?#");
	/* A query or fragment of a base URL is dropped. */
	size_t keep = (size_t)(p - base) + strcspn(p, "?#");
	bool slash = keep > 0 && base[keep - 1] == '/';
	size_t n = keep + (slash ? 0 : 1) + strlen("v1/traces") + 1;
	char *out = malloc(n);
	if (!out)
		return NULL;
	snprintf(out, n, "%.*s%sv1/traces", (int)keep, base, slash ? "" : "/");
	return out;
}

/* ---- headers --------------------------------------------------------------- */

static bool is_tchar(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static const char *const reserved_headers[] = {
	"host",	      "content-type", "content-length", "content-encoding", "transfer-encoding",
	"connection", "te",	      "keep-alive",	"upgrade",	    "grpc-timeout",
	"grpc-encoding", "expect",
};

void otlp_headers_free(struct otlp_header *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

static void trim(const char **b, const char **e)
{
	while (*b < *e && (**b == ' ' || **b == '\t'))
		(*b)++;
	while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
}

/* One "key=value" entry into h (strings malloc'd). 0 or a reason. */
static const char *header_entry(const char *b, const char *e, bool lower, struct otlp_header *h)
{
	const char *eq = memchr(b, '=', (size_t)(e - b));
	if (!eq)
		return "missing '='";
	const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
	trim(&kb, &ke);
	trim(&vb, &ve);
	if (kb == ke)
		return "empty name";
	for (const char *q = kb; q < ke; q++)
		if (!is_tchar((unsigned char)*q))
			return "invalid character in the name";
	char *name = strndup0(kb, (size_t)(ke - kb));
	char *value = malloc((size_t)(ve - vb) + 1);
	if (!name || !value) {
		free(name);
		free(value);
		return "out of memory";
	}
	for (char *q = name; *q; q++) {
		if (lower)
			*q = (char)tolower((unsigned char)*q);
	}
	size_t n = 0;
	for (const char *q = vb; q < ve; q++) {
		int c = (unsigned char)*q;
		if (c == '%') {
			if (ve - q < 3 || sr_hexval(q[1]) < 0 || sr_hexval(q[2]) < 0) {
				free(name);
				free(value);
				return "bad percent-encoding in the value";
			}
			c = sr_hexval(q[1]) * 16 + sr_hexval(q[2]);
			q += 2;
		}
		if (c == '\r' || c == '\n' || c == 0 || c == 0x7f || (c < ' ' && c != '\t')) {
			free(name);
			free(value);
			return "control character in the value";
		}
		value[n++] = (char)c;
	}
	value[n] = 0;
	for (size_t i = 0; i < sizeof(reserved_headers) / sizeof(reserved_headers[0]); i++) {
		if (strcasecmp(name, reserved_headers[i]) == 0) {
			free(name);
			free(value);
			return "a header the exporter sets itself";
		}
	}
	h->name = name;
	h->value = value;
	return NULL;
}

int otlp_headers_parse(const char *s, bool strict, bool lower, struct otlp_header **out,
		       size_t *n_out, size_t *skipped, char *err, size_t errlen)
{
	struct otlp_header *h = NULL;
	size_t n = 0, cap = 0, skip = 0;
	const char *p = s;
	*out = NULL;
	*n_out = 0;
	while (*p) {
		const char *b = p, *e = p + strcspn(p, ",");
		p = *e ? e + 1 : e;
		const char *tb = b, *te = e;
		trim(&tb, &te);
		if (tb == te)
			continue; /* empty list member */
		struct otlp_header one;
		const char *why = header_entry(tb, te, lower, &one);
		if (why) {
			if (strict || strcmp(why, "out of memory") == 0) {
				agent_errf(err, errlen, "header entry '%.*s': %s", (int)(te - tb > 64 ? 64 : te - tb),
				     tb, why);
				otlp_headers_free(h, n);
				return strcmp(why, "out of memory") == 0 ? -ENOMEM : -EINVAL;
			}
			log_warn("otlp: ignoring header entry '%.*s': %s",
				 (int)(te - tb > 64 ? 64 : te - tb), tb, why);
			skip++;
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 4;
			struct otlp_header *nh = realloc(h, nc * sizeof(*nh));
			if (!nh) {
				free(one.name);
				free(one.value);
				otlp_headers_free(h, n);
				agent_errf(err, errlen, "headers: out of memory");
				return -ENOMEM;
			}
			h = nh;
			cap = nc;
		}
		h[n++] = one;
	}
	*out = h;
	*n_out = n;
	if (skipped)
		*skipped = skip;
	return 0;
}

/* ---- resolution ------------------------------------------------------------ */

/* The first set value among (config, env TRACES, env generic). */
static const char *pick(const char *cfg, const char *cfg_name, otlp_getenv_fn env,
			const char *var_traces, const char *var_generic, const char **src)
{
	const char *v;
	if (cfg) {
		*src = cfg_name;
		return cfg;
	}
	if ((v = env(var_traces)) && *v) {
		*src = var_traces;
		return v;
	}
	if ((v = env(var_generic)) && *v) {
		*src = var_generic;
		return v;
	}
	*src = "default";
	return NULL;
}

void otlp_conf_free(struct otlp_conf *c)
{
	free(c->tls_ca_file);
	free(c->tls_cert_file);
	free(c->tls_key_file);
	free(c->tls_server_name);
	free(c->url);
	otlp_url_free(&c->u);
	otlp_headers_free(c->headers, c->n_headers);
	memset(c, 0, sizeof(*c));
}

/* Strict decimal milliseconds. */
static bool parse_ms(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > UINT64_MAX / 10 - 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

/* "true"/"false" (any case) of an environment variable; -1 otherwise. */
static int env_bool(const char *v)
{
	if (strcasecmp(v, "true") == 0)
		return 1;
	if (strcasecmp(v, "false") == 0)
		return 0;
	return -1;
}

/* TLS settings: agent keys > OTEL_EXPORTER_OTLP_TRACES_* > OTEL_EXPORTER_OTLP_*. */
/* OTEL_EXPORTER_OTLP_[TRACES_]INSECURE (for a gRPC endpoint without
 * scheme) decides c->tls with the URL. 0 or -EINVAL with err set. */
static int conf_tls_insecure(struct otlp_conf *c, otlp_getenv_fn env, char *err, size_t errlen)
{
	const char *v, *insecure_src = NULL;
	int insecure = -1;
	static const char *const ivars[] = {"OTEL_EXPORTER_OTLP_TRACES_INSECURE",
					    "OTEL_EXPORTER_OTLP_INSECURE"};
	for (size_t i = 0; i < 2 && insecure < 0; i++) {
		if (!(v = env(ivars[i])) || !*v)
			continue;
		insecure = env_bool(v);
		insecure_src = ivars[i];
		if (insecure < 0) {
			agent_errf(err, errlen, "%s='%s': expected true or false", ivars[i], v);
			return -EINVAL;
		}
	}
	c->tls = c->u.tls || (c->u.no_scheme && insecure != 1);
	if (insecure == 1 && c->u.tls) {
		agent_errf(err, errlen, "%s=true but the endpoint '%s' (%s) is https://: remove one of them",
		     insecure_src, c->url, c->src_endpoint);
		return -EINVAL;
	}
	return 0;
}

/* The CA, client certificate and key files: readable, and only with TLS.
 * 0, -EINVAL or -ENOMEM with err set. */
static int conf_tls_files(struct otlp_conf *c, const struct agent_config *ac, otlp_getenv_fn env,
			  char *err, size_t errlen)
{
	const char *v, *src;
	struct {
		const char *key, *tv, *gv;
		const char *cfg;
		char **dst;
		const char **srcp;
	} f[] = {
		{"otlp.tls_ca_file", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
		 "OTEL_EXPORTER_OTLP_CERTIFICATE", ac->otlp_tls_ca_file, &c->tls_ca_file,
		 &c->src_tls_ca},
		{"otlp.tls_cert_file", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
		 "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", ac->otlp_tls_cert_file, &c->tls_cert_file,
		 &c->src_tls_cert},
		{"otlp.tls_key_file", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
		 "OTEL_EXPORTER_OTLP_CLIENT_KEY", ac->otlp_tls_key_file, &c->tls_key_file,
		 &c->src_tls_key},
	};
	for (size_t i = 0; i < 3; i++) {
		v = pick(f[i].cfg, f[i].key, env, f[i].tv, f[i].gv, &src);
		*f[i].srcp = src;
		if (!v)
			continue;
		if (!c->tls) {
			agent_errf(err, errlen,
			     "%s is set but the endpoint '%s' (%s) is cleartext: use an https:// "
			     "endpoint, or remove %s",
			     src, c->url, c->src_endpoint, src);
			return -EINVAL;
		}
		if (access(v, R_OK) != 0) {
			agent_errf(err, errlen, "%s: '%s': %s", src, v, strerror(errno));
			return -EINVAL;
		}
		if (!(*f[i].dst = strdup(v))) {
			agent_errf(err, errlen, "otlp: out of memory");
			return -ENOMEM;
		}
	}
	if (!c->tls_cert_file != !c->tls_key_file) {
		agent_errf(err, errlen, "%s is set without %s: a client certificate needs its key and "
				  "the other way round",
		     c->tls_cert_file ? c->src_tls_cert : c->src_tls_key,
		     c->tls_cert_file ? "otlp.tls_key_file (OTEL_EXPORTER_OTLP_CLIENT_KEY)"
				      : "otlp.tls_cert_file (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE)");
		return -EINVAL;
	}
	return 0;
}

static int otlp_conf_tls(struct otlp_conf *c, const struct agent_config *ac, otlp_getenv_fn env,
			 char *err, size_t errlen)
{
	int rc;
	if ((rc = conf_tls_insecure(c, env, err, errlen)) ||
	    (rc = conf_tls_files(c, ac, env, err, errlen)))
		return rc;
	const char *only_tls = ac->otlp_tls_server_name	  ? "otlp.tls_server_name"
			       : ac->otlp_tls_min_version ? "otlp.tls_min_version"
			       : ac->otlp_tls_insecure	  ? "otlp.tls_insecure_skip_verify"
							  : NULL;
	if (only_tls && !c->tls) {
		agent_errf(err, errlen,
		     "%s is set but the endpoint '%s' (%s) is cleartext: use an https:// endpoint, "
		     "or remove %s",
		     only_tls, c->url, c->src_endpoint, only_tls);
		return -EINVAL;
	}
	c->tls_min_version = 0x0303; /* TLS 1.2 */
	if (ac->otlp_tls_min_version) {
		if (strcmp(ac->otlp_tls_min_version, "1.2") == 0) {
			c->tls_min_version = 0x0303;
		} else if (strcmp(ac->otlp_tls_min_version, "1.3") == 0) {
			c->tls_min_version = 0x0304;
		} else {
			agent_errf(err, errlen, "otlp.tls_min_version: '%s' is not 1.2 or 1.3",
			     ac->otlp_tls_min_version);
			return -EINVAL;
		}
	}
	if (ac->otlp_tls_server_name && !(c->tls_server_name = strdup(ac->otlp_tls_server_name))) {
		agent_errf(err, errlen, "otlp: out of memory");
		return -ENOMEM;
	}
	c->tls_insecure_skip_verify = ac->otlp_tls_insecure;
	return 0;
}

/* protocol: the kind's, else otlp.protocol, else the environment, else
 * http/protobuf. */
static int conf_protocol(struct otlp_conf *c, const struct agent_config *ac,
			 enum otlp_protocol forced, otlp_getenv_fn env, char *err, size_t errlen)
{
	const char *v;
	if (forced != OTLP_PROTO_UNSET) {
		c->protocol = forced;
		c->src_protocol = "exporter kind";
		return 0;
	}
	c->protocol = OTLP_PROTO_UNSET;
	if (ac->otlp_protocol) {
		c->protocol = otlp_protocol_parse(ac->otlp_protocol);
		c->src_protocol = "otlp.protocol";
		if (!c->protocol) {
			agent_errf(err, errlen,
			     "otlp.protocol: '%s' is not one of http/protobuf, http/json, grpc",
			     ac->otlp_protocol);
			return -EINVAL;
		}
	}
	static const char *const pvars[] = {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
					    "OTEL_EXPORTER_OTLP_PROTOCOL"};
	for (size_t i = 0; !c->protocol && i < 2; i++) {
		if ((v = env(pvars[i])) && *v) {
			c->protocol = otlp_protocol_parse(v);
			c->src_protocol = pvars[i];
			if (!c->protocol)
				log_warn("otlp: %s='%s' is not http/protobuf, http/json or grpc; "
					 "ignored",
					 pvars[i], v);
		}
	}
	if (!c->protocol) {
		c->protocol = OTLP_PROTO_HTTP_PROTOBUF;
		c->src_protocol = "default";
	}
	return 0;
}

/* endpoint: a traces endpoint (as is) wins over a base endpoint at the
 * same level; the agent's settings win over the environment. */
static int conf_endpoint(struct otlp_conf *c, const struct agent_config *ac, otlp_getenv_fn env,
			 char *err, size_t errlen)
{
	bool grpc = c->protocol == OTLP_PROTO_GRPC;
	const char *url, *v;
	bool base = false;
	if (ac->otlp_traces_endpoint) {
		url = ac->otlp_traces_endpoint;
		c->src_endpoint = "otlp.traces_endpoint";
	} else if (ac->otlp_endpoint) {
		url = ac->otlp_endpoint;
		base = true;
		c->src_endpoint = "otlp.endpoint";
	} else if ((v = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) && *v) {
		url = v;
		c->src_endpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
	} else if ((v = env("OTEL_EXPORTER_OTLP_ENDPOINT")) && *v) {
		url = v;
		base = true;
		c->src_endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT";
	} else {
		url = grpc ? OTLP_DEFAULT_GRPC : OTLP_DEFAULT_HTTP;
		base = true;
		c->src_endpoint = "default";
	}
	if (base && !grpc)
		c->url = otlp_url_append_traces(url);
	else
		c->url = strdup(url);
	if (!c->url) {
		agent_errf(err, errlen, "otlp: out of memory");
		return -ENOMEM;
	}
	char msg[384];
	int rc = otlp_url_parse(c->url, grpc, &c->u, msg, sizeof(msg));
	if (rc) {
		agent_errf(err, errlen, "%s: %s", c->src_endpoint, msg);
		return rc;
	}
	if (grpc) {
		free(c->u.path);
		c->u.path = strdup("/opentelemetry.proto.collector.trace.v1.TraceService/Export");
		if (!c->u.path)
			return -ENOMEM;
	}
	return 0;
}

/* headers: the most specific source is used whole */
static int conf_headers(struct otlp_conf *c, const struct agent_config *ac, otlp_getenv_fn env,
			char *err, size_t errlen)
{
	const char *src;
	const char *v = pick(ac->otlp_headers, "otlp.headers", env,
			     "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS", &src);
	c->src_headers = src;
	if (!v)
		return 0;
	char msg[384];
	size_t skipped = 0;
	int rc = otlp_headers_parse(v, ac->otlp_headers != NULL, c->protocol == OTLP_PROTO_GRPC,
				    &c->headers, &c->n_headers, &skipped, msg, sizeof(msg));
	if (rc)
		agent_errf(err, errlen, "%s: %s", src, msg);
	return rc;
}

/* timeout: otlp.timeout, else the environment (milliseconds), else the
 * default. Never fails: a bad variable is ignored with a warning. */
static void conf_timeout(struct otlp_conf *c, const struct agent_config *ac, otlp_getenv_fn env)
{
	c->timeout_ns = OTLP_DEFAULT_TIMEOUT_NS;
	c->src_timeout = "default";
	if (ac->otlp_timeout_us) {
		c->timeout_ns = ac->otlp_timeout_us * 1000;
		c->src_timeout = "otlp.timeout";
		return;
	}
	static const char *const tvars[] = {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
					    "OTEL_EXPORTER_OTLP_TIMEOUT"};
	for (size_t i = 0; i < 2; i++) {
		const char *v;
		uint64_t ms;
		if (!(v = env(tvars[i])) || !*v)
			continue;
		if (!parse_ms(v, &ms) || ms == 0) {
			log_warn("otlp: %s='%s' is not a positive number of milliseconds; "
				 "ignored",
				 tvars[i], v);
			continue;
		}
		c->timeout_ns = ms * 1000000ull;
		c->src_timeout = tvars[i];
		break;
	}
}

/* compression: gzip or none; a bad setting is an error, a bad variable a
 * warning. */
static int conf_compression(struct otlp_conf *c, const struct agent_config *ac,
			    otlp_getenv_fn env, char *err, size_t errlen)
{
	const char *src;
	const char *v = pick(ac->otlp_compression, "otlp.compression", env,
			     "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION",
			     &src);
	c->src_compression = src;
	if (!v || strcmp(v, "none") == 0)
		return 0;
	if (strcmp(v, "gzip") == 0) {
		c->gzip = true;
		return 0;
	}
	if (ac->otlp_compression) {
		agent_errf(err, errlen, "otlp.compression: '%s' is not gzip or none", v);
		return -EINVAL;
	}
	log_warn("otlp: %s='%s' is not gzip or none; no compression", src, v);
	return 0;
}

int otlp_conf_resolve(struct otlp_conf *c, const struct agent_config *ac,
		      enum otlp_protocol forced, otlp_getenv_fn env, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	int rc = conf_protocol(c, ac, forced, env, err, errlen);
	if (rc)
		return rc;
	if ((rc = conf_endpoint(c, ac, env, err, errlen)) ||
	    (rc = conf_headers(c, ac, env, err, errlen)))
		goto fail;
	conf_timeout(c, ac, env);
	if ((rc = conf_compression(c, ac, env, err, errlen)) ||
	    (rc = otlp_conf_tls(c, ac, env, err, errlen)))
		goto fail;
	c->retry_initial_ns = ac->otlp_retry_initial_us * 1000;
	c->retry_max_backoff_ns = ac->otlp_retry_max_backoff_us * 1000;
	if (c->retry_max_backoff_ns < c->retry_initial_ns)
		c->retry_max_backoff_ns = c->retry_initial_ns;
	c->retry_max_elapsed_ns = ac->export_retry_max_us * 1000;
	c->max_held = ac->otlp_max_held;
	c->max_request_bytes = ac->otlp_max_request_bytes;
	c->max_streams = ac->otlp_max_streams;
	c->zerocopy_min = ac->otlp_zerocopy_min;
	return 0;
fail:
	otlp_conf_free(c);
	return rc;
}

const char *otlp_getenv(const char *name)
{
	return getenv(name);
}

int otlp_kind_protocol(uint32_t exporters, enum otlp_protocol *out)
{
	uint32_t k = exporters & (AGENT_EXP_OTLP | AGENT_EXP_OTLP_HTTP | AGENT_EXP_OTLP_GRPC);
	if (!k)
		return -ENOENT;
	if (k & (k - 1))
		return -EINVAL;
	*out = k == AGENT_EXP_OTLP_HTTP	  ? OTLP_PROTO_HTTP_PROTOBUF
	       : k == AGENT_EXP_OTLP_GRPC ? OTLP_PROTO_GRPC
					  : OTLP_PROTO_UNSET;
	return 0;
}

int otlp_conf_check(const struct agent_config *ac, char *err, size_t errlen)
{
	enum otlp_protocol forced;
	int rc = otlp_kind_protocol(ac->exporters, &forced);
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		agent_errf(err, errlen, "exporters: enable one of otlp, otlp_http, otlp_grpc (one OTLP "
				  "exporter per agent)");
		return -EINVAL;
	}
	struct otlp_conf c;
	rc = otlp_conf_resolve(&c, ac, forced, otlp_getenv, err, errlen);
	if (rc == 0)
		otlp_conf_free(&c);
	return rc == -ENOMEM ? rc : rc ? -EINVAL : 0;
}
