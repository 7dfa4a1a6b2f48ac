/* SPDX-License-Identifier: MIT */
/*
 * lib/common's codecs and descriptor passing: base64 round trips of every
 * length and both alphabets, and sr_fd_send/sr_fd_recv over a socket
 * pair (several descriptors, none, more than the receiver has room for).
 * Hex is tested with the W3C code that uses it (test_w3c.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "base64.h"
#include "fdpass.h"

static void test_base64_roundtrip(void **state)
{
	(void)state;
	uint8_t in[64], back[64];
	char enc[SR_BASE64_LEN(sizeof(in))];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n <= sizeof(in); n++) {
		sr_base64_encode(in, n, enc);
		size_t len = SR_BASE64_LEN(n), got = 0;
		for (size_t i = 0; i < len; i++)
			assert_true(enc[i] == '=' ? i >= len - 2 : enc[i] != 0);
		assert_int_equal(sr_base64_decode(enc, len, back, &got), 0);
		assert_int_equal(got, n);
		assert_memory_equal(back, in, n);
		/* unpadded, as gRPC's -bin headers */
		while (len && enc[len - 1] == '=')
			len--;
		assert_int_equal(sr_base64_decode(enc, len, back, &got), 0);
		assert_int_equal(got, n);
	}
}

static void test_base64_known(void **state)
{
	(void)state;
	char enc[8];
	uint8_t out[8];
	size_t n;
	sr_base64_encode((const uint8_t *)"\xfb\xff", 2, enc);
	assert_memory_equal(enc, "+/8=", 4);
	assert_int_equal(sr_base64_decode("-_8", 3, out, &n), 0); /* URL-safe alphabet */
	assert_int_equal(n, 2);
	assert_memory_equal(out, "\xfb\xff", 2);
	assert_int_equal(sr_base64_decode("aGk=x", 5, out, &n), -EINVAL);
	assert_int_equal(sr_base64_decode("a===", 4, out, &n), -EINVAL); /* 4k+1 digits */
	assert_int_equal(sr_base64_decode("aGVsbG8", 7, out, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "hello", 5);
}

static void test_fdpass(void **state)
{
	(void)state;
	int sp[2], p[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);

	/* two descriptors, arriving in order, close-on-exec */
	assert_int_equal(sr_fd_send(sp[0], "ab", 2, p, 2, MSG_NOSIGNAL), 2);
	char buf[8];
	struct sr_fd_msg m;
	assert_int_equal(sr_fd_recv(sp[1], buf, sizeof(buf), 4, 0, &m), 2);
	assert_int_equal(m.nfds, 2);
	assert_false(m.foreign);
	assert_int_equal(m.flags & (MSG_TRUNC | MSG_CTRUNC), 0);
	assert_true(fcntl(m.fds[0], F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(read(m.fds[0], buf, 1), 1); /* the pipe's read end */
	close(m.fds[0]);
	close(m.fds[1]);

	/* none */
	assert_int_equal(sr_fd_send(sp[0], "c", 1, NULL, 0, MSG_NOSIGNAL), 1);
	assert_int_equal(sr_fd_recv(sp[1], buf, sizeof(buf), 4, 0, &m), 1);
	assert_int_equal(m.nfds, 0);

	/* more than the receiver takes: the kernel drops the rest, CTRUNC */
	int many[3] = {p[0], p[1], p[0]};
	assert_int_equal(sr_fd_send(sp[0], "d", 1, many, 3, MSG_NOSIGNAL), 1);
	assert_int_equal(sr_fd_recv(sp[1], buf, sizeof(buf), 2, 0, &m), 1);
	assert_int_equal(m.nfds, 2);
	assert_true(m.flags & MSG_CTRUNC);
	close(m.fds[0]);
	close(m.fds[1]);

	/* more than one message can carry */
	int too_many[SR_FDPASS_MAX + 1] = {0};
	errno = 0;
	assert_int_equal(sr_fd_send(sp[0], "e", 1, too_many, SR_FDPASS_MAX + 1, 0), -1);
	assert_int_equal(errno, EINVAL);

	/* nothing waiting */
	assert_int_equal(sr_fd_recv(sp[1], buf, sizeof(buf), 1, MSG_DONTWAIT, &m), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(m.nfds, 0);

	close(p[0]);
	close(p[1]);
	close(sp[0]);
	close(sp[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_roundtrip),
		cmocka_unit_test(test_base64_known),
		cmocka_unit_test(test_fdpass),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
