/* SPDX-License-Identifier: MIT */
/*
 * A producer's scope cache: the scope-table entries its span records
 * referred to, each validated once and copied into agent memory, so that
 * batches frame spans with the agent's copy (never with bytes the producer
 * can still change). drain.c fills it as the walk meets SCOPE records and
 * registry.c at adoption (scope_at_tail); registry.c frees it with the
 * producer's ring.
 */
#ifndef SPANRING_AGENT_SCOPE_CACHE_H
#define SPANRING_AGENT_SCOPE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

/* What a cached scope entry costs the agent beyond its entry's bytes
 * (struct scope_ent, allocator headers, its pointer), for max_scope_bytes. */
#define AGENT_SCOPE_ENT_OVERHEAD 64u

/* A validated scope-table entry, copied into agent memory. */
struct scope_ent {
	uint64_t off;
	uint32_t len;
	uint8_t *body;
};

struct scope_cache {
	struct scope_ent **ents; /* sorted by off, never overlapping */
	size_t n, cap;
	uint64_t bytes; /* their cost: entry bytes + AGENT_SCOPE_ENT_OVERHEAD each */
};

/*
 * The entry at off of m's scope table: from the cache, else read once,
 * validated, copied and cached, the copies of the cache costing at most
 * max_bytes. NULL with *why: the producer broke the ABI, or *why is
 * scope_cache_nomem (the agent is out of memory: not the producer's
 * fault; try again later).
 */
extern const char scope_cache_nomem[];
const struct scope_ent *scope_cache_get(struct scope_cache *c, const struct sr_map *m,
					uint64_t max_bytes, uint64_t off, const char **why);
/* The most the copies of a ring with this layout may cost: entries of at
 * least 8 bytes that do not overlap, at most max_bytes. */
uint64_t scope_cache_reserve(const struct sr_layout *l, uint64_t max_bytes);
void scope_cache_free(struct scope_cache *c);

#endif
