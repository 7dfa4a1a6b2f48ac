/* SPDX-License-Identifier: MIT */
/*
 * OTLP/HTTP exporter: POST <path> with an ExportTraceServiceRequest body
 * (application/x-protobuf) over one HTTP/1.1 keep-alive connection, on
 * the agent's event loop with a non-blocking socket.
 *
 * The request head is written by us into agent memory; the body is the
 * batches' iovecs (framing in agent memory, span bytes in ring memory)
 * handed to sendmsg(2) as they are. A partial write advances a cursor in
 * our array of iovecs (pointers, never bytes). http/json and gzip are the
 * copying paths (opt-in): the body is then one buffer of ours.
 *
 * Responses are parsed by libhttp-parser. One request is on the wire at a
 * time; batches that wait meanwhile go together in the next request.
 * MSG_ZEROCOPY (otlp.zerocopy_min) keeps the request's batches referenced
 * until the kernel reports that it no longer reads their pages.
 */
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/errqueue.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "otlp_base.h"
#include "otlp_json.h"
#include "otlp_retry.h"
#include "otlp_wire.h"
#include "sbuf.h"
#include "tls.h"
#include "version.h"

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif

#define H_MAX_BATCHES 256      /* batches in one request */
#define H_IOV_MAX 1024         /* iovecs per sendmsg (UIO_MAXIOV) */
#define H_MAX_RESP_BODY 65536  /* response bytes kept (the rest is counted, not kept) */

enum h_state {
	H_DOWN = 0,
	H_RESOLVING,
	H_CONNECTING,
	H_IDLE,
	H_BUSY,
};

/* A request whose bytes the kernel may still read (MSG_ZEROCOPY): its
 * batches stay referenced until the completion of its last send. */
struct h_zc_hold {
	struct h_zc_hold *next;
	uint32_t last_id;
	size_t n;
	struct batch *b[];
};

/* The response headers the exporter reads. */
enum h_header {
	H_HDR_OTHER = 0,
	H_HDR_RETRY_AFTER,
	H_HDR_CONTENT_TYPE,
};

struct otlp_http {
	struct otlp_base ob;
	enum h_state st;
	int fd;
	struct loop_watch w;
	uint32_t wev;
	bool reused;          /* the connection has carried a request before */
	struct loop_timer tmo_t;
	/* The answer is read lazily (h_write): at the next kick or by
	 * collect_t, not by a wake-up of its own. */
	bool lazy;
	bool collecting;      /* h_collect is reading it */
	struct loop_timer collect_t;
	/* the request */
	struct oq_item *items[H_MAX_BATCHES];
	size_t n_items;
	struct sbuf head;
	/* The head but the Content-Length value, made once (h_head_tpl):
	 * head_cl is where the value goes, head_ctype what it was made for. */
	struct sbuf head_tpl;
	size_t head_cl;
	const char *head_ctype;
	uint8_t *body;        /* copying paths only */
	size_t body_len;
	struct iovec *iov;
	uint8_t *kind;
	size_t niov, cap_iov, iov_idx;
	uint64_t req_span_bytes;
	bool written;
	/* the response */
	http_parser parser;
	http_parser_settings ps;
	bool resp_complete, got_bytes, hdr_value_last;
	enum h_header cur_hdr; /* the header whose value is being read */
	char field[32];
	size_t field_len;
	char retry_after[64];
	size_t ra_len;
	bool has_ra;
	char ctype[64];
	size_t ct_len;
	struct sbuf rbody;
	int status;
	bool keep_alive;
	char what[64];
	/* MSG_ZEROCOPY */
	bool zc;              /* SO_ZEROCOPY on this connection */
	bool zc_off;          /* ... but the kernel reported copies: not used */
	bool zc_req;          /* this request is sent with MSG_ZEROCOPY */
	uint32_t zc_next_id;  /* id of the next zerocopy send */
	uint32_t zc_done;     /* completions seen: ids below this are done */
	struct h_zc_hold *zc_holds;
	/* TLS (https://): tls.h */
	struct tls_ctx *tls_ctx;
	struct tls_conn *tls;  /* of the connection */
	bool hs;               /* handshake under way (state H_CONNECTING) */
	bool tls_answer;       /* cleartext: the server answered with a TLS record */
	const char *tls_logged; /* the mode last logged */
};

static void h_kick(struct otlp_base *ob);
static void h_on_readable(struct otlp_http *h);
static void h_on_io(struct loop_watch *w, uint32_t events);

static void h_watch(struct otlp_http *h, uint32_t ev)
{
	if (h->wev == ev)
		return;
	if (loop_mod(h->ob.e.host->loop, &h->w, ev) == 0)
		h->wev = ev;
}

/* Release the MSG_ZEROCOPY holds whose last send has completed. */
static void h_zc_release(struct otlp_http *h, bool all)
{
	struct h_zc_hold **pp = &h->zc_holds;
	while (*pp) {
		struct h_zc_hold *z = *pp;
		if (all || (int32_t)(h->zc_done - z->last_id) > 0) {
			*pp = z->next;
			for (size_t i = 0; i < z->n; i++)
				h->ob.e.host->release(z->b[i]);
			free(z);
		} else {
			pp = &z->next;
		}
	}
}

