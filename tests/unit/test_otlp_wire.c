/* SPDX-License-Identifier: MIT */
/*
 * OTLP exporter wire helpers: ExportTraceServiceResponse (partial
 * success), google.rpc.Status with RetryInfo (as in an OTLP/HTTP error body
 * and in grpc-status-details-bin, base64), gRPC framing and grpc-message
 * decoding, gzip and gather (the copying paths).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "otlp_wire.h"
#include "otlp_trace_service.pb-c.h"
#include "rpc_status.pb-c.h"

static void test_grpc_prefix(void **state)
{
	(void)state;
	uint8_t p[5];
	otlp_grpc_prefix(p, false, 0x01020304);
	static const uint8_t want[5] = {0, 1, 2, 3, 4};
	assert_memory_equal(p, want, 5);
	otlp_grpc_prefix(p, true, 300);
	static const uint8_t want2[5] = {1, 0, 0, 1, 44};
	assert_memory_equal(p, want2, 5);
}

static void test_response(void **state)
{
	(void)state;
	bool present;
	int64_t rej;
	char msg[64];
	/* empty body: full success */
	assert_int_equal(otlp_resp_decode(NULL, 0, &present, &rej, msg, sizeof(msg)), 0);
	assert_false(present);
	Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
	ps.rejected_spans = 7;
	ps.error_message = "too old\nspans";
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse r =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	r.partial_success = &ps;
	uint8_t buf[128];
	size_t n = opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&r, buf);
	assert_int_equal(otlp_resp_decode(buf, n, &present, &rej, msg, sizeof(msg)), 0);
	assert_true(present);
	assert_int_equal(rej, 7);
	assert_string_equal(msg, "too old?spans"); /* log-safe */
	/* a warning-only partial success: present, 0 rejected */
	ps.rejected_spans = 0;
	n = opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&r, buf);
	assert_int_equal(otlp_resp_decode(buf, n, &present, &rej, msg, sizeof(msg)), 0);
	assert_true(present);
	assert_int_equal(rej, 0);
	/* garbage */
	static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff};
	assert_int_equal(otlp_resp_decode(junk, sizeof(junk), &present, &rej, msg, sizeof(msg)),
			 -EBADMSG);
}

static size_t pack_status(uint8_t *buf, int code, const char *m, int64_t s, int32_t ns,
			  const char *type_url)
{
	Google__Rpc__Duration d = GOOGLE__RPC__DURATION__INIT;
	d.seconds = s;
	d.nanos = ns;
	Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
	ri.retry_delay = &d;
	uint8_t rib[64];
	size_t rin = google__rpc__retry_info__pack(&ri, rib);
	Google__Rpc__Any other = GOOGLE__RPC__ANY__INIT, any = GOOGLE__RPC__ANY__INIT;
	other.type_url = "type.googleapis.com/google.rpc.BadRequest";
	any.type_url = (char *)type_url;
	any.value.data = rib;
	any.value.len = rin;
	Google__Rpc__Any *det[2] = {&other, &any};
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	st.code = code;
	st.message = (char *)m;
	st.n_details = type_url ? 2 : 1;
	st.details = det;
	return google__rpc__status__pack(&st, buf);
}

static void test_status(void **state)
{
	(void)state;
	uint8_t buf[256];
	int code;
	char msg[64];
	bool ri;
	uint64_t delay;
	size_t n = pack_status(buf, 14, "busy", 2, 500000000, "type.googleapis.com/google.rpc.RetryInfo");
	assert_int_equal(otlp_status_decode(buf, n, &code, msg, sizeof(msg), &ri, &delay), 0);
	assert_int_equal(code, 14);
	assert_string_equal(msg, "busy");
	assert_true(ri);
	assert_int_equal(delay, 2500000000ull);
	n = pack_status(buf, 8, "full", 1, 0, NULL);
	assert_int_equal(otlp_status_decode(buf, n, &code, msg, sizeof(msg), &ri, &delay), 0);
	assert_false(ri);
	assert_int_equal(delay, 0);
	/* negative delays are not honoured but RetryInfo is still present */
	n = pack_status(buf, 8, "x", -5, 0, "type.googleapis.com/google.rpc.RetryInfo");
	assert_int_equal(otlp_status_decode(buf, n, &code, msg, sizeof(msg), &ri, &delay), 0);
	assert_true(ri);
	assert_int_equal(delay, 0);
	static const uint8_t junk[] = {0x12, 0x05, 'a'};
	assert_int_equal(otlp_status_decode(junk, sizeof(junk), &code, msg, sizeof(msg), &ri, &delay),
			 -EBADMSG);
}

