#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# spanring benchmark suite (`make bench` runs it after building $B).
#
#   B=build/gcc tests/bench/run.sh
#
# Prints one table to stdout (progress goes to stderr), keeps the raw
# results in $B/bench/results/, and rewrites the generated blocks of
# docs/BENCHMARKS.md (between <!-- BEGIN bench:NAME --> and
# <!-- END bench:NAME -->; everything else in that file is hand-written and
# kept as it is).
#
# Sections (each a function below, run in this order):
#   env        machine, kernel, clocksource, compiler and flags, date
#   producer   producer hot path: every variant of bench_producer, 1 and 2
#              threads with a consumer thread draining, plus no consumer,
#              one shared (locked) slot, and the clock_gettime clock; the
#              configurations are run in interleaved rounds so that ratios
#              compare runs made seconds apart
#   callgrind  instructions per span (exact: difference of two runs) and
#              the per-function breakdown of the reference span
#   prodagent  the producer hot path with the real agent draining to the null
#              exporter (bench_producer --agent), 1 and 2 threads
#   agent      the agent (issue 3 §9, issue 7 §5): spans/s and agent CPU
#              ns/span with 1, 8 and 64 producer processes to the null, file
#              and OTLP/HTTP exporters, agent memory (tests/bench/agent.py)
#   agentcg    instructions per span in the agent (callgrind), by function
#   latency    span end -> released by every exporter, p50/p99, 10 k/s and
#              saturation
#   rates      producer-side drops at set rates up to 5 M spans/s, default
#              ring, default and tuned agent settings
#   sockbase   protobuf-c batches over loopback TCP / unix socket vs spanring
#              producer + agent, CPU per span (issue 7 §4)
#   scale      256 producer processes, 1..1024 threads in one process, host
#              memory (rings + agent) (issue 7 §6)
#   wake       the agent when little happens (issue 15): CPU and wake-ups
#              idle (no producer, 100 idle producers), CPU per span and
#              latency at 10 k and 1 k spans/s to OTLP/HTTP; BENCH_BASE adds
#              the same cases with a build of the previous version
#   lttng      LTTng-UST, same payload, same run (tests/bench/lttng.sh:
#              installs liblttng-ust-dev and lttng-tools if missing, runs its
#              own lttng-sessiond) (issue 7 §3)
#   fanout     one agent, 1/2/3/8 OTLP/HTTP backends at 10 k spans/s and flat
#              out, idle agent, spool write/replay (tests/bench/fanout_bench.sh,
#              block bench:fanout) (issue 12 §5)
# The agent-side sections render into their own blocks through
# tests/bench/report_agent.py (bench:agent, bench:agent-targets, ...).
#
# Knobs (environment):
#   BENCH_QUICK=1        smoke test: 2 rounds, short runs, small callgrind
#                        runs, a subset of the agent cases, no agent or LTTng
#                        callgrind, no 256 processes / 1024 threads (~50 s);
#                        writes $B/bench/BENCHMARKS.quick.md
#                        instead of docs/BENCHMARKS.md unless BENCH_DOC is set
#   BENCH_ROUNDS=N       rounds of the producer configurations (default 12)
#   BENCH_SPANS=N        timed spans per thread and phase (default 200000)
#   BENCH_CALLGRIND=0    skip the instruction counts
#   BENCH_PIN=0          do not pin threads to CPUs (default: bench_producer
#                        --pin; unpinned, the consumer was sometimes woken on
#                        the producer's CPU and slowed it 3-4x for that run)
#   BENCH_DOC=path       where to write the document ("-": nowhere)
#   BENCH_ONLY=a,b       run only these configurations: producer ids as in
#                        PRODUCER_CONFIGS, callgrind ids prefixed cg: (cg:reference)
#   BENCH_SLOT_SIZE=8M   SPANRING_SLOT_SIZE of the producer runs (see below)
#   BENCH_BASE=dir       wake: also run its cases with this build directory's
#                        agent and producers (e.g. a build of the previous
#                        version), shown as "before"
#   BENCH_SECTIONS=a,b   run only these sections (default: all, in the order
#                        above); the results of the others in $OUT are kept
#                        and rendered again (the producer blocks only when
#                        producer runs)
set -euo pipefail

