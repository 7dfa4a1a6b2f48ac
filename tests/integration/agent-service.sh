#!/usr/bin/env bash
# The agent as a system service: READY=1 and WATCHDOG=1 on a fake
# $NOTIFY_SOCKET (the systemd notification protocol), /healthz and /readyz
# on the metrics listener at a configured address (503 while stopping), and agent-wide totals
# (spans received, producer drops by cause, producers served) that stay
# after the producers have exited.
. "$(dirname "$0")/agent-lib.sh"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The fake notify socket: every datagram, one line each (newlines as '|').
python3 - "$T/notify.sock" "$T/notify.txt" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[2], "a", buffering=1) as f:
    try:
        while True:
            f.write(s.recv(4096).decode().replace("\n", "|") + "\n")
    except socket.timeout:
        pass
PY
STARTED+=($!)
wait_until 5 test -S "$T/notify.sock" || fail "fake notify socket"
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=200000 \
	start_agent --null --metrics_port "$port" --metrics_address 127.0.0.1 --poll-interval-min 5s \
	--poll-interval-max 5s --watermark_pct 100
wait_until 5 grep -q '^READY=1|MAINPID='"$AGENT_PID" "$T/notify.txt" || fail "no READY=1: $(cat "$T/notify.txt")"
sleep 0.6
n=$(grep -c '^WATCHDOG=1$' "$T/notify.txt")
[ "$n" -ge 4 ] || fail "$n watchdog pings in 0.6s at WATCHDOG_USEC=200000 (want one per 100ms)"
http() { python3 - "$port" "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen("http://127.0.0.1:%s%s" % (sys.argv[1], sys.argv[2]), timeout=5)
    print(r.status, r.read().decode().strip())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode().strip())
PY
}
[ "$(http /healthz)" = "200 ok" ] || fail "/healthz: $(http /healthz)"
[ "$(http /readyz)" = "200 ready" ] || fail "/readyz: $(http /readyz)"
[ "$(http /nothing | cut -d' ' -f1)" = 404 ] || fail "/nothing is not 404"
# Totals survive the producers: two producers, the second overfills a
# small ring (the agent polls every 5 s), both exit.
"$PROGS/sr-testprod" -S one -t 1 -s 1 -n 100 -d 0 >"$T/p1.txt" 2>&1 || fail "producer one"
# (drops depend on timing: up to five producers until one has dropped)
drops=0 committed=0 served=1
for i in 1 2 3 4 5; do
	"$PROGS/sr-testprod" -S "two$i" -t 1 -s 1 -z 65536 -n 40000 -d 0 >"$T/p2.txt" 2>&1 ||
		fail "producer two$i"
	served=$((served + 1))
	d=$(sed -n 's/.*drops=\([0-9]*\).*/\1/p' "$T/p2.txt")
	c=$(sed -n 's/.*committed=\([0-9]*\).*/\1/p' "$T/p2.txt")
	drops=$((drops + d)) committed=$((committed + c))
	[ "$drops" -gt 0 ] && break
done
[ "$drops" -gt 0 ] || fail "no producer dropped anything: $(cat "$T/p2.txt")"
ok=
for i in $(seq 100); do
	m=$(http /metrics)
	ctl stats | grep -q '"producers":\[\]' && grep -q "^spanring_agent_spans_received_total $((100 + committed))\$" <<<"$m" &&
		{ ok=1; break; }
	sleep 0.1
done
[ -n "$ok" ] || fail "totals after exit: $(grep spanring_agent_ <<<"$m")"
grep -q "^spanring_agent_producers_served_total $served\$" <<<"$m" || fail "producers served (want $served): $m"
grep -q "^spanring_agent_producer_drops_total{cause=\"full\"} $drops\$" <<<"$m" ||
	fail "drops total (want $drops): $(grep drops_total <<<"$m")"
stop_agent
[ "$AGENT_RC" = 0 ] || fail "exit status $AGENT_RC"
grep -q '^STOPPING=1$' "$T/notify.txt" || fail "no STOPPING=1"
# While stopping (an exporter still holds batches for an unreachable
# backend), /healthz stays 200 and /readyz says 503.
: >"$T/agent.log"
start_agent --exporter "otlp_http:http://127.0.0.1:1/v1/traces" --shutdown_timeout 3s \
	--metrics_port "$port" --metrics_address 127.0.0.1
"$PROGS/sr-testprod" -S held -t 1 -s 1 -n 50 -d 0 >"$T/p3.txt" 2>&1 || fail "producer held"
wait_until 5 grep -q "Connection refused" "$T/agent.log" || fail "no export attempt"
kill -TERM "$AGENT_PID"
wait_until 2 grep -q "stopping:" "$T/agent.log" || fail "no stopping line"
[ "$(http /readyz)" = "503 stopping" ] || fail "/readyz while stopping: $(http /readyz)"
[ "$(http /healthz)" = "200 ok" ] || fail "/healthz while stopping: $(http /healthz)"
stop_agent
# A metrics address that is not numeric is refused at start.
"$AGENT" --socket "$T/b.sock" --null --metrics_port "$port" --metrics_address localhost-x \
	2>"$T/bad.log" && fail "bad metrics_address accepted"
grep -q "metrics_address 'localhost-x'" "$T/bad.log" || fail "bad address message: $(cat "$T/bad.log")"
echo PASS
