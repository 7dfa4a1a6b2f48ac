/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the registration handshake of the real agent (accept,
 * SO_PEERCRED, recvmsg of the request and its fds, every check, adoption,
 * reply with the doorbell, end of the connection), through its listening
 * SOCK_SEQPACKET socket and its event loop, in process.
 *
 * Input: conf:u8, then per attached fd (0..3, conf bits 0-1) a kind:u8
 * from the menu below (a valid ring, a ring whose header the input
 * patches, a pipe, /dev/zero, memfds without the seals or with a write
 * seal, a socket, a regular file, an eventfd, a read-only fd of a valid
 * ring), then the request: mode:u8 (0: raw bytes from the input, else a
 * valid request patched at off:u8 with n:u8 bytes). conf bit 2: the peer
 * is not in the allow-list; bit 3: connect and send nothing; bit 4: send
 * a second message after the first; bit 5: ring the doorbell.
 *
 * Invariants: exactly one reply of 64 bytes with the magic and a known
 * status and a NUL-terminated message; a doorbell eventfd attached iff
 * the status is OK; the status is the expected one when the request is
 * well-formed (the allow-list, the fd kind); the agent's counters add up
 * (registered/rejected by reason); after the client closes, no producer
 * or pending connection is left and no descriptor leaked.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz.h"

#include "agent.h"
#include "fdpass.h"
#include "log.h"
#include "testring.h"

static struct agent_config cfg;
static struct agent ag;
static char dir[64];
static int base_fds;
static uint32_t deny_uid;

/* The private directory and its sockets go at exit. */
static void cleanup(void)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/agent.sock", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/agent.sock.ctl", dir);
	unlink(p);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	agent_log_set_level(getenv("FUZZ_LOG") ? AGENT_LOG_DEBUG : AGENT_LOG_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/spanring-fuzz-reg.XXXXXX");
	FZ_CHECK(mkdtemp(dir));
	atexit(cleanup);
	agent_config_defaults(&cfg);
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	FZ_CHECK(agent_config_set(&cfg, "socket", path, err, sizeof(err)) == 0);
	FZ_CHECK(agent_config_set(&cfg, "exporters", "null", err, sizeof(err)) == 0);
	cfg.host_name = strdup("fuzz-host");
	cfg.batch_max_age_us = 0;
	FZ_CHECK(agent_config_finish(&cfg, err, sizeof(err)) == 0);
	FZ_CHECK(agent_init(&ag, &cfg, true) == 0);
	FZ_CHECK(agent_exporters_from_config(&ag) == 0);
	deny_uid = getuid() + 4242;
	base_fds = fz_count_fds();
	return 0;
}

enum fd_kind {
	K_RING,
	K_RING_PATCHED,
	K_PIPE,
	K_DEVZERO,
	K_UNSEALED,
	K_NO_SEAL_SEAL,
	K_WRITE_SEALED,
	K_SOCKET,
	K_FILE,
	K_EVENTFD,
	K_RING_RDONLY,
	K_N
};

/* A valid initialized ring; *tp keeps it mapped until the iteration ends. */
static int make_ring(struct tr *t)
{
	uint8_t res[256];
	size_t rl = tr_encode_resource(res, "fuzz-reg", false);
	FZ_CHECK(tr_create(t, 1, 16384, res, rl) == 0);
	(void)tr_add_scope(t, "s", "1", NULL);
	return t->m.fd;
}

static int memfd_sized(uint64_t size, unsigned seals)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	FZ_CHECK(fd >= 0);
	FZ_CHECK(ftruncate(fd, (off_t)size) == 0);
	if (seals)
		FZ_CHECK(fcntl(fd, F_ADD_SEALS, seals) == 0);
	return fd;
}

struct iter {
	struct tr rings[3];
	int nrings;
	int fds[3];
	int nfds;
	int extra[6]; /* our copies (closed after sending) */
	int nextra;
	char pipes[3][64]; /* "pipe:[inode]" of the pipes we passed */
	int npipes;
};

