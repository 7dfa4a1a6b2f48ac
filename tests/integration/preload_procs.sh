#!/usr/bin/env bash
# Process shapes: a threaded program forking a child that does not exec
# (own ring, own span under the parent's); a program that closes every
# descriptor and still gets its spans out; daemon(); vfork+exec;
# posix_spawn with explicit environments, system(), popen(); a failed
# exec that the program survives; shell redirections onto low
# descriptors; unshare(CLONE_NEWUSER), which needs a single thread.
. "$(dirname "$0")/preload_lib.sh"
V=$PROGS/preload_victim
[ -x "$V" ] || fail "$V not built"
PY=$(python3 -c 'import sys; print(sys.executable)')
agent_start

# A local listener that accepts and closes.
"$PY" -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept(); c.close()
' >"$T/port" &
STARTED+=($!)
for _ in $(seq 200); do [ -s "$T/port" ] && break; sleep 0.025; done
port=$(cat "$T/port")

out=$(traced "$V" threads-fork "$port") || fail "threads-fork: $out"
[ "$out" = "child exit 5" ] || fail "threads-fork output '$out'"
out=$(traced "$V" closeall "$port") || fail "closeall: $out"
[ "$out" = "connect 0" ] || fail "closeall output '$out'"
traced "$V" daemon "$T/daemon.pid" || fail "daemon parent"
for _ in $(seq 400); do [ -s "$T/daemon.pid" ] && break; sleep 0.025; done
dpid=$(cat "$T/daemon.pid")
for _ in $(seq 400); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.025; done
traced "$V" vfork-exec || fail "vfork-exec"
traced "$V" spawn >"$T/spawn.out" || fail "spawn: $(cat "$T/spawn.out")"
out=$(traced "$V" exec-missing) || fail "exec-missing"
[ "$out" = "execvp failed: 2" ] || fail "exec-missing output '$out'"
set +e; traced "$V" fork-exit 9; rc=$?; set -e
[ $rc = 9 ] || fail "fork-exit status $rc"
out=$(traced "$V" threads-fork-_exit) || fail "threads-fork-_exit"
[ "$out" = "child 3" ] || fail "threads-fork-_exit output '$out'"
out=$(traced /bin/sh -c "exec 3>'$T/fd3'; echo three >&3; exec 3>&-; exec 9<'$T/fd3'; cat <&9") \
	|| fail "shell redirections"
[ "$out" = three ] || fail "shell redirections: '$out'"
userns=0
if unshare -U true 2>/dev/null; then
	userns=1
	traced unshare -U true || fail "unshare -U under the shim"
	# A process whose registration thread runs (it made a connect span)
	# and then unshares: the thread is stopped around the call and
	# started again, and the span made after it reaches the agent too.
	out=$(traced "$V" connect-unshare "$port") || fail "connect-unshare: $out"
	[ "$out" = "unshare 0" ] || fail "connect-unshare output '$out'"
fi
agent_stop

check "$dpid" "$userns" <<'PY'
from preload_check import *
dpid = int(sys.argv[2])
userns = int(sys.argv[3])
print(S.tree_text())
S.check_tree()
def victim(mode):
    got = [s for s in S.procs() if s["name"] == "preload_victim" and not s["attrs"].get("spanring.process.fork")
           and s["attrs"]["process.command_args"][1] == mode]
    expect(len(got) == 1, "one %s span, got %d" % (mode, len(got)))
    return got[0]

# threads + fork without exec
tf = victim("threads-fork")
conns = [c for c in S.children(tf) if c["name"] == "connect"]
expect(len(conns) == 12, "12 connects from 4 threads under the process span: %d" % len(conns))
kids = [c for c in S.children(tf) if c["attrs"].get("spanring.process.fork")]
expect(len(kids) == 1, "one fork child span")
k = kids[0]
ka = k["attrs"]
expect(ka["process.parent_pid"] == tf["attrs"]["process.pid"] and ka["process.pid"] != ka["process.parent_pid"],
       "child's pids")
