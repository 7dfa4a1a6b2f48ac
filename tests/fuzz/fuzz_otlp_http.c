/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the OTLP/HTTP exporter's response path, whatever a
 * receiver (or anything listening on its port) answers: libhttp-parser and
 * the exporter's callbacks (status, headers, Retry-After, Content-Type,
 * chunked and length-delimited bodies, 1xx interim answers, several
 * answers at once), the decoding of ExportTraceServiceResponse and
 * google.rpc.Status bodies, and the verdict applied to the held batch
 * (delivered, retried, let go) with its counters.
 *
 * The exporter's entry point for responses is the socket: its reader,
 * h_on_readable() via h_on_io(), is static in agent/export/exp_otlp_http.c and
 * reads with recv() from the exporter's connection. So this file includes
 * that source file and gives the exporter one end of a socketpair as its
 * connection (set up like h_try_connect() does after a connect), lets it
 * write a real request built from a real batch (ring slices), reads the
 * request off the other end and writes the fuzz input back as the
 * response, in pieces whose size the input chooses, then optionally
 * half-closes, closes or lets the request time out.
 *
 * Input: split:u8 (piece size 1 + split % 97; 0: all at once),
 * end:u8 (bit 0 half-close after the bytes, bit 1 time out if still
 * waiting, bit 2 retry budget 0, bit 3 gzip request), then the response.
 *
 * Invariants: after the exchange and the exporter's destruction the batch
 * is accounted for exactly once: delivered, or let go (counted); never
 * both, never neither; no reference leaks (the ring's tail comes back to
 * its head); the exporter never ends up busy without a connection.
 */
#include "exp_otlp_http.c"

#include <fcntl.h>

#include "agent.h"
#include "fuzz.h"

#include "testring.h"

static struct agent_config cfg;
static struct agent ag;
static struct tr ring;
static uint64_t scope;
static struct batch *caught;
static int base_fds;

static void on_batch(struct agent *a, struct batch *b)
{
	(void)a;
	batch_ref(b);
	caught = b;
}

static const char *no_env(const char *n)
{
	(void)n;
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	agent_log_set_level(getenv("FUZZ_LOG") ? AGENT_LOG_DEBUG : AGENT_LOG_ERROR);
	agent_config_defaults(&cfg);
	cfg.host_name = strdup("fuzz-host");
	cfg.batch_max_age_us = 0;
	char err[256];
	/* Port 1 on loopback: a reconnect the exporter may attempt is refused at once. */
	FZ_CHECK(agent_config_set(&cfg, "otlp.traces_endpoint", "http://127.0.0.1:1/v1/traces",
				  err, sizeof(err)) == 0);
	FZ_CHECK(agent_init(&ag, &cfg, false) == 0);
	ag.on_batch = on_batch;
	uint8_t res[256];
	size_t rl = tr_encode_resource(res, "fuzz-http", false);
	FZ_CHECK(tr_create(&ring, 1, 65536, res, rl) == 0);
	scope = tr_add_scope(&ring, "fuzz", "1", NULL);
	const char *why;
	struct agent_producer *p = NULL;
	FZ_CHECK(registry_adopt(&ag, dup(ring.m.fd), ring.m.l.total_size, getpid(), getuid(),
				getgid(), false, &p, &why) == 0);
	base_fds = fz_count_fds();
	return 0;
}

/* A batch of two spans from the ring (references: ours). */
static struct batch *make_batch(void)
{
	static int64_t seq;
	for (int i = 0; i < 2; i++) {
		struct tr_span s;
		memset(&s, 0, sizeof(s));
		memset(s.trace_id, 0xab, 16);
		memset(s.span_id, 0xcd, 8);
		s.name = "GET /fuzz";
		s.kind = 2;
		s.start_ns = 1700000000000000000ull;
		s.end_ns = s.start_ns + 1000;
		s.seq = seq++;
		FZ_CHECK(tr_write_span(&ring, 0, scope, &s) == 0);
	}
	caught = NULL;
	agent_drain_all(&ag);
	agent_flush(&ag);
	FZ_CHECK(caught && caught->spans == 2);
	return caught;
}

