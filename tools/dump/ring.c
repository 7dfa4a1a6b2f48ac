/* SPDX-License-Identifier: MIT */
/*
 * Read-only access to live rings for spanring-dump (show, follow).
 *
 * The tool never writes to a ring: the memfd is opened O_RDONLY (through
 * /proc/PID/fd or from the agent's `ringfd`), mapped PROT_READ, and no
 * tail is ever stored, so neither the producer nor the agent can tell it
 * is being watched.
 *
 * The ring is hostile input, as in the agent's drain: every index is read
 * once into a local and validated; record bytes are copied out of the
 * ring before they are parsed or decoded, and then read by the agent's
 * rules (lib/ring_read.h). Because the tool does not hold
 * the tail back, the agent may release bytes while we copy them and the
 * producer may then overwrite them. A byte at stream position q that we
 * copied is known to be intact when, read after the copy (with a load
 * fence in between):
 *   - q >= tail: the producer writes position q + slot_size only after
 *     it saw a tail beyond q (A/D in ring_abi.h); or
 *   - q + slot_size >= head + record bound: a producer that overwrote q
 *     would be writing a record that starts at or below the head we read
 *     afterwards, so q + slot_size would lie below head + record bound.
 *     (This second rule relies on the producer's head being visible no
 *     later than the record bytes that follow it, true on x86-64's TSO.)
 * Bytes outside that window are skipped from the next record boundary we
 * know, which is the tail (the agent releases whole records), and the
 * skip is reported as a gap; it is never parsed as if it were a record.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "dump.h"
#include "otlp_in.h"
#include "ring.h"
#include "ring_read.h"

/* Bytes a committed record (span plus leading control records) can exceed
 * the span's length limit by: tags, lengths, a LOST and a SCOPE record. */
#define REC_SLACK 64u

struct scope_ent {
	uint64_t off;
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ss; /* scope and schema_url only */
};

struct dslot {
	uint64_t cursor;  /* follow: stream position read up to (a record boundary) */
	uint64_t scope;   /* scope-table offset in effect at cursor, or SCOPE_NONE */
	uint64_t drops;   /* follow: drop counters' sum at the last poll */
	bool broken;      /* framing error seen: no longer read */
};

struct dump_ring {
	int fd;
	pid_t pid;    /* the producer (0: unknown, exited) */
	pid_t holder; /* the process whose fd we opened (usually pid) */
	dev_t dev;
	ino_t ino;
	uint64_t size;
	struct spanring_ring_hdr hdr; /* private copy, validated */
	struct sr_layout l;
	struct sr_map m;
	uint32_t maxrec;
	dump_resource_t *res;
	char res_err[96];
	char service[160];
	struct scope_ent *scopes;
	size_t n_scopes;
	struct dslot slot[SPANRING_MAX_SLOTS];
	uint8_t *buf; /* one slot's worth of copied bytes */
	bool dead;
};

pid_t dump_ring_pid(const struct dump_ring *r)
{
	return r->pid;
}

pid_t dump_ring_holder(const struct dump_ring *r)
{
	return r->holder;
}

void dump_ring_set_producer(struct dump_ring *r, pid_t producer)
{
	r->pid = producer;
}

uint32_t dump_ring_creator(const struct dump_ring *r)
{
	return r->hdr.creator_pid;
}

bool dump_ring_same(const struct dump_ring *r, dev_t dev, ino_t ino)
{
	return r->dev == dev && r->ino == ino;
}

void dump_ring_id(const struct dump_ring *r, dev_t *dev, ino_t *ino)
{
	*dev = r->dev;
	*ino = r->ino;
}

bool dump_ring_dead(const struct dump_ring *r)
{
	return r->dead;
}

const char *dump_ring_service(const struct dump_ring *r)
{
	return r->service;
}

/* ---- finding and opening rings -------------------------------------------------- */

static bool is_ring_link(const char *t)
{
	static const char pfx[] = "/memfd:spanring";
	size_t n = sizeof(pfx) - 1;
	/* "spanring" (the library), "spanring-<anything>" (tests, tools). */
	if (strncmp(t, pfx, n) != 0)
		return false;
	t += n;
	if (*t == '-')
		t += strcspn(t, " ");
	return *t == 0 || strcmp(t, " (deleted)") == 0;
}

/* The name of a file type, for messages. */
static const char *ftype(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
	       : S_ISDIR(m) ? "a directory" : S_ISSOCK(m) ? "a socket" : S_ISLNK(m) ? "a symlink"
	       : S_ISREG(m) ? "a regular file" : "an unknown file type";
}

/*
 * Open the file behind the magic link /proc/PID/fd/NAME for reading
 * without trusting it. The target may replace its fd between our
 * readlinkat and the open (dup2 of a FIFO: a blocking open would wait for
 * a writer forever; of a device: opening it can have side effects), so:
 * O_PATH first (never blocks, never opens a device), check that this
 * pinned file is a regular file whose own link names a spanring memfd,
 * then reopen exactly that file (/proc/self/fd) non-blocking, and check
 * that it is the same inode and supports seals (a memfd). Returns the fd,
 * or -errno; -ESTALE with *why set when the file is not a spanring memfd.
 */
