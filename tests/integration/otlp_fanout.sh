#!/usr/bin/env bash
# Several backends at once (issue 12): three named OTLP instances, two
# OTLP/HTTP and one OTLP/gRPC, each to its own independent receiver, and a
# named file instance, configured by a config file in the README's
# "Several backends" form. Each backend receives exactly every span (no
# loss, no duplicate, every field right, the file's records equal), with
# the zero-copy check on; per-instance counters under the instance names.
# Then the command-line form, where a base URL gets /v1/traces.
. "$(dirname "$0")/otlp-lib.sh"

RPIDS=()
start_recv_n() { # NAME: receiver writing $T/recv-NAME.jsonl; sets HP GP
	local n=$1
	rm -f "$T/ports-$n.json"
	node "$rdir/receiver.js" --out "$T/recv-$n.jsonl" --http-port 0 --grpc-port 0 \
		--host 127.0.0.1 --port-file "$T/ports-$n.json" --max-seconds 240 --quiet \
		2>>"$T/recv.err" &
	RPIDS+=($!)
	for _ in $(seq 200); do [ -f "$T/ports-$n.json" ] && break; sleep 0.05; done
	[ -f "$T/ports-$n.json" ] || fail "receiver $n did not start"
	HP=$(node -e 'console.log(require(process.argv[1]).http)' "$T/ports-$n.json")
	GP=$(node -e 'console.log(require(process.argv[1]).grpc)' "$T/ports-$n.json")
}
trap 'for p in "${RPIDS[@]}"; do kill "$p" 2>/dev/null || true; done; otlp_cleanup' EXIT

start_recv_n tempo;  TEMPO=$HP
start_recv_n custom; CUSTOM=$HP
start_recv_n jaeger; JAEGER=$GP

say "config file: otlp_http/tempo, otlp_http/custom, otlp_grpc/jaeger, file/archive"
# The README's example, as written, with the receivers' ports and a
# temporary file; plus a header the receiver records.
awk '/^## Several backends/{f=1} f&&/^```ini/{c=1;next} c&&/^```/{exit} c' "$src/README.md" |
	sed -e "s#:14318/#:$CUSTOM/#" -e "s#:4318\$#:$TEMPO#" -e "s#:4317\$#:$JAEGER#" \
	    -e "s#/var/lib/spanring/archive.pb#$T/archive.pb#" \
	    -e 's#tenant1$#tenant1,x-spanring-test=tenant1#' >"$T/agent.conf"
grep -q "otlp_grpc/jaeger.endpoint = http://127.0.0.1:$JAEGER" "$T/agent.conf" ||
	fail "README example not found or changed: $(cat "$T/agent.conf")"
"$bin/spanring-agent" --config "$T/agent.conf" --socket "$T/a.sock" --check-config ||
	fail "the config is refused"
"$bin/spanring-agent" --config "$T/agent.conf" --socket "$T/a.sock" --state-dir="$T/state" \
	--debug-zero-copy-check=true >>"$T/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 200); do [ -S "$T/a.sock.ctl" ] && break; sleep 0.05; done
export SPANRING_SOCKET="$T/a.sock"
produce a svc-a -n 400 -t 3 &
p1=$!
produce b svc-b -n 300 -t 2 &
p2=$!
wait $p1 && wait $p2 || fail "a producer failed"
total=$(expected_count)
for e in otlp_http/tempo otlp_http/custom otlp_grpc/jaeger; do
	wait_settled "$e" "$total"
	expect_eq "$e delivered" "$(stat "exp.$e.spans")" "$total"
	expect_eq "$e let go" "$(stat "exp.$e.let_go_spans")" 0
done
expect_eq "file/archive spans" "$(stat exp.file/archive.spans)" "$total"
check_zero_copy
stop_agent
for n in tempo custom; do
	node "$rdir/check.js" --recv "$T/recv-$n.jsonl" --expect "$(ls "$T"/exp-*.jsonl | paste -sd,)" \
		--file "$T/archive.pb" --proto http || fail "backend $n"
done
node "$rdir/check.js" --recv "$T/recv-jaeger.jsonl" --expect "$(ls "$T"/exp-*.jsonl | paste -sd,)" \
	--proto grpc || fail "backend jaeger"
grep '"t":"req"' "$T/recv-tempo.jsonl" | grep -q 'tenant1' || fail "tempo's header missing"
if grep '"t":"req"' "$T/recv-custom.jsonl" | grep -q 'tenant1'; then
	fail "custom got tempo's header"
fi

say "command line: --exporter otlp_http/NAME:BASE-URL (no path: /v1/traces appended)"
rm -f "$T"/exp-*.jsonl "$T/agent.log"
start_recv_n one; ONE=$HP
start_recv_n two; TWO=$HP
"$bin/spanring-agent" --socket "$T/a.sock" --debug-zero-copy-check=true --state-dir="$T/state" \
	--exporter "otlp_http/one:http://127.0.0.1:$ONE" \
	--exporter "otlp_http/two:http://127.0.0.1:$TWO/" >>"$T/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 200); do [ -S "$T/a.sock.ctl" ] && break; sleep 0.05; done
produce c svc-c -n 200 -t 2
total=$(expected_count)
wait_settled otlp_http/one "$total"
wait_settled otlp_http/two "$total"
expect_eq "one: permanent failures (404 would be)" "$(stat exp.otlp_http/one.responses_permanent)" 0
stop_agent
for n in one two; do
	node "$rdir/check.js" --recv "$T/recv-$n.jsonl" --expect "$T/exp-c.jsonl" --proto http ||
		fail "backend $n"
done
echo "otlp_fanout: all checks passed"
