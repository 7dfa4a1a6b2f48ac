#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# LTTng-UST comparison (issue 7 §3), run by tests/bench/run.sh:
#
#   B=build/gcc OUT=$B/bench/results BENCH_QUICK=0 tests/bench/lttng.sh
#
# 1. Installs liblttng-ust-dev and lttng-tools from Debian if they are
#    missing (bench-only dependencies; tools/setup-deps.sh is for the build).
# 2. Builds $B/bench/bench_lttng (tests/bench/lttng/: a tracepoint provider
#    with the reference span's payload, timed like bench_producer).
# 3. Starts its own lttng-sessiond (--daemonize --no-kernel, LTTNG_HOME in a
#    temp dir; refuses to touch one that is already running), creates a
#    session writing to a temp dir, and in interleaved rounds runs
#    bench_producer (the spanring reference span, consumer thread) and
#    bench_lttng (the tracepoint, enabled, session active): ns/event
#    median/p99, batch mean, and the same-round ratio.
# 4. Consumer CPU: lttng-consumerd's CPU time (all its threads, schedstat)
#    over the session, per event written; discarded events from
#    `lttng list SESSION`; for the default channel (4 x 512 KiB per CPU,
#    per-user buffers) and 8 x 1 MiB.
# 5. Instructions per event: callgrind --toggle-collect=one_event, two runs
#    with different event counts (exact difference, as for spanring); not
#    in BENCH_QUICK=1 runs.
# 6. Destroys the sessions and stops the sessiond it started.
# Appends JSON lines to $OUT/lttng.jsonl ({"kind": ...}); when something
# cannot be done it writes {"kind":"error","step":..,"command":..,"error":..}
# and stops: the report then says exactly why there are no numbers.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
B=${B:?}
OUT=${OUT:?}
QUICK=${BENCH_QUICK:-0}
PIN=${BENCH_PIN:-1}
CALLGRIND=${BENCH_CALLGRIND:-1}
if [ "$QUICK" = 1 ]; then
	ROUNDS=2 EVENTS=20000 CONS_EVENTS=300000 CG_WARM=500 CG_N1=1000 CG_N2=3000
else
	ROUNDS=${BENCH_LTTNG_ROUNDS:-8} EVENTS=200000 CONS_EVENTS=2000000 CG_WARM=2000 CG_N1=10000 CG_N2=30000
fi
J=$OUT/lttng.jsonl
: >"$J"
: >"$OUT/lttng.commands"
BIN=$B/bench/bench_lttng
PROD=$B/bench/bench_producer
T=$(mktemp -d /tmp/sr-bench-lttng.XXXXXX)
export LTTNG_HOME=$T/home
mkdir -p "$LTTNG_HOME"
SESSIOND_PID=

