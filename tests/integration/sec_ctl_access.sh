#!/usr/bin/env bash
# Issue 14, the control socket as another uid:
#  R5b  a non-root caller sees only its own uid's producers in `rings` and
#       `stats` (root sees all); before, any user listed every user's
#       producers (pids, services, uids) through the 0666 socket;
#  R7   ringfd's guarantee as docs/AGENT.md states it: the fd is O_RDONLY
#       (a writable shared mapping of it fails) but not a capability: it
#       can be reopened read-write through /proc/self/fd; so it is handed
#       only to root and to a caller that could open the producer's
#       /proc/PID/fd itself: nobody gets its own dumpable producer's ring,
#       not its own non-dumpable producer's (which it cannot open through
#       /proc either), not root's.
. "$(dirname "$0")/sec_lib.sh"
need_nobody "callers of another uid"
start_agent --null
"$PROGS/sr-testprod" -S root-svc -n 10 -H >"$T/p0.txt" 2>&1 &
p0=$!; STARTED+=($p0)
# setpriv itself, not through the function: $! is then the producer
setpriv --reuid=65534 --regid=65534 --clear-groups "$PROGS/sr-testprod" -S nobody-svc -n 10 -H \
	>"$T/p1.txt" 2>&1 &
p1=$!; STARTED+=($p1)
setpriv --reuid=65534 --regid=65534 --clear-groups "$PROGS/sr-testprod" -S nobody-nodump -n 10 -H -D \
	>"$T/p2.txt" 2>&1 &
p2=$!; STARTED+=($p2)
for f in p0 p1 p2; do
	wait_until 5 grep -q "registered=1" "$T/$f.txt" || fail "$f: $(cat "$T/$f.txt")"
done
cat >"$T/ctl.py" <<'PY'
import array, errno, mmap, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
fds = array.array("i")
buf = b""
while not buf.endswith(b"\n"):
    msg, anc, flags, addr = s.recvmsg(1 << 20, socket.CMSG_LEN(fds.itemsize))
    if not msg:
        break
    buf += msg
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
print(buf.decode().strip())
if fds:
    fd = fds[0]
    flags = int(open("/proc/self/fdinfo/%d" % fd).read().split("flags:")[1].split()[0], 8)
    print("flags=%s" % ("O_RDONLY" if flags & os.O_ACCMODE == os.O_RDONLY else "writable"))
    try:
        mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        print("mmap-write=allowed")
    except OSError as e:
        print("mmap-write=" + errno.errorcode[e.errno])
    try:
        w = os.open("/proc/self/fd/%d" % fd, os.O_RDWR)
        print("reopen-rw=ok")
        os.close(w)
    except OSError as e:
        print("reopen-rw=" + errno.errorcode[e.errno])
PY
ctl_as_nobody() { as_nobody /usr/bin/python3 "$T/ctl.py" "$SPANRING_SOCKET.ctl" "$1"; }
ctl_as_root() { python3 "$T/ctl.py" "$SPANRING_SOCKET.ctl" "$1"; }
# can_open PID: can nobody open PID's fds through /proc itself?
can_open() { as_nobody /usr/bin/python3 -c '
import os, sys
d = "/proc/%s/fd" % sys.argv[1]
try:
    rings = [n for n in os.listdir(d) if "memfd:" in os.readlink(os.path.join(d, n))]
    for n in rings:
        os.close(os.open(os.path.join(d, n), os.O_RDWR))
    print("yes" if rings else "no ring")
except OSError:
    print("no")' "$1"; }

# ---- R5b: listings
services() { python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
rings = d if isinstance(d, list) else d["producers"]
print(" ".join(sorted(r["service"] for r in rings)))'; }
[ "$(ctl_as_nobody rings | services)" = "nobody-nodump nobody-svc" ] || fail "nobody's rings: $(ctl_as_nobody rings)"
[ "$(ctl_as_nobody stats | services)" = "nobody-nodump nobody-svc" ] || fail "nobody's stats"
[ "$(ctl_as_root rings | services)" = "nobody-nodump nobody-svc root-svc" ] || fail "root's rings"
[ "$(ctl_as_root stats | services)" = "nobody-nodump nobody-svc root-svc" ] || fail "root's stats"
ctl_as_nobody rings | grep -q root-svc && fail "root's producer listed to nobody"
echo "listing: nobody sees its 2 producers, root all 3"

# ---- R7: ringfd
out=$(ctl_as_root "ringfd pid=$p0")
grep -q '"ok":true' <<<"$out" && grep -q "flags=O_RDONLY" <<<"$out" && grep -q "mmap-write=EACCES" <<<"$out" \
	|| fail "root, its producer: $out"
grep -q "reopen-rw=ok" <<<"$out" || fail "root: reopen through /proc/self/fd: $out"
out=$(ctl_as_nobody "ringfd pid=$p1")
grep -q '"ok":true' <<<"$out" && grep -q "mmap-write=EACCES" <<<"$out" || fail "nobody, own dumpable: $out"
# Not a capability (as documented), and nothing nobody could not do itself:
grep -q "reopen-rw=ok" <<<"$out" || fail "nobody: reopen: $out"
[ "$(can_open "$p1")" = yes ] || fail "nobody cannot open its own dumpable producer's fds"
out=$(ctl_as_nobody "ringfd pid=$p2")
grep -q '"ok":false,"error":"permission denied' <<<"$out" || fail "nobody, own non-dumpable: $out"
grep -q "flags=" <<<"$out" && fail "fd of a non-dumpable producer handed out"
[ "$(can_open "$p2")" = no ] || fail "nobody can open its non-dumpable producer's fds through /proc"
out=$(ctl_as_nobody "ringfd pid=$p0")
grep -q '"ok":false,"error":"permission denied' <<<"$out" || fail "nobody, root's: $out"
grep -q "flags=" <<<"$out" && fail "root's ring handed to nobody"
out=$(ctl_as_root "ringfd pid=$p2")
grep -q '"ok":true' <<<"$out" || fail "root, non-dumpable: $out"
echo "ringfd: O_RDONLY, reopenable; root: all; nobody: its dumpable producer only"
kill $p0 $p1 $p2; wait $p0 $p1 $p2 2>/dev/null
stop_agent
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
echo PASS