/* Read what the exporter wrote (the request); false when it closed. */
static void drain_peer(int fd)
{
	char buf[65536];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = {data, size};
	uint8_t split = fz_u8(&in), end = fz_u8(&in);
	size_t rlen;
	const uint8_t *resp = fz_bytes(&in, fz_left(&in), &rlen);

	char err[256];
	struct otlp_conf c;
	FZ_CHECK(otlp_conf_resolve(&c, &cfg, OTLP_PROTO_HTTP_PROTOBUF, no_env, err, sizeof(err)) ==
		 0);
	c.timeout_ns = 3600ull * 1000000000ull; /* only the input times out */
	if (end & 4)
		c.retry_max_elapsed_ns = 0;
	c.gzip = end & 8;
	struct exporter *e;
	FZ_CHECK(otlp_http_create(&ag.xhost, &c, &e) == 0);
	struct otlp_http *h = container_of(e, struct otlp_http, ob.e);

	struct batch *b = make_batch();
	uint64_t spans = b->spans;
	/* Held, not sent: a connection attempt is what this target replaces. */
	h->st = H_CONNECTING;
	FZ_CHECK(h_submit(e, b) == 0);
	batch_unref(b); /* the exporter holds its own reference */
	h->n_items = otlp_base_take(&h->ob, agent_now_ns(), h->items, H_MAX_BATCHES);
	FZ_CHECK(h->n_items == 1);

	int sv[2];
	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	h->fd = sv[0];
	h->w.fd = sv[0];
	h->w.fn = h_on_io;
	h->wev = EPOLLOUT;
	FZ_CHECK(loop_add(&ag.loop, &h->w, h->wev) == 0);
	h_on_connected(h); /* builds and writes the request */
	for (int i = 0; i < 64 && h->st == H_BUSY && !h->written; i++) {
		drain_peer(sv[1]);
		h_on_io(&h->w, EPOLLOUT);
	}
	drain_peer(sv[1]);

	/* The response, in pieces. */
	size_t piece = split ? 1 + split % 97 : (rlen ? rlen : 1);
	for (size_t off = 0; off < rlen && h->st == H_BUSY && h->fd == sv[0];) {
		size_t n = rlen - off < piece ? rlen - off : piece;
		ssize_t w = write(sv[1], resp + off, n);
		if (w <= 0)
			break;
		off += (size_t)w;
		h_on_io(&h->w, EPOLLIN);
	}
	if ((end & 1) && h->st == H_BUSY && h->fd == sv[0]) {
		shutdown(sv[1], SHUT_WR);
		h_on_io(&h->w, EPOLLIN | EPOLLRDHUP);
	}
	if ((end & 2) && h->st == H_BUSY)
		h_on_timeout(&h->tmo_t);
	close(sv[1]);
	/* Invariant: busy only on an open connection with a request on it. */
	if (h->st == H_BUSY)
		FZ_CHECK(h->fd >= 0 && h->n_items == 1);
	if (h->fd < 0)
		FZ_CHECK(h->st != H_BUSY && h->st != H_IDLE);

	/* Exactly once: delivered, let go (counted), or still held (for a
	 * retry; let go, counted, when the exporter is destroyed). */
	int delivered = e->st.batches == 1, let_go = e->st.let_go_batches == 1;
	int held = h->ob.n_held == 1;
	FZ_CHECK(e->st.batches <= 1 && e->st.let_go_batches <= 1 && h->ob.n_held <= 1);
	FZ_CHECK(delivered + let_go + held == 1);
	FZ_CHECK(!delivered || e->st.spans == spans);
	FZ_CHECK(!let_go || e->st.let_go_spans == spans);
	e->ops->destroy(e);
	agent_settle(&ag); /* what the loop does after an exporter's callback */
	FZ_CHECK(sr_load_acquire_64(&sr_cons(&ring.m, 0)->tail) == ring.head[0]);
	FZ_CHECK(ag.inflight_batches == 0);
	FZ_CHECK_FDS(base_fds);
	return 0;
}