static int open_ring_link(int dir, const char *name, struct stat *st, char *why, size_t whylen)
{
	int pfd = openat(dir, name, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	char self[64], target[256];
	int fd = -1, e = -ESTALE;
	if (fstat(pfd, st) < 0) {
		e = -errno;
		goto out;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "fd %.16s named like a ring is %s when opened, not a memfd; skipped",
			 name, ftype(st->st_mode));
		goto out;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	ssize_t k = readlink(self, target, sizeof(target) - 1);
	if (k < 0) {
		e = -errno;
		goto out;
	}
	target[k] = 0;
	if (!is_ring_link(target)) {
		snprintf(why, whylen, "fd %.16s named like a ring is another file when opened, not a spanring memfd; skipped",
			 name);
		goto out;
	}
	fd = open(self, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		e = -errno;
		goto out;
	}
	struct stat st2;
	if (fstat(fd, &st2) < 0 || st2.st_dev != st->st_dev || st2.st_ino != st->st_ino ||
	    !S_ISREG(st2.st_mode) || fcntl(fd, F_GET_SEALS) < 0) {
		snprintf(why, whylen, "fd %.16s named like a ring is no memfd (no seals); skipped", name);
		close(fd);
		fd = -1;
		goto out;
	}
	e = 0;
out:
	close(pfd);
	return e ? e : fd;
}

/*
 * Which of the rings out[0..n) does pid map writable and shared? Only
 * their producer does: the agent maps the header (offset 0) read-only and
 * only its consumer lines writable, spanring-dump maps everything
 * read-only. /proc/PID/maps is readable exactly when /proc/PID/fd is (the
 * same ptrace access check). Sets out[i].writer; all true when maps
 * cannot be read (nothing to tell them apart by: returns -1, else 0).
 * One pass over maps.
 */
static int proc_maps_mark_writers(pid_t pid, struct dump_proc_ring *out, int n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	for (int i = 0; i < n; i++)
		out[i].writer = !f;
	if (!f)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		unsigned long lo, hi, off, ino;
		unsigned maj, min;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &off, &maj, &min,
			   &ino) != 7 || off != 0 || perms[1] != 'w' || perms[3] != 's')
			continue;
		/* The producer's header mapping (offset 0) is read-write. */
		for (int i = 0; i < n; i++)
			if ((ino_t)ino == out[i].ino && makedev(maj, min) == out[i].dev)
				out[i].writer = true;
	}
	free(line);
	fclose(f);
	return 0;
}

int dump_proc_rings(pid_t pid, struct dump_proc_ring *out, int max, char *why, size_t whylen)
{
	char path[64];
	if (why && whylen)
		why[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d) {
		int e = errno;
		snprintf(path, sizeof(path), "/proc/%d", (int)pid);
		if (e == ENOENT || access(path, F_OK) != 0)
			return -ENOENT;
		return -e;
	}
	int n = 0, err = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char target[256];
		ssize_t k = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
		if (k < 0) {
			if (errno == EACCES || errno == EPERM)
				err = -errno;
			continue;
		}
		target[k] = 0;
		if (!is_ring_link(target))
			continue;
		struct stat st;
		char w[160] = "";
		int fd = open_ring_link(dirfd(d), de->d_name, &st, w, sizeof(w));
		if (fd < 0) {
			if (fd == -EACCES || fd == -EPERM)
				err = fd;
			if (w[0] && why && whylen && !why[0])
				snprintf(why, whylen, "%s", w);
			continue;
		}
		bool dup = false;
		for (int i = 0; !dup && i < n; i++)
			dup = out[i].dev == st.st_dev && out[i].ino == st.st_ino;
		if (dup) {
			close(fd);
			continue;
		}
		out[n] = (struct dump_proc_ring){.fd = fd, .dev = st.st_dev, .ino = st.st_ino};
		n++;
	}
	closedir(d);
	if (n)
		proc_maps_mark_writers(pid, out, n);
	return n ? n : err;
}

pid_t dump_proc_ring_writer(dev_t dev, ino_t ino, pid_t hint)
{
	struct dump_proc_ring one = {.fd = -1, .dev = dev, .ino = ino};
	/* The header's creator_pid is the producer's word: only a hint. */
	if (hint > 0 && proc_maps_mark_writers(hint, &one, 1) == 0 && one.writer)
		return hint;
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	pid_t found = 0;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		char *end;
		long v = strtol(de->d_name, &end, 10);
		if (end == de->d_name || *end || v <= 0 || v > INT32_MAX || v == hint)
			continue;
		/* Unreadable maps (another user's process) tell nothing. */
		if (proc_maps_mark_writers((pid_t)v, &one, 1) == 0 && one.writer)
			found = (pid_t)v;
	}
	closedir(d);
	return found;
}

int dump_proc_has_ring(pid_t pid, dev_t dev, ino_t ino)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	int found = 0;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9' &&
		    fstatat(dirfd(d), de->d_name, &st, 0) == 0 && st.st_dev == dev && st.st_ino == ino)
			found = 1;
	}
	closedir(d);
	return found;
}

