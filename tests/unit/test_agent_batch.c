/* SPDX-License-Identifier: MIT */
/*
 * Batches: the ExportTraceServiceRequest framing built over a real ring
 * (decoded with protobuf-c and protoc), the release order of refcounted
 * batches (tail moves only over the fully released prefix), and the
 * zero-copy proof of the file exporter.
 */
#include "agent_fixture.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>

#include "otlp_trace_service.pb-c.h"
#include "ringread.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

static const KeyValue *find_attr(KeyValue **kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i]->key, key) == 0)
			return kv[i];
	return NULL;
}

static int64_t span_seq(const Span *s)
{
	const KeyValue *kv = find_attr(s->attributes, s->n_attributes, "test.seq");
	assert_non_null(kv);
	return kv->value->int_value;
}

static void check_span(const Span *s, int64_t seq, int64_t thread)
{
	struct tr_span want = fx_span(seq, thread);
	assert_int_equal(s->trace_id.len, 16);
	assert_memory_equal(s->trace_id.data, want.trace_id, 16);
	assert_int_equal(s->span_id.len, 8);
	assert_memory_equal(s->span_id.data, want.span_id, 8);
	assert_string_equal(s->name, want.name);
	assert_int_equal(s->kind, 2);
	assert_int_equal(s->start_time_unix_nano, want.start_ns);
	assert_int_equal(s->end_time_unix_nano, want.end_ns);
	assert_int_equal(span_seq(s), seq);
	const KeyValue *th = find_attr(s->attributes, s->n_attributes, "test.thread");
	assert_non_null(th);
	assert_int_equal(th->value->int_value, thread);
}

static struct batch *captured;
static void capture(struct agent *ag, struct batch *b)
{
	(void)ag;
	captured = b;
}