static void h_close(struct otlp_http *h)
{
	if (h->fd >= 0) {
		loop_del(h->ob.e.host->loop, &h->w);
		close(h->fd);
	}
	/* A closed socket's pages are no longer read by the kernel once the
	 * close returns for our purposes: the skbs hold page references of
	 * their own, not ours. */
	h_zc_release(h, true);
	tls_conn_free(h->tls);
	h->tls = NULL;
	h->hs = h->tls_answer = false;
	h->fd = -1;
	h->w.fd = -1;
	h->wev = 0;
	h->st = H_DOWN;
	h->reused = false;
	h->zc = h->zc_off = false;
	h->zc_next_id = h->zc_done = 0;
}

static void h_request_reset(struct otlp_http *h)
{
	h->n_items = 0;
	h->niov = h->iov_idx = 0;
	free(h->body);
	h->body = NULL;
	h->body_len = 0;
	h->written = false;
	h->zc_req = false;
}

/* Hand the answer to the batches of the current request. */
static void h_finish(struct otlp_http *h, struct otlp_result *r)
{
	size_t n = h->n_items;
	if (!n)
		return;
	if (h->zc_req && r->v == OTLP_DELIVERED && h->fd >= 0 &&
	    (int32_t)(h->zc_done - h->zc_next_id) < 0) {
		/* The kernel may still read the pages: keep references. */
		struct h_zc_hold *z = malloc(sizeof(*z) + n * sizeof(z->b[0]));
		if (z) {
			z->n = n;
			z->last_id = h->zc_next_id - 1;
			for (size_t i = 0; i < n; i++) {
				z->b[i] = h->items[i]->b;
				h->ob.e.host->hold(z->b[i]);
			}
			z->next = h->zc_holds;
			h->zc_holds = z;
		}
	}
	loop_timer_cancel(h->ob.e.host->loop, &h->tmo_t);
	loop_timer_cancel(h->ob.e.host->loop, &h->collect_t);
	h->lazy = false;
	struct oq_item *items[H_MAX_BATCHES];
	memcpy(items, h->items, n * sizeof(items[0]));
	h_request_reset(h);
	otlp_base_done(&h->ob, items, n, r);
}

/* The connection failed or timed out: the request (if any) is retried. */
static void h_fail(struct otlp_http *h, const char *what, const char *detail, bool connecting)
{
	struct otlp_result r = {.v = OTLP_RETRY, .what = what};
	snprintf(r.detail, sizeof(r.detail), "%s", detail ? detail : "");
	/* A reused keep-alive connection that the server had closed: send
	 * again at once on a new one (not reused, so this happens once), as
	 * HTTP clients do. */
	if (!connecting && h->reused && !h->got_bytes && h->st == H_BUSY) {
		r.v = OTLP_RETRY_NOW;
	}
	h_close(h);
	if (connecting) {
		h->ob.c.connect_failures++;
		otlp_base_conn_failed(&h->ob);
	} else if (r.v == OTLP_RETRY) {
		h->ob.c.transport_errors++;
	}
	h_finish(h, &r);
	otlp_base_ready(&h->ob, agent_now_ns());
}

static void h_on_timeout(struct loop_timer *t)
{
	struct otlp_http *h = container_of(t, struct otlp_http, tmo_t);
	char d[96];
	bool connecting = h->st == H_RESOLVING || h->st == H_CONNECTING;
	h->ob.c.timeouts++;
	snprintf(d, sizeof(d), "no answer within %.3fs (otlp.timeout)",
		 (double)h->ob.conf.timeout_ns / 1e9);
	if (h->st == H_RESOLVING)
		otlp_base_cancel_resolve(&h->ob); /* the helper thread finishes alone */
	h_fail(h, connecting ? "connect timed out" : "request timed out", d, connecting);
	h_kick(&h->ob);
}

/* ---- request -------------------------------------------------------------- */

