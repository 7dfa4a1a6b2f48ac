/* SPDX-License-Identifier: MIT */
/*
 * The process Resource (OTLP opentelemetry.proto.resource.v1.Resource),
 * built from the OpenTelemetry environment variables and what the process
 * can find out about itself, and encoded with protobuf-c. This runs once at
 * start-up, so clarity beats speed here.
 *
 * Attributes, in this order:
 *   service.name            OTEL_SERVICE_NAME, else service.name from
 *                           OTEL_RESOURCE_ATTRIBUTES, else
 *                           "unknown_service:<process.executable.name>"
 *                           (or "unknown_service" when that is unknown).
 *                           An empty value counts as unset.
 *   telemetry.sdk.language  "c". The semantic conventions list known values
 *                           ("cpp" for C++, ...) but none for C; the
 *                           attribute allows other values, so we use "c".
 *   telemetry.sdk.name      "spanring"
 *   telemetry.sdk.version   SPANRING_VERSION_MAJOR.MINOR.PATCH
 *   process.pid, process.parent_pid            int
 *   process.executable.name basename of the /proc/self/exe target
 *                           (program_invocation_short_name as fallback)
 *   process.executable.path the /proc/self/exe target, as the kernel gives
 *                           it (so possibly with a " (deleted)" suffix)
 *   process.command_args    string array from /proc/self/cmdline, bounded:
 *                           the first 64 arguments that end within the
 *                           first 4 KiB. An argument cut by that bound is
 *                           left out entirely rather than truncated.
 *                           SPANRING_COMMAND_ARGS: redacted (default: see
 *                           resource.h), full, or off (no attribute).
 *   process.owner           user name of the effective uid (the identity
 *                           the agent sees through SO_PEERCRED), or the
 *                           uid in decimal when it has no name
 *   host.name               gethostname()
 *   os.type                 "linux"
 * followed by the remaining OTEL_RESOURCE_ATTRIBUTES entries. An entry
 * there whose key is also detected replaces the detected value in place
 * (explicit configuration wins), including telemetry.sdk.*.
 *
 * Detected strings that are not valid UTF-8 (command arguments, paths) get
 * U+FFFD for each invalid byte, since OTLP strings must be UTF-8. A fact
 * that cannot be detected is left out; only allocation failure is an error.
 *
 * OTEL_RESOURCE_ATTRIBUTES follows the OpenTelemetry Resource SDK spec:
 * W3C Baggage-like "key1=value1,key2=value2" without properties; ',' and
 * '=' in keys and values must be percent-encoded, and "in case of any
 * error, e.g. failure to decode, the entire value SHOULD be discarded".
 * We do that. Errors are: a non-empty member without '=', an empty key, an
 * unencoded '=' in a value, a '%' not followed by two hex digits (either
 * case, RFC 3986), a raw control character, a %00, or a decoded key or
 * value that is not valid UTF-8. Keys and values are OWS-trimmed before
 * decoding (so %20 at an edge survives); '+' is a literal plus, not a
 * space. Leniencies: empty members (",,", a trailing comma) are skipped,
 * other printable characters and raw UTF-8 are accepted unencoded, an
 * empty value is an empty string, and a repeated key keeps the last value.
 * There is no logging facility in the library yet, so a discarded value is
 * not reported anywhere.
 */
#include "hex.h"
#include "resource.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
#include "pbwire.h"
#include "spanring/spanring.h"


#define STR_(x) #x
#define STR(x) STR_(x)
#define SDK_VERSION \
	STR(SPANRING_VERSION_MAJOR) "." STR(SPANRING_VERSION_MINOR) "." STR(SPANRING_VERSION_PATCH)

#define CMDLINE_MAX_ARGS 64
#define CMDLINE_MAX_BYTES 4096
#define PWBUF_MAX (1u << 20)      /* give up growing the getpwuid_r buffer here */
#define SERVICE_NAME_CACHE 256

/* ---- UTF-8 ------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at p (n bytes left), or 0 when
 * it is not one (RFC 3629: no overlongs, surrogates or code points above
 * U+10FFFF). */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	uint32_t cp, min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, cp = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* NUL-terminated copy of s[0..n) with every byte that does not start a
 * well-formed sequence replaced by U+FFFD. NULL on allocation failure. */
