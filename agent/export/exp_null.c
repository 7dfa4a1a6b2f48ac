/* SPDX-License-Identifier: MIT */
/* Null exporter: counts and discards (the benchmark's sink). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "batch.h"
#include "exporter.h"

static int null_submit(struct exporter *e, struct batch *b)
{
	e->st.batches++;
	e->st.spans += b->spans;
	e->st.bytes += b->msg_len;
	return 0;
}

static size_t null_flush(struct exporter *e, uint64_t deadline_ns)
{
	(void)e;
	(void)deadline_ns;
	return 0;
}

static void null_destroy(struct exporter *e)
{
	free(e);
}

static const struct exporter_ops null_ops = {
	.kind = "null",
	.submit = null_submit,
	.flush = null_flush,
	.destroy = null_destroy,
};

int exp_null_create(const struct exp_host *host, struct exporter **out)
{
	struct exporter *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->ops = &null_ops;
	e->host = host;
	snprintf(e->name, sizeof(e->name), "null");
	*out = e;
	return 0;
}

int exp_null_kind_create(const struct exp_host *host, const struct agent_config *cfg,
			 const char *name, struct exporter **out)
{
	return exp_null_create(host, out);
}
