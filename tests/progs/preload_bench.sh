#!/usr/bin/env bash
# Overhead of the LD_PRELOAD shim as a ratio against no shim, in one run,
# with the agent running (null exporter):
#   1000 x /bin/true from a shell loop, and `make -j2` of a small project.
# Each case alternates runs without and with the shim ($ROUNDS rounds) and
# reports the medians. Prints a Markdown table (for docs/BENCHMARKS.md).
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
make_j2() { make -s -C "$T/proj" clean_ >/dev/null 2>&1 || true; rm -f "$T"/proj/*.o "$T/proj/prog"; make -s -C "$T/proj" -j2 >/dev/null; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() { # name function
	local name=$1 fn=$2 i t0 base=() shim=()
	$fn; LD_PRELOAD=$SHIM $fn # warm up caches
	for i in $(seq "$ROUNDS"); do
		t0=$(now); $fn; base+=($(( $(now) - t0 )))
		t0=$(now); LD_PRELOAD=$SHIM $fn; shim+=($(( $(now) - t0 )))
	done
	local b s
	b=$(printf '%s\n' "${base[@]}" | median)
	s=$(printf '%s\n' "${shim[@]}" | median)
	awk -v n="$name" -v b="$b" -v s="$s" 'BEGIN {
		printf "| %s | %.1f ms | %.1f ms | %.3f | %+.1f %% |\n", n, b / 1e6, s / 1e6, s / b, (s / b - 1) * 100 }'
}

echo "| case | without shim | with shim | ratio | overhead |"
echo "|---|---|---|---|---|"
measure "1000 x /bin/true (sh loop)" loop_true
measure "make -j2, 9 C files" make_j2
echo
echo "medians of $ROUNDS alternating rounds; agent running with the null exporter; $(nproc) CPUs"
