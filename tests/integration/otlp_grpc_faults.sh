#!/usr/bin/env bash
# OTLP/gRPC faults against a scripted @grpc/grpc-js receiver, with exact
# counters: UNAVAILABLE then OK, UNAVAILABLE with RetryInfo (the delay
# obeyed), RESOURCE_EXHAUSTED without RetryInfo (not retryable) and with
# it (retried), INVALID_ARGUMENT (let go, logged), DEADLINE_EXCEEDED from
# the server, a server that never answers (our deadline), partial success,
# connection refused, and the receiver restarted mid-run.
. "$(dirname "$0")/otlp-lib.sh"

grpc_case() { # SCRIPT AGENT-ARGS...
	local script=$1
	shift
	start_receiver "$script"
	start_agent --exporter "otlp_grpc:http://127.0.0.1:$GRPC_PORT" "$@"
}
E=otlp_grpc
retried_all() {
	local f r
	f=$(stat exp.$E.failures)
	r=$(stat exp.$E.retries)
	expect_ge "failures" "$f" 1
	expect_eq "retries (= failures: each failed batch retried)" "$r" "$f"
	expect_eq "let go" "$(stat exp.$E.let_go_spans)" 0
}
# ms between the first refused request and the retry of its first batch
# (the request that starts with the same span)
req_gap_ms() {
	grep '"t":"req"' "$T/recv.jsonl" |
		node -e 'const l=require("fs").readFileSync(0,"utf8").trim().split("\n").map(JSON.parse);
			const r=l.find((x)=>x.first&&x.spans===0);
			const a=r&&l.find((x)=>x.ts>=r.ts&&x!==r&&x.first===r.first);
			console.log(a?a.ts-r.ts:-1)'
}

for s in unavailable deadline exhausted_ri=300; do
	say "$s, then OK: retried"
	grpc_case "$s"
	produce a svc -n 200
	total=$(expected_count)
	wait_settled $E "$total"
	retried_all
	expect_eq "retryable answers" "$(stat exp.$E.responses_retryable)" 1
	expect_eq "file exporter spans" "$(stat exp.file.spans)" "$total"
	check_zero_copy
	stop_agent
	check_spans --file "$T/s.pb" --proto grpc
	reset_run
done

say "UNAVAILABLE with RetryInfo 1500ms: the retry waits as asked"
grpc_case "unavailable_ri=1500"
produce a svc -n 100
total=$(expected_count)
wait_settled $E "$total"
retried_all
expect_ge "ms between the answer and the retry" "$(req_gap_ms)" 1450
stop_agent
check_spans --file "$T/s.pb"
reset_run

for s in exhausted invalid internal; do
	say "$s: not retryable (RESOURCE_EXHAUSTED only with RetryInfo): let go, logged"
	grpc_case "$s"
	produce a svc -n 100
	wait_settled $E "$(expected_count)"
	produce b svc -n 100
	total=$(expected_count)
	wait_settled $E "$total"
	lg=$(stat exp.$E.let_go_spans)
	expect_ge "spans let go" "$lg" 1
	expect_eq "let go as permanent (batches)" "$(stat exp.$E.let_go_permanent)" "$(stat exp.$E.let_go_batches)"
	expect_eq "retries" "$(stat exp.$E.retries)" 0
	expect_eq "delivered + let go" "$(($(stat exp.$E.spans) + lg))" "$total"
	expect_eq "file exporter spans" "$(stat exp.file.spans)" "$total"
	grep -q "gRPC [A-Z_]* (not retryable): scripted" "$T/agent.log" || fail "no clear log line"
	stop_agent
	out=$(check_spans --file "$T/s.pb" --missing-ok)
	echo "$out"
	expect_eq "missing at the receiver = let go" "$(sed -n 's/.* missing=\([0-9]*\).*/\1/p' <<<"$out" | head -1)" "$lg"
	reset_run
done

say "a server that never answers: our deadline (otlp.timeout=1s) resets the stream, retried"
grpc_case "hang" --otlp.timeout=1s
produce a svc -n 100
total=$(expected_count)
wait_settled $E "$total"
retried_all
expect_eq "timeouts" "$(stat exp.$E.timeouts)" 1
expect_eq "one connection throughout" "$(stat exp.$E.connects)" 1
stop_agent
check_spans --file "$T/s.pb"
reset_run

say "partial success: counted, logged, not retried"
grpc_case "partial=3"
produce a svc -n 100
total=$(expected_count)
wait_settled $E "$total"
expect_eq "partial responses" "$(stat exp.$E.partial_responses)" 1
expect_eq "rejected spans" "$(stat exp.$E.rejected_spans)" 3
expect_eq "failures" "$(stat exp.$E.failures)" 0
stop_agent
check_spans --file "$T/s.pb"
reset_run

say "raw HTTP/2 faults: RST_STREAM(REFUSED_STREAM) mid-body, then GOAWAY mid-body: retried, reconnected"
RECV_ARGS="--h2-port 0" start_receiver "rst_refused,goaway"
start_agent --exporter "otlp_grpc:http://127.0.0.1:$H2_PORT"
produce a svc -n 300 -b 500
total=$(expected_count)
wait_settled $E "$total"
retried_all
expect_ge "failures (the reset and the GOAWAY)" "$(stat exp.$E.failures)" 2
expect_ge "connections (a new one after the GOAWAY)" "$(stat exp.$E.connects)" 2
check_zero_copy
stop_agent
check_spans --file "$T/s.pb"
reset_run

say "raw HTTP/2: RST_STREAM(INTERNAL_ERROR) is INTERNAL: not retryable"
RECV_ARGS="--h2-port 0" start_receiver "rst_internal"
start_agent --exporter "otlp_grpc:http://127.0.0.1:$H2_PORT"
produce a svc -n 100
wait_settled $E "$(expected_count)"
produce b svc -n 100
total=$(expected_count)
wait_settled $E "$total"
lg=$(stat exp.$E.let_go_spans)
expect_ge "spans let go" "$lg" 1
expect_eq "delivered + let go" "$(($(stat exp.$E.spans) + lg))" "$total"
grep -q "gRPC INTERNAL (not retryable): stream reset by the server" "$T/agent.log" || fail "no log line"
stop_agent
reset_run

say "connection refused: let go after export_retry_max, file exporter unaffected"
start_receiver ""
dead=$GRPC_PORT
stop_receiver
start_agent --exporter "otlp_grpc:http://127.0.0.1:$dead" --export-retry-max=1500ms
produce a svc -n 200
total=$(expected_count)
expect_eq "file exporter spans" "$(stat exp.file.spans)" "$total"
wait_settled $E "$total"
expect_eq "let go after the retry budget" "$(stat exp.$E.let_go_spans)" "$total"
expect_ge "connect failures" "$(stat exp.$E.connect_failures)" 2
stop_agent
reset_run

say "the receiver killed and restarted mid-run: nothing lost"
start_receiver ""
port=$GRPC_PORT
start_agent --exporter "otlp_grpc:http://127.0.0.1:$port" --export-retry-max=30s \
	--max-inflight-batches=100000
SPANRING_SLOT_SIZE=8M produce a svc -n 2000 -r 1000 &
pp=$!
sleep 0.7
stop_receiver
sleep 0.8
start_receiver "" 0 "$port"
wait $pp || fail "producer failed"
total=$(expected_count)
wait_settled $E "$total" 60
expect_eq "let go" "$(stat exp.$E.let_go_spans)" 0
stop_agent
check_spans --file "$T/s.pb" --dups-ok
echo "otlp_grpc_faults: all checks passed"
