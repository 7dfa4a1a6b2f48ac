/* SPDX-License-Identifier: MIT */
/*
 * Self-metrics: the agent's, each producer's and each exporter's counters
 * as JSON (control socket: `stats`, `rings`) and as Prometheus text (an
 * HTTP listener on <metrics_address>:<metrics_port>, loopback by default,
 * when configured), with /healthz (alive) and /readyz (serving).
 *
 * Numbers read from shared memory here (producer drop counters) are
 * statistics and only printed; ring fill comes from the agent's own
 * validated head and tail.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "atomics.h"
#include "ctl.h"
#include "drain.h"
#include "log.h"
#include "otlp_base.h"
#include "registry.h"
#include "sbuf.h"

static const char *producer_state_name(const struct agent_producer *p)
{
	switch (p->state) {
	case PROD_PENDING:
		return "pending";
	case PROD_ACTIVE:
		return p->conn_closed ? "closing" : "active";
	case PROD_QUARANTINED:
		return "quarantined";
	}
	return "?";
}

struct drops {
	uint64_t full, oversize, encode, committed;
};

static struct drops producer_drops(const struct agent_producer *p)
{
	struct drops d = {0};
	for (uint32_t i = 0; p->mapped && i < p->map.l.slot_count; i++) {
		const struct spanring_slot_prod *sp = sr_prod(&p->map, i);
		d.full += sr_load_relaxed_64(&sp->drop_full);
		d.oversize += sr_load_relaxed_64(&sp->drop_oversize);
		d.encode += sr_load_relaxed_64(&sp->drop_encode);
		d.committed += sr_load_relaxed_64(&sp->spans);
	}
	return d;
}

static void producer_json(struct sbuf *o, const struct agent_producer *p)
{
	struct drops d = producer_drops(p);
	sbuf_printf(o, "{\"id\":%llu,\"pid\":%d,\"uid\":%u,\"gid\":%u,\"service\":",
		    (unsigned long long)p->id, (int)p->pid, (unsigned)p->uid, (unsigned)p->gid);
	sbuf_json_str(o, p->service, strlen(p->service));
	sbuf_printf(o, ",\"state\":\"%s\",\"quarantined\":%s,\"reason\":",
		    producer_state_name(p), p->state == PROD_QUARANTINED ? "true" : "false");
	sbuf_json_str(o, p->reason, strlen(p->reason));
	sbuf_printf(o,
		    ",\"reconnect\":%s,\"abi_minor\":%u,\"wake\":\"%s\",\"slots\":%u,\"slot_size\":%u,"
		    "\"ring_bytes\":%llu,\"registered_unix_ns\":%llu,\"spans\":%llu,\"bytes\":%llu,"
		    "\"lost_marks\":%llu,\"doorbells\":%llu,\"inflight_chunks\":%llu,"
		    "\"producer_committed\":%llu,"
		    "\"drops\":{\"full\":%llu,\"oversize\":%llu,\"encode\":%llu,\"total\":%llu},"
		    "\"slot_state\":[",
		    p->reconnect ? "true" : "false", p->abi_minor,
		    !p->wake ? "polled" : p->mb_expedited ? "doorbell-expedited" : "doorbell",
		    p->map.l.slot_count,
		    p->map.l.slot_size, (unsigned long long)p->map.l.total_size,
		    (unsigned long long)p->reg_wall_ns, (unsigned long long)p->spans,
		    (unsigned long long)p->bytes, (unsigned long long)p->lost,
		    (unsigned long long)p->doorbells, (unsigned long long)p->inflight_chunks,
		    (unsigned long long)d.committed, (unsigned long long)d.full,
		    (unsigned long long)d.oversize, (unsigned long long)d.encode,
		    (unsigned long long)(d.full + d.oversize + d.encode));
	for (uint32_t i = 0; p->slots && i < p->map.l.slot_count; i++) {
		const struct drain_slot *s = &p->slots[i];
		uint64_t fill = s->last_head - s->tail;
		sbuf_printf(o,
			    "%s{\"head\":%llu,\"tail\":%llu,\"fill_bytes\":%llu,\"fill_pct\":%.1f,"
			    "\"spans\":%llu}",
			    i ? "," : "", (unsigned long long)s->last_head, (unsigned long long)s->tail,
			    (unsigned long long)fill, 100.0 * (double)fill / p->map.l.slot_size,
			    (unsigned long long)s->spans);
	}
	sbuf_puts(o, "]}");
}

void stats_rings_json(struct agent *ag, struct sbuf *o, int64_t only_uid)
{
	bool first = true;
	sbuf_putc(o, '[');
	for (struct agent_producer *p = ag->producers; p; p = p->next) {
		if (p->state == PROD_PENDING || p->zombie)
			continue;
		if (only_uid >= 0 && (int64_t)p->uid != only_uid)
			continue;
		if (!first)
			sbuf_putc(o, ',');
		first = false;
		producer_json(o, p);
	}
	sbuf_putc(o, ']');
}

void stats_json(struct agent *ag, struct sbuf *o, int64_t only_uid)
{
	const struct agent_stats *s = &ag->st;
	sbuf_printf(o, "{\"agent\":{\"version\":\"%s\",\"pid\":%d,\"uptime_s\":%.3f,\"socket\":",
		    AGENT_VERSION, (int)getpid(), (double)(agent_now_ns() - ag->start_ns) / 1e9);
	sbuf_json_str(o, ag->cfg->socket_path ? ag->cfg->socket_path : "",
		      ag->cfg->socket_path ? strlen(ag->cfg->socket_path) : 0);
	sbuf_printf(o,
		    ",\"stopping\":%s,\"producers\":%u,\"pending\":%u,\"accepted\":%llu,"
		    "\"registered\":%llu,\"rejected\":%llu,\"rejected_by_reason\":{",
		    ag->stopping ? "true" : "false", ag->n_producers, ag->n_pending,
		    (unsigned long long)s->accepted, (unsigned long long)s->registered,
		    (unsigned long long)s->rejected);
	bool first = true;
	for (int r = 1; r < 16; r++) {
		if (!s->rejected_by_reason[r])
			continue;
		sbuf_printf(o, "%s\"%s\":%llu", first ? "" : ",", registry_reason_name(r),
			    (unsigned long long)s->rejected_by_reason[r]);
		first = false;
	}
	sbuf_printf(o,
		    "},\"quarantined\":%llu,\"closed\":%llu,\"polls\":%llu,\"doorbells\":%llu,"
		    "\"drain_passes\":%llu,\"batches\":%llu,\"spans\":%llu,\"bytes\":%llu,"
		    "\"empty_batches\":%llu,\"inflight_batches\":%u,\"paused_inflight\":%llu,"
		    "\"poll_interval_us\":%llu,\"zc_check\":%s,\"zc_iov_checked\":%llu,"
		    "\"zc_violations\":%llu,\"drain_nomem\":%llu",
		    (unsigned long long)s->quarantined, (unsigned long long)s->closed,
		    (unsigned long long)s->polls, (unsigned long long)s->doorbells,
		    (unsigned long long)s->drain_passes, (unsigned long long)s->batches,
		    (unsigned long long)s->spans, (unsigned long long)s->bytes,
		    (unsigned long long)s->empty_batches, ag->inflight_batches,
		    (unsigned long long)s->paused_inflight, (unsigned long long)ag->poll_us,
		    ag->cfg->zc_check ? "true" : "false", (unsigned long long)s->zc_iov_checked,
		    (unsigned long long)s->zc_violations, (unsigned long long)s->drain_nomem);
	/* The wake-up protocol (core.c). */
	sbuf_printf(o,
		    ",\"wake_mode\":\"%s\",\"asleep\":%s,\"sleeps\":%llu,\"wakeups\":%llu,"
		    "\"spurious_wakeups\":%llu,\"membarriers\":%llu,\"membarriers_expedited\":%llu,"
		    "\"latency_bound_us\":%llu},"
		    "\"producers\":",
		    ag->wake_mode == AGENT_WAKE_MEMBARRIER ? "membarrier" : "poll",
		    ag->armed ? "true" : "false", (unsigned long long)s->sleeps,
		    (unsigned long long)s->wakeups, (unsigned long long)s->spurious,
		    (unsigned long long)s->membarriers, (unsigned long long)s->membarriers_expedited,
		    (unsigned long long)ag->cfg->batch_max_age_us);
	stats_rings_json(ag, o, only_uid);
	sbuf_puts(o, ",\"exporters\":[");
	for (size_t i = 0; i < ag->n_exp; i++) {
		struct exporter *e = ag->exp[i];
		const struct exp_stats *x = &e->st;
		sbuf_printf(o,
			    "%s{\"name\":\"%s\",\"kind\":\"%s\",\"batches\":%llu,\"spans\":%llu,"
			    "\"bytes\":%llu,\"failures\":%llu,\"retries\":%llu,"
			    "\"let_go_batches\":%llu,\"let_go_spans\":%llu,\"held\":%llu",
			    i ? "," : "", e->name, e->ops->kind, (unsigned long long)x->batches,
			    (unsigned long long)x->spans, (unsigned long long)x->bytes,
			    (unsigned long long)x->failures, (unsigned long long)x->retries,
			    (unsigned long long)x->let_go_batches, (unsigned long long)x->let_go_spans,
			    (unsigned long long)x->held);
		if (e->ops->stats_json)
			e->ops->stats_json(e, o);
		sbuf_putc(o, '}');
	}
	sbuf_puts(o, "]}");
}