/* Slot 0: A A B A (with LOST and PAD between), slot 1: B B. */
static void test_framing_decodes(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 2, 16384);
	struct tr_span s;
	s = fx_span(0, 0);
	assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
	uint8_t ctrl[32];
	size_t n = tr_ctrl_varint(ctrl, SPANRING_CTRL_LOST, 7);
	tr_put_raw(&f.t, 0, ctrl, n);
	tr_commit(&f.t, 0);
	s = fx_span(1, 0);
	assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
	s = fx_span(2, 0);
	assert_int_equal(tr_write_span(&f.t, 0, f.scope_b, &s), 0);
	/* PAD record: tag(1902, LEN) len 3 */
	uint8_t *p = pb_put_varint(ctrl, PB_TAG(SPANRING_CTRL_PAD, SPANRING_WT_LEN));
	p = pb_put_varint(p, 3);
	memset(p, 0xee, 3);
	tr_put_raw(&f.t, 0, ctrl, (size_t)(p + 3 - ctrl));
	tr_commit(&f.t, 0);
	s = fx_span(3, 0);
	assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
	s = fx_span(10, 1);
	assert_int_equal(tr_write_span(&f.t, 1, f.scope_b, &s), 0);
	s = fx_span(11, 1);
	assert_int_equal(tr_write_span(&f.t, 1, f.scope_b, &s), 0);

	f.ag.on_batch = capture;
	captured = NULL;
	assert_int_equal(fx_pump(&f), 6);
	assert_non_null(captured);
	struct batch *b = captured;
	assert_int_equal(b->spans, 6);
	assert_int_equal(f.p->lost, 7);
	/* iov[0] is the varint length of the message. */
	const uint8_t *pre = b->iov[0].iov_base;
	uint64_t len;
	assert_int_equal(pb_get_varint(&pre, pre + b->iov[0].iov_len, &len), 0);
	assert_int_equal(len, b->msg_len);

	size_t blen;
	uint8_t *buf = fx_request_bytes(b, &blen);
	Req *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
		NULL, blen, buf);
	assert_non_null(r);
	assert_int_equal(r->n_resource_spans, 1);
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[0];
	/* The resource: service and other attributes kept, identity verified. */
	KeyValue **ra = rs->resource->attributes;
	size_t nra = rs->resource->n_attributes;
	assert_string_equal(find_attr(ra, nra, "service.name")->value->string_value, "fx-service");
	assert_string_equal(find_attr(ra, nra, "test.kept")->value->string_value, "yes");
	assert_int_equal(find_attr(ra, nra, "process.pid")->value->int_value, getpid());
	assert_string_equal(find_attr(ra, nra, "host.name")->value->string_value, "fx-host");
	struct passwd *pw = getpwuid(getuid());
	assert_string_equal(find_attr(ra, nra, "process.owner")->value->string_value,
			    pw ? pw->pw_name : "?");
	size_t claims = 0;
	for (size_t i = 0; i < nra; i++)
		if (!strcmp(ra[i]->key, "process.pid") || !strcmp(ra[i]->key, "host.name") ||
		    !strcmp(ra[i]->key, "process.owner"))
			claims++;
	assert_int_equal(claims, 3); /* the forged ones are gone */
	/* Scope runs: slot 0 gives A(0,1) B(2) A(3), slot 1 gives B(10,11). */
	assert_int_equal(rs->n_scope_spans, 4);
	const char *want_scope[] = {"scope-a", "scope-b", "scope-a", "scope-b"};
	size_t want_n[] = {2, 1, 1, 2};
	int64_t want_seq[4][2] = {{0, 1}, {2, -1}, {3, -1}, {10, 11}};
	for (size_t i = 0; i < 4; i++) {
		Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[i];
		assert_non_null(ss->scope);
		assert_string_equal(ss->scope->name, want_scope[i]);
		if (!strcmp(want_scope[i], "scope-a")) {
			assert_string_equal(ss->scope->version, "1.0");
			assert_string_equal(ss->schema_url, "");
		} else {
			assert_string_equal(ss->schema_url, "https://example.com/schema");
		}
		assert_int_equal(ss->n_spans, want_n[i]);
		for (size_t k = 0; k < want_n[i]; k++)
			check_span(ss->spans[k], want_seq[i][k], want_seq[i][k] >= 10 ? 1 : 0);
	}
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r,
												 NULL);

	/* Independent decoders: protoc with the project's schema and with the
	 * reference schema of the OpenTelemetry project. */
	const char *src = getenv("SPANRING_TEST_SRC");
	char inc[4096];
	snprintf(inc, sizeof(inc), "%s/proto", src ? src : ".");
	char *txt = rr_protoc_decode(buf, blen, inc, "otlp_trace_service.proto",
				     "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest");
	assert_non_null(txt);
	assert_non_null(strstr(txt, "name: \"span-11\""));
	assert_non_null(strstr(txt, "string_value: \"fx-service\""));
	size_t nspans = 0;
	for (char *q = txt; (q = strstr(q, " spans {")); q++)
		nspans++;
	assert_int_equal(nspans, 6);
	free(txt);
	if (access("/work/shared/otlp-proto/opentelemetry/proto/collector/trace/v1/trace_service.proto",
		   R_OK) == 0) {
		txt = rr_protoc_decode(buf, blen, "/work/shared/otlp-proto",
				       "opentelemetry/proto/collector/trace/v1/trace_service.proto",
				       "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest");
		assert_non_null(txt);
		nspans = 0;
		for (char *q = txt; (q = strstr(q, " spans {")); q++)
			nspans++;
		assert_int_equal(nspans, 6);
		assert_null(strstr(txt, "\n1900:")); /* no control record leaked */
		free(txt);
	}
	free(buf);
	fx_fini(&f);
}

