/* SPDX-License-Identifier: MIT */
/*
 * lib/client.c against a scripted agent (a thread on a real unix socket):
 * registration, the memfd and the doorbell crossing the socket, reconnect
 * with SPANRING_REG_F_RECONNECT and a stable doorbell fd number, rejection,
 * no agent at all, fork, and bounded stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testring.h"
#include "client.h"
#include "fdpass.h"

struct fake {
	char path[108];
	int lfd;
	pthread_t th;
	pthread_mutex_t mu;
	int status;         /* what to answer */
	bool stop;
	int conns;          /* requests answered */
	uint32_t last_flags;
	ino_t last_ino;
	int conn;           /* last accepted connection */
	int efd;            /* last doorbell handed out */
};

static struct fake fk;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fake_answer(int c)
{
	struct spanring_reg_req req;
	struct sr_fd_msg rm;
	if (sr_fd_recv(c, &req, sizeof(req), 1, 0, &rm) != (ssize_t)sizeof(req)) {
		close(c);
		return;
	}
	int fd = rm.nfds ? rm.fds[0] : -1;
	struct stat st;
	ino_t ino = (fd >= 0 && fstat(fd, &st) == 0) ? st.st_ino : 0;
	if (fd >= 0)
		close(fd);
	pthread_mutex_lock(&fk.mu);
	int status = fk.status;
	pthread_mutex_unlock(&fk.mu);
	struct spanring_reg_resp resp;
	memset(&resp, 0, sizeof(resp));
	resp.magic = SPANRING_REG_MAGIC;
	resp.status = status;
	resp.abi_major = SPANRING_ABI_MAJOR;
	snprintf(resp.message, sizeof(resp.message), "%s", status ? "scripted no" : "ok");
	int efd = status == 0 ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
	ssize_t r = sr_fd_send(c, &resp, sizeof(resp), &efd, status == 0, MSG_NOSIGNAL);
	(void)r;
	pthread_mutex_lock(&fk.mu);
	fk.conns++;
	fk.last_flags = req.flags;
	fk.last_ino = ino;
	if (status == 0) {
		if (fk.conn >= 0)
			close(fk.conn);
		if (fk.efd >= 0)
			close(fk.efd);
		fk.conn = c;
		fk.efd = efd;
	} else {
		close(c);
	}
	pthread_mutex_unlock(&fk.mu);
}

static void *fake_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&fk.mu);
		bool stop = fk.stop;
		pthread_mutex_unlock(&fk.mu);
		if (stop)
			return NULL;
		struct pollfd pf = {.fd = fk.lfd, .events = POLLIN};
		if (poll(&pf, 1, 20) <= 0)
			continue;
		int c = accept4(fk.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0)
			fake_answer(c);
	}
}

static void fake_start(const char *path, int status)
{
	memset(&fk, 0, sizeof(fk));
	pthread_mutex_init(&fk.mu, NULL);
	fk.conn = fk.efd = -1;
	fk.status = status;
	snprintf(fk.path, sizeof(fk.path), "%s", path);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	fk.lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fk.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fk.lfd, 16), 0);
	assert_int_equal(pthread_create(&fk.th, NULL, fake_main, NULL), 0);
}

static void fake_stop(void)
{
	pthread_mutex_lock(&fk.mu);
	fk.stop = true;
	pthread_mutex_unlock(&fk.mu);
	pthread_join(fk.th, NULL);
	close(fk.lfd);
	if (fk.conn >= 0)
		close(fk.conn);
	if (fk.efd >= 0)
		close(fk.efd);
	unlink(fk.path);
}

static int fake_conns(void)
{
	pthread_mutex_lock(&fk.mu);
	int n = fk.conns;
	pthread_mutex_unlock(&fk.mu);
	return n;
}

static bool wait_for(bool (*cond)(void), int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	while (now_ms() < end) {
		if (cond())
			return true;
		usleep(2000);
	}
	return cond();
}

static struct tr ring;

static void make_ring(void)
{
	uint8_t res[64];
	size_t rl = tr_encode_resource(res, "client-test", false);
	assert_int_equal(tr_create(&ring, 1, 16384, res, rl), 0);
}

static char sock_path[108];

static void set_path(const char *name)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/spanring-client-%d-%s.sock", (int)getpid(),
		 name);
	setenv("SPANRING_SOCKET", sock_path, 1);
}

static void test_no_agent(void **state)
{
	(void)state;
	set_path("none");
	unlink(sock_path);
	make_ring();
	uint64_t t0 = now_ms();
	sr_client_start(&ring.m);
	sr_client_start(&ring.m); /* idempotent */
	assert_int_equal(sr_client_flush(3000), -ENOTCONN);
	/* Answered after the first failed attempt, not at the timeout. */
	assert_true(now_ms() - t0 < 1500);
	assert_false(sr_client_registered());
	assert_int_equal(sr_load_int(&sr_doorbell_fd), -1);
	t0 = now_ms();
	sr_client_stop();
	assert_true(now_ms() - t0 < 2500);
	sr_ring_unmap(&ring.m, true);
}

