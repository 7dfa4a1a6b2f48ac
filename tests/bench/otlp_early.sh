#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Where early drops under OTLP/HTTP come from (SECURITY.md R18): one run of
# otlp-prod (4 threads, RATE root spans/s each, each with a child: 2 x RATE
# spans/s per thread) -> agent (otlp_http + file) -> the test receiver
# (--count-only: it decodes every request), with a per-slot timeline of
# the producer's ring (tests/bench/ring_timeline.py) and, with STRACE=1,
# each OTLP request's answer time from strace of the agent (strace slows
# the agent down: more drops). 127.0.0.1 only; stops what it starts.
#
#   B=build/gcc tests/bench/otlp_early.sh [RATE [SECONDS]]
#   WARM=20000   first warm the receiver up with 20000 spans, then wait 1 s
#   SPANRING_SLOT_SIZE=2M   (and any producer setting) passes to the producer
#   RECV_ARGS=--sink        a receiver that answers without decoding
#   FILE_ONLY=1             no OTLP exporter (the file exporter alone)
set -euo pipefail
B=${B:-build/gcc}
src=$(cd "$(dirname "$0")/../.." && pwd)
bin="$src/$B/bin" prod="$src/$B/tests/progs/otlp-prod" rdir="$src/tests/otlp-receiver"
rate=${1:-6000} secs=${2:-2}
T=$(mktemp -d /tmp/spanring-early.XXXXXX)
RPID="" APID="" SPID=""
cleanup() {
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null || true
	[ -n "$APID" ] && kill -9 "$APID" 2>/dev/null || true
	[ -n "$RPID" ] && kill "$RPID" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
node "$rdir/receiver.js" --out /dev/null ${RECV_ARGS:---count-only} --quiet --http-port 0 \
	--grpc-port 0 --port-file "$T/ports.json" --max-seconds 120 &
RPID=$!
for _ in $(seq 200); do [ -f "$T/ports.json" ] && break; sleep 0.05; done
hp=$(node -e 'console.log(require(process.argv[1]).http)' "$T/ports.json")
exp=(--exporter "otlp_http:http://127.0.0.1:$hp/v1/traces")
[ -z "${FILE_ONLY:-}" ] || exp=()
TZ=UTC "$bin/spanring-agent" --socket "$T/a.sock" --file "$T/s.pb" -v "${exp[@]}" >"$T/agent.log" 2>&1 &
APID=$!
for _ in $(seq 200); do [ -S "$T/a.sock.ctl" ] && break; sleep 0.05; done
export SPANRING_SOCKET=$T/a.sock
if [ -n "${WARM:-}" ]; then
	OTEL_SERVICE_NAME=warm "$prod" -t 1 -n "$WARM" >/dev/null
	sleep 1
fi
if [ -n "${STRACE:-}" ]; then
	TZ=UTC strace -f -tt -qq -e trace=sendmsg,recvfrom -o "$T/strace.txt" -p "$APID" &
	SPID=$!
	sleep 0.5
fi
OTEL_SERVICE_NAME=early python3 "$src/tests/bench/ring_timeline.py" sample "$T/ring.txt" "$T/prod.out" \
	"$prod" -t 4 -r "$rate" -n $((rate * secs))
[ -n "$SPID" ] && { kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""; }
echo "producer: $(cat "$T/prod.out")"
grep -E "registered|released" "$T/agent.log" | sed 's/^/agent: /'
python3 "$src/tests/bench/ring_timeline.py" report "$T/ring.txt" "${STRACE:+$T/strace.txt}" |
	grep -v -E "answered after +[0-9] ms"
