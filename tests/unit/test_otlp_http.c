/* SPDX-License-Identifier: MIT */
/*
 * The OTLP/HTTP exporter in process, against a server socket the test
 * drives byte by byte: the request is byte-exact (head, Content-Length,
 * body = the batch's ExportTraceServiceRequest) also when the socket takes
 * it in small pieces (the iovec cursor), every iovec handed to sendmsg is
 * proven zero-copy, responses are parsed whatever their split (chunked
 * body one byte at a time, 100 Continue), Retry-After is obeyed on the
 * same keep-alive connection, a connection the server closes while
 * idle is replaced without a failure, and with batching on, the answer
 * is read with the next batch or by latency_bound, not by a wake-up of
 * its own.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "agent_fixture.h"
#include "otlp_base.h"
#include "otlp_trace_service.pb-c.h"

struct srv {
	int lfd, cfd;
	uint16_t port;
	uint8_t *in;
	size_t in_len, in_cap;
};

static const char *no_env(const char *n)
{
	(void)n;
	return NULL;
}

static void srv_listen(struct srv *s, int rcvbuf)
{
	memset(s, 0, sizeof(*s));
	s->cfd = -1;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	if (rcvbuf)
		setsockopt(s->lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	socklen_t al = sizeof(a);
	getsockname(s->lfd, (struct sockaddr *)&a, &al);
	s->port = ntohs(a.sin_port);
}

static void srv_close(struct srv *s)
{
	if (s->cfd >= 0)
		close(s->cfd);
	close(s->lfd);
	free(s->in);
}

static struct exporter *make_http(struct fx *f, struct srv *s)
{
	char url[64], err[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/traces", s->port);
	assert_int_equal(agent_config_set(&f->cfg, "otlp.traces_endpoint", url, err, sizeof(err)), 0);
	f->cfg.otlp_retry_initial_us = 100000;
	f->cfg.zc_check = true;
	struct otlp_conf c;
	assert_int_equal(otlp_conf_resolve(&c, &f->cfg, OTLP_PROTO_HTTP_PROTOBUF, no_env, err,
					   sizeof(err)),
			 0);
	c.sndbuf = 4096; /* so that the kernel takes the request in pieces */
	struct exporter *e;
	assert_int_equal(otlp_http_create(&f->ag.xhost, &c, &e), 0);
	assert_int_equal(agent_add_exporter(&f->ag, e), 0);
	return e;
}

static struct otlp_base *ob_of(struct exporter *e)
{
	return container_of(e, struct otlp_base, e);
}

/* Run the agent loop a little. */
static void spin(struct fx *f, int ms)
{
	loop_run_once(&f->ag.loop, ms);
}

static void srv_accept(struct fx *f, struct srv *s)
{
	for (int i = 0; i < 400 && s->cfd < 0; i++) {
		spin(f, 5);
		s->cfd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	}
	assert_true(s->cfd >= 0);
}

/* Read at most max bytes (0: all available) into s->in. */
static size_t srv_read(struct srv *s, size_t max)
{
	uint8_t buf[65536];
	size_t want = max && max < sizeof(buf) ? max : sizeof(buf);
	ssize_t n = read(s->cfd, buf, want);
	if (n <= 0)
		return 0;
	if (s->in_len + (size_t)n > s->in_cap) {
		s->in_cap = (s->in_len + (size_t)n) * 2;
		s->in = realloc(s->in, s->in_cap);
	}
	memcpy(s->in + s->in_len, buf, (size_t)n);
	s->in_len += (size_t)n;
	return (size_t)n;
}

/* Read one whole request (head + Content-Length body) in pieces of at most
 * chunk bytes, running the loop between reads. Returns the head length;
 * *body_len gets the Content-Length. */
