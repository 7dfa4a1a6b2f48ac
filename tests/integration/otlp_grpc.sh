#!/usr/bin/env bash
# OTLP/gRPC against the independent receiver (@grpc/grpc-js with the
# official schema): every span of several producers arrives exactly once
# with every field right and equal to the file exporter's output, over one
# HTTP/2 connection with concurrent streams; DATA frames from ring memory
# (zero-copy check on every writev). Then env configuration
# (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc, _ENDPOINT, _HEADERS) and gzip.
. "$(dirname "$0")/otlp-lib.sh"

say "grpc, two producers, large spans (many DATA frames), file exporter beside"
start_receiver ""
start_agent --exporter "otlp_grpc:http://127.0.0.1:$GRPC_PORT" --otlp.max-request-bytes=256K
produce a svc-a -n 300 -t 3 &
p1=$!
SPANRING_SLOT_SIZE=4M produce b svc-b -n 150 -t 2 -b 3000 &
p2=$!
wait $p1 && wait $p2 || fail "a producer failed"
total=$(expected_count)
wait_settled otlp_grpc "$total"
expect_eq "delivered spans" "$(stat exp.otlp_grpc.spans)" "$total"
expect_eq "let go" "$(stat exp.otlp_grpc.let_go_spans)" 0
expect_eq "failures" "$(stat exp.otlp_grpc.failures)" 0
expect_eq "file exporter spans" "$(stat exp.file.spans)" "$total"
expect_eq "connections" "$(stat exp.otlp_grpc.connects)" 1
check_zero_copy
stop_agent
check_spans --file "$T/s.pb" --proto grpc
reset_run

say "env: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc over _PROTOCOL, _ENDPOINT used for host:port, headers, gzip"
start_receiver ""
OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc \
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$GRPC_PORT" \
OTEL_EXPORTER_OTLP_HEADERS="X-Spanring-Test=grpc%20header" \
OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=gzip \
	start_agent --exporter otlp
produce a svc-a -n 200 -t 2
total=$(expected_count)
wait_settled otlp_grpc "$total"
# grpc-js decompresses before the handler sees the call: the agent's count
# of compressed (copied) requests tells that gzip was used.
expect_eq "compressed requests = requests" "$(stat exp.otlp_grpc.copies)" "$(stat exp.otlp_grpc.requests)"
stop_agent
check_spans --file "$T/s.pb" --service svc-a --proto grpc
grep '"t":"req"' "$T/recv.jsonl" | grep -q '"hdr":"grpc header"' || fail "header missing"
echo "otlp_grpc: all checks passed"
