/* SPDX-License-Identifier: MIT */
/*
 * The agent's copy of a producer's Resource. The attributes that say who
 * the process is and where it runs are the agent's, never the producer's:
 *
 *   set from what the agent verified (struct res_identity)
 *     process.pid          the peer's pid (SO_PEERCRED)
 *     process.user.id      the peer's effective uid (SO_PEERCRED)
 *     process.user.name    its user name (absent when the uid has none)
 *     process.owner        the same name, or the uid's number
 *     host.name            the agent's host name (host_name)
 *     host.id              the agent's machine id (host_id, /etc/machine-id)
 *     container.id         from the peer's cgroup, read by the agent
 *   removed whatever the producer sent (claims the agent cannot check)
 *     process.real_user.*, process.saved_user.*, every other host.*
 *
 * Each verified one is absent when the agent does not know it (no machine
 * id, a process in no container): a producer's value is never kept in its
 * place. All other attributes (service.name, process.executable.*, ...)
 * are the producer's own word and kept as sent (docs/AGENT.md).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pbcheck.h"
#include "agent.h"
#include "otlp_resource.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;

/* Is k an attribute the agent sets or removes (the producer's is dropped)? */
bool agent_resource_key_reserved(const char *k)
{
	static const char *const exact[] = {
		"process.pid",	     "process.owner",	     "process.user.id",
		"process.user.name", "container.id",
	};
	static const char *const prefix[] = {
		"host.",
		"process.real_user.",
		"process.saved_user.",
	};
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcmp(k, exact[i]) == 0)
			return true;
	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++)
		if (strncmp(k, prefix[i], strlen(prefix[i])) == 0)
			return true;
	return false;
}

/* User name of uid into out; false when it has none. */
static bool res_user_name(uid_t uid, char *out, size_t n)
{
	struct passwd pw, *res = NULL;
	char buf[2048];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name &&
	    res->pw_name[0]) {
		snprintf(out, n, "%s", res->pw_name);
		return true;
	}
	return false;
}

static void res_kv_str(KeyValue *kv, AnyValue *v, const char *key, const char *s)
{
	kv->key = (char *)key;
	v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	v->string_value = (char *)s;
	kv->value = v;
}

static void res_kv_int(KeyValue *kv, AnyValue *v, const char *key, int64_t i)
{
	kv->key = (char *)key;
	v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	v->int_value = i;
	kv->value = v;
}

#define RES_VERIFIED_MAX 7

int agent_resource_rewrite(const uint8_t *in, size_t len, const struct res_identity *id,
			   uint8_t **out, size_t *out_len, char *service, size_t svclen)
{
	int err = 0;
	Resource *r = NULL;
	KeyValue **attrs = NULL;
	uint8_t *buf = NULL;
	if (svclen)
		service[0] = 0;
	if (len) {
		r = (void *)sr_pb_unpack(&opentelemetry__proto__resource__v1__resource__descriptor, in, len);
		if (!r)
			return -EBADMSG;
	}
	size_t n_in = r ? r->n_attributes : 0;
	attrs = calloc(n_in + RES_VERIFIED_MAX, sizeof(*attrs));
	if (!attrs) {
		err = -ENOMEM;
		goto out;
	}
	size_t n = 0;
	for (size_t i = 0; i < n_in; i++) {
		KeyValue *kv = r->attributes[i];
		if (!kv->key || agent_resource_key_reserved(kv->key))
			continue;
		if (strcmp(kv->key, "service.name") == 0 && kv->value &&
		    kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
		    kv->value->string_value && svclen)
			snprintf(service, svclen, "%s", kv->value->string_value);
		attrs[n++] = kv;
	}
	char name[256], owner[256];
	bool has_name = res_user_name(id->uid, name, sizeof(name));
	snprintf(owner, sizeof(owner), "%s", has_name ? name : "");
	if (!has_name)
		snprintf(owner, sizeof(owner), "%u", (unsigned)id->uid);
	KeyValue kv[RES_VERIFIED_MAX];
	AnyValue v[RES_VERIFIED_MAX];
	size_t k = 0;
	for (size_t i = 0; i < RES_VERIFIED_MAX; i++) {
		kv[i] = (KeyValue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
		v[i] = (AnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	}
	res_kv_int(&kv[k], &v[k], "process.pid", id->pid);
	k++;
	res_kv_int(&kv[k], &v[k], "process.user.id", (int64_t)id->uid);
	k++;
	if (has_name) {
		res_kv_str(&kv[k], &v[k], "process.user.name", name);
		k++;
	}
	res_kv_str(&kv[k], &v[k], "process.owner", owner);
	k++;
	if (id->host_name && id->host_name[0]) {
		res_kv_str(&kv[k], &v[k], "host.name", id->host_name);
		k++;
	}
	if (id->host_id && id->host_id[0]) {
		res_kv_str(&kv[k], &v[k], "host.id", id->host_id);
		k++;
	}
	if (id->container_id && id->container_id[0]) {
		res_kv_str(&kv[k], &v[k], "container.id", id->container_id);
		k++;
	}
	for (size_t i = 0; i < k; i++)
		attrs[n++] = &kv[i];

	Resource nr = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
	nr.n_attributes = n;
	nr.attributes = attrs;
	nr.dropped_attributes_count = r ? r->dropped_attributes_count : 0;
	size_t sz = opentelemetry__proto__resource__v1__resource__get_packed_size(&nr);
	buf = malloc(sz ? sz : 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	*out_len = opentelemetry__proto__resource__v1__resource__pack(&nr, buf);
	*out = buf;
	buf = NULL;
out:
	free(buf);
	free(attrs);
	if (r)
		opentelemetry__proto__resource__v1__resource__free_unpacked(r, NULL);
	return err;
}

bool agent_cgroup_container_id(const char *text, size_t n, char out[65])
{
	bool found = false;
	size_t run = 0;
	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? text[i] : 0;
		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
			run++;
			continue;
		}
		/* Exactly 64 hex digits between non-hex characters: the id of
		 * a container (docker-<id>.scope, cri-containerd-<id>.scope,
		 * crio-<id>, /docker/<id>, ...). */
		if (run == 64) {
			memcpy(out, text + i - 64, 64);
			out[64] = 0;
			found = true;
		}
		run = 0;
	}
	return found;
}