/* Batches released out of order: tail moves only over the released prefix. */
static void test_release_order(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	uint64_t ends[3];
	for (int k = 0; k < 3; k++) {
		for (int j = 0; j < 4; j++) {
			struct tr_span s = fx_span(k * 4 + j, 0);
			assert_int_equal(tr_write_span(&f.t, 0, k == 2 ? f.scope_b : f.scope_a, &s), 0);
		}
		ends[k] = f.t.head[0];
		assert_int_equal(fx_pump(&f), 4);
	}
	assert_int_equal(f.hold.n, 3);
	struct spanring_slot_cons *c = sr_cons(&f.t.m, 0);
	assert_int_equal(c->tail, 0);
	fx_release(&f, 1); /* middle first: nothing may move */
	assert_int_equal(c->tail, 0);
	assert_int_equal(f.p->slots[0].tail, 0);
	fx_release(&f, 2); /* last: still blocked by the first */
	assert_int_equal(c->tail, 0);
	fx_release(&f, 0); /* the first: tail jumps over all three */
	assert_int_equal(c->tail, ends[2]);
	assert_int_equal(c->scope_at_tail, f.scope_b);
	assert_int_equal(f.p->inflight_chunks, 0);
	f.hold.n = 0;

	/* In order this time: tail follows each release exactly. */
	for (int k = 0; k < 2; k++) {
		struct tr_span s = fx_span(100 + k, 0);
		assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
		ends[k] = f.t.head[0];
		assert_int_equal(fx_pump(&f), 1);
	}
	fx_release(&f, 0);
	assert_int_equal(c->tail, ends[0]);
	assert_int_equal(c->scope_at_tail, f.scope_a);
	fx_release(&f, 1);
	assert_int_equal(c->tail, ends[1]);
	f.hold.n = 0;
	fx_fini(&f);
}

/* At exit, batches no exporter delivered do not move the tails: the next
 * agent exports them. */
static void test_exit_keeps_undelivered(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	for (int i = 0; i < 5; i++) {
		struct tr_span s = fx_span(i, 0);
		assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
	}
	assert_int_equal(fx_pump(&f), 5); /* held by the exporter */
	struct tr_span s = fx_span(9, 0);
	assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
	agent_drain_all(&f.ag); /* in the current, unfinished batch */
	assert_non_null(f.ag.cur);
	agent_fini(&f.ag);
	assert_int_equal(sr_cons(&f.t.m, 0)->tail, 0);
	sr_ring_unmap(&f.t.m, true);
	agent_config_free(&f.cfg);
}

/* A batch of only control records is released at once. */
static void test_control_only_batch(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	uint8_t ctrl[16];
	size_t n = tr_ctrl_varint(ctrl, SPANRING_CTRL_SCOPE, f.scope_a);
	tr_put_raw(&f.t, 0, ctrl, n);
	n = tr_ctrl_varint(ctrl, SPANRING_CTRL_LOST, 3);
	tr_put_raw(&f.t, 0, ctrl, n);
	tr_commit(&f.t, 0);
	assert_int_equal(fx_pump(&f), 0);
	assert_int_equal(f.hold.n, 0);
	assert_int_equal(sr_cons(&f.t.m, 0)->tail, f.t.head[0]);
	assert_int_equal(sr_cons(&f.t.m, 0)->scope_at_tail, f.scope_a);
	assert_int_equal(f.ag.st.empty_batches, 1);
	fx_fini(&f);
}

/* Size limit: a slot's spans are cut into several batches. */
static void test_batch_size_limit(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 65536);
	f.cfg.batch_max_bytes = 4096;
	int total = 0;
	for (int i = 0; i < 200; i++) {
		struct tr_span s = fx_span(i, 0);
		if (tr_write_span(&f.t, 0, f.scope_a, &s) == 0)
			total++;
	}
	assert_int_equal(fx_pump(&f), total);
	assert_true(f.hold.n > 3);
	for (size_t i = 0; i < f.hold.n; i++)
		assert_true(f.hold.held[i]->span_bytes <= 4096);
	for (size_t i = 0; i < f.hold.n; i++)
		fx_release(&f, i);
	f.hold.n = 0;
	assert_int_equal(sr_cons(&f.t.m, 0)->tail, f.t.head[0]);
	fx_fini(&f);
}

/* ---- zero-copy proof -------------------------------------------------------- */

static struct {
	struct fx *f;
	size_t calls, span_iovs, span_bytes, aliased;
	int violations;
} zc;