static int h_iov_reserve(struct otlp_http *h, size_t n)
{
	if (n <= h->cap_iov)
		return 0;
	size_t cap = h->cap_iov ? h->cap_iov : 64;
	while (cap < n)
		cap *= 2;
	struct iovec *iov = realloc(h->iov, cap * sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	h->iov = iov;
	uint8_t *k = realloc(h->kind, cap);
	if (!k)
		return -ENOMEM;
	h->kind = k;
	h->cap_iov = cap;
	return 0;
}

static void h_push(struct otlp_http *h, const void *p, size_t n, uint8_t kind)
{
	h->iov[h->niov].iov_base = (void *)p;
	h->iov[h->niov].iov_len = n;
	h->kind[h->niov++] = kind;
}

/* The message iovecs of the taken batches after the head's slot: one
 * producer's group of a batch being isolated, else every batch whole.
 * *msg: their bytes. 0 or -errno. */
static int h_gather(struct otlp_http *h, uint64_t *msg)
{
	size_t nio = 0;
	*msg = 0;
	h->req_span_bytes = 0;
	for (size_t i = 0; i < h->n_items; i++) {
		const struct batch *b = h->items[i]->b;
		nio += b->niov - 1;
		*msg += b->msg_len;
		h->req_span_bytes += b->span_bytes;
	}
	if (h_iov_reserve(h, nio + 2))
		return -ENOMEM;
	h->niov = 1;
	if (h->n_items == 1 && h->items[0]->isolate) {
		/* One producer's group of the batch (otlp_base.h: isolation). */
		const struct batch *b = h->items[0]->b;
		size_t first, n;
		uint64_t spans;
		const struct agent_producer *p;
		if (otlp_batch_group(b, h->items[0]->iso_next, &first, &n, msg, &spans, &p))
			return -EINVAL;
		memcpy(h->iov + 1, b->iov + 1 + first, n * sizeof(*h->iov));
		memcpy(h->kind + 1, b->iov_kind + 1 + first, n);
		h->niov += n;
		h->req_span_bytes = 0;
		for (size_t i = 1; i < h->niov; i++)
			if (h->kind[i] == BATCH_IOV_SPANS)
				h->req_span_bytes += h->iov[i].iov_len;
		return 0;
	}
	for (size_t i = 0; i < h->n_items; i++) {
		const struct batch *b = h->items[i]->b;
		size_t n;
		const struct iovec *iov = batch_msg_iov(b, &n);
		memcpy(h->iov + h->niov, iov, n * sizeof(*iov));
		memcpy(h->kind + h->niov, b->iov_kind + 1, n);
		h->niov += n;
	}
	return 0;
}

/* http/json or gzip: the body becomes one rewritten copy of the msg
 * bytes of message iovecs (*ctype and *body_len follow). 0 or -errno. */
static int h_copy_body(struct otlp_http *h, uint64_t msg, const char **ctype, uint64_t *body_len)
{
	const struct otlp_conf *c = &h->ob.conf;
	h->ob.c.copies++;
	uint8_t *flat = otlp_gather(h->iov + 1, h->niov - 1, msg);
	if (!flat)
		return -ENOMEM;
	uint8_t *body = flat;
	size_t blen = msg;
	if (c->protocol == OTLP_PROTO_HTTP_JSON) {
		struct sbuf js = {0};
		int rc = otlp_json_request(&js, flat, msg);
		free(flat);
		if (rc || js.oom) {
			sbuf_free(&js);
			return rc ? rc : -ENOMEM;
		}
		body = (uint8_t *)js.p;
		blen = js.len;
		*ctype = "application/json";
	}
	if (c->gzip) {
		struct iovec one = {.iov_base = body, .iov_len = blen};
		uint8_t *z;
		size_t zl;
		int rc = otlp_gzip(&one, 1, &z, &zl);
		free(body);
		if (rc)
			return rc;
		body = z;
		blen = zl;
	}
	h->body = body;
	h->body_len = blen;
	h->niov = 1;
	h_push(h, body, blen, BATCH_IOV_FRAME);
	*body_len = blen;
	return 0;
}

/* v in decimal at out (room for 20 digits); returns the length. */
static size_t h_dec(char *out, uint64_t v)
{
	char t[20];
	size_t n = 0;
	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = t[n - 1 - i];
	return n;
}

/* The request head is the same for every request of the instance but for
 * Content-Length's value: formatted once, not per request. */
static int h_head_tpl(struct otlp_http *h, const char *ctype)
{
	const struct otlp_conf *c = &h->ob.conf;
	sbuf_reset(&h->head_tpl);
	sbuf_printf(&h->head_tpl,
		    "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: spanring-agent/" AGENT_VERSION
		    "\r\nContent-Type: %s\r\nContent-Length: ",
		    c->u.path, c->u.authority, ctype);
	h->head_cl = h->head_tpl.len;
	sbuf_printf(&h->head_tpl, "\r\n%s", c->gzip ? "Content-Encoding: gzip\r\n" : "");
	for (size_t i = 0; i < c->n_headers; i++)
		sbuf_printf(&h->head_tpl, "%s: %s\r\n", c->headers[i].name, c->headers[i].value);
	sbuf_puts(&h->head_tpl, "\r\n");
	if (h->head_tpl.oom) {
		h->head_ctype = NULL;
		return -ENOMEM;
	}
	h->head_ctype = ctype;
	return 0;
}

/* Build head and body iovecs of the taken batches. 0 or -errno. */
static int h_build(struct otlp_http *h)
{
	const struct otlp_conf *c = &h->ob.conf;
	uint64_t msg;
	/* The message iovecs first (the copying paths read them). */
	int rc = h_gather(h, &msg);
	if (rc)
		return rc;
	const char *ctype = "application/x-protobuf";
	uint64_t body_len = msg;
	if ((c->protocol == OTLP_PROTO_HTTP_JSON || c->gzip) &&
	    (rc = h_copy_body(h, msg, &ctype, &body_len)))
		return rc;
	if (h->head_ctype != ctype && (rc = h_head_tpl(h, ctype)))
		return rc;
	char num[20];
	sbuf_reset(&h->head);
	sbuf_put(&h->head, h->head_tpl.p, h->head_cl);
	sbuf_put(&h->head, num, h_dec(num, body_len));
	sbuf_put(&h->head, h->head_tpl.p + h->head_cl, h->head_tpl.len - h->head_cl);
	if (h->head.oom)
		return -ENOMEM;
	h->iov[0].iov_base = h->head.p;
	h->iov[0].iov_len = h->head.len;
	h->kind[0] = BATCH_IOV_FRAME;
	h->iov_idx = 0;
	h->zc_req = h->zc && !h->zc_off && !h->body && body_len >= c->zerocopy_min;
	return 0;
}

/*
 * The request is written: wait for its answer. While spans flow, the core
 * hands this exporter its next batch about every latency_bound (7/8 of
 * it), and a local backend answers within a fraction of a millisecond, so
 * the answer is read then (h_kick) instead of by a wake-up of its own:
 * one wake-up per request instead of two, which at 10 k spans/s is most
 * of the agent's CPU. The socket stays in epoll with no events (errors
 * and hang-ups are still reported), and collect_t reads the answer by
 * latency_bound after the send when no batch comes (the flow stopped).
 * The batches are released that much later, never delivered later: the
 * backend has them when it answers. Without batching (latency_bound 0),
 * and while the instance holds more than a quarter of its hold budget,
 * the answer is awaited as usual.
 */
static void h_await_answer(struct otlp_http *h)
{
	const struct exp_host *host = h->ob.e.host;
	uint64_t lazy_ns = host->cfg->batch_max_age_us * 1000;
	/* Near its hold budget, the ring space comes back as soon as the
	 * backend answers: a busy moment must not push batches to the spool. */
	bool near_budget = h->ob.hold_budget && h->ob.ring_held_bytes > h->ob.hold_budget / 4;
	if (!lazy_ns || near_budget) {
		h_watch(h, EPOLLIN);
		return;
	}
	h->lazy = true;
	h_watch(h, 0);
	loop_timer_arm(host->loop, &h->collect_t, agent_now_ns() + lazy_ns);
}

/* Read the answer of a request sent lazily; unless it is complete, wait
 * for the rest with a wake-up. */
static void h_collect(struct otlp_http *h)
{
	h->lazy = false;
	loop_timer_cancel(h->ob.e.host->loop, &h->collect_t);
	h->collecting = true;
	h_on_readable(h);
	h->collecting = false;
	if (h->fd >= 0 && h->st == H_BUSY)
		h_watch(h, EPOLLIN);
}

static void h_on_collect(struct loop_timer *t)
{
	struct otlp_http *h = container_of(t, struct otlp_http, collect_t);
	if (!h->lazy || h->st != H_BUSY)
		return;
	h_collect(h);
	if (h->st != H_BUSY)
		h_kick(&h->ob);
}

/* Write what the socket takes. 0 (done or would block) or -errno. */
static int h_write(struct otlp_http *h)
{
	const struct exp_host *host = h->ob.e.host;
	while (h->iov_idx < h->niov) {
		size_t cnt = h->niov - h->iov_idx;
		if (cnt > H_IOV_MAX)
			cnt = H_IOV_MAX;
		if (host->cfg->zc_check) {
			bool whole = h->iov_idx == 0 && cnt == h->niov && !h->body;
			host->zc_check(host->ag, h->iov + h->iov_idx, h->kind + h->iov_idx, cnt,
				     whole ? h->req_span_bytes : UINT64_MAX);
		}
		struct msghdr m = {.msg_iov = h->iov + h->iov_idx, .msg_iovlen = cnt};
		ssize_t n = h->tls ? tls_writev(h->tls, m.msg_iov, (int)cnt)
				   : sendmsg(h->fd, &m, MSG_NOSIGNAL | (h->zc_req ? MSG_ZEROCOPY : 0));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == ENOBUFS) {
				h->ob.c.would_block++;
				h_watch(h, EPOLLIN | EPOLLOUT);
				return 0;
			}
			return -errno;
		}
		if (h->zc_req) {
			h->zc_next_id++;
			h->ob.c.zc_sends++;
		}
		size_t left = (size_t)n;
		while (left && h->iov_idx < h->niov) {
			struct iovec *v = &h->iov[h->iov_idx];
			if (left >= v->iov_len) {
				left -= v->iov_len;
				h->iov_idx++;
			} else {
				v->iov_base = (uint8_t *)v->iov_base + left;
				v->iov_len -= left;
				left = 0;
			}
		}
	}
	h->written = true;
	h_await_answer(h);
	return 0;
}