static void ring_load_resource(struct dump_ring *r)
{
	snprintf(r->service, sizeof(r->service), "?");
	uint32_t flags = sr_load_acquire_32(&sr_hdr(&r->m)->flags);
	if (!(flags & SPANRING_HDR_F_INITIALIZED)) {
		snprintf(r->res_err, sizeof(r->res_err), "ring not initialized yet");
		return;
	}
	uint32_t len = r->hdr.res_len; /* validated against res_cap */
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return;
	memcpy(copy, sr_resource(&r->m), len);
	r->res = (dump_resource_t *)sr_pb_unpack(&opentelemetry__proto__resource__v1__resource__descriptor,
						  copy, len);
	free(copy);
	if (!r->res) {
		snprintf(r->res_err, sizeof(r->res_err), "the ring's Resource does not decode");
		return;
	}
	const char *svc = dump_service_name(r->res);
	if (svc)
		snprintf(r->service, sizeof(r->service), "%s", svc);
}

int dump_ring_from_fd(int fd, pid_t pid, struct dump_ring **out, char *err, size_t errlen)
{
	const char *why = NULL;
	struct sr_fd_info info;
	struct stat st;
	int rc;
	*out = NULL;
	struct dump_ring *r = calloc(1, sizeof(*r));
	if (!r) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return DUMP_EXIT_ERROR;
	}
	r->fd = fd;
	r->pid = pid;
	r->holder = pid;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "fstat: %s", strerror(errno));
		rc = DUMP_EXIT_ERROR;
		goto fail;
	}
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	if (sr_fd_check(fd, &info, &why)) {
		snprintf(err, errlen, "corrupt ring: %s", why);
		rc = DUMP_EXIT_CORRUPT;
		goto fail;
	}
	r->size = info.size;
	/* A private copy of the header: each field is read once, from here. */
	ssize_t k = pread(fd, &r->hdr, sizeof(r->hdr), 0);
	if (k != (ssize_t)sizeof(r->hdr)) {
		snprintf(err, errlen, "corrupt ring: cannot read the header (%s)",
			 k < 0 ? strerror(errno) : "short read");
		rc = k < 0 && errno == EACCES ? DUMP_EXIT_PERM : DUMP_EXIT_CORRUPT;
		goto fail;
	}
	int v = sr_hdr_validate(&r->hdr, r->size, &r->l, &why);
	if (v == SPANRING_REG_EABI) {
		snprintf(err, errlen,
			 "ABI mismatch: ring ABI %" PRIu32 ".%" PRIu32 " (features 0x%" PRIx64
			 "), this tool reads ABI %u.x: %s",
			 r->hdr.abi_major, r->hdr.abi_minor, r->hdr.features, SPANRING_ABI_MAJOR, why);
		rc = DUMP_EXIT_ABI;
		goto fail;
	}
	if (v) {
		snprintf(err, errlen, "corrupt ring: header: %s", why);
		rc = DUMP_EXIT_CORRUPT;
		goto fail;
	}
	int e = sr_ring_map_consumer(&r->m, fd, &r->l, false);
	if (e) {
		r->m.fd = -1;
		snprintf(err, errlen, "cannot map the ring read-only: %s", strerror(-e));
		rc = e == -EACCES ? DUMP_EXIT_PERM : DUMP_EXIT_ERROR;
		goto fail;
	}
	r->maxrec = sr_max_record(r->l.slot_size);
	r->buf = malloc(r->l.slot_size);
	if (!r->buf) {
		snprintf(err, errlen, "out of memory");
		rc = DUMP_EXIT_ERROR;
		goto fail;
	}
	for (uint32_t i = 0; i < r->l.slot_count; i++)
		r->slot[i].scope = SPANRING_SCOPE_NONE;
	ring_load_resource(r);
	*out = r;
	return DUMP_EXIT_OK;
fail:
	dump_ring_close(r);
	return rc;
}

void dump_ring_close(struct dump_ring *r)
{
	if (!r)
		return;
	if (r->m.ctrl)
		sr_ring_unmap(&r->m, false);
	if (r->fd >= 0)
		close(r->fd);
	for (size_t i = 0; i < r->n_scopes; i++)
		protobuf_c_message_free_unpacked(&r->scopes[i].ss->base, NULL);
	free(r->scopes);
	if (r->res)
		protobuf_c_message_free_unpacked(&r->res->base, NULL);
	free(r->buf);
	free(r);
}

/* ---- the agent's ringfd -------------------------------------------------------------- */

