/* SPDX-License-Identifier: MIT */
/*
 * registry_adopt() against every kind of bad fd and lying header, with
 * real fds: the exact reason code, and nothing mapped or kept on refusal.
 * Also the resource rewrite.
 */
#include "agent_fixture.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "otlp_resource.pb-c.h"

struct rfx {
	struct agent_config cfg;
	struct agent ag;
};

static void rfx_init(struct rfx *r)
{
	memset(r, 0, sizeof(*r));
	agent_log_set_level(AGENT_LOG_ERROR);
	agent_config_defaults(&r->cfg);
	assert_int_equal(agent_init(&r->ag, &r->cfg, false), 0);
}

static void rfx_fini(struct rfx *r)
{
	agent_fini(&r->ag);
	agent_config_free(&r->cfg);
}

static int adopt(struct rfx *r, int fd, uint64_t size, const char **why)
{
	struct agent_producer *p = NULL;
	int rc = registry_adopt(&r->ag, fd, size, getpid(), getuid(), getgid(), false, &p, why);
	if (rc == 0)
		assert_non_null(p);
	else
		assert_null(p);
	return rc;
}

static void expect(struct rfx *r, int fd, uint64_t size, int code, const char *why_part)
{
	const char *why = "";
	uint32_t before = r->ag.n_producers;
	int rc = adopt(r, fd, size, &why);
	if (rc != code || !strstr(why, why_part)) {
		fprintf(stderr, "got %d '%s', want %d '%s'\n", rc, why, code, why_part);
		fail();
	}
	assert_int_equal(r->ag.n_producers, before);
	/* The fd is still the caller's. */
	assert_true(fcntl(fd, F_GETFD) >= 0);
	close(fd);
}

static void test_not_memfd(void **state)
{
	(void)state;
	struct rfx r;
	rfx_init(&r);
	int p[2];
	assert_int_equal(pipe(p), 0);
	expect(&r, p[0], 65536, SPANRING_REG_ENOTMEMFD, "not a memfd");
	close(p[1]);
	char path[] = "/tmp/spanring-reg-XXXXXX";
	int f = mkstemp(path);
	assert_int_equal(ftruncate(f, 1 << 20), 0);
	unlink(path);
	expect(&r, f, 1 << 20, SPANRING_REG_ENOTMEMFD, "not a memfd");
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	expect(&r, sv[0], 65536, SPANRING_REG_ENOTMEMFD, "not a memfd");
	close(sv[1]);
	int z = open("/dev/zero", O_RDONLY);
	expect(&r, z, 65536, SPANRING_REG_ENOTMEMFD, "not a memfd");
	/* A memfd created without MFD_ALLOW_SEALING (it has F_SEAL_SEAL only). */
	int m = memfd_create("nosealing", MFD_CLOEXEC);
	assert_int_equal(ftruncate(m, 1 << 20), 0);
	expect(&r, m, 1 << 20, SPANRING_REG_ESEALS, "not sealed");
	rfx_fini(&r);
}