static void h_start_request(struct otlp_http *h)
{
	int rc = h_build(h);
	if (rc) {
		struct otlp_result r = {.v = OTLP_RETRY, .what = "cannot build the request"};
		snprintf(r.detail, sizeof(r.detail), "%s", strerror(-rc));
		h_finish(h, &r);
		return;
	}
	h->st = H_BUSY;
	h->ob.c.requests++;
	h->resp_complete = h->got_bytes = false;
	h->status = 0;
	h->has_ra = false;
	h->ra_len = h->ct_len = h->field_len = 0;
	h->cur_hdr = H_HDR_OTHER;
	h->hdr_value_last = false;
	sbuf_reset(&h->rbody);
	http_parser_init(&h->parser, HTTP_RESPONSE);
	h->parser.data = h;
	loop_timer_arm(h->ob.e.host->loop, &h->tmo_t, agent_now_ns() + h->ob.conf.timeout_ns);
	rc = h_write(h);
	if (rc) {
		char d[256];
		snprintf(d, sizeof(d), "send: %s", h->tls ? tls_conn_error(h->tls) : strerror(-rc));
		h_fail(h, "connection failed", d, false);
	}
}

/* ---- response ------------------------------------------------------------- */

static int hp_on_header_field(http_parser *p, const char *at, size_t n)
{
	struct otlp_http *h = p->data;
	if (h->hdr_value_last) {
		h->field_len = 0;
		h->hdr_value_last = false;
	}
	for (size_t i = 0; i < n && h->field_len + 1 < sizeof(h->field); i++)
		h->field[h->field_len++] = at[i];
	h->field[h->field_len] = 0;
	return 0;
}