static int ring_from_agent(pid_t pid, const struct dump_ring_opts *o, struct dump_ring ***rings,
			   size_t *n, char *err, size_t errlen)
{
	char path[128], cmd[64];
	if (!dump_ctl_path(o, path, sizeof(path))) {
		snprintf(err, errlen, "control socket path too long");
		return DUMP_EXIT_NOAGENT;
	}
	int c = dump_ctl_connect(path);
	if (c < 0) {
		snprintf(err, errlen, "no agent at %s: %s", path, strerror(-c));
		return c == -EACCES ? DUMP_EXIT_PERM : DUMP_EXIT_NOAGENT;
	}
	snprintf(cmd, sizeof(cmd), "ringfd pid=%d", (int)pid);
	char *ans = NULL;
	int rfd = -1;
	int e = dump_ctl_call(c, cmd, &ans, &rfd);
	close(c);
	if (e) {
		snprintf(err, errlen, "agent at %s: %s", path, strerror(-e));
		free(ans);
		return DUMP_EXIT_NOAGENT;
	}
	struct json j;
	char jerr[128];
	int rc = DUMP_EXIT_OK;
	if (json_parse(ans, strlen(ans), &j, jerr, sizeof(jerr))) {
		snprintf(err, errlen, "agent answered something that is not JSON (%s)", jerr);
		rc = DUMP_EXIT_ERROR;
	} else if (!json_bool(&j, "ok", false)) {
		const char *m = json_str(&j, "error", "refused");
		snprintf(err, errlen, "agent: %s", m);
		rc = strstr(m, "permission") ? DUMP_EXIT_PERM
		     : strstr(m, "no such") ? DUMP_EXIT_NOPID
					     : DUMP_EXIT_ERROR;
		json_free(&j);
	} else {
		json_free(&j);
		if (rfd < 0) {
			snprintf(err, errlen, "agent sent no ring fd");
			rc = DUMP_EXIT_ERROR;
		}
	}
	free(ans);
	if (rc) {
		if (rfd >= 0)
			close(rfd);
		return rc;
	}
	struct dump_ring *r;
	rc = dump_ring_from_fd(rfd, pid, &r, err, errlen);
	if (rc)
		return rc;
	*rings = malloc(sizeof(**rings));
	if (!*rings) {
		dump_ring_close(r);
		snprintf(err, errlen, "out of memory");
		return DUMP_EXIT_ERROR;
	}
	(*rings)[0] = r;
	*n = 1;
	return DUMP_EXIT_OK;
}

int dump_ring_open_pid(pid_t pid, const struct dump_ring_opts *o, struct dump_ring ***rings,
		       size_t *n, char *err, size_t errlen)
{
	struct dump_proc_ring pr[16];
	char skipped[200] = "";
	*rings = NULL;
	*n = 0;
	int k = o->no_proc ? 0 : dump_proc_rings(pid, pr, 16, skipped, sizeof(skipped));
	if (k == -ENOENT) {
		snprintf(err, errlen, "no such process: %d", (int)pid);
		return DUMP_EXIT_NOPID;
	}
	if (k <= 0) {
		char aerr[256] = "";
		int rc = DUMP_EXIT_NOAGENT;
		if (o->use_agent) {
			rc = ring_from_agent(pid, o, rings, n, aerr, sizeof(aerr));
			if (rc == DUMP_EXIT_OK)
				return rc;
		}
		if (k < 0) {
			snprintf(err, errlen,
				 "permission denied: cannot open the rings of pid %d through /proc (%s)%s%s",
				 (int)pid, strerror(-k), aerr[0] ? "; " : "", aerr);
			return rc == DUMP_EXIT_CORRUPT || rc == DUMP_EXIT_ABI ? rc : DUMP_EXIT_PERM;
		}
		if (rc == DUMP_EXIT_PERM || rc == DUMP_EXIT_CORRUPT || rc == DUMP_EXIT_ABI ||
		    (o->no_proc && rc == DUMP_EXIT_NOAGENT)) {
			snprintf(err, errlen, "pid %d: %s", (int)pid, aerr);
			return rc;
		}
		/* The reasons, when there are any: an fd swapped under us, the agent's answer. */
		snprintf(err, errlen, "process %d has no spanring ring%s%s%s%s%s", (int)pid,
			 skipped[0] || aerr[0] ? " (" : "", skipped, skipped[0] && aerr[0] ? "; " : "",
			 aerr, skipped[0] || aerr[0] ? ")" : "");
		return DUMP_EXIT_NOPID;
	}
	if (skipped[0])
		fprintf(stderr, "spanring-dump: pid %d: %s\n", (int)pid, skipped);
	struct dump_ring **arr = calloc((size_t)k, sizeof(*arr));
	int rc = DUMP_EXIT_OK;
	size_t got = 0;
	for (int i = 0; i < k; i++) {
		if (!arr) {
			close(pr[i].fd);
			continue;
		}
		char e1[256];
		int r1 = dump_ring_from_fd(pr[i].fd, pid, &arr[got], e1, sizeof(e1));
		if (r1 == DUMP_EXIT_OK) {
			/* pid only holds it (the agent, another reader): name the
			 * process that writes it, if it still runs. */
			if (!pr[i].writer)
				dump_ring_set_producer(arr[got],
						       dump_proc_ring_writer(pr[i].dev, pr[i].ino,
									     (pid_t)dump_ring_creator(arr[got])));
			got++;
		} else {
			/* Keep the first error; the others are likely the same. */
			if (rc == DUMP_EXIT_OK)
				snprintf(err, errlen, "pid %d: %s", (int)pid, e1);
			rc = dump_exit_merge(rc, r1);
		}
	}
	if (!arr) {
		snprintf(err, errlen, "out of memory");
		return DUMP_EXIT_ERROR;
	}
	*rings = arr;
	*n = got;
	return rc;
}

/* ---- reading slots --------------------------------------------------------------------- */