/* Make an fd of kind k; returns the expected status for a good request. */
static int make_fd(struct iter *it, int k, struct fz *in, uint64_t *size)
{
	struct tr *t;
	int fd = -1, expect = SPANRING_REG_OK;
	*size = 0;
	switch (k) {
	case K_RING:
	case K_RING_PATCHED:
	case K_RING_RDONLY:
		t = &it->rings[it->nrings++];
		fd = make_ring(t);
		*size = t->m.l.total_size;
		if (k == K_RING_PATCHED) {
			uint16_t off = fz_u16(in) % SPANRING_PAGE;
			size_t want = fz_u8(in) % 32, got;
			const uint8_t *b = fz_bytes(in, want, &got);
			if (got > SPANRING_PAGE - off)
				got = SPANRING_PAGE - off;
			memcpy(t->m.ctrl + off, b, got);
			expect = -1; /* anything */
		}
		if (k == K_RING_RDONLY) {
			char p[64];
			snprintf(p, sizeof(p), "/proc/self/fd/%d", t->m.fd);
			fd = open(p, O_RDONLY | O_CLOEXEC);
			FZ_CHECK(fd >= 0);
			it->extra[it->nextra++] = fd; /* we close our copy after sending */
			expect = SPANRING_REG_EINTERNAL; /* cannot map the consumer lines writable */
		}
		return fd < 0 ? -2 : (it->fds[it->nfds++] = fd, expect);
	case K_PIPE: {
		int pp[2];
		FZ_CHECK(pipe2(pp, O_CLOEXEC) == 0);
		struct stat ps;
		FZ_CHECK(fstat(pp[0], &ps) == 0);
		snprintf(it->pipes[it->npipes++], sizeof(it->pipes[0]), "pipe:[%lu]",
			 (unsigned long)ps.st_ino);
		it->fds[it->nfds++] = pp[0];
		it->extra[it->nextra++] = pp[0];
		it->extra[it->nextra++] = pp[1];
		return SPANRING_REG_ENOTMEMFD;
	}
	case K_DEVZERO:
		fd = open("/dev/zero", O_RDWR | O_CLOEXEC);
		expect = SPANRING_REG_ENOTMEMFD;
		break;
	case K_UNSEALED:
		fd = memfd_sized(65536, 0);
		expect = SPANRING_REG_ESEALS;
		break;
	case K_NO_SEAL_SEAL:
		fd = memfd_sized(65536, F_SEAL_SHRINK | F_SEAL_GROW);
		expect = SPANRING_REG_ESEALS;
		break;
	case K_WRITE_SEALED:
		fd = memfd_sized(65536, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
		expect = SPANRING_REG_ESEALS;
		break;
	case K_SOCKET:
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		expect = SPANRING_REG_ENOTMEMFD;
		break;
	case K_FILE:
		fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		/* not shmem: F_GET_SEALS fails; on tmpfs it is sealed with SEAL only */
		expect = -1;
		break;
	default:
		fd = eventfd(0, EFD_CLOEXEC);
		expect = SPANRING_REG_ENOTMEMFD;
		break;
	}
	FZ_CHECK(fd >= 0);
	*size = 65536;
	it->fds[it->nfds++] = fd;
	it->extra[it->nextra++] = fd;
	return expect;
}

static void pump(int rounds)
{
	for (int i = 0; i < rounds; i++) {
		loop_run_once(&ag.loop, 0);
		registry_reap(&ag);
	}
}

static bool is_eventfd(int fd)
{
	char p[64], l[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, l, sizeof(l) - 1);
	if (n < 0)
		return false;
	l[n] = 0;
	return strstr(l, "eventfd") != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = {data, size};
	uint8_t conf = fz_u8(&in);
	int want_fds = conf & 3;
	bool deny = conf & 4, stall = conf & 8, second = conf & 16, bell = conf & 32;
	cfg.allow_uids = deny ? &deny_uid : NULL;
	cfg.n_allow_uids = deny ? 1 : 0;

	static struct iter it;
	memset(&it, 0, sizeof(it));
	int expect = want_fds == 1 ? SPANRING_REG_OK : SPANRING_REG_EPROTO;
	uint64_t ring_size = 0;
	for (int i = 0; i < want_fds; i++) {
		uint64_t sz;
		int e = make_fd(&it, fz_u8(&in) % K_N, &in, &sz);
		if (i == 0) {
			ring_size = sz;
			if (want_fds == 1)
				expect = e;
		}
	}

	struct spanring_reg_req req;
	memset(&req, 0, sizeof(req));
	req.magic = SPANRING_REG_MAGIC;
	req.abi_major = SPANRING_ABI_MAJOR;
	req.abi_minor = SPANRING_ABI_MINOR;
	req.ring_size = ring_size;
	uint8_t msg[128];
	size_t msg_len = sizeof(req);
	uint8_t mode = fz_u8(&in);
	bool well_formed = true;
	memcpy(msg, &req, sizeof(req));
	if (mode == 0) {
		size_t want = fz_u8(&in) % sizeof(msg), got;
		const uint8_t *b = fz_bytes(&in, want, &got);
		memcpy(msg, b, got);
		msg_len = got;
		well_formed = false;
	} else if (mode & 1) {
		size_t off = fz_u8(&in) % sizeof(req), want = fz_u8(&in) % 16, got;
		const uint8_t *b = fz_bytes(&in, want, &got);
		if (got > sizeof(req) - off)
			got = sizeof(req) - off;
		memcpy(msg + off, b, got);
		if (got)
			well_formed = false;
	}
	if (!well_formed)
		expect = -1;
	else if (deny && want_fds == 1)
		expect = SPANRING_REG_EPERM;

	struct agent_stats st0 = ag.st;
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	FZ_CHECK(s >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cfg.socket_path);
	FZ_CHECK(connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	if (!stall) {
		ssize_t r = sr_fd_send(s, msg, msg_len, it.fds, (size_t)it.nfds, MSG_NOSIGNAL);
		FZ_CHECK(r == (ssize_t)msg_len);
		if (second)
			(void)send(s, msg, msg_len ? msg_len : 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	/* Our copies of the fds are not needed any more (the agent has its own). */
	for (int i = 0; i < it.nextra; i++)
		close(it.extra[i]);

	struct spanring_reg_resp resp;
	int got_fd = -1;
	ssize_t n = -1;
	bool reset = false;
	/* A request that asks for no reply (SPANRING_REG_F_NOREPLY): when the
	 * agent registers it, nothing comes back; a rejection is answered. */
	bool noreply = false, noreply_done = false;
	if (msg_len >= sizeof(struct spanring_reg_req)) {
		struct spanring_reg_req rq;
		memcpy(&rq, msg, sizeof(rq));
		noreply = (rq.flags & SPANRING_REG_F_NOREPLY) != 0;
	}
	for (int round = 0; round < 50 && !stall; round++) {
		pump(1);
		if (noreply && ag.st.registered == st0.registered + 1) {
			noreply_done = true;
			FZ_CHECK(recv(s, &resp, sizeof(resp), MSG_DONTWAIT) < 0 && errno == EAGAIN);
			break;
		}
		struct sr_fd_msg rm;
		n = sr_fd_recv(s, &resp, sizeof(resp), 4, MSG_DONTWAIT, &rm);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0 && msg_len == 0) {
			n = 0;
			break; /* an empty SEQPACKET message reads like the end: closed */
		}
		if (n < 0 && errno == ECONNRESET) {
			/* The agent closed with data of ours unread (our extra
			 * message; rarely, about once in a million runs, also
			 * without one): the kernel reports the reset before the
			 * queued reply. The request must have been decided. */
			FZ_CHECK(ag.st.rejected + ag.st.registered ==
				 st0.rejected + st0.registered + 1);
			reset = true;
			break;
		}
		if (n < 0)
			perror("recvmsg");
		FZ_CHECK(n >= 0);
		FZ_CHECK(!rm.foreign);
		int nfd = (int)rm.nfds;
		for (size_t j = 0; j < rm.nfds; j++) {
			if (got_fd < 0)
				got_fd = rm.fds[j];
			else
				close(rm.fds[j]);
		}
		FZ_CHECK(!(rm.flags & (MSG_TRUNC | MSG_CTRUNC)));
		FZ_CHECK(n == (ssize_t)sizeof(resp));
		FZ_CHECK(resp.magic == SPANRING_REG_MAGIC);
		FZ_CHECK(resp.status >= SPANRING_REG_OK && resp.status <= SPANRING_REG_EINTERNAL);
		FZ_CHECK(memchr(resp.message, 0, sizeof(resp.message)) != NULL);
		FZ_CHECK(resp.abi_major == SPANRING_ABI_MAJOR);
		if (resp.status == SPANRING_REG_OK) {
			FZ_CHECK(nfd == 1 && is_eventfd(got_fd) && resp.producer_id != 0);
			FZ_CHECK(ag.st.registered == st0.registered + 1);
		} else {
			FZ_CHECK(nfd == 0 && resp.producer_id == 0);
			FZ_CHECK(ag.st.rejected == st0.rejected + 1);
			FZ_CHECK(ag.st.rejected_by_reason[resp.status] ==
				 st0.rejected_by_reason[resp.status] + 1);
		}
		if (expect >= 0 && (int)resp.status != expect) {
			fprintf(stderr, "status %d (%s), expected %d\n", resp.status, resp.message,
				expect);
			FZ_CHECK((int)resp.status == expect);
		}
		break;
	}
	if (stall) {
		pump(2);
		FZ_CHECK(ag.n_pending == 1 && ag.n_producers == 0);
	} else if (noreply_done) {
		FZ_CHECK(ag.n_producers == 1 && got_fd < 0); /* registered, no doorbell sent */
	} else if (!(n == 0 && msg_len == 0) && !reset) {
		FZ_CHECK(n == (ssize_t)sizeof(resp)); /* answered within the rounds */
	}
	if (got_fd >= 0 && bell) {
		uint64_t one = 1;
		FZ_CHECK(write(got_fd, &one, sizeof(one)) == sizeof(one));
		pump(2);
	}
	if (got_fd >= 0)
		close(got_fd);
	close(s);
	for (int round = 0; round < 50 && (ag.n_producers || ag.n_pending); round++) {
		pump(1);
		agent_flush(&ag);
	}
	FZ_CHECK(ag.n_producers == 0 && ag.n_pending == 0 && ag.producers == NULL);
	for (int i = 0; i < it.nrings; i++)
		sr_ring_unmap(&it.rings[i].m, true);
	cfg.allow_uids = NULL;
	cfg.n_allow_uids = 0;
	FZ_CHECK_FDS(base_fds);
	for (int i = 0; i < it.npipes; i++)
		FZ_CHECK(fz_fd_open_to(it.pipes[i]) == 0);
	return 0;
}
