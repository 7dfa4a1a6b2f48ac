/* SPDX-License-Identifier: MIT */
/* Ring creation, sealing, validation and (mirror) mapping. */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
/* The largest ring any valid layout describes (control region at most a few MiB). */
#define MAX_RING_SIZE ((uint64_t)SPANRING_MAX_SLOTS * SPANRING_MAX_SLOT_SIZE + (16ull << 20))

static uint64_t round_page(uint64_t x)
{
	return (x + SPANRING_PAGE - 1) & ~(uint64_t)(SPANRING_PAGE - 1);
}

int sr_layout_compute(struct sr_layout *l, uint32_t slot_count, uint32_t slot_size,
		      uint32_t scope_cap, uint32_t res_cap)
{
	if (slot_count < 1 || slot_count > SPANRING_MAX_SLOTS)
		return -EINVAL;
	if (slot_size < SPANRING_MIN_SLOT_SIZE || slot_size > SPANRING_MAX_SLOT_SIZE ||
	    (slot_size & (slot_size - 1)) != 0)
		return -EINVAL;
	if (scope_cap < SPANRING_PAGE || scope_cap > SPANRING_MAX_SCOPE_CAP ||
	    res_cap < SPANRING_PAGE || res_cap > SPANRING_MAX_RES_CAP)
		return -EINVAL;
	l->slot_count = slot_count;
	l->slot_size = slot_size;
	l->scope_cap = (uint32_t)round_page(scope_cap);
	l->res_cap = (uint32_t)round_page(res_cap);
	l->prod_off = SPANRING_PAGE;
	l->cons_off = l->prod_off + round_page((uint64_t)slot_count * SPANRING_CACHELINE);
	l->scope_off = l->cons_off + round_page((uint64_t)(slot_count + 1) * SPANRING_CACHELINE);
	l->res_off = l->scope_off + l->scope_cap;
	l->data_off = l->res_off + l->res_cap;
	l->total_size = l->data_off + (uint64_t)slot_count * slot_size;
	return 0;
}

/* Map the slot data of m->fd twice back to back per slot. */
static int map_data(struct sr_map *m, int prot)
{
	const struct sr_layout *l = &m->l;
	size_t span = (size_t)l->slot_count * 2 * l->slot_size;
	uint8_t *base = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			     -1, 0);
	if (base == MAP_FAILED)
		return -errno;
	for (uint32_t i = 0; i < l->slot_count; i++) {
		off_t off = (off_t)(l->data_off + (uint64_t)i * l->slot_size);
		for (int half = 0; half < 2; half++) {
			uint8_t *want = base + ((size_t)i * 2 + (size_t)half) * l->slot_size;
			void *p = mmap(want, l->slot_size, prot, MAP_SHARED | MAP_FIXED, m->fd, off);
			if (p == MAP_FAILED) {
				int err = -errno;
				munmap(base, span);
				return err;
			}
		}
	}
	m->data = base;
	m->data_span = span;
	return 0;
}

int sr_ring_create(struct sr_map *m, const struct sr_layout *l, const char *name)
{
	int err;
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (sysconf(_SC_PAGESIZE) > (long)SPANRING_PAGE)
		return -ENOTSUP;
	int fd = memfd_create(name ? name : "spanring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)l->total_size) < 0) {
		err = -errno;
		goto err_close;
	}
	if (fcntl(fd, F_ADD_SEALS, REQUIRED_SEALS) < 0) {
		err = -errno;
		goto err_close;
	}
	m->fd = fd;
	m->l = *l;
	m->writable_data = true;
	m->ctrl = mmap(NULL, l->data_off, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m->ctrl == MAP_FAILED) {
		err = -errno;
		m->ctrl = NULL;
		goto err_close;
	}
	err = map_data(m, PROT_READ | PROT_WRITE);
	if (err)
		goto err_unmap;
	/* A forked child must never write into its parent's ring. */
	(void)madvise(m->ctrl, l->data_off, MADV_DONTFORK);
	(void)madvise(m->data, m->data_span, MADV_DONTFORK);

	struct spanring_ring_hdr *h = sr_hdr(m);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	h->magic = SPANRING_RING_MAGIC;
	h->abi_major = SPANRING_ABI_MAJOR;
	h->abi_minor = SPANRING_ABI_MINOR;
	h->header_size = sizeof(*h);
	h->page_size = SPANRING_PAGE;
	h->total_size = l->total_size;
	h->slot_count = l->slot_count;
	h->slot_size = l->slot_size;
	h->prod_off = l->prod_off;
	h->cons_off = l->cons_off;
	h->scope_off = l->scope_off;
	h->res_off = l->res_off;
	h->data_off = l->data_off;
	h->scope_cap = l->scope_cap;
	h->res_cap = l->res_cap;
	h->creator_pid = (uint32_t)getpid();
	h->created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	for (uint32_t i = 0; i < l->slot_count; i++)
		sr_cons(m, i)->scope_at_tail = SPANRING_SCOPE_NONE;
	return 0;

err_unmap:
	munmap(m->ctrl, l->data_off);
	m->ctrl = NULL;
err_close:
	close(fd);
	m->fd = -1;
	return err;
}

