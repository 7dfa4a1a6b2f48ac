/* SPDX-License-Identifier: MIT */
/*
 * The scope cache (scope_cache.h). The scope table is in memory the
 * producer writes: every entry is read once, its body copied, and only the
 * copy is checked and used.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "otlp_common.pb-c.h"
#include "pbcheck.h"
#include "pbwire.h"
#include "scope_cache.h"

/* Real programs have a handful of tracers; a table of thousands of tiny
 * entries is an attempt to make the agent work for nothing. */
#define SCOPE_CACHE_MAX 4096

/*
 * Check a scope entry body (a private copy): only ScopeSpans fields 1
 * (InstrumentationScope, which must decode) and 3 (schema_url) may occur,
 * so that forwarding it verbatim cannot inject spans or break the request.
 */
static int scope_body_check(const uint8_t *b, size_t len, const char **why)
{
	const uint8_t *p = b, *end = b + len;
	while (p < end) {
		uint32_t field, wt;
		const uint8_t *payload, *next;
		uint64_t v;
		if (pb_next_field(p, end, &field, &wt, &payload, &next, &v)) {
			*why = "scope entry body is not valid protobuf";
			return -1;
		}
		if (wt != SPANRING_WT_LEN || (field != 1 && field != 3)) {
			*why = "scope entry body has a field other than scope and schema_url";
			return -1;
		}
		if (field == 1) {
			Opentelemetry__Proto__Common__V1__InstrumentationScope *s =
				(void *)sr_pb_unpack(&opentelemetry__proto__common__v1__instrumentation_scope__descriptor, payload, (size_t)v);
			if (!s) {
				*why = "scope entry's InstrumentationScope does not decode";
				return -1;
			}
			opentelemetry__proto__common__v1__instrumentation_scope__free_unpacked(s, NULL);
		}
		p = next;
	}
	return 0;
}

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

/* The length of the entry at off, read once from the table, if the entry
 * lies below scope_len. */
static int scope_entry_len(const struct sr_map *m, uint64_t off, uint32_t *len,
			   const char **why)
{
	/* Pairs with the producer's store-release of scope_len after it
	 * appended an entry (ABI §10): the entry's bytes below scope_len are
	 * complete. */
	uint64_t slen = sr_load_acquire_64(&sr_hdr(m)->scope_len);
	if (slen > m->l.scope_cap) {
		*why = "scope_len beyond the scope table's capacity";
		return -1;
	}
	if (off >= slen || slen - off < sizeof(struct spanring_scope_entry)) {
		*why = "scope offset beyond scope_len";
		return -1;
	}
	struct spanring_scope_entry e;
	memcpy(&e, sr_scope_table(m) + off, sizeof(e)); /* the length, read once */
	if (e.len > slen - off - sizeof(e)) {
		*why = "scope entry extends past scope_len";
		return -1;
	}
	*len = e.len;
	return 0;
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
	memcpy(body, sr_scope_table(m) + off + sizeof(struct spanring_scope_entry), len);
	if (scope_body_check(body, len, why)) {
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
	*why = "out of memory caching a scope";
	return NULL;
}

const struct scope_ent *scope_cache_get(struct scope_cache *c, const struct sr_map *m,
					uint64_t max_bytes, uint64_t off, const char **why)
{
	bool found;
	size_t idx = scope_find(c, off, &found);
	if (found)
		return c->ents[idx];
	uint32_t len;
	if (off % 8) {
		*why = "scope offset not 8-byte aligned";
		return NULL;
	}
	if (c->n >= SCOPE_CACHE_MAX) {
		*why = "more distinct scopes than the agent caches per producer";
		return NULL;
	}
	if (scope_entry_len(m, off, &len, why))
		return NULL;
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
