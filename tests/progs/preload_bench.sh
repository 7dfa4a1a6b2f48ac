#!/usr/bin/env bash
# Overhead of the LD_PRELOAD shim as a ratio against no shim, in one run,
# with the agent running (null exporter):
#   1000 x /bin/true from a shell loop, and `make -j2` of a small project.
# Each case alternates runs without and with the shim ($ROUNDS rounds) and
# reports the medians of wall time and of CPU time (user + system of the
# command and everything it waited for, plus the agent's own CPU time
# during the run), the latter being less sensitive to a loaded machine.
# Prints a Markdown table (for docs/BENCHMARKS.md).
#   B=build/gcc tests/progs/preload_bench.sh [ROUNDS]
set -euo pipefail
B=${B:-build/gcc}
BUILD=$(cd "$B" && pwd)
SHIM=$BUILD/libspanring-preload.so
AGENT=$BUILD/bin/spanring-agent
ROUNDS=${1:-5}
[ -f "$SHIM" ] && [ -x "$AGENT" ] || { echo "build $B first" >&2; exit 1; }
unset LD_PRELOAD TRACEPARENT TRACESTATE OTEL_SDK_DISABLED SPANRING_TRACE MAKEFLAGS
T=$(mktemp -d /tmp/spanring-bench.XXXXXX)
export SPANRING_SOCKET=$T/agent.sock
"$AGENT" --socket "$SPANRING_SOCKET" --exporter null -q >"$T/agent.log" 2>&1 &
apid=$!
trap 'kill $apid 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 200); do [ -S "$SPANRING_SOCKET" ] && break; sleep 0.025; done

mkdir -p "$T/proj"
for i in $(seq 8); do
	printf 'int f%d(int x) { int s = 0; for (int i = 0; i < x; i++) s += i * %d; return s; }\n' \
		"$i" "$i" >"$T/proj/f$i.c"
done
printf 'int main(void) { return 0; }\n' >"$T/proj/main.c"
cat >"$T/proj/Makefile" <<'MK'
SRC = $(wildcard *.c)
prog: $(SRC:.c=.o)
	cc -o $@ $^
%.o: %.c
	cc -O2 -c -o $@ $<
MK

now() { date +%s%N; }
loop_true() { /bin/sh -c 'i=0; while [ $i -lt 1000 ]; do /bin/true; i=$((i+1)); done'; }
make_j2() { rm -f "$T"/proj/*.o "$T/proj/prog"; make -s -C "$T/proj" -j2 >/dev/null; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
hz=$(getconf CLK_TCK)
agent_cpu() { awk -v hz="$hz" '{print ($14 + $15) * 1e9 / hz}' "/proc/$apid/stat"; }

# run FN [PRELOAD]: prints "wall_ns cpu_ns"
run() {
	local fn=$1 pre=${2:-} t0 a0 out
	a0=$(agent_cpu)
	t0=$(now)
	out=$( { LD_PRELOAD=$pre /usr/bin/time -f "%U %S" bash -c "$(declare -f "$fn"); T='$T'; $fn" \
		>/dev/null; } 2>&1 | tail -n 1)
	local t1 a1
	t1=$(now)
	a1=$(agent_cpu)
	awk -v w=$((t1 - t0)) -v o="$out" -v a="$(awk -v x="$a0" -v y="$a1" 'BEGIN {print y - x}')" \
		'BEGIN { split(o, u, " "); printf "%.0f %.0f\n", w, (u[1] + u[2]) * 1e9 + a }'
}

measure() { # name function
	local name=$1 fn=$2 i r bw=() sw=() bc=() sc=()
	run "$fn" >/dev/null; run "$fn" "$SHIM" >/dev/null # warm up caches
	for i in $(seq "$ROUNDS"); do
		r=$(run "$fn"); bw+=("${r% *}"); bc+=("${r#* }")
		r=$(run "$fn" "$SHIM"); sw+=("${r% *}"); sc+=("${r#* }")
	done
	local b s cb cs
	b=$(printf '%s\n' "${bw[@]}" | median)
	s=$(printf '%s\n' "${sw[@]}" | median)
	cb=$(printf '%s\n' "${bc[@]}" | median)
	cs=$(printf '%s\n' "${sc[@]}" | median)
	awk -v n="$name" -v b="$b" -v s="$s" -v cb="$cb" -v cs="$cs" 'BEGIN {
		printf "| %s | %.1f ms | %.1f ms | %.2f | %.1f ms | %.1f ms | %.2f |\n",
			n, b / 1e6, s / 1e6, s / b, cb / 1e6, cs / 1e6, cs / cb }'
}

echo "| case | wall, no shim | wall, shim | ratio | CPU, no shim | CPU, shim | ratio |"
echo "|---|---|---|---|---|---|---|"
measure "1000 x /bin/true (sh loop)" loop_true
measure "make -j2, 9 C files" make_j2
echo
echo "medians of $ROUNDS alternating rounds; agent running (null exporter), its CPU time included;"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