cd "$(dirname "$0")/../.."
B=${B:-build/gcc}
BIN=$B/bench/bench_producer
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	ROUNDS=${BENCH_ROUNDS:-2}
	SPANS=${BENCH_SPANS:-20000}
	CG_WARM=500 CG_N1=1000 CG_N2=3000
	DOC=${BENCH_DOC:-$B/bench/BENCHMARKS.quick.md}
else
	ROUNDS=${BENCH_ROUNDS:-12}
	SPANS=${BENCH_SPANS:-200000}
	CG_WARM=2000 CG_N1=10000 CG_N2=30000
	DOC=${BENCH_DOC:-docs/BENCHMARKS.md}
fi
CALLGRIND=${BENCH_CALLGRIND:-1}
PIN=${BENCH_PIN:-1}
ONLY=${BENCH_ONLY:-}
OUT=$B/bench/results
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-120}
SLOT_SIZE=${BENCH_SLOT_SIZE:-8M}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

SECTIONS=${BENCH_SECTIONS:-env,producer,callgrind,prodagent,agent,agentcg,latency,rates,sockbase,scale,wake,fanout,lttng}
want() { [[ ",$SECTIONS," == *",$1,"* ]]; }
for b in "$BIN" "$B/bin/spanring-agent" "$B/bench/bench_agentprod" "$B/bench/bench_otlpsink" \
	"$B/bench/bench_sockbase"; do
	[ -x "$b" ] || { echo "run.sh: $b not found: build it first (make bench, or make B=$B all)" >&2; exit 1; }
done
if [ ! -x "$BIN" ]; then
	echo "run.sh: $BIN not found: build it first (make bench, or make B=$B $BIN)" >&2
	exit 1