static char *utf8_dup(const char *s, size_t n)
{
	static const char repl[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)s;
	char *d = sr_malloc(3 * n + 1), *w = d; /* worst case: every byte replaced */

	if (!d)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		if (k) {
			memcpy(w, s + i, k);
			w += k;
			i += k;
		} else {
			memcpy(w, repl, 3);
			w += 3;
			i++;
		}
	}
	*w = '\0';
	return d;
}

/* ---- attribute list ---------------------------------------------------------- */

enum attr_kind { ATTR_STR, ATTR_INT, ATTR_STRV };

/* One attribute; the list owns every string in it. */
struct attr {
	char *key;
	enum attr_kind kind;
	char *s;          /* ATTR_STR */
	int64_t i;        /* ATTR_INT */
	char **strv;      /* ATTR_STRV */
	size_t n_strv;
};

struct attr_list {
	struct attr *v;
	size_t n, cap;
};

static void attr_value_free(struct attr *a)
{
	sr_free(a->s);
	for (size_t j = 0; j < a->n_strv; j++)
		sr_free(a->strv[j]);
	sr_free(a->strv);
	a->s = NULL;
	a->strv = NULL;
	a->n_strv = 0;
}

static void attr_list_free(struct attr_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		sr_free(l->v[i].key);
		attr_value_free(&l->v[i]);
	}
	sr_free(l->v);
	*l = (struct attr_list){0};
}

static struct attr *attr_find(const struct attr_list *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].key, key) == 0)
			return &l->v[i];
	return NULL;
}

/*
 * Move *a (key and value) into l. An existing key keeps its position and
 * gets the new value. On -ENOMEM *a's strings are freed; either way the
 * caller no longer owns them.
 */
