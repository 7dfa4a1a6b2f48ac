/* SPDX-License-Identifier: MIT */
/*
 * OTLP/gRPC exporter: TraceService/Export over HTTP/2 cleartext (prior
 * knowledge) with nghttp2, one connection, several concurrent streams (at
 * most otlp.max_streams and the server's SETTINGS_MAX_CONCURRENT_STREAMS),
 * a deadline per stream.
 *
 * Each stream's request is the 5-byte gRPC prefix (ours) followed by the
 * batches' iovecs. DATA frames use nghttp2's no-copy path: the read
 * callback only sizes the frame (NGHTTP2_DATA_FLAG_NO_COPY), and the
 * send_data callback writes the 9-byte frame header and the iovecs of that
 * part of the message with one writev(2), straight from ring memory. When
 * the socket takes only part of a frame, the rest is kept as a cursor over
 * the same iovecs (no copy) and nghttp2 is paused until it has gone out.
 * Frames nghttp2 serializes itself (HEADERS, SETTINGS, WINDOW_UPDATE...)
 * go through the send callback from nghttp2's buffer.
 *
 * The answer is the trailers: grpc-status, grpc-message and
 * grpc-status-details-bin (google.rpc.Status with RetryInfo).
 */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base64.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "otlp_base.h"
#include "otlp_retry.h"
#include "otlp_wire.h"
#include "sbuf.h"
#include "tls.h"
#include "version.h"

#define G_MAX_BATCHES 256
#define G_IOV_MAX 1024
#define G_MAX_RESP 65536

enum g_state {
	G_DOWN = 0,
	G_RESOLVING,
	G_CONNECTING,
	G_UP,
};

struct otlp_grpc;

struct g_stream {
	struct otlp_grpc *g;
	struct g_stream *next;
	int32_t id;
	struct oq_item *items[G_MAX_BATCHES];
	size_t n_items;
	struct iovec *iov;
	uint8_t *kind;
	size_t niov;
	uint8_t prefix[5];
	uint8_t *body;            /* gzip: the compressed message (a copy) */
	uint64_t total;           /* prefix + message */
	uint64_t reserved;        /* bytes handed to nghttp2 as frames */
	size_t sidx, soff;        /* send cursor: iov index and offset */
	uint64_t span_bytes;
	/* grpc-timeout's value: nghttp2 encodes the headers when it sends them,
	 * not when the request is submitted (NGHTTP2_NV_FLAG_NO_COPY_VALUE),
	 * so every value must live as long as the stream. */
	char timeout[24];
	struct loop_timer tmo_t;
	bool timed_out;
	bool done;                /* the answer has been applied */
	bool pend;                /* a partial DATA frame of ours is on the cursor */
	bool closed;              /* nghttp2 closed it; free once !pend */
	int http_status;
	int grpc_status;          /* -1: none */
	char grpc_msg[256];
	bool has_retry_info;
	uint64_t retry_delay_ns;
	uint8_t *resp;
	size_t resp_len;
};

struct otlp_grpc {
	struct otlp_base ob;
	enum g_state st;
	int fd;
	struct loop_watch w;
	uint32_t wev;
	nghttp2_session *ses;
	bool tearing_down;
	struct loop_timer conn_tmo_t;
	struct oq_item *first[G_MAX_BATCHES]; /* taken for the connection attempt */
	size_t n_first;
	struct g_stream *streams;
	size_t n_streams;
	/* the rest of a DATA frame the socket did not take */
	struct g_stream *pend_s;
	uint8_t pend_hd[9];
	size_t pend_hd_off;
	uint64_t pend_left;
	char what[96];
	/* TLS (https://, or host:port without OTEL_EXPORTER_OTLP_INSECURE=true) */
	struct tls_ctx *tls_ctx;
	struct tls_conn *tls;   /* of the connection */
	bool hs;                /* handshake under way (G_CONNECTING) */
	bool got_bytes;         /* the connection has read something */
	bool tls_cfg_fail;      /* teardown for a TLS configuration error */
	const char *tls_logged; /* the mode last logged */
};

static void g_kick(struct otlp_base *ob);
static void g_on_io(struct loop_watch *w, uint32_t events);
static void g_teardown(struct otlp_grpc *g, const char *what, const char *detail);

static void g_watch(struct otlp_grpc *g, uint32_t ev)
{
	if (g->wev != ev && loop_mod(g->ob.e.host->loop, &g->w, ev) == 0)
		g->wev = ev;
}

static void s_free(struct g_stream *s)
{
	loop_timer_cancel(s->g->ob.e.host->loop, &s->tmo_t);
	free(s->iov);
	free(s->kind);
	free(s->body);
	free(s->resp);
	free(s);
}

static void s_unlink(struct otlp_grpc *g, struct g_stream *s)
{
	for (struct g_stream **pp = &g->streams; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			g->n_streams--;
			return;
		}
	}
}