/* Stands in for writev(2): inspects exactly what the kernel would get. */
static ssize_t zc_writev(int fd, const struct iovec *iov, int cnt)
{
	struct fx *f = zc.f;
	const uint8_t *lo = f->p->map.data, *hi = lo + f->p->map.data_span;
	zc.calls++;
	size_t total = 0;
	for (int i = 0; i < cnt; i++) {
		const uint8_t *b = iov[i].iov_base;
		size_t n = iov[i].iov_len;
		total += n;
		if (b >= lo && b + n <= hi) {
			zc.span_iovs++;
			zc.span_bytes += n;
			/*
			 * Prove it is ring memory, not a copy that happens to lie
			 * there: change the first byte through the PRODUCER's
			 * mapping and see it through the exporter's pointer.
			 */
			size_t off = (size_t)(b - lo);
			uint32_t slot = (uint32_t)(off / (2 * f->t.m.l.slot_size));
			size_t in = off % f->t.m.l.slot_size;
			uint8_t *pb = sr_slot_data(&f->t.m, slot) + in;
			uint8_t old = *pb;
			uint8_t flipped = (uint8_t)~old;
			*pb = flipped;
			uint8_t seen = *(volatile const uint8_t *)b;
			if (seen == flipped)
				zc.aliased++;
			*pb = old;
		} else if (b < hi && b + n > lo) {
			zc.violations++; /* straddles the mapping */
		}
	}
	ssize_t r = writev(fd, iov, cnt);
	if (r != (ssize_t)total)
		zc.violations++; /* a regular file takes a small write whole */
	return r;
}

static void test_file_exporter_zero_copy(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 2, 16384);
	f.hold.keep = false;
	f.cfg.zc_check = true;
	char path[] = "/tmp/spanring-zc-XXXXXX";
	int tfd = mkstemp(path);
	assert_true(tfd >= 0);
	close(tfd);
	struct exp_file_opts o = {.path = path, .retry_max_us = 1000000, .writev_fn = zc_writev};
	struct exporter *e;
	assert_int_equal(exp_file_create(&f.ag, &o, &e), 0);
	assert_int_equal(agent_add_exporter(&f.ag, e), 0);
	memset(&zc, 0, sizeof(zc));
	zc.f = &f;
	uint64_t span_rec_bytes = 0;
	for (int k = 0; k < 3; k++) {
		for (int i = 0; i < 20; i++) {
			struct tr_span s = fx_span(k * 100 + i, i % 2);
			uint64_t h0 = f.t.head[i % 2];
			uint64_t sc = i % 5 ? f.scope_a : f.scope_b;
			bool scope_rec = sc != f.t.scope[i % 2];
			assert_int_equal(tr_write_span(&f.t, (uint32_t)(i % 2), sc, &s), 0);
			span_rec_bytes += f.t.head[i % 2] - h0 - (scope_rec ? 2 + pb_varint_size(sc) : 0);
		}
		assert_int_equal(fx_pump(&f), 20);
	}
	assert_int_equal(zc.calls, 3);
	/* Every span byte went to the kernel straight from ring memory. */
	assert_int_equal(zc.span_bytes, span_rec_bytes);
	assert_true(zc.span_iovs >= 6);
	assert_int_equal(zc.aliased, zc.span_iovs);
	assert_int_equal(zc.violations, 0);
	/* The agent's own check saw the same and found nothing wrong. */
	assert_true(f.ag.st.zc_iov_checked > 0);
	assert_int_equal(f.ag.st.zc_violations, 0);
	/* Everything written and released. */
	assert_int_equal(sr_cons(&f.t.m, 0)->tail, f.t.head[0]);
	assert_int_equal(sr_cons(&f.t.m, 1)->tail, f.t.head[1]);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((uint64_t)st.st_size, e->st.bytes);
	assert_int_equal(e->st.spans, 60);
	unlink(path);
	fx_fini(&f);
}

