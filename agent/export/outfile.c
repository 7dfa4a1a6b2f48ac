/* SPDX-License-Identifier: MIT */
/* Output files and the retry queue of the file-writing exporters. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "log.h"

/*
 * Open f->path for appending, creating it with exactly f->mode. An
 * existing non-empty regular file is read by f->check (at start, and at a
 * reopen that finds another file than the one open before) and must be
 * the exporter's own output; a cut record at its end is truncated. 0 or
 * -errno with a message naming the path in err.
 */
/* Open the output for appending, creating it with exactly f->mode when
 * it does not exist (*created). fd, or -1 with errno set. */
static int outfile_open_fd(const struct outfile *f, bool *created)
{
	int fd;
	*created = false;
	for (int tries = 0;; tries++) {
		fd = open(f->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
		if (fd >= 0 || errno != ENOENT || tries == 3)
			break;
		/* The file does not exist: create it, with exactly the
		 * configured mode whatever the umask (fchmod below). */
		fd = open(f->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_CREAT | O_EXCL,
			  f->mode & 0777);
		if (fd >= 0) {
			*created = true;
			break;
		}
		if (errno != EEXIST)
			break; /* EEXIST: created meanwhile by someone else: open it */
	}
	return fd;
}

/* An existing file the agent did not write last (fd, f->size bytes) must
 * be its kind of output: refused otherwise, a torn last record cut. 0 or
 * -errno with err set (fd stays open). */
static int outfile_check_existing(struct outfile *f, int fd, char *err, size_t errlen)
{
	/* Reading needs a readable fd: the same file, read-only. */
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	int rfd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (rfd < 0) {
		int e = errno;
		agent_errf(err, errlen,
		     "%s: %s exists (%llu bytes) and cannot be read to check that it is "
		     "spanring output: %s; not appending to it",
		     f->label, f->path, (unsigned long long)f->size, strerror(e));
		return -e;
	}
	const char *why = "";
	int64_t good = f->check(rfd, f->size, &why);
	close(rfd);
	if (good < 0) {
		agent_errf(err, errlen,
		     "%s: %s exists and is not spanring output (%s); it is left as it is: "
		     "move it away or choose another path",
		     f->label, f->path, why);
		return -EINVAL;
	}
	if ((uint64_t)good < f->size) {
		/* A record cut short (the agent was killed while writing). */
		log_warn("%s: %s ends with an incomplete record; truncating %llu bytes",
			 f->label, f->path, (unsigned long long)(f->size - (uint64_t)good));
		if (ftruncate(fd, (off_t)good) == 0)
			f->size = (uint64_t)good;
		else
			log_warn("%s: cannot truncate %s: %s", f->label, f->path, strerror(errno));
	}
	return 0;
}

static int outfile_do_open(struct outfile *f, bool at_start, char *err, size_t errlen)
{
	if (f->is_stdout) {
		f->fd = STDOUT_FILENO;
		f->size = 0;
		return 0;
	}
	bool created;
	int fd = outfile_open_fd(f, &created);
	if (fd < 0) {
		int e = errno;
		agent_errf(err, errlen, "%s: cannot %s %s: %s", f->label,
		     e == ENOENT ? "create" : "open", f->path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		agent_errf(err, errlen, "%s: cannot stat %s: %s", f->label, f->path, strerror(e));
		close(fd);
		return -e;
	}
	if (created && fchmod(fd, f->mode & 0777) < 0)
		log_warn("%s: cannot set mode %04o on %s: %s", f->label, (unsigned)f->mode,
			 f->path, strerror(errno));
	f->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	bool same = st.st_dev == f->dev && st.st_ino == f->ino && !at_start;
	int rc;
	if (f->check && !created && !same && S_ISREG(st.st_mode) && f->size &&
	    (rc = outfile_check_existing(f, fd, err, errlen))) {
		close(fd);
		return rc;
	}
	if (at_start && !created && S_ISREG(st.st_mode) && (st.st_mode & 0777 & ~f->mode))
		log_warn("%s: %s exists with mode %04o, more open than output_mode %04o; "
			 "its mode is left as it is",
			 f->label, f->path, (unsigned)(st.st_mode & 0777), (unsigned)f->mode);
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->fd = fd;
	return 0;
}

int outfile_open(struct outfile *f, const char *label, const char *path, uint64_t rotate_bytes,
		 uint32_t keep, uint32_t mode, outfile_check_fn check, char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->label = label;
	f->path = strdup(path);
	if (!f->path) {
		agent_errf(err, errlen, "%s: out of memory", label);
		return -ENOMEM;
	}
	f->is_stdout = strcmp(path, "-") == 0;
	f->rotate_bytes = f->is_stdout ? 0 : rotate_bytes;
	f->rotate_keep = keep;
	f->mode = mode;
	f->check = check;
	int rc = outfile_do_open(f, true, err, errlen);
	if (rc) {
		free(f->path);
		f->path = NULL;
	}
	return rc;
}

int outfile_reopen(struct outfile *f)
{
	if (f->is_stdout)
		return 0;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	char err[512];
	int rc = outfile_do_open(f, false, err, sizeof(err));
	if (rc)
		AGENT_LOG_RL_OF(&f->log_rl, AGENT_LOG_ERROR, "%s", err);
	return rc;
}

void outfile_close(struct outfile *f)
{
	if (f->fd >= 0 && !f->is_stdout)
		close(f->fd);
	f->fd = -1;
	free(f->path);
	f->path = NULL;
	free(f->scratch);
	f->scratch = NULL;
}

/* path -> path.1 -> ... -> path.keep (dropped beyond). */
static int outfile_rotate(struct outfile *f)
{
	char from[PATH_MAX], to[PATH_MAX];
	if (f->rotate_keep == 0) {
		if (unlink(f->path) < 0 && errno != ENOENT)
			return -errno;
	} else {
		for (uint32_t i = f->rotate_keep; i >= 1; i--) {
			if (i == 1)
				snprintf(from, sizeof(from), "%s", f->path);
			else
				snprintf(from, sizeof(from), "%s.%u", f->path, i - 1);
			snprintf(to, sizeof(to), "%s.%u", f->path, i);
			if (rename(from, to) < 0 && errno != ENOENT)
				log_warn("%s: rotating: rename %s -> %s: %s", f->label, from, to,
					 strerror(errno));
		}
	}
	f->rotations++;
	return outfile_reopen(f);
}

int outfile_write(struct outfile *f, const struct iovec *iov, size_t n, uint64_t total)
{
	if (f->fd < 0) {
		int err = outfile_reopen(f);
		if (err)
			return err;
	}
	if (f->rotate_bytes && f->size && f->size + total > f->rotate_bytes) {
		int err = outfile_rotate(f);
		if (err) {
			log_warn("%s: rotating %s: %s", f->label, f->path, strerror(-err));
			if (f->fd < 0)
				return err;
		}
	}
	if (n > f->cap_scratch) {
		struct iovec *s = realloc(f->scratch, n * sizeof(*s));
		if (!s)
			return -ENOMEM;
		f->scratch = s;
		f->cap_scratch = n;
	}
	memcpy(f->scratch, iov, n * sizeof(*iov));
	exp_writev_fn wv = f->writev_fn ? f->writev_fn : writev;
	struct iovec *v = f->scratch;
	size_t left = n;
	uint64_t done = 0;
	while (left) {
		int cnt = left > IOV_MAX ? IOV_MAX : (int)left;
		if (f->pre_writev)
			f->pre_writev(f->pre_ctx, v, (size_t)(v - f->scratch), cnt);
		ssize_t r = wv(f->fd, v, cnt);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int err = r < 0 ? -errno : -EIO;
			/* All or nothing: cut the partial record off again. */
			if (done && !f->is_stdout && ftruncate(f->fd, (off_t)f->size) < 0)
				log_error("%s: %s: cannot truncate a partial write: %s", f->label, f->path,
					  strerror(errno));
			return err;
		}
		done += (uint64_t)r;
		size_t k = (size_t)r;
		while (left && k >= v->iov_len) {
			k -= v->iov_len;
			v++;
			left--;
		}
		if (left && k) {
			v->iov_base = (uint8_t *)v->iov_base + k;
			v->iov_len -= k;
		}
	}
	f->size += done;
	(void)total;
	return 0;
}

/* ---- retry queue ------------------------------------------------------------- */

static void wq_on_timer(struct loop_timer *t);

void wq_init(struct wq *q, struct exporter *e, int (*write)(struct exporter *, struct batch *),
	     uint64_t retry_max_us, const char *path)
{
	memset(q, 0, sizeof(*q));
	q->e = e;
	q->path = path;
	q->write = write;
	q->retry_max_ns = retry_max_us * 1000;
	q->timer.fn = wq_on_timer;
}

static int wq_push(struct wq *q, struct batch *b, uint64_t now)
{
	if (q->len == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 8;
		struct wq_item *n = malloc(cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < q->len; i++)
			n[i] = q->items[(q->first + i) % q->cap];
		free(q->items);
		q->items = n;
		q->cap = cap;
		q->first = 0;
	}
	q->items[(q->first + q->len) % q->cap] = (struct wq_item){.b = b, .first_fail_ns = now};
	q->len++;
	q->e->host->hold(b);
	q->e->st.held++;
	return 0;
}

static void wq_pop(struct wq *q)
{
	struct batch *b = q->items[q->first].b;
	q->first = (q->first + 1) % q->cap;
	q->len--;
	q->e->st.held--;
	q->e->host->release(b);
}

static void wq_let_go(struct wq *q, const char *why)
{
	struct wq_item *it = &q->items[q->first];
	q->e->st.let_go_batches++;
	q->e->st.let_go_spans += it->b->spans;
	agent_log_rl(&q->let_go_rl, AGENT_LOG_WARN, "exporter %s: letting go of a batch of %llu spans: %s",
		     q->e->name, (unsigned long long)it->b->spans, why);
	wq_pop(q);
}

static void wq_arm(struct wq *q)
{
	q->backoff_ns = q->backoff_ns ? q->backoff_ns * 2 : 100000000ull;
	if (q->backoff_ns > 5000000000ull)
		q->backoff_ns = 5000000000ull;
	loop_timer_arm(q->e->host->loop, &q->timer, agent_now_ns() + q->backoff_ns);
}

/* Write queued batches in order; stop at the first failure. */
static void wq_run(struct wq *q, bool ignore_age)
{
	while (q->len) {
		struct wq_item *it = &q->items[q->first];
		uint64_t now = agent_now_ns();
		if (!ignore_age && now - it->first_fail_ns > q->retry_max_ns) {
			wq_let_go(q, "retry time exhausted");
			continue;
		}
		q->e->st.retries++;
		int err = q->write(q->e, it->b);
		if (err) {
			q->e->st.failures++;
			AGENT_LOG_RL_OF(&q->log_rl, AGENT_LOG_WARN, "exporter %s: retry failed: %s: %s", q->e->name,
				     q->path ? q->path : "?", strerror(-err));
			wq_arm(q);
			return;
		}
		wq_pop(q);
	}
	q->backoff_ns = 0;
	loop_timer_cancel(q->e->host->loop, &q->timer);
}

static void wq_on_timer(struct loop_timer *t)
{
	struct wq *q = container_of(t, struct wq, timer);
	wq_run(q, false);
}

int wq_submit(struct wq *q, struct batch *b)
{
	if (q->len) {
		/* Keep the output in order behind the batches that wait. */
		if (wq_push(q, b, agent_now_ns())) {
			q->e->st.let_go_batches++;
			q->e->st.let_go_spans += b->spans;
			return -ENOMEM;
		}
		return 0;
	}
	int err = q->write(q->e, b);
	if (!err)
		return 0;
	q->e->st.failures++;
	AGENT_LOG_RL_OF(&q->log_rl, AGENT_LOG_WARN, "exporter %s: write failed: %s: %s; will retry", q->e->name,
		     q->path ? q->path : "?", strerror(-err));
	if (q->retry_max_ns == 0 || wq_push(q, b, agent_now_ns())) {
		q->e->st.let_go_batches++;
		q->e->st.let_go_spans += b->spans;
		return err;
	}
	wq_arm(q);
	return 0;
}

size_t wq_flush(struct wq *q, uint64_t deadline_ns)
{
	(void)deadline_ns;
	if (q->len && !q->timer.armed)
		wq_run(q, true);
	return q->len;
}

void wq_fini(struct wq *q)
{
	if (q->e && q->e->host)
		loop_timer_cancel(q->e->host->loop, &q->timer);
	/* At exit the agent does not release what was not delivered; its
	 * shutdown line says which spans stay in the rings of running
	 * producers and which are lost with the rings of exited ones. */
	bool exiting = q->e && q->e->host && *q->e->host->no_release;
	if (exiting && q->len)
		log_debug("exporter %s: dropping, unreleased, %zu undelivered batches", q->e->name,
			  q->len);
	while (q->len) {
		if (exiting)
			wq_pop(q);
		else
			wq_let_go(q, "exporter shutting down");
	}
	free(q->items);
	q->items = NULL;
}