/* ---- Prometheus text ------------------------------------------------------- */

/* A label value: \\, \" and \n escaped as the text format wants; other
 * control characters and invalid UTF-8 (which the format has no escape
 * for) become U+FFFD, so that the text is safe on a terminal too. */
static void prom_label(struct sbuf *o, const char *v)
{
	const unsigned char *u = (const unsigned char *)v;
	size_t n = strlen(v);
	for (size_t i = 0; i < n;) {
		size_t k = agent_text_char(u + i, n - i);
		if (k) {
			if (u[i] == '\\' || u[i] == '"')
				sbuf_putc(o, '\\');
			sbuf_put(o, v + i, k);
			i += k;
		} else {
			sbuf_puts(o, u[i] == '\n' ? "\\n" : "\xef\xbf\xbd");
			i++;
		}
	}
}

static void prom_head(struct sbuf *o, const char *name, const char *type, const char *help)
{
	sbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_plabels(struct sbuf *o, const struct agent_producer *p)
{
	sbuf_printf(o, "id=\"%llu\",pid=\"%d\",service=\"", (unsigned long long)p->id, (int)p->pid);
	prom_label(o, p->service);
	sbuf_putc(o, '"');
}

/* The agent's own gauges and counters. */
static void prom_agent(struct agent *ag, struct sbuf *o)
{
	const struct agent_stats *s = &ag->st;
	struct {
		const char *name, *type, *help;
		uint64_t v;
	} ag_m[] = {
		{"spanring_agent_producers", "gauge", "Registered producers.", ag->n_producers},
		{"spanring_agent_registrations_total", "counter", "Rings registered.", s->registered},
		{"spanring_agent_quarantined_total", "counter", "Producers quarantined.",
		 s->quarantined},
		{"spanring_agent_batches_total", "counter", "Batches handed to exporters.",
		 s->batches},
		{"spanring_agent_spans_total", "counter", "Spans drained and exported.", s->spans},
		{"spanring_agent_bytes_total", "counter", "Request bytes built.", s->bytes},
		{"spanring_agent_doorbells_total", "counter", "Doorbell wake-ups.", s->doorbells},
		{"spanring_agent_polls_total", "counter", "Scans of every ring.", s->polls},
		{"spanring_agent_wake_membarrier", "gauge",
		 "1: the agent sleeps until a producer commits (membarrier); 0: it polls.",
		 ag->wake_mode == AGENT_WAKE_MEMBARRIER},
		{"spanring_agent_sleeps_total", "counter", "Times the agent armed every ring and slept.",
		 s->sleeps},
		{"spanring_agent_wakeups_total", "counter", "Doorbells that woke a sleeping agent.",
		 s->wakeups},
		{"spanring_agent_membarriers_total", "counter",
		 "membarrier() calls on the way to sleep.", s->membarriers},
		{"spanring_agent_membarriers_expedited_total", "counter",
		 "... of which MEMBARRIER_CMD_GLOBAL_EXPEDITED (microseconds, not milliseconds).",
		 s->membarriers_expedited},
		{"spanring_agent_inflight_batches", "gauge", "Batches not yet released.",
		 ag->inflight_batches},
		{"spanring_agent_zero_copy_violations_total", "counter",
		 "Span iovecs found outside ring memory (debug check).", s->zc_violations},
	};
	for (size_t i = 0; i < sizeof(ag_m) / sizeof(ag_m[0]); i++) {
		prom_head(o, ag_m[i].name, ag_m[i].type, ag_m[i].help);
		sbuf_printf(o, "%s %llu\n", ag_m[i].name, (unsigned long long)ag_m[i].v);
	}
}

/* Agent-wide totals that outlive producers: exited producers' drops (kept
 * at their release) plus the live ones', and the rejections by reason. */
static void prom_totals(struct agent *ag, struct sbuf *o)
{
	const struct agent_stats *s = &ag->st;
	struct drops all = {s->gone_drop_full, s->gone_drop_oversize, s->gone_drop_encode, 0};
	for (struct agent_producer *p = ag->producers; p; p = p->next) {
		if (p->state == PROD_PENDING || p->zombie)
			continue;
		struct drops d = producer_drops(p);
		all.full += d.full;
		all.oversize += d.oversize;
		all.encode += d.encode;
	}
	prom_head(o, "spanring_agent_spans_received_total", "counter",
		  "Spans received from every producer since start (exited ones included).");
	sbuf_printf(o, "spanring_agent_spans_received_total %llu\n", (unsigned long long)s->spans);
	prom_head(o, "spanring_agent_producers_served_total", "counter",
		  "Producers registered since start (exited ones included).");
	sbuf_printf(o, "spanring_agent_producers_served_total %llu\n",
		    (unsigned long long)s->registered);
	prom_head(o, "spanring_agent_producer_drops_total", "counter",
		  "Spans dropped by producers since start, by cause (exited ones included).");
	sbuf_printf(o,
		    "spanring_agent_producer_drops_total{cause=\"full\"} %llu\n"
		    "spanring_agent_producer_drops_total{cause=\"oversize\"} %llu\n"
		    "spanring_agent_producer_drops_total{cause=\"encode\"} %llu\n",
		    (unsigned long long)all.full, (unsigned long long)all.oversize,
		    (unsigned long long)all.encode);
	prom_head(o, "spanring_agent_rejections_total", "counter",
		  "Registrations rejected, by reason.");
	for (int r = 1; r < 16; r++)
		if (s->rejected_by_reason[r])
			sbuf_printf(o, "spanring_agent_rejections_total{reason=\"%s\"} %llu\n",
				    registry_reason_name(r),
				    (unsigned long long)s->rejected_by_reason[r]);
}

/* The per-producer metrics, in the order they are printed. */
enum prom_producer_metric {
	PM_SPANS,
	PM_BYTES,
	PM_DROPS,       /* one sample per cause */
	PM_LOST,
	PM_QUARANTINED,
	PM_SLOT_FILL,   /* one sample per slot */
	PM_COUNT,
};

/* The samples of metric m for producer p. */
static void prom_producer_samples(struct sbuf *o, const char *name, enum prom_producer_metric m,
				  const struct agent_producer *p)
{
	if (m == PM_DROPS) {
		struct drops d = producer_drops(p);
		const char *causes[] = {"full", "oversize", "encode"};
		uint64_t vals[] = {d.full, d.oversize, d.encode};
		for (int c = 0; c < 3; c++) {
			sbuf_printf(o, "%s{", name);
			prom_plabels(o, p);
			sbuf_printf(o, ",cause=\"%s\"} %llu\n", causes[c], (unsigned long long)vals[c]);
		}
		return;
	}
	if (m == PM_SLOT_FILL) {
		for (uint32_t i = 0; i < p->map.l.slot_count; i++) {
			const struct drain_slot *sl = &p->slots[i];
			sbuf_printf(o, "%s{", name);
			prom_plabels(o, p);
			sbuf_printf(o, ",slot=\"%u\"} %.4f\n", i,
				    (double)(sl->last_head - sl->tail) / p->map.l.slot_size);
		}
		return;
	}
	uint64_t v = m == PM_SPANS ? p->spans : m == PM_BYTES ? p->bytes : m == PM_LOST ? p->lost
							: p->state == PROD_QUARANTINED;
	sbuf_printf(o, "%s{", name);
	prom_plabels(o, p);
	sbuf_printf(o, "} %llu\n", (unsigned long long)v);
}

static void prom_producers(struct agent *ag, struct sbuf *o)
{
	static const struct {
		const char *name, *type, *help;
	} pm[PM_COUNT] = {
		[PM_SPANS] = {"spanring_producer_spans_total", "counter",
			      "Spans drained from the producer."},
		[PM_BYTES] = {"spanring_producer_bytes_total", "counter",
			      "Span bytes drained from the producer."},
		[PM_DROPS] = {"spanring_producer_drops_total", "counter",
			      "Spans the producer dropped, by cause."},
		[PM_LOST] = {"spanring_producer_lost_marks_total", "counter",
			     "Spans reported lost in the stream."},
		[PM_QUARANTINED] = {"spanring_producer_quarantined", "gauge",
				    "1 when the producer is quarantined."},
		[PM_SLOT_FILL] = {"spanring_producer_slot_fill_ratio", "gauge",
				  "Committed, unreleased bytes per slot."},
	};
	for (int m = 0; m < PM_COUNT; m++) {
		prom_head(o, pm[m].name, pm[m].type, pm[m].help);
		for (struct agent_producer *p = ag->producers; p; p = p->next)
			if (p->state != PROD_PENDING && !p->zombie)
				prom_producer_samples(o, pm[m].name, (enum prom_producer_metric)m, p);
	}
}

static void prom_exporters(struct agent *ag, struct sbuf *o)
{
	struct {
		const char *name, *type, *help;
		size_t off;
	} em[] = {
		{"spanring_exporter_batches_total", "counter", "Batches delivered.",
		 offsetof(struct exp_stats, batches)},
		{"spanring_exporter_spans_total", "counter", "Spans delivered.",
		 offsetof(struct exp_stats, spans)},
		{"spanring_exporter_bytes_total", "counter", "Bytes delivered.",
		 offsetof(struct exp_stats, bytes)},
		{"spanring_exporter_failures_total", "counter", "Failed attempts.",
		 offsetof(struct exp_stats, failures)},
		{"spanring_exporter_retries_total", "counter", "Retried attempts.",
		 offsetof(struct exp_stats, retries)},
		{"spanring_exporter_let_go_spans_total", "counter", "Spans given up after retries.",
		 offsetof(struct exp_stats, let_go_spans)},
		{"spanring_exporter_held_batches", "gauge", "Batches held for retry.",
		 offsetof(struct exp_stats, held)},
	};
	for (size_t m = 0; m < sizeof(em) / sizeof(em[0]); m++) {
		prom_head(o, em[m].name, em[m].type, em[m].help);
		for (size_t i = 0; i < ag->n_exp; i++) {
			uint64_t v = *(const uint64_t *)((const char *)&ag->exp[i]->st + em[m].off);
			sbuf_printf(o, "%s{exporter=\"%s\"} %llu\n", em[m].name, ag->exp[i]->name,
				    (unsigned long long)v);
		}
	}
	exp_otlp_prometheus(ag->exp, ag->n_exp, o); /* per OTLP instance: budget, spool, causes */
	prom_head(o, "spanring_exporter_tls", "gauge",
		  "1 for exporters over TLS; mode ktls (zero copy) or userspace (copies).");
	for (size_t i = 0; i < ag->n_exp; i++)
		if (ag->exp[i]->tls_mode)
			sbuf_printf(o, "spanring_exporter_tls{exporter=\"%s\",mode=\"%s\"} 1\n",
				    ag->exp[i]->name, ag->exp[i]->tls_mode);
}

void stats_prometheus(struct agent *ag, struct sbuf *o)
{
	prom_agent(ag, o);
	prom_totals(ag, o);
	prom_producers(ag, o);
	prom_exporters(ag, o);
}

/* ---- HTTP listener for Prometheus ----------------------------------------
 *
 * Connections are bounded: at most HTTP_MAX_CONNS, at most
 * HTTP_MAX_CONNS_PER_UID of one uid (the uid owning the peer's socket,
 * asked of the kernel with sock_diag: the listener is on 127.0.0.1, so
 * the peer is a local process), the request must arrive whole within
 * HTTP_REQUEST_TIMEOUT of the accept and the answer be taken within
 * HTTP_SEND_TIMEOUT (metrics_housekeeping). A new connection whose uid
 * is at its limit closes that uid's oldest connection still reading its
 * request, so a uid only ever displaces its own; when the kernel does not
 * say whose a socket is (no NETLINK_SOCK_DIAG), all such connections share
 * one "unknown" uid, and a scraper, which sends its request at once, still
 * gets through a flood of half-sent ones. Half-sent requests of one user
 * therefore cannot keep /metrics from answering others.
 */

#define HTTP_MAX_CONNS 64
#define HTTP_MAX_CONNS_PER_UID 8
#define HTTP_REQUEST_TIMEOUT_NS (5ull * 1000000000ull)
#define HTTP_SEND_TIMEOUT_NS (10ull * 1000000000ull)
#define HTTP_UID_UNKNOWN UINT32_MAX

struct http_conn {
	struct agent *ag;
	struct http_conn *next;
	int fd;
	struct loop_watch w;
	uint32_t uid;      /* of the peer's socket, or HTTP_UID_UNKNOWN */
	char in[4096];
	size_t in_len;
	struct sbuf out;
	size_t out_off;
	uint64_t start_ns; /* accepted */
	uint64_t send_ns;  /* answer started (0: still reading the request) */
};

/*
 * The uid that owns the TCP socket at the other end of a loopback
 * connection (peer: its address and port, local: ours), from the kernel
 * (NETLINK_SOCK_DIAG, an exact lookup). HTTP_UID_UNKNOWN when the kernel
 * does not say (the peer closed already).
 */
static uint32_t tcp_peer_uid(const struct sockaddr_in *peer, const struct sockaddr_in *local)
{
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return HTTP_UID_UNKNOWN;
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req;
	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = AF_INET;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	/* The peer's socket: its source is the peer, its destination us. */
	req.r.id.idiag_sport = peer->sin_port;
	req.r.id.idiag_dport = local->sin_port;
	req.r.id.idiag_src[0] = peer->sin_addr.s_addr;
	req.r.id.idiag_dst[0] = local->sin_addr.s_addr;
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	uint32_t uid = HTTP_UID_UNKNOWN;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) ==
	    (ssize_t)sizeof(req)) {
		union {
			struct nlmsghdr h;
			char b[1024];
		} ans;
		struct pollfd pf = {.fd = nl, .events = POLLIN};
		ssize_t n = poll(&pf, 1, 100) == 1 ? recv(nl, &ans, sizeof(ans), MSG_DONTWAIT) : -1;
		for (struct nlmsghdr *h = &ans.h; n > 0 && NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				break;
			const struct inet_diag_msg *m = NLMSG_DATA(h);
			if (m->id.idiag_sport == peer->sin_port && m->id.idiag_dport == local->sin_port)
				uid = m->idiag_uid;
			break;
		}
	}
	close(nl);
	return uid;
}