static int hp_on_header_value(http_parser *p, const char *at, size_t n)
{
	struct otlp_http *h = p->data;
	if (!h->hdr_value_last) {
		h->hdr_value_last = true;
		h->cur_hdr = strcasecmp(h->field, "retry-after") == 0	 ? H_HDR_RETRY_AFTER
			     : strcasecmp(h->field, "content-type") == 0 ? H_HDR_CONTENT_TYPE
									 : H_HDR_OTHER;
		if (h->cur_hdr == H_HDR_RETRY_AFTER) {
			h->has_ra = true;
			h->ra_len = 0;
		} else if (h->cur_hdr == H_HDR_CONTENT_TYPE) {
			h->ct_len = 0;
		}
	}
	char *dst = h->cur_hdr == H_HDR_RETRY_AFTER	 ? h->retry_after
		    : h->cur_hdr == H_HDR_CONTENT_TYPE ? h->ctype
						       : NULL;
	size_t *len = h->cur_hdr == H_HDR_RETRY_AFTER ? &h->ra_len : &h->ct_len;
	for (size_t i = 0; dst && i < n && *len + 1 < 64; i++)
		dst[(*len)++] = at[i];
	if (dst)
		dst[*len] = 0;
	return 0;
}

static int hp_on_body(http_parser *p, const char *at, size_t n)
{
	struct otlp_http *h = p->data;
	if (h->rbody.len < H_MAX_RESP_BODY)
		sbuf_put(&h->rbody, at, n < H_MAX_RESP_BODY - h->rbody.len ? n : H_MAX_RESP_BODY - h->rbody.len);
	return 0;
}

