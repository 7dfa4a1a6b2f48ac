#!/usr/bin/env bash
# Run the libFuzzer targets of a fuzz build (make fuzz-build; build/fuzz):
# first every committed crash input (tests/fuzz/regressions/<target>/*) and
# every seed (tests/fuzz/corpus/<target>/*) once, then a bounded fuzzing
# run of each target from its seeds (a scratch copy: the committed corpus
# is not changed), two targets at a time.
#
#   B=build/fuzz tests/fuzz/run.sh [--seconds N] [--jobs J] [TARGET...]
#
# TARGET is a file name of tests/fuzz without fuzz_ and .c (ring, reg,
# config, otlp_http, dump_file, dump_ring, ring_read). Prints one line
# per check and, last, "fuzz: N passed, N failed, N skipped". A crash
# leaves its input in
# $B/fuzz-artifacts/ and the target's log in $B/fuzz-logs/: copy the input
# to tests/fuzz/regressions/<target>/<what-it-is> with the fix.
# Exit 77 (all skipped) when the fuzz build is absent (no clang).
set -u
cd "$(dirname "$0")/../.."
B=${B:-build/fuzz}
secs=20
jobs=2
targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) secs=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	*) targets+=("$1"); shift ;;
	esac
done
if [ ${#targets[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do
		t=${f#tests/fuzz/fuzz_}
		targets+=("${t%.c}")
	done
fi
logs=$B/fuzz-logs
art=$B/fuzz-artifacts
mkdir -p "$logs" "$art"
pass=0 fail=0 skip=0

# Per-target options: the longest input, a dictionary when there is one.
opts_of() {
	# -error_exitcode: libFuzzer's default (77) is the suite's "skipped".
	local t=$1 o=(-timeout=20 -rss_limit_mb=3072 -print_final_stats=1 -print_funcs=0 -error_exitcode=1
		-artifact_prefix="$art/$t-")
	case $t in
	ring) o+=(-max_len=16384) ;;
	dump_file | dump_ring | ring_read) o+=(-max_len=16384) ;;
	*) o+=(-max_len=4096) ;;
	esac
	[ -f "tests/fuzz/$t.dict" ] && o+=(-dict="tests/fuzz/$t.dict")
	printf '%s\n' "${o[@]}"
}

result() { # name rc seconds detail
	if [ "$2" -eq 0 ]; then pass=$((pass + 1)); echo "PASS $1 ($3s) $4"
	elif [ "$2" -eq 77 ]; then skip=$((skip + 1)); echo "SKIP $1 $4"
	else fail=$((fail + 1)); echo "FAIL $1 (rc=$2, $3s, log $logs/$1.log) $4"
		grep -E "invariant failed|ERROR: |SUMMARY|Test unit written|^    #[0-9] " "$logs/$1.log" |
			head -n 25 | sed 's/^/    /'
	fi
}

# Replays: each regression input and each seed once (fast, sequential).
for t in "${targets[@]}"; do
	bin=$B/fuzz/fuzz_$t
	if [ ! -x "$bin" ]; then
		result "fuzz_$t" 77 0 "(no fuzz build: make fuzz-build, needs clang)"
		continue
	fi
	files=()
	for d in "tests/fuzz/regressions/$t" "tests/fuzz/corpus/$t"; do
		[ -d "$d" ] && for f in "$d"/*; do [ -f "$f" ] && files+=("$f"); done
	done
	t0=$SECONDS
	if [ ${#files[@]} -eq 0 ]; then
		rc=0
	else
		mapfile -t o < <(opts_of "$t")
		"$bin" "${o[@]}" -runs=1 "${files[@]}" >"$logs/fuzz_replay_$t.log" 2>&1
		rc=$?
	fi
	nreg=$(ls "tests/fuzz/regressions/$t" 2>/dev/null | wc -l)
	if [ $rc -ne 0 ]; then
		fail=$((fail + 1)); echo "FAIL fuzz_replay_$t (rc=$rc, log $logs/fuzz_replay_$t.log)"
		grep -E "Running:|invariant failed|ERROR: |SUMMARY" "$logs/fuzz_replay_$t.log" | tail -n 5 | sed 's/^/    /'
	else
		pass=$((pass + 1)); echo "PASS fuzz_replay_$t ($((SECONDS - t0))s) ${#files[@]} inputs, $nreg regressions"
	fi
done

# Bounded fuzzing, $jobs targets at a time.
run_one() {
	local t=$1 bin=$B/fuzz/fuzz_$1 work
	work=$(mktemp -d "${TMPDIR:-/tmp}/spanring-fuzz-$t.XXXXXX")
	mapfile -t o < <(opts_of "$t")
	local t0=$SECONDS
	"$bin" "${o[@]}" -max_total_time="$secs" "$work" "tests/fuzz/corpus/$t" \
		>"$logs/fuzz_$t.log" 2>&1
	local rc=$?
	echo "$rc $((SECONDS - t0))" >"$logs/fuzz_$t.rc"
	rm -rf "$work"
}
running=0
for t in "${targets[@]}"; do
	[ -x "$B/fuzz/fuzz_$t" ] || continue
	run_one "$t" &
	running=$((running + 1))
	if [ $running -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait
for t in "${targets[@]}"; do
	[ -f "$logs/fuzz_$t.rc" ] || continue
	read -r rc took <"$logs/fuzz_$t.rc"
	rm -f "$logs/fuzz_$t.rc"
	stats=$(grep -E "stat::number_of_executed_units|cov: " "$logs/fuzz_$t.log" |
		sed -n 's/.*number_of_executed_units: *\([0-9]*\).*/\1 runs/p; s/.*DONE *cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1 ft \2/p' |
		tr '\n' ' ')
	result "fuzz_$t" "$rc" "$took" "$stats"
done
echo "fuzz: ${pass} passed, ${fail} failed, ${skip} skipped"
[ $fail -eq 0 ] || exit 1
[ $pass -eq 0 ] && [ $skip -gt 0 ] && exit 77
exit 0