static bool one_conn(void)
{
	return fake_conns() >= 1;
}

static bool registered(void)
{
	return sr_client_registered();
}

static bool reconnected(void)
{
	return fake_conns() >= 2 && sr_client_registered();
}

static void test_register_and_reconnect(void **state)
{
	(void)state;
	set_path("ok");
	fake_start(sock_path, SPANRING_REG_OK);
	make_ring();
	sr_client_start(&ring.m);
	assert_int_equal(sr_client_flush(3000), 0);
	assert_true(sr_client_registered());
	assert_true(wait_for(one_conn, 1000)); /* the fake records after replying */
	struct stat st;
	assert_int_equal(fstat(ring.m.fd, &st), 0);
	pthread_mutex_lock(&fk.mu);
	assert_int_equal(fk.last_ino, st.st_ino); /* our memfd crossed the socket */
	assert_int_equal(fk.last_flags & SPANRING_REG_F_RECONNECT, 0);
	int efd1 = fk.efd;
	pthread_mutex_unlock(&fk.mu);
	int bell = sr_load_int(&sr_doorbell_fd);
	assert_true(bell >= 0);
	uint64_t one = 1, v = 0;
	assert_int_equal(write(bell, &one, 8), 8);
	assert_int_equal(read(efd1, &v, 8), 8); /* the agent's end sees it */
	assert_int_equal(v, 2); /* ours and the client's one ring after installing (ABI 1.2) */

	/* The agent goes away (restart): the client registers again, with
	 * the RECONNECT flag, and the doorbell keeps its fd number. */
	pthread_mutex_lock(&fk.mu);
	close(fk.conn);
	fk.conn = -1;
	pthread_mutex_unlock(&fk.mu);
	assert_true(wait_for(reconnected, 3000));
	pthread_mutex_lock(&fk.mu);
	assert_true(fk.last_flags & SPANRING_REG_F_RECONNECT);
	int efd2 = fk.efd;
	pthread_mutex_unlock(&fk.mu);
	assert_int_equal(sr_load_int(&sr_doorbell_fd), bell);
	assert_int_equal(write(bell, &one, 8), 8);
	assert_int_equal(read(efd2, &v, 8), 8); /* now the new doorbell */

	/* fork: the child forgets the connection without disturbing it. */
	pid_t pid = fork();
	if (pid == 0) {
		sr_client_atfork_child(false);
		int ok = sr_load_int(&sr_doorbell_fd) == -1 && !sr_client_registered() &&
			 sr_client_flush(10) == -ENOTCONN && fcntl(bell, F_GETFD) < 0;
		_exit(ok ? 0 : 1);
	}
	int wst;
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
	usleep(50000);
	assert_true(sr_client_registered());
	pthread_mutex_lock(&fk.mu);
	struct pollfd pf = {.fd = fk.conn, .events = POLLIN | POLLRDHUP};
	assert_int_equal(poll(&pf, 1, 0), 0); /* no hang-up seen by the agent */
	pthread_mutex_unlock(&fk.mu);

	uint64_t t0 = now_ms();
	sr_client_stop();
	assert_true(now_ms() - t0 < 2500);
	assert_false(sr_client_registered());
	assert_int_equal(sr_load_int(&sr_doorbell_fd), -1);
	/* The connection is closed: the agent sees the end. */
	pthread_mutex_lock(&fk.mu);
	pf.fd = fk.conn;
	assert_int_equal(poll(&pf, 1, 1000), 1);
	pthread_mutex_unlock(&fk.mu);
	fake_stop();
	sr_ring_unmap(&ring.m, true);
}

static void test_rejected(void **state)
{
	(void)state;
	set_path("rej");
	fake_start(sock_path, SPANRING_REG_EPERM);
	make_ring();
	sr_client_start(&ring.m);
	assert_int_equal(sr_client_flush(3000), -ENOTCONN);
	assert_false(sr_client_registered());
	/* The fake counts after its reply went out: let it finish. */
	assert_true(wait_for(one_conn, 1000));
	/* The policy changes; a flush asks for an attempt now rather than in 30 s. */
	pthread_mutex_lock(&fk.mu);
	fk.status = SPANRING_REG_OK;
	pthread_mutex_unlock(&fk.mu);
	assert_int_equal(sr_client_flush(3000), 0);
	assert_true(wait_for(registered, 1000));
	sr_client_stop();
	fake_stop();
	sr_ring_unmap(&ring.m, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_agent),
		cmocka_unit_test(test_register_and_reconnect),
		cmocka_unit_test(test_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