static int hp_on_message_complete(http_parser *p)
{
	struct otlp_http *h = p->data;
	if (p->status_code < 200) {
		/* 1xx: an interim answer; the real one follows. */
		h->has_ra = false;
		h->ct_len = 0;
		sbuf_reset(&h->rbody);
		return 0;
	}
	h->status = p->status_code;
	h->keep_alive = http_should_keep_alive(p) != 0;
	h->resp_complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static void h_handle_response(struct otlp_http *h)
{
	struct otlp_result r = {0};
	int s = h->status;
	const uint8_t *body = (const uint8_t *)h->rbody.p;
	size_t blen = h->rbody.len;
	bool protobuf = h->ct_len == 0 || strncasecmp(h->ctype, "application/x-protobuf", 22) == 0;
	/* "HTTP <status>" (http_parser's status is 0..999): no printf per answer. */
	_Static_assert(sizeof(h->what) >= 5 + 20 + 1, "what");
	memcpy(h->what, "HTTP ", 5);
	h->what[5 + h_dec(h->what + 5, (uint64_t)(s < 0 ? 0 : s))] = 0;
	r.what = h->what;
	if (s >= 200 && s < 300) {
		r.v = OTLP_DELIVERED;
		if (protobuf && blen &&
		    otlp_resp_decode(body, blen, &r.partial, &r.rejected, r.detail, sizeof(r.detail)))
			AGENT_LOG_RL_OF(&h->ob.log_rl, AGENT_LOG_WARN,
					"exporter %s: HTTP %d with a body that is not an "
					"ExportTraceServiceResponse (%zu bytes); counted as "
					"delivered",
					h->ob.e.name, s, blen);
	} else {
		r.v = otlp_http_retryable(s) ? OTLP_RETRY : OTLP_DROP;
		/* 400: malformed data, maybe one producer's (otlp_base.h: isolation) */
		r.isolate_ok = s == 400;
		int code;
		bool ri;
		uint64_t rd;
		if (protobuf && blen &&
		    otlp_status_decode(body, blen, &code, r.detail, sizeof(r.detail), &ri, &rd)) {
			r.detail[0] = 0;
		} else if (!protobuf && blen) {
			/* text from a proxy: its first line */
			size_t k = 0;
			for (; k < blen && k + 1 < sizeof(r.detail) && body[k] != '\n'; k++)
				r.detail[k] = (body[k] < ' ' || body[k] == 0x7f) ? '?' : (char)body[k];
			r.detail[k] = 0;
		}
		if (r.v == OTLP_RETRY && h->has_ra) {
			uint64_t d;
			if (otlp_retry_after_parse(h->retry_after, h->ra_len, time(NULL), &d) == 0) {
				r.has_delay = true;
				r.delay_ns = d;
			}
		}
	}
	bool keep = h->keep_alive && h->written;
	if (keep) {
		h->st = H_IDLE;
		h->reused = true;
		/* An idle connection is watched for the server closing it; a
		 * lazily read answer is followed by the next request at once,
		 * or h_kick watches it. */
		if (!h->collecting)
			h_watch(h, EPOLLIN);
	} else {
		h_close(h);
	}
	h_finish(h, &r);
}

static void h_tls_fail(struct otlp_http *h, bool connecting);

static void h_on_readable(struct otlp_http *h)
{
	char buf[16384];
	for (;;) {
		ssize_t n = h->tls ? tls_read(h->tls, buf, sizeof(buf)) : recv(h->fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			if (h->tls && tls_conn_config_error(h->tls)) {
				h_tls_fail(h, false); /* e.g. a client certificate required */
				return;
			}
			char d[256];
			snprintf(d, sizeof(d), "recv: %s",
				 h->tls ? tls_conn_error(h->tls) : strerror(errno));
			if (h->st == H_BUSY)
				h_fail(h, "connection failed", d, false);
			else
				h_close(h);
			return;
		}
		/* Cleartext to a TLS server: its answer is a TLS record (an alert). */
		if (!h->tls && !h->got_bytes && n >= 3 && (buf[0] == 0x15 || buf[0] == 0x16) &&
		    buf[1] == 0x03)
			h->tls_answer = true;
		if (h->st != H_BUSY) {
			/* Bytes or EOF on an idle connection: it is not usable. */
			if (n > 0)
				AGENT_LOG_RL_OF(&h->ob.log_rl, AGENT_LOG_WARN,
						"exporter %s: %zd unexpected bytes on an idle "
						"connection; closing it",
						h->ob.e.name, n);
			h_close(h);
			return;
		}
		if (n > 0)
			h->got_bytes = true;
		size_t used = http_parser_execute(&h->parser, &h->ps, buf, (size_t)n);
		enum http_errno he = HTTP_PARSER_ERRNO(&h->parser);
		if (h->resp_complete) {
			if (used < (size_t)n)
				h->keep_alive = false; /* more than one answer: do not trust it */
			h_handle_response(h);
			return;
		}
		if (he != HPE_OK) {
			char d[200];
			if (h->tls_answer)
				snprintf(d, sizeof(d), "the server answered with TLS to cleartext HTTP: "
						       "use an https:// endpoint");
			else
				snprintf(d, sizeof(d), "invalid HTTP response (%s)", http_errno_name(he));
			h_fail(h, "bad response", d, false);
			return;
		}
		if (n == 0) {
			char d[256];
			/* a TLS server that got cleartext closes like this (node, OpenSSL) */
			snprintf(d, sizeof(d), "the server closed the connection before answering%s%s%s",
				 h->reused || h->tls || h->got_bytes ? "" : " (",
				 h->reused || h->tls || h->got_bytes ? "" : h->ob.conf.url,
				 h->reused || h->tls || h->got_bytes
					 ? ""
					 : ": a new connection closed at once; if it is a TLS server, "
					   "use https://)");
			h_fail(h, "connection closed", d, false);
			return;
		}
	}
}

/* Connected (and TLS set up): send. */
static void h_on_ready(struct otlp_http *h)
{
	otlp_base_conn_ok(&h->ob);
	h->st = H_IDLE; /* h_start_request makes it busy */
	if (h->ob.conf.zerocopy_min && !h->tls) {
		/* Not on loopback: there the kernel copies anyway (and reports it). */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		bool lo = false;
		if (getpeername(h->fd, (struct sockaddr *)&ss, &sl) == 0) {
			if (ss.ss_family == AF_INET)
				lo = (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
			else if (ss.ss_family == AF_INET6)
				lo = memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr, &in6addr_loopback,
					    16) == 0;
		}
		int one = 1;
		if (!lo && setsockopt(h->fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) == 0)
			h->zc = true;
	}
	h_start_request(h);
}

/*
 * A TLS failure. Certificate verification (either side) and a missing
 * client certificate are configuration errors: the batches of the attempt
 * are let go (counted, not retried: the same certificate fails the same
 * way) and the next connection waits the longest backoff, at least 5 s,
 * so the line is logged at a rate a human can read. Everything else
 * (TLS to a cleartext server, a reset) is retried like an unavailable
 * backend.
 */
static void h_tls_fail(struct otlp_http *h, bool connecting)
{
	char d[256];
	snprintf(d, sizeof(d), "%s: %s", h->ob.conf.url, tls_conn_error(h->tls));
	if (!tls_conn_config_error(h->tls)) {
		h_fail(h, connecting ? "TLS handshake failed" : "connection failed", d, connecting);
		h_kick(&h->ob);
		return;
	}
	struct otlp_result r = {.v = OTLP_DROP, .what = "TLS configuration error"};
	snprintf(r.detail, sizeof(r.detail), "%s", d);
	h_close(h);
	h->ob.c.connect_failures++;
	otlp_base_conn_failed(&h->ob);
	uint64_t pin = h->ob.conf.retry_max_backoff_ns;
	if (pin < 5000000000ull)
		pin = 5000000000ull;
	h->ob.conn_not_before_ns = agent_now_ns() + pin;
	h_finish(h, &r);
	otlp_base_ready(&h->ob, agent_now_ns());
	otlp_base_may_connect(&h->ob, agent_now_ns()); /* arms the wake timer */
}

static void h_tls_step(struct otlp_http *h)
{
	int rc = tls_handshake(h->tls);
	if (rc == TLS_WANT_READ) {
		h_watch(h, EPOLLIN);
		return;
	}
	if (rc == TLS_WANT_WRITE) {
		h_watch(h, EPOLLOUT);
		return;
	}
	if (rc == TLS_FAILED) {
		h_tls_fail(h, true);
		return;
	}
	h->hs = false;
	const char *mode = tls_conn_mode(h->tls);
	if (h->tls_logged != mode) {
		h->tls_logged = mode;
		char desc[96];
		log_info("exporter %s: %s: %s, %s mode%s", h->ob.e.name, h->ob.conf.url,
			 tls_conn_desc(h->tls, desc, sizeof(desc)), mode,
			 tls_mode_note(mode));
	}
	h->ob.e.tls_mode = mode;
	h_on_ready(h);
}

static void h_on_connected(struct otlp_http *h)
{
	if (!h->tls_ctx) {
		h_on_ready(h);
		return;
	}
	h->tls = tls_conn_new(h->tls_ctx, h->fd);
	if (!h->tls) {
		h_fail(h, "cannot connect", "TLS: out of memory", true);
		return;
	}
	h->hs = true;
	h_tls_step(h);
}

static void h_try_connect(struct otlp_http *h)
{
	bool done;
	int fd = otlp_base_connect_next(&h->ob, &done);
	if (fd < 0) {
		char d[96];
		snprintf(d, sizeof(d), "connect to %s: %s", h->ob.conf.u.authority, strerror(-fd));
		h_fail(h, "cannot connect", d, true);
		h_kick(&h->ob);
		return;
	}
	h->fd = fd;
	h->w.fd = fd;
	h->w.fn = h_on_io;
	h->wev = done ? EPOLLIN : EPOLLOUT;
	if (loop_add(h->ob.e.host->loop, &h->w, h->wev)) {
		close(fd);
		h->fd = h->w.fd = -1;
		h_fail(h, "cannot connect", "epoll_ctl failed", true);
		return;
	}
	h->st = H_CONNECTING;
	if (done)
		h_on_connected(h);
}

static void h_on_resolved(struct otlp_base *ob, int err)
{
	struct otlp_http *h = container_of(ob, struct otlp_http, ob);
	if (h->st != H_RESOLVING)
		return;
	if (err) {
		char d[300];
		snprintf(d, sizeof(d), "cannot resolve '%s'", ob->conf.u.host);
		h_fail(h, "DNS failure", d, true);
		return;
	}
	h_try_connect(h);
}

/* Completions of MSG_ZEROCOPY sends, from the socket's error queue. */
static void h_zc_completions(struct otlp_http *h)
{
	for (;;) {
		char ctl[128];
		struct msghdr m = {.msg_control = ctl, .msg_controllen = sizeof(ctl)};
		if (recvmsg(h->fd, &m, MSG_ERRQUEUE) < 0)
			return;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
			if (!((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
			      (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)))
				continue;
			struct sock_extended_err ee;
			memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
			if (ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee.ee_errno != 0)
				continue;
			/* [ee_info, ee_data] completed, in order for TCP */
			h->ob.c.zc_completions += ee.ee_data - ee.ee_info + 1;
			if (ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED) {
				h->ob.c.zc_copied += ee.ee_data - ee.ee_info + 1;
				/* The kernel copied after all (a local peer, a device
				 * without scatter-gather): pinning only costs here, so
				 * this connection sends with plain sendmsg from now on. */
				if (!h->zc_off) {
					h->zc_off = true;
					log_info("exporter %s: the kernel copies MSG_ZEROCOPY sends on "
						 "this path; plain sends on this connection",
						 h->ob.e.name);
				}
			}
			if ((int32_t)(ee.ee_data + 1 - h->zc_done) > 0)
				h->zc_done = ee.ee_data + 1;
		}
	}
}

static void h_on_io(struct loop_watch *w, uint32_t events)
{
	struct otlp_http *h = container_of(w, struct otlp_http, w);
	if (h->zc && (events & EPOLLERR)) {
		h_zc_completions(h);
		h_zc_release(h, false);
	}
	if (h->st == H_CONNECTING && h->hs) {
		h_tls_step(h);
		return;
	}
	if (h->st == H_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err == 0 && !(events & (EPOLLOUT | EPOLLIN)))
			return;
		if (err) {
			loop_del(h->ob.e.host->loop, &h->w);
			close(h->fd);
			h->fd = h->w.fd = -1;
			h->wev = 0;
			if (h->ob.ai_next) { /* the next address */
				h_try_connect(h);
				return;
			}
			char d[96];
			snprintf(d, sizeof(d), "connect to %s: %s", h->ob.conf.u.authority, strerror(err));
			h_fail(h, "cannot connect", d, true);
			h_kick(&h->ob);
			return;
		}
		h_on_connected(h);
		return;
	}
	if (h->fd < 0)
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) {
		if (h->zc && (events & EPOLLERR) && !(events & (EPOLLIN | EPOLLHUP))) {
			/* only completions */
		} else {
			h_on_readable(h);
			if (h->fd < 0 || h->st != H_BUSY) {
				h_kick(&h->ob);
				return;
			}
		}
	}
	if ((events & EPOLLOUT) && h->st == H_BUSY && !h->written) {
		int rc = h_write(h);
		if (rc) {
			char d[256];
			snprintf(d, sizeof(d), "send: %s", h->tls ? tls_conn_error(h->tls) : strerror(-rc));
			h_fail(h, "connection failed", d, false);
			h_kick(&h->ob);
		}
	}
}

