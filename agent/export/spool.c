/* SPDX-License-Identifier: MIT */
/* The per-instance disk spool (spool.h). */
#include "spool.h"
#include "pbwire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define SEG_MIN (256u * 1024u)
#define SEG_MAX_DEFAULT (64u * 1024u * 1024u)

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void seg_path(const struct spool *sp, uint64_t seq, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%016" PRIx64 ".pb", sp->dir, seq);
}

/* mkdir -p, mode 0700 (spans are private data). */
static int mkdirs(const char *path)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int64_t spool_count_spans(const uint8_t *p, size_t len)
{
	/* ExportTraceServiceRequest{1: ResourceSpans{2: ScopeSpans{2: Span}}} */
	const uint8_t *e = p + len;
	int64_t n = 0;
	while (p < e) {
		uint64_t tag, l;
		if (pb_get_varint(&p, e, &tag))
			return -1;
		if ((tag & 7) != 2 || pb_get_varint(&p, e, &l) || l > (uint64_t)(e - p))
			return -1;
		const uint8_t *rs = p, *rse = p + l;
		p = rse;
		if (tag >> 3 != 1)
			continue;
		while (rs < rse) {
			uint64_t t2, l2;
			if (pb_get_varint(&rs, rse, &t2))
				return -1;
			if ((t2 & 7) == 0) {
				if (pb_get_varint(&rs, rse, &l2))
					return -1;
				continue;
			}
			if ((t2 & 7) != 2 || pb_get_varint(&rs, rse, &l2) || l2 > (uint64_t)(rse - rs))
				return -1;
			const uint8_t *ss = rs, *sse = rs + l2;
			rs = sse;
			if (t2 >> 3 != 2)
				continue;
			while (ss < sse) {
				uint64_t t3, l3;
				if (pb_get_varint(&ss, sse, &t3))
					return -1;
				if ((t3 & 7) == 0) {
					if (pb_get_varint(&ss, sse, &l3))
						return -1;
					continue;
				}
				if ((t3 & 7) != 2 || pb_get_varint(&ss, sse, &l3) ||
				    l3 > (uint64_t)(sse - ss))
					return -1;
				ss += l3;
				if (t3 >> 3 == 2)
					n++;
			}
		}
	}
	return n;
}

static int read_all(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(fd, buf + got, len - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	return 0;
}

/* Walk the records of a segment from off: spans and records, and where the
 * last whole record ends (a torn tail after a crash is cut there). */
static int seg_scan(const char *path, uint64_t off, uint64_t *spans, uint64_t *records,
		    uint64_t *end)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	uint64_t size = (uint64_t)st.st_size, pos = off;
	*spans = *records = 0;
	uint8_t *buf = NULL;
	size_t cap = 0;
	while (pos < size) {
		uint8_t hdr[10];
		size_t hl = size - pos < 10 ? (size_t)(size - pos) : 10;
		if (read_all(fd, hdr, hl, pos))
			break;
		const uint8_t *q = hdr;
		uint64_t len;
		if (pb_get_varint(&q, hdr + hl, &len) || len > size - pos - (uint64_t)(q - hdr))
			break;
		if (len > cap) {
			uint8_t *nb = realloc(buf, len);
			if (!nb)
				break;
			buf = nb;
			cap = len;
		}
		if (read_all(fd, buf, len, pos + (uint64_t)(q - hdr)))
			break;
		int64_t n = spool_count_spans(buf, len);
		if (n < 0)
			break;
		*spans += (uint64_t)n;
		(*records)++;
		pos += (uint64_t)(q - hdr) + len;
	}
	free(buf);
	close(fd);
	*end = pos;
	return 0;
}

