/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the libFuzzer targets in tests/fuzz/: a reader over the
 * fuzz input (every read is bounded; past the end it yields zeros) and an
 * invariant check that aborts with a message (libFuzzer then saves the
 * input as a crash). Header-only; each target is one program.
 */
#ifndef SPANRING_TESTS_FUZZ_H
#define SPANRING_TESTS_FUZZ_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* On failure: a message on fd 2 (even where a target silenced stderr), abort. */
#define FZ_CHECK(cond)                                                                   \
	do {                                                                             \
		if (!(cond)) {                                                           \
			dprintf(2, "fuzz invariant failed: %s (%s:%d)\n", #cond,         \
				__FILE__, __LINE__);                                     \
			abort();                                                         \
		}                                                                        \
	} while (0)

struct fz {
	const uint8_t *p;
	size_t n;
};

static inline size_t fz_left(const struct fz *f)
{
	return f->n;
}

static inline uint8_t fz_u8(struct fz *f)
{
	if (!f->n)
		return 0;
	f->n--;
	return *f->p++;
}

static inline uint16_t fz_u16(struct fz *f)
{
	uint16_t lo = fz_u8(f);
	return (uint16_t)(lo | (uint16_t)fz_u8(f) << 8);
}

static inline uint32_t fz_u32(struct fz *f)
{
	uint32_t lo = fz_u16(f);
	return lo | (uint32_t)fz_u16(f) << 16;
}

static inline uint64_t fz_u64(struct fz *f)
{
	uint64_t lo = fz_u32(f);
	return lo | (uint64_t)fz_u32(f) << 32;
}

/* Up to want bytes of the input (fewer at its end); *got is how many. */
static inline const uint8_t *fz_bytes(struct fz *f, size_t want, size_t *got)
{
	const uint8_t *p = f->p;
	if (want > f->n)
		want = f->n;
	f->p += want;
	f->n -= want;
	*got = want;
	return p;
}

/*
 * Number of open descriptors of this process (leak checks), not counting
 * pipes: libFuzzer's symbolizer (NEW_FUNC lines, reports) opens pipes of
 * its own at any time. Targets that pass pipes check them by name
 * (fz_fd_open_to).
 */
static inline int fz_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char p[300], l[256];
		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(p, l, sizeof(l) - 1);
		if (k > 0 && k >= 5 && memcmp(l, "pipe:", 5) == 0)
			continue;
		n++;
	}
	closedir(d);
	return n; /* includes the directory's own fd: constant */
}

/* Is some descriptor of this process open to `target` (a readlink text)? */
static inline int fz_fd_open_to(const char *target)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)) && !found) {
		char p[300], l[256];
		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(p, l, sizeof(l) - 1);
		if (k > 0) {
			l[k] = 0;
			found = strcmp(l, target) == 0;
		}
	}
	closedir(d);
	return found;
}

/* On a leak: list the descriptors (stderr) before the check aborts. */
static inline void fz_list_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d))) {
		char p[300], l[256];
		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(p, l, sizeof(l) - 1);
		if (n > 0) {
			l[n] = 0;
			fprintf(stderr, "  fd %s -> %s\n", e->d_name, l);
		}
	}
	closedir(d);
}

#define FZ_CHECK_FDS(base)                    \
	do {                                  \
		if (fz_count_fds() != (base)) \
			fz_list_fds();        \
		FZ_CHECK(fz_count_fds() == (base)); \
	} while (0)

#endif