static const struct scope_ent *scope_get(struct dump_ring *r, uint64_t off, const char **why)
{
	for (size_t i = 0; i < r->n_scopes; i++)
		if (r->scopes[i].off == off)
			return &r->scopes[i];
	uint32_t len;
	enum sr_read_err e = sr_scope_entry_find(&r->m, off, &len);
	if (e) {
		*why = sr_read_why(e);
		return NULL;
	}
	uint8_t *body = malloc(len ? len : 1);
	if (!body) {
		*why = "out of memory";
		return NULL;
	}
	/* The agent's rule (fields 1 and 3 only) holds here too: what the
	 * agent would refuse is shown as corrupt, not as a scope. */
	e = sr_scope_body_copy(&r->m, off, len, body);
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = NULL;
	if (!e)
		ss = (Opentelemetry__Proto__Trace__V1__ScopeSpans *)sr_pb_unpack(
			&opentelemetry__proto__trace__v1__scope_spans__descriptor, body, len);
	free(body);
	if (!ss) {
		*why = e ? sr_read_why(e) : "scope entry does not decode";
		return NULL;
	}
	struct scope_ent *n = realloc(r->scopes, (r->n_scopes + 1) * sizeof(*n));
	if (!n) {
		protobuf_c_message_free_unpacked(&ss->base, NULL);
		*why = "out of memory";
		return NULL;
	}
	r->scopes = n;
	n[r->n_scopes] = (struct scope_ent){off, ss};
	return &n[r->n_scopes++];
}

/* A snapshot of one slot: copied bytes [pos, head) at data. */
struct snap {
	const uint8_t *data;
	uint64_t pos, head;
	uint64_t gap;      /* bytes skipped before pos (released, maybe overwritten) */
	uint64_t tail;     /* tail read after the copy */
	bool from_tail;    /* pos is that tail (scope_at_tail applies) */
};

/*
 * Copy the committed bytes of slot i from `from` (a record boundary; or
 * UINT64_MAX: from the tail) up to head. Returns 0, or -1 with *why when
 * the slot's indices break the ABI.
 */
static int slot_snapshot(struct dump_ring *r, uint32_t i, uint64_t from, struct snap *sn,
			 const char **why)
{
	const struct spanring_slot_prod *sp = sr_prod(&r->m, i);
	const struct spanring_slot_cons *sc = sr_cons(&r->m, i);
	const uint64_t size = r->l.slot_size, mask = size - 1;
	uint64_t tail1 = 0, head1 = 0;
	int tries;
	memset(sn, 0, sizeof(*sn));
	for (tries = 0; tries < 8; tries++) {
		/* tail first: tail <= head holds for any head read later. */
		tail1 = sr_load_acquire_64(&sc->tail);
		/* C: pairs with the producer's store-release of head (B). */
		head1 = sr_load_acquire_64(&sp->head);
		if (head1 >= tail1 && head1 - tail1 <= size)
			break;
		/* A stale tail against a newer head can exceed the slot for a
		 * moment while the agent and the producer move on; retry. */
	}
	if (tries == 8) {
		*why = head1 < tail1 ? "tail beyond head" : "head beyond tail + slot size";
		return -1;
	}
	if (from != UINT64_MAX && head1 < from) {
		*why = "head moved backwards";
		return -1;
	}
	uint64_t start;
	if (from == UINT64_MAX) {
		start = tail1;
	} else if (head1 - from > size) {
		/* Lapped: the producer reused bytes we never read. The tail is
		 * the first record boundary we know (tail1 >= head1 - size > from). */
		sn->gap = tail1 - from;
		start = tail1;
	} else {
		start = from; /* perhaps released already: checked after the copy */
	}
	uint64_t n = head1 - start;
	memcpy(r->buf, sr_slot_data(&r->m, i) + (start & mask), n);
	/* Order the copy before the loads below (the seqlock-style check):
	 * pairs with the producer's release store of head (ABI.md §10 B) and
	 * the agent's of tail (D); a tail that moved means the copy may hold
	 * bytes overwritten while it was read. */
	sr_fence_acquire();
	uint64_t tail2 = sr_load_acquire_64(&sc->tail);
	uint64_t head2 = sr_load_acquire_64(&sp->head);
	if (tail2 < tail1 || head2 < head1) {
		*why = tail2 < tail1 ? "tail moved backwards" : "head moved backwards";
		return -1;
	}
	uint64_t lap = head2 + r->maxrec + REC_SLACK;
	uint64_t safe = lap > size ? lap - size : 0;
	if (tail2 < safe)
		safe = tail2;
	sn->tail = tail2;
	sn->head = head1;
	if (safe > start) {
		/* Part of the copy may be overwritten: resume at the tail read
		 * after the copy, the first boundary known to be intact. */
		uint64_t resume = tail2 < head1 ? tail2 : head1;
		sn->gap += resume - start;
		start = resume;
	}
	sn->pos = start;
	sn->data = r->buf + (start - (head1 - n));
	sn->from_tail = start == tail1 || start == tail2;
	return 0;
}

struct walk {
	struct dump_ring *r;
	struct dump_out *o;
	uint32_t slot;
	uint64_t scope;
	bool bad;
	char fault[160]; /* when bad: the reason and the offending value */
	uint64_t bad_pos;
	uint64_t spans;
	uint64_t unscoped; /* spans skipped: no known scope */
};

/* Check span record rec and print it when its scope is known. Returns
 * NULL, or why the record is corrupt. */
