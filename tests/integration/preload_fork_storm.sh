#!/usr/bin/env bash
# A threaded program's forked children never hang and never enter the
# allocator on the way to a working ring (docs/DESIGN-NOTES.md, "Fork").
# preload_victim fork-storm: four threads allocate and make connect spans
# without pause while the main thread forks 500 children, one after the
# other; each child makes a span (its own ring, registered without a
# thread) and exits 5. A child not reaped within 10 s is a hang and fails
# the test at once. Run twice: with the C library's malloc (under ASan,
# ASan's allocator, whose locks a fork leaves taken), and, in builds
# without a sanitizer, with tests/malloc/spinmalloc.c preloaded: a malloc
# with one global spin lock and no fork handlers that also aborts on any
# allocator call in a fork child. Every child's process span and its
# connect span must reach the agent.
. "$(dirname "$0")/preload_lib.sh"
V=$PROGS/preload_victim
[ -x "$V" ] || fail "$V not built"
N=${STORM_FORKS:-500}
agent_start

out=$(traced "$V" fork-storm "$N" "$T/none.sock" 10000 2>&1) || fail "fork-storm: $out"
[ "$out" = "forks $N ok" ] || fail "fork-storm output '$out'"
runs=1
SPIN=$BUILD/tests/libspinmalloc.so
if [ -z "$SAN" ]; then
	[ -f "$SPIN" ] || fail "$SPIN not built"
	out=$(SPINMALLOC_ARM=preload_victim PRELOAD="$SPIN $SHIM" traced "$V" fork-storm "$N" \
		"$T/none.sock" 10000 2>&1) || fail "fork-storm with spinmalloc: $out"
	[ "$out" = "forks $N ok" ] || fail "fork-storm with spinmalloc: output '$out'"
	runs=2
else
	echo "note: the spinmalloc run needs a build without a sanitizer"
fi
agent_stop

check "$N" "$runs" <<'PY'
from preload_check import *
n, runs = int(sys.argv[2]), int(sys.argv[3])
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
print("ok: %d x %d fork children, each with its process span and connect span" % (runs, n))
PY
echo "PASS"