/* ---- the exporter ---------------------------------------------------------- */

static void h_kick_step(struct otlp_http *h);

static void h_kick(struct otlp_base *ob)
{
	struct otlp_http *h = container_of(ob, struct otlp_http, ob);
	if (h->st == H_BUSY && h->lazy)
		h_collect(h);
	h_kick_step(h);
	if (h->st == H_IDLE)
		h_watch(h, EPOLLIN);
}

/* Start the next request, or connect for it. */
static void h_kick_step(struct otlp_http *h)
{
	struct otlp_base *ob = &h->ob;
	uint64_t now = agent_now_ns();
	if (h->st == H_IDLE) {
		if (!otlp_base_ready(ob, now))
			return;
		h->n_items = otlp_base_take(ob, now, h->items, H_MAX_BATCHES);
		if (h->n_items)
			h_start_request(h);
		return;
	}
	if (h->st != H_DOWN)
		return;
	if (!otlp_base_ready(ob, now) || !otlp_base_may_connect(ob, now))
		return;
	/* The batches go with this connection attempt: if it fails, they are
	 * charged a failed attempt (and let go once out of retry time). */
	h->n_items = otlp_base_take(ob, now, h->items, H_MAX_BATCHES);
	if (!h->n_items)
		return;
	h->st = H_RESOLVING;
	h->got_bytes = false;
	ob->on_resolved = h_on_resolved;
	loop_timer_arm(ob->e.host->loop, &h->tmo_t, now + ob->conf.timeout_ns);
	otlp_base_resolve(ob);
}