expect(ka["process.exit.code"] == 5 and k["status"] == 2, "child exit 5")
expect(k["res"]["process.pid"] == ka["process.pid"], "the child's own ring (resource pid)")
expect(k["start"] >= tf["start"] and k["end"] <= tf["end"], "child within parent")
kc = S.children(k)
expect(len(kc) == 1 and kc[0]["name"] == "connect", "the child's connect under the child's span")

# closes every descriptor, spans still arrive
ca = victim("closeall")
expect(ca["attrs"]["process.exit.code"] == 0 and [c["name"] for c in S.children(ca)] == ["connect"],
       "closeall: %s" % [c["name"] for c in S.children(ca)])

# daemon(): the parent ends with exit 0, the daemon is its fork child
dp = victim("daemon")
expect(dp["attrs"]["process.exit.code"] == 0 and dp["attrs"]["spanring.process.end"] == "exit", "daemon parent")
ds = [s for s in S.procs() if s["attrs"]["process.pid"] == dpid]
expect(len(ds) == 1, "daemon span: %d" % len(ds))
expect(S.parent(ds[0]) is dp and ds[0]["attrs"].get("spanring.process.fork") and
       ds[0]["attrs"]["process.exit.code"] == 0, "daemon under its parent")

# vfork + exec: the exec'd program is a child of the vfork caller's span
vf = victim("vfork-exec")
vk = S.children(vf)
expect([c["name"] for c in vk] == ["true"], "vfork child: %s" % [c["name"] for c in vk])
expect(vk[0]["attrs"]["process.parent_pid"] == vf["attrs"]["process.pid"], "true's ppid")

# posix_spawn / system / popen environments
sp = victim("spawn")
# Each sh prints its own TRACEPARENT (its span, the shim in sh made it);
# that span's parent tells which environment the spawn gave it.
lines = open(sys.argv[1].replace("spans.jsonl", "spawn.out")).read().split("\n")
def printed(line, prefix):
    expect(line.startswith(prefix + "00-"), "line %r" % line)
    sid = line[len(prefix):].split("-")[2]
    expect(sid in S.by_id, "the printing sh's span %s" % sid)
    return S.by_id[sid]
# An empty environment has no LD_PRELOAD: that sh is not traced and shows
# the TRACEPARENT the spawn added, the spawning process's span.
expect(printed(lines[1], "TP=") is sp, "explicit empty environment gets our TRACEPARENT")
for i, prefix in ((0, "TP="), (3, "system TP="), (4, "popen TP=")):
    sh = printed(lines[i], prefix)
    expect(sh["name"] == "sh" and S.parent(sh) is sp, "child %d under the spawning process" % i)
expect(lines[2] == "TP=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
       "a TRACEPARENT the program chose is kept: %s" % lines[2])
shs = [c for c in S.children(sp) if c["name"] == "sh"]
expect(len(shs) == 3, "three traced sh children under spawn: %d" % len(shs))

# failed exec: the span goes on, then ends at the successful exec
em = victim("exec-missing")
expect(em["attrs"]["spanring.process.end"] == "exec", "exec-missing ends by exec")
names = sorted(c["name"] for c in S.children(em))
expect(names == ["connect", "true"], "after the failed exec: %s" % names)

# A threaded program's child that only _exits makes no ring (no span).
tx = victim("threads-fork-_exit")
expect(not [c for c in S.children(tx) if c["attrs"].get("spanring.process.fork")],
       "no span for the _exit-only child of a threaded program")
expect(tx["attrs"]["process.exit.code"] == 0, "threads-fork-_exit parent")

fe = victim("fork-exit")
fk = [c for c in S.children(fe) if c["attrs"].get("spanring.process.fork")]
expect(len(fk) == 1 and fk[0]["attrs"]["process.exit.code"] == 9, "fork-exit child")

# The registration thread stopped around unshare() and started again:
# the connect before and the one after both arrive.
if userns:
    cu = victim("connect-unshare")
    conns = [c for c in S.children(cu) if c["name"] == "connect"]
    expect(len(conns) == 2, "connect-unshare: 2 connects, got %d" % len(conns))
PY
echo "ok: process shapes"