fi
command -v python3 >/dev/null || { echo "run.sh: python3 is needed for the report" >&2; exit 1; }
if [ -n "${BENCH_SECTIONS:-}" ]; then
	# A partial run keeps the other sections' results, so that the report
	# (targets compare sections) still sees them.
	mkdir -p "$OUT"
	for s in ${BENCH_SECTIONS//,/ }; do rm -f "$OUT/$s".* "$OUT/$s.jsonl"; done
else
	rm -rf "$OUT"
	mkdir -p "$OUT"
fi
START=$(date +%s)

# ---- env --------------------------------------------------------------------

section_env() {
	local obj cflags cc
	obj=$(find "$B/lib" -name 'encode.o' 2>/dev/null | head -1)
	[ -n "$obj" ] || obj=$(find "$B/lib" -maxdepth 1 -name 'span.o' 2>/dev/null | head -1)
	cflags=""
	if [ -n "$obj" ] && command -v readelf >/dev/null; then
		# gcc and clang record the compiler and its options in DWARF (-g).
		cflags=$(readelf --debug-dump=info "$obj" 2>/dev/null |
			sed -n 's/.*DW_AT_producer *: *\(([^)]*): *\)\{0,1\}//p' | head -1)
	fi
	cc=$(strings -a "$BIN" 2>/dev/null | grep -m1 -E '^(GCC|clang version|Debian clang)' || true)
	python3 - "$OUT/env.json" "$cflags" "$cc" "$B" "$QUICK" "$ROUNDS" "$SPANS" <<'EOF'
import json, os, platform, re, subprocess, sys, datetime
out, cflags, cc, b, quick, rounds, spans = sys.argv[1:]
def read(p):
    try:
        return open(p).read().strip()
    except OSError:
        return ""
cpu = {}
for line in read("/proc/cpuinfo").splitlines():
    k, _, v = line.partition(":")
    k = k.strip()
    if k in ("model name", "cpu family", "model", "stepping", "cpu MHz") and k not in cpu:
        cpu[k] = v.strip()
def run(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""
lscpu = run("lscpu")
hyp = re.search(r"Hypervisor vendor:\s*(.*)", lscpu)
tpc = re.search(r"Thread\(s\) per core:\s*(.*)", lscpu)
vg = run("valgrind", "--version")
json.dump({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "cpu_model": cpu.get("model name", "?"),
    "cpu_family": cpu.get("cpu family", "?"), "cpu_model_no": cpu.get("model", "?"),
    "cpu_stepping": cpu.get("stepping", "?"), "cpu_mhz": cpu.get("cpu MHz", "?"),
    "cores": os.cpu_count(), "threads_per_core": tpc.group(1) if tpc else "?",
    "hypervisor": hyp.group(1) if hyp else "none",
    "kernel": platform.release(),
    "clocksource": read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
    "loadavg": read("/proc/loadavg"),
    "compiler": cflags.split(" -")[0] if cflags else cc,
    "cflags": cflags, "build_dir": b, "valgrind": vg,
    "quick": quick == "1", "rounds": int(rounds), "spans": int(spans),
    "git": run("git", "rev-parse", "--short", "HEAD") + (" (dirty)" if run("git", "status", "--porcelain", "--untracked-files=no") else ""),
}, open(out, "w"), indent=1)
EOF
	log "env: $(python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(e["cpu_model"], e["cores"], "cores,", e["kernel"], e["clocksource"])' "$OUT/env.json")"
}

# ---- producer -----------------------------------------------------------------

# id | environment | bench_producer arguments. Order matters: each round runs
# them top to bottom, and ratios pair configurations run next to each other.
# Every configuration runs with SPANRING_SLOT_SIZE=$SLOT_SIZE (8M) unless it
# sets its own: at full speed a producer fills a default 512 KiB slot in
# ~0.5 ms, and on this shared VM the stand-in consumer thread is often not
# scheduled that fast, so the ring refuses spans; the .ring512k rows keep
# the default size to show that.
PRODUCER_CONFIGS=(
	"ref.t1|                        |--variant reference --threads 1"
	"ref.t1.ring512k|SPANRING_SLOT_SIZE=512K|--variant reference --threads 1"
	"ref.t1.rt|SPANRING_CLOCK=realtime|--variant reference --threads 1"
	"ref.t1.shared|SPANRING_SLOTS=1 |--variant reference --threads 1"
	"ref.t1.nc|                     |--variant reference --threads 1 --no-consumer"
	"reference_ref.t1|              |--variant reference_ref --threads 1"
	"emit.t1|                       |--variant emit --threads 1"
	"unsampled.t1|                  |--variant unsampled --threads 1"
	"attrs16.t1|                    |--variant attrs16 --threads 1"
	"events2.t1|                    |--variant events2 --threads 1"
	"overlimit.t1|                  |--variant overlimit --threads 1"
	"ref.t2|                        |--variant reference --threads 2"
	"ref.t2.ring512k|SPANRING_SLOT_SIZE=512K|--variant reference --threads 2"
	"ref.t2.rt|SPANRING_CLOCK=realtime|--variant reference --threads 2"
	"ref.t2.shared|SPANRING_SLOTS=1 |--variant reference --threads 2"
	"ref.t2.nc|                     |--variant reference --threads 2 --no-consumer"
	"reference_ref.t2|              |--variant reference_ref --threads 2"
	"emit.t2|                       |--variant emit --threads 2"
	"unsampled.t2|                  |--variant unsampled --threads 2"
	"attrs16.t2|                    |--variant attrs16 --threads 2"
	"events2.t2|                    |--variant events2 --threads 2"
	"overlimit.t2|                  |--variant overlimit --threads 2"
)

with_slot_size() {
	case "$1" in
	*SPANRING_SLOT_SIZE=*) printf '%s' "$1" ;;
	*) printf '%s' "SPANRING_SLOT_SIZE=$SLOT_SIZE${1:+ $1}" ;;
	esac
}

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

section_producer() {
	local extra=(--spans "$SPANS" --json)
	[ "$PIN" = 1 ] && extra+=(--pin)
	local r line id envs args res
	: >"$OUT/producer.jsonl"
	: >"$OUT/producer.commands"
	for line in "${PRODUCER_CONFIGS[@]}"; do
		IFS='|' read -r id envs args <<<"$line"
		id=$(trim "$id") envs=$(with_slot_size "$(trim "$envs")")
		if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$id,"* ]]; then continue; fi
		echo "$id|$envs $BIN $args ${extra[*]}" >>"$OUT/producer.commands"
	done
	for ((r = 1; r <= ROUNDS; r++)); do
		log "producer: round $r/$ROUNDS"
		for line in "${PRODUCER_CONFIGS[@]}"; do
			IFS='|' read -r id envs args <<<"$line"
			id=$(trim "$id") envs=$(with_slot_size "$(trim "$envs")")
			if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$id,"* ]]; then continue; fi
			# shellcheck disable=SC2086 # envs and args are word lists
			if res=$(env $envs timeout "$RUN_TIMEOUT" "$BIN" $args "${extra[@]}" 2>"$OUT/last.err"); then
				printf '{"round":%d,"config":"%s","env":"%s","result":%s}\n' \
					"$r" "$id" "$envs" "$res" >>"$OUT/producer.jsonl"
			else
				log "producer: $id failed (round $r): $(tail -1 "$OUT/last.err")"
				printf '{"round":%d,"config":"%s","env":"%s","error":true}\n' \
					"$r" "$id" "$envs" >>"$OUT/producer.jsonl"
			fi
		done
	done
}

