/* SPDX-License-Identifier: MIT */
/*
 * spanring-dump's input side (tools/dump/json.c, otlp_in.c): the JSON
 * reader on valid, truncated and hostile documents; OTLP/JSON decoding as
 * the exact inverse of the OTLP/JSON writer (lib/common/otlp_json.c),
 * checked through protobuf-c's canonical encoding; the nesting check that
 * keeps hostile protobuf from exhausting the stack.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "otlp_json.h"
#include "sbuf.h"
#include "dump/dump.h"
#include "dump/json.h"
#include "dump/otlp_in.h"
#include "pbwire.h"

static const ProtobufCMessageDescriptor *req_desc =
	&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;

static void test_json_values(void **state)
{
	(void)state;
	const char *doc = " {\"a\": [1, -2.5e3, \"x\\u00e9\\ud83d\\ude00\\n\", true, false, null],"
			  " \"b\": {\"c\": \"\\ud800\"}, \"n\": \"18446744073709551615\"} ";
	struct json j;
	char err[128];
	assert_int_equal(json_parse(doc, strlen(doc), &j, err, sizeof(err)), 0);
	const struct json *a = json_get(&j, "a");
	assert_non_null(a);
	assert_int_equal(a->t, JSON_ARR);
	assert_int_equal(a->len, 6);
	assert_true(a->arr[0].num == 1);
	assert_true(a->arr[1].num == -2500);
	assert_string_equal(a->arr[1].s, "-2.5e3"); /* the literal is kept for int64 */
	assert_string_equal(a->arr[2].s, "x\xc3\xa9\xf0\x9f\x98\x80\n");
	assert_true(a->arr[3].b);
	assert_int_equal(a->arr[5].t, JSON_NULL);
	/* A lone surrogate becomes U+FFFD. */
	assert_string_equal(json_str(json_get(&j, "b"), "c", ""), "\xef\xbf\xbd");
	uint64_t n = 0;
	assert_true(json_u64(&j, "n", &n));
	assert_true(n == UINT64_MAX);
	json_free(&j);
}

static void test_json_errors(void **state)
{
	(void)state;
	static const char *bad[] = {
		"", "{", "{\"a\"", "{\"a\":", "{\"a\":1", "[1,", "[1 2]", "{\"a\" 1}", "\"abc",
		"\"\\x\"", "\"\\u12\"", "tru", "nul", "-", "1.", "1e", "{} x", "{\"a\":1,}", "[,]",
		"\"a\tb\"",
	};
	char err[128];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json j;
		err[0] = 0;
		assert_int_equal(json_parse(bad[i], strlen(bad[i]), &j, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "at byte"));
	}
	/* Every prefix of a valid document fails cleanly (ASan watches). */
	const char *doc = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
			  "\"0102\",\"name\":\"\\u00e9\",\"kind\":2}]}]}]}";
	size_t n = strlen(doc);
	for (size_t k = 0; k < n; k++) {
		char *cut = malloc(k ? k : 1);
		memcpy(cut, doc, k);
		struct json j;
		assert_int_equal(json_parse(cut, k, &j, err, sizeof(err)), -1);
		free(cut);
	}
}

static void test_json_depth(void **state)
{
	(void)state;
	char buf[512];
	struct json j;
	char err[128];
	for (int depth = JSON_MAX_DEPTH; depth <= JSON_MAX_DEPTH + 1; depth++) {
		int k = 0;
		for (int i = 0; i < depth + 1; i++)
			buf[k++] = '[';
		for (int i = 0; i < depth + 1; i++)
			buf[k++] = ']';
		int rc = json_parse(buf, (size_t)k, &j, err, sizeof(err));
		if (depth == JSON_MAX_DEPTH) {
			assert_int_equal(rc, 0);
			json_free(&j);
		} else {
			assert_int_equal(rc, -1);
			assert_non_null(strstr(err, "nesting too deep"));
		}
	}
}