/* A valid ring's bytes in a memfd with the given seals. */
static int ring_memfd(unsigned seals, uint64_t *size, void (*mutate)(struct spanring_ring_hdr *))
{
	struct tr t;
	uint8_t res[128];
	size_t rl = tr_encode_resource(res, "s", false);
	assert_int_equal(tr_create(&t, 1, 16384, res, rl), 0);
	*size = t.m.l.total_size;
	int m = memfd_create("copy", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(m, (off_t)*size), 0);
	struct spanring_ring_hdr h;
	memcpy(&h, sr_hdr(&t.m), sizeof(h));
	if (mutate)
		mutate(&h);
	assert_int_equal(pwrite(m, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	assert_int_equal(pwrite(m, sr_resource(&t.m), rl, (off_t)t.m.l.res_off), (ssize_t)rl);
	if (seals)
		assert_int_equal(fcntl(m, F_ADD_SEALS, seals), 0);
	sr_ring_unmap(&t.m, true);
	return m;
}

static void test_seals(void **state)
{
	(void)state;
	struct rfx r;
	rfx_init(&r);
	uint64_t size;
	int m = ring_memfd(0, &size, NULL);
	expect(&r, m, size, SPANRING_REG_ESEALS, "not sealed");
	m = ring_memfd(F_SEAL_SHRINK, &size, NULL);
	expect(&r, m, size, SPANRING_REG_ESEALS, "not sealed"); /* growable */
	m = ring_memfd(F_SEAL_GROW, &size, NULL);
	expect(&r, m, size, SPANRING_REG_ESEALS, "not sealed"); /* shrinkable */
	m = ring_memfd(F_SEAL_SHRINK | F_SEAL_GROW, &size, NULL);
	/* Without F_SEAL_SEAL the producer could add a write seal later. */
	expect(&r, m, size, SPANRING_REG_ESEALS, "further sealing");
	m = ring_memfd(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL | F_SEAL_FUTURE_WRITE, &size, NULL);
	expect(&r, m, size, SPANRING_REG_ESEALS, "sealed against writing");
	m = ring_memfd(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, &size, NULL);
	const char *why;
	assert_int_equal(adopt(&r, m, size, &why), 0);
	rfx_fini(&r);
}

static void mut_abi(struct spanring_ring_hdr *h) { h->abi_major = 2; }
static void mut_magic(struct spanring_ring_hdr *h) { h->magic ^= 1; }
static void mut_feature(struct spanring_ring_hdr *h) { h->features = 1ull << 40; }
static void mut_dataoff(struct spanring_ring_hdr *h) { h->data_off += 4096; }
static void mut_slots(struct spanring_ring_hdr *h) { h->slot_count = 2; }
static void mut_slotsize(struct spanring_ring_hdr *h) { h->slot_size = 16385; }
static void mut_reslen(struct spanring_ring_hdr *h) { h->res_len = h->res_cap + 1; }
static void mut_uninit(struct spanring_ring_hdr *h) { h->flags = 0; }
static void mut_hdrsize(struct spanring_ring_hdr *h) { h->header_size = 128; }
static void mut_badres(struct spanring_ring_hdr *h) { h->res_len = 3; }

static void test_lying_headers(void **state)
{
	(void)state;
	struct rfx r;
	rfx_init(&r);
	const unsigned S = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	struct {
		void (*mut)(struct spanring_ring_hdr *);
		int code;
		const char *why;
	} cases[] = {
		{mut_abi, SPANRING_REG_EABI, "ABI major"},
		{mut_magic, SPANRING_REG_EHEADER, "bad magic"},
		{mut_feature, SPANRING_REG_EABI, "required feature"},
		{mut_dataoff, SPANRING_REG_EHEADER, "offsets disagree"},
		{mut_slots, SPANRING_REG_EHEADER, "offsets disagree"},
		{mut_slotsize, SPANRING_REG_EHEADER, "out of bounds"},
		{mut_reslen, SPANRING_REG_EHEADER, "resource length"},
		{mut_uninit, SPANRING_REG_EHEADER, "not initialized"},
		{mut_hdrsize, SPANRING_REG_EHEADER, "header or page size"},
		{mut_badres, SPANRING_REG_EHEADER, "resource does not decode"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t size;
		int m = ring_memfd(S, &size, cases[i].mut);
		expect(&r, m, size, cases[i].code, cases[i].why);
	}
	/* The request's size must be the memfd's. */
	uint64_t size;
	int m = ring_memfd(S, &size, NULL);
	expect(&r, m, size + 4096, SPANRING_REG_ESIZE, "ring_size differs");
	rfx_fini(&r);
}

static void test_stored_state_hostile(void **state)
{
	(void)state;
	struct rfx r;
	rfx_init(&r);
	struct tr t;
	uint8_t res[128];
	size_t rl = tr_encode_resource(res, "s", false);
	assert_int_equal(tr_create(&t, 2, 16384, res, rl), 0);
	sr_cons(&t.m, 1)->tail = 100; /* tail beyond head */
	expect(&r, dup(t.m.fd), t.m.l.total_size, SPANRING_REG_EHEADER, "stored tail");
	sr_cons(&t.m, 1)->tail = 0;
	tr_set_head(&t, 0, 16384 * 3); /* head - tail > size */
	expect(&r, dup(t.m.fd), t.m.l.total_size, SPANRING_REG_EHEADER, "stored tail");
	tr_set_head(&t, 0, 0);
	/* scope_at_tail matters only once something was released. */
	uint64_t sc = tr_add_scope(&t, "x", NULL, NULL);
	struct tr_span s = fx_span(1, 0);
	assert_int_equal(tr_write_span(&t, 0, sc, &s), 0);
	sr_cons(&t.m, 0)->tail = t.head[0];
	sr_cons(&t.m, 0)->scope_at_tail = 12345;
	expect(&r, dup(t.m.fd), t.m.l.total_size, SPANRING_REG_EHEADER, "scope_at_tail");
	sr_cons(&t.m, 0)->scope_at_tail = sc;
	const char *why;
	assert_int_equal(adopt(&r, dup(t.m.fd), t.m.l.total_size, &why), 0);
	/* The same ring twice is refused. */
	expect(&r, dup(t.m.fd), t.m.l.total_size, SPANRING_REG_EPROTO, "already registered");
	sr_ring_unmap(&t.m, true);
	rfx_fini(&r);
}

static void test_limits(void **state)
{
	(void)state;
	struct rfx r;
	rfx_init(&r);
	r.cfg.max_producers_per_uid = 2;
	struct tr t[3];
	uint8_t res[128];
	size_t rl = tr_encode_resource(res, "s", false);
	const char *why;
	for (int i = 0; i < 3; i++)
		assert_int_equal(tr_create(&t[i], 1, 16384, res, rl), 0);
	assert_int_equal(adopt(&r, dup(t[0].m.fd), t[0].m.l.total_size, &why), 0);
	assert_int_equal(adopt(&r, dup(t[1].m.fd), t[1].m.l.total_size, &why), 0);
	int fd = dup(t[2].m.fd);
	expect(&r, fd, t[2].m.l.total_size, SPANRING_REG_ELIMIT, "for this uid");
	r.cfg.max_producers_per_uid = 100;
	r.cfg.max_mapped_per_uid = 2 * t[0].m.l.total_size;
	fd = dup(t[2].m.fd);
	expect(&r, fd, t[2].m.l.total_size, SPANRING_REG_ELIMIT, "bytes mapped");
	r.cfg.max_mapped_per_uid = 1ull << 40;
	r.cfg.max_producers = 2;
	fd = dup(t[2].m.fd);
	expect(&r, fd, t[2].m.l.total_size, SPANRING_REG_ELIMIT, "too many producers");
	for (int i = 0; i < 3; i++)
		sr_ring_unmap(&t[i].m, true);
	rfx_fini(&r);
}

/* The agent maps the data read-only: a write through it faults. */
static void test_data_read_only(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	FILE *maps = fopen("/proc/self/maps", "r");
	assert_non_null(maps);
	char line[512];
	uintptr_t data = (uintptr_t)f.p->map.data;
	uintptr_t cons = (uintptr_t)sr_cons_hdr(&f.p->map);
	uintptr_t hdr = (uintptr_t)f.p->map.ctrl;
	int found = 0;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
			continue;
		if (data >= lo && data < hi) {
			assert_int_equal(perms[1], '-');
			found++;
		}
		if (hdr >= lo && hdr < hi) {
			assert_int_equal(perms[1], '-');
			found++;
		}
		if (cons >= lo && cons < hi) {
			assert_int_equal(perms[1], 'w');
			found++;
		}
	}
	fclose(maps);
	assert_int_equal(found, 3);
	fx_fini(&f);
}

/* The value of key in r (NULL when absent); *count gets how often it occurs. */
static const Opentelemetry__Proto__Common__V1__AnyValue *
res_attr(const Opentelemetry__Proto__Resource__V1__Resource *r, const char *key, int *count)
{
	const Opentelemetry__Proto__Common__V1__AnyValue *v = NULL;
	*count = 0;
	for (size_t i = 0; i < r->n_attributes; i++) {
		if (strcmp(r->attributes[i]->key, key) == 0) {
			(*count)++;
			v = r->attributes[i]->value;
		}
	}
	return v;
}

static void expect_str(const Opentelemetry__Proto__Resource__V1__Resource *r, const char *key,
		       const char *want)
{
	int n;
	const Opentelemetry__Proto__Common__V1__AnyValue *v = res_attr(r, key, &n);
	if (!want) {
		if (n)
			fail_msg("%s present", key);
		return;
	}
	if (n != 1 || !v || !v->string_value)
		fail_msg("%s: %d times", key, n);
	assert_string_equal(v->string_value, want);
}

static void expect_int(const Opentelemetry__Proto__Resource__V1__Resource *r, const char *key,
		       int64_t want)
{
	int n;
	const Opentelemetry__Proto__Common__V1__AnyValue *v = res_attr(r, key, &n);
	assert_int_equal(n, 1);
	assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
	assert_int_equal(v->int_value, want);
}

/*
 * Issue 14 R4: a producer running as nobody claims to be root on another
 * host in another container. Every claim about its identity is replaced
 * by what the agent verified, or removed; its own word stays its own.
 */
static void test_resource_rewrite(void **state)
{
	(void)state;
	uint8_t res[1024], *p = res;
	p = tr_put_kv_str(p, 1, "service.name", "svc");
	p = tr_put_kv_str(p, 1, "process.user.name", "root");
	p = tr_put_kv_int(p, 1, "process.user.id", 0);
	p = tr_put_kv_str(p, 1, "process.owner", "root");
	p = tr_put_kv_int(p, 1, "process.pid", 1);
	p = tr_put_kv_str(p, 1, "host.name", "forged-host");
	p = tr_put_kv_str(p, 1, "host.id", "00000000000000000000000000000000");
	p = tr_put_kv_str(p, 1, "host.arch", "s390x");
	p = tr_put_kv_str(p, 1, "container.id", "forged-container");
	p = tr_put_kv_int(p, 1, "process.real_user.id", 0);
	p = tr_put_kv_str(p, 1, "process.saved_user.name", "root");
	p = tr_put_kv_str(p, 1, "process.executable.name", "claimed-exe");
	p = tr_put_kv_str(p, 1, "container.name", "claimed-name");
	size_t rl = (size_t)(p - res);
	uint8_t *out;
	size_t out_len;
	char svc[64];
	const char *cid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct res_identity id = {.pid = 777, .uid = 65534, .host_name = "h1",
				  .host_id = "3d1219c7c4c5404aaa1f6d2a48adfda4", .container_id = cid};
	assert_int_equal(agent_resource_rewrite(res, rl, &id, &out, &out_len, svc, sizeof(svc)), 0);
	assert_string_equal(svc, "svc");
	Opentelemetry__Proto__Resource__V1__Resource *r =
		opentelemetry__proto__resource__v1__resource__unpack(NULL, out_len, out);
	assert_non_null(r);
	expect_int(r, "process.pid", 777);
	expect_int(r, "process.user.id", 65534);
	expect_str(r, "process.user.name", "nobody");
	expect_str(r, "process.owner", "nobody");
	expect_str(r, "host.name", "h1");
	expect_str(r, "host.id", "3d1219c7c4c5404aaa1f6d2a48adfda4");
	expect_str(r, "container.id", cid);
	expect_str(r, "host.arch", NULL);
	int n;
	res_attr(r, "process.real_user.id", &n);
	assert_int_equal(n, 0);
	expect_str(r, "process.saved_user.name", NULL);
	/* The producer's own word, kept as sent. */
	expect_str(r, "service.name", "svc");
	expect_str(r, "process.executable.name", "claimed-exe");
	expect_str(r, "container.name", "claimed-name");
	opentelemetry__proto__resource__v1__resource__free_unpacked(r, NULL);
	free(out);

	/* Unknown to the agent (no machine id, no container, a uid without a
	 * name): absent, the producer's claims not kept in their place. */
	struct res_identity bare = {.pid = 5, .uid = 4242420};
	assert_int_equal(agent_resource_rewrite(res, rl, &bare, &out, &out_len, svc, sizeof(svc)), 0);
	r = opentelemetry__proto__resource__v1__resource__unpack(NULL, out_len, out);
	assert_non_null(r);
	expect_int(r, "process.user.id", 4242420);
	expect_str(r, "process.user.name", NULL);
	expect_str(r, "process.owner", "4242420");
	expect_str(r, "host.name", NULL);
	expect_str(r, "host.id", NULL);
	expect_str(r, "container.id", NULL);
	opentelemetry__proto__resource__v1__resource__free_unpacked(r, NULL);
	free(out);

	/* Empty resource: the verified attributes alone. */
	assert_int_equal(agent_resource_rewrite(NULL, 0, &id, &out, &out_len, svc, sizeof(svc)), 0);
	assert_string_equal(svc, "");
	free(out);
	/* Garbage does not decode. */
	uint8_t junk[] = {0x0a, 0x50, 1};
	assert_int_equal(agent_resource_rewrite(junk, sizeof(junk), &id, &out, &out_len, svc,
						sizeof(svc)),
			 -EBADMSG);
}

/* Issue 14 R16: a producer that hung up after sending its ring is no
 * reason for a warning; any other failure of the reply is. */
static void test_reply_failure_level(void **state)
{
	(void)state;
	assert_int_equal(registry_reply_failure_level(-EPIPE), AGENT_LOG_DEBUG);
	assert_int_equal(registry_reply_failure_level(-ECONNRESET), AGENT_LOG_DEBUG);
	int real[] = {-EAGAIN, -ENOBUFS, -ENOMEM, -EIO, -EBADF, -EINVAL};
	for (size_t i = 0; i < sizeof(real) / sizeof(real[0]); i++)
		assert_int_equal(registry_reply_failure_level(real[i]), AGENT_LOG_WARN);
}

/* container.id from a cgroup file as the host sees it. */
static void test_cgroup_container_id(void **state)
{
	(void)state;
	const char *id = "4b1e0a5c3f2d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";
	char text[512], out[65];
	snprintf(text, sizeof(text), "0::/system.slice/docker-%s.scope\n", id);
	assert_true(agent_cgroup_container_id(text, strlen(text), out));
	assert_string_equal(out, id);
	snprintf(text, sizeof(text),
		 "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b3c4d_"
		 "0000_1111_2222_333344445555.slice/cri-containerd-%s.scope\n", id);
	assert_true(agent_cgroup_container_id(text, strlen(text), out));
	assert_string_equal(out, id);
	snprintf(text, sizeof(text), "12:memory:/docker/%s\n0::/\n", id);
	assert_true(agent_cgroup_container_id(text, strlen(text), out));
	assert_string_equal(out, id);
	/* No container: a user session, 63 or 65 hex digits. */
	const char *none[] = {"0::/user.slice/user-1000.slice/session-2.scope\n", "0::/\n",
			      "0::/x-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n",
			      "0::/x-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\n"};
	for (size_t i = 0; i < 4; i++)
		assert_false(agent_cgroup_container_id(none[i], strlen(none[i]), out));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_memfd),
		cmocka_unit_test(test_seals),
		cmocka_unit_test(test_lying_headers),
		cmocka_unit_test(test_stored_state_hostile),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_data_read_only),
		cmocka_unit_test(test_resource_rewrite),
		cmocka_unit_test(test_cgroup_container_id),
		cmocka_unit_test(test_reply_failure_level),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
