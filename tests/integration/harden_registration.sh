#!/usr/bin/env bash
# The registration boundary under attack, with exact outcomes
# (docs/SECURITY.md, threats T1-T3, T7-T9):
#  - socket permissions: socket_mode/control_socket_mode 0600 keep another
#    uid out of both sockets; 0666 lets it in;
#  - allow_uids / allow_gids (OR), decided on SO_PEERCRED: refused peers
#    get EPERM, counted; the resource identity (process.pid,
#    process.owner, host.name) is the kernel's, whatever the producer
#    claims;
#  - per-uid limits (max_producers_per_uid, max_mapped_per_uid) and the
#    global max_producers: exact counts registered / ELIMIT, each uid on
#    its own; limits free up when rings go;
#  - fds that are no usable ring, beyond agent-hostile.sh's: a tmpfs file,
#    a directory, O_PATH and read-only fds of a ring, a 5 GiB memfd,
#    write-sealed memfds, a size that differs from the header's: each
#    refused with its exact reason while an honest producer delivers;
#  - one ring registered 2000 more times; 2000 register-and-close cycles;
#    300 empty messages carrying an fd: the agent's fd count and producer
#    list come back to where they were;
#  - 1100 connections of one uid that never send their request: at most
#    256 are kept waiting (the rest closed at once), another uid still
#    registers meanwhile, all are closed after registration_timeout;
#  - the same under a 128-fd limit: the agent does not spin while out of
#    fds, and everyone registers once the stalled ones are gone.
# Parts that need another uid run only as root with setpriv.
. "$(dirname "$0")/agent-lib.sh"
[ -x "$PROGS/harden_prod" ] || { echo "SKIP: no harden_prod"; exit 77; }
chmod 755 "$T"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
nobody_ok=0
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	as_nobody "$PROGS/harden_prod" >/dev/null 2>&1
	[ $? = 2 ] && [ -x /usr/bin/python3 ] && nobody_ok=1 # the build is reachable for uid 65534
fi
[ $nobody_ok = 1 ] || echo "note: cannot run as another uid here: uid parts skipped"
fds_of() { ls "/proc/$1/fd" | wc -l; }
agent_stat() { ctl stats | jsonq "$1"; }
expect_out() { # what output pattern
	grep -q -- "$3" <<<"$2" || fail "$1: expected '$3' in: $2"
	echo "$1: $2"
}
cat >"$T/connect.py" <<'PY'
import errno, socket, sys
# connect to a unix socket of either type: prints ok or the errno name
for t in (socket.SOCK_SEQPACKET, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_UNIX, t)
    try:
        s.connect(sys.argv[1]); print("ok"); break
    except OSError as e:
        if e.errno == errno.EPROTOTYPE: continue
        print(errno.errorcode[e.errno]); break
PY
py_connect() { python3 "$T/connect.py" "$1"; }

# ---- socket permissions ----------------------------------------------------------
start_agent --null --socket-mode 0600 --control-socket-mode 0600
[ "$(stat -c %a "$SPANRING_SOCKET")" = 600 ] || fail "socket mode $(stat -c %a "$SPANRING_SOCKET")"
[ "$(stat -c %a "$SPANRING_SOCKET.ctl")" = 600 ] || fail "control socket mode"
if [ $nobody_ok = 1 ]; then
	[ "$(as_nobody /usr/bin/python3 "$T/connect.py" "$SPANRING_SOCKET")" = EACCES ] ||
		fail "another uid could connect to a 0600 socket"
	[ "$(as_nobody /usr/bin/python3 "$T/connect.py" "$SPANRING_SOCKET.ctl")" = EACCES ] ||
		fail "another uid could connect to a 0600 control socket"
	[ "$(py_connect "$SPANRING_SOCKET")" = ok ] || fail "root cannot connect"
	echo "0600 sockets: another uid gets EACCES"
fi
stop_agent