/* The check itself catches copies and mislabelled ring pointers. */
static void test_zc_check_detects_copies(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	struct tr_span s = fx_span(1, 0);
	assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
	const uint8_t *ring = sr_slot_data(&f.p->map, 0);
	uint8_t copy[64];
	memcpy(copy, ring, sizeof(copy));
	uint8_t frame[4] = {1, 2, 3, 4};
	struct iovec iov[2];
	uint8_t kind[2] = {BATCH_IOV_FRAME, BATCH_IOV_SPANS};
	iov[0] = (struct iovec){frame, 4};
	iov[1] = (struct iovec){(void *)ring, 64};
	assert_int_equal(zc_check_iov(&f.ag, iov, kind, 2, 64), 0);
	iov[1].iov_base = copy; /* a copy flagged as span bytes */
	assert_int_equal(zc_check_iov(&f.ag, iov, kind, 2, 64), 1);
	iov[1].iov_base = (void *)ring;
	kind[1] = BATCH_IOV_FRAME; /* ring bytes not flagged as spans */
	assert_int_equal(zc_check_iov(&f.ag, iov, kind, 2, 0), 1);
	kind[1] = BATCH_IOV_SPANS; /* spans hidden in the framing: sums differ */
	assert_int_equal(zc_check_iov(&f.ag, iov, kind, 2, 100), 1);
	assert_int_equal(f.ag.st.zc_violations, 3);
	fx_fini(&f);
}

/* A cut record at the end of an existing output file is truncated. */
static void test_file_repair(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 16384);
	f.hold.keep = false;
	char path[] = "/tmp/spanring-repair-XXXXXX";
	int tfd = mkstemp(path);
	/* one good record (len 3) and a cut one (claims 100 bytes, has 5) */
	uint8_t junk[] = {3, 0x0a, 0x01, 0x00, 100, 1, 2, 3, 4, 5};
	assert_int_equal(write(tfd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(tfd);
	struct exp_file_opts o = {.path = path, .retry_max_us = 1000000};
	struct exporter *e;
	assert_int_equal(exp_file_create(&f.ag, &o, &e), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 4);
	e->ops->destroy(e);
	/* Not one of ours: refused, left alone. */
	int gfd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(gfd, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11), 11);
	close(gfd);
	assert_int_equal(exp_file_create(&f.ag, &o, &e), -EINVAL);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 11);
	unlink(path);
	fx_fini(&f);
}

/* Rotation: file -> file.1 -> file.2, the oldest beyond keep dropped. */
static void test_file_rotation(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1, 65536);
	f.hold.keep = false;
	char dir[] = "/tmp/spanring-rot-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/spans.pb", dir);
	struct exp_file_opts o = {.path = path, .rotate_bytes = 2000, .rotate_keep = 2,
				  .retry_max_us = 1000000};
	struct exporter *e;
	assert_int_equal(exp_file_create(&f.ag, &o, &e), 0);
	assert_int_equal(agent_add_exporter(&f.ag, e), 0);
	for (int k = 0; k < 12; k++) {
		for (int i = 0; i < 5; i++) {
			struct tr_span s = fx_span(k * 5 + i, 0);
			assert_int_equal(tr_write_span(&f.t, 0, f.scope_a, &s), 0);
		}
		fx_pump(&f);
	}
	char p1[300], p2[300], p3[300];
	snprintf(p1, sizeof(p1), "%s.1", path);
	snprintf(p2, sizeof(p2), "%s.2", path);
	snprintf(p3, sizeof(p3), "%s.3", path);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size <= 2000);
	assert_int_equal(stat(p1, &st), 0);
	assert_int_equal(stat(p2, &st), 0);
	assert_int_equal(stat(p3, &st), -1);
	unlink(path);
	unlink(p1);
	unlink(p2);
	rmdir(dir);
	fx_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framing_decodes),
		cmocka_unit_test(test_release_order),
		cmocka_unit_test(test_control_only_batch),
		cmocka_unit_test(test_exit_keeps_undelivered),
		cmocka_unit_test(test_batch_size_limit),
		cmocka_unit_test(test_file_exporter_zero_copy),
		cmocka_unit_test(test_zc_check_detects_copies),
		cmocka_unit_test(test_file_repair),
		cmocka_unit_test(test_file_rotation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