static void http_free(struct http_conn *c)
{
	struct agent *ag = c->ag;
	for (struct http_conn **pp = &ag->http_conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	loop_del(&ag->loop, &c->w);
	close(c->fd);
	sbuf_free(&c->out);
	free(c);
}

static void http_respond(struct http_conn *c)
{
	struct sbuf body = {0};
	const char *status = "200 OK";
	bool get = strncmp(c->in, "GET ", 4) == 0;
	bool metrics = get && (strncmp(c->in + 4, "/metrics ", 9) == 0 ||
			       strncmp(c->in + 4, "/ ", 2) == 0);
	if (metrics) {
		stats_prometheus(c->ag, &body);
	} else if (get && strncmp(c->in + 4, "/healthz ", 9) == 0) {
		sbuf_puts(&body, "ok\n"); /* alive: the loop answered */
	} else if (get && strncmp(c->in + 4, "/readyz ", 8) == 0) {
		/* listening on the producer socket, every exporter constructed */
		struct agent *ag = c->ag;
		bool ready = ag->ready && !ag->stopping && ag->listen_fd >= 0;
		status = ready ? "200 OK" : "503 Service Unavailable";
		sbuf_printf(&body, "%s\n", ready ? "ready" : ag->stopping ? "stopping" : "not ready");
	} else {
		status = get ? "404 Not Found" : "405 Method Not Allowed";
		sbuf_puts(&body, "spanring-agent: GET /metrics, /healthz or /readyz\n");
	}
	sbuf_printf(&c->out,
		    "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		    status, body.len);
	sbuf_put(&c->out, body.p ? body.p : "", body.len);
	sbuf_free(&body);
	c->send_ns = agent_now_ns();
}

static void http_on_event(struct loop_watch *w, uint32_t events)
{
	struct http_conn *c = container_of(w, struct http_conn, w);
	if (events & (EPOLLERR | EPOLLHUP)) {
		http_free(c);
		return;
	}
	if (!c->out.len && (events & EPOLLIN)) {
		ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len, 0);
		if (r <= 0) {
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			http_free(c);
			return;
		}
		c->in_len += (size_t)r;
		c->in[c->in_len] = 0;
		if (!strstr(c->in, "\r\n\r\n") && !strstr(c->in, "\n\n")) {
			if (c->in_len >= sizeof(c->in) - 1)
				http_free(c);
			return;
		}
		http_respond(c);
		if (c->out.oom) {
			http_free(c);
			return;
		}
		loop_mod(&c->ag->loop, &c->w, EPOLLOUT);
	}
	if (c->out.len && (events & EPOLLOUT)) {
		ssize_t r = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			http_free(c);
			return;
		}
		c->out_off += (size_t)r;
		if (c->out_off == c->out.len)
			http_free(c);
	}
}