static void test_base64(void **state)
{
	(void)state;
	uint8_t out[64];
	size_t n;
	assert_int_equal(otlp_base64_decode("aGVsbG8=", 8, out, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "hello", 5);
	assert_int_equal(otlp_base64_decode("aGVsbG8", 7, out, &n), 0); /* unpadded, as gRPC */
	assert_int_equal(n, 5);
	assert_int_equal(otlp_base64_decode("", 0, out, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(otlp_base64_decode("a", 1, out, &n), -EINVAL);
	assert_int_equal(otlp_base64_decode("aG!s", 4, out, &n), -EINVAL);
	/* a Status with RetryInfo through base64, as grpc-status-details-bin */
	uint8_t st[256];
	size_t sn = pack_status(st, 14, "later", 0, 250000000, "type.googleapis.com/google.rpc.RetryInfo");
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char b64[512];
	size_t k = 0;
	for (size_t i = 0; i < sn; i += 3) {
		uint32_t v = (uint32_t)st[i] << 16 | (i + 1 < sn ? (uint32_t)st[i + 1] << 8 : 0) |
			     (i + 2 < sn ? st[i + 2] : 0);
		b64[k++] = tbl[v >> 18 & 63];
		b64[k++] = tbl[v >> 12 & 63];
		if (i + 1 < sn)
			b64[k++] = tbl[v >> 6 & 63];
		if (i + 2 < sn)
			b64[k++] = tbl[v & 63];
	}
	uint8_t dec[256];
	size_t dn;
	assert_int_equal(otlp_base64_decode(b64, k, dec, &dn), 0);
	assert_int_equal(dn, sn);
	int code;
	char msg[16];
	bool ri;
	uint64_t delay;
	assert_int_equal(otlp_status_decode(dec, dn, &code, msg, sizeof(msg), &ri, &delay), 0);
	assert_true(ri);
	assert_int_equal(delay, 250000000ull);
}

static void test_grpc_message(void **state)
{
	(void)state;
	char out[32];
	otlp_grpc_message_decode("a%20b%25c%zz%4", 14, out, sizeof(out));
	assert_string_equal(out, "a b%c%zz%4");
	otlp_grpc_message_decode("x%0Ay", 5, out, sizeof(out));
	assert_string_equal(out, "x?y");
	otlp_grpc_message_decode("0123456789", 10, out, 4);
	assert_string_equal(out, "012");
}

static void test_gzip_gather(void **state)
{
	(void)state;
	char a[] = "hello, ", b[] = "gzip ", c[4096];
	for (size_t i = 0; i < sizeof(c); i++)
		c[i] = (char)('a' + i % 7);
	struct iovec iov[3] = {{a, 7}, {b, 5}, {c, sizeof(c)}};
	size_t total = 12 + sizeof(c);
	uint8_t *flat = otlp_gather(iov, 3, total);
	assert_memory_equal(flat, "hello, gzip ", 12);
	assert_memory_equal(flat + 12, c, sizeof(c));
	uint8_t *z;
	size_t zl;
	assert_int_equal(otlp_gzip(iov, 3, &z, &zl), 0);
	assert_true(zl < total);
	assert_int_equal(z[0], 0x1f); /* gzip magic */
	assert_int_equal(z[1], 0x8b);
	uint8_t back[8192];
	z_stream s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(inflateInit2(&s, 15 + 16), Z_OK);
	s.next_in = z;
	s.avail_in = (uInt)zl;
	s.next_out = back;
	s.avail_out = sizeof(back);
	assert_int_equal(inflate(&s, Z_FINISH), Z_STREAM_END);
	assert_int_equal(s.total_out, total);
	inflateEnd(&s);
	assert_memory_equal(back, flat, total);
	free(z);
	free(flat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grpc_prefix),  cmocka_unit_test(test_response),
		cmocka_unit_test(test_status),	     cmocka_unit_test(test_base64),
		cmocka_unit_test(test_grpc_message), cmocka_unit_test(test_gzip_gather),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
