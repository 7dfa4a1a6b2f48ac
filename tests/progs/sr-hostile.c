/* SPDX-License-Identifier: MIT */
/*
 * Hostile producers for the agent's integration tests. Registers by hand
 * (not through lib/client.c) so it can send anything, prints the agent's
 * answer as "status=<code> message=<text>", then, for the modes that get
 * registered, breaks the ring's rules and keeps the connection open.
 *
 *   sr-hostile MODE [hold_ms]
 * Rejected at registration: abi reqabi unsealed growable pipe file socket
 *   devzero lying size uninit nofd twofds short badmagic
 * Quarantined after registration: head-beyond head-back garbage badscope
 * Other: stall (connects, sends nothing; prints when the agent hangs up)
 *   scope-bomb N: the scope-cache attack of issue 14 (R2): a 1 MiB scope
 *     table, N entries at successive offsets each reaching to (128 bytes
 *     before) the end of the table (overlapping), each used by a span once the previous one
 *     was released; prints "steps=K released=R" (K entries the agent took)
 *   quitter: registers (with a reply expected) and exits at once, without
 *     reading the reply; its 3 spans must still be exported (R16)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fdpass.h"
#include "sockpath.h"
#include "testring.h"

static const char *sock_path;

static int connect_agent(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("sr-hostile: connect");
		exit(1);
	}
	return s;
}

/* Send a request with fds; print and return the status (-1: no answer). */
static int reg(int s, uint32_t abi, uint64_t size, const int *fds, int nfds, size_t reqlen,
	       uint32_t magic)
{
	struct spanring_reg_req req;
	memset(&req, 0, sizeof(req));
	req.magic = magic;
	req.abi_major = abi;
	req.abi_minor = 0;
	req.ring_size = size;
	if (sr_fd_send(s, &req, reqlen, fds, (size_t)nfds, MSG_NOSIGNAL) < 0) {
		perror("sr-hostile: sendmsg");
		exit(1);
	}
	struct spanring_reg_resp resp;
	struct sr_fd_msg rm; /* the doorbell, if any, stays open: the ring is ours */
	ssize_t n = sr_fd_recv(s, &resp, sizeof(resp), 1, 0, &rm);
	if (n != (ssize_t)sizeof(resp)) {
		printf("status=none\n");
		return -1;
	}
	resp.message[sizeof(resp.message) - 1] = 0;
	printf("status=%d message=%s\n", resp.status, resp.message);
	fflush(stdout);
	return resp.status;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static struct tr t;
static uint64_t scope;

static void make_ring(uint32_t scope_cap)
{
	uint8_t res[256];
	size_t rl = tr_encode_resource(res, "hostile", true);
	if (tr_create_ex(&t, 1, 16384, scope_cap, res, rl)) {
		fprintf(stderr, "sr-hostile: ring\n");
		exit(1);
	}
	scope = tr_add_scope(&t, "hostile", NULL, NULL);
}

/* A memfd holding a valid ring image, sealed with `seals`. */
static int ring_copy(unsigned seals)
{
	int m = memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (ftruncate(m, (off_t)t.m.l.total_size) < 0)
		exit(1);
	if (pwrite(m, sr_hdr(&t.m), sizeof(struct spanring_ring_hdr), 0) < 0)
		exit(1);
	if (seals && fcntl(m, F_ADD_SEALS, seals) < 0)
		exit(1);
	return m;
}

static void good_spans(int n)
{
	for (int i = 0; i < n; i++) {
		struct tr_span s;
		memset(&s, 0, sizeof(s));
		s.trace_id[0] = 1;
		s.span_id[0] = (uint8_t)(i + 1);
		s.name = "hostile-good";
		s.start_ns = 1;
		s.end_ns = 2;
		s.seq = i;
		tr_write_span(&t, 0, scope, &s);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: sr-hostile MODE [hold_ms]\n");
		return 2;
	}
	const char *mode = argv[1];
	int hold = argc > 2 ? atoi(argv[2]) : 3000;
	char pathbuf[108];
	sock_path = sr_socket_path(pathbuf, sizeof(pathbuf));
	bool bomb = !strcmp(mode, "scope-bomb");
	make_ring(bomb ? SPANRING_MAX_SCOPE_CAP : SPANRING_PAGE);
	const unsigned S = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	uint64_t size = t.m.l.total_size;
	int s = connect_agent();
	int fd = t.m.fd, st;

	if (!strcmp(mode, "stall")) {
		/* Send nothing; report when the agent gives up on us. */
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		struct pollfd pf = {.fd = s, .events = POLLIN | POLLRDHUP};
		int r = poll(&pf, 1, hold);
		clock_gettime(CLOCK_MONOTONIC, &b);
		long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
		printf("%s after %ldms\n", r > 0 ? "closed-by-agent" : "still-open", ms);
		return 0;
	}
	if (bomb) {
		/* Registered properly, then the attack (argv[2]: entries). */
		if (reg(s, 1, size, &fd, 1, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC))
			return 1;
		struct spanring_ring_hdr *h = sr_hdr(&t.m);
		const uint64_t cap = t.m.l.scope_cap;
		const uint64_t base = (h->scope_len + 7) & ~7ull;
		uint8_t *table = sr_scope_table(&t.m);
		int steps = 0, released = 0;
		for (int k = 0; k < hold; k++) {
			uint64_t off = base + 8 * (uint64_t)k;
			/* To (nearly) the end of the table: room left for the
			 * agent's per-entry overhead within a 1 MiB max_scope_bytes. */
			uint32_t len = (uint32_t)(cap - off - 8 - 128);
			struct spanring_scope_entry e = {.len = len};
			memcpy(table + off, &e, sizeof(e));
			/* A valid body: one schema_url filling the entry. */
			uint32_t url = len - 1 - (uint32_t)pb_varint_size(len - 4);
			uint8_t *p = pb_put_tag1(table + off + 8, 3, SPANRING_WT_LEN);
			p = pb_put_varint(p, url);
			memset(p, 'x', (size_t)(table + off + 8 + len - p));
			sr_store_release_64(&h->scope_len, cap);
			struct tr_span sp;
			memset(&sp, 0, sizeof(sp));
			sp.trace_id[0] = 1;
			sp.span_id[0] = (uint8_t)(k + 1);
			sp.name = "bomb";
			sp.start_ns = 1;
			sp.end_ns = 2;
			sp.seq = k;
			if (tr_write_span(&t, 0, off, &sp))
				break;
			steps++;
			/* Wait until the agent exported it: the entry was cached. */
			int w;
			for (w = 0; w < 400 && tr_unreleased(&t, 0); w++)
				sleep_ms(5);
			if (tr_unreleased(&t, 0))
				break; /* not released any more: quarantined */
			released++;
		}
		printf("steps=%d released=%d\n", steps, released);
		fflush(stdout);
		sleep_ms(500);
		return 0;
	}
	if (!strcmp(mode, "quitter")) {
		good_spans(3);
		struct spanring_reg_req req;
		memset(&req, 0, sizeof(req));
		req.magic = SPANRING_REG_MAGIC;
		req.abi_major = SPANRING_ABI_MAJOR;
		req.abi_minor = SPANRING_ABI_MINOR;
		req.ring_size = size;
		if (sr_fd_send(s, &req, sizeof(req), &fd, 1, MSG_NOSIGNAL) < 0)
			return 1;
		/* Gone before the agent answers: its reply finds no reader. */
		close(s);
		printf("quit pid=%d\n", (int)getpid());
		return 0;
	}
	if (!strcmp(mode, "abi")) {
		sr_hdr(&t.m)->abi_major = 2;
		st = reg(s, 1, size, &fd, 1, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
	} else if (!strcmp(mode, "reqabi")) {
		st = reg(s, 2, size, &fd, 1, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
	} else if (!strcmp(mode, "badmagic")) {
		st = reg(s, 1, size, &fd, 1, sizeof(struct spanring_reg_req), 0x12345678);
	} else if (!strcmp(mode, "unsealed") || !strcmp(mode, "growable")) {
		int m = ring_copy(!strcmp(mode, "growable") ? F_SEAL_SHRINK : 0);
		st = reg(s, 1, size, &m, 1, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
	} else if (!strcmp(mode, "pipe")) {
		int p[2];
		if (pipe(p))
			return 1;
		st = reg(s, 1, size, &p[0], 1, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
	} else if (!strcmp(mode, "file")) {
		char path[] = "/tmp/sr-hostile-XXXXXX";
		int f = mkstemp(path);
		unlink(path);
		if (ftruncate(f, (off_t)size))
			return 1;
		st = reg(s, 1, size, &f, 1, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
	} else if (!strcmp(mode, "socket")) {
		int sv[2];
		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		st = reg(s, 1, size, &sv[0], 1, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
	} else if (!strcmp(mode, "devzero")) {
		int z = open("/dev/zero", O_RDWR);
		st = reg(s, 1, size, &z, 1, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
	} else if (!strcmp(mode, "lying")) {
		sr_hdr(&t.m)->data_off += 4096;
		sr_hdr(&t.m)->slot_count = 3;
		st = reg(s, 1, size, &fd, 1, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
	} else if (!strcmp(mode, "size")) {
		st = reg(s, 1, size * 2, &fd, 1, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
	} else if (!strcmp(mode, "uninit")) {
		sr_hdr(&t.m)->flags = 0;
		st = reg(s, 1, size, &fd, 1, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
	} else if (!strcmp(mode, "nofd")) {
		st = reg(s, 1, size, NULL, 0, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
	} else if (!strcmp(mode, "twofds")) {
		int two[2] = {fd, ring_copy(S)};
		st = reg(s, 1, size, two, 2, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
	} else if (!strcmp(mode, "short")) {
		st = reg(s, 1, size, &fd, 1, 10, SPANRING_REG_MAGIC);
	} else {
		/* The quarantine modes: register properly first. */
		st = reg(s, 1, size, &fd, 1, sizeof(struct spanring_reg_req), SPANRING_REG_MAGIC);
		if (st != 0)
			return 1;
		if (!strcmp(mode, "head-beyond")) {
			good_spans(3);
			sleep_ms(100);
			tr_set_head(&t, 0, sr_load_acquire_64(&sr_cons(&t.m, 0)->tail) + 16384 + 1);
		} else if (!strcmp(mode, "head-back")) {
			good_spans(5);
			for (int i = 0; i < 200 && tr_unreleased(&t, 0); i++)
				sleep_ms(10);
			tr_set_head(&t, 0, t.head[0] - 7);
		} else if (!strcmp(mode, "garbage")) {
			good_spans(2);
			const uint8_t junk[] = {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
			tr_put_raw(&t, 0, junk, sizeof(junk));
			tr_commit(&t, 0);
		} else if (!strcmp(mode, "badscope")) {
			uint8_t rec[16];
			size_t n = tr_ctrl_varint(rec, SPANRING_CTRL_SCOPE, 1u << 19);
			tr_put_raw(&t, 0, rec, n);
			tr_commit(&t, 0);
		} else {
			fprintf(stderr, "sr-hostile: unknown mode %s\n", mode);
			return 2;
		}
		printf("misbehaved\n");
		fflush(stdout);
		sleep_ms(hold);
		return 0;
	}
	sleep_ms(10);
	return st >= 0 ? 0 : 1;
}
