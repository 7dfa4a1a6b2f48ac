#!/usr/bin/env bash
# The agent's operation surface: control socket (stats, rings, ringfd with
# its uid check and a read-only fd), Prometheus text on 127.0.0.1, SIGHUP
# reopening the output file, the configuration file and flag errors of the
# real binary, --help and --check-config.
. "$(dirname "$0")/agent-lib.sh"

# ---- configuration errors name the key, the value and the line
cat >"$T/bad.conf" <<'CONF'
# a comment
log_level = info
batch_max_age = soon
CONF
out=$("$AGENT" --config "$T/bad.conf" 2>&1) && fail "bad config accepted"
grep -q "bad.conf:3: key 'batch_max_age': invalid value 'soon'" <<<"$out" || fail "config error: $out"
out=$("$AGENT" --socket "$T/x.sock" --watermark-pct=0 2>&1); rc=$?
[ $rc = 2 ] || fail "exit status $rc for a bad flag"
grep -q "key 'watermark_pct': invalid value '0'" <<<"$out" || fail "flag error: $out"
out=$("$AGENT" --no-such-flag 2>&1) && fail "unknown flag accepted"
grep -q "unknown option '--no-such-flag'" <<<"$out" || fail "$out"
"$AGENT" --help | grep -q "batch_max_age" || fail "--help lacks keys"
printf 'socket = %s\nexporters = null\n' "$T/c.sock" >"$T/good.conf"
"$AGENT" --config "$T/good.conf" --check-config | grep -q "configuration OK (socket $T/c.sock)" \
	|| fail "--check-config"

# ---- a running agent with metrics
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_agent --file "$T/out.pb" --metrics-port "$port"
"$PROGS/sr-testprod" -S ctl-svc -t 2 -s 2 -n 500 -d 5000 -H >"$T/prod.txt" 2>&1 &
prod=$!; STARTED+=($prod)
wait_until 5 grep -q "committed=1000" "$T/prod.txt" || fail "producer: $(cat "$T/prod.txt")"
sleep 0.2
ctl ping | grep -q '"ok":true' || fail "ping"
stats=$(ctl stats)
python3 -c '
import json, sys
d = json.loads(sys.argv[1])
a = d["agent"]
assert a["producers"] == 1 and a["spans"] == 1000, a
p = d["producers"][0]
assert p["service"] == "ctl-svc" and p["pid"] == int(sys.argv[2]) and p["state"] == "active", p
assert p["spans"] == 1000 and p["slots"] == 2 and len(p["slot_state"]) == 2, p
assert p["drops"]["total"] == 0 and p["quarantined"] is False, p
e = d["exporters"][0]
assert e["kind"] == "file" and e["spans"] == 1000 and e["let_go_spans"] == 0, e
' "$stats" "$prod" || fail "stats: $stats"
rings=$(ctl rings)
[ "$(jsonq 'len(d)' <<<"$rings")" = 1 ] || fail "rings: $rings"
ctl bogus | grep -q '"ok":false' || fail "unknown command accepted"

# ringfd: root gets a read-only fd of the ring; another uid is refused.
cat >"$T/ringfd.py" <<'PY'
import array, mmap, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(("ringfd pid=%s\n" % sys.argv[2]).encode())
fds = array.array("i")
msg, anc, flags, addr = s.recvmsg(4096, socket.CMSG_LEN(fds.itemsize))
for level, typ, data in anc:
    if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
        fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
print(msg.decode().strip())
if fds:
    fd = fds[0]
    m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ)
    magic, major = struct.unpack_from("<QI", m, 0)
    print("magic=%x major=%d" % (magic, major))
    try:
        mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        print("writable")
    except (PermissionError, OSError):
        print("read-only")
PY
out=$(python3 "$T/ringfd.py" "$SPANRING_SOCKET.ctl" "$prod")
grep -q '"ok":true' <<<"$out" && grep -q "major=1" <<<"$out" && grep -q "read-only" <<<"$out" \
	|| fail "ringfd as root: $out"
if [ "$(id -u)" = 0 ] && [ -x /usr/bin/python3 ] && command -v setpriv >/dev/null; then
	chmod 755 "$T"
	out=$(setpriv --reuid 65534 --regid 65534 --clear-groups /usr/bin/python3 "$T/ringfd.py" \
		"$SPANRING_SOCKET.ctl" "$prod" 2>&1)
	grep -q "permission denied" <<<"$out" || fail "ringfd as another uid: $out"
	grep -q "magic=" <<<"$out" && fail "fd handed to another uid"
fi

# Prometheus text on 127.0.0.1
m=$(python3 -c 'import urllib.request,sys; print(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode())' "$port") \
	|| fail "metrics endpoint"
grep -q '^spanring_agent_spans_total 1000$' <<<"$m" || fail "metrics: $(head -40 <<<"$m")"
grep -q "^spanring_producer_spans_total{id=\"[0-9]*\",pid=\"$prod\",service=\"ctl-svc\"} 1000$" <<<"$m" \
	|| fail "producer metric"
grep -q '^spanring_exporter_spans_total{exporter="file"} 1000$' <<<"$m" || fail "exporter metric"
grep -q '^# TYPE spanring_producer_slot_fill_ratio gauge$' <<<"$m" || fail "fill metric"
code=$(python3 -c '
import urllib.request, urllib.error, sys
try:
    urllib.request.urlopen("http://127.0.0.1:%s/nope" % sys.argv[1], timeout=5)
except urllib.error.HTTPError as e:
    print(e.code)' "$port")
[ "$code" = 404 ] || fail "unknown path: $code"

# SIGHUP: the file moved away by logrotate is reopened.
mv "$T/out.pb" "$T/out.pb.old"
kill -HUP "$AGENT_PID"
wait_until 3 grep -q "SIGHUP: output files reopened" "$T/agent.log" || fail "no reopen"
"$PROGS/sr-testprod" -S after-hup -n 100 -d 5000 >/dev/null 2>&1 || fail "producer 2"
[ -s "$T/out.pb" ] || fail "no new file after SIGHUP"
"$PROGS/sr-verify" --expect after-hup:1:100 "$T/out.pb" >/dev/null || fail "new file content"
"$PROGS/sr-verify" --expect ctl-svc:2:500 "$T/out.pb.old" >/dev/null || fail "old file content"

kill "$prod"; wait "$prod" 2>/dev/null
stop_agent
[ "$AGENT_RC" = 0 ] || fail "exit status $AGENT_RC"
[ -S "$SPANRING_SOCKET.ctl" ] && fail "control socket left behind"
echo PASS