static size_t srv_request(struct fx *f, struct srv *s, size_t chunk, size_t *body_len)
{
	for (int i = 0; i < 200000; i++) {
		spin(f, 0);
		srv_read(s, chunk);
		uint8_t *end = s->in_len ? memmem(s->in, s->in_len, "\r\n\r\n", 4) : NULL;
		if (end) {
			size_t hl = (size_t)(end - s->in) + 4;
			char *cl = memmem(s->in, hl, "Content-Length: ", 16);
			assert_non_null(cl);
			*body_len = strtoul(cl + 16, NULL, 10);
			if (s->in_len >= hl + *body_len)
				return hl;
		}
		if (!chunk)
			poll(&(struct pollfd){.fd = s->cfd, .events = POLLIN}, 1, 2);
	}
	fail_msg("no whole request (%zu bytes so far)", s->in_len);
	return 0;
}

static void srv_write(struct srv *s, const void *p, size_t n)
{
	assert_int_equal(write(s->cfd, p, n), (ssize_t)n);
}

/* Spans with a long string each, drained into one batch. */
static void put_spans(struct fx *f, int n, int64_t base)
{
	static char big[1001];
	memset(big, 'x', 1000);
	for (int i = 0; i < n; i++) {
		struct tr_span sp = fx_span(base + i, 0);
		sp.str = big;
		assert_int_equal(tr_write_span(&f->t, 0, f->scope_a, &sp), 0);
	}
	fx_pump(f);
}

static void test_partial_writes_exact_bytes(void **state)
{
	(void)state;
	struct fx f;
	struct srv s;
	fx_init(&f, 1, 1 << 20);
	srv_listen(&s, 4096);
	struct exporter *e = make_http(&f, &s);
	put_spans(&f, 400, 0);
	assert_int_equal(f.hold.n, 1);
	size_t want_len;
	uint8_t *want = fx_request_bytes(f.hold.held[0], &want_len);
	assert_true(want_len > 300000);
	srv_accept(&f, &s);
	size_t body_len;
	size_t hl = srv_request(&f, &s, 1500, &body_len);
	assert_int_equal(body_len, want_len);
	assert_int_equal(s.in_len, hl + body_len);
	assert_memory_equal(s.in, "POST /v1/traces HTTP/1.1\r\n", 26);
	assert_non_null(memmem(s.in, hl, "\r\nHost: 127.0.0.1:", 18));
	assert_non_null(memmem(s.in, hl, "\r\nContent-Type: application/x-protobuf\r\n", 40));
	assert_memory_equal(s.in + hl, want, want_len);
	struct otlp_base *ob = ob_of(e);
	assert_true(ob->c.would_block >= 1);
	assert_true(f.ag.st.zc_iov_checked > 0);
	assert_int_equal(f.ag.st.zc_violations, 0);
	/* the answer, chunked, one byte at a time, with a partial success */
	Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
	ps.rejected_spans = 2;
	ps.error_message = "two were bad";
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse r =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	r.partial_success = &ps;
	uint8_t pb[64];
	size_t pn = opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&r, pb);
	char resp[512];
	int rl = snprintf(resp, sizeof(resp),
			  "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
			  "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
			  pn);
	memcpy(resp + rl, pb, pn);
	rl += (int)pn;
	rl += snprintf(resp + rl, sizeof(resp) - (size_t)rl, "\r\n0\r\n\r\n");
	for (int i = 0; i < rl; i++) {
		srv_write(&s, resp + i, 1);
		spin(&f, 1);
		if (i + 1 < rl)
			assert_int_equal(e->st.batches, 0);
	}
	for (int i = 0; i < 50 && e->st.batches == 0; i++)
		spin(&f, 5);
	assert_int_equal(e->st.batches, 1);
	assert_int_equal(e->st.spans, 400);
	assert_int_equal(e->st.held, 0);
	assert_int_equal(ob->c.partial_responses, 1);
	assert_int_equal(ob->c.rejected_spans, 2);
	assert_int_equal(e->st.failures, 0);
	free(want);
	fx_fini(&f);
	srv_close(&s);
}

