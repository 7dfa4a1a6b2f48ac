/* SPDX-License-Identifier: MIT */
/*
 * Hostile producers for the hardening tests (tests/integration/harden_*.sh).
 * Registers by hand (like sr-hostile) on $SPANRING_SOCKET; rings are made
 * and written with tests/progs/testring.h; spans carry test.thread and
 * test.seq. Prints one "key=value ..." line with what happened.
 *
 *   harden_prod rewrite KIND SERVICE MS
 *       Registers a valid ring and commits spans (about 20000/s) for MS
 *       milliseconds while threads keep rewriting what the agent reads,
 *       and another rings the doorbell without pause. KIND:
 *         meta     everything the agent reads once at registration and
 *                  never again: the header (but scope_len), the resource
 *                  and res_len, the consumer header and scope_at_tail, the
 *                  producer-line counters. The agent must not notice.
 *         payload  the bytes inside committed span records (not their
 *                  headers), also after the agent walked them: the framing
 *                  holds, the exported bytes may be garbage (the known gap).
 *         framing  head (backwards, beyond, anything), scope_len, the scope
 *                  table and any byte of the slot, record headers included.
 *       Then commits a record that is no record (field 15), so the
 *       producer is certainly quarantined, holds 300 ms and prints
 *       "registered=1 committed=N" (N spans before the bad record).
 *   harden_prod resize SERVICE N
 *       After registration tries to shrink and grow the memfd (ftruncate,
 *       fallocate), to seal it against writing and to add seals at all:
 *       each must fail with EPERM. Then commits N spans and exits.
 *   harden_prod flood N
 *       Registers one ring, then the same ring N more times, each on a new
 *       connection, while the first is held: prints the statuses.
 *   harden_prod many N HOLD_MS [SLOT_SIZE]
 *       N distinct rings at once (one connection each, all held HOLD_MS):
 *       prints how many were registered and the statuses of the others.
 *   harden_prod cycle N
 *       N times: a new ring, registered, its connection closed; prints the
 *       statuses (each must be OK: nothing accumulates in the agent).
 *   harden_prod early SERVICE N
 *       Commits N spans, sends the request and closes the connection at
 *       once, without waiting for the answer (then exits).
 *   harden_prod stalls N HOLD_MS
 *       N connections that never send their request, held HOLD_MS (or
 *       until the agent closes them): prints how many the agent closed.
 *   harden_prod emptyfd N
 *       N connections, each sending an empty message carrying a ring fd.
 *   harden_prod fdkinds
 *       Registers fds that are no usable ring, beyond agent-hostile's set,
 *       and prints "KIND=STATUS" for each: a tmpfs file (/dev/shm), a
 *       directory, an O_PATH fd of a ring, a read-only fd of a ring, a
 *       sealed 5 GiB memfd, write-sealed and future-write-sealed memfds, a
 *       sealed memfd whose size differs from its header's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fdpass.h"
#include "sockpath.h"
#include "testring.h"

static const char *sock_path;

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int connect_agent(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	return s;
}

/* Send the request with fd (or an empty message when empty); -1 or 0. */
static int send_req(int s, int fd, uint64_t size, bool empty)
{
	struct spanring_reg_req req;
	memset(&req, 0, sizeof(req));
	req.magic = SPANRING_REG_MAGIC;
	req.abi_major = SPANRING_ABI_MAJOR;
	req.abi_minor = SPANRING_ABI_MINOR;
	req.ring_size = size;
	return sr_fd_send(s, &req, empty ? 0 : sizeof(req), &fd, 1, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/* The agent's answer: status (-1: none), the doorbell in *bell. */
static int recv_resp(int s, int *bell)
{
	struct spanring_reg_resp resp;
	struct sr_fd_msg rm;
	*bell = -1;
	ssize_t n = sr_fd_recv(s, &resp, sizeof(resp), 1, 0, &rm);
	if (n != (ssize_t)sizeof(resp))
		return -1;
	if (rm.nfds)
		*bell = rm.fds[0];
	return resp.status;
}

static int reg(int s, struct tr *t, int *bell)
{
	if (send_req(s, t->m.fd, t->m.l.total_size, false))
		return -1;
	return recv_resp(s, bell);
}

static void make_ring(struct tr *t, const char *service, uint32_t slot_size)
{
	uint8_t res[256];
	size_t rl = tr_encode_resource(res, service, false);
	if (tr_create(t, 1, slot_size, res, rl)) {
		fprintf(stderr, "harden_prod: cannot create a ring\n");
		exit(1);
	}
}

static struct tr_span span_of(int64_t seq)
{
	struct tr_span s;
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 16; i++)
		s.trace_id[i] = (uint8_t)(0x30 + i);
	memcpy(s.trace_id + 8, &seq, 8);
	memcpy(s.span_id, &seq, 8);
	s.span_id[7] |= 0x80;
	s.name = "harden";
	s.kind = 1;
	s.start_ns = 1700000000000000000ull + (uint64_t)seq;
	s.end_ns = s.start_ns + 1000;
	s.seq = seq;
	s.thread = 0;
	return s;
}

/* Commit n spans (seq 0..n-1), waiting for room when the slot is full. */
static int64_t write_spans(struct tr *t, uint64_t scope, int64_t n, int wait_ms)
{
	int64_t done = 0;
	for (int64_t i = 0; i < n; i++) {
		struct tr_span s = span_of(i);
		uint64_t t0 = now_ms();
		while (tr_write_span(t, 0, scope, &s) == -ENOSPC) {
			if (now_ms() - t0 > (uint64_t)wait_ms)
				return done;
			sleep_ms(1);
		}
		done++;
	}
	return done;
}

/* ---- rewrite ----------------------------------------------------------------- */

static struct tr rt;
static volatile int stop_threads;
static int bell_fd = -1;

static uint64_t xs(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void store64(void *p, uint64_t v)
{
	__atomic_store_n((uint64_t *)p, v, __ATOMIC_RELAXED);
}

static void store8(uint8_t *p, uint8_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Payload ranges of the last committed span records (stream positions). */
#define RECENT 64
static uint64_t recent_pos[RECENT], recent_len[RECENT];
static uint64_t n_recent;

static void *th_head(void *arg)
{
	uint64_t x = 0x1234567 + (uintptr_t)arg;
	struct spanring_slot_prod *sp = sr_prod(&rt.m, 0);
	while (!stop_threads) {
		uint64_t h = __atomic_load_n(&sp->head, __ATOMIC_RELAXED);
		uint64_t r = xs(&x);
		switch (r % 4) {
		case 0: h += r % 64; break;                     /* forward a little */
		case 1: h -= r % 64; break;                     /* backwards */
		case 2: h += rt.m.l.slot_size + r % 4096; break; /* beyond */
		default: h = r; break;                          /* anything */
		}
		__atomic_store_n(&sp->head, h, __ATOMIC_RELEASE);
		for (int i = 0; i < 200; i++)
			__asm__ volatile("" ::: "memory");
	}
	return NULL;
}

/* meta: what the agent read once (a private copy) at registration. */
static void *th_meta(void *arg)
{
	uint64_t x = 0x9876543 + (uintptr_t)arg;
	struct sr_map *m = &rt.m;
	struct spanring_ring_hdr *h = sr_hdr(m);
	while (!stop_threads) {
		uint64_t r = xs(&x);
		switch (r % 6) {
		case 0: { /* a header field other than scope_len (offset 104) */
			uint64_t off = 8 * (xs(&x) % 16);
			if (off != 104)
				store64(m->ctrl + off, xs(&x));
			break;
		}
		case 1: /* the consumer header: epoch, watermark, reserved */
			store64(m->ctrl + m->l.cons_off + 8 * (xs(&x) % 8), xs(&x));
			break;
		case 2: /* slot 0's consumer line but its tail: scope_at_tail, reserved */
			store64(m->ctrl + m->l.cons_off + SPANRING_CACHELINE + 8 + 8 * (xs(&x) % 7),
				xs(&x));
			break;
		case 3: /* the producer line's counters (the agent reports them as claims) */
			store64((uint8_t *)sr_prod(m, 0) + 8 + 8 * (xs(&x) % 7), xs(&x));
			break;
		case 4: /* the resource */
			store8(sr_resource(m) + xs(&x) % m->l.res_cap, (uint8_t)xs(&x));
			break;
		default: /* res_len */
			__atomic_store_n(&h->res_len, (uint32_t)xs(&x), __ATOMIC_RELAXED);
			break;
		}
	}
	return NULL;
}

/* payload: bytes inside the last committed span records. */
static void *th_payload(void *arg)
{
	uint64_t x = 0x55aa55aa + (uintptr_t)arg;
	uint8_t *d = sr_slot_data(&rt.m, 0);
	uint32_t size = rt.m.l.slot_size;
	while (!stop_threads) {
		uint64_t n = __atomic_load_n(&n_recent, __ATOMIC_ACQUIRE);
		if (!n)
			continue;
		uint64_t k = (n - 1 - xs(&x) % (n < RECENT ? n : RECENT)) % RECENT;
		uint64_t pos = __atomic_load_n(&recent_pos[k], __ATOMIC_RELAXED);
		uint64_t len = __atomic_load_n(&recent_len[k], __ATOMIC_RELAXED);
		if (len)
			store8(d + ((pos + xs(&x) % len) & (size - 1)), (uint8_t)xs(&x));
	}
	return NULL;
}

/* framing: scope_len, the scope table, any byte of the slot. */
static void *th_framing(void *arg)
{
	uint64_t x = 0x77123 + (uintptr_t)arg;
	struct sr_map *m = &rt.m;
	uint8_t *d = sr_slot_data(m, 0);
	while (!stop_threads) {
		uint64_t r = xs(&x);
		switch (r % 3) {
		case 0:
			store64(&sr_hdr(m)->scope_len, xs(&x) % (2 * m->l.scope_cap));
			break;
		case 1:
			store8(sr_scope_table(m) + xs(&x) % 256, (uint8_t)xs(&x));
			break;
		default:
			store8(d + xs(&x) % m->l.slot_size, xs(&x) % 4 ? (uint8_t)xs(&x) : 0x12);
			break;
		}
	}
	return NULL;
}

static void *th_bell(void *arg)
{
	(void)arg;
	uint64_t one = 1;
	while (!stop_threads)
		if (write(bell_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			break;
	return NULL;
}

static int mode_rewrite(const char *kind, const char *service, long ms)
{
	bool meta = !strcmp(kind, "meta"), payload = !strcmp(kind, "payload");
	if (!meta && !payload && strcmp(kind, "framing")) {
		fprintf(stderr, "harden_prod: rewrite meta|payload|framing\n");
		return 2;
	}
	make_ring(&rt, service, 1u << 20);
	uint64_t scope = tr_add_scope(&rt, "rewrite", "1", NULL);
	int s = connect_agent();
	if (s < 0 || reg(s, &rt, &bell_fd) != SPANRING_REG_OK) {
		printf("registered=0\n");
		return 1;
	}
	pthread_t th[3];
	int nth = 0;
	if (meta) {
		pthread_create(&th[nth++], NULL, th_meta, NULL);
	} else if (payload) {
		pthread_create(&th[nth++], NULL, th_payload, NULL);
	} else {
		pthread_create(&th[nth++], NULL, th_head, NULL);
		pthread_create(&th[nth++], NULL, th_framing, NULL);
	}
	pthread_create(&th[nth++], NULL, th_bell, NULL);
	uint64_t end = now_ms() + (uint64_t)ms;
	int64_t seq = 0, committed = 0;
	while (now_ms() < end) {
		struct tr_span sp = span_of(seq);
		uint8_t enc[2048];
		uint64_t plen = tr_encode_span(enc, &sp);
		if (tr_write_span(&rt, 0, scope, &sp) == 0) {
			/* The Span message is the last plen bytes committed. */
			uint64_t n = __atomic_load_n(&n_recent, __ATOMIC_RELAXED);
			__atomic_store_n(&recent_pos[n % RECENT], rt.head[0] - plen, __ATOMIC_RELAXED);
			__atomic_store_n(&recent_len[n % RECENT], plen, __ATOMIC_RELAXED);
			__atomic_store_n(&n_recent, n + 1, __ATOMIC_RELEASE);
			committed++;
			seq++;
			if (seq % 20 == 0)
				sleep_ms(1);
		} else {
			sleep_ms(1);
		}
	}
	stop_threads = 1;
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	/* Certainly a violation: field 15 is no record. */
	const uint8_t junk[] = {0x7a, 0x01, 0x00};
	tr_put_raw(&rt, 0, junk, sizeof(junk));
	tr_commit(&rt, 0);
	sleep_ms(300);
	printf("registered=1 committed=%lld\n", (long long)committed);
	return 0;
}

/* ---- resize ------------------------------------------------------------------ */

static const char *err_name(int r)
{
	return r == 0 ? "OK" : errno == EPERM ? "EPERM" : errno == EBUSY ? "EBUSY" : strerror(errno);
}

static int mode_resize(const char *service, long n)
{
	struct tr t;
	make_ring(&t, service, 16384);
	uint64_t scope = tr_add_scope(&t, "resize", "1", NULL);
	int s = connect_agent(), bell;
	if (s < 0 || reg(s, &t, &bell) != SPANRING_REG_OK) {
		printf("registered=0\n");
		return 1;
	}
	off_t size = (off_t)t.m.l.total_size;
	int r;
	r = ftruncate(t.m.fd, size / 2);
	printf("shrink=%s ", err_name(r));
	r = ftruncate(t.m.fd, size * 2);
	printf("grow=%s ", err_name(r));
	r = fallocate(t.m.fd, 0, size, 4096);
	printf("fallocate=%s ", err_name(r));
	r = fallocate(t.m.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, t.m.l.data_off, 4096);
	/* punching a hole is a write, which the seals allow: the data reads as zeros */
	printf("punch=%s ", err_name(r));
	r = fcntl(t.m.fd, F_ADD_SEALS, F_SEAL_WRITE);
	printf("seal_write=%s ", err_name(r));
	r = fcntl(t.m.fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE);
	printf("seal_future_write=%s ", err_name(r));
	/* also through another open file description of the same memfd */
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", t.m.fd);
	int fd2 = open(p, O_RDWR | O_CLOEXEC);
	r = fd2 < 0 ? -1 : ftruncate(fd2, 0);
	printf("reopen_truncate=%s ", err_name(r));
	if (fd2 >= 0)
		close(fd2);
	/* The ring still works for the producer and the agent. */
	int64_t done = write_spans(&t, scope, n, 5000);
	for (int i = 0; i < 500 && tr_unreleased(&t, 0); i++)
		sleep_ms(10);
	printf("committed=%lld unreleased=%llu\n", (long long)done,
	       (unsigned long long)tr_unreleased(&t, 0));
	close(s);
	return 0;
}

/* ---- flood / many / early / stalls / emptyfd ---------------------------------- */

static void count_status(int st, int *counts)
{
	counts[st >= 0 && st <= SPANRING_REG_EINTERNAL ? st : SPANRING_REG_EINTERNAL + 1]++;
}

static void print_counts(const int *counts)
{
	static const char *const names[] = {"ok", "eproto", "eabi", "enotmemfd", "eseals", "esize",
					    "eheader", "eperm", "elimit", "einternal", "none"};
	for (int i = 0; i <= SPANRING_REG_EINTERNAL + 1; i++)
		printf("%s=%d%s", names[i], counts[i], i <= SPANRING_REG_EINTERNAL ? " " : "\n");
}

static int mode_flood(long n)
{
	struct tr t;
	make_ring(&t, "flood", 16384);
	int counts[SPANRING_REG_EINTERNAL + 2] = {0};
	int first = connect_agent(), bell;
	count_status(reg(first, &t, &bell), counts);
	for (long i = 0; i < n; i++) {
		int s = connect_agent();
		if (s < 0) {
			counts[SPANRING_REG_EINTERNAL + 1]++;
			continue;
		}
		count_status(reg(s, &t, &bell), counts);
		if (bell >= 0)
			close(bell);
		close(s);
	}
	print_counts(counts);
	return 0;
}

static int mode_many(long n, long hold, uint32_t slot_size)
{
	struct rlimit rl = {.rlim_cur = (rlim_t)(3 * n + 64), .rlim_max = (rlim_t)(3 * n + 64)};
	setrlimit(RLIMIT_NOFILE, &rl);
	int counts[SPANRING_REG_EINTERNAL + 2] = {0};
	struct tr *t = calloc((size_t)n, sizeof(*t));
	for (long i = 0; i < n; i++) {
		char svc[32];
		snprintf(svc, sizeof(svc), "many-%ld", i);
		make_ring(&t[i], svc, slot_size);
		int s = connect_agent(), bell;
		if (s < 0) {
			counts[SPANRING_REG_EINTERNAL + 1]++;
			continue;
		}
		int st = reg(s, &t[i], &bell);
		count_status(st, counts);
		if (st != SPANRING_REG_OK)
			close(s); /* held otherwise, until we exit */
		sr_ring_unmap(&t[i].m, true); /* the agent keeps its own mapping */
	}
	print_counts(counts);
	fflush(stdout);
	sleep_ms(hold);
	free(t);
	return 0;
}

static int mode_cycle(long n)
{
	int counts[SPANRING_REG_EINTERNAL + 2] = {0};
	for (long i = 0; i < n; i++) {
		struct tr t;
		make_ring(&t, "cycle", 16384);
		int s = connect_agent(), bell;
		if (s < 0) {
			counts[SPANRING_REG_EINTERNAL + 1]++;
		} else {
			count_status(reg(s, &t, &bell), counts);
			if (bell >= 0)
				close(bell);
			close(s);
		}
		sr_ring_unmap(&t.m, true);
	}
	print_counts(counts);
	return 0;
}

static int mode_early(const char *service, long n)
{
	struct tr t;
	make_ring(&t, service, 65536);
	uint64_t scope = tr_add_scope(&t, "early", "1", NULL);
	int64_t done = write_spans(&t, scope, n, 0);
	int s = connect_agent();
	if (s < 0 || send_req(s, t.m.fd, t.m.l.total_size, false))
		return 1;
	close(s);
	printf("committed=%lld\n", (long long)done);
	return 0;
}

static int mode_stalls(long n, long hold)
{
	struct rlimit rl = {.rlim_cur = (rlim_t)(n + 64), .rlim_max = (rlim_t)(n + 64)};
	setrlimit(RLIMIT_NOFILE, &rl);
	int *fds = calloc((size_t)n, sizeof(int));
	long opened = 0;
	for (long i = 0; i < n; i++) {
		fds[i] = connect_agent();
		if (fds[i] >= 0)
			opened++;
	}
	printf("opened=%ld ", opened);
	fflush(stdout);
	/* Wait until the agent closed them (or the time is up). */
	uint64_t end = now_ms() + (uint64_t)hold;
	long closed = 0;
	while (now_ms() < end) {
		closed = 0;
		for (long i = 0; i < n; i++) {
			if (fds[i] < 0)
				continue;
			struct pollfd pf = {.fd = fds[i], .events = POLLIN | POLLRDHUP};
			if (poll(&pf, 1, 0) > 0 && (pf.revents & (POLLHUP | POLLRDHUP | POLLIN)))
				closed++;
		}
		if (closed == opened)
			break;
		sleep_ms(50);
	}
	printf("closed_by_agent=%ld\n", closed);
	for (long i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return 0;
}

static int mode_emptyfd(long n)
{
	struct tr t;
	make_ring(&t, "emptyfd", 16384);
	long sent = 0;
	for (long i = 0; i < n; i++) {
		int s = connect_agent();
		if (s < 0)
			continue;
		if (send_req(s, t.m.fd, t.m.l.total_size, true) == 0)
			sent++;
		/* the agent closes the connection: wait for that */
		struct pollfd pf = {.fd = s, .events = POLLIN | POLLRDHUP};
		poll(&pf, 1, 2000);
		close(s);
	}
	printf("sent=%ld\n", sent);
	return 0;
}

/* Register fd (with the given request size) on a new connection. */
static int reg_fd(int fd, uint64_t size)
{
	int s = connect_agent(), bell = -1;
	if (s < 0)
		return -1;
	int st = send_req(s, fd, size, false) ? -1 : recv_resp(s, &bell);
	if (bell >= 0)
		close(bell);
	close(s);
	return st;
}

/* A memfd with a valid ring header of t's layout, sized size, sealed. */
static int ring_image(struct tr *t, uint64_t size, unsigned seals)
{
	int m = memfd_create("harden-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (m < 0 || ftruncate(m, (off_t)size) < 0 ||
	    pwrite(m, sr_hdr(&t->m), sizeof(struct spanring_ring_hdr), 0) < 0 ||
	    fcntl(m, F_ADD_SEALS, seals) < 0) {
		perror("harden_prod: ring image");
		exit(1);
	}
	return m;
}

static int mode_fdkinds(void)
{
	struct tr t;
	make_ring(&t, "fdkinds", 16384);
	uint64_t size = t.m.l.total_size;
	const unsigned S = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	char p[64];
	int fd;
	/* a tmpfs file: shmem, but born sealed against sealing */
	char shm[] = "/dev/shm/spanring-harden-XXXXXX";
	fd = mkstemp(shm);
	if (fd >= 0) {
		unlink(shm);
		if (ftruncate(fd, (off_t)size) == 0)
			printf("tmpfs=%d ", reg_fd(fd, size));
		close(fd);
	}
	fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	printf("directory=%d ", reg_fd(fd, size));
	close(fd);
	snprintf(p, sizeof(p), "/proc/self/fd/%d", t.m.fd);
	fd = open(p, O_PATH | O_CLOEXEC);
	printf("opath=%d ", reg_fd(fd, size));
	close(fd);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	printf("readonly=%d ", reg_fd(fd, size));
	close(fd);
	fd = ring_image(&t, 5ull << 30, S);
	printf("huge=%d ", reg_fd(fd, 5ull << 30));
	close(fd);
	fd = ring_image(&t, size, S | F_SEAL_WRITE);
	printf("write_sealed=%d ", reg_fd(fd, size));
	close(fd);
	fd = ring_image(&t, size, S | F_SEAL_FUTURE_WRITE);
	printf("future_write_sealed=%d ", reg_fd(fd, size));
	close(fd);
	fd = ring_image(&t, size + 4096, S);
	printf("size_mismatch=%d\n", reg_fd(fd, size + 4096));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	char pathbuf[108];
	sock_path = sr_socket_path(pathbuf, sizeof(pathbuf));
	if (argc == 2 && !strcmp(argv[1], "fdkinds"))
		return mode_fdkinds();
	if (argc < 3) {
		fprintf(stderr, "usage: harden_prod MODE ARGS (see the source)\n");
		return 2;
	}
	const char *m = argv[1];
	if (!strcmp(m, "rewrite") && argc >= 5)
		return mode_rewrite(argv[2], argv[3], atol(argv[4]));
	if (!strcmp(m, "resize") && argc >= 4)
		return mode_resize(argv[2], atol(argv[3]));
	if (!strcmp(m, "flood"))
		return mode_flood(atol(argv[2]));
	if (!strcmp(m, "many") && argc >= 4)
		return mode_many(atol(argv[2]), atol(argv[3]),
				 argc > 4 ? (uint32_t)atol(argv[4]) : 16384);
	if (!strcmp(m, "cycle"))
		return mode_cycle(atol(argv[2]));
	if (!strcmp(m, "early") && argc >= 4)
		return mode_early(argv[2], atol(argv[3]));
	if (!strcmp(m, "stalls") && argc >= 4)
		return mode_stalls(atol(argv[2]), atol(argv[3]));
	if (!strcmp(m, "emptyfd"))
		return mode_emptyfd(atol(argv[2]));
	fprintf(stderr, "harden_prod: unknown mode or missing arguments: %s\n", m);
	return 2;
}
