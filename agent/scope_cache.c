/* SPDX-License-Identifier: MIT */
/*
 * The scope cache (scope_cache.h). The scope table is in memory the
 * producer writes: the ring reader (lib/ring_read.h) reads each entry's
 * length once and checks the private copy of its body; the cache adds the
 * agent's own limits.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ring_read.h"
#include "scope_cache.h"

/* Real programs have a handful of tracers; a table of thousands of tiny
 * entries is an attempt to make the agent work for nothing. */
#define SCOPE_CACHE_MAX 4096

/* Binary search of the sorted cache; returns the insertion index. */
static size_t scope_find(const struct scope_cache *c, uint64_t off, bool *found)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->ents[mid]->off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < c->n && c->ents[lo]->off == off;
	return lo;
}

/*
 * The copies are bounded: entries may not overlap one already cached (the
 * agent's own offsets and lengths, whatever the table says now), so they
 * add up to at most the table's size, and a producer's copies stay within
 * max_scope_bytes, which registry_adopt() counts against the uid's
 * max_mapped_per_uid for every ring. Without that, 1200 overlapping
 * entries of 1 MiB in one 1.1 MiB ring cost the agent 1.2 GB.
 */
static int scope_fits(const struct scope_cache *c, size_t idx, uint64_t off, uint32_t len,
		      uint64_t cost, uint64_t max_bytes, const char **why)
{
	const uint64_t hdr = sizeof(struct spanring_scope_entry);
	if (idx > 0 && c->ents[idx - 1]->off + hdr + c->ents[idx - 1]->len > off) {
		*why = "scope entry overlaps an earlier one";
		return -1;
	}
	if (idx < c->n && off + hdr + len > c->ents[idx]->off) {
		*why = "scope entry overlaps a later one";
		return -1;
	}
	if (c->bytes + cost > max_bytes) {
		*why = "scope entries beyond the max_scope_bytes the agent copies per producer";
		return -1;
	}
	return 0;
}

const char scope_cache_nomem[] = "out of memory caching a scope";

/* Copy the body, check the copy and insert it at idx. */
static const struct scope_ent *scope_insert(struct scope_cache *c, size_t idx,
					    const struct sr_map *m, uint64_t off, uint32_t len,
					    uint64_t cost, const char **why)
{
	struct scope_ent *ent = calloc(1, sizeof(*ent));
	uint8_t *body = malloc(len ? len : 1);
	if (!ent || !body)
		goto nomem;
	/* Validate the private copy: the producer may change the table. */
	enum sr_read_err err = sr_scope_body_copy(m, off, len, body);
	if (err) {
		*why = sr_read_why(err);
		free(body);
		free(ent);
		return NULL;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		struct scope_ent **n = realloc(c->ents, cap * sizeof(*n));
		if (!n)
			goto nomem;
		c->ents = n;
		c->cap = cap;
	}
	*ent = (struct scope_ent){.off = off, .len = len, .body = body};
	c->bytes += cost;
	memmove(c->ents + idx + 1, c->ents + idx, (c->n - idx) * sizeof(*c->ents));
	c->ents[idx] = ent;
	c->n++;
	return ent;
nomem:
	free(body);
	free(ent);
	*why = scope_cache_nomem;
	return NULL;
}

const struct scope_ent *scope_cache_get(struct scope_cache *c, const struct sr_map *m,
					uint64_t max_bytes, uint64_t off, const char **why)
{
	bool found;
	size_t idx = scope_find(c, off, &found);
	if (found)
		return c->ents[idx];
	if (c->n >= SCOPE_CACHE_MAX) {
		*why = "more distinct scopes than the agent caches per producer";
		return NULL;
	}
	uint32_t len;
	enum sr_read_err err = sr_scope_entry_find(m, off, &len);
	if (err) {
		*why = sr_read_why(err);
		return NULL;
	}
	uint64_t cost = sizeof(struct spanring_scope_entry) + len + AGENT_SCOPE_ENT_OVERHEAD;
	if (scope_fits(c, idx, off, len, cost, max_bytes, why))
		return NULL;
	return scope_insert(c, idx, m, off, len, cost, why);
}

uint64_t scope_cache_reserve(const struct sr_layout *l, uint64_t max_bytes)
{
	/* Entries are at least 8 bytes and never overlap: at most
	 * scope_cap / 8 of them, each costing its bytes plus the overhead. */
	uint64_t most = (uint64_t)l->scope_cap + (uint64_t)l->scope_cap / 8 * AGENT_SCOPE_ENT_OVERHEAD;
	return most < max_bytes ? most : max_bytes;
}

void scope_cache_free(struct scope_cache *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->ents[i]->body);
		free(c->ents[i]);
	}
	free(c->ents);
	*c = (struct scope_cache){0};
}
