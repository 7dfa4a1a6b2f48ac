#!/usr/bin/env bash
# N producer processes x M threads x K spans through the real agent with the
# file, OTLP/JSON and console exporters at once. The file output decodes
# (protobuf-c via sr-verify, protoc with the project's schema and with the
# reference OpenTelemetry schema) to exactly the spans sent, each under its
# producer's resource, with the agent-verified identity. The zero-copy check
# runs on every writev and finds nothing.
. "$(dirname "$0")/agent-lib.sh"
N=4 M=4 K=${K:-5000}
export SPANRING_AGENT_ZC_CHECK=1
start_agent --file "$T/out.pb" --json "$T/out.jsonl" --console --console.path "$T/console.txt"
pids=()
for i in $(seq $N); do
	"$PROGS/sr-testprod" -S "svc-$i" -t $M -s 4 -n $K -W -L -q 1000 >"$T/prod-$i.txt" 2>&1 &
	pids+=($!); STARTED+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "producer failed"; done
for i in $(seq $N); do
	grep -q "committed=$((M * K)) drops=0 registered=1" "$T/prod-$i.txt" || fail "producer $i: $(cat "$T/prod-$i.txt")"
	grep -q "unreleased=0" "$T/prod-$i.txt" || fail "producer $i: not all released"
done
stats=$(ctl stats)
[ "$(jsonq 'd["agent"]["zc_violations"]' <<<"$stats")" = 0 ] || fail "zero-copy violations: $stats"
[ "$(jsonq 'd["agent"]["zc_iov_checked"] > 0' <<<"$stats")" = True ] || fail "zero-copy check did not run"
[ "$(jsonq 'd["agent"]["spans"]' <<<"$stats")" = $((N * M * K)) ] || fail "agent counted: $stats"
stop_agent
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"

mkdir "$T/split"
args=()
for i in $(seq $N); do args+=(--expect "svc-$i:$M:$K"); done
"$PROGS/sr-verify" --split "$T/split" "${args[@]}" "$T/out.pb" >"$T/verify.txt" || { cat "$T/verify.txt"; fail "verify"; }
cat "$T/verify.txt"
# Each service under its own producer's pid (the agent's, not the claim).
for i in $(seq $N); do
	grep -q "service=svc-$i pid=[0-9]* spans=$((M * K)) threads=$M dups=0" "$T/verify.txt" || fail "svc-$i"
	grep "service=svc-$i pid=1 " "$T/verify.txt" && fail "forged pid kept"
done

# protoc, with this project's schema and the reference schema.
total=0 total_ref=0
ref=/work/shared/otlp-proto
for f in "$T"/split/req-*.bin; do
	n=$(protoc_count "$f" "$SRC/proto" otlp_trace_service.proto) || fail "protoc decode $f"
	total=$((total + n))
	if [ -d "$ref" ]; then
		n=$(protoc_count "$f" "$ref" opentelemetry/proto/collector/trace/v1/trace_service.proto) \
			|| fail "protoc (reference schema) decode $f"
		total_ref=$((total_ref + n))
	fi
done
[ "$total" = $((N * M * K)) ] || fail "protoc counted $total spans"
[ -d "$ref" ] && { [ "$total_ref" = $((N * M * K)) ] || fail "reference protoc counted $total_ref"; }
echo "protoc: $total spans (reference schema: $total_ref)"

# OTLP/JSON lines: an independent JSON parser, field by field checks.
python3 - "$T/out.jsonl" $((N * M * K)) <<'PY' || fail "json output"
import json, sys, re
n = 0
for line in open(sys.argv[1]):
    req = json.loads(line)
    for rs in req["resourceSpans"]:
        attrs = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
        assert "stringValue" in attrs["service.name"]
        assert isinstance(attrs["process.pid"]["intValue"], str)  # int64 as string
        for ss in rs["scopeSpans"]:
            assert ss["scope"]["name"].startswith("sr-testprod")
            for s in ss["spans"]:
                assert re.fullmatch(r"[0-9a-f]{32}", s["traceId"]), s["traceId"]
                assert re.fullmatch(r"[0-9a-f]{16}", s["spanId"])
                assert isinstance(s["startTimeUnixNano"], str)
                assert isinstance(s["kind"], int)
                n += 1
assert n == int(sys.argv[2]), n
print("json spans", n)
PY
# Console: one line per span.
[ "$(wc -l <"$T/console.txt")" = $((N * M * K)) ] || fail "console lines: $(wc -l <"$T/console.txt")"
grep -q 'svc-1\[[0-9]*\] .*ms .* "t0-s0" trace=' "$T/console.txt" || fail "console format"
echo PASS