static int h_submit(struct exporter *e, struct batch *b)
{
	struct otlp_http *h = container_of(e, struct otlp_http, ob.e);
	return otlp_base_submit(&h->ob, b);
}

static size_t h_flush(struct exporter *e, uint64_t deadline_ns)
{
	struct otlp_http *h = container_of(e, struct otlp_http, ob.e);
	(void)deadline_ns;
	h_kick(&h->ob);
	size_t zc = 0;
	for (struct h_zc_hold *z = h->zc_holds; z; z = z->next)
		zc++;
	return h->ob.n_held + zc;
}

static void h_destroy(struct exporter *e)
{
	struct otlp_http *h = container_of(e, struct otlp_http, ob.e);
	loop_timer_cancel(e->host->loop, &h->tmo_t);
	loop_timer_cancel(e->host->loop, &h->collect_t);
	h_close(h);
	h_request_reset(h);
	otlp_base_fini(&h->ob);
	tls_ctx_free(h->tls_ctx);
	sbuf_free(&h->head);
	sbuf_free(&h->head_tpl);
	sbuf_free(&h->rbody);
	free(h->iov);
	free(h->kind);
	free(h);
}

static void h_stats_json(struct exporter *e, struct sbuf *out)
{
	struct otlp_http *h = container_of(e, struct otlp_http, ob.e);
	otlp_base_stats_json(&h->ob, out);
	static const char *const names[] = {"down", "resolving", "connecting", "idle", "busy"};
	sbuf_printf(out, ",\"connection\":\"%s\"", names[h->st]);
	if (h->tls_ctx) {
		const struct tls_counters *t = tls_ctx_counters(h->tls_ctx);
		sbuf_printf(out,
			    ",\"tls\":{\"mode\":\"%s\",\"handshakes\":%llu,\"handshake_failures\":%llu,"
			    "\"config_errors\":%llu,\"records\":%llu,\"sealed_bytes\":%llu,"
			    "\"copied_bytes\":%llu,\"ktls_bytes\":%llu}",
			    h->ob.e.tls_mode, (unsigned long long)t->handshakes,
			    (unsigned long long)t->handshake_failures,
			    (unsigned long long)t->config_errors, (unsigned long long)t->records,
			    (unsigned long long)t->sealed_bytes, (unsigned long long)t->copied_bytes, (unsigned long long)t->ktls_bytes);
	}
}

static const struct exporter_ops otlp_http_ops = {
	.kind = "otlp_http",
	.submit = h_submit,
	.flush = h_flush,
	.destroy = h_destroy,
	.stats_json = h_stats_json,
};

int otlp_http_create(const struct exp_host *host, struct otlp_conf *conf, struct exporter **out)
{
	struct otlp_http *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	otlp_base_init(&h->ob, host, &otlp_http_ops,
		       conf->protocol == OTLP_PROTO_HTTP_JSON ? "otlp_http_json" : "otlp_http");
	h->ob.conf = *conf; /* ownership moves here */
	memset(conf, 0, sizeof(*conf));
	h->ob.kick = h_kick;
	h->ob.on_resolved = h_on_resolved;
	h->fd = -1;
	h->w.fd = -1;
	h->tmo_t.fn = h_on_timeout;
	h->collect_t.fn = h_on_collect;
	http_parser_settings_init(&h->ps);
	h->ps.on_header_field = hp_on_header_field;
	h->ps.on_header_value = hp_on_header_value;
	h->ps.on_body = hp_on_body;
	h->ps.on_message_complete = hp_on_message_complete;
	if (h->ob.conf.tls) {
		char err[512];
		int rc = tls_ctx_new(&h->ob.conf, false, h->ob.e.name, &h->tls_ctx, err, sizeof(err));
		if (rc) {
			log_error("%s", err);
			h_destroy(&h->ob.e);
			return rc;
		}
		h->ob.e.tls_mode = "userspace"; /* until a handshake says otherwise */
	}
	*out = &h->ob.e;
	return 0;
}
