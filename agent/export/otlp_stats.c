/* SPDX-License-Identifier: MIT */
/* The OTLP exporters' counters as stats JSON and Prometheus text. */
#include "otlp_base.h"

#include <stdbool.h>
#include <string.h>

#include "sbuf.h"
#include "spool.h"

void otlp_base_stats_json(struct otlp_base *ob, struct sbuf *o)
{
	const struct otlp_counters *c = &ob->c;
	sbuf_puts(o, ",\"url\":");
	sbuf_json_str(o, ob->conf.url, strlen(ob->conf.url));
	sbuf_printf(o,
		    ",\"protocol\":\"%s\",\"requests\":%llu,\"responses_ok\":%llu,"
		    "\"responses_retryable\":%llu,\"responses_permanent\":%llu,"
		    "\"partial_responses\":%llu,\"rejected_spans\":%llu,\"transport_errors\":%llu,"
		    "\"timeouts\":%llu,\"connects\":%llu,\"connect_failures\":%llu,"
		    "\"dns_failures\":%llu,\"let_go_queue_full\":%llu,\"let_go_retry_budget\":%llu,"
		    "\"let_go_permanent\":%llu,\"copies\":%llu,\"zc_sends\":%llu,"
		    "\"zc_completions\":%llu,\"zc_copied\":%llu,\"would_block\":%llu,"
		    "\"isolations\":%llu,\"isolated_let_go_groups\":%llu",
		    otlp_protocol_name(ob->conf.protocol), (unsigned long long)c->requests,
		    (unsigned long long)c->responses_ok, (unsigned long long)c->responses_retryable,
		    (unsigned long long)c->responses_permanent, (unsigned long long)c->partial_responses,
		    (unsigned long long)c->rejected_spans, (unsigned long long)c->transport_errors,
		    (unsigned long long)c->timeouts, (unsigned long long)c->connects,
		    (unsigned long long)c->connect_failures, (unsigned long long)c->dns_failures,
		    (unsigned long long)c->queue_full_let_go, (unsigned long long)c->retry_budget_let_go,
		    (unsigned long long)c->permanent_let_go, (unsigned long long)c->copies,
		    (unsigned long long)c->zc_sends, (unsigned long long)c->zc_completions,
		    (unsigned long long)c->zc_copied, (unsigned long long)c->would_block,
		    (unsigned long long)c->isolations, (unsigned long long)c->isolated_let_go_groups);
	/* let go by cause, in spans (they add up to let_go_spans) */
	sbuf_printf(o,
		    ",\"let_go_spans_permanent\":%llu,\"let_go_spans_retry_budget\":%llu,"
		    "\"let_go_spans_queue_full\":%llu,\"let_go_spans_hold_budget\":%llu,"
		    "\"let_go_spans_spool_full\":%llu,\"let_go_spans_other\":%llu",
		    (unsigned long long)c->lg_permanent, (unsigned long long)c->lg_retry_budget,
		    (unsigned long long)c->lg_queue_full, (unsigned long long)c->lg_hold_budget,
		    (unsigned long long)c->lg_spool_full, (unsigned long long)c->lg_other);
	sbuf_printf(o,
		    ",\"held_bytes\":%llu,\"hold_budget\":%llu,\"spilled_batches\":%llu,"
		    "\"spilled_spans\":%llu,\"replayed_batches\":%llu,\"replayed_spans\":%llu",
		    (unsigned long long)ob->ring_held_bytes, (unsigned long long)ob->hold_budget,
		    (unsigned long long)c->spilled_batches, (unsigned long long)c->spilled_spans,
		    (unsigned long long)c->replayed_batches, (unsigned long long)c->replayed_spans);
	const struct spool *sp = ob->spool;
	if (sp)
		sbuf_printf(o,
			    ",\"spool_bytes\":%llu,\"spool_capacity\":%llu,\"spool_spans\":%llu,"
			    "\"spool_records\":%llu,\"spool_oldest_age_ms\":%llu,"
			    "\"spool_written_spans\":%llu,\"spool_written_bytes\":%llu,"
			    "\"spool_loaded_spans\":%llu,\"spool_let_go_spans\":%llu,"
			    "\"spool_let_go_records\":%llu,\"spool_write_errors\":%llu,"
			    "\"spool_write_ns\":%llu,\"spool_read_ns\":%llu",
			    (unsigned long long)sp->bytes, (unsigned long long)sp->cap,
			    (unsigned long long)sp->pending_spans, (unsigned long long)sp->pending_records,
			    (unsigned long long)spool_oldest_age_ms(sp),
			    (unsigned long long)sp->written_spans, (unsigned long long)sp->written_bytes,
			    (unsigned long long)sp->loaded_spans, (unsigned long long)sp->let_go_spans,
			    (unsigned long long)sp->let_go_records, (unsigned long long)sp->write_errors,
			    (unsigned long long)sp->write_ns, (unsigned long long)sp->read_ns);
}

