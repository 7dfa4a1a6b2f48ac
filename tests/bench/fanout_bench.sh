#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# One agent feeding several backends (issue 12 item 5): a producer
# (tests/progs/otlp-prod) -> rings -> agent -> N named OTLP/HTTP instances
# -> N sinks (tests/bench/bench_otlpsink.c: read the body, answer 200,
# decode nothing, so that the agent's own cost is what is measured).
#
#   B=build/gcc tests/bench/fanout_bench.sh [--doc FILE]
#
# For N = 1, 2, 3, 8 backends, at 10 k spans/s (5 s) and flat out: spans/s
# delivered to every backend, agent CPU ns per span (on-CPU time of every
# agent thread, /proc/PID/task/*/schedstat, wake-ups included), agent
# RssAnon and VmHWM - RssShmem (the agent's own memory, rings excluded).
# Then: zero-copy check on with 3 backends (violations must be 0); an idle
# agent with a producer registered; the spool: one backend dead at 10 k
# spans/s (write cost per span, agent CPU with spilling) and its replay
# once back. With --doc FILE the table goes between
# <!-- BEGIN bench:fanout --> and <!-- END bench:fanout --> of FILE.
set -euo pipefail
B=${B:-build/gcc}
src=$(cd "$(dirname "$0")/../.." && pwd)
cd "$src"
bin="$src/$B/bin"
prod="$src/$B/tests/progs/otlp-prod"
sink="$src/$B/bench/bench_otlpsink"
testprod="$src/$B/tests/progs/sr-testprod"
rdir="$src/tests/otlp-receiver"
DOC=""
[ "${1:-}" = --doc ] && DOC=$2
T=$(mktemp -d /tmp/spanring-fanout.XXXXXX)
SPIDS=() APID=""
cleanup() {
	[ -n "$APID" ] && kill -9 "$APID" 2>/dev/null || true
	for p in "${SPIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
cpu_ns_all() {
	local s=0 f
	for f in /proc/"$1"/task/*/schedstat; do s=$((s + $(awk '{print $1}' "$f"))); done
	echo $s
}
mem() { # RssAnon and VmHWM - RssShmem, kB
	awk '/^RssAnon/{a=$2} /^VmHWM/{h=$2} /^RssShmem/{s=$2} END{print a, h - s}' "/proc/$APID/status"
}
stat() { node "$rdir/stat.js" "$T/a.sock.ctl" "$@"; }
start_sinks() { # N
	SPIDS=() PORTS=()
	for ((i = 0; i < $1; i++)); do
		rm -f "$T/port-$i"
		"$sink" --port-file "$T/port-$i" --max-seconds 600 >/dev/null &
		SPIDS+=($!)
		for _ in $(seq 100); do [ -s "$T/port-$i" ] && break; sleep 0.02; done
		PORTS+=($(cat "$T/port-$i"))
	done
}
stop_sinks() { for p in "${SPIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; SPIDS=(); }
start_agent() { # ARGS
	rm -f "$T"/a.sock*
	"$bin/spanring-agent" --socket "$T/a.sock" -q --state-dir="$T/state" "$@" 2>>"$T/agent.log" &
	APID=$!
	for _ in $(seq 200); do [ -S "$T/a.sock.ctl" ] && break; sleep 0.05; done
}
stop_agent() { kill -TERM "$APID"; wait "$APID" || true; APID=""; }
exporters() { # N: --exporter args for the sinks
	for ((i = 0; i < $1; i++)); do echo "--exporter otlp_http/b$i:http://127.0.0.1:${PORTS[$i]}"; done
}
wait_all() { # N total
	local i
	for ((i = 0; i < $1; i++)); do
		for _ in $(seq 3000); do
			[ "$(stat "exp.otlp_http/b$i.spans")" -ge "$2" ] && break
			sleep 0.02
		done
	done
}
ROWS=()
run() { # N mode(rate|flat) [extra agent args]
	local n=$1 mode=$2
	shift 2
	start_sinks "$n"
	start_agent $(exporters "$n") "$@"
	local a0 t0 a1 t1 total=0
	a0=$(cpu_ns_all "$APID")
	t0=$(date +%s%N)
	# the agent's own memory, sampled while the rings are mapped
	echo "0 0" >"$T/mem"
	(ma=0 md=0; while sleep 0.1; do
		v=$(mem 2>/dev/null) || break
		set -- $v
		[ "$1" -gt "$ma" ] && ma=$1
		[ "$2" -gt "$md" ] && md=$2
		echo "$ma $md" >"$T/mem"
	done) &
	local mpid=$!
	if [ "$mode" = rate ]; then
		SPANRING_SOCKET="$T/a.sock" OTEL_SERVICE_NAME=fan "$prod" -t 1 -r 5000 -n 25000 >"$T/prod.out"
	else
		SPANRING_SOCKET="$T/a.sock" SPANRING_SLOT_SIZE=16M OTEL_SERVICE_NAME=fan \
			"$prod" -t 2 -n 100000 >"$T/prod.out"
	fi
	total=$(sed -n 's/.*spans=\([0-9]*\).*/\1/p' "$T/prod.out")
	local drops
	drops=$(sed -n 's/.*dropped=\([0-9]*\).*/\1/p' "$T/prod.out")
	wait_all "$n" "$total"
	t1=$(date +%s%N)
	kill "$mpid" 2>/dev/null || true
	wait "$mpid" 2>/dev/null || true
	a1=$(cpu_ns_all "$APID")
	local m
	m=$(cat "$T/mem")
	local zc
	zc=$(stat agent.zc_violations agent.zc_iov_checked | paste -sd/)
	stop_agent
	stop_sinks
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", (b-a)/1e9}')
	ROWS+=("$(printf '| %d | %s | %s | %d | %d | %.0f | %.0f | %s | %s | %s |' "$n" \
		"$([ "$mode" = rate ] && echo '10 k/s' || echo 'flat out')" "${*:-}" "$total" "$drops" \
		"$(awk -v s="$total" -v t="$secs" 'BEGIN{print s/t}')" \
		"$(awk -v c=$((a1 - a0)) -v s="$total" 'BEGIN{print c/s}')" \
		"${m% *}" "${m#* }" "$zc")")
	echo "${ROWS[-1]}" >&2
}
for n in 1 2 3 8; do run "$n" rate; done
for n in 1 2 3 8; do run "$n" flat; done
run 3 rate --debug-zero-copy-check=true
# the wake-ups at 10 k/s: fewer, larger batches
run 3 rate --batch-max-age=20ms --poll-interval-min=5ms --poll-interval-max=20ms

# idle: a producer registered, no span flowing, 5 s
start_sinks 3
start_agent $(exporters 3)
SPANRING_SOCKET="$T/a.sock" "$testprod" -n 1 -H >/dev/null 2>&1 &
hp=$!
sleep 1
i0=$(cpu_ns_all "$APID")
sleep 5
i1=$(cpu_ns_all "$APID")
kill -TERM "$hp" 2>/dev/null || true
wait "$hp" 2>/dev/null || true
stop_agent
stop_sinks
IDLE=$(awk -v c=$((i1 - i0)) 'BEGIN{printf "%.3f", c / 5e9 * 100}')

# the spool: one backend dead at 10 k spans/s, then back
start_sinks 1
port=${PORTS[0]}
stop_sinks
start_agent --exporter "otlp_http/d:http://127.0.0.1:$port" --otlp.hold-budget=256K
a0=$(cpu_ns_all "$APID")
SPANRING_SOCKET="$T/a.sock" OTEL_SERVICE_NAME=fan "$prod" -t 1 -r 5000 -n 25000 >"$T/prod.out"
total=$(sed -n 's/.*spans=\([0-9]*\).*/\1/p' "$T/prod.out")
sleep 0.5
a1=$(cpu_ns_all "$APID")
sw=$(stat exp.otlp_http/d.spool_write_ns exp.otlp_http/d.spool_written_spans | paste -sd' ')
"$sink" --port-file "$T/port-back" --port "$port" --max-seconds 600 >/dev/null &
SPIDS=($!)
r0=$(cpu_ns_all "$APID")
t0=$(date +%s%N)
for _ in $(seq 3000); do [ "$(stat exp.otlp_http/d.spans)" -ge "$total" ] && break; sleep 0.02; done
t1=$(date +%s%N)
r1=$(cpu_ns_all "$APID")
sr=$(stat exp.otlp_http/d.spool_read_ns exp.otlp_http/d.spool_loaded_spans exp.otlp_http/d.replayed_spans | paste -sd' ')
stop_agent
stop_sinks
set -- $sw
SPOOL_W=$(awk -v a="$1" -v b="$2" 'BEGIN{printf "%.0f", a/(b?b:1)}')
SPILLED=$2
set -- $sr
SPOOL_R=$(awk -v a="$1" -v b="$2" 'BEGIN{printf "%.0f", a/(b?b:1)}')
REPLAYED=$3
DEAD_CPU=$(awk -v c=$((a1 - a0)) -v s="$total" 'BEGIN{printf "%.0f", c/s}')
REPLAY_CPU=$(awk -v c=$((r1 - r0)) -v s="${REPLAYED:-1}" 'BEGIN{printf "%.0f", c/(s?s:1)}')
REPLAY_RATE=$(awk -v s="$REPLAYED" -v t=$((t1 - t0)) 'BEGIN{printf "%.0f", s/(t/1e9)}')

out=$(
	echo "$(nproc) CPUs, $(uname -r); producer tests/progs/otlp-prod (about 270 bytes per span; 10 k/s: 1 thread, flat out: 2 threads with 16 MiB slots); sinks tests/bench/bench_otlpsink.c."
	echo
	echo "| backends | rate | agent flags | spans | producer drops | spans/s to each | agent CPU ns/span | RssAnon kB | VmHWM - RssShmem kB | zero-copy violations / iovecs checked |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${ROWS[@]}"
	echo
	echo "Idle agent (3 backends, one producer registered, no span): ${IDLE} % of one core."
	echo
	echo "Spool, one backend dead at 10 k spans/s (hold budget 256 KiB): ${SPILLED} spans spilled; spool write ${SPOOL_W} ns/span (writev to the page cache), agent CPU ${DEAD_CPU} ns/span while spilling. Replay once back: ${REPLAYED} spans at ${REPLAY_RATE} spans/s, spool read ${SPOOL_R} ns/span, agent CPU ${REPLAY_CPU} ns/span replayed."
)
echo "$out"
if [ -n "$DOC" ]; then
	python3 - "$DOC" "$out" <<'PY'
import re, sys
doc, body = sys.argv[1], sys.argv[2]
import os
text = open(doc).read() if os.path.exists(doc) else "# spanring benchmarks\n"
b, e = "<!-- BEGIN bench:fanout -->", "<!-- END bench:fanout -->"
new = f"{b}\n{body}\n{e}"
if b in text and e in text:
    text = re.sub(re.escape(b) + r".*?" + re.escape(e), lambda _: new, text, flags=re.S)
else:
    text += f"\n{new}\n"
open(doc, "w").write(text)
PY
fi