static void test_retry_after_keepalive(void **state)
{
	(void)state;
	struct fx f;
	struct srv s;
	fx_init(&f, 1, 1 << 20);
	srv_listen(&s, 0);
	struct exporter *e = make_http(&f, &s);
	struct otlp_base *ob = ob_of(e);
	put_spans(&f, 10, 0);
	srv_accept(&f, &s);
	size_t bl;
	size_t hl = srv_request(&f, &s, 0, &bl);
	size_t first_len = hl + bl;
	static const char r503[] = "HTTP/1.1 100 Continue\r\n\r\n"
				   "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
				   "Content-Length: 0\r\n\r\n";
	srv_write(&s, r503, sizeof(r503) - 1);
	uint64_t t0 = agent_now_ns();
	for (int i = 0; i < 100 && e->st.failures == 0; i++)
		spin(&f, 5);
	assert_int_equal(e->st.failures, 1);
	assert_int_equal(e->st.held, 1);
	assert_true(ob->wake_t.armed);
	assert_true(ob->wake_t.when_ns >= t0 + 900000000ull);
	/* the retry comes on the same connection after about a second */
	s.in_len = 0;
	hl = srv_request(&f, &s, 0, &bl);
	uint64_t waited = agent_now_ns() - t0;
	assert_true(waited >= 950000000ull);
	assert_int_equal(hl + bl, first_len);
	static const char r200[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	srv_write(&s, r200, sizeof(r200) - 1);
	for (int i = 0; i < 100 && e->st.batches == 0; i++)
		spin(&f, 5);
	assert_int_equal(e->st.batches, 1);
	assert_int_equal(e->st.retries, 1);
	assert_int_equal(ob->c.connects, 1);
	assert_int_equal(ob->c.responses_retryable, 1);
	/* the server closes the idle connection: replaced quietly */
	close(s.cfd);
	s.cfd = -1;
	for (int i = 0; i < 20; i++)
		spin(&f, 2);
	put_spans(&f, 10, 100);
	srv_accept(&f, &s);
	s.in_len = 0;
	srv_request(&f, &s, 0, &bl);
	srv_write(&s, r200, sizeof(r200) - 1);
	for (int i = 0; i < 100 && e->st.batches < 2; i++)
		spin(&f, 5);
	assert_int_equal(e->st.batches, 2);
	assert_int_equal(e->st.failures, 1);
	assert_int_equal(ob->c.transport_errors, 0);
	assert_int_equal(ob->c.connects, 2);
	fx_fini(&f);
	srv_close(&s);
}

static void test_non_retryable_and_garbage(void **state)
{
	(void)state;
	struct fx f;
	struct srv s;
	fx_init(&f, 1, 1 << 20);
	srv_listen(&s, 0);
	struct exporter *e = make_http(&f, &s);
	struct otlp_base *ob = ob_of(e);
	put_spans(&f, 5, 0);
	srv_accept(&f, &s);
	size_t bl;
	srv_request(&f, &s, 0, &bl);
	static const char r400[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
	srv_write(&s, r400, sizeof(r400) - 1);
	for (int i = 0; i < 100 && e->st.let_go_batches == 0; i++)
		spin(&f, 5);
	assert_int_equal(e->st.let_go_batches, 1);
	assert_int_equal(e->st.let_go_spans, 5);
	assert_int_equal(ob->c.permanent_let_go, 1);
	assert_int_equal(e->st.held, 0);
	/* a garbage answer: the connection is dropped, the batch retried */
	put_spans(&f, 5, 10);
	s.in_len = 0;
	srv_request(&f, &s, 0, &bl);
	static const char junk[] = "SMTP ready\r\n\r\n";
	srv_write(&s, junk, sizeof(junk) - 1);
	for (int i = 0; i < 100 && e->st.failures < 2; i++)
		spin(&f, 5);
	assert_int_equal(e->st.failures, 2); /* the 400 and this one */
	assert_int_equal(ob->c.transport_errors, 1);
	assert_int_equal(e->st.held, 1);
	fx_fini(&f); /* lets the held batch go, counted */
	srv_close(&s);
}

/* Run the loop without waiting for about ms milliseconds. */
static void spin_for(struct fx *f, int ms)
{
	uint64_t end = agent_now_ns() + (uint64_t)ms * 1000000ull;
	while (agent_now_ns() < end) {
		spin(f, 0);
		poll(NULL, 0, 1);
	}
}

static void test_answer_read_lazily(void **state)
{
	(void)state;
	struct fx f;
	struct srv s;
	fx_init(&f, 1, 1 << 20);
	const uint64_t bound_ns = 400000000ull;
	f.cfg.batch_max_age_us = bound_ns / 1000;
	srv_listen(&s, 0);
	struct exporter *e = make_http(&f, &s);
	struct otlp_base *ob = ob_of(e);
	static const char r200[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	put_spans(&f, 10, 0);
	srv_accept(&f, &s);
	size_t bl;
	srv_request(&f, &s, 0, &bl);
	uint64_t sent = agent_now_ns();
	srv_write(&s, r200, sizeof(r200) - 1);
	/* The answer is there, but nothing reads it: no wake-up of its own. */
	spin_for(&f, 50);
	if (agent_now_ns() < sent + bound_ns) /* a stalled test machine aside */
		assert_int_equal(e->st.batches, 0);
	/* The next batch reads it, and goes out on the same connection. */
	s.in_len = 0;
	put_spans(&f, 10, 100);
	assert_int_equal(e->st.batches, 1);
	srv_request(&f, &s, 0, &bl);
	sent = agent_now_ns();
	srv_write(&s, r200, sizeof(r200) - 1);
	/* No next batch: read by latency_bound after the send, never before. */
	while (e->st.batches < 2 && agent_now_ns() < sent + 5 * bound_ns)
		spin(&f, 10);
	assert_int_equal(e->st.batches, 2);
	assert_true(agent_now_ns() >= sent + bound_ns - 1000000ull);
	assert_int_equal(e->st.spans, 20);
	assert_int_equal(e->st.held, 0);
	assert_int_equal(ob->c.connects, 1);
	assert_int_equal(e->st.failures, 0);
	/* An answer that is not complete when collected is waited for. */
	s.in_len = 0;
	put_spans(&f, 10, 200);
	srv_request(&f, &s, 0, &bl);
	srv_write(&s, r200, 10);
	put_spans(&f, 10, 300); /* collects the partial answer */
	assert_int_equal(e->st.batches, 2);
	srv_write(&s, r200 + 10, sizeof(r200) - 1 - 10);
	sent = agent_now_ns();
	while (e->st.batches < 3 && agent_now_ns() < sent + bound_ns / 2)
		spin(&f, 5);
	assert_int_equal(e->st.batches, 3); /* by its EPOLLIN, not the bound */
	for (int i = 0; i < 50 && e->st.batches < 4; i++)
		spin(&f, 5); /* the fourth batch's request is out */
	/* Holding more than a quarter of its hold budget, the instance waits
	 * for the answer: its ring space comes back at once. */
	ob->hold_budget = 40000; /* a quarter is less than a batch of 10 spans (11.5 KB) */
	s.in_len = 0;
	srv_request(&f, &s, 0, &bl); /* the fourth batch */
	srv_write(&s, r200, sizeof(r200) - 1);
	while (e->st.batches < 4 && agent_now_ns() < sent + 5 * bound_ns)
		spin(&f, 5);
	s.in_len = 0;
	put_spans(&f, 10, 400);
	srv_request(&f, &s, 0, &bl);
	sent = agent_now_ns();
	srv_write(&s, r200, sizeof(r200) - 1);
	while (e->st.batches < 5 && agent_now_ns() < sent + bound_ns / 2)
		spin(&f, 5);
	assert_int_equal(e->st.batches, 5);
	fx_fini(&f);
	srv_close(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_partial_writes_exact_bytes),
		cmocka_unit_test(test_retry_after_keepalive),
		cmocka_unit_test(test_non_retryable_and_garbage),
		cmocka_unit_test(test_answer_read_lazily),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
