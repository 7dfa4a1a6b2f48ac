#!/usr/bin/env bash
# Issue 14 R4: identity claims in the Resource. A producer running as
# nobody claims to be root (process.user.name, process.user.id,
# process.owner, real and saved user ids), another pid, another host
# (host.name, host.id, host.arch) and another container. The exported
# Resource carries what the agent verified instead: its pid and uid from
# SO_PEERCRED and that uid's name, the agent's host name and machine id,
# and the container id of the cgroup the kernel has it in (when this test
# can put it in one); the other claims are gone; the producer's own word
# (service.name, process.executable.name, container.name) is kept.
. "$(dirname "$0")/sec_lib.sh"
need_nobody "a producer of another uid"
MID=$(tr -dc '0-9a-f' </etc/machine-id 2>/dev/null | head -c 32)
CID=4b1e0a5c3f2d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7
# A cgroup named like a container's, where the kernel lets us make one.
CG=
for root in /sys/fs/cgroup/unified /sys/fs/cgroup; do
	if [ -f "$root/cgroup.procs" ] && [ "$(stat -f -c %T "$root" 2>/dev/null)" = cgroup2fs ] &&
		mkdir "$root/spanring-test-docker-$CID.scope" 2>/dev/null; then
		CG=$root/spanring-test-docker-$CID.scope
		break
	fi
done
cleanup_cg() { [ -n "$CG" ] && rmdir "$CG" 2>/dev/null; cleanup; }
trap cleanup_cg EXIT
start_agent --file "$T/id.pb" --host-name verified-host
cat >"$T/liar.sh" <<SH
#!/bin/sh
[ -n "$CG" ] && echo \$\$ > "$CG/cgroup.procs"
exec setpriv --reuid=65534 --regid=65534 --clear-groups "$PROGS/sr-testprod" -S liar -L -n 50 \
	-A process.user.name=root -A process.user.id:=0 -A process.owner=root \
	-A process.real_user.id:=0 -A process.saved_user.name=root \
	-A host.id=00000000000000000000000000000000 -A host.arch=s390x \
	-A container.id=forged-container -A container.name=claimed-name \
	-A process.executable.name=claimed-exe
SH
chmod 755 "$T/liar.sh"
"$T/liar.sh" >"$T/liar.txt" 2>&1 &
liar=$!
wait $liar || fail "liar: $(cat "$T/liar.txt")"
grep -q "committed=50 drops=0 registered=1" "$T/liar.txt" || fail "liar: $(cat "$T/liar.txt")"
stop_agent
res=$(python3 "$SRC/tests/integration/harden_verify.py" --expect liar:1:50 --resource liar "$T/id.pb") ||
	fail "output: $res"
grep '^resource' <<<"$res"
python3 - "$res" "$liar" "$MID" "${CG:+$CID}" <<'PY' || fail "resource identity"
import sys
out, pid, mid, cid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
lines = [l for l in out.splitlines() if l.startswith("resource liar ")]
assert len(lines) == 1, lines
attrs = {}
for kv in lines[0].split()[2:]:
    k, _, v = kv.partition("=")
    assert k not in attrs, "duplicate " + k
    attrs[k] = v
want = {"process.pid": pid, "process.user.id": "65534", "process.user.name": "nobody",
        "process.owner": "nobody", "host.name": "verified-host",
        "service.name": "liar", "process.executable.name": "claimed-exe",
        "container.name": "claimed-name"}
if mid:
    want["host.id"] = mid
if cid:
    want["container.id"] = cid
for k, v in want.items():
    assert attrs.get(k) == v, "%s: %r, want %r" % (k, attrs.get(k), v)
for k in ("host.arch", "process.real_user.id", "process.saved_user.name"):
    assert k not in attrs, k + " passed through"
if not mid:
    assert "host.id" not in attrs, "host.id passed through"
if not cid:
    assert "container.id" not in attrs, "container.id passed through"
assert "forged" not in out and "root" not in out and "s390x" not in out, out
print("verified:", " ".join("%s=%s" % kv for kv in sorted(want.items())))
PY
[ -n "$CG" ] || echo "note: no cgroup2 to put the producer in: container.id checked absent only"
echo PASS
