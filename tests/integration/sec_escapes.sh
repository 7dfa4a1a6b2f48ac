#!/usr/bin/env bash
# Issue 14 R9: terminal escape injection. A producer whose service.name,
# span name and attribute hold ESC sequences (colour, OSC title with BEL),
# a C1 CSI (U+009B), DEL, a newline and invalid UTF-8 registers, is
# logged, exports through the console exporter, shows in /metrics and in
# the control socket's JSON. None of these outputs carries a control
# character (other than the newline ending each line): the agent log and
# the console show \x1b, \n, ... escaped; /metrics replaces them (U+FFFD),
# JSON escapes them (\u001b).
. "$(dirname "$0")/sec_lib.sh"
EVIL=$'evil\x1b[31mRED\x1b]0;pwned\x07\xc2\x9b2J\x7fdel\nnext\xff'
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_agent --console --console.path "$T/console.out" --metrics-port "$port"
"$PROGS/sr-testprod" -S "$EVIL" -N "$EVIL" -X "$EVIL" -n 5 -H >"$T/p.txt" 2>&1 &
prod=$!; STARTED+=($prod)
wait_until 5 grep -q "registered=1" "$T/p.txt" || fail "producer: $(cat "$T/p.txt")"
wait_until 5 test -s "$T/console.out" || fail "no console output"
sleep 0.2
python3 -c 'import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode())' "$port" >"$T/metrics.txt" \
	|| fail "metrics"
ctl rings >"$T/rings.json"
kill "$prod"; wait "$prod" 2>/dev/null
stop_agent
python3 - "$T/agent.log" "$T/console.out" "$T/metrics.txt" "$T/rings.json" <<'PY' || fail "control characters in the output"
import re, sys
bad = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    for n, line in enumerate(data.split(b"\n"), 1):
        m = bad.search(line)
        assert not m, "%s:%d: raw %r in %r" % (path, n, m.group(), line[:200])
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AssertionError("%s: invalid UTF-8: %s" % (path, e))
log = open(sys.argv[1], "rb").read()
con = open(sys.argv[2], "rb").read()
want = rb"evil\x1b[31mRED\x1b]0;pwned\x07\xc2\x9b2J\x7fdel\nnext\xff"
assert want in log, "the escaped service name is not in the log"
assert con.count(want) == 5, "console: escaped service %d times" % con.count(want)
assert con.count(rb'"evil\u001b[31mRED\u001b]0;pwned\u0007\u009b2J\u007fdel\nnext\ufffd"') == 10, \
    "console: span name and attribute not JSON-escaped"
assert b"\\u001b[31mRED" in open(sys.argv[3], "rb").read() or \
    "\ufffd[31mRED".encode() in open(sys.argv[3], "rb").read(), "metrics label"
assert b"evil\\u001b[31mRED" in open(sys.argv[4], "rb").read(), "rings JSON"
print("log:", [l for l in log.decode().splitlines() if "registered" in l][0][-120:])
print("console:", con.decode().splitlines()[0][:160])
PY
echo PASS
