/* SPDX-License-Identifier: MIT */
/*
 * lib/client.c's deferred registration (what the LD_PRELOAD shim uses)
 * against a scripted agent on a real unix socket: no thread and no
 * connection until needed; a final registration sends one request with
 * SPANRING_REG_F_NOREPLY and the memfd, reads nothing, keeps the
 * connection open until the process ends; a first span's thread
 * registers the usual way instead, and then a final registration steps
 * aside; no agent at all. Each scenario runs in its own child process,
 * since the client's state is per process.
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

/* The scripted agent: answers a request unless it says NOREPLY, and keeps
 * the last connection to see when it ends. */
static struct {
	int lfd;
	pthread_t th;
	pthread_mutex_t mu;
	bool stop;
	int conns;
	uint32_t last_flags;
	ino_t last_ino;
	int conn;
} fk;

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
		if (poll(&pf, 1, 10) <= 0)
			continue;
		int c = accept4(fk.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		struct spanring_reg_req req;
		struct sr_fd_msg rm;
		if (sr_fd_recv(c, &req, sizeof(req), 1, 0, &rm) != (ssize_t)sizeof(req)) {
			close(c);
			continue;
		}
		int fd = rm.nfds ? rm.fds[0] : -1;
		struct stat st;
		ino_t ino = (fd >= 0 && fstat(fd, &st) == 0) ? st.st_ino : 0;
		if (fd >= 0)
			close(fd);
		if (!(req.flags & SPANRING_REG_F_NOREPLY)) {
			struct spanring_reg_resp resp;
			memset(&resp, 0, sizeof(resp));
			resp.magic = SPANRING_REG_MAGIC;
			resp.abi_major = SPANRING_ABI_MAJOR;
			ssize_t r = send(c, &resp, sizeof(resp), MSG_NOSIGNAL);
			(void)r;
		}
		pthread_mutex_lock(&fk.mu);
		fk.conns++;
		fk.last_flags = req.flags;
		fk.last_ino = ino;
		if (fk.conn >= 0)
			close(fk.conn);
		fk.conn = c;
		pthread_mutex_unlock(&fk.mu);
	}
}

static char sock_path[108];

static void fake_start(void)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/spanring-defer-%d.sock", (int)getpid());
	setenv("SPANRING_SOCKET", sock_path, 1);
	memset(&fk, 0, sizeof(fk));
	pthread_mutex_init(&fk.mu, NULL);
	fk.conn = -1;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	unlink(sock_path);
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
	unlink(sock_path);
}

static int fake_conns(void)
{
	pthread_mutex_lock(&fk.mu);
	int n = fk.conns;
	pthread_mutex_unlock(&fk.mu);
	return n;
}

static bool wait_conns(int n, int ms)
{
	for (int i = 0; i < ms / 2; i++) {
		if (fake_conns() >= n)
			return true;
		usleep(2000);
	}
	return fake_conns() >= n;
}

/* Has the last connection ended (the producer's side closed)? */
static bool conn_ended(int ms)
{
	pthread_mutex_lock(&fk.mu);
	struct pollfd pf = {.fd = fk.conn, .events = POLLIN | POLLRDHUP};
	int r = poll(&pf, 1, ms);
	pthread_mutex_unlock(&fk.mu);
	return r == 1 && (pf.revents & (POLLHUP | POLLRDHUP));
}

static ino_t ring_ino(const struct tr *t)
{
	struct stat st;
	return fstat(t->m.fd, &st) == 0 ? st.st_ino : 0;
}

/* Run fn in a child process; it returns 0 for success or a line number. */
static void in_child(int (*fn)(int), int arg)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int r = fn(arg);
		if (r)
			fprintf(stderr, "child failed at line %d\n", r);
		_exit(r ? 1 : 0);
	}
	int wst;
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_true(WIFEXITED(wst));
	assert_int_equal(WEXITSTATUS(wst), 0);
}

#define CHECK(c)                                                                              \
	do {                                                                                  \
		if (!(c))                                                                     \
			return __LINE__;                                                      \
	} while (0)

static struct tr ring;

static void make_ring(void)
{
	uint8_t res[64];
	size_t rl = tr_encode_resource(res, "defer-test", false);
	if (tr_create(&ring, 1, 16384, res, rl))
		_exit(99);
}

