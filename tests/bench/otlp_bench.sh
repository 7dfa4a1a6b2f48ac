#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# End-to-end throughput of the OTLP exporters: producers (tests/progs/
# otlp-prod, flat out) -> rings -> agent -> OTLP/HTTP or OTLP/gRPC -> the
# independent receiver (tests/otlp-receiver, --count-only: it decodes every
# request with the official schema and counts spans), all on this host.
#
#   B=build/gcc tests/bench/otlp_bench.sh [SPANS_PER_THREAD] [PRODUCERS] [THREADS] [RATE]
#
# RATE: root spans per second per producer thread (0: flat out, the rings
# then fill and producers drop whatever the receiver cannot take).
#
# For each exporter (null for reference, otlp_http, otlp_grpc, and both
# over TLS: https:// to the receiver with a certificate made here by the
# openssl command, user-space TLS unless the kernel has kTLS) it prints
# spans/s end to end (first span produced to last span acknowledged), the
# agent's CPU per span (/proc/PID/schedstat: on-CPU ns of the agent
# thread) and the receiver's CPU per span; for OTLP/HTTP also the
# receiver's pure decode time per span (protobufjs decode only), i.e. the
# receiver's own decode limit, to compare with the agent's cost.
# Binds 127.0.0.1 only; stops everything it started.
set -euo pipefail
B=${B:-build/gcc}
src=$(cd "$(dirname "$0")/../.." && pwd)
bin="$src/$B/bin"
prod="$src/$B/tests/progs/otlp-prod"
rdir="$src/tests/otlp-receiver"
n=${1:-200000} procs=${2:-2} threads=${3:-2} rate=${4:-0}
T=$(mktemp -d /tmp/spanring-otlpbench.XXXXXX)
RPID="" APID=""
cleanup() {
	[ -n "$APID" ] && kill -9 "$APID" 2>/dev/null || true
	[ -n "$RPID" ] && kill "$RPID" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
cpu_ns() { awk '{print $1}' "/proc/$1/schedstat"; }
cpu_ns_all() { # every thread of a process
	local s=0 f
	for f in /proc/"$1"/task/*/schedstat; do s=$((s + $(awk '{print $1}' "$f"))); done
	echo $s
}
stat() { node "$rdir/stat.js" "$T/a.sock.ctl" "$@"; }

# A CA and a server certificate for 127.0.0.1 (the TLS rows).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/ca.key" \
	-out "$T/ca.pem" -days 2 -subj /CN=bench-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/srv.key" \
	-out "$T/srv.csr" -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/srv.ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
	-extfile "$T/srv.ext" -out "$T/srv.pem" 2>/dev/null

run() { # exporter-spec label [tls]
	local spec=$1 label=$2 ename tlsr=() tlsa=()
	if [ "${3:-}" = tls ]; then
		tlsr=(--tls-cert "$T/srv.pem" --tls-key "$T/srv.key")
		tlsa=(--otlp.tls_ca_file "$T/ca.pem")
	fi
	rm -f "$T/ports.json" "$T"/a.sock*
	node "$rdir/receiver.js" --count-only --quiet --http-port 0 --grpc-port 0 "${tlsr[@]}" \
		--port-file "$T/ports.json" --max-seconds 600 &
	RPID=$!
	for _ in $(seq 200); do [ -f "$T/ports.json" ] && break; sleep 0.05; done
	local hp gp
	hp=$(node -e 'console.log(require(process.argv[1]).http)' "$T/ports.json")
	gp=$(node -e 'console.log(require(process.argv[1]).grpc)' "$T/ports.json")
	spec=${spec//@HTTP@/$hp}
	spec=${spec//@GRPC@/$gp}
	"$bin/spanring-agent" --socket "$T/a.sock" --exporter "$spec" -q "${tlsa[@]}" \
		--max-inflight-batches=100000 --state-dir="$T/state" 2>"$T/agent.log" &
	APID=$!
	for _ in $(seq 200); do [ -S "$T/a.sock.ctl" ] && break; sleep 0.05; done
	ename=$(stat agent.pid >/dev/null; node "$rdir/stat.js" "$T/a.sock.ctl" | node -e \
		'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(j.exporters[0].name)')
	local a0 r0 t0 t1 a1 r1
	a0=$(cpu_ns "$APID")
	r0=$(cpu_ns_all "$RPID")
	t0=$(date +%s%N)
	local pids=()
	for ((p = 0; p < procs; p++)); do
		SPANRING_SOCKET="$T/a.sock" SPANRING_SLOT_SIZE=16M OTEL_SERVICE_NAME="bench-$p" \
			"$prod" -n "$n" -t "$threads" -r "$rate" >"$T/prod-$p.out" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	local total=0 drops=0 s d
	for ((p = 0; p < procs; p++)); do
		s=$(sed -n 's/.*spans=\([0-9]*\).*/\1/p' "$T/prod-$p.out")
		d=$(sed -n 's/.*dropped=\([0-9]*\).*/\1/p' "$T/prod-$p.out")
		total=$((total + s))
		drops=$((drops + d))
	done
	for _ in $(seq 3000); do
		v=$(stat "exp.$ename.spans" "exp.$ename.let_go_spans" | paste -sd' ')
		set -- $v
		[ $(($1 + $2)) -ge "$total" ] && break
		sleep 0.02
	done
	t1=$(date +%s%N)
	a1=$(cpu_ns "$APID")
	r1=$(cpu_ns_all "$RPID")
	local delivered letgo
	delivered=$(stat "exp.$ename.spans")
	letgo=$(stat "exp.$ename.let_go_spans")
	local dec=""
	if [ "$label" = otlp_http ]; then # (the same decode over TLS: not asked again)
		dec=$(node -e '
			require("http").get("http://127.0.0.1:"+process.argv[1]+"/stats",(r)=>{let d="";
			r.on("data",(c)=>d+=c);r.on("end",()=>{const j=JSON.parse(d);
			console.log((j.decode_ms*1e6/Math.max(1,j.spans)).toFixed(0))})})' "$hp")
	fi
	kill -TERM "$APID"
	wait "$APID" || true
	APID=""
	kill "$RPID" 2>/dev/null || true
	wait "$RPID" 2>/dev/null || true
	RPID=""
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
	printf '| %-13s | %9d | %6d | %9d | %7s | %10.0f | %8.0f | %8.0f | %s |\n' "$label" "$total" \
		"$drops" "$delivered" "$secs" "$(awk -v s="$delivered" -v t="$secs" 'BEGIN{print s/t}')" \
		"$(awk -v c=$((a1 - a0)) -v s="$total" 'BEGIN{print c/s}')" \
		"$(awk -v c=$((r1 - r0)) -v s="$total" 'BEGIN{print (s? c/s : 0)}')" "${dec:--}"
	[ "$letgo" = 0 ] || echo "  ($letgo spans let go)"
}

echo "$procs producers x $threads threads x $n spans (+1 child each), rate ${rate:-0}/s/thread (0: flat out), $(nproc) CPUs, $(uname -r)"
echo
echo "| exporter  | spans     | drops  | delivered | seconds | spans/s    | agent ns/span | receiver ns/span | receiver decode ns/span |"
echo "|-----------|-----------|--------|-----------|---------|------------|----------|----------|------|"
run null null
run "otlp_http:http://127.0.0.1:@HTTP@/v1/traces" otlp_http
run "otlp_grpc:http://127.0.0.1:@GRPC@" otlp_grpc
run "otlp_http:https://127.0.0.1:@HTTP@/v1/traces" otlp_http+tls tls
run "otlp_grpc:https://127.0.0.1:@GRPC@" otlp_grpc+tls tls