static const char *walk_span(struct walk *w, const struct sr_rec *rec)
{
	struct dump_ring *r = w->r;
	if (!sr_pb_nesting_ok(&opentelemetry__proto__trace__v1__span__descriptor, rec->payload,
				(size_t)rec->v, SR_PB_MAX_NESTING))
		return "span record does not decode as a Span (malformed, or nested deeper than 32 "
		       "messages)";
	if (w->scope == SPANRING_SCOPE_NONE) {
		/* Read from a position whose scope we could not learn (the
		 * bytes before it were overwritten): the span's scope is
		 * unknown, so it is not printed at all. */
		w->unscoped++;
		return NULL;
	}
	dump_span_t *s = (dump_span_t *)protobuf_c_message_unpack(
		&opentelemetry__proto__trace__v1__span__descriptor, NULL, (size_t)rec->v, rec->payload);
	if (!s)
		return "span record does not decode as a Span";
	const char *sw;
	const struct scope_ent *se = scope_get(r, w->scope, &sw);
	struct dump_ctx c = {
		.resource = r->res,
		.scope = se && se->ss ? se->ss->scope : NULL,
		.scope_schema = se && se->ss ? se->ss->schema_url : NULL,
		.service = r->service,
		.pid = r->pid,
		.slot = (int)w->slot,
	};
	dump_emit(w->o, &c, s);
	w->spans++;
	protobuf_c_message_free_unpacked(&s->base, NULL);
	return NULL;
}

/* Walk records [sn->pos, sn->head). Returns the stream position reached. */
static uint64_t slot_walk(struct walk *w, const struct snap *sn)
{
	struct dump_ring *r = w->r;
	const uint8_t *start = sn->data, *end = sn->data + (sn->head - sn->pos), *q = start;
	while (q < end) {
		struct sr_rec rec;
		enum sr_rec_kind kind = sr_rec_read(q, end, r->maxrec, &rec);
		const char *why = NULL;
		switch (kind) {
		case SR_REC_BAD:
			why = sr_read_why(rec.err);
			break;
		case SR_REC_SPAN:
			why = walk_span(w, &rec);
			break;
		case SR_REC_SCOPE:
			if (scope_get(r, rec.v, &why))
				w->scope = rec.v;
			break;
		case SR_REC_LOST:
			if (w->o->fmt != DUMP_FMT_WATERFALL)
				dump_note(w->o, "pid %d slot %u: the producer dropped %" PRIu64
						" span%s here (ring full or span too large)",
					  (int)r->pid, w->slot, rec.v, rec.v == 1 ? "" : "s");
			break;
		case SR_REC_PAD:
		case SR_REC_UNKNOWN:
			break;
		}
		if (why) {
			w->bad = true;
			sr_rec_describe(w->fault, sizeof(w->fault), why, kind, &rec, r->maxrec);
			break;
		}
		q = rec.next;
	}
	w->bad_pos = sn->pos + (uint64_t)(q - start);
	return w->bad_pos;
}

/*
 * Read slot i from `from` (UINT64_MAX: its tail) to head and emit the
 * spans. On a framing fault that a concurrent release explains (the tail
 * has passed the bad record since), the rest is a gap, not corruption.
 * Returns the position reached, sets *fault on real corruption.
 */
static uint64_t slot_read(struct dump_ring *r, uint32_t i, uint64_t from, uint64_t scope,
			  struct dump_out *o, uint64_t *scope_out, uint64_t *spans, uint64_t *gap,
			  char *fault, size_t faultlen)
{
	struct snap sn;
	const char *why = NULL;
	fault[0] = 0;
	*gap = 0;
	uint64_t skipped = 0;
	if (from != UINT64_MAX && from != 0 && scope == SPANRING_SCOPE_NONE) {
		/* Resuming after a gap, at a position whose scope is unknown:
		 * start at the current tail instead, whose scope the agent
		 * stores (scope_at_tail). What lies between is a gap. */
		uint64_t t = sr_load_acquire_64(&sr_cons(&r->m, i)->tail);
		if (t >= from && t - from <= r->l.slot_size) {
			skipped = t - from;
			from = UINT64_MAX;
		}
	}
	if (slot_snapshot(r, i, from, &sn, &why)) {
		snprintf(fault, faultlen, "slot %u: %s", i, why);
		*scope_out = scope;
		return from;
	}
	*gap = sn.gap + skipped;
	if (sn.from_tail && (from == UINT64_MAX || sn.gap || scope == SPANRING_SCOPE_NONE)) {
		/* The agent stores scope_at_tail before tail; best effort. */
		uint64_t st = sr_load_relaxed_64(&sr_cons(&r->m, i)->scope_at_tail);
		if (st != SPANRING_SCOPE_NONE)
			scope = st;
	}
	struct walk w = {.r = r, .o = o, .slot = i, .scope = scope};
	uint64_t pos = slot_walk(&w, &sn);
	if (w.unscoped)
		dump_note(o, "pid %d slot %u: %" PRIu64 " span%s not shown: scope unknown (read past "
			     "bytes released and overwritten meanwhile)",
			  (int)r->pid, i, w.unscoped, w.unscoped == 1 ? "" : "s");
	*spans = w.spans;
	*scope_out = w.scope;
	if (w.bad) {
		uint64_t t3 = sr_load_acquire_64(&sr_cons(&r->m, i)->tail);
		if (t3 > w.bad_pos && t3 <= sn.head + r->l.slot_size) {
			/* Released (and overwritten) while we were reading. */
			*gap += t3 - w.bad_pos;
			*scope_out = SPANRING_SCOPE_NONE;
			return t3;
		}
		snprintf(fault, faultlen, "slot %u at byte %" PRIu64 ": %s", i, w.bad_pos, w.fault);
	}
	return pos;
}