/* Apply the answer of s to its batches (once). */
static void s_finish(struct otlp_grpc *g, struct g_stream *s, struct otlp_result *r)
{
	if (s->done)
		return;
	s->done = true;
	loop_timer_cancel(g->ob.e.host->loop, &s->tmo_t);
	otlp_base_done(&g->ob, s->items, s->n_items, r);
	s->n_items = 0;
}

/* The result of a stream nghttp2 has closed. */
static void s_result(struct otlp_grpc *g, struct g_stream *s, uint32_t h2err,
		     struct otlp_result *r)
{
	memset(r, 0, sizeof(*r));
	int code;
	if (s->timed_out) {
		code = GRPC_DEADLINE_EXCEEDED;
		snprintf(r->detail, sizeof(r->detail), "no answer within %.3fs (otlp.timeout)",
			 (double)g->ob.conf.timeout_ns / 1e9);
	} else if (s->grpc_status >= 0) {
		code = s->grpc_status;
		snprintf(r->detail, sizeof(r->detail), "%s", s->grpc_msg);
	} else if (h2err != NGHTTP2_NO_ERROR) {
		code = h2err == NGHTTP2_REFUSED_STREAM	  ? GRPC_UNAVAILABLE
		       : h2err == NGHTTP2_CANCEL	  ? GRPC_CANCELLED
		       : h2err == NGHTTP2_ENHANCE_YOUR_CALM ? GRPC_RESOURCE_EXHAUSTED
							    : GRPC_INTERNAL;
		snprintf(r->detail, sizeof(r->detail), "stream reset by the server (%s)",
			 nghttp2_http2_strerror(h2err));
	} else if (s->http_status && s->http_status != 200) {
		code = otlp_grpc_code_from_http(s->http_status);
		snprintf(r->detail, sizeof(r->detail), "HTTP status %d without grpc-status",
			 s->http_status);
	} else {
		code = GRPC_UNKNOWN;
		snprintf(r->detail, sizeof(r->detail), "the answer has no grpc-status");
	}
	snprintf(g->what, sizeof(g->what), "gRPC %s", otlp_grpc_code_name(code));
	r->what = g->what;
	if (code == GRPC_OK) {
		r->v = OTLP_DELIVERED;
		r->detail[0] = 0;
		if (s->resp_len >= 5 && s->resp[0] == 0) {
			uint32_t ml = (uint32_t)s->resp[1] << 24 | (uint32_t)s->resp[2] << 16 |
				      (uint32_t)s->resp[3] << 8 | s->resp[4];
			if (ml <= s->resp_len - 5 &&
			    otlp_resp_decode(s->resp + 5, ml, &r->partial, &r->rejected, r->detail,
					     sizeof(r->detail)))
				AGENT_LOG_RL_OF(&g->ob.log_rl, AGENT_LOG_WARN,
						"exporter %s: OK with an undecodable "
						"ExportTraceServiceResponse; counted as delivered",
						g->ob.e.name);
		}
		return;
	}
	if (otlp_grpc_retryable(code, s->has_retry_info)) {
		r->v = OTLP_RETRY;
		if (s->has_retry_info) {
			r->has_delay = true;
			r->delay_ns = s->retry_delay_ns;
		}
	} else {
		r->v = OTLP_DROP;
		/* malformed data, maybe one producer's: resent per producer */
		r->isolate_ok = code == GRPC_INVALID_ARGUMENT;
	}
}

/* ---- writing ------------------------------------------------------------- */

/*
 * Write the pending rest of a DATA frame: header bytes, then pend_left
 * bytes from the stream's cursor. A g_flush result, or -errno.
 */
enum g_flush { G_FLUSH_BLOCKED = 0, G_FLUSH_DONE = 1 };

static int g_flush_pend(struct otlp_grpc *g)
{
	const struct exp_host *host = g->ob.e.host;
	struct g_stream *s = g->pend_s;
	while (g->pend_hd_off < 9 || g->pend_left) {
		struct iovec v[G_IOV_MAX];
		uint8_t k[G_IOV_MAX];
		int cnt = 0;
		if (g->pend_hd_off < 9) {
			v[cnt].iov_base = g->pend_hd + g->pend_hd_off;
			v[cnt].iov_len = 9 - g->pend_hd_off;
			k[cnt++] = BATCH_IOV_FRAME;
		}
		uint64_t left = g->pend_left;
		size_t idx = s->sidx, off = s->soff;
		while (left && cnt < G_IOV_MAX && idx < s->niov) {
			size_t avail = s->iov[idx].iov_len - off;
			size_t take = avail < left ? avail : (size_t)left;
			v[cnt].iov_base = (uint8_t *)s->iov[idx].iov_base + off;
			v[cnt].iov_len = take;
			k[cnt++] = s->kind[idx];
			left -= take;
			off += take;
			if (off == s->iov[idx].iov_len) {
				idx++;
				off = 0;
			}
		}
		if (host->cfg->zc_check)
			host->zc_check(host->ag, v, k, (size_t)cnt, UINT64_MAX);
		ssize_t n = g->tls ? tls_writev(g->tls, v, cnt) : writev(g->fd, v, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				g->ob.c.would_block++;
				return G_FLUSH_BLOCKED;
			}
			return -errno;
		}
		size_t got = (size_t)n;
		if (g->pend_hd_off < 9) {
			size_t h = 9 - g->pend_hd_off;
			if (got < h) {
				g->pend_hd_off += got;
				continue;
			}
			g->pend_hd_off = 9;
			got -= h;
		}
		g->pend_left -= got;
		while (got) {
			size_t avail = s->iov[s->sidx].iov_len - s->soff;
			if (got >= avail) {
				got -= avail;
				s->sidx++;
				s->soff = 0;
			} else {
				s->soff += got;
				got = 0;
			}
		}
	}
	g->pend_s = NULL;
	s->pend = false;
	if (s->closed) {
		/* nghttp2 closed it meanwhile: its batches were kept until now */
		struct otlp_result r;
		s_result(g, s, NGHTTP2_CANCEL, &r);
		s_finish(g, s, &r);
		s_free(s);
	}
	return G_FLUSH_DONE;
}