# ---- allow-lists and identity from SO_PEERCRED --------------------------------------
if [ $nobody_ok = 1 ]; then
	start_agent --file "$T/id.pb" --allow-uids 65534 --host-name verified-host
	[ "$(as_nobody /usr/bin/python3 "$T/connect.py" "$SPANRING_SOCKET")" = ok ] || fail "0666 socket"
	out=$("$PROGS/harden_prod" flood 0)
	expect_out "root, allow_uids=65534" "$out" "ok=0 .*eperm=1 "
	# nobody, lying about pid, host and owner in its resource: let in, overridden
	setpriv --reuid=65534 --regid=65534 --clear-groups "$PROGS/sr-testprod" -S liar -L -n 50 \
		>"$T/liar.txt" 2>&1 &  # not through the function: $! is the producer
	liar=$!
	wait $liar || fail "liar: $(cat "$T/liar.txt")"
	grep -q "committed=50 drops=0 registered=1" "$T/liar.txt" || fail "liar: $(cat "$T/liar.txt")"
	[ "$(agent_stat 'd["agent"]["rejected_by_reason"]["EPERM"]')" = 1 ] || fail "EPERM count"
	grep -q "rejected pid [0-9]* uid 0: EPERM (7): uid/gid not in the allow-list" "$T/agent.log" ||
		fail "no log line for the refused uid"
	stop_agent
	res=$(python3 "$SRC/tests/integration/harden_verify.py" --expect liar:1:50 --resource liar "$T/id.pb") ||
		fail "identity output: $res"
	echo "$res" | grep '^resource'
	grep -q "^resource liar .*host.name=verified-host .*process.owner=nobody .*process.pid=$liar " <<<"$res" ||
		fail "identity not the kernel's (pid $liar, owner nobody, host verified-host): $res"
	grep -q "forged" <<<"$res" && fail "a forged attribute went out: $res"

	start_agent --null --allow-gids 0
	expect_out "root, allow_gids=0" "$("$PROGS/harden_prod" flood 0)" "ok=1 "
	expect_out "nobody, allow_gids=0" "$(as_nobody "$PROGS/harden_prod" flood 0)" "ok=0 .*eperm=1 "
	stop_agent
	start_agent --null --allow-gids 0 --allow-uids 65534
	expect_out "root, allow_uids=65534 allow_gids=0" "$("$PROGS/harden_prod" flood 0)" "ok=1 "
	expect_out "nobody, allow_uids=65534 allow_gids=0" "$(as_nobody "$PROGS/harden_prod" flood 0)" "ok=1 "
	[ "$(agent_stat 'd["agent"]["rejected"]')" = 0 ] || fail "rejections with both lists"
	stop_agent
fi

# ---- per-uid and global limits ------------------------------------------------------
start_agent --null --max-producers-per-uid 5
"$PROGS/harden_prod" many 8 1500 >"$T/many-root.txt" &
mr=$!
if [ $nobody_ok = 1 ]; then
	as_nobody "$PROGS/harden_prod" many 3 1500 >"$T/many-nobody.txt" &
	mn=$!
fi
wait $mr
expect_out "root: 8 rings, 5 per uid" "$(cat "$T/many-root.txt")" "ok=5 .*elimit=3 "
if [ $nobody_ok = 1 ]; then
	wait $mn
	expect_out "nobody: 3 rings beside root's" "$(cat "$T/many-nobody.txt")" "ok=3 .*elimit=0 "
fi
wait_until 3 test "$(agent_stat 'd["agent"]["producers"]')" = 0 || fail "rings not released"
expect_out "root again: the limit freed up" "$("$PROGS/harden_prod" many 5 0)" "ok=5 .*elimit=0 "
stop_agent
# rings of 36864 bytes, each counted with the most its scope copies may
# cost (a 4K table: 36864 bytes, registry_scope_reserve): two fit in 160K
start_agent --null --max-mapped-per-uid 160K
expect_out "root: 4 rings, 160K mapped per uid" "$("$PROGS/harden_prod" many 4 0)" "ok=2 .*elimit=2 "
grep -q "ELIMIT (8): too many ring bytes mapped for this uid" "$T/agent.log" || fail "no ELIMIT log line"
stop_agent
if [ $nobody_ok = 1 ]; then
	start_agent --null --max-producers 4
	"$PROGS/harden_prod" many 3 2000 >"$T/g-root.txt" &
	gr=$!
	wait_until 3 test "$(agent_stat 'd["agent"]["producers"]')" = 3 || fail "root's rings"
	expect_out "nobody, 3 more of at most 4" "$(as_nobody "$PROGS/harden_prod" many 3 0)" "ok=1 .*elimit=2 "
	wait $gr
	expect_out "root" "$(cat "$T/g-root.txt")" "ok=3 "
	stop_agent
fi

# ---- fds that are no usable ring --------------------------------------------------------
start_agent --file "$T/fd.pb"
"$PROGS/sr-testprod" -S honest -t 2 -n 5000 -r 5000 -W >"$T/honest.txt" 2>&1 &
hp=$!
out=$("$PROGS/harden_prod" fdkinds)
echo "fd kinds: $out"
# 3 ENOTMEMFD, 4 ESEALS, 5 ESIZE, 9 EINTERNAL (the consumer lines cannot be mapped writable)
tmpfs=1 # /dev/shm may be missing: then that kind is not tried
grep -q "tmpfs=" <<<"$out" || tmpfs=0
for want in directory=3 opath=3 readonly=9 huge=5 write_sealed=4 future_write_sealed=4 \
	size_mismatch=5 $([ $tmpfs = 1 ] && echo tmpfs=4); do
	grep -qw "$want" <<<"$out" || fail "fd kinds: expected $want in: $out"