static int attr_take(struct attr_list *l, struct attr *a)
{
	struct attr *old = attr_find(l, a->key);

	if (old) {
		sr_free(a->key);
		a->key = old->key;
		attr_value_free(old);
		*old = *a;
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		struct attr *v = sr_realloc(l->v, l->cap * sizeof *v, cap * sizeof *v);
		if (!v) {
			sr_free(a->key);
			attr_value_free(a);
			return -ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *a;
	return 0;
}

/* Set a string attribute; the value is copied (UTF-8 repaired). */
static int attr_str(struct attr_list *l, const char *key, const char *val)
{
	struct attr a = {.kind = ATTR_STR};

	a.key = sr_strdup(key);
	a.s = utf8_dup(val, strlen(val));
	if (!a.key || !a.s) {
		sr_free(a.key);
		sr_free(a.s);
		return -ENOMEM;
	}
	return attr_take(l, &a);
}

static int attr_int(struct attr_list *l, const char *key, int64_t v)
{
	struct attr a = {.kind = ATTR_INT, .i = v};

	a.key = sr_strdup(key);
	if (!a.key)
		return -ENOMEM;
	return attr_take(l, &a);
}

/* ---- OTEL_RESOURCE_ATTRIBUTES -------------------------------------------------- */

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void trim_ows(const char **p, size_t *n)
{
	while (*n && is_ows(**p)) {
		(*p)++;
		(*n)--;
	}
	while (*n && is_ows((*p)[*n - 1]))
		(*n)--;
}

/* Percent-decode p[0..n) into a new C string (*out). -EINVAL for a bad
 * escape, a raw control character, %00 or a result that is not UTF-8. */
static int pct_decode(const char *p, size_t n, char **out)
{
	char *d = sr_malloc(n + 1), *w = d;

	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f)
			goto bad;
		if (c == '%') {
			int hi, lo;
			if (n - i < 3)
				goto bad;
			hi = sr_hexval(p[i + 1]);
			lo = sr_hexval(p[i + 2]);
			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				goto bad;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		*w++ = (char)c;
	}
	*w = '\0';
	if (!utf8_valid(d, (size_t)(w - d)))
		goto bad;
	*out = d;
	return 0;
bad:
	sr_free(d);
	return -EINVAL;
}

/* One non-empty, trimmed "key=value" member into out (last one wins). */
static int env_member(const char *m, size_t n, struct attr_list *out)
{
	const char *eq = memchr(m, '=', n);
	const char *k = m, *v;
	size_t kn, vn;
	struct attr a = {.kind = ATTR_STR};
	int rc;

	if (!eq)
		return -EINVAL;
	kn = (size_t)(eq - m);
	v = eq + 1;
	vn = n - kn - 1;
	trim_ows(&k, &kn);
	trim_ows(&v, &vn);
	if (!kn || memchr(v, '=', vn))
		return -EINVAL;
	rc = pct_decode(k, kn, &a.key);
	if (rc)
		return rc;
	rc = pct_decode(v, vn, &a.s);
	if (rc) {
		sr_free(a.key);
		return rc;
	}
	return attr_take(out, &a);
}

/* Parse a whole OTEL_RESOURCE_ATTRIBUTES value. -EINVAL: discard it all. */
static int env_parse(const char *s, struct attr_list *out)
{
	const char *p = s, *end = s + strlen(s);

	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *m = p;
		size_t mn = (size_t)((comma ? comma : end) - p);
		int rc;

		trim_ows(&m, &mn);
		if (mn) {
			rc = env_member(m, mn, out);
			if (rc)
				return rc;
		}
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* Attributes from OTEL_RESOURCE_ATTRIBUTES; a malformed value yields none.
 * Only -ENOMEM is returned as an error. */
static int env_attrs(struct attr_list *out)
{
	const char *s = secure_getenv("OTEL_RESOURCE_ATTRIBUTES");
	int rc;

	if (!s || !*s)
		return 0;
	rc = env_parse(s, out);
	if (rc == -EINVAL) {
		attr_list_free(out);
		rc = 0;
	}
	return rc;
}

/* ---- detection --------------------------------------------------------------------- */

struct exe_info {
	char *path; /* NULL when /proc/self/exe cannot be read */
	char *name; /* NULL when unknown */
};

static void exe_free(struct exe_info *e)
{
	sr_free(e->path);
	sr_free(e->name);
}

/* /proc/self/exe, read once per process image (a fork child runs the
 * same executable); the shim hands over the one it read for its span. */
static pthread_mutex_t exe_lock = PTHREAD_MUTEX_INITIALIZER;
static char exe_cache[PATH_MAX];
static ssize_t exe_cache_len = -1; /* -1: not read yet */

static void exe_store(const char *p, ssize_t r)
{
	pthread_mutex_lock(&exe_lock);
	if (r > 0 && (size_t)r < sizeof exe_cache) {
		memcpy(exe_cache, p, (size_t)r);
		exe_cache_len = r;
	} else {
		exe_cache_len = 0;
	}
	pthread_mutex_unlock(&exe_lock);
}

void sr_resource_set_exe(const char *path)
{
	exe_store(path, path ? (ssize_t)strlen(path) : 0);
}

static ssize_t exe_read(char *buf, size_t n)
{
	pthread_mutex_lock(&exe_lock);
	ssize_t r = exe_cache_len;
	if (r > 0 && (size_t)r <= n)
		memcpy(buf, exe_cache, (size_t)r);
	pthread_mutex_unlock(&exe_lock);
	if (r >= 0)
		return r > 0 && (size_t)r <= n ? r : 0;
	r = readlink("/proc/self/exe", buf, n);
	exe_store(buf, r);
	return r;
}

static int exe_detect(struct exe_info *e)
{
	char buf[PATH_MAX];
	ssize_t r = exe_read(buf, sizeof buf);
	const char *name = NULL;

	/* r == sizeof buf means the target may have been cut: skip it. */
	if (r > 0 && (size_t)r < sizeof buf) {
		e->path = utf8_dup(buf, (size_t)r);
		if (!e->path)
			return -ENOMEM;
		name = strrchr(e->path, '/');
		name = name ? name + 1 : e->path;
	} else {
		name = program_invocation_short_name;
	}
	if (name && *name) {
		e->name = utf8_dup(name, strlen(name));
		if (!e->name)
			return -ENOMEM;
	}
	return 0;
}

/* The service.name rule (see the top of the file); a new string. */
static char *service_name(const struct attr_list *env, const char *exe_name)
{
	const char *s = secure_getenv("OTEL_SERVICE_NAME");
	const struct attr *a = attr_find(env, "service.name");
	char *out;

	if (s && *s)
		return utf8_dup(s, strlen(s));
	if (a && a->kind == ATTR_STR && a->s[0])
		return sr_strdup(a->s);
	if (!exe_name)
		return sr_strdup("unknown_service");
	/* No asprintf(): this may run in a fork child (see mem.h). */
	static const char pre[] = "unknown_service:";
	size_t n = strlen(exe_name);
	out = sr_malloc(sizeof(pre) + n);
	if (!out)
		return NULL;
	memcpy(out, pre, sizeof(pre) - 1);
	memcpy(out + sizeof(pre) - 1, exe_name, n + 1);
	return out;
}

/* process.command_args, bounded by CMDLINE_MAX_ARGS / CMDLINE_MAX_BYTES. */
static int detect_cmdline(struct attr_list *l)
{
	char buf[CMDLINE_MAX_BYTES];
	size_t got = 0;
	bool eof = false, bad;
	struct attr a = {.kind = ATTR_STRV};
	const char *p, *end;
	const char *mv = secure_getenv("SPANRING_COMMAND_ARGS");
	enum sr_args_mode mode = sr_args_mode_parse(mv, &bad);
	const char *dbg = secure_getenv("SPANRING_DEBUG");

	if (bad && dbg && *dbg && strcmp(dbg, "0") != 0)
		fprintf(stderr, "spanring: ignoring invalid SPANRING_COMMAND_ARGS=\"%s\"\n", mv);
	if (mode == SR_ARGS_OFF)
		return 0;
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	while (got < sizeof buf) {
		ssize_t r = read(fd, buf + got, sizeof buf - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			eof = r == 0;
			break;
		}
		got += (size_t)r;
	}
	if (got == sizeof buf) { /* full: is there more? */
		char c;
		ssize_t r;
		do
			r = read(fd, &c, 1);
		while (r < 0 && errno == EINTR);
		eof = r == 0;
	}
	close(fd);

	a.strv = sr_calloc(CMDLINE_MAX_ARGS, sizeof *a.strv);
	if (!a.strv)
		return -ENOMEM;
	bool hide = false;
	for (p = buf, end = buf + got; p < end && a.n_strv < CMDLINE_MAX_ARGS;) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		/* Without a NUL the argument either ends the file (a process
		 * that rewrote its argv) or was cut by the 4 KiB bound. */
		if (!nul && !eof)
			break;
		const char *e = nul ? nul : end;
		char red[3 * CMDLINE_MAX_BYTES + 16];
		const char *v = p;
		size_t vlen = (size_t)(e - p);
		if (mode == SR_ARGS_REDACTED) {
			/* At most 8 bytes more per 4 bytes of input ("://@"). */
			vlen = sr_arg_redact(p, vlen, hide, red, sizeof red, &hide);
			v = red;
		}
		char *s = vlen == SIZE_MAX ? NULL : utf8_dup(v, vlen);
		if (!s) {
			attr_value_free(&a);
			return -ENOMEM;
		}
		a.strv[a.n_strv++] = s;
		if (!nul)
			break;
		p = nul + 1;
	}
	if (!a.n_strv) {
		attr_value_free(&a);
		return 0;
	}
	a.key = sr_strdup("process.command_args");
	if (!a.key) {
		attr_value_free(&a);
		return -ENOMEM;
	}
	return attr_take(l, &a);
}

static int detect_owner(struct attr_list *l)
{
	uid_t uid = geteuid();
	long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t sz = hint > 0 ? (size_t)hint : 1024;
	struct passwd pw, *res = NULL;
	char *buf = NULL, num[24];
	int rc;

	for (;;) {
		char *nb = realloc(buf, sz); /* never in the arena: see detect_all() */
		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
		rc = getpwuid_r(uid, &pw, buf, sz, &res);
		if (rc != ERANGE || sz >= PWBUF_MAX)
			break;
		sz *= 2;
	}
	if (rc == 0 && res && res->pw_name && res->pw_name[0]) {
		rc = attr_str(l, "process.owner", res->pw_name);
	} else {
		snprintf(num, sizeof num, "%u", (unsigned)uid);
		rc = attr_str(l, "process.owner", num);
	}
	free(buf);
	return rc;
}

static int detect_host(struct attr_list *l)
{
	char h[HOST_NAME_MAX + 1];

	/* gethostname() may truncate without a terminator. */
	if (gethostname(h, sizeof h) != 0)
		return 0;
	h[sizeof h - 1] = '\0';
	return h[0] ? attr_str(l, "host.name", h) : 0;
}

static bool res_lean;

void sr_resource_lean(void)
{
	res_lean = true;
}

/* Everything but OTEL_RESOURCE_ATTRIBUTES, in the documented order. */
static int detect_all(struct attr_list *l, const char *svc, const struct exe_info *exe)
{
	int rc = attr_str(l, "service.name", svc);

	if (!rc)
		rc = attr_str(l, "telemetry.sdk.language", "c");
	if (!rc)
		rc = attr_str(l, "telemetry.sdk.name", "spanring");
	if (!rc)
		rc = attr_str(l, "telemetry.sdk.version", SDK_VERSION);
	if (!rc)
		rc = attr_int(l, "process.pid", getpid());
	if (!rc)
		rc = attr_int(l, "process.parent_pid", getppid());
	if (!rc && exe->name)
		rc = attr_str(l, "process.executable.name", exe->name);
	if (!rc && exe->path)
		rc = attr_str(l, "process.executable.path", exe->path);
	if (!rc && !res_lean)
		rc = detect_cmdline(l);
	/* Not in a fork child that allocates from the arena: the user lookup
	 * (NSS) takes locks another thread may have held at the fork. The
	 * agent sets process.owner from the peer's credentials anyway. */
	if (!rc && !res_lean && !sr_mem_is_private())
		rc = detect_owner(l);
	if (!rc && !res_lean)
		rc = detect_host(l);
	if (!rc)
		rc = attr_str(l, "os.type", "linux");
	return rc;
}

/* Move env's attributes into l, overriding detected ones. service.name is
 * skipped: detect_all() already placed it with its own precedence rule. */
static int merge_env(struct attr_list *l, struct attr_list *env)
{
	int rc = 0;

	for (size_t i = 0; i < env->n; i++) {
		struct attr *a = &env->v[i];
		if (rc || strcmp(a->key, "service.name") == 0) {
			sr_free(a->key);
			attr_value_free(a);
			continue;
		}
		rc = attr_take(l, a);
	}
	env->n = 0; /* every entry was moved or freed */
	attr_list_free(env);
	return rc;
}

/* ---- encoding --------------------------------------------------------------------- */

/*
 * Encode l as an OTLP Resource, written directly (wire format of
 * opentelemetry.proto.resource.v1.Resource: attributes = 1, KeyValue
 * key = 1 / value = 2, AnyValue string_value = 1 / int_value = 3 /
 * array_value = 5, ArrayValue values = 1) with the encoder the spans use.
 * No libprotobuf-c in the producer: one library fewer for every traced
 * process to load. tests/unit/test_resource.c decodes the result with
 * protobuf-c against the schema.
 */
static size_t any_size(const struct attr *a)
{
	switch (a->kind) {
	case ATTR_STR:
		return pb_len_field_size(strlen(a->s));
	case ATTR_INT:
		return 1 + pb_varint_size((uint64_t)a->i);
	case ATTR_STRV: {
		size_t arr = 0;
		for (size_t j = 0; j < a->n_strv; j++)
			arr += pb_len_field_size(pb_len_field_size(strlen(a->strv[j])));
		return pb_len_field_size(arr);
	}
	}
	return 0;
}

static size_t kv_size(const struct attr *a)
{
	return pb_len_field_size(strlen(a->key)) + pb_len_field_size(any_size(a));
}

static uint8_t *put_str_field(uint8_t *p, uint32_t field, const char *str)
{
	p = pb_put_tag1(p, field, 2);
	return pb_put_bytes(p, str, strlen(str));
}

static uint8_t *put_kv(uint8_t *p, const struct attr *a)
{
	p = pb_put_tag1(p, 1, 2); /* Resource.attributes */
	p = pb_put_varint(p, kv_size(a));
	p = put_str_field(p, 1, a->key);
	p = pb_put_tag1(p, 2, 2); /* KeyValue.value */
	p = pb_put_varint(p, any_size(a));
	switch (a->kind) {
	case ATTR_STR:
		p = put_str_field(p, 1, a->s);
		break;
	case ATTR_INT:
		p = pb_put_tag1(p, 3, 0);
		p = pb_put_varint(p, (uint64_t)a->i);
		break;
	case ATTR_STRV: {
		size_t arr = 0;
		for (size_t j = 0; j < a->n_strv; j++)
			arr += pb_len_field_size(pb_len_field_size(strlen(a->strv[j])));
		p = pb_put_tag1(p, 5, 2);
		p = pb_put_varint(p, arr);
		for (size_t j = 0; j < a->n_strv; j++) {
			p = pb_put_tag1(p, 1, 2); /* ArrayValue.values */
			p = pb_put_varint(p, pb_len_field_size(strlen(a->strv[j])));
			p = put_str_field(p, 1, a->strv[j]);
		}
		break;
	}
	}
	return p;
}

static int pack(const struct attr_list *l, uint8_t *buf, size_t cap, size_t *len)
{
	size_t need = 0;
	for (size_t i = 0; i < l->n; i++)
		need += pb_len_field_size(kv_size(&l->v[i]));
	*len = need;
	if (need > cap)
		return -ENOSPC;
	uint8_t *p = buf;
	for (size_t i = 0; i < l->n; i++)
		p = put_kv(p, &l->v[i]);
	return 0;
}

/* ---- service name cache ------------------------------------------------------------- */

static pthread_mutex_t svc_lock = PTHREAD_MUTEX_INITIALIZER;
static char svc_cache[SERVICE_NAME_CACHE];

/* Store name, cut to the cache at a UTF-8 character boundary. */
static void svc_store(const char *name)
{
	size_t n = strlen(name);

	if (n >= sizeof svc_cache) {
		n = sizeof svc_cache - 1;
		while (n && ((unsigned char)name[n] & 0xc0) == 0x80)
			n--;
	}
	pthread_mutex_lock(&svc_lock);
	memcpy(svc_cache, name, n);
	svc_cache[n] = '\0';
	pthread_mutex_unlock(&svc_lock);
}

/* Work out service.name from the environment alone (NULL on -ENOMEM). */
static char *svc_resolve(void)
{
	struct attr_list env = {0};
	struct exe_info exe = {0};
	char *svc = NULL;

	if (env_attrs(&env) == 0 && exe_detect(&exe) == 0)
		svc = service_name(&env, exe.name);
	attr_list_free(&env);
	exe_free(&exe);
	return svc;
}

void sr_resource_atfork_child(void)
{
	pthread_mutex_init(&exe_lock, NULL);
	pthread_mutex_init(&svc_lock, NULL);
}

const char *sr_resource_service_name(void)
{
	bool empty;

	pthread_mutex_lock(&svc_lock);
	empty = svc_cache[0] == '\0';
	pthread_mutex_unlock(&svc_lock);
	if (empty) {
		char *svc = svc_resolve();
		svc_store(svc ? svc : "unknown_service");
		sr_free(svc);
	}
	return svc_cache;
}

/* ---- entry point ------------------------------------------------------------------------ */

int sr_resource_encode(uint8_t *buf, size_t cap, size_t *len)
{
	struct attr_list env = {0}, l = {0};
	struct exe_info exe = {0};
	char *svc = NULL;
	int rc;

	if (!len || (!buf && cap))
		return -EINVAL;
	rc = env_attrs(&env);
	if (!rc)
		rc = exe_detect(&exe);
	if (!rc) {
		svc = service_name(&env, exe.name);
		rc = svc ? 0 : -ENOMEM;
	}
	if (!rc)
		rc = detect_all(&l, svc, &exe);
	if (!rc)
		rc = merge_env(&l, &env);
	if (!rc) {
		svc_store(svc);
		rc = pack(&l, buf, cap, len);
	}
	attr_list_free(&env);
	attr_list_free(&l);
	exe_free(&exe);
	sr_free(svc);
	return rc;
}