# ---- callgrind ------------------------------------------------------------------

# id | environment | variant
CALLGRIND_CONFIGS=(
	"reference||reference"
	"reference_ref||reference_ref"
	"emit||emit"
	"unsampled||unsampled"
	"attrs16||attrs16"
	"events2||events2"
	"overlimit||overlimit"
	"reference.shared|SPANRING_SLOTS=1|reference"
)

cg_total() { sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$1" | head -1; }

section_callgrind() {
	: >"$OUT/callgrind.jsonl"
	if [ "$CALLGRIND" != 1 ]; then
		log "callgrind: skipped (BENCH_CALLGRIND=$CALLGRIND)"
		return
	fi
	if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
		log "callgrind: valgrind not installed, skipped"
		return
	fi
	local line id envs v n f ir=() args
	: >"$OUT/callgrind.commands"
	for line in "${CALLGRIND_CONFIGS[@]}"; do
		IFS='|' read -r id envs v <<<"$line"
		if [ -n "$ONLY" ] && [[ ",$ONLY," != *",cg:$id,"* ]]; then continue; fi
		ir=()
		for n in "$CG_N1" "$CG_N2"; do
			f=$OUT/callgrind.$id.$n.out
			args=(--variant "$v" --no-consumer --batch 0 --warmup "$CG_WARM" --spans "$n")
			echo "$id|${envs:+$envs }valgrind --tool=callgrind --toggle-collect=one_span --callgrind-out-file=$f $BIN ${args[*]}" \
				>>"$OUT/callgrind.commands"
			# shellcheck disable=SC2086
			if ! env $envs timeout 600 valgrind --tool=callgrind --toggle-collect=one_span \
				--callgrind-out-file="$f" "$BIN" "${args[@]}" >"$OUT/callgrind.$id.$n.log" 2>&1; then
				log "callgrind: $id --spans $n failed"
				continue 2
			fi
			ir+=("$(cg_total "$f")")
			callgrind_annotate --inclusive=yes --threshold=100 "$f" >"$f.incl" 2>/dev/null || true
			callgrind_annotate --inclusive=no --threshold=100 "$f" >"$f.self" 2>/dev/null || true
		done
		printf '{"config":"%s","env":"%s","variant":"%s","warmup":%d,"n1":%d,"n2":%d,"ir1":%s,"ir2":%s}\n' \
			"$id" "$envs" "$v" "$CG_WARM" "$CG_N1" "$CG_N2" "${ir[0]}" "${ir[1]}" >>"$OUT/callgrind.jsonl"
		log "callgrind: $id $(( (ir[1] - ir[0]) / (CG_N2 - CG_N1) )) instr/span"
	done
}

# ---- report -------------------------------------------------------------------------

report() {
	SLOT_SIZE=$SLOT_SIZE python3 - "$OUT" "$DOC" "$B" "$(($(date +%s) - START))" <<'EOF'
import collections, json, os, re, statistics, sys

OUT, DOC, B, ELAPSED = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
env = json.load(open(os.path.join(OUT, "env.json")))

def jl(name):
    p = os.path.join(OUT, name)
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []

prod = jl("producer.jsonl")
cg = jl("callgrind.jsonl")
def commands(name):
    p = os.path.join(OUT, name)
    return [l.rstrip("\n").split("|", 1) for l in open(p)] if os.path.exists(p) else []

med = statistics.median
def fmt(x, d=0):
    return "–" if x is None else f"{x:,.{d}f}".replace(",", " ") if abs(x) >= 10000 else f"{x:.{d}f}"
def mmm(xs, d=0):
    if not xs:
        return "–"
    return f"{fmt(med(xs), d)} ({fmt(min(xs), d)}–{fmt(max(xs), d)})"

# ---- producer figures ----
runs = collections.defaultdict(list)      # config -> [result]
byround = collections.defaultdict(dict)   # round -> config -> result
errors = collections.Counter()
order = []
for r in prod:
    c = r["config"]
    if c not in order:
        order.append(c)
    if r.get("error"):
        errors[c] += 1
        continue
    runs[c].append(r["result"])
    byround[r["round"]][c] = r["result"]

# instructions per span (difference of two callgrind runs: exact)
ips, ipsx = {}, {}
for c in cg:
    calls1, calls2 = c["warmup"] + c["n1"], c["warmup"] + c["n2"]
    ips[c["config"]] = (c["ir2"] - c["ir1"]) / (calls2 - calls1)
    ipsx[c["config"]] = c["ir2"] / calls2
cg_for = {"ref": "reference", "reference_ref": "reference_ref", "emit": "emit",
          "unsampled": "unsampled", "attrs16": "attrs16", "events2": "events2",
          "overlimit": "overlimit"}
def instr_of(cfg):
    if cfg.endswith(".rt") or cfg.endswith(".ring512k"):
        return None
    base = cfg.split(".")[0]
    key = cg_for.get(base)
    if cfg.endswith(".shared"):
        key = "reference.shared"
    return ips.get(key) if key else None

def fig(r, key):
    """Figures over committed spans (a refused span is cheaper); all spans if absent.
    None when there is none (every timed span or batch saw a drop)."""
    v = r.get("committed_only", r)[key]
    return v if v and v > 0 else None

def figs(rs, key):
    return [v for v in (fig(r, key) for r in rs) if v is not None]

def describe(cfg):
    parts = cfg.split(".")
    v = {"ref": "reference"}.get(parts[0], parts[0])
    t = parts[1][1:]
    notes = []
    if "rt" in parts: notes.append("SPANRING_CLOCK=realtime")
    if "shared" in parts: notes.append("SPANRING_SLOTS=1")
    if "ring512k" in parts: notes.append("512 KiB slots")
    notes.append("no consumer" if "nc" in parts else "consumer")
    return v, t, ", ".join(notes)

rows = []
for c in order:
    rs = runs.get(c, [])
    v, t, note = describe(c)
    spans = sum(r["spans"] for r in rs)
    drops = sum(r["drops"] for r in rs)
    committed = sum(r["committed"] for r in rs)
    calls = sum(r["calls"] * r["threads"] for r in rs)
    rows.append({
        "config": c, "variant": v, "threads": t, "note": note, "runs": len(rs),
        "errors": errors[c],
        "median": figs(rs, "median_ns"), "p99": figs(rs, "p99_ns"),
        "batch": figs(rs, "batch_median_ns"),
        "all_median": [r["median_ns"] for r in rs],
        "drop_pct": 100.0 * drops / calls if calls else 0.0,
        "instr": instr_of(c),
    })

def ratio(a, b, key="batch_median_ns"):
    xs = []
    for rnd, cs in byround.items():
        if a in cs and b in cs and fig(cs[a], key) and fig(cs[b], key):
            xs.append(fig(cs[a], key) / fig(cs[b], key))
    return xs
def delta(a, b, key="batch_median_ns"):
    return [fig(cs[a], key) - fig(cs[b], key) for cs in byround.values()
            if a in cs and b in cs and fig(cs[a], key) and fig(cs[b], key)]

RATIOS = [
    ("reference_ref / reference (borrowing vs copying setters)", "reference_ref.t1", "ref.t1"),
    ("emit / reference (one-call form)", "emit.t1", "ref.t1"),
    ("unsampled / reference", "unsampled.t1", "ref.t1"),
    ("attrs16 / reference", "attrs16.t1", "ref.t1"),
    ("events2 / reference", "events2.t1", "ref.t1"),
    ("overlimit / reference", "overlimit.t1", "ref.t1"),
    ("clock_gettime / TSC clock, 1 thread", "ref.t1.rt", "ref.t1"),
    ("clock_gettime / TSC clock, 2 threads", "ref.t2.rt", "ref.t2"),
    ("one shared locked slot / own slot, 1 thread", "ref.t1.shared", "ref.t1"),
    ("one shared locked slot / own slot, 2 threads", "ref.t2.shared", "ref.t2"),
    ("default 512 KiB slots / 8 MiB slots, 1 thread", "ref.t1.ring512k", "ref.t1"),
    ("default 512 KiB slots / 8 MiB slots, 2 threads", "ref.t2.ring512k", "ref.t2"),
    ("no consumer / consumer thread, 1 thread", "ref.t1.nc", "ref.t1"),
    ("no consumer / consumer thread, 2 threads", "ref.t2.nc", "ref.t2"),
    ("2 threads / 1 thread (reference, consumer)", "ref.t2", "ref.t1"),
]
ratio_rows = []
for label, a, b in RATIOS:
    xs = ratio(a, b)
    if xs:
        ratio_rows.append((label, xs, delta(a, b)))

# ---- targets ----
def row(c):
    return next((r for r in rows if r["config"] == c), None)
targets = []
for c, t in (("ref.t1", 1), ("ref.t2", 2)):
    r = row(c)
    if not r or not r["runs"]:
        continue
    m, p = med(r["median"]), med(r["p99"])
    targets.append((f"reference span, {t} thread{'s' if t > 1 else ''}, consumer: median ≤ 100 ns",
                    f"{mmm(r['median'])} ns", "PASS" if m <= 100 else "MISS"))
    targets.append((f"reference span, {t} thread{'s' if t > 1 else ''}, consumer: p99 ≤ 1 µs",
                    f"{mmm(r['p99'])} ns", "PASS" if p <= 1000 else "MISS"))

timer = [r["timer_ns"] for rs in runs.values() for r in rs]

# ---- stdout table ----
w = sys.stdout.write
w(f"\nspanring producer benchmark — {env['date']} — {env['cpu_model']} ({env['cores']} cores), "
  f"{env['kernel']}, clocksource {env['clocksource']}\n")
w(f"{len(next(iter(runs.values()), [])) if runs else 0} runs per configuration; median of the run "
  f"medians (min–max); ns per span; timer overhead in per-span figures ≈ "
  f"{fmt(med(timer), 0) if timer else '?'} ns\n\n")
hdr = f"{'variant':<14} {'thr':>3} {'setup':<34} {'median ns':>18} {'p99 ns':>20} {'batch mean ns':>20} {'drops':>7} {'instr/span':>10}\n"
w(hdr)
w("-" * (len(hdr) - 1) + "\n")
for r in rows:
    w(f"{r['variant']:<14} {r['threads']:>3} {r['note']:<34} {mmm(r['median']):>18} {mmm(r['p99']):>20} "
      f"{mmm(r['batch'], 1):>20} {r['drop_pct']:>6.2f}% {fmt(r['instr'], 0) if r['instr'] else '–':>10}\n")
if ratio_rows:
    w("\nratios within a round (batch mean ns/span; median of rounds (min–max); Δ ns):\n")
    for label, xs, ds in ratio_rows:
        w(f"  {label:<52} {mmm(xs, 2):>20}   Δ {fmt(med(ds), 1):>6} ns\n")
if ips:
    w("\ninstructions per span (callgrind, exact: difference of two runs):\n")
    for k, v in ips.items():
        w(f"  {k:<18} {v:8.1f}\n")
if targets:
    w("\ntargets (issue 2):\n")
    for t, m, s in targets:
        w(f"  {s:<4}  {t:<58} {m}\n")
w(f"\nraw results: {OUT}; elapsed {ELAPSED} s\n")

# ---- callgrind breakdown ----
LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.+?):(\S+)(?:\s+\[(.*)\])?\s*$")
def annotate(path):
    """function -> (max over files = the function's own entry, sum over files)"""
    mx, sm = {}, collections.Counter()
    if not os.path.exists(path):
        return mx, sm
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        fn = m.group(3)
        mx[fn] = max(mx.get(fn, 0), n)
        sm[fn] += n
    return mx, sm
breakdown = []
ref = next((c for c in cg if c["config"] == "reference"), None)
if ref:
    base = os.path.join(OUT, "callgrind.reference.")
    i1, _ = annotate(f"{base}{ref['n1']}.out.incl")
    i2, _ = annotate(f"{base}{ref['n2']}.out.incl")
    _, s1 = annotate(f"{base}{ref['n1']}.out.self")
    _, s2 = annotate(f"{base}{ref['n2']}.out.self")
    dn = ref["n2"] - ref["n1"]
    skip = {"clone", "start_thread", "producer_run"}
    for fn in i2:
        if fn in skip or "*" in fn:
            continue
        inc = (i2.get(fn, 0) - i1.get(fn, 0)) / dn
        slf = (s2.get(fn, 0) - s1.get(fn, 0)) / dn
        if inc >= 0.5:
            breakdown.append((fn, inc, slf))
    breakdown.sort(key=lambda x: -x[1])

# ---- document ----
if DOC == "-":
    sys.exit(0)
blocks = {}
e = env
fam = f"family {e['cpu_family']} model {e['cpu_model_no']} stepping {e['cpu_stepping']}"
blocks["env"] = "\n".join([
    f"- Date: {e['date']} (git {e['git']}){' — QUICK smoke run, not results' if e['quick'] else ''}",
    f"- CPU: {e['cpu_model']} ({fam}), {e['cores']} cores as seen by the guest "
    f"({e['threads_per_core']} thread per core reported), hypervisor {e['hypervisor']}",
    f"- Kernel: {e['kernel']}; clocksource: {e['clocksource']}; load average at start: {e['loadavg']}",
    f"- Compiler and flags (DWARF producer of lib/encode.o): `{e['cflags'] or e['compiler']}`",
    f"- Build directory: `{e['build_dir']}`; {e['valgrind'] or 'valgrind not installed'}",
    f"- {e['rounds']} rounds × every configuration, {e['spans']} timed spans per thread and phase; suite took {ELAPSED} s",
])

L = []
L.append("| variant | threads | set-up | median ns/span | p99 ns/span | batch mean ns/span | drops | instr/span |")
L.append("|---|---:|---|---:|---:|---:|---:|---:|")
for r in rows:
    L.append(f"| {r['variant']} | {r['threads']} | {r['note']} | {mmm(r['median'])} | {mmm(r['p99'])} | "
             f"{mmm(r['batch'], 1)} | {r['drop_pct']:.2f}% | {fmt(r['instr'], 0) if r['instr'] else '–'} |")
L.append("")
L.append(f"Each cell: median over {e['rounds']} runs (min–max over the runs). *median* and *p99*: "
         "per-span latency, each span timed alone with `rdtsc`; these include the timer itself "
         f"(≈ {fmt(med(timer), 0) if timer else '?'} ns, measured as an empty timed call) and are "
         "quantised to the TSC's ~10 ns step on this VM. *batch mean*: median over 64-span batches of "
         "the mean per span, no per-span timer (the finer central figure). All three are over the "
         "spans the ring took: a span refused because the ring was full costs less, so each thread "
         "watches its slot's drop counters and leaves out refused spans and batches with one. "
         "*drops*: spans the ring refused, in % of all spans the runs made (the consumer thread did "
         "not get a CPU in time: other jobs share this machine). Every run uses "
         f"`SPANRING_SLOT_SIZE={os.environ.get('SLOT_SIZE', '8M')}` except the rows marked "
         "*512 KiB slots* (the default size), see the method notes above. *instr/span*: callgrind, exact (below; those runs drain inline, like the *no consumer* rows); "
         "blank for the clock_gettime rows (under valgrind clock_gettime is a system call, not the vDSO) "
         "and for the 512 KiB rows (refused spans skip the encoding).")
L.append("")
if errors:
    L.append("Failed runs: " + ", ".join(f"{k} ×{v}" for k, v in errors.items()))
    L.append("")
L.append("**Ratios measured within the same round** (configurations run back to back; "
         "batch mean ns/span; median over rounds, min–max; Δ = difference in ns/span):")
L.append("")
L.append("| comparison | ratio | Δ ns/span |")
L.append("|---|---:|---:|")
for label, xs, ds in ratio_rows:
    L.append(f"| {label} | {mmm(xs, 2)} | {fmt(med(ds), 1)} |")
L.append("")
L.append("**Targets (issue 2)**, on the per-span figures as measured (timer included):")
L.append("")
L.append("| target | measured: median of runs (min–max) | status |")
L.append("|---|---:|---|")
for t, m, s in targets:
    L.append(f"| {t} | {m} | **{s}** |")
blocks["producer"] = "\n".join(L)

C = []
if ips:
    C.append("| variant | instr/span (difference of two runs) | naive: total / calls of the longer run |")
    C.append("|---|---:|---:|")
    for c in cg:
        C.append(f"| {c['config']}{' (' + c['env'] + ')' if c['env'] else ''} | {ips[c['config']]:.1f} | {ipsx[c['config']]:.1f} |")
    C.append("")
    ref = next((c for c in cg if c["config"] == "reference"), cg[0])
    C.append(f"Method: `--toggle-collect=one_span` counts the instructions of every call of "
             f"`one_span()` (warm-up included), so two runs with `--warmup {ref['warmup']}` and "
             f"`--spans {ref['n1']}` / `{ref['n2']}` differ by exactly {ref['n2'] - ref['n1']} spans; "
             "the difference of the counts divided by that is the steady-state cost, without the "
             "one-off set-up of the first span (thread state, slot claim, scope publication). "
             "Runs use `--no-consumer --batch 0` (the inline drain is outside `one_span`).")
    C.append("")
if breakdown:
    C.append("Reference span, by function (instructions per span; *inclusive*: the function and "
             "everything it calls; *self*: its own instructions, inlined helpers included; "
             "difference of the two runs, so exact per span):")
    C.append("")
    C.append("| function | inclusive | self |")
    C.append("|---|---:|---:|")
    for fn, inc, slf in breakdown[:24]:
        C.append(f"| `{fn}` | {inc:.0f} | {slf:.0f} |")
    C.append("")
if not C:
    C.append("Not measured in this run (BENCH_CALLGRIND=0 or valgrind missing).")
blocks["callgrind"] = "\n".join(C)

K = ["```sh", "make bench                       # = tools/setup-deps.sh; make all; B=build/gcc tests/bench/run.sh",
     "BENCH_QUICK=1 B=build/gcc tests/bench/run.sh   # smoke test (~50 s), writes build/gcc/bench/BENCHMARKS.quick.md", "```", "",
     "Every run of the suite (one line per configuration; each is run once per round):", "", "```sh"]
for cid, cmd in commands("producer.commands"):
    K.append(cmd.replace(B + "/", "$B/"))
for cid, cmd in commands("callgrind.commands"):
    K.append(re.sub(r"--callgrind-out-file=\S+ ", "", cmd.replace(B + "/", "$B/")))
K.append("```")
blocks["commands"] = "\n".join(K)

# Fill the blocks of the document (template: the document itself, else docs/BENCHMARKS.md).
src = DOC if os.path.exists(DOC) else "docs/BENCHMARKS.md"
text = open(src).read() if os.path.exists(src) else "# spanring benchmarks\n"
for name, body in blocks.items():
    begin, end = f"<!-- BEGIN bench:{name} -->", f"<!-- END bench:{name} -->"
    new = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: new, text, flags=re.S)
    else:
        text += f"\n## {name}\n\n{new}\n"
