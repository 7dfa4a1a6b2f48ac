/* SPDX-License-Identifier: MIT */
/*
 * Shared fixture of the agent unit tests: an agent without sockets, real
 * rings made with sr_ring_create() and written by tests/progs/testring.h,
 * adopted through the same registry_adopt() the socket path uses, and an
 * exporter that keeps every batch (so tests decide when to release).
 */
#ifndef SPANRING_TESTS_AGENT_FIXTURE_H
#define SPANRING_TESTS_AGENT_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "drain.h"
#include "exporter.h"
#include "log.h"
#include "testring.h"

#define FX_MAX_HELD 64

struct fx_hold {
	struct exporter e;
	struct batch *held[FX_MAX_HELD];
	size_t n;
	uint64_t spans;
	bool keep; /* take a reference (else only count) */
};

struct fx {
	struct agent_config cfg;
	struct agent ag;
	struct fx_hold hold;
	struct tr t;
	struct agent_producer *p;
	uint64_t scope_a, scope_b;
};

static int fx_hold_submit(struct exporter *e, struct batch *b)
{
	struct fx_hold *h = (struct fx_hold *)e;
	h->spans += b->spans;
	if (h->keep && h->n < FX_MAX_HELD) {
		batch_ref(b);
		h->held[h->n++] = b;
	}
	return 0;
}

static size_t fx_hold_flush(struct exporter *e, uint64_t deadline)
{
	(void)deadline;
	return ((struct fx_hold *)e)->n;
}

static void fx_hold_destroy(struct exporter *e)
{
	struct fx_hold *h = (struct fx_hold *)e;
	for (size_t i = 0; i < h->n; i++)
		batch_unref(h->held[i]);
	h->n = 0;
}

static const struct exporter_ops fx_hold_ops = {
	.kind = "test-hold",
	.submit = fx_hold_submit,
	.flush = fx_hold_flush,
	.destroy = fx_hold_destroy,
};

/* Release the i-th held batch (and forget it); the core gives its ring
 * bytes back as the event loop would after an exporter's callback. */
static inline void fx_release(struct fx *f, size_t i)
{
	assert_true(i < f->hold.n);
	batch_unref(f->hold.held[i]);
	f->hold.held[i] = NULL;
	agent_settle(&f->ag);
}

/* Agent + one ring (slots x size, scope table of scope_cap) adopted as f->p. */
static inline void fx_init_ex(struct fx *f, uint32_t slots, uint32_t slot_size,
			      uint32_t scope_cap)
{
	memset(f, 0, sizeof(*f));
	agent_log_set_level(getenv("FX_DEBUG") ? AGENT_LOG_DEBUG : AGENT_LOG_ERROR);
	agent_config_defaults(&f->cfg);
	f->cfg.batch_max_bytes = 1u << 20; /* the tests size their batches against 1 MiB */
	f->cfg.batch_max_age_us = 0;
	f->cfg.host_name = strdup("fx-host");
	assert_int_equal(agent_init(&f->ag, &f->cfg, false), 0);
	f->hold.e.ops = &fx_hold_ops;
	f->hold.keep = true;
	snprintf(f->hold.e.name, sizeof(f->hold.e.name), "hold");
	assert_int_equal(agent_add_exporter(&f->ag, &f->hold.e), 0);
	uint8_t res[512];
	size_t rl = tr_encode_resource(res, "fx-service", true);
	assert_int_equal(tr_create_ex(&f->t, slots, slot_size, scope_cap, res, rl), 0);
	f->scope_a = tr_add_scope(&f->t, "scope-a", "1.0", NULL);
	f->scope_b = tr_add_scope(&f->t, "scope-b", NULL, "https://example.com/schema");
	int fd = dup(f->t.m.fd);
	const char *why = "";
	f->p = NULL;
	int rc = registry_adopt(&f->ag, fd, f->t.m.l.total_size, getpid(), getuid(), getgid(),
				false, &f->p, &why);
	if (rc)
		fprintf(stderr, "adopt: %s\n", why);
	assert_int_equal(rc, 0);
}

static inline void fx_init(struct fx *f, uint32_t slots, uint32_t slot_size)
{
	fx_init_ex(f, slots, slot_size, SPANRING_PAGE);
}

static inline void fx_fini(struct fx *f)
{
	agent_fini(&f->ag); /* destroys the hold exporter: releases */
	sr_ring_unmap(&f->t.m, true);
	agent_config_free(&f->cfg);
}

static inline struct tr_span fx_span(int64_t seq, int64_t thread)
{
	static char names[64][32];
	struct tr_span s;
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 16; i++)
		s.trace_id[i] = (uint8_t)(0xa0 + i);
	s.trace_id[15] = (uint8_t)seq;
	for (int i = 0; i < 8; i++)
		s.span_id[i] = (uint8_t)(0x10 + i);
	memcpy(s.span_id, &seq, 4);
	char *name = names[seq & 63];
	snprintf(name, 32, "span-%lld", (long long)seq);
	s.name = name;
	s.kind = 2;
	s.start_ns = 1700000000000000000ull + (uint64_t)seq * 1000;
	s.end_ns = s.start_ns + 500;
	s.seq = seq;
	s.thread = thread;
	return s;
}

/* Drain and flush; returns the spans that went out. */
static inline uint64_t fx_pump(struct fx *f)
{
	uint64_t before = f->hold.spans;
	agent_drain_all(&f->ag);
	agent_flush(&f->ag);
	return f->hold.spans - before;
}

/* Concatenate request iov[1..] of b into a malloc'd buffer. */
static inline uint8_t *fx_request_bytes(const struct batch *b, size_t *len)
{
	size_t n;
	const struct iovec *iov = batch_msg_iov(b, &n);
	uint8_t *buf = malloc(b->msg_len + 1);
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	assert_int_equal(off, b->msg_len);
	*len = off;
	return buf;
}

#endif