static ssize_t g_send_cb(nghttp2_session *ses, const uint8_t *data, size_t len, int flags,
			 void *user)
{
	struct otlp_grpc *g = user;
	(void)ses;
	(void)flags;
	if (g->pend_s)
		return NGHTTP2_ERR_WOULDBLOCK;
	for (;;) {
		struct iovec one = {.iov_base = (void *)data, .iov_len = len};
		ssize_t n = g->tls ? tls_writev(g->tls, &one, 1) : send(g->fd, data, len, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return NGHTTP2_ERR_WOULDBLOCK;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
}

static int g_send_data_cb(nghttp2_session *ses, nghttp2_frame *frame, const uint8_t *framehd,
			  size_t length, nghttp2_data_source *source, void *user)
{
	struct otlp_grpc *g = user;
	struct g_stream *s = source->ptr;
	(void)ses;
	if (g->pend_s)
		return NGHTTP2_ERR_WOULDBLOCK;
	if (frame->data.padlen > 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE; /* we never ask for padding */
	memcpy(g->pend_hd, framehd, 9);
	g->pend_hd_off = 0;
	g->pend_left = length;
	g->pend_s = s;
	s->pend = true;
	int rc = g_flush_pend(g);
	if (rc < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	/* The frame is ours now; when part of it waits, nghttp2 must stop
	 * until we have written it. */
	return rc == G_FLUSH_DONE ? 0 : NGHTTP2_ERR_PAUSE;
}

static ssize_t g_read_cb(nghttp2_session *ses, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *source, void *user)
{
	struct g_stream *s = source->ptr;
	(void)ses;
	(void)id;
	(void)buf;
	(void)user;
	uint64_t left = s->total - s->reserved;
	size_t n = left < length ? (size_t)left : length;
	s->reserved += n;
	*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (s->reserved == s->total)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/*
 * Over user-space TLS a DATA frame is one TLS record: 9 header bytes and
 * 16375 payload bytes fill a 16 KiB record exactly (a 16 KiB payload
 * would leave its last 9 bytes to a record and a write of their own).
 */
static ssize_t g_read_length_cb(nghttp2_session *ses, uint8_t frame_type, int32_t id,
				int32_t session_window, int32_t stream_window,
				uint32_t remote_max_frame_size, void *user)
{
	(void)ses;
	(void)frame_type;
	(void)id;
	(void)user;
	ssize_t n = 16384 - 9;
	if ((ssize_t)remote_max_frame_size < n)
		n = (ssize_t)remote_max_frame_size;
	if (session_window < n)
		n = session_window;
	if (stream_window < n)
		n = stream_window;
	return n > 0 ? n : 1;
}

/* Let nghttp2 write what it has; watch for writability as needed. */
static void g_send(struct otlp_grpc *g)
{
	if (g->st != G_UP)
		return;
	if (g->pend_s) {
		int rc = g_flush_pend(g);
		if (rc < 0) {
			char d[96];
			snprintf(d, sizeof(d), "write: %s", strerror(-rc));
			g_teardown(g, "connection failed", d);
			return;
		}
		if (rc == G_FLUSH_BLOCKED) {
			g_watch(g, EPOLLIN | EPOLLOUT);
			return;
		}
	}
	int rv = nghttp2_session_send(g->ses);
	if (rv) {
		char d[96];
		snprintf(d, sizeof(d), "nghttp2: %s", nghttp2_strerror(rv));
		g_teardown(g, "connection failed", d);
		return;
	}
	if (!nghttp2_session_want_read(g->ses) && !nghttp2_session_want_write(g->ses) &&
	    !g->pend_s) {
		g_teardown(g, "connection closed", "the HTTP/2 session ended (GOAWAY)");
		return;
	}
	g_watch(g, EPOLLIN | ((g->pend_s || nghttp2_session_want_write(g->ses)) ? EPOLLOUT : 0));
}

/* ---- reading --------------------------------------------------------------- */

static int g_on_header_cb(nghttp2_session *ses, const nghttp2_frame *frame, const uint8_t *name,
			  size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
			  void *user)
{
	(void)flags;
	(void)user;
	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	struct g_stream *s = nghttp2_session_get_stream_user_data(ses, frame->hd.stream_id);
	if (!s)
		return 0;
#define IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)
	if (IS(":status")) {
		int st = 0;
		for (size_t i = 0; i < valuelen && i < 3; i++)
			st = st * 10 + (value[i] - '0');
		s->http_status = st;
	} else if (IS("grpc-status")) {
		int c = 0;
		for (size_t i = 0; i < valuelen && i < 4; i++) {
			if (value[i] < '0' || value[i] > '9') {
				c = GRPC_UNKNOWN;
				break;
			}
			c = c * 10 + (value[i] - '0');
		}
		s->grpc_status = c;
	} else if (IS("grpc-message")) {
		otlp_grpc_message_decode((const char *)value, valuelen, s->grpc_msg,
					 sizeof(s->grpc_msg));
	} else if (IS("grpc-status-details-bin") && valuelen < 65536) {
		uint8_t *bin = malloc(valuelen * 3 / 4 + 4);
		size_t bl;
		if (bin && sr_base64_decode((const char *)value, valuelen, bin, &bl) == 0) {
			int code;
			char msg[8];
			bool ri;
			uint64_t rd;
			if (otlp_status_decode(bin, bl, &code, msg, sizeof(msg), &ri, &rd) == 0 && ri) {
				s->has_retry_info = true;
				s->retry_delay_ns = rd;
			}
		}
		free(bin);
	}
#undef IS
	return 0;
}

static int g_on_data_cb(nghttp2_session *ses, uint8_t flags, int32_t id, const uint8_t *data,
			size_t len, void *user)
{
	(void)flags;
	(void)user;
	struct g_stream *s = nghttp2_session_get_stream_user_data(ses, id);
	if (!s || s->resp_len >= G_MAX_RESP)
		return 0;
	size_t take = len < G_MAX_RESP - s->resp_len ? len : G_MAX_RESP - s->resp_len;
	uint8_t *p = realloc(s->resp, s->resp_len + take);
	if (!p)
		return 0;
	memcpy(p + s->resp_len, data, take);
	s->resp = p;
	s->resp_len += take;
	return 0;
}

static int g_on_close_cb(nghttp2_session *ses, int32_t id, uint32_t err, void *user)
{
	struct otlp_grpc *g = user;
	struct g_stream *s = nghttp2_session_get_stream_user_data(ses, id);
	if (!s || g->tearing_down)
		return 0;
	nghttp2_session_set_stream_user_data(ses, id, NULL);
	s_unlink(g, s);
	if (s->pend) {
		/* Part of a frame of it is still to go: keep its batches until
		 * then (g_flush_pend finishes it). */
		s->closed = true;
		return 0;
	}
	struct otlp_result r;
	s_result(g, s, err, &r);
	s_finish(g, s, &r);
	s_free(s);
	return 0;
}

/* ---- connection ------------------------------------------------------------ */

/* Fail every stream (retryable) and close the connection. */
static void g_teardown(struct otlp_grpc *g, const char *what, const char *detail)
{
	const struct exp_host *host = g->ob.e.host;
	bool connecting = g->st == G_RESOLVING || g->st == G_CONNECTING;
	if (g->st == G_RESOLVING)
		otlp_base_cancel_resolve(&g->ob);
	g->tearing_down = true;
	struct otlp_result r = {.v = g->tls_cfg_fail ? OTLP_DROP : OTLP_RETRY, .what = what};
	snprintf(r.detail, sizeof(r.detail), "%s", detail);
	if (g->n_first)
		otlp_base_done(&g->ob, g->first, g->n_first, &r);
	g->n_first = 0;
	/* the connection is gone: nothing more is read from any cursor */
	if (g->pend_s) {
		g->pend_s->pend = false;
		if (g->pend_s->closed) {
			s_finish(g, g->pend_s, &r);
			s_free(g->pend_s);
		}
		g->pend_s = NULL;
	}
	while (g->streams) {
		struct g_stream *s = g->streams;
		g->streams = s->next;
		s_finish(g, s, &r);
		s_free(s);
	}
	g->n_streams = 0;
	if (g->ses)
		nghttp2_session_del(g->ses);
	g->ses = NULL;
	g->tearing_down = false;
	tls_conn_free(g->tls);
	g->tls = NULL;
	g->hs = g->got_bytes = false;
	if (g->fd >= 0) {
		loop_del(host->loop, &g->w);
		close(g->fd);
	}
	g->fd = g->w.fd = -1;
	g->wev = 0;
	g->st = G_DOWN;
	loop_timer_cancel(host->loop, &g->conn_tmo_t);
	if (connecting) {
		g->ob.c.connect_failures++;
		otlp_base_conn_failed(&g->ob);
	} else {
		g->ob.c.transport_errors++;
	}
	if (g->tls_cfg_fail) {
		/* not retried like an unavailable backend: the longest backoff,
		 * at least 5 s, before the next connection (tls.h) */
		g->tls_cfg_fail = false;
		if (!connecting) {
			g->ob.c.connect_failures++;
			otlp_base_conn_failed(&g->ob);
		}
		uint64_t pin = g->ob.conf.retry_max_backoff_ns;
		if (pin < 5000000000ull)
			pin = 5000000000ull;
		g->ob.conn_not_before_ns = agent_now_ns() + pin;
		otlp_base_may_connect(&g->ob, agent_now_ns()); /* arms the wake timer */
	}
}

static void g_on_conn_timeout(struct loop_timer *t)
{
	struct otlp_grpc *g = container_of(t, struct otlp_grpc, conn_tmo_t);
	char d[96];
	g->ob.c.timeouts++;
	snprintf(d, sizeof(d), "not connected within %.3fs (otlp.timeout)",
		 (double)g->ob.conf.timeout_ns / 1e9);
	g_teardown(g, "connect timed out", d);
	g_kick(&g->ob);
}

static void s_on_timeout(struct loop_timer *t)
{
	struct g_stream *s = container_of(t, struct g_stream, tmo_t);
	struct otlp_grpc *g = s->g;
	g->ob.c.timeouts++;
	s->timed_out = true;
	nghttp2_submit_rst_stream(g->ses, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
	g_send(g);
}

/* A stream for items[0..n) (taken), with room for their iovecs and the
 * prefix; *msg is their message bytes. NULL when it cannot be built (the
 * items are answered). */
static struct g_stream *s_new(struct otlp_grpc *g, struct oq_item **items, size_t n,
			      uint64_t *msg)
{
	struct g_stream *s = calloc(1, sizeof(*s));
	size_t nio = 1;
	uint64_t span_bytes = 0;
	*msg = 0;
	for (size_t i = 0; i < n; i++) {
		nio += items[i]->b->niov - 1;
		*msg += items[i]->b->msg_len;
		span_bytes += items[i]->b->span_bytes;
	}
	if (s) {
		s->g = g; /* before anything can fail: s_free needs it */
		s->iov = malloc(nio * sizeof(*s->iov));
		s->kind = malloc(nio);
	}
	if (!s || !s->iov || !s->kind || *msg > UINT32_MAX) {
		if (s)
			s_free(s);
		struct otlp_result r = {.v = *msg > UINT32_MAX ? OTLP_DROP : OTLP_RETRY,
					.what = "cannot build the request"};
		otlp_base_done(&g->ob, items, n, &r);
		return NULL;
	}
	s->grpc_status = -1;
	s->tmo_t.fn = s_on_timeout;
	memcpy(s->items, items, n * sizeof(items[0]));
	s->n_items = n;
	s->span_bytes = span_bytes;
	s->niov = 1;
	return s;
}

/* The request's message iovecs after the prefix: one producer's group of
 * a batch being isolated, else every batch whole. *msg: its bytes. */
static void s_gather(struct g_stream *s, uint64_t *msg)
{
	struct oq_item **items = s->items;
	if (s->n_items == 1 && items[0]->isolate) {
		/* One producer's group of the batch, after INVALID_ARGUMENT for a
		 * request of several (otlp_base.h: isolation), as OTLP/HTTP after
		 * a 400. */
		const struct batch *b = items[0]->b;
		size_t first, k;
		uint64_t spans;
		const struct agent_producer *p;
		if (otlp_batch_group(b, items[0]->iso_next, &first, &k, msg, &spans, &p) == 0) {
			memcpy(s->iov + 1, b->iov + 1 + first, k * sizeof(*s->iov));
			memcpy(s->kind + 1, b->iov_kind + 1 + first, k);
			s->niov += k;
			s->span_bytes = 0;
			for (size_t i = 1; i < s->niov; i++)
				if (s->kind[i] == BATCH_IOV_SPANS)
					s->span_bytes += s->iov[i].iov_len;
			return;
		}
	}
	for (size_t i = 0; i < s->n_items; i++) {
		size_t k;
		const struct iovec *iov = batch_msg_iov(items[i]->b, &k);
		memcpy(s->iov + s->niov, iov, k * sizeof(*iov));
		memcpy(s->kind + s->niov, items[i]->b->iov_kind + 1, k);
		s->niov += k;
	}
}

/* grpc-encoding gzip: the message becomes one compressed copy. */
static int s_compress(struct otlp_grpc *g, struct g_stream *s, uint64_t *msg)
{
	g->ob.c.copies++;
	uint8_t *z;
	size_t zl;
	if (otlp_gzip(s->iov + 1, s->niov - 1, &z, &zl) || zl > UINT32_MAX)
		return -1;
	s->body = z;
	s->niov = 2;
	s->iov[1] = (struct iovec){.iov_base = z, .iov_len = zl};
	s->kind[1] = BATCH_IOV_FRAME;
	*msg = zl;
	return 0;
}

/* Submit s's request (headers, then the body through g_read_cb): its
 * stream id, or a negative nghttp2 error. */
static int32_t s_submit(struct otlp_grpc *g, struct g_stream *s)
{
	const struct otlp_conf *c = &g->ob.conf;
	uint64_t ms = c->timeout_ns / 1000000 ? c->timeout_ns / 1000000 : 1;
	if (ms < 100000000ull)
		snprintf(s->timeout, sizeof(s->timeout), "%llum", (unsigned long long)ms);
	else
		snprintf(s->timeout, sizeof(s->timeout), "%lluS", (unsigned long long)(ms / 1000));
	nghttp2_nv nva[16 + 32];
	size_t nv = 0;
#define NV(n, v)                                                                           \
	nva[nv++] = (nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v),    \
				 NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}
	NV(":method", "POST");
	NV(":scheme", c->tls ? "https" : "http");
	NV(":path", c->u.path);
	NV(":authority", c->u.authority);
	NV("content-type", "application/grpc");
	NV("te", "trailers");
	NV("user-agent", "grpc-c-spanring-agent/" AGENT_VERSION);
	NV("grpc-timeout", s->timeout);
	if (c->gzip)
		NV("grpc-encoding", "gzip");
	for (size_t i = 0; i < c->n_headers && nv < sizeof(nva) / sizeof(nva[0]); i++)
		NV(c->headers[i].name, c->headers[i].value);
#undef NV
	nghttp2_data_provider dp = {.source.ptr = s, .read_callback = g_read_cb};
	return nghttp2_submit_request(g->ses, NULL, nva, nv, &dp, s);
}

/* Open a stream for items[0..n) (taken). */
static void g_open_stream(struct otlp_grpc *g, struct oq_item **items, size_t n)
{
	const struct otlp_conf *c = &g->ob.conf;
	uint64_t msg;
	struct g_stream *s = s_new(g, items, n, &msg);
	if (!s)
		return;
	s_gather(s, &msg);
	if (c->gzip && s_compress(g, s, &msg)) {
		s_free(s);
		struct otlp_result r = {.v = OTLP_RETRY, .what = "cannot compress"};
		otlp_base_done(&g->ob, items, n, &r);
		return;
	}
	otlp_grpc_prefix(s->prefix, c->gzip, (uint32_t)msg);
	s->iov[0] = (struct iovec){.iov_base = s->prefix, .iov_len = 5};
	s->kind[0] = BATCH_IOV_FRAME;
	s->total = 5 + msg;
	const struct exp_host *host = g->ob.e.host;
	if (host->cfg->zc_check && !c->gzip)
		host->zc_check(host->ag, s->iov, s->kind, s->niov, s->span_bytes);
	int32_t id = s_submit(g, s);
	if (id < 0) {
		s_free(s);
		struct otlp_result r = {.v = OTLP_RETRY, .what = "cannot open a stream"};
		snprintf(r.detail, sizeof(r.detail), "%s", nghttp2_strerror(id));
		otlp_base_done(&g->ob, items, n, &r);
		return;
	}
	s->id = id;
	s->next = g->streams;
	g->streams = s;
	g->n_streams++;
	g->ob.c.requests++;
	loop_timer_arm(host->loop, &s->tmo_t, agent_now_ns() + c->timeout_ns);
}

static void g_on_readable(struct otlp_grpc *g)
{
	uint8_t buf[16384];
	for (;;) {
		ssize_t n = g->tls ? tls_read(g->tls, buf, sizeof(buf)) : recv(g->fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			char d[256];
			if (g->tls && tls_conn_config_error(g->tls)) {
				/* e.g. the server requires a client certificate */
				snprintf(d, sizeof(d), "%s: %s", g->ob.conf.url, tls_conn_error(g->tls));
				g->tls_cfg_fail = true;
				g_teardown(g, "TLS configuration error", d);
				return;
			}
			snprintf(d, sizeof(d), "recv: %s", g->tls ? tls_conn_error(g->tls) : strerror(errno));
			g_teardown(g, "connection failed", d);
			return;
		}
		if (!g->tls && !g->got_bytes && n >= 3 && (buf[0] == 0x15 || buf[0] == 0x16) &&
		    buf[1] == 0x03) {
			char d[256];
			snprintf(d, sizeof(d), "%s: the server answered with TLS to cleartext HTTP/2: use "
					       "an https:// endpoint", g->ob.conf.url);
			g_teardown(g, "connection failed", d);
			return;
		}
		if (n > 0)
			g->got_bytes = true;
		if (n == 0) {
			char d[256];
			if (!g->tls && !g->got_bytes)
				snprintf(d, sizeof(d), "%s: the server closed a new connection before "
						       "answering: if it is a TLS server, use https://",
					 g->ob.conf.url);
			else
				snprintf(d, sizeof(d), "the server closed the connection");
			g_teardown(g, "connection closed", d);
			return;
		}
		ssize_t rv = nghttp2_session_mem_recv(g->ses, buf, (size_t)n);
		if (rv < 0) {
			char d[96];
			snprintf(d, sizeof(d), "HTTP/2: %s", nghttp2_strerror((int)rv));
			g_teardown(g, "bad response", d);
			return;
		}
	}
}

/* Connected (and TLS set up): start HTTP/2. */
static void g_on_ready(struct otlp_grpc *g)
{
	otlp_base_conn_ok(&g->ob);
	loop_timer_cancel(g->ob.e.host->loop, &g->conn_tmo_t);
	nghttp2_session_callbacks *cb;
	if (nghttp2_session_callbacks_new(&cb)) {
		g_teardown(g, "cannot start HTTP/2", "out of memory");
		return;
	}
	nghttp2_session_callbacks_set_send_callback(cb, g_send_cb);
	nghttp2_session_callbacks_set_send_data_callback(cb, g_send_data_cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, g_on_header_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, g_on_data_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, g_on_close_cb);
	if (g->tls && strcmp(tls_conn_mode(g->tls), "ktls") != 0)
		nghttp2_session_callbacks_set_data_source_read_length_callback(cb, g_read_length_cb);
	int rv = nghttp2_session_client_new(&g->ses, cb, g);
	nghttp2_session_callbacks_del(cb);
	if (rv) {
		g_teardown(g, "cannot start HTTP/2", nghttp2_strerror(rv));
		return;
	}
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
	};
	nghttp2_submit_settings(g->ses, NGHTTP2_FLAG_NONE, iv, 2);
	g->st = G_UP;
	if (g->n_first) {
		size_t n = g->n_first;
		g->n_first = 0;
		g_open_stream(g, g->first, n);
	}
	g_send(g);
}

static void g_tls_step(struct otlp_grpc *g)
{
	int rc = tls_handshake(g->tls);
	if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
		g_watch(g, rc == TLS_WANT_READ ? EPOLLIN : EPOLLOUT);
		return;
	}
	if (rc == TLS_FAILED) {
		char d[256];
		snprintf(d, sizeof(d), "%s: %s", g->ob.conf.url, tls_conn_error(g->tls));
		g->tls_cfg_fail = tls_conn_config_error(g->tls);
		g_teardown(g, g->tls_cfg_fail ? "TLS configuration error" : "TLS handshake failed", d);
		return;
	}
	g->hs = false;
	const char *mode = tls_conn_mode(g->tls);
	if (g->tls_logged != mode) {
		char desc[96];
		g->tls_logged = mode;
		log_info("exporter %s: %s: %s, ALPN h2, %s mode%s", g->ob.e.name, g->ob.conf.url,
			 tls_conn_desc(g->tls, desc, sizeof(desc)), mode,
			 tls_mode_note(mode));
	}
	g->ob.e.tls_mode = mode;
	g_on_ready(g);
}

static void g_on_connected(struct otlp_grpc *g)
{
	if (!g->tls_ctx) {
		g_on_ready(g);
		return;
	}
	g->tls = tls_conn_new(g->tls_ctx, g->fd);
	if (!g->tls) {
		g_teardown(g, "cannot connect", "TLS: out of memory");
		return;
	}
	g->hs = true;
	g_tls_step(g);
}

static void g_try_connect(struct otlp_grpc *g)
{
	bool done;
	int fd = otlp_base_connect_next(&g->ob, &done);
	if (fd < 0) {
		char d[96];
		snprintf(d, sizeof(d), "connect to %s: %s", g->ob.conf.u.authority, strerror(-fd));
		g_teardown(g, "cannot connect", d);
		return;
	}
	g->fd = g->w.fd = fd;
	g->w.fn = g_on_io;
	g->wev = EPOLLIN | EPOLLOUT;
	if (loop_add(g->ob.e.host->loop, &g->w, g->wev)) {
		close(fd);
		g->fd = g->w.fd = -1;
		g_teardown(g, "cannot connect", "epoll_ctl failed");
		return;
	}
	g->st = G_CONNECTING;
	if (done)
		g_on_connected(g);
}

static void g_on_resolved(struct otlp_base *ob, int err)
{
	struct otlp_grpc *g = container_of(ob, struct otlp_grpc, ob);
	if (g->st != G_RESOLVING)
		return;
	if (err) {
		char d[300];
		snprintf(d, sizeof(d), "cannot resolve '%s'", ob->conf.u.host);
		g_teardown(g, "DNS failure", d);
		g_kick(ob);
		return;
	}
	g_try_connect(g);
	if (g->st == G_DOWN)
		g_kick(ob);
}

static void g_on_io(struct loop_watch *w, uint32_t events)
{
	struct otlp_grpc *g = container_of(w, struct otlp_grpc, w);
	if (g->st == G_CONNECTING && g->hs) {
		g_tls_step(g);
		g_kick(&g->ob);
		return;
	}
	if (g->st == G_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(g->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			loop_del(g->ob.e.host->loop, &g->w);
			close(g->fd);
			g->fd = g->w.fd = -1;
			g->wev = 0;
			if (g->ob.ai_next) {
				g_try_connect(g);
			} else {
				char d[96];
				snprintf(d, sizeof(d), "connect to %s: %s", g->ob.conf.u.authority,
					 strerror(err));
				g_teardown(g, "cannot connect", d);
			}
			g_kick(&g->ob);
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLIN)))
			return;
		g_on_connected(g);
		g_kick(&g->ob);
		return;
	}
	if (g->st != G_UP)
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		g_on_readable(g);
	if (g->st == G_UP)
		g_send(g);
	g_kick(&g->ob);
}

/* ---- the exporter ---------------------------------------------------------- */

static void g_kick(struct otlp_base *ob)
{
	struct otlp_grpc *g = container_of(ob, struct otlp_grpc, ob);
	uint64_t now = agent_now_ns();
	if (g->st == G_UP) {
		uint32_t limit = ob->conf.max_streams;
		uint32_t remote = nghttp2_session_get_remote_settings(
			g->ses, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
		if (remote < limit)
			limit = remote;
		bool opened = false;
		while (g->n_streams < limit && otlp_base_ready(ob, now)) {
			struct oq_item *items[G_MAX_BATCHES];
			size_t n = otlp_base_take(ob, now, items, G_MAX_BATCHES);
			if (!n)
				break;
			g_open_stream(g, items, n);
			opened = true;
			if (g->st != G_UP)
				return;
		}
		if (opened)
			g_send(g);
		return;
	}
	if (g->st != G_DOWN)
		return;
	if (!otlp_base_ready(ob, now) || !otlp_base_may_connect(ob, now))
		return;
	g->n_first = otlp_base_take(ob, now, g->first, G_MAX_BATCHES);
	if (!g->n_first)
		return;
	g->st = G_RESOLVING;
	ob->on_resolved = g_on_resolved;
	loop_timer_arm(ob->e.host->loop, &g->conn_tmo_t, now + ob->conf.timeout_ns);
	otlp_base_resolve(ob);
}

static int g_submit(struct exporter *e, struct batch *b)
{
	struct otlp_grpc *g = container_of(e, struct otlp_grpc, ob.e);
	return otlp_base_submit(&g->ob, b);
}

static size_t g_flush(struct exporter *e, uint64_t deadline_ns)
{
	struct otlp_grpc *g = container_of(e, struct otlp_grpc, ob.e);
	(void)deadline_ns;
	g_kick(&g->ob);
	return g->ob.n_held;
}

static void g_destroy(struct exporter *e)
{
	struct otlp_grpc *g = container_of(e, struct otlp_grpc, ob.e);
	if (g->st != G_DOWN || g->ses)
		g_teardown(g, "exporter shutting down", "");
	loop_timer_cancel(e->host->loop, &g->conn_tmo_t);
	otlp_base_fini(&g->ob);
	tls_ctx_free(g->tls_ctx);
	free(g);
}

static void g_stats_json(struct exporter *e, struct sbuf *out)
{
	struct otlp_grpc *g = container_of(e, struct otlp_grpc, ob.e);
	otlp_base_stats_json(&g->ob, out);
	static const char *const names[] = {"down", "resolving", "connecting", "up"};
	sbuf_printf(out, ",\"connection\":\"%s\",\"streams\":%zu", names[g->st], g->n_streams);
	if (g->tls_ctx) {
		const struct tls_counters *t = tls_ctx_counters(g->tls_ctx);
		sbuf_printf(out,
			    ",\"tls\":{\"mode\":\"%s\",\"handshakes\":%llu,\"handshake_failures\":%llu,"
			    "\"config_errors\":%llu,\"records\":%llu,\"sealed_bytes\":%llu,"
			    "\"copied_bytes\":%llu,\"ktls_bytes\":%llu}",
			    g->ob.e.tls_mode, (unsigned long long)t->handshakes,
			    (unsigned long long)t->handshake_failures,
			    (unsigned long long)t->config_errors, (unsigned long long)t->records,
			    (unsigned long long)t->sealed_bytes, (unsigned long long)t->copied_bytes, (unsigned long long)t->ktls_bytes);
	}
}

static const struct exporter_ops otlp_grpc_ops = {
	.kind = "otlp_grpc",
	.submit = g_submit,
	.flush = g_flush,
	.destroy = g_destroy,
	.stats_json = g_stats_json,
};

int otlp_grpc_create(const struct exp_host *host, struct otlp_conf *conf, struct exporter **out)
{
	struct otlp_grpc *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	otlp_base_init(&g->ob, host, &otlp_grpc_ops, "otlp_grpc");
	g->ob.conf = *conf;
	memset(conf, 0, sizeof(*conf));
	g->ob.kick = g_kick;
	g->ob.on_resolved = g_on_resolved;
	g->fd = g->w.fd = -1;
	g->conn_tmo_t.fn = g_on_conn_timeout;
	if (g->ob.conf.tls) {
		char err[512];
		int rc = tls_ctx_new(&g->ob.conf, true, g->ob.e.name, &g->tls_ctx, err, sizeof(err));
		if (rc) {
			log_error("%s", err);
			g_destroy(&g->ob.e);
			return rc;
		}
		g->ob.e.tls_mode = "userspace"; /* until a handshake says otherwise */
	}
	*out = &g->ob.e;
	return 0;
}