static int seq_cmp(const void *a, const void *b)
{
	const struct spool_seg *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int seg_push(struct spool *sp, uint64_t seq)
{
	if (sp->n == sp->cap_segs) {
		size_t nc = sp->cap_segs ? sp->cap_segs * 2 : 16;
		struct spool_seg *ns = realloc(sp->segs, nc * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		sp->segs = ns;
		sp->cap_segs = nc;
	}
	memset(&sp->segs[sp->n], 0, sizeof(sp->segs[0]));
	sp->segs[sp->n].seq = seq;
	sp->n++;
	return 0;
}

static void write_pos(struct spool *sp, uint64_t seq, uint64_t off)
{
	char path[PATH_MAX], tmp[PATH_MAX], line[64];
	snprintf(path, sizeof(path), "%s/pos", sp->dir);
	snprintf(tmp, sizeof(tmp), "%s/pos.tmp", sp->dir);
	int n = snprintf(line, sizeof(line), "%016" PRIx64 " %" PRIu64 "\n", seq, off);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	bool ok = write(fd, line, (size_t)n) == n;
	close(fd);
	if (ok)
		(void)rename(tmp, path);
}

/* The position delivered up to (the file pos: segment, offset); 0 0 when
 * there is none. */
static void pos_read(const char *dir, uint64_t *pseq, uint64_t *poff)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/pos", dir);
	*pseq = *poff = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (fscanf(f, "%" SCNx64 " %" SCNu64, pseq, poff) != 2)
		*pseq = *poff = 0;
	fclose(f);
}

/* The segment files of the directory, in sequence order. 0 or -ENOMEM. */
static int segs_list(struct spool *sp, DIR *d)
{
	struct dirent *de;
	while ((de = readdir(d))) {
		uint64_t seq;
		char tail[8];
		if (strlen(de->d_name) != 19 || sscanf(de->d_name, "%16" SCNx64 "%7s", &seq, tail) != 2 ||
		    strcmp(tail, ".pb") != 0)
			continue;
		if (seg_push(sp, seq))
			return -ENOMEM;
	}
	if (sp->n > 1)
		qsort(sp->segs, sp->n, sizeof(sp->segs[0]), seq_cmp);
	return 0;
}

/* Keep the segments not wholly delivered (before pseq: deleted) that can
 * be read, a torn last record cut; count what they hold. The sequence
 * number of the next new segment. */
static uint64_t segs_check(struct spool *sp, uint64_t pseq)
{
	char path[PATH_MAX];
	size_t keep = 0;
	for (size_t i = 0; i < sp->n; i++) {
		struct spool_seg *s = &sp->segs[i];
		seg_path(sp, s->seq, path, sizeof(path));
		if (s->seq < pseq) { /* delivered wholly */
			unlink(path);
			continue;
		}
		struct stat st;
		uint64_t spans, records, end;
		if (stat(path, &st) < 0 || seg_scan(path, 0, &spans, &records, &end))
			continue;
		if (end < (uint64_t)st.st_size) {
			log_warn("exporter %s: spool segment %s: torn record at %llu (of %llu bytes) cut",
				 sp->name, path, (unsigned long long)end,
				 (unsigned long long)st.st_size);
			if (truncate(path, (off_t)end) < 0)
				continue;
		}
		s->bytes = end;
		s->spans = spans;
		s->records = records;
		s->created_ms = (uint64_t)st.st_mtim.tv_sec * 1000;
		sp->segs[keep++] = *s;
	}
	sp->n = keep;
	uint64_t next_seq = 1;
	for (size_t i = 0; i < sp->n; i++) {
		sp->bytes += sp->segs[i].bytes;
		sp->pending_spans += sp->segs[i].spans;
		sp->pending_records += sp->segs[i].records;
		next_seq = sp->segs[i].seq + 1;
	}
	/* New segments come after what pos names, whatever was deleted:
	 * a segment numbered below pos would be taken as delivered. */
	return next_seq <= pseq ? pseq + 1 : next_seq;
}

/* Records of the first segment before poff were delivered: reading
 * starts after them. */
static void segs_skip_delivered(struct spool *sp, uint64_t pseq, uint64_t poff)
{
	if (!sp->n || sp->segs[0].seq != pseq || !poff)
		return;
	char path[PATH_MAX];
	uint64_t spans, records, end;
	seg_path(sp, pseq, path, sizeof(path));
	if (poff > sp->segs[0].bytes)
		poff = sp->segs[0].bytes;
	if (seg_scan(path, poff, &spans, &records, &end))
		return;
	uint64_t sp0 = sp->segs[0].spans - spans, rec0 = sp->segs[0].records - records;
	sp->pending_spans -= sp0;
	sp->pending_records -= rec0;
	sp->rspans = sp0;
	sp->roff = poff;
}

int spool_open(struct spool *sp, const char *dir, uint64_t cap, const char *name)
{
	memset(sp, 0, sizeof(*sp));
	sp->wfd = -1;
	snprintf(sp->name, sizeof(sp->name), "%s", name);
	sp->cap = cap;
	sp->seg_max = cap / 8;
	if (sp->seg_max > SEG_MAX_DEFAULT)
		sp->seg_max = SEG_MAX_DEFAULT;
	if (sp->seg_max < SEG_MIN)
		sp->seg_max = SEG_MIN;
	sp->dir = strdup(dir);
	if (!sp->dir)
		return -ENOMEM;
	/* The directory is made at the first write (the failure path). */
	/* The position delivered up to, then the segments. */
	uint64_t pseq, poff;
	pos_read(dir, &pseq, &poff);
	DIR *d = opendir(dir);
	if (!d && errno == ENOENT) {
		sp->rseq = 1;
		return seg_push(sp, 1);
	}
	if (!d) {
		int rc = -errno;
		log_error("exporter %s: spool directory %s: %s", name, dir, strerror(-rc));
		return rc;
	}
	int rc = segs_list(sp, d);
	closedir(d);
	if (rc)
		return rc;
	uint64_t next_seq = segs_check(sp, pseq);
	sp->rseq = sp->n ? sp->segs[0].seq : next_seq;
	sp->roff = 0;
	segs_skip_delivered(sp, pseq, poff);
	/* Writes go to a new segment: the old ones stay as they are. */
	if (seg_push(sp, next_seq))
		return -ENOMEM;
	if (sp->n == 1)
		sp->rseq = next_seq;
	if (sp->pending_records)
		log_info("exporter %s: spool %s holds %llu spans in %llu records (%llu bytes) to "
			 "replay",
			 name, dir, (unsigned long long)sp->pending_spans,
			 (unsigned long long)sp->pending_records, (unsigned long long)sp->bytes);
	return 0;
}

void spool_close(struct spool *sp)
{
	if (sp->wfd >= 0)
		close(sp->wfd);
	/* An empty last segment is not left behind. */
	if (sp->n && sp->segs[sp->n - 1].bytes == 0 && sp->dir) {
		char path[PATH_MAX];
		seg_path(sp, sp->segs[sp->n - 1].seq, path, sizeof(path));
		unlink(path);
	}
	free(sp->segs);
	free(sp->dir);
	memset(sp, 0, sizeof(*sp));
	sp->wfd = -1;
}

/* Let the oldest segment go (not the one written to). */
static void drop_oldest(struct spool *sp)
{
	struct spool_seg *s = &sp->segs[0];
	char path[PATH_MAX];
	seg_path(sp, s->seq, path, sizeof(path));
	uint64_t spans = s->spans, records = s->records;
	if (s->seq < sp->rseq) { /* loaded wholly: its records are in memory */
		spans = records = 0;
	} else if (s->seq == sp->rseq) { /* partly loaded: only the rest is let go */
		spans -= sp->rspans;
		uint64_t spans_r, rec_r, end;
		if (seg_scan(path, sp->roff, &spans_r, &rec_r, &end) == 0)
			records = rec_r;
		sp->rseq = sp->segs[1].seq;
		sp->roff = 0;
		sp->rspans = 0;
	}
	unlink(path);
	sp->let_go_spans += spans;
	sp->let_go_records += records;
	sp->let_go_segments++;
	sp->pending_spans -= spans;
	sp->pending_records -= records;
	sp->bytes -= s->bytes;
	memmove(&sp->segs[0], &sp->segs[1], (sp->n - 1) * sizeof(sp->segs[0]));
	sp->n--;
	AGENT_LOG_RL_OF(&sp->log_rl, AGENT_LOG_WARN,
			"exporter %s: spool full (%llu bytes): letting go of its oldest segment, "
			"%llu spans in %llu records (%llu spans let go so far)",
			sp->name, (unsigned long long)sp->cap, (unsigned long long)spans,
			(unsigned long long)records, (unsigned long long)sp->let_go_spans);
}

int spool_put(struct spool *sp, const struct iovec *iov, size_t niov, size_t len,
	      uint64_t spans)
{
	uint64_t t0 = agent_now_ns();
	uint8_t hdr[10];
	size_t hl = (size_t)(pb_put_varint(hdr, len) - hdr);
	uint64_t rec = hl + len;
	if (rec > sp->cap)
		return -EFBIG;
	struct spool_seg *w = &sp->segs[sp->n - 1];
	if (w->bytes && w->bytes + rec > sp->seg_max) {
		if (sp->wfd >= 0)
			close(sp->wfd);
		sp->wfd = -1;
		if (seg_push(sp, w->seq + 1))
			return -ENOMEM;
		w = &sp->segs[sp->n - 1];
	}
	while (sp->bytes + rec > sp->cap && sp->n > 1)
		drop_oldest(sp);
	w = &sp->segs[sp->n - 1];
	char path[PATH_MAX];
	if (sp->wfd < 0) {
		int rc = mkdirs(sp->dir);
		if (rc) {
			sp->write_errors++;
			AGENT_LOG_RL_OF(&sp->log_rl, AGENT_LOG_ERROR,
					"exporter %s: spool directory %s: %s", sp->name,
					sp->dir, strerror(-rc));
			return rc;
		}
		seg_path(sp, w->seq, path, sizeof(path));
		sp->wfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (sp->wfd < 0) {
			sp->write_errors++;
			return -errno;
		}
		if (!w->created_ms)
			w->created_ms = wall_ms();
	}
	/* One writev: the length and the message straight from the ring. */
	struct iovec v[1 + 1024];
	size_t done = 0;
	size_t i = 0;
	bool first = true;
	while (first || i < niov) {
		size_t n = 0;
		if (first)
			v[n++] = (struct iovec){hdr, hl};
		while (i < niov && n < sizeof(v) / sizeof(v[0]))
			v[n++] = iov[i++];
		first = false;
		size_t want = 0;
		for (size_t k = 0; k < n; k++)
			want += v[k].iov_len;
		ssize_t r = writev(sp->wfd, v, (int)n);
		if (r != (ssize_t)want) {
			/* A short write leaves a torn record: cut it. */
			int e = r < 0 ? errno : ENOSPC;
			if (ftruncate(sp->wfd, (off_t)w->bytes) < 0) {
				/* the next open cuts it (seg_scan) */
			}
			sp->write_errors++;
			AGENT_LOG_RL_OF(&sp->log_rl, AGENT_LOG_ERROR,
					"exporter %s: spool write: %s", sp->name,
					strerror(e));
			return -e;
		}
		done += (size_t)r;
	}
	(void)done;
	w->bytes += rec;
	w->spans += spans;
	w->records++;
	sp->bytes += rec;
	sp->pending_spans += spans;
	sp->pending_records++;
	sp->written_records++;
	sp->written_spans += spans;
	sp->written_bytes += rec;
	sp->write_ns += agent_now_ns() - t0;
	return 0;
}

static struct spool_seg *seg_find(struct spool *sp, uint64_t seq)
{
	for (size_t i = 0; i < sp->n; i++)
		if (sp->segs[i].seq == seq)
			return &sp->segs[i];
	return NULL;
}

/* What one load reads: whole records from a segment, concatenated. */
struct load {
	uint8_t *out;
	size_t len, cap;
	uint64_t pos;       /* after the last record read */
	uint64_t spans, records;
};

/* Read records of segment s (open as fd) from ld->pos while they fit in
 * max bytes (at least one). 0, or -errno / -EBADMSG where reading stopped
 * (what was read before stays in ld). */
static int seg_read(const struct spool_seg *s, int fd, size_t max, struct load *ld)
{
	while (ld->pos < s->bytes) {
		uint8_t hdr[10];
		size_t hl = s->bytes - ld->pos < 10 ? (size_t)(s->bytes - ld->pos) : 10;
		int rc = read_all(fd, hdr, hl, ld->pos);
		if (rc)
			return rc;
		const uint8_t *q = hdr;
		uint64_t l;
		if (pb_get_varint(&q, hdr + hl, &l) || l > s->bytes - ld->pos)
			return -EBADMSG;
		if (ld->len && ld->len + l > max)
			return 0;
		if (ld->len + l > ld->cap) {
			size_t nc = ld->len + l > 2 * ld->cap ? ld->len + l : 2 * ld->cap;
			uint8_t *nb = realloc(ld->out, nc);
			if (!nb)
				return -ENOMEM;
			ld->out = nb;
			ld->cap = nc;
		}
		if ((rc = read_all(fd, ld->out + ld->len, l, ld->pos + (uint64_t)(q - hdr))))
			return rc;
		int64_t n = spool_count_spans(ld->out + ld->len, l);
		if (n < 0)
			return -EBADMSG;
		ld->len += l;
		ld->spans += (uint64_t)n;
		ld->records++;
		ld->pos += (uint64_t)(q - hdr) + l;
	}
	return 0;
}

/* A record of s at pos cannot be read back: the rest of the segment is
 * let go. */
static void seg_let_go_rest(struct spool *sp, struct spool_seg *s, const char *path, uint64_t pos)
{
	log_error("exporter %s: spool segment %s: bad record at %llu; skipping the "
		  "rest of the segment",
		  sp->name, path, (unsigned long long)pos);
	uint64_t rest_sp = s->spans - sp->rspans;
	sp->let_go_spans += rest_sp;
	sp->pending_spans -= rest_sp;
	sp->pending_records -= s->records;
	s->bytes = sp->roff;
}

int spool_load(struct spool *sp, size_t max, uint8_t **buf, size_t *len, uint64_t *spans,
	       uint64_t *seq, uint64_t *off)
{
	uint64_t t0 = agent_now_ns();
	*buf = NULL;
	*len = 0;
	*spans = 0;
	if (!sp->pending_records)
		return -ENOENT;
	struct spool_seg *s = seg_find(sp, sp->rseq);
	while (s && sp->roff >= s->bytes && s != &sp->segs[sp->n - 1]) {
		s++; /* the next segment */
		sp->rseq = s->seq;
		sp->roff = 0;
		sp->rspans = 0;
	}
	if (!s || sp->roff >= s->bytes)
		return -ENOENT;
	char path[PATH_MAX];
	seg_path(sp, s->seq, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct load ld = {.pos = sp->roff};
	int rc = seg_read(s, fd, max, &ld);
	close(fd);
	if (!ld.records) {
		free(ld.out);
		if (rc == -EBADMSG)
			seg_let_go_rest(sp, s, path, ld.pos);
		return rc ? rc : -ENOENT;
	}
	sp->roff = ld.pos;
	sp->rspans += ld.spans;
	sp->pending_spans -= ld.spans;
	sp->pending_records -= ld.records;
	sp->loaded_records += ld.records;
	sp->loaded_spans += ld.spans;
	*buf = ld.out;
	*len = ld.len;
	*spans = ld.spans;
	*seq = s->seq;
	*off = ld.pos;
	sp->read_ns += agent_now_ns() - t0;
	return 0;
}

void spool_commit(struct spool *sp, uint64_t seq, uint64_t off)
{
	char path[PATH_MAX];
	/* Segments before seq, and seq itself when read to its end and no
	 * longer written to, are done. */
	while (sp->n > 1 &&
	       (sp->segs[0].seq < seq || (sp->segs[0].seq == seq && off >= sp->segs[0].bytes))) {
		if (sp->segs[0].seq == sp->rseq) {
			if (sp->roff < sp->segs[0].bytes)
				break; /* still being loaded */
			sp->rseq = sp->segs[1].seq;
			sp->roff = 0;
			sp->rspans = 0;
		}
		seg_path(sp, sp->segs[0].seq, path, sizeof(path));
		unlink(path);
		sp->bytes -= sp->segs[0].bytes;
		memmove(&sp->segs[0], &sp->segs[1], (sp->n - 1) * sizeof(sp->segs[0]));
		sp->n--;
	}
	write_pos(sp, seq, off);
}

uint64_t spool_oldest_age_ms(const struct spool *sp)
{
	if (!sp->pending_records)
		return 0;
	const struct spool_seg *s = NULL;
	for (size_t i = 0; i < sp->n; i++) {
		if (sp->segs[i].seq >= sp->rseq && sp->segs[i].records) {
			s = &sp->segs[i];
			break;
		}
	}
	if (!s || !s->created_ms)
		return 0;
	uint64_t now = wall_ms();
	return now > s->created_ms ? now - s->created_ms : 0;
}
