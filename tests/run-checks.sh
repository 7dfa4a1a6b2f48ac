#!/usr/bin/env bash
# Run the unit tests and integration tests of one build directory ($B).
#   B=build/gcc tests/run-checks.sh [--unit-only] [filter]
# Prints one line per test and, last, "N passed, N failed" for this build.
# A test exiting 77 is counted as skipped.
set -u
B=${B:?set B to a build directory}
unit_only=0
[ "${1:-}" = "--unit-only" ] && { unit_only=1; shift; }
filter=${1:-}
here=$(cd "$(dirname "$0")" && pwd)
export SPANRING_TEST_BIN="$(cd "$B" && pwd)/bin"
export SPANRING_TEST_BUILD="$(cd "$B" && pwd)"
export SPANRING_TEST_SRC="$(cd "$here/.." && pwd)"
# Forked children of threaded tests start threads (their own ring's client).
export TSAN_OPTIONS="die_after_fork=0 ${TSAN_OPTIONS:-}"
pass=0 fail=0 skip=0 failed=()
logdir="$B/test-logs"
mkdir -p "$logdir"
run() { # name, command...
	local name=$1; shift
	[ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && return
	local t0=$SECONDS
	timeout -k 10 "${SPANRING_TEST_TIMEOUT:-300}" "$@" >"$logdir/$name.log" 2>&1
	local rc=$?
	if [ $rc -eq 0 ]; then pass=$((pass+1)); echo "PASS $name ($((SECONDS-t0))s)"
	elif [ $rc -eq 77 ]; then skip=$((skip+1)); echo "SKIP $name"
	else fail=$((fail+1)); failed+=("$name"); echo "FAIL $name (rc=$rc, log $logdir/$name.log)"
		tail -n 30 "$logdir/$name.log" | sed 's/^/    /'
	fi
}
for t in "$B"/tests/test_*; do
	[ -x "$t" ] || continue
	run "$(basename "$t")" "$t"
done
if [ $unit_only -eq 0 ]; then
	for t in "$here"/integration/*.sh; do
		[ -x "$t" ] || continue
		run "$(basename "$t" .sh)" "$t"
	done
fi
echo "$(basename "$B"): ${pass} passed, ${fail} failed, ${skip} skipped"
[ $fail -eq 0 ]