os.makedirs(os.path.dirname(DOC) or ".", exist_ok=True)
open(DOC, "w").write(text)
print(f"document: {DOC}", file=sys.stderr)
EOF
}

# ---- agent, latency, rates, socket baseline, scale (tests/bench/agent.py) -------------

section_py() { # section
	local q=()
	[ "$QUICK" = 1 ] && q=(--quick)
	if [ "$1" = agentcg ] && { [ "$CALLGRIND" != 1 ] || [ "$QUICK" = 1 ]; }; then
		log "agentcg: skipped (BENCH_CALLGRIND=$CALLGRIND, BENCH_QUICK=$QUICK)"
		return
	fi
	: >"$OUT/$1.jsonl"
	[ "$1" = wake ] && [ -n "${BENCH_BASE:-}" ] && q+=(--base "$BENCH_BASE")
	timeout 900 python3 tests/bench/agent.py "$1" --build "$B" --out "$OUT" "${q[@]}" ||
		log "$1: failed (exit $?); its results are partial"
}

# ---- LTTng-UST (tests/bench/lttng.sh) ---------------------------------------------------

section_lttng() {
	B=$B OUT=$OUT BENCH_QUICK=$QUICK BENCH_PIN=$PIN BENCH_CALLGRIND=$CALLGRIND \
		timeout 900 tests/bench/lttng.sh || log "lttng: failed (exit $?); its results are partial"
}

section_env
want producer && section_producer
want callgrind && section_callgrind
for s in prodagent agent agentcg latency rates sockbase scale wake; do
	if want "$s"; then
		log "$s: start"
		section_py "$s"
	fi
done
want lttng && section_lttng
want producer && report
python3 tests/bench/report_agent.py "$OUT" "$DOC" "$B"
# one agent, several OTLP/HTTP backends, the spool (tests/bench/fanout_bench.sh)
if want fanout; then
	log "fanout: start"
	fdoc=()
	[ "$DOC" != - ] && fdoc=(--doc "$DOC")
	B=$B timeout 900 tests/bench/fanout_bench.sh "${fdoc[@]}" >"$OUT/fanout.txt" ||
		log "fanout: failed (exit $?)"
fi
log "suite took $(($(date +%s) - START)) s"
