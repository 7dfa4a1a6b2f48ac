#!/usr/bin/env bash
# OTLP/HTTP against the independent receiver: every span of several
# producers arrives exactly once with every field right (ids, parent, name,
# kind, times, attributes of every type, events, links, status, resource,
# scope), the same as the file exporter beside wrote; zero-copy proven.
# Then the environment paths: OTEL_EXPORTER_OTLP_ENDPOINT (base URL),
# _HEADERS, _COMPRESSION=gzip, _PROTOCOL=http/json.
. "$(dirname "$0")/otlp-lib.sh"

say "http/protobuf, two producers (3 threads each), file exporter beside"
start_receiver ""
start_agent --exporter "otlp_http:http://127.0.0.1:$HTTP_PORT/v1/traces"
produce a svc-a -n 300 -t 3 &
p1=$!
produce b svc-b -n 200 -t 3 -b 300 &
p2=$!
wait $p1 && wait $p2 || fail "a producer failed"
total=$(expected_count)
wait_settled otlp_http "$total"
expect_eq "delivered spans" "$(stat exp.otlp_http.spans)" "$total"
expect_eq "let go" "$(stat exp.otlp_http.let_go_spans)" 0
expect_eq "failures" "$(stat exp.otlp_http.failures)" 0
expect_eq "file exporter spans" "$(stat exp.file.spans)" "$total"
expect_eq "connections" "$(stat exp.otlp_http.connects)" 1
check_zero_copy
stop_agent
check_spans --file "$T/s.pb"
[ "$(grep -c '"t":"req"' "$T/recv.jsonl")" -ge 1 ] || fail "no request recorded"
reset_run

say "OTEL_EXPORTER_OTLP_ENDPOINT (base URL + v1/traces), _TRACES_HEADERS over _HEADERS, gzip"
start_receiver ""
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$HTTP_PORT/" \
OTEL_EXPORTER_OTLP_HEADERS="x-spanring-test=generic" \
OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-spanring-test=from%20traces%2Cheaders" \
OTEL_EXPORTER_OTLP_COMPRESSION=gzip \
	start_agent --exporter otlp
produce a svc-a -n 200 -t 2
total=$(expected_count)
wait_settled otlp_http "$total"
expect_eq "copies (gzip is the copying path)" "$(($(stat exp.otlp_http.copies) > 0))" 1
stop_agent
check_spans --file "$T/s.pb" --service svc-a
grep '"t":"req"' "$T/recv.jsonl" | grep -q '"encoding":"gzip"' || fail "request not gzip-encoded"
grep '"t":"req"' "$T/recv.jsonl" | grep -q '"hdr":"from traces,headers"' ||
	fail "header from OTEL_EXPORTER_OTLP_TRACES_HEADERS missing or not percent-decoded"
reset_run

say "OTEL_EXPORTER_OTLP_PROTOCOL=http/json (the agent's OTLP/JSON writer; a copy)"
start_receiver ""
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://127.0.0.1:$HTTP_PORT/v1/traces" \
OTEL_EXPORTER_OTLP_PROTOCOL=http/json \
	start_agent --exporter otlp
produce a svc-json -n 100 -t 2
total=$(expected_count)
wait_settled otlp_http_json "$total"
stop_agent
check_spans --file "$T/s.pb" --service svc-json
echo "otlp_http: all checks passed"