/* A request using every field type of the OTLP trace schema. */
static uint8_t *sample_request(size_t *len)
{
	static uint8_t tid[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0xff};
	static uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, 0x80}, pid[8] = {9, 9, 9, 9, 9, 9, 9, 9};
	static uint8_t blob[5] = {0, 0xff, 'a', 0x10, 0x7f};
	Opentelemetry__Proto__Common__V1__AnyValue vs = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT,
						   vi = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT,
						   vd = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT,
						   vb = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT,
						   vy = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT,
						   va = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT,
						   vk = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT,
						   vf = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	vs.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	vs.string_value = "caf\xc3\xa9 \"quoted\" \\ \n";
	vi.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	vi.int_value = INT64_MIN;
	vd.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
	vd.double_value = 0.1;
	vb.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
	vb.bool_value = 0; /* a oneof member with the default value is still shown */
	vy.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
	vy.bytes_value.data = blob;
	vy.bytes_value.len = sizeof(blob);
	Opentelemetry__Proto__Common__V1__AnyValue *items[] = {&vs, &vi};
	Opentelemetry__Proto__Common__V1__ArrayValue arr = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
	arr.n_values = 2;
	arr.values = items;
	va.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
	va.array_value = &arr;
	Opentelemetry__Proto__Common__V1__KeyValue kin = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	kin.key = "inner";
	kin.value = &vd;
	Opentelemetry__Proto__Common__V1__KeyValue *kins[] = {&kin};
	Opentelemetry__Proto__Common__V1__KeyValueList kl = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
	kl.n_values = 1;
	kl.values = kins;
	vk.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
	vk.kvlist_value = &kl;
	vf.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
	vf.double_value = -1.5e300;
	Opentelemetry__Proto__Common__V1__AnyValue *vals[] = {&vs, &vi, &vd, &vb, &vy, &va, &vk, &vf};
	static const char *keys[] = {"s", "i", "d", "b", "y", "a", "k", "f"};
	Opentelemetry__Proto__Common__V1__KeyValue kv[8];
	Opentelemetry__Proto__Common__V1__KeyValue *kvp[8];
	for (int i = 0; i < 8; i++) {
		opentelemetry__proto__common__v1__key_value__init(&kv[i]);
		kv[i].key = (char *)keys[i];
		kv[i].value = vals[i];
		kvp[i] = &kv[i];
	}
	Opentelemetry__Proto__Trace__V1__Span__Event ev = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
	ev.time_unix_nano = UINT64_MAX;
	ev.name = "ev";
	ev.n_attributes = 2;
	ev.attributes = kvp;
	ev.dropped_attributes_count = 3;
	Opentelemetry__Proto__Trace__V1__Span__Event *evp[] = {&ev};
	Opentelemetry__Proto__Trace__V1__Span__Link ln = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
	ln.trace_id.data = tid;
	ln.trace_id.len = 16;
	ln.span_id.data = pid;
	ln.span_id.len = 8;
	ln.trace_state = "a=b";
	ln.flags = 0x301;
	Opentelemetry__Proto__Trace__V1__Span__Link *lnp[] = {&ln};
	Opentelemetry__Proto__Trace__V1__Status st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
	st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
	st.message = "bad";
	dump_span_t sp = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
	sp.trace_id.data = tid;
	sp.trace_id.len = 16;
	sp.span_id.data = sid;
	sp.span_id.len = 8;
	sp.parent_span_id.data = pid;
	sp.parent_span_id.len = 8;
	sp.trace_state = "k=v";
	sp.flags = 257;
	sp.name = "op";
	sp.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER;
	sp.start_time_unix_nano = 1700000000123456789ull;
	sp.end_time_unix_nano = 1700000000223456789ull;
	sp.n_attributes = 8;
	sp.attributes = kvp;
	sp.dropped_attributes_count = 7;
	sp.n_events = 1;
	sp.events = evp;
	sp.dropped_events_count = UINT32_MAX;
	sp.n_links = 1;
	sp.links = lnp;
	sp.dropped_links_count = 1;
	sp.status = &st;
	dump_span_t *spp[] = {&sp, &sp};
	dump_scope_t sc = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
	sc.name = "scope";
	sc.version = "1";
	sc.n_attributes = 1;
	sc.attributes = kvp;
	Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
	ss.scope = &sc;
	ss.n_spans = 2;
	ss.spans = spp;
	ss.schema_url = "https://example/s";
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp[] = {&ss};
	dump_resource_t res = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
	res.n_attributes = 8;
	res.attributes = kvp;
	Opentelemetry__Proto__Trace__V1__ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	rs.resource = &res;
	rs.n_scope_spans = 1;
	rs.scope_spans = ssp;
	rs.schema_url = "https://example/r";
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp[] = {&rs};
	dump_request_t r = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	r.n_resource_spans = 1;
	r.resource_spans = rsp;
	*len = protobuf_c_message_get_packed_size(&r.base);
	uint8_t *out = malloc(*len);
	protobuf_c_message_pack(&r.base, out);
	return out;
}