/* Deferred, then the end: one request with NOREPLY and our memfd, no
 * thread, the connection kept open while the process lives and closed by
 * its exit; later calls say "sent". The producer is a grandchild (it
 * shares the ring's memfd); the child plays the agent. */
static int producer_final(int go_fd)
{
	sr_client_defer();
	sr_client_start(&ring.m);
	CHECK(sr_client_deferred());
	CHECK(!sr_client_thread_alive());
	usleep(100000);
	CHECK(sr_client_register_final(1000) == 0);
	CHECK(!sr_client_deferred());
	CHECK(sr_client_register_final(1000) == 0); /* sent already */
	CHECK(sr_client_flush(1000) == 0);
	sr_client_start_deferred(); /* too late: no thread, no second request */
	CHECK(!sr_client_thread_alive());
	char b;
	CHECK(read(go_fd, &b, 1) == 1); /* the agent has looked */
	return 0;
}

static int child_final(int unused)
{
	(void)unused;
	fake_start();
	make_ring();
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(go[1]); /* so that the child's end ends the wait */
		int r = producer_final(go[0]);
		if (r)
			fprintf(stderr, "producer failed at line %d\n", r);
		_exit(r ? 1 : 0);
	}
	usleep(50000);
	CHECK(fake_conns() == 0); /* nothing until needed */
	CHECK(wait_conns(1, 2000));
	pthread_mutex_lock(&fk.mu);
	bool flags_ok = (fk.last_flags & SPANRING_REG_F_NOREPLY) != 0;
	bool ino_ok = fk.last_ino == ring_ino(&ring);
	pthread_mutex_unlock(&fk.mu);
	CHECK(flags_ok);
	CHECK(ino_ok);
	CHECK(!conn_ended(50)); /* open while the producer lives */
	CHECK(write(go[1], "x", 1) == 1);
	int wst;
	CHECK(waitpid(pid, &wst, 0) == pid);
	CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
	CHECK(conn_ended(1000)); /* its exit ended the connection */
	CHECK(fake_conns() == 1);
	fake_stop();
	return 0;
}

static void test_final(void **state)
{
	(void)state;
	in_child(child_final, 0);
}

/* Deferred, then a first span: the thread registers (with a reply), and a
 * final registration steps aside. */
static int child_thread(int unused)
{
	(void)unused;
	fake_start();
	make_ring();
	sr_client_defer();
	sr_client_start(&ring.m);
	CHECK(sr_client_deferred());
	sr_client_hold++;
	sr_client_start_deferred(); /* held: nothing happens */
	sr_client_hold--;
	CHECK(sr_client_deferred());
	sr_client_start_deferred();
	CHECK(!sr_client_deferred());
	CHECK(sr_client_thread_alive());
	CHECK(sr_client_flush(3000) == 0);
	CHECK(sr_client_registered());
	CHECK(sr_client_register_final(100) == -EALREADY);
	CHECK(wait_conns(1, 2000));
	pthread_mutex_lock(&fk.mu);
	bool flags_ok = (fk.last_flags & SPANRING_REG_F_NOREPLY) == 0;
	pthread_mutex_unlock(&fk.mu);
	CHECK(flags_ok);
	sr_client_stop();
	CHECK(fake_conns() == 1);
	fake_stop();
	return 0;
}

static void test_thread(void **state)
{
	(void)state;
	in_child(child_thread, 0);
}

/* No agent: the final registration fails at once, and says so again. */
static int child_none(int unused)
{
	(void)unused;
	make_ring();
	sr_client_defer();
	sr_client_start(&ring.m);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(sr_client_register_final(2000) == -ENOTCONN);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(t1.tv_sec - t0.tv_sec < 1);
	CHECK(sr_client_register_final(2000) == -ENOTCONN); /* and says so again */
	CHECK(sr_client_flush(100) == -ENOTCONN);
	return 0;
}

static void test_no_agent(void **state)
{
	(void)state;
	snprintf(sock_path, sizeof(sock_path), "/tmp/spanring-defer-none-%d.sock", (int)getpid());
	unlink(sock_path);
	setenv("SPANRING_SOCKET", sock_path, 1);
	in_child(child_none, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_final),
		cmocka_unit_test(test_thread),
		cmocka_unit_test(test_no_agent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
