#!/usr/bin/env bash
# `make -j2` of a small generated C project under the shim: one trace
# whose process spans mirror the process tree (make -> sh/cc -> cc1, as,
# collect2 -> ld), children within their parents in time, the same build
# result and exit status as without the shim; a failing recipe keeps
# make's exit status and marks the failing compiler's span.
. "$(dirname "$0")/preload_lib.sh"
command -v make >/dev/null && command -v cc >/dev/null || { echo "SKIP: make and cc needed"; exit 77; }
agent_start

P=$T/proj
mkdir -p "$P"
for n in a b c d; do echo "int f_$n(void) { return 1; }" >"$P/$n.c"; done
cat >"$P/main.c" <<'C'
int f_a(void), f_b(void), f_c(void), f_d(void);
int main(void) { return f_a() + f_b() + f_c() + f_d() - 4; }
C
cat >"$P/Makefile" <<'MK'
OBJ = main.o a.o b.o c.o d.o
prog: $(OBJ)
	cc -o $@ $(OBJ)
	@echo linked > linked.txt
%.o: %.c
	cc -c -o $@ $<
bad:
	cc -c -o bad.o nosuchfile.c
MK

(cd "$P" && make -s -j2 >/dev/null 2>&1 && ./prog) || fail "untraced build"
(cd "$P" && rm -f ./*.o prog linked.txt)
traced make -s -C "$P" -j2 >"$T/make.out" 2>&1 || { cat "$T/make.out"; fail "traced make failed"; }
"$P/prog" || fail "the traced build's program"
[ -f "$P/linked.txt" ] || fail "recipe side effect missing"
set +e
traced make -s -C "$P" bad >/dev/null 2>&1
rc=$?
set -e
[ $rc = 2 ] || fail "make bad: exit status $rc, want 2"
agent_stop

check <<'PY'
from preload_check import *
print(S.tree_text())
S.check_tree()
makes = [s for s in S.procs() if s["name"] == "make"]
expect(len(makes) == 2, "two make runs: %d" % len(makes))
build = [m for m in makes if "bad" not in m["attrs"]["process.command_args"]][0]
bad = [m for m in makes if m is not build][0]
expect(not build["parent"], "make is the root")
tree = [s for s in S.all if s["trace"] == build["trace"]]
expect(all(S.parent(s) is not None for s in tree if s is not build), "one connected tree")
procs = [s for s in tree if "spanring.process.end" in s["attrs"]]
ccs = [s for s in procs if s["name"] == "cc"]
expect(len(ccs) == 6, "six cc runs (5 compiles, 1 link): %d" % len(ccs))
for c in ccs:
    expect(c["attrs"]["process.parent_pid"] == build["attrs"]["process.pid"], "cc's parent is make")
    anc = S.ancestors(c)
    expect(anc and anc[-1] is build, "cc under make")
    expect(c["start"] >= build["start"] and c["end"] <= build["end"], "cc within make's time")
    expect(c["status"] == 0 and c["attrs"]["process.exit.code"] == 0, "cc succeeded")
cc1 = [s for s in procs if s["name"] == "cc1"]
expect(len(cc1) == 5, "five cc1: %d" % len(cc1))
for s in cc1:
    p = S.parent(s)
    expect(p["name"] == "cc", "cc1's parent is a cc span")
    expect(s["attrs"]["process.parent_pid"] == p["attrs"]["process.pid"], "cc1's ppid")
    expect(p["start"] <= s["start"] and s["end"] <= p["end"], "cc1 within its cc")
ld = [s for s in procs if s["name"] == "ld"]
expect(len(ld) == 1 and S.ancestors(ld[0])[-1] is build, "ld under make")
# The failing build: make exits 2 (ERROR), the compiler's span is an error too.
expect(bad["attrs"]["process.exit.code"] == 2 and bad["status"] == 2, "make bad failed")
badcc = [s for s in S.procs() if s["trace"] == bad["trace"] and s["name"] == "cc"]
expect(len(badcc) == 1 and badcc[0]["status"] == 2, "failing cc is an error")
print("%d spans in the build trace" % len(tree))
PY
echo "ok: make -j2 traced"
