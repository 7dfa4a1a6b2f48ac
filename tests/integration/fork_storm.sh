#!/usr/bin/env bash
# A threaded program's forked children never hang and never enter the
# allocator on the way to a working ring (docs/DESIGN-NOTES.md, "Fork").
#
# Under the shim, preload_victim fork-storm: four threads allocate and make
# connect spans without pause while the main thread forks 500 children,
# one after the other; each child makes a span (its own ring, registered
# without a thread) and exits 5. Through the library alone, fork_storm:
# the same with spans made through the API. A child not reaped within
# 10 s is a hang and fails the test at once.
#
# Each runs with the C library's malloc (under ASan, ASan's allocator,
# whose locks a fork leaves taken: the hang this test was written for),
# and, in builds without a sanitizer, again with tests/malloc/spinmalloc.c
# preloaded: a malloc with one global spin lock and no fork handlers that
# also aborts on any allocator call in a fork child. Every child's spans
# must reach the agent.
. "$(dirname "$0")/preload_lib.sh"
V=$PROGS/preload_victim
L=$PROGS/fork_storm
[ -x "$V" ] || fail "$V not built"
[ -x "$L" ] || fail "$L not built"
N=${STORM_FORKS:-500}
# ASan's quarantine (256 MiB of freed blocks kept dirty) makes every fork
# copy page tables for it: 270 ms a fork on a busy machine, 30 ms with a
# small one. The quarantine finds use-after-free; it has no part in what
# this test checks.
[ "$SAN" = asan ] && export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=4"
agent_start

# storm PRELOAD-LIST CMD...: bounded like traced, with room for 500 forks.
storm() {
	local pre=$1; shift
	SPANRING_EXCLUDE=timeout LD_PRELOAD=$pre timeout -k 5 300 "$@"
}

# The library alone (no shim): children of a threaded program.
lib_storm() {
	local out
	out=$(timeout -k 5 300 "$@" "$L" "$N" 10000 2>&1) || fail "fork_storm $*: $out"
	[ "$out" = "forks $N ok" ] || fail "fork_storm $*: output '$out'"
}
lib_storm env
lib_runs=1

out=$(storm "$PRELOAD" "$V" fork-storm "$N" "$T/none.sock" 10000 2>&1) || fail "fork-storm: $out"
[ "$out" = "forks $N ok" ] || fail "fork-storm output '$out'"
runs=1
SPIN=$BUILD/tests/libspinmalloc.so
if [ -z "$SAN" ]; then
	[ -f "$SPIN" ] || fail "$SPIN not built"
	out=$(SPINMALLOC_ARM=preload_victim storm "$SPIN $SHIM" "$V" fork-storm "$N" \
		"$T/none.sock" 10000 2>&1) || fail "fork-storm with spinmalloc: $out"
	[ "$out" = "forks $N ok" ] || fail "fork-storm with spinmalloc: output '$out'"
	runs=2
	lib_storm env SPINMALLOC_ARM=fork_storm LD_PRELOAD="$SPIN"
	lib_runs=2
else
	echo "note: the spinmalloc run needs a build without a sanitizer"
fi
agent_stop

check "$N" "$runs" "$lib_runs" <<'PY'
from preload_check import *
n, runs, lib_runs = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
work = S.named("child.work")
expect(len(work) == n * lib_runs, "%d child.work spans, got %d" % (n * lib_runs, len(work)))
idx = sorted(s["attrs"]["child.index"] for s in work)
expect(idx == sorted(list(range(n)) * lib_runs), "every child's span once")
expect(len({s["res"]["process.pid"] for s in work}) == n * lib_runs, "each child its own ring")
parents = [s for s in S.procs() if s["name"] == "preload_victim" and not s["attrs"].get("spanring.process.fork")]
expect(len(parents) == runs, "%d fork-storm parents, got %d" % (runs, len(parents)))
for p in parents:
    kids = [c for c in S.children(p) if c["attrs"].get("spanring.process.fork")]
    expect(len(kids) == n, "%d fork children under pid %s, got %d" % (n, p["attrs"]["process.pid"], len(kids)))
    pids = set()
    for k in kids:
        a = k["attrs"]
        expect(a["process.exit.code"] == 5, "child exit code %r" % a.get("process.exit.code"))
        expect(k["res"]["process.pid"] == a["process.pid"], "the child's own ring")
        kc = S.children(k)
        expect([c["name"] for c in kc] == ["connect"], "child's spans: %s" % [c["name"] for c in kc])
        pids.add(a["process.pid"])
    expect(len(pids) == n, "distinct child pids")
print("ok: %d x %d shim fork children, each with its process span and connect span; "
      "%d x %d library fork children, each with its span" % (runs, n, lib_runs, n))
PY
echo "PASS"