/* protobuf -> agent's JSON -> our decoder -> protobuf: the same bytes. */
static void test_otlp_json_roundtrip(void **state)
{
	(void)state;
	size_t len;
	uint8_t *pb = sample_request(&len);
	struct sbuf js = {0};
	assert_int_equal(otlp_json_request(&js, pb, len), 0);
	sbuf_putc(&js, 0);
	/* The mapping's rules, visibly: hex ids, int64 as strings, enums as ints. */
	assert_non_null(strstr(js.p, "\"traceId\":\"deadbeef0102030405060708090a0bff\""));
	assert_non_null(strstr(js.p, "\"parentSpanId\":\"0909090909090909\""));
	assert_non_null(strstr(js.p, "\"startTimeUnixNano\":\"1700000000123456789\""));
	assert_non_null(strstr(js.p, "\"intValue\":\"-9223372036854775808\""));
	assert_non_null(strstr(js.p, "\"kind\":5"));
	assert_non_null(strstr(js.p, "\"bytesValue\":\"AP9hEH8=\""));
	struct json j;
	char err[160];
	assert_int_equal(json_parse(js.p, strlen(js.p), &j, err, sizeof(err)), 0);
	ProtobufCMessage *m = NULL;
	int rc = otlp_json_decode(&j, req_desc, &m, err, sizeof(err));
	if (rc)
		fail_msg("decode: %s", err);
	json_free(&j);
	size_t l2 = protobuf_c_message_get_packed_size(m);
	uint8_t *pb2 = malloc(l2);
	protobuf_c_message_pack(m, pb2);
	assert_int_equal(l2, len);
	assert_memory_equal(pb2, pb, len);
	protobuf_c_message_free_unpacked(m, NULL);
	free(pb2);
	free(pb);
	sbuf_free(&js);
}

static int decode_str(const char *doc, const ProtobufCMessageDescriptor *d, ProtobufCMessage **m,
		      char *err, size_t errlen)
{
	struct json j;
	if (json_parse(doc, strlen(doc), &j, err, errlen))
		return -2;
	int rc = otlp_json_decode(&j, d, m, err, errlen);
	json_free(&j);
	return rc;
}

static void test_otlp_json_lenient(void **state)
{
	(void)state;
	/* int64 as a number, enum by name, proto field names, upper-case hex,
	 * unknown fields and nulls ignored. */
	const char *doc = "{\"trace_id\":\"DEADBEEF000000000000000000000001\",\"spanId\":null,"
			  "\"kind\":\"SPAN_KIND_SERVER\",\"startTimeUnixNano\":1700000000000000000,"
			  "\"futureField\":{\"x\":[1,2]},\"name\":\"n\",\"status\":{\"code\":2}}";
	ProtobufCMessage *m = NULL;
	char err[160];
	assert_int_equal(decode_str(doc, &opentelemetry__proto__trace__v1__span__descriptor, &m, err,
				    sizeof(err)),
			 0);
	dump_span_t *s = (dump_span_t *)m;
	assert_int_equal(s->trace_id.len, 16);
	assert_int_equal(s->trace_id.data[0], 0xde);
	assert_int_equal(s->span_id.len, 0);
	assert_int_equal(s->kind, 2);
	assert_true(s->start_time_unix_nano == 1700000000000000000ull);
	assert_int_equal(s->status->code, 2);
	protobuf_c_message_free_unpacked(m, NULL);
}

