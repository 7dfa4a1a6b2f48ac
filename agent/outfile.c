/* SPDX-License-Identifier: MIT */
/* Output files and the retry queue of the file-writing exporters. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"

static int outfile_do_open(struct outfile *f, int64_t (*repair)(int fd, uint64_t size))
{
	if (f->is_stdout) {
		f->fd = STDOUT_FILENO;
		f->size = 0;
		return 0;
	}
	int fd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	f->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	if (repair && S_ISREG(st.st_mode) && f->size) {
		/* Reading needs a readable fd: a second, read-only one. */
		int rfd = open(f->path, O_RDONLY | O_CLOEXEC);
		int64_t good = rfd >= 0 ? repair(rfd, f->size) : (int64_t)f->size;
		if (rfd >= 0)
			close(rfd);
		if (good < 0) {
			log_error("exporter: %s exists and is not a spanring output file; "
				  "not appending to it",
				  f->path);
			close(fd);
			return -EINVAL;
		}
		if ((uint64_t)good < f->size) {
			/* A record cut short (the agent was killed while writing). */
			log_warn("exporter: %s ends with an incomplete record; truncating %llu "
				 "bytes",
				 f->path, (unsigned long long)(f->size - (uint64_t)good));
			if (ftruncate(fd, (off_t)good) == 0)
				f->size = (uint64_t)good;
		}
	}
	f->fd = fd;
	return 0;
}

int outfile_open(struct outfile *f, const char *path, uint64_t rotate_bytes, uint32_t keep,
		 int64_t (*repair)(int fd, uint64_t size))
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->path = strdup(path);
	if (!f->path)
		return -ENOMEM;
	f->is_stdout = strcmp(path, "-") == 0;
	f->rotate_bytes = f->is_stdout ? 0 : rotate_bytes;
	f->rotate_keep = keep;
	int err = outfile_do_open(f, repair);
	if (err) {
		free(f->path);
		f->path = NULL;
	}
	return err;
}

int outfile_reopen(struct outfile *f)
{
	if (f->is_stdout)
		return 0;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	return outfile_do_open(f, NULL);
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
				log_warn("exporter: rename %s -> %s: %s", from, to, strerror(errno));
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
			log_warn("exporter: rotating %s: %s", f->path, strerror(-err));
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
				log_error("exporter: %s: cannot truncate a partial write: %s", f->path,
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
	     uint64_t retry_max_us)
{
	memset(q, 0, sizeof(*q));
	q->e = e;
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
	batch_ref(b);
	q->e->st.held++;
	return 0;
}

static void wq_pop(struct wq *q)
{
	struct batch *b = q->items[q->first].b;
	q->first = (q->first + 1) % q->cap;
	q->len--;
	q->e->st.held--;
	batch_unref(b);
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
	loop_timer_arm(&q->e->ag->loop, &q->timer, agent_now_ns() + q->backoff_ns);
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
			AGENT_LOG_RL(AGENT_LOG_WARN, "exporter %s: retry failed: %s", q->e->name,
				     strerror(-err));
			wq_arm(q);
			return;
		}
		wq_pop(q);
	}
	q->backoff_ns = 0;
	loop_timer_cancel(&q->e->ag->loop, &q->timer);
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
	AGENT_LOG_RL(AGENT_LOG_WARN, "exporter %s: write failed: %s; will retry", q->e->name,
		     strerror(-err));
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
	if (q->e && q->e->ag)
		loop_timer_cancel(&q->e->ag->loop, &q->timer);
	/* At exit nothing is lost: the agent does not release what was not
	 * delivered, the spans stay in the rings for the next agent. */
	bool exiting = q->e && q->e->ag && q->e->ag->no_release;
	if (exiting && q->len)
		log_warn("exporter %s: %zu undelivered batches stay in the rings", q->e->name, q->len);
	while (q->len) {
		if (exiting)
			wq_pop(q);
		else
			wq_let_go(q, "exporter shutting down");
	}
	free(q->items);
	q->items = NULL;
}
