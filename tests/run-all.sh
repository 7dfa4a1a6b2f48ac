#!/usr/bin/env bash
# The whole test suite (the README's test command runs this through
# `make test`): install dependencies, then build and test with gcc and
# clang at -Werror, again under ASan+UBSan, and the unit tests (which hold
# the multithreaded ring tests) under TSan; then the fuzz targets.
set -u
cd "$(dirname "$0")/.."
tools/setup-deps.sh || { echo "setup failed"; exit 1; }
jobs=$(nproc)
total_pass=0 total_fail=0 status=0
runcfg() { # make-args... ; then run checks
	local B=$1; shift
	local mode=$1; shift
	echo "=== build $B ($*)"
	if ! make -s -j"$jobs" B="$B" "$@" all; then
		echo "BUILD FAILED: $B"; total_fail=$((total_fail+1)); status=1; return
	fi
	local out
	B="$B" tests/run-checks.sh $mode 2>&1 | tee "$B/checks.out"
	out=$(tail -n 1 "$B/checks.out")
	local p f
	p=$(sed -n 's/.*: \([0-9]*\) passed.*/\1/p' <<<"$out")
	f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$out")
	total_pass=$((total_pass + ${p:-0})); total_fail=$((total_fail + ${f:-1}))
	[ "${f:-1}" = 0 ] || status=1
}
runcfg build/gcc "" CC=gcc
runcfg build/clang "" CC=clang
runcfg build/gcc-asan "" CC=gcc SAN=asan
runcfg build/clang-tsan --unit-only CC=clang SAN=tsan
# Fuzzing (tests/fuzz, docs/SECURITY.md): a clang libFuzzer+ASan+UBSan
# build, every committed crash input and seed replayed, each target fuzzed
# FUZZ_SECONDS (20) two at a time. Skipped without clang.
runfuzz() {
	echo "=== build build/fuzz (clang, libFuzzer, ASan+UBSan)"
	if ! command -v clang >/dev/null; then echo "SKIP fuzz: no clang"; return; fi
	if ! make -s -j"$jobs" fuzz-build; then
		echo "BUILD FAILED: build/fuzz"; total_fail=$((total_fail+1)); status=1; return
	fi
	B=build/fuzz tests/fuzz/run.sh --seconds "${FUZZ_SECONDS:-20}" 2>&1 | tee build/fuzz/checks.out
	local out p f
	out=$(tail -n 1 build/fuzz/checks.out)
	p=$(sed -n 's/.*: \([0-9]*\) passed.*/\1/p' <<<"$out")
	f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$out")
	total_pass=$((total_pass + ${p:-0})); total_fail=$((total_fail + ${f:-1}))
	[ "${f:-1}" = 0 ] || status=1
}
runfuzz
echo
echo "total: ${total_pass} passed, ${total_fail} failed"
exit $status
