#!/usr/bin/env bash
# OTLP/gRPC after INVALID_ARGUMENT on a request that carries the spans of
# several producers: as OTLP/HTTP after a 400 (harden_isolation.sh), the
# batch is sent again one producer's spans per request (slices of the same
# ring memory), so only a culprit's spans would be let go. Here the
# receiver refuses the first request only: every span of both producers
# arrives exactly once, the request was isolated, nothing is let go, and
# the let-go causes (in spans) add up to the total.
. "$(dirname "$0")/otlp-lib.sh"
start_receiver "invalid"
# a long batch age: the first batch holds both producers' spans
start_agent --exporter "otlp_grpc:http://127.0.0.1:$GRPC_PORT" --batch-max-age=300ms
produce a svc-a -n 200 -t 1 &
p1=$!
produce b svc-b -n 200 -t 1 &
p2=$!
wait $p1 && wait $p2 || fail "a producer failed"
total=$(expected_count)
wait_settled otlp_grpc "$total"
expect_ge "requests isolated" "$(stat exp.otlp_grpc.isolations)" 1
expect_eq "let go" "$(stat exp.otlp_grpc.let_go_spans)" 0
expect_eq "delivered" "$(stat exp.otlp_grpc.spans)" "$total"
sum=$(stat exp.otlp_grpc.let_go_spans_permanent exp.otlp_grpc.let_go_spans_retry_budget \
	exp.otlp_grpc.let_go_spans_queue_full exp.otlp_grpc.let_go_spans_hold_budget \
	exp.otlp_grpc.let_go_spans_spool_full exp.otlp_grpc.let_go_spans_other | paste -sd+ | (read -r e; echo $((e))))
expect_eq "let-go causes add up" "$sum" "$(stat exp.otlp_grpc.let_go_spans)"
grep -q "sending each producer's spans on their own" "$T/agent.log" || fail "no log line"
check_zero_copy
stop_agent
check_spans --file "$T/s.pb" --proto grpc
echo "otlp_grpc_isolation: all checks passed"