log() { printf '[bench %s] lttng: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
jstr() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
err() { # step command error-text
	printf '{"kind":"error","step":%s,"command":%s,"error":%s}\n' "$(jstr "$1")" "$(jstr "$2")" \
		"$(jstr "$3")" >>"$J"
	log "$1 failed: $2: $3"
}
cmd() { echo "$1|$2" | sed "s|$B/|\$B/|g; s|$T|\$T|g" >>"$OUT/lttng.commands"; }

cleanup() {
	if [ -n "$SESSIOND_PID" ]; then
		lttng destroy --all >/dev/null 2>&1
		kill "$SESSIOND_PID" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$SESSIOND_PID" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$SESSIOND_PID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT

# ---- 1. install --------------------------------------------------------------
TP_H=$(ls /usr/include/lttng/tracepoint.h /usr/include/*/lttng/tracepoint.h 2>/dev/null | head -1)
if [ -z "$TP_H" ] || ! command -v lttng-sessiond >/dev/null || ! command -v lttng >/dev/null; then
	if [ "$(id -u)" != 0 ]; then
		err install "apt-get install liblttng-ust-dev lttng-tools" "not root, and LTTng is not installed"
		exit 0
	fi
	log "installing liblttng-ust-dev lttng-tools"
	export DEBIAN_FRONTEND=noninteractive
	if ! out=$(apt-get install -y -q liblttng-ust-dev lttng-tools 2>&1); then
		apt-get update -q >/dev/null 2>&1
		if ! out=$(apt-get install -y -q liblttng-ust-dev lttng-tools 2>&1); then
			err install "apt-get install -y liblttng-ust-dev lttng-tools" "$(tail -3 <<<"$out")"
			exit 0
		fi
	fi
fi
ver_ust=$(dpkg-query -W -f '${Version}' liblttng-ust-dev 2>/dev/null || echo "?")
ver_tools=$(lttng --version 2>/dev/null | head -1)

# ---- 2. build -------------------------------------------------------------------
mkdir -p "$B/bench"
if ! out=$(${CC:-cc} -std=gnu11 -O2 -g -Wall -Itests/bench/lttng -o "$BIN" \
	tests/bench/lttng/bench_lttng.c tests/bench/lttng/bench_lttng_tp.c -llttng-ust -ldl 2>&1); then
	err build "cc ... tests/bench/lttng/bench_lttng.c -llttng-ust -ldl" "$out"
	exit 0
fi

# ---- 3. sessiond ------------------------------------------------------------------
RUNDIR=/var/run/lttng
[ "$(id -u)" = 0 ] || RUNDIR=$LTTNG_HOME/.lttng
if [ -f "$RUNDIR/lttng-sessiond.pid" ] && kill -0 "$(cat "$RUNDIR/lttng-sessiond.pid")" 2>/dev/null; then
	err sessiond "lttng-sessiond --daemonize --no-kernel" \
		"an lttng-sessiond is already running (pid $(cat "$RUNDIR/lttng-sessiond.pid")); not touching it"
	exit 0
fi
if ! out=$(lttng-sessiond --daemonize --no-kernel 2>&1); then
	err sessiond "lttng-sessiond --daemonize --no-kernel" "$out"
	exit 0
fi
for _ in $(seq 100); do [ -f "$RUNDIR/lttng-sessiond.pid" ] && break; sleep 0.05; done
SESSIOND_PID=$(cat "$RUNDIR/lttng-sessiond.pid" 2>/dev/null)
[ -n "$SESSIOND_PID" ] || { err sessiond "lttng-sessiond --daemonize --no-kernel" "no pid file in $RUNDIR"; exit 0; }
log "lttng-sessiond $SESSIOND_PID ($ver_tools, lttng-ust $ver_ust)"
printf '{"kind":"setup","ust":%s,"tools":%s,"rundir":%s}\n' "$(jstr "$ver_ust")" "$(jstr "$ver_tools")" \
	"$(jstr "$RUNDIR")" >>"$J"

# CPU ns of every thread of every lttng-consumerd (only ours run: checked above).
consumer_cpu_ns() {
	python3 - "$SESSIOND_PID" <<'EOF'
import os, sys
root = sys.argv[1]
pids = set()
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        if open(f"/proc/{p}/comm").read().strip() == "lttng-consumerd":
            pids.add(p)
    except OSError:
        pass
s = 0
for p in pids:
    try:
        for t in os.listdir(f"/proc/{p}/task"):
            try:
                s += int(open(f"/proc/{p}/task/{t}/schedstat").read().split()[0])
            except (OSError, ValueError):
                pass
    except OSError:
        pass
print(s)
EOF
}

session() { # name subbuf-size num-subbuf ("" = defaults)
	local name=$1 out
	local args=()
	[ -n "$2" ] && args+=(--subbuf-size "$2" --num-subbuf "$3")
	if ! out=$(lttng create "$name" --output="$T/trace-$name" 2>&1); then
		err session "lttng create $name --output=\$T/trace-$name" "$out"; return 1
	fi
	if ! out=$(lttng enable-channel -u -s "$name" "${args[@]}" ch0 2>&1); then
		err session "lttng enable-channel -u ${args[*]} ch0" "$out"; return 1
	fi
	if ! out=$(lttng enable-event -u -s "$name" -c ch0 'spanring_bench:*' 2>&1); then
		err session "lttng enable-event -u -c ch0 'spanring_bench:*'" "$out"; return 1
	fi
	if ! out=$(lttng start "$name" 2>&1); then
		err session "lttng start $name" "$out"; return 1
	fi
	cmd "session.$name" "lttng create $name --output=\$T/trace-$name; lttng enable-channel -u ${args[*]} ch0; lttng enable-event -u -c ch0 'spanring_bench:*'; lttng start"
}

discarded() { # session -> discarded events of ch0
	lttng list "$1" 2>/dev/null | sed -n 's/.*Discarded events: *\([0-9]*\).*/\1/p' | head -1
}

# ---- rounds: producer cost, same run --------------------------------------------------
pinarg=()
[ "$PIN" = 1 ] && pinarg=(--pin)
if session cmp "" ""; then
	c0=$(consumer_cpu_ns)
	ev=0
	cmd "spanring" "SPANRING_SLOT_SIZE=8M $PROD --variant reference --threads 1 --spans $EVENTS --json ${pinarg[*]}"
	cmd "lttng" "$BIN --variant span --events $EVENTS --wait-enabled 10000 --json ${pinarg[*]}"
	cmd "lttng.one_int" "$BIN --variant one_int --events $EVENTS --wait-enabled 10000 --json ${pinarg[*]}"
	for ((r = 1; r <= ROUNDS; r++)); do
		log "round $r/$ROUNDS"
		if o=$(SPANRING_SLOT_SIZE=8M timeout 120 "$PROD" --variant reference --threads 1 --spans "$EVENTS" \
			--json "${pinarg[@]}" 2>/dev/null); then
			printf '{"kind":"producer","round":%d,"tool":"spanring","result":%s}\n' "$r" "$o" >>"$J"
		fi
		for v in span one_int; do
			if o=$(timeout 120 "$BIN" --variant $v --events "$EVENTS" --wait-enabled 10000 --json \
				"${pinarg[@]}" 2>"$T/lttng.err"); then
				printf '{"kind":"producer","round":%d,"tool":"lttng.%s","result":%s}\n' "$r" "$v" "$o" >>"$J"
				ev=$((ev + $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["calls"])' "$o")))
			else
				err run "$BIN --variant $v --events $EVENTS --wait-enabled 10000" "$(tail -2 "$T/lttng.err")"
			fi
		done
	done
	lttng stop cmp >/dev/null 2>&1
	c1=$(consumer_cpu_ns)
	d=$(discarded cmp)
	printf '{"kind":"consumer","channel":"default (4 x 512 KiB)","phase":"rounds","events":%d,"discarded":%s,"consumer_cpu_ns":%d}\n' \
		"$ev" "${d:-null}" "$((c1 - c0))" >>"$J"
	lttng destroy cmp >/dev/null 2>&1
fi

# ---- consumer CPU per event, flat out, two channel sizes ---------------------------------
for ch in "default||" "8x1M|1M|8"; do
	IFS='|' read -r cname sb nsb <<<"$ch"
	sname=cons${cname//[^a-z0-9]/}
	session "$sname" "$sb" "$nsb" || continue
	cmd "consumer.$cname" "$BIN --variant span --events $CONS_EVENTS --batch 64 --wait-enabled 10000 --json (then lttng stop)"
	c0=$(consumer_cpu_ns)
	t0=$(date +%s%N)
	if o=$(timeout 120 "$BIN" --variant span --events "$CONS_EVENTS" --wait-enabled 10000 --json 2>&1); then
		lttng stop "$sname" >/dev/null 2>&1
		t1=$(date +%s%N)
		c1=$(consumer_cpu_ns)
		d=$(discarded "$sname")
		bytes=$(du -sb "$T/trace-$sname" | cut -f1)
		printf '{"kind":"consumer","channel":"%s","phase":"flat out","result":%s,"discarded":%s,"consumer_cpu_ns":%d,"wall_s":%s,"trace_bytes":%s}\n' \
			"$cname" "$o" "${d:-null}" "$((c1 - c0))" "$(python3 -c "print(($t1 - $t0) / 1e9)")" "${bytes:-0}" >>"$J"
		log "consumer $cname: $(((c1 - c0) / 1000000)) ms CPU, discarded ${d:-?}"
	else
		err run "$BIN --variant span --events $CONS_EVENTS" "$o"
	fi
	lttng destroy "$sname" >/dev/null 2>&1
	rm -rf "$T/trace-$sname"
done

# ---- instructions per event ---------------------------------------------------------------
if [ "$CALLGRIND" = 1 ] && [ "$QUICK" != 1 ] && command -v valgrind >/dev/null && session cg "" ""; then
	ir=()
	for n in "$CG_N1" "$CG_N2"; do
		f=$T/cg.$n.out
		cmd "callgrind.$n" "valgrind --tool=callgrind --toggle-collect=one_event $BIN --variant span --batch 0 --warmup $CG_WARM --events $n --wait-enabled 60000"
		if LTTNG_UST_REGISTER_TIMEOUT=60000 timeout 600 valgrind --tool=callgrind --toggle-collect=one_event \
			--callgrind-out-file="$f" "$BIN" --variant span --batch 0 --warmup "$CG_WARM" --events "$n" \
			--wait-enabled 60000 --json >"$T/cg.$n.log" 2>&1; then
			ir+=("$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$f" | head -1)")
			callgrind_annotate --inclusive=yes --threshold=100 "$f" >"$OUT/lttng.callgrind.$n.incl" 2>/dev/null
		else
			err callgrind "valgrind --tool=callgrind ... $BIN --events $n" "$(tail -3 "$T/cg.$n.log")"
		fi
	done
	if [ "${#ir[@]}" = 2 ]; then
		printf '{"kind":"callgrind","warmup":%d,"n1":%d,"n2":%d,"ir1":%s,"ir2":%s}\n' \
			"$CG_WARM" "$CG_N1" "$CG_N2" "${ir[0]}" "${ir[1]}" >>"$J"
		log "callgrind: $(((ir[1] - ir[0]) / (CG_N2 - CG_N1))) instr/event"
	fi
	lttng destroy cg >/dev/null 2>&1
fi
exit 0
