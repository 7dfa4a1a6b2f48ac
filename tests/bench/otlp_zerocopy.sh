#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Does MSG_ZEROCOPY pay for the OTLP/HTTP exporter? The agent sends to a
# receiver in a network namespace made here (veth pair, addresses
# 10.213.0.1/2 of this test host only), once with otlp.zerocopy_min=0
# (plain sendmsg: the kernel copies span bytes into socket buffers) and
# once with MSG_ZEROCOPY for requests of at least ZC_MIN bytes (the kernel
# pins the ring pages; completions on the error queue release them).
# Loopback is useless for this (the kernel copies anyway), so a veth pair
# it is; the receiver end (--sink) reads and answers without decoding, so
# that the agent is the busy side.
#
#   B=build/gcc tests/bench/otlp_zerocopy.sh [SPANS_PER_THREAD] [ZC_MIN] [ROUNDS]
#
# Needs root and iproute2; prints a table; removes the namespace and links.
set -euo pipefail
B=${B:-build/gcc}
src=$(cd "$(dirname "$0")/../.." && pwd)
bin="$src/$B/bin"
prod="$src/$B/tests/progs/otlp-prod"
rdir="$src/tests/otlp-receiver"
n=${1:-100000} zcmin=${2:-65536} rounds=${3:-3}
ns=sr-zc-$$
[ "$(id -u)" = 0 ] && command -v ip >/dev/null || { echo "needs root and ip(8)"; exit 77; }
T=$(mktemp -d /tmp/spanring-zc.XXXXXX)
RPID="" APID=""
cleanup() {
	[ -n "$APID" ] && kill -9 "$APID" 2>/dev/null || true
	[ -n "$RPID" ] && kill "$RPID" 2>/dev/null || true
	wait 2>/dev/null || true
	ip link del "zc$$a" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
ip netns add "$ns"
ip link add "zc$$a" type veth peer name "zc$$b"
ip link set "zc$$b" netns "$ns"
ip addr add 10.213.0.1/24 dev "zc$$a"
ip link set "zc$$a" up
ip netns exec "$ns" ip addr add 10.213.0.2/24 dev "zc$$b"
ip netns exec "$ns" ip link set "zc$$b" up
ip netns exec "$ns" ip link set lo up

ip netns exec "$ns" node "$rdir/receiver.js" --sink --quiet --host 10.213.0.2 --http-port 0 \
	--port-file "$T/ports.json" --max-seconds 900 &
RPID=$!
for _ in $(seq 200); do [ -f "$T/ports.json" ] && break; sleep 0.05; done
port=$(node -e 'console.log(require(process.argv[1]).http)' "$T/ports.json")
stat() { node "$rdir/stat.js" "$T/a.sock.ctl" "$@"; }

run() { # zerocopy_min label
	local zmin=$1 label=$2
	rm -f "$T"/a.sock*
	"$bin/spanring-agent" --socket "$T/a.sock" -q --max-inflight-batches=100000 --state-dir="$T/state" \
		--exporter "otlp_http:http://10.213.0.2:$port/v1/traces" --otlp.zerocopy-min="$zmin" \
		--batch-max-bytes=4M --batch-max-age=20ms 2>"$T/agent.log" &
	APID=$!
	for _ in $(seq 200); do [ -S "$T/a.sock.ctl" ] && break; sleep 0.05; done
	local a0 t0 a1 t1 total
	a0=$(awk '{print $1}' "/proc/$APID/schedstat")
	t0=$(date +%s%N)
	SPANRING_SOCKET="$T/a.sock" SPANRING_SLOT_SIZE=32M "$prod" -n "$n" -t 2 -b 1500 >"$T/prod.out"
	total=$(sed -n 's/.*spans=\([0-9]*\).*/\1/p' "$T/prod.out")
	for _ in $(seq 3000); do
		v=$(stat exp.otlp_http.spans exp.otlp_http.let_go_spans | paste -sd' ')
		set -- $v
		[ $(($1 + $2)) -ge "$total" ] && break
		sleep 0.02
	done
	t1=$(date +%s%N)
	a1=$(awk '{print $1}' "/proc/$APID/schedstat")
	local bytes zs zc zcp
	bytes=$(stat exp.otlp_http.bytes)
	zs=$(stat exp.otlp_http.zc_sends)
	zc=$(stat exp.otlp_http.zc_completions)
	zcp=$(stat exp.otlp_http.zc_copied)
	kill -TERM "$APID"
	wait "$APID" || true
	APID=""
	printf '| %-22s | %8d | %7.1f | %8.0f | %8.2f | %6d | %6d | %6d |\n' "$label" "$total" \
		"$(awk -v b="$bytes" 'BEGIN{print b/1048576}')" \
		"$(awk -v c=$((a1 - a0)) -v s="$total" 'BEGIN{print c/s}')" \
		"$(awk -v c=$((a1 - a0)) -v b="$bytes" 'BEGIN{print c/(b/1024)}')" "$zs" "$zc" "$zcp"
}

echo "OTLP/HTTP over veth to a network namespace, 2 threads x $n spans (+ child) with 1.5 KB"
echo "attributes, batches up to 4 MiB; agent CPU from /proc/PID/schedstat; $(uname -r)"
echo
echo "| mode                   | spans    | MiB sent | agent ns/span | agent ns/KiB | zc sends | completions | copied |"
echo "|------------------------|----------|----------|----------|----------|--------|--------|--------|"
for ((r = 0; r < rounds; r++)); do
	run 0 "copy (sendmsg)"
	run "$zcmin" "MSG_ZEROCOPY >= $zcmin"
done