static uint64_t slot_drops(const struct spanring_slot_prod *sp)
{
	return sr_load_relaxed_64(&sp->drop_full) + sr_load_relaxed_64(&sp->drop_oversize) +
	       sr_load_relaxed_64(&sp->drop_encode);
}

/* ---- show ----------------------------------------------------------------------------- */

static void fmt_bytes(uint64_t b, char *out, size_t n)
{
	if (b >= (1ull << 20) && b % (1ull << 20) == 0)
		snprintf(out, n, "%" PRIu64 " MiB", b >> 20);
	else if (b >= 1024 && b % 1024 == 0)
		snprintf(out, n, "%" PRIu64 " KiB", b >> 10);
	else
		snprintf(out, n, "%" PRIu64 " bytes", b);
}

/* The ring's header, as the summary's first lines. */
static void show_header(struct dump_ring *r, struct dump_out *o)
{
	const struct spanring_ring_hdr *h = &r->hdr;
	uint32_t flags = sr_load_acquire_32(&sr_hdr(&r->m)->flags);
	uint64_t slen = sr_load_acquire_64(&sr_hdr(&r->m)->scope_len);
	const struct spanring_cons_hdr *ch = sr_cons_hdr(&r->m);
	uint32_t agent_abi = ch->agent_abi_major;
	uint64_t epoch = ch->agent_epoch;
	uint32_t wm = ch->watermark_pct;
	FILE *f = o->f;
	char sz[32], ss[32], created[64] = "-";
	fmt_bytes(r->size, sz, sizeof(sz));
	fmt_bytes(r->l.slot_size, ss, sizeof(ss));
	if (h->created_ns) {
		time_t t = (time_t)(h->created_ns / 1000000000ull);
		struct tm tm;
		if (o->utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm))
			strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S", &tm);
	}
	if (r->pid && r->pid == r->holder)
		fprintf(f, "ring of pid %d: service ", (int)r->pid);
	else if (r->pid)
		fprintf(f, "ring of pid %d (read through pid %d, which holds it but does not "
			   "write it): service ", (int)r->pid, (int)r->holder);
	else
		fprintf(f, "ring of a producer that has exited (created by pid %" PRIu32
			   "; read through pid %d, which holds it but does not write it): "
			   "service ", h->creator_pid, (int)r->holder);
	dump_fputs_safe(f, r->service);
	fprintf(f, ", memfd inode %lu, %s\n", (unsigned long)r->ino, sz);
	fprintf(f, "  ABI %" PRIu32 ".%" PRIu32 ", features 0x%" PRIx64
		   ", flags%s%s%s, created %s by pid %" PRIu32 "\n",
		h->abi_major, h->abi_minor, h->features,
		flags & SPANRING_HDR_F_INITIALIZED ? " initialized" : "",
		flags & SPANRING_HDR_F_CLOSED ? " closed" : "", flags ? "" : " none", created,
		h->creator_pid);
	fprintf(f, "  %" PRIu32 " slots x %s, scope table %" PRIu64 "/%" PRIu32
		   " bytes, resource %" PRIu32 "/%" PRIu32 " bytes\n",
		r->l.slot_count, ss, slen, r->l.scope_cap, h->res_len, r->l.res_cap);
	if (agent_abi)
		fprintf(f, "  agent: ABI %" PRIu32 ", epoch %" PRIu64 ", watermark %" PRIu32 "%%\n",
			agent_abi, epoch, wm ? wm : 50);
	else
		fprintf(f, "  agent: none has adopted this ring\n");
	if (!r->res)
		fprintf(f, "  warning: %s\n", r->res_err[0] ? r->res_err : "no resource");
}

/* One line per slot that was ever written (every slot with --verbose). */
static void show_slots(struct dump_ring *r, struct dump_out *o)
{
	FILE *f = o->f;
	fprintf(f, "  %4s %14s %14s %10s %6s %10s %9s %9s %9s %9s\n", "SLOT", "HEAD", "TAIL",
		"FILL", "FILL%", "SPANS", "DROP_FULL", "DROP_BIG", "DROP_ENC", "DOORBELLS");
	uint32_t unused = 0;
	for (uint32_t i = 0; i < r->l.slot_count; i++) {
		const struct spanring_slot_prod *sp = sr_prod(&r->m, i);
		uint64_t tail = sr_load_acquire_64(&sr_cons(&r->m, i)->tail);
		uint64_t head = sr_load_acquire_64(&sp->head);
		uint64_t drops = slot_drops(sp);
		if (!head && !tail && !drops && !o->verbose) {
			unused++; /* never written: one summary line below */
			continue;
		}
		uint64_t fill = head >= tail ? head - tail : 0;
		fprintf(f, "  %4u %14" PRIu64 " %14" PRIu64 " %10" PRIu64 " %5.1f%% %10" PRIu64
			   " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 "%s\n",
			i, head, tail, fill, 100.0 * (double)fill / r->l.slot_size,
			sr_load_relaxed_64(&sp->spans), sr_load_relaxed_64(&sp->drop_full),
			sr_load_relaxed_64(&sp->drop_oversize), sr_load_relaxed_64(&sp->drop_encode),
			sr_load_relaxed_64(&sp->doorbells),
			head < tail || head - tail > r->l.slot_size ? "  (inconsistent)" : "");
	}
	if (unused)
		fprintf(f, "  (%u slot%s never written)\n", unused, unused == 1 ? "" : "s");
}