static bool is_otlp(const struct exporter *e)
{
	return strncmp(e->ops->kind, "otlp_", 5) == 0;
}

void exp_otlp_prometheus(struct exporter *const *exps, size_t n, struct sbuf *o)
{
	enum { V_SENT, V_FAILED, V_SPILLED, V_REPLAYED, V_HELD_BYTES, V_BUDGET, V_INFLIGHT,
	       V_SPOOL_BYTES, V_SPOOL_CAP, V_SPOOL_SPANS, V_SPOOL_AGE, N_V };
	static const struct {
		const char *name, *type, *help;
	} m[N_V] = {
		{"spanring_exporter_sent_spans_total", "counter", "Spans the backend took."},
		{"spanring_exporter_send_failed_spans_total", "counter",
		 "Spans let go, by cause (the causes add up to spanring_exporter_let_go_spans_total)."},
		{"spanring_exporter_spilled_spans_total", "counter",
		 "Spans moved from the ring to the instance's spool."},
		{"spanring_exporter_replayed_spans_total", "counter",
		 "Spans delivered from the instance's spool."},
		{"spanring_exporter_held_bytes", "gauge", "Ring bytes the instance holds."},
		{"spanring_exporter_hold_budget_bytes", "gauge",
		 "Ring bytes the instance may hold (0: no limit)."},
		{"spanring_exporter_batches_in_flight", "gauge", "Batches in requests on the wire."},
		{"spanring_exporter_spool_bytes", "gauge", "Bytes in the instance's spool."},
		{"spanring_exporter_spool_capacity_bytes", "gauge", "Capacity of the spool."},
		{"spanring_exporter_spool_spans", "gauge", "Spans waiting in the spool."},
		{"spanring_exporter_spool_oldest_age_seconds", "gauge",
		 "Age of the oldest record waiting in the spool."},
	};
	for (int k = 0; k < N_V; k++) {
		bool head = false;
		for (size_t i = 0; i < n; i++) {
			struct exporter *e = exps[i];
			if (!is_otlp(e))
				continue;
			struct otlp_base *ob = container_of(e, struct otlp_base, e);
			const struct spool *sp = ob->spool;
			if (k >= V_SPOOL_BYTES && !sp)
				continue;
			if (!head) {
				sbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help,
					    m[k].name, m[k].type);
				head = true;
			}
			if (k == V_FAILED) {
				const struct otlp_counters *c = &ob->c;
				const struct {
					const char *cause;
					uint64_t v;
				} cs[] = {{"permanent", c->lg_permanent},     {"retry_budget", c->lg_retry_budget},
					  {"queue_full", c->lg_queue_full},   {"hold_budget", c->lg_hold_budget},
					  {"spool_full", c->lg_spool_full},   {"other", c->lg_other}};
				for (size_t j = 0; j < sizeof(cs) / sizeof(cs[0]); j++)
					sbuf_printf(o, "%s{exporter=\"%s\",cause=\"%s\"} %llu\n", m[k].name,
						    e->name, cs[j].cause, (unsigned long long)cs[j].v);
				continue;
			}
			if (k == V_SPOOL_AGE) {
				sbuf_printf(o, "%s{exporter=\"%s\"} %.3f\n", m[k].name, e->name,
					    (double)spool_oldest_age_ms(sp) / 1e3);
				continue;
			}
			uint64_t v = k == V_SENT	   ? e->st.spans
				     : k == V_SPILLED	   ? ob->c.spilled_spans
				     : k == V_REPLAYED	   ? ob->c.replayed_spans
				     : k == V_HELD_BYTES   ? ob->ring_held_bytes
				     : k == V_BUDGET	   ? ob->hold_budget
				     : k == V_INFLIGHT	   ? ob->n_busy
				     : k == V_SPOOL_BYTES  ? sp->bytes
				     : k == V_SPOOL_CAP	   ? sp->cap
							   : sp->pending_spans;
			sbuf_printf(o, "%s{exporter=\"%s\"} %llu\n", m[k].name, e->name,
				    (unsigned long long)v);
		}
	}
}

