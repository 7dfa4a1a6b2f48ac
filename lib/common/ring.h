/* SPDX-License-Identifier: MIT */
/*
 * Ring mapping helpers shared by the producer library, the agent and the
 * tools. Nothing here is on the hot path.
 */
#ifndef SPANRING_LIB_RING_H
#define SPANRING_LIB_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spanring/ring_abi.h"

#define SR_HIDDEN __attribute__((visibility("hidden")))

/* Layout of a ring, derived from its four parameters. */
struct sr_layout {
	uint32_t slot_count;
	uint32_t slot_size;
	uint32_t scope_cap;
	uint32_t res_cap;
	uint64_t prod_off, cons_off, scope_off, res_off, data_off, total_size;
};

/*
 * Fill *l from the four parameters; returns 0 or -EINVAL when a parameter
 * is out of the ABI's bounds (slot_size must be a power of two).
 * scope_cap and res_cap are rounded up to SPANRING_PAGE.
 */
SR_HIDDEN int sr_layout_compute(struct sr_layout *l, uint32_t slot_count, uint32_t slot_size,
				uint32_t scope_cap, uint32_t res_cap);

/* A mapped ring: control region plus mirror-mapped slot data. */
struct sr_map {
	int fd;
	bool writable_data;          /* producer mapping */
	struct sr_layout l;
	uint8_t *ctrl;               /* [0, data_off) of the file */
	uint8_t *data;               /* slot i at data + i * 2 * slot_size, mirrored */
	size_t data_span;            /* bytes reserved at data */
};

static inline struct spanring_ring_hdr *sr_hdr(const struct sr_map *m)
{
	return (struct spanring_ring_hdr *)m->ctrl;
}
static inline struct spanring_slot_prod *sr_prod(const struct sr_map *m, uint32_t i)
{
	return (struct spanring_slot_prod *)(m->ctrl + m->l.prod_off) + i;
}
static inline struct spanring_cons_hdr *sr_cons_hdr(const struct sr_map *m)
{
	return (struct spanring_cons_hdr *)(m->ctrl + m->l.cons_off);
}
static inline struct spanring_slot_cons *sr_cons(const struct sr_map *m, uint32_t i)
{
	return (struct spanring_slot_cons *)(m->ctrl + m->l.cons_off + SPANRING_CACHELINE) + i;
}
static inline uint8_t *sr_slot_data(const struct sr_map *m, uint32_t i)
{
	return m->data + (size_t)i * 2 * m->l.slot_size;
}
static inline uint8_t *sr_scope_table(const struct sr_map *m)
{
	return m->ctrl + m->l.scope_off;
}
static inline uint8_t *sr_resource(const struct sr_map *m)
{
	return m->ctrl + m->l.res_off;
}

/*
 * Producer: create a memfd of the layout's size, seal it against shrink,
 * grow and further sealing, map it (data mirrored, MADV_DONTFORK) and
 * write the header (without SPANRING_HDR_F_INITIALIZED). Returns 0 or
 * -errno; on failure nothing is left open or mapped.
 */
SR_HIDDEN int sr_ring_create(struct sr_map *m, const struct sr_layout *l, const char *name);

/* Everything the agent verifies about a received fd before mapping it. */
struct sr_fd_info {
	uint64_t size;
	unsigned seals;
};
/*
 * Check that fd is a memfd sealed against shrink and grow with a size in
 * bounds. Returns 0, or a SPANRING_REG_E* reason (positive) with *why set.
 */
SR_HIDDEN int sr_fd_check(int fd, struct sr_fd_info *info, const char **why);

/*
 * Read the header of a ring of `size` bytes from a read-only look at its
 * first page (hdr, a private copy), check it and compute the layout.
 * Returns 0 or a SPANRING_REG_E* reason with *why set.
 */
SR_HIDDEN int sr_hdr_validate(const struct spanring_ring_hdr *hdr, uint64_t size,
			      struct sr_layout *l, const char **why);

/*
 * Consumer: map a validated ring. Everything is read-only except the
 * consumer page(s), which are mapped read-write when cons_writable
 * (the agent) and read-only otherwise (the dump tool).
 * Returns 0 or -errno.
 */
SR_HIDDEN int sr_ring_map_consumer(struct sr_map *m, int fd, const struct sr_layout *l,
				   bool cons_writable);

/* Unmap and (if close_fd) close. Safe on a zeroed struct. */
SR_HIDDEN void sr_ring_unmap(struct sr_map *m, bool close_fd);

#endif
