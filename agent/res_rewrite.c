/* SPDX-License-Identifier: MIT */
/*
 * The agent's copy of a producer's Resource: identity the agent can verify
 * (the pid and user from SO_PEERCRED, the host's name) replaces whatever
 * the producer claimed; all other attributes are kept as sent.
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

static bool res_key_is_verified(const char *k)
{
	return strcmp(k, "process.pid") == 0 || strcmp(k, "process.owner") == 0 ||
	       strcmp(k, "host.name") == 0;
}

/* User name of uid, or its number when it has none. */
static void res_owner(uid_t uid, char *out, size_t n)
{
	struct passwd pw, *res = NULL;
	char buf[1024];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name)
		snprintf(out, n, "%s", res->pw_name);
	else
		snprintf(out, n, "%u", (unsigned)uid);
}

int agent_resource_rewrite(const uint8_t *in, size_t len, pid_t pid, uid_t uid,
			   const char *host, uint8_t **out, size_t *out_len, char *service,
			   size_t svclen)
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
	attrs = calloc(n_in + 3, sizeof(*attrs));
	if (!attrs) {
		err = -ENOMEM;
		goto out;
	}
	size_t n = 0;
	for (size_t i = 0; i < n_in; i++) {
		KeyValue *kv = r->attributes[i];
		if (!kv->key || res_key_is_verified(kv->key))
			continue;
		if (strcmp(kv->key, "service.name") == 0 && kv->value &&
		    kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
		    kv->value->string_value && svclen)
			snprintf(service, svclen, "%s", kv->value->string_value);
		attrs[n++] = kv;
	}
	char owner[256];
	res_owner(uid, owner, sizeof(owner));
	KeyValue kv_pid = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	KeyValue kv_owner = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	KeyValue kv_host = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	AnyValue v_pid = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	AnyValue v_owner = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	AnyValue v_host = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	kv_pid.key = "process.pid";
	v_pid.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	v_pid.int_value = pid;
	kv_pid.value = &v_pid;
	kv_owner.key = "process.owner";
	v_owner.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	v_owner.string_value = owner;
	kv_owner.value = &v_owner;
	kv_host.key = "host.name";
	v_host.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	v_host.string_value = (char *)host;
	kv_host.value = &v_host;
	attrs[n++] = &kv_pid;
	attrs[n++] = &kv_owner;
	if (host && *host)
		attrs[n++] = &kv_host;

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
