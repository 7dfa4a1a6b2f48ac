#!/usr/bin/env bash
# The shim's share of docs/SECURITY.md's outside review findings:
#  R11  a process that dies by a signal (SIGSEGV, SIGTERM raised, SIGTERM
#       sent) hands its ring over without recording its own connection to
#       the agent as a "connect" span (it did, only on that path);
#  R5c  process.command_args: SPANRING_COMMAND_ARGS=redacted (the default),
#       full, off, an invalid value (reported with SPANRING_DEBUG=1,
#       redacted applies);
#  R14  an unusable SPANRING_SOCKET (too long for a unix address, relative)
#       is reported with SPANRING_DEBUG=1, naming it and why; the agent
#       refuses to start on it, naming it.
. "$(dirname "$0")/preload_lib.sh"
V=$PROGS/preload_victim
[ -x "$V" ] || fail "$V not built"
ulimit -c 0
agent_start

# R11: deaths by signal, with nothing but the process span to hand over
# (the final registration, from the signal handler) ...
for m in segv term; do
	set +e; LD_PRELOAD="$PRELOAD" "$V" $m >/dev/null 2>&1; set -e
done
# ... and sent from outside while it sleeps.
LD_PRELOAD="$PRELOAD" "$V" sleep 20000 >"$T/sleep.out" &
vp=$!
STARTED+=("$vp")
for _ in $(seq 200); do grep -q ready "$T/sleep.out" 2>/dev/null && break; sleep 0.025; done
kill -TERM "$vp"
set +e; wait "$vp"; rc=$?; set -e
[ $rc = 143 ] || fail "SIGTERM: status $rc"

# R5c: one process per mode, its arguments full of credentials.
ARGS=(exit 0 --password=hunter2 --token tok123 "https://bob:pw@example.com/x" -v plain)
OTEL_SERVICE_NAME=args-default LD_PRELOAD="$PRELOAD" "$V" "${ARGS[@]}"
OTEL_SERVICE_NAME=args-redacted SPANRING_COMMAND_ARGS=redacted LD_PRELOAD="$PRELOAD" "$V" "${ARGS[@]}"
OTEL_SERVICE_NAME=args-full SPANRING_COMMAND_ARGS=full LD_PRELOAD="$PRELOAD" "$V" "${ARGS[@]}"
OTEL_SERVICE_NAME=args-off SPANRING_COMMAND_ARGS=off LD_PRELOAD="$PRELOAD" "$V" "${ARGS[@]}"
OTEL_SERVICE_NAME=args-bad SPANRING_COMMAND_ARGS=everything SPANRING_DEBUG=1 \
	LD_PRELOAD="$PRELOAD" "$V" "${ARGS[@]}" 2>"$T/args-bad.err"
grep -q 'ignoring invalid SPANRING_COMMAND_ARGS="everything"' "$T/args-bad.err" ||
	fail "invalid SPANRING_COMMAND_ARGS not reported: $(cat "$T/args-bad.err")"

# R14: unusable SPANRING_SOCKET values are reported.
long=/tmp/$(printf 'x%.0s' $(seq 120))/agent.sock
for bad in "$long" relative/agent.sock; do
	SPANRING_SOCKET=$bad SPANRING_DEBUG=1 LD_PRELOAD="$PRELOAD" "$V" exit 0 2>"$T/sock.err"
	grep -qF "ignoring invalid SPANRING_SOCKET=\"$bad\"" "$T/sock.err" ||
		fail "SPANRING_SOCKET=$bad not reported: $(cat "$T/sock.err")"
done
grep -q "longer than a unix socket address" "$T/sock.err" && fail "wrong reason"
SPANRING_SOCKET=$long SPANRING_DEBUG=1 LD_PRELOAD="$PRELOAD" "$V" exit 0 2>"$T/sock.err"
grep -q "longer than a unix socket address allows" "$T/sock.err" ||
	fail "the reason is not given: $(cat "$T/sock.err")"
# ... and by the agent, which refuses to start on it, naming it.
set +e
SPANRING_SOCKET=$long "$AGENT" --null >"$T/agent-long.out" 2>&1
rc=$?
set -e
[ $rc != 0 ] && grep -qF "SPANRING_SOCKET '$long'" "$T/agent-long.out" ||
	fail "agent with SPANRING_SOCKET=$long: status $rc, $(cat "$T/agent-long.out")"
agent_stop

SOCK=$SPANRING_SOCKET check <<'PY'
import os, sys
from preload_check import Spans, expect
S = Spans(sys.argv[1])
sock = os.environ["SOCK"]
deaths = [s for s in S.procs() if s["attrs"].get("spanring.process.end") == "signal"]
expect(len(deaths) == 3, "three deaths by signal, got %d" % len(deaths))
mine = [s for s in S.named("connect") if s["attrs"].get("network.peer.address") == sock]
expect(not mine, "the shim recorded its own connection to the agent: %s" % mine)
want = {
    "args-default": ["exit", "0", "--password=REDACTED", "--token", "REDACTED",
                     "https://REDACTED@example.com/x", "-v", "plain"],
    "args-redacted": ["exit", "0", "--password=REDACTED", "--token", "REDACTED",
                      "https://REDACTED@example.com/x", "-v", "plain"],
    "args-bad": ["exit", "0", "--password=REDACTED", "--token", "REDACTED",
                 "https://REDACTED@example.com/x", "-v", "plain"],
    "args-full": ["exit", "0", "--password=hunter2", "--token", "tok123",
                  "https://bob:pw@example.com/x", "-v", "plain"],
}
for svc, args in want.items():
    got = [s for s in S.procs() if s["res"].get("service.name") == svc]
    expect(len(got) == 1, "one span of %s, got %d" % (svc, len(got)))
    expect(got[0]["attrs"]["process.command_args"][1:] == args,
           "%s: %s" % (svc, got[0]["attrs"]["process.command_args"]))
off = [s for s in S.procs() if s["res"].get("service.name") == "args-off"]
expect(len(off) == 1 and "process.command_args" not in off[0]["attrs"],
       "args-off: %s" % (off and off[0]["attrs"]))
for s in S.all:
    txt = repr(s)
    if s["res"].get("service.name") != "args-full":
        expect("hunter2" not in txt and "tok123" not in txt and "bob:pw" not in txt,
               "a credential outside full mode: %s" % txt)
print("ok: %d spans" % len(S.all))
PY
echo "ok: no connect span of the shim's own, command arguments, SPANRING_SOCKET reported"
