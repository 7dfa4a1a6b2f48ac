/* SPDX-License-Identifier: MIT */
/*
 * A small JSON reader for spanring-dump: the agent's control-socket
 * answers and OTLP/JSON lines files. Input is untrusted: nesting depth and
 * sizes are bounded, every error carries the byte offset.
 */
#ifndef SPANRING_DUMP_JSON_H
#define SPANRING_DUMP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json_member;

struct json {
	enum json_type t;
	bool b;
	double num;     /* JSON_NUM */
	char *s;        /* JSON_STR: decoded, NUL-terminated; JSON_NUM: the literal text */
	size_t len;     /* bytes of s; items of arr / obj */
	struct json *arr;
	struct json_member *obj;
};

struct json_member {
	char *key;
	struct json v;
};

/*
 * Parse exactly one JSON value (surrounding white space allowed) from
 * buf[0, len). Returns 0 with *out filled (free with json_free), or -1
 * with a message naming the offset in err.
 */
int json_parse(const char *buf, size_t len, struct json *out, char *err, size_t errlen);
void json_free(struct json *v);

/* Member `key` of an object, or NULL (also when v is no object). */
const struct json *json_get(const struct json *v, const char *key);
/* Convenience accessors with a fallback when absent or of another type. */
const char *json_str(const struct json *v, const char *key, const char *dflt);
double json_num(const struct json *v, const char *key, double dflt);
bool json_bool(const struct json *v, const char *key, bool dflt);
/* Unsigned integer member (a number, or a decimal string); false if absent. */
bool json_u64(const struct json *v, const char *key, uint64_t *out);

#endif