static void http_on_accept(struct loop_watch *w, uint32_t events)
{
	struct agent *ag = container_of(w, struct agent, metrics_w);
	(void)events;
	for (int i = 0; i < 16; i++) {
		struct sockaddr_in peer, local;
		socklen_t pl = sizeof(peer), ll = sizeof(local);
		int fd = accept4(ag->metrics_fd, (struct sockaddr *)&peer, &pl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		uint32_t uid = HTTP_UID_UNKNOWN;
		if (pl == sizeof(peer) && peer.sin_family == AF_INET &&
		    getsockname(fd, (struct sockaddr *)&local, &ll) == 0 && ll == sizeof(local))
			uid = tcp_peer_uid(&peer, &local);
		size_t n = 0, same = 0;
		struct http_conn *oldest = NULL; /* of its uid, still reading a request */
		for (struct http_conn *c = ag->http_conns; c; c = c->next) {
			n++;
			if (c->uid != uid)
				continue;
			same++;
			if (!c->send_ns && (!oldest || c->start_ns < oldest->start_ns))
				oldest = c;
		}
		bool full = n >= HTTP_MAX_CONNS || (uid != 0 && same >= HTTP_MAX_CONNS_PER_UID);
		if (full && oldest && (uid == HTTP_UID_UNKNOWN || same >= HTTP_MAX_CONNS_PER_UID)) {
			/* Its uid's oldest half-sent request makes room: a uid
			 * only ever displaces its own (or, when the kernel could
			 * not say whose a socket is, an unknown one: a scraper
			 * sends its request at once, a half-sent one goes). */
			AGENT_LOG_RL(AGENT_LOG_WARN,
				     "metrics: uid %d has %zu connections: closing its oldest "
				     "unfinished request",
				     uid == HTTP_UID_UNKNOWN ? -1 : (int)uid, same);
			http_free(oldest);
			full = false;
		}
		if (full) {
			AGENT_LOG_RL(AGENT_LOG_WARN,
				     "metrics: refusing a connection of uid %d: %zu open, %zu of its uid",
				     uid == HTTP_UID_UNKNOWN ? -1 : (int)uid, n, same);
			close(fd);
			continue;
		}
		struct http_conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->ag = ag;
		c->fd = fd;
		c->uid = uid;
		c->w.fd = fd;
		c->w.fn = http_on_event;
		c->start_ns = agent_now_ns();
		if (loop_add(&ag->loop, &c->w, EPOLLIN)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = ag->http_conns;
		ag->http_conns = c;
		/* its timeouts: housekeeping runs while connections are open */
		loop_timer_arm_by(&ag->loop, &ag->house_t, agent_now_ns() + 1000000000ull);
	}
}

void metrics_housekeeping(struct agent *ag)
{
	uint64_t now = agent_now_ns();
	struct http_conn *next;
	for (struct http_conn *c = ag->http_conns; c; c = next) {
		next = c->next;
		bool late = c->send_ns ? now - c->send_ns > HTTP_SEND_TIMEOUT_NS
				       : now - c->start_ns > HTTP_REQUEST_TIMEOUT_NS;
		if (late) {
			AGENT_LOG_RL(AGENT_LOG_INFO,
				     "metrics: closing a connection of uid %d: %s in time",
				     c->uid == HTTP_UID_UNKNOWN ? -1 : (int)c->uid,
				     c->send_ns ? "the answer was not read" : "no whole request");
			http_free(c);
		}
	}
}

int metrics_listen(struct agent *ag)
{
	/* metrics_address: a numeric IPv4 or IPv6 address (loopback by default) */
	const char *addr = ag->cfg->metrics_address ? ag->cfg->metrics_address : "127.0.0.1";
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)ag->cfg->metrics_port);
		sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)ag->cfg->metrics_port);
		sl = sizeof(*s6);
	} else {
		snprintf(ag->err, sizeof(ag->err),
			 "metrics_address '%s' is not a numeric IPv4 or IPv6 address", addr);
		return -EINVAL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(ag->err, sizeof(ag->err), "metrics listener %s, port %u: socket: %s", addr,
			 ag->cfg->metrics_port, strerror(e));
		return -e;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
		int err = -errno;
		snprintf(ag->err, sizeof(ag->err), "metrics: cannot listen on %s%s%s:%u: %s",
			 ss.ss_family == AF_INET6 ? "[" : "", addr, ss.ss_family == AF_INET6 ? "]" : "",
			 ag->cfg->metrics_port, strerror(-err));
		close(fd);
		return err;
	}
	ag->metrics_fd = fd;
	ag->metrics_w.fd = fd;
	ag->metrics_w.fn = http_on_accept;
	int err = loop_add(&ag->loop, &ag->metrics_w, EPOLLIN);
	if (err) {
		close(fd);
		ag->metrics_fd = -1;
		return err;
	}
	log_info("metrics: Prometheus text on http://%s%s%s:%u/metrics (and /healthz, /readyz)",
		 ss.ss_family == AF_INET6 ? "[" : "", addr, ss.ss_family == AF_INET6 ? "]" : "",
		 ag->cfg->metrics_port);
	return 0;
}

void metrics_close(struct agent *ag)
{
	while (ag->http_conns)
		http_free(ag->http_conns);
	if (ag->metrics_fd >= 0) {
		loop_del(&ag->loop, &ag->metrics_w);
		close(ag->metrics_fd);
		ag->metrics_fd = -1;
	}
}
