/* SPDX-License-Identifier: MIT */
/* The chunk queue of a slot (chunkq.h). */
#include <errno.h>
#include <stdlib.h>

#include "chunkq.h"

static struct chunkq_ent *chunkq_at(const struct chunkq *cq, uint64_t idx)
{
	return &cq->q[(cq->first + idx) % cq->cap];
}

bool chunkq_extend(struct chunkq *cq, uint64_t batch_seq, uint64_t end, uint64_t scope_at_end)
{
	if (!cq->len)
		return false;
	struct chunkq_ent *last = chunkq_at(cq, cq->len - 1);
	if (last->batch_seq != batch_seq || last->released)
		return false;
	last->end = end;
	last->scope_at_end = scope_at_end;
	return true;
}

int chunkq_push(struct chunkq *cq, uint64_t batch_seq, uint64_t end, uint64_t scope_at_end,
		uint64_t *seq)
{
	if (cq->len == cq->cap) {
		uint32_t cap = cq->cap ? cq->cap * 2 : 4;
		struct chunkq_ent *q = malloc(cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		for (uint32_t k = 0; k < cq->len; k++)
			q[k] = *chunkq_at(cq, k);
		free(cq->q);
		cq->q = q;
		cq->cap = cap;
		cq->first = 0;
	}
	*seq = cq->first_seq + cq->len;
	*chunkq_at(cq, cq->len) = (struct chunkq_ent){
		.end = end, .scope_at_end = scope_at_end, .batch_seq = batch_seq, .released = false};
	cq->len++;
	return 0;
}

int chunkq_release(struct chunkq *cq, uint64_t seq, uint64_t *end, uint64_t *scope_at_end)
{
	uint64_t idx = seq - cq->first_seq;
	if (idx >= cq->len)
		return -ENOENT;
	chunkq_at(cq, idx)->released = true;
	int moved = 0;
	while (cq->len && cq->q[cq->first].released) {
		*end = cq->q[cq->first].end;
		*scope_at_end = cq->q[cq->first].scope_at_end;
		cq->first = (cq->first + 1) % cq->cap;
		cq->len--;
		cq->first_seq++;
		moved = 1;
	}
	return moved;
}

void chunkq_free(struct chunkq *cq)
{
	free(cq->q);
	*cq = (struct chunkq){0};
}