done
wait $hp || fail "honest: $(cat "$T/honest.txt")"
grep -q "committed=10000 drops=0 registered=1" "$T/honest.txt" || fail "honest: $(cat "$T/honest.txt")"
python3 -c '
import json, sys
a = json.loads(sys.argv[1])["agent"]; r = a["rejected_by_reason"]
t = int(sys.argv[2])
assert a["rejected"] == 7 + t and r["ENOTMEMFD"] == 2 and r["ESEALS"] == 2 + t, a
assert r["ESIZE"] == 2 and r["EINTERNAL"] == 1 and a["registered"] == 1, a
' "$(ctl stats)" $tmpfs || fail "stats: $(ctl stats)"
stop_agent
python3 "$SRC/tests/integration/harden_verify.py" --expect honest:2:5000 "$T/fd.pb" || fail "honest output"

# ---- floods: the same ring again and again, cycles, empty messages with fds -----------
start_agent --null
sleep 0.2
f0=$(fds_of "$AGENT_PID")
expect_out "one ring, 2000 more times" "$("$PROGS/harden_prod" flood 2000)" "ok=1 eproto=2000 "
expect_out "2000 register-and-close cycles" "$("$PROGS/harden_prod" cycle 2000)" "ok=2000 eproto=0 .*none=0"
expect_out "300 empty messages with an fd" "$("$PROGS/harden_prod" emptyfd 300)" "sent=300"
wait_until 3 test "$(agent_stat 'd["agent"]["producers"]')" = 0 || fail "producers left"
[ "$(agent_stat 'd["agent"]["pending"]')" = 0 ] || fail "pending connections left"
f1=$(fds_of "$AGENT_PID")
[ "$f1" = "$f0" ] || fail "the agent holds $f1 fds, $f0 before (a leak)"
[ "$(agent_stat 'd["agent"]["registered"]')" = 2001 ] || fail "registered count"
[ "$(agent_stat 'd["agent"]["rejected_by_reason"]["EPROTO"]')" = 2000 ] || fail "EPROTO count"
n=$(grep -c "rejected pid" "$T/agent.log")
[ "$n" -lt 60 ] || fail "rejections not rate-limited ($n lines)"
echo "agent fds: $f0 before, $f1 after"
stop_agent
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"

# ---- connections that never register ---------------------------------------------------
start_agent --null --registration-timeout 1s
"$PROGS/harden_prod" stalls 1100 4000 >"$T/stalls.txt" &
st=$!
wait_until 3 grep -q "uid 0 has 256 connections that have not registered yet" "$T/agent.log" ||
	fail "no per-uid pending cap"
[ "$(agent_stat 'd["agent"]["pending"]')" -le 256 ] || fail "more than 256 pending for one uid"
if [ $nobody_ok = 1 ]; then
	# another uid registers meanwhile, at once
	as_nobody "$PROGS/sr-testprod" -S other -n 100 -w 500 >"$T/other.txt" 2>&1 ||
		fail "other uid: $(cat "$T/other.txt")"
	grep -q "committed=100 drops=0 registered=1" "$T/other.txt" || fail "other uid: $(cat "$T/other.txt")"
	grep -q "unreleased=0" "$T/other.txt" || fail "other uid: not delivered"
fi
wait $st
expect_out "1100 stalled connections" "$(cat "$T/stalls.txt")" "opened=1100 closed_by_agent=1100"
wait_until 3 test "$(agent_stat 'd["agent"]["pending"]')" = 0 || fail "pending left"
"$PROGS/sr-testprod" -S after -n 100 >"$T/after.txt" 2>&1
grep -q "committed=100 drops=0 registered=1" "$T/after.txt" || fail "after: $(cat "$T/after.txt")"
stop_agent

# Out of fds: 128 for the agent, 300 connections that never register.
AGENT_REAL=$AGENT
AGENT="$T/agent-lowfd"
printf '#!/bin/sh\nulimit -n 128\nexec "%s" "$@"\n' "$AGENT_REAL" >"$AGENT"
chmod +x "$AGENT"
start_agent --null --registration-timeout 1s
c0=$(awk '{print $14 + $15}' "/proc/$AGENT_PID/stat")
"$PROGS/harden_prod" stalls 300 2000 >"$T/stalls2.txt"
c1=$(awk '{print $14 + $15}' "/proc/$AGENT_PID/stat")
tck=$(getconf CLK_TCK)
echo "agent CPU while out of fds for 2s: $(((c1 - c0) * 1000 / tck)) ms"
[ $(((c1 - c0) * 1000 / tck)) -lt $((400 * SLOW)) ] || fail "the agent spins while out of fds"
grep -q "registry: accept on .*: Too many open files" "$T/agent.log" || fail "EMFILE not logged"
"$PROGS/sr-testprod" -S lowfd -n 100 -w 4000 >"$T/lowfd.txt" 2>&1
grep -q "committed=100 drops=0 registered=1" "$T/lowfd.txt" || fail "lowfd: $(cat "$T/lowfd.txt")"
grep -q "unreleased=0" "$T/lowfd.txt" || fail "lowfd: not delivered"
kill -0 "$AGENT_PID" || fail "agent died"
stop_agent
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
AGENT=$AGENT_REAL
echo PASS
