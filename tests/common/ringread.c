/* SPDX-License-Identifier: MIT */
#include "ringread.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomics.h"
#include "internal.h"
#include "pbwire.h"

int rr_map_self(struct sr_map *out)
{
	if (sr_proc_ready() != SR_PROC_ACTIVE)
		return -ENODEV;
	int fd = dup(sr_g.map.fd);
	if (fd < 0)
		return -errno;
	int err = sr_ring_map_consumer(out, fd, &sr_g.map.l, true);
	if (err)
		close(fd);
	return err;
}

int rr_drain(struct sr_map *m, bool consume, rr_cb cb, void *arg)
{
	int count = 0;
	for (uint32_t i = 0; i < m->l.slot_count; i++) {
		struct spanring_slot_cons *c = sr_cons(m, i);
		uint64_t tail = sr_load_relaxed_64(&c->tail);
		uint64_t head = sr_load_acquire_64(&sr_prod(m, i)->head);
		if (head < tail || head - tail > m->l.slot_size)
			return -1;
		const uint8_t *base = sr_slot_data(m, i);
		const uint8_t *p = base + (tail & (m->l.slot_size - 1));
		const uint8_t *end = p + (head - tail);
		uint64_t scope = c->scope_at_tail;
		int stop = 0;
		while (p < end && !stop) {
			struct rr_record r = {.slot = i, .pos = tail + (uint64_t)(p - (base + (tail & (m->l.slot_size - 1))))};
			const uint8_t *payload, *next;
			if (pb_next_field(p, end, &r.field, &r.wt, &payload, &next, &r.value))
				return -1;
			r.payload = payload;
			r.len = r.wt == SPANRING_WT_LEN ? (size_t)r.value : 0;
			if (r.field == SPANRING_CTRL_SCOPE)
				scope = r.value;
			r.scope = scope;
			if (r.field != SPANRING_SPAN_FIELD &&
			    (r.field < SPANRING_CTRL_FIELD_MIN || r.field > SPANRING_CTRL_FIELD_MAX))
				return -1;
			stop = cb ? cb(&r, arg) : 0;
			count++;
			p = next;
		}
		if (consume) {
			uint64_t nt = tail + (uint64_t)(p - (base + (tail & (m->l.slot_size - 1))));
			c->scope_at_tail = scope;
			sr_store_release_64(&c->tail, nt);
		}
	}
	return count;
}

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static int buf_put(struct buf *b, const void *src, size_t n)
{
	if (b->len + n > b->cap) {
		size_t nc = (b->cap + n) * 2;
		uint8_t *np = realloc(b->p, nc);
		if (!np)
			return -1;
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
	return 0;
}

static int buf_put_len_field(struct buf *b, uint32_t field, const void *src, size_t n)
{
	uint8_t hdr[16], *q = hdr;
	q = pb_put_varint(q, PB_TAG(field, SPANRING_WT_LEN));
	q = pb_put_varint(q, n);
	return buf_put(b, hdr, (size_t)(q - hdr)) || buf_put(b, src, n);
}

struct build_ctx {
	struct sr_map *m;
	struct buf scopes;   /* ResourceSpans payload being built: ScopeSpans fields */
	struct buf cur;      /* current ScopeSpans payload */
	uint64_t cur_scope;
	bool have;
	int err;
};

static int flush_scope(struct build_ctx *b)
{
	if (!b->have)
		return 0;
	int r = buf_put_len_field(&b->scopes, 2, b->cur.p, b->cur.len);
	b->cur.len = 0;
	b->have = false;
	return r;
}

static int build_cb(const struct rr_record *r, void *arg)
{
	struct build_ctx *b = arg;
	if (r->field != SPANRING_SPAN_FIELD)
		return 0;
	if (!b->have || r->scope != b->cur_scope) {
		if (flush_scope(b))
			goto fail;
		b->have = true;
		b->cur_scope = r->scope;
		struct spanring_ring_hdr *h = sr_hdr(b->m);
		uint64_t slen = sr_load_acquire_64(&h->scope_len);
		if (r->scope != SPANRING_SCOPE_NONE && r->scope + 8 <= slen) {
			struct spanring_scope_entry e;
			memcpy(&e, sr_scope_table(b->m) + r->scope, sizeof(e));
			if (r->scope + 8 + e.len > slen || buf_put(&b->cur, sr_scope_table(b->m) + r->scope + 8, e.len))
				goto fail;
		}
	}
	if (buf_put_len_field(&b->cur, 2, r->payload, r->len))
		goto fail;
	return 0;
fail:
	b->err = -1;
	return 1;
}

long rr_build_request(struct sr_map *m, uint8_t **out)
{
	struct build_ctx b = {.m = m};
	struct buf rs = {0}, req = {0};
	long ret = -1;
	struct spanring_ring_hdr *h = sr_hdr(m);
	if (buf_put_len_field(&b.scopes, 1, sr_resource(m), h->res_len))
		goto out;
	/* One walk per slot keeps scope runs per slot, like the agent. */
	if (rr_drain(m, false, build_cb, &b) < 0 || b.err || flush_scope(&b))
		goto out;
	if (buf_put_len_field(&req, 1, b.scopes.p, b.scopes.len))
		goto out;
	*out = req.p;
	req.p = NULL;
	ret = (long)req.len;
out:
	free(b.scopes.p);
	free(b.cur.p);
	free(rs.p);
	free(req.p);
	return ret;
}

char *rr_protoc_decode(const uint8_t *buf, size_t len, const char *incdir, const char *file,
		       const char *type)
{
	char path[] = "/tmp/spanring-protoc-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	if (write(fd, buf, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		return NULL;
	}
	close(fd);
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "protoc --decode=%s -I'%s' '%s' < '%s' 2>&1", type, incdir, file,
		 path);
	FILE *f = popen(cmd, "r");
	char *outp = NULL;
	size_t outlen = 0;
	if (f) {
		FILE *mem = open_memstream(&outp, &outlen);
		char chunk[4096];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			fwrite(chunk, 1, n, mem);
		fclose(mem);
		if (pclose(f) != 0) {
			fprintf(stderr, "protoc failed: %s\n", outp ? outp : "");
			free(outp);
			outp = NULL;
		}
	}
	unlink(path);
	return outp;
}
