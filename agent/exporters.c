/* SPDX-License-Identifier: MIT */
/*
 * The core's side of the exporters (agent/export/exporter.h): building
 * the instances the configuration enables from the table of kinds, and
 * what the core lends them (struct exp_host): the loop, the settings,
 * and the batch operations, which it applies for them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "exporter.h"
#include "instances.h"
#include "log.h"
#include "pbwire.h"

/* A spooled request as a batch: the message in the batch's own framing
 * buffer (agent memory), one FRAME iovec; no producer, no ring. */
static struct batch *host_batch_of_bytes(struct agent *ag, const uint8_t *msg, size_t len,
					 uint64_t spans)
{
	struct batch *b = batch_new(ag);
	if (!b)
		return NULL;
	size_t need = len + 10;
	if (b->frame_cap < need) {
		uint8_t *nf = realloc(b->frame, need);
		if (!nf)
			goto fail;
		b->frame = nf;
		b->frame_cap = need;
	}
	if (b->cap_iov < 2) {
		struct iovec *ni = realloc(b->iov, 2 * sizeof(*ni));
		if (!ni)
			goto fail;
		b->iov = ni;
		uint8_t *nk = realloc(b->iov_kind, 2);
		if (!nk) {
			b->cap_iov = 1; /* iov grew, kind did not: keep them equal */
			goto fail;
		}
		b->iov_kind = nk;
		b->cap_iov = 2;
	}
	uint8_t *p = pb_put_varint(b->frame, len);
	size_t hl = (size_t)(p - b->frame);
	memcpy(p, msg, len);
	b->iov[0] = (struct iovec){b->frame, hl};
	b->iov[1] = (struct iovec){p, len};
	b->iov_kind[0] = b->iov_kind[1] = BATCH_IOV_FRAME;
	b->niov = 2;
	b->msg_len = len;
	b->spans = spans;
	b->span_bytes = 0;
	b->finalized = true;
	return b;
fail:
	batch_unref(b);
	return NULL;
}

static struct exp_producer_id host_producer_id(const struct agent_producer *p)
{
	return (struct exp_producer_id){.id = p->id, .pid = p->pid, .service = p->service};
}

void agent_exp_host_init(struct agent *ag)
{
	ag->xhost = (struct exp_host){
		.loop = &ag->loop,
		.cfg = ag->cfg,
		.err = ag->err,
		.errlen = sizeof(ag->err),
		.stopping = &ag->stopping,
		.no_release = &ag->no_release,
		.ag = ag,
		.hold = batch_ref,
		.release = batch_unref,
		.batch_of_bytes = host_batch_of_bytes,
		.zc_check = zc_check_iov,
		.producer_id = host_producer_id,
	};
}

int agent_add_exporter(struct agent *ag, struct exporter *e)
{
	if (ag->n_exp >= AGENT_MAX_EXPORTERS)
		return -ENOSPC;
	e->host = &ag->xhost;
	ag->exp[ag->n_exp++] = e;
	return 0;
}

/* Build one instance with its kind's constructor and add it. */
static int agent_add_instance(struct agent *ag, const struct exp_kind *k,
			      const struct agent_config *cfg, const char *name)
{
	struct exporter *e = NULL;
	int err = k->create(&ag->xhost, cfg, name, &e);
	if (err) {
		if (name)
			log_error("exporter %s: cannot start: %s", name, strerror(-err));
		return err;
	}
	if (name)
		snprintf(e->name, sizeof(e->name), "%s", name);
	if ((err = agent_add_exporter(ag, e)))
		e->ops->destroy(e);
	return err;
}

int agent_exporters_from_config(struct agent *ag)
{
	const struct agent_config *c = ag->cfg;
	int err;
	/* The unnamed instances, configured by the agent-wide keys. */
	for (size_t i = 0; i < exp_n_kinds; i++)
		if ((c->exporters & exp_kinds[i].bit) &&
		    (err = agent_add_instance(ag, &exp_kinds[i], c, NULL)))
			return err;
	/* Named instances TYPE/NAME, each with its own settings. */
	for (size_t i = 0; i < c->n_inst; i++) {
		const struct exp_instance *in = &c->inst[i];
		if (!in->enabled || !in->named)
			continue;
		struct agent_config m;
		inst_merged_config(c, in, &m);
		if ((err = agent_add_instance(ag, exp_kind_by_bit(in->type), &m, in->id)))
			return err;
	}
	return 0;
}