static void test_otlp_json_rejects(void **state)
{
	(void)state;
	static const struct {
		const char *doc, *why;
	} bad[] = {
		{"{\"traceId\":\"xyzw\"}", "not hex"},
		{"{\"traceId\":\"abc\"}", "odd number of hex digits"},
		{"{\"name\":1}", "expected a string"},
		{"{\"kind\":1.5}", "not an integer"},
		{"{\"droppedAttributesCount\":-1}", "negative"},
		{"{\"droppedAttributesCount\":4294967296}", "not an integer in range"},
		{"{\"startTimeUnixNano\":\"18446744073709551616\"}", "not an integer in range"},
		{"{\"name\":\"a\",\"name\":\"b\"}", "duplicate field"},
		{"{\"attributes\":{}}", "expected an array"},
		{"{\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":\"a\",\"intValue\":\"1\"}}]}",
		 "two members of one oneof"},
		{"{\"attributes\":[{\"value\":{\"bytesValue\":\"***\"}}]}", "not base64"},
		{"{\"status\":[]}", "expected an object"},
		{"[]", "expected an object"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ProtobufCMessage *m = NULL;
		char err[200] = "";
		int rc = decode_str(bad[i].doc, &opentelemetry__proto__trace__v1__span__descriptor, &m,
				    err, sizeof(err));
		if (rc != -1 || !strstr(err, bad[i].why))
			fail_msg("%s: rc %d, '%s', want '%s'", bad[i].doc, rc, err, bad[i].why);
		assert_null(m);
	}
}

static void test_pb_nesting(void **state)
{
	(void)state;
	/* Span{attributes{value{array{values{array ...}}}}}, 40 levels. */
	enum { LV = 40 };
	size_t any[LV + 1], arr[LV + 1];
	any[0] = 0;
	for (int k = 1; k <= LV; k++) {
		arr[k] = 1 + pb_varint_size(any[k - 1]) + any[k - 1];
		any[k] = 1 + pb_varint_size(arr[k]) + arr[k];
	}
	for (int levels = 20; levels <= LV; levels += 20) {
		uint8_t buf[2048], *w = buf;
		size_t kv = 1 + pb_varint_size(any[levels]) + any[levels];
		w = pb_put_tag1(w, 9, 2);
		w = pb_put_varint(w, kv);
		w = pb_put_tag1(w, 2, 2);
		w = pb_put_varint(w, any[levels]);
		for (int k = levels; k >= 1; k--) {
			w = pb_put_tag1(w, 5, 2);
			w = pb_put_varint(w, arr[k]);
			w = pb_put_tag1(w, 1, 2);
			w = pb_put_varint(w, any[k - 1]);
		}
		size_t n = (size_t)(w - buf);
		/* depth: Span 0, KeyValue 1, AnyValue 2, then two per level */
		bool want = 2 + 2 * levels <= SR_PB_MAX_NESTING;
		assert_int_equal(sr_pb_nesting_ok(&opentelemetry__proto__trace__v1__span__descriptor,
						    buf, n, SR_PB_MAX_NESTING),
				 want);
		ProtobufCMessage *m =
			sr_pb_unpack(&opentelemetry__proto__trace__v1__span__descriptor, buf, n);
		assert_true((m != NULL) == want);
		protobuf_c_message_free_unpacked(m, NULL);
		/* Truncated anywhere: never accepted. */
		for (size_t k = 1; k < n; k++)
			assert_false(sr_pb_nesting_ok(&opentelemetry__proto__trace__v1__span__descriptor,
							 buf, k, SR_PB_MAX_NESTING));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_values),
		cmocka_unit_test(test_json_errors),
		cmocka_unit_test(test_json_depth),
		cmocka_unit_test(test_otlp_json_roundtrip),
		cmocka_unit_test(test_otlp_json_lenient),
		cmocka_unit_test(test_otlp_json_rejects),
		cmocka_unit_test(test_pb_nesting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