/* The committed spans not yet released, slot by slot. DUMP_EXIT_*. */
static int show_spans(struct dump_ring *r, struct dump_out *o, bool human)
{
	int rc = DUMP_EXIT_OK;
	FILE *f = o->f;
	if (human && o->fmt == DUMP_FMT_LINES)
		fprintf(f, "committed spans not yet released (read-only; slot by slot):\n");
	uint64_t total = 0;
	for (uint32_t i = 0; i < r->l.slot_count; i++) {
		char fault[192];
		uint64_t scope, n = 0, gap = 0;
		slot_read(r, i, UINT64_MAX, SPANRING_SCOPE_NONE, o, &scope, &n, &gap, fault,
			  sizeof(fault));
		total += n;
		if (gap)
			dump_note(o, "pid %d slot %u: %" PRIu64
				     " bytes were released by the agent while being read; skipped",
				  (int)r->pid, i, gap);
		if (fault[0]) {
			fprintf(stderr, "spanring-dump: pid %d: corrupt ring: %s\n", (int)r->pid, fault);
			rc = DUMP_EXIT_CORRUPT;
		}
	}
	if (human && o->fmt == DUMP_FMT_LINES)
		fprintf(f, "%" PRIu64 " span%s in the ring\n", total, total == 1 ? "" : "s");
	fflush(f);
	return rc;
}

int dump_ring_show(struct dump_ring *r, struct dump_out *o, bool spans)
{
	int rc = DUMP_EXIT_OK;
	bool human = o->fmt != DUMP_FMT_JSON;
	if (human) {
		show_header(r, o);
		show_slots(r, o);
		fflush(o->f);
	}
	if (!r->res && r->res_err[0] && strstr(r->res_err, "decode"))
		rc = DUMP_EXIT_CORRUPT;
	if (!spans)
		return rc;
	int src = show_spans(r, o, human);
	return src != DUMP_EXIT_OK ? src : rc;
}

/* ---- follow ------------------------------------------------------------------------------ */

void dump_ring_follow_start(struct dump_ring *r, enum dump_follow_from from)
{
	for (uint32_t i = 0; i < r->l.slot_count; i++) {
		struct dslot *d = &r->slot[i];
		d->drops = slot_drops(sr_prod(&r->m, i));
		d->scope = SPANRING_SCOPE_NONE;
		/* Stream position 0 is a record boundary; bytes from there on
		 * are intact until the producer wraps (checked when read). */
		d->cursor = from == DUMP_FOLLOW_START ? 0 : UINT64_MAX;
		if (from != DUMP_FOLLOW_HEAD)
			continue;
		/* Start at head, knowing the scope in effect there: walk what
		 * is in the ring without printing it. */
		struct dump_out quiet;
		dump_out_init(&quiet, stdout, DUMP_FMT_LINES);
		quiet.quiet = true;
		char fault[192];
		uint64_t n, gap;
		uint64_t pos = slot_read(r, i, UINT64_MAX, SPANRING_SCOPE_NONE, &quiet, &d->scope, &n,
					 &gap, fault, sizeof(fault));
		if (fault[0]) {
			d->broken = true;
			continue;
		}
		d->cursor = pos;
	}
}

int dump_ring_follow_poll(struct dump_ring *r, struct dump_out *o)
{
	int rc = DUMP_EXIT_OK;
	if (r->dead)
		return rc;
	bool all_broken = true;
	for (uint32_t i = 0; i < r->l.slot_count; i++) {
		struct dslot *d = &r->slot[i];
		if (d->broken)
			continue;
		all_broken = false;
		const struct spanring_slot_prod *sp = sr_prod(&r->m, i);
		uint64_t drops = slot_drops(sp);
		if (drops != d->drops) {
			if (drops > d->drops && o->fmt != DUMP_FMT_WATERFALL)
				dump_note(o, "pid %d slot %u: the producer dropped %" PRIu64 " span%s",
					  (int)r->pid, i, drops - d->drops,
					  drops - d->drops == 1 ? "" : "s");
			d->drops = drops;
		}
		uint64_t head = sr_load_acquire_64(&sp->head);
		if (d->cursor != UINT64_MAX && head == d->cursor)
			continue;
		char fault[192];
		uint64_t n = 0, gap = 0;
		uint64_t pos = slot_read(r, i, d->cursor, d->scope, o, &d->scope, &n, &gap, fault,
					 sizeof(fault));
		if (gap && o->fmt != DUMP_FMT_WATERFALL)
			dump_note(o, "pid %d slot %u: gap: %" PRIu64
				     " bytes were released and overwritten before they could be read",
				  (int)r->pid, i, gap);
		if (fault[0]) {
			fprintf(stderr, "spanring-dump: pid %d: corrupt ring, no longer followed: %s\n",
				(int)r->pid, fault);
			d->broken = true;
			rc = DUMP_EXIT_CORRUPT;
			continue;
		}
		d->cursor = pos;
	}
	if (all_broken || rc == DUMP_EXIT_CORRUPT)
		r->dead = true;
	return rc;
}