int sr_fd_check(int fd, struct sr_fd_info *info, const char **why)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		*why = "fstat failed";
		return SPANRING_REG_EINTERNAL;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = "fd is not a memfd (not a regular file)";
		return SPANRING_REG_ENOTMEMFD;
	}
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0) {
		/* EINVAL: the file does not support sealing, so it is no memfd. */
		*why = "fd is not a memfd (no seals)";
		return SPANRING_REG_ENOTMEMFD;
	}
	if ((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
		*why = "memfd not sealed against shrink and grow";
		return SPANRING_REG_ESEALS;
	}
	if (!(seals & F_SEAL_SEAL)) {
		/* Without it the producer could add seals after we checked. */
		*why = "memfd not sealed against further sealing (F_SEAL_SEAL)";
		return SPANRING_REG_ESEALS;
	}
	if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) {
		/* The consumer lines must be writable for the agent. */
		*why = "memfd sealed against writing";
		return SPANRING_REG_ESEALS;
	}
	if (st.st_size < (off_t)SPANRING_PAGE || (uint64_t)st.st_size > MAX_RING_SIZE) {
		*why = "memfd size out of bounds";
		return SPANRING_REG_ESIZE;
	}
	info->size = (uint64_t)st.st_size;
	info->seals = (unsigned)seals;
	return 0;
}

int sr_hdr_validate(const struct spanring_ring_hdr *hdr, uint64_t size, struct sr_layout *l,
		    const char **why)
{
	if (hdr->magic != SPANRING_RING_MAGIC) {
		*why = "bad magic";
		return SPANRING_REG_EHEADER;
	}
	if (hdr->abi_major != SPANRING_ABI_MAJOR) {
		*why = "unsupported ABI major version";
		return SPANRING_REG_EABI;
	}
	if (hdr->features & SPANRING_FEAT_REQUIRED_MASK) {
		*why = "unknown required feature";
		return SPANRING_REG_EABI;
	}
	if (hdr->header_size != sizeof(*hdr) || hdr->page_size != SPANRING_PAGE) {
		*why = "bad header or page size";
		return SPANRING_REG_EHEADER;
	}
	if (sr_layout_compute(l, hdr->slot_count, hdr->slot_size, hdr->scope_cap, hdr->res_cap)) {
		*why = "slot count/size or capacities out of bounds";
		return SPANRING_REG_EHEADER;
	}
	if (hdr->prod_off != l->prod_off || hdr->cons_off != l->cons_off ||
	    hdr->scope_off != l->scope_off || hdr->res_off != l->res_off ||
	    hdr->data_off != l->data_off || hdr->total_size != l->total_size ||
	    hdr->scope_cap != l->scope_cap || hdr->res_cap != l->res_cap) {
		*why = "header offsets disagree with the layout";
		return SPANRING_REG_EHEADER;
	}
	if (l->total_size != size) {
		*why = "header size disagrees with the memfd size";
		return SPANRING_REG_ESIZE;
	}
	if (hdr->res_len > l->res_cap) {
		*why = "resource length exceeds its capacity";
		return SPANRING_REG_EHEADER;
	}
	return 0;
}

int sr_ring_map_consumer(struct sr_map *m, int fd, const struct sr_layout *l, bool cons_writable)
{
	int err;
	memset(m, 0, sizeof(*m));
	m->fd = fd;
	m->l = *l;
	m->ctrl = mmap(NULL, l->data_off, PROT_READ, MAP_SHARED, fd, 0);
	if (m->ctrl == MAP_FAILED) {
		m->ctrl = NULL;
		return -errno;
	}
	if (cons_writable &&
	    mprotect(m->ctrl + l->cons_off, l->scope_off - l->cons_off, PROT_READ | PROT_WRITE)) {
		err = -errno;
		goto err_unmap;
	}
	err = map_data(m, PROT_READ);
	if (err)
		goto err_unmap;
	return 0;
err_unmap:
	munmap(m->ctrl, l->data_off);
	m->ctrl = NULL;
	return err;
}

void sr_ring_unmap(struct sr_map *m, bool close_fd)
{
	if (m->data)
		munmap(m->data, m->data_span);
	if (m->ctrl)
		munmap(m->ctrl, m->l.data_off);
	if (close_fd && m->fd >= 0)
		close(m->fd);
	m->data = NULL;
	m->ctrl = NULL;
	m->fd = -1;
}
