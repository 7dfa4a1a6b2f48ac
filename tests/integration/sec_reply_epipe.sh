#!/usr/bin/env bash
# Issue 14 R16: no warning for a producer that exits right after handing
# over its ring. 20 producers (sr-hostile quitter) each write 3 spans,
# send their registration (a reply expected) and exit without reading the
# reply: the agent's reply fails with EPIPE. Before, that logged
# "warn registry: reply to pid N failed: Broken pipe" although every span
# was exported; now it is a debug line, and every span still goes out.
# (That any other reply failure still warns: test_agent_registry,
# test_reply_failure_level.)
. "$(dirname "$0")/sec_lib.sh"
start_agent --file "$T/out.pb" -v
# The agent is frozen while the quitters run, so that every one of them
# has hung up before its reply is written (otherwise the race decides).
kill -STOP "$AGENT_PID"
for i in $(seq 20); do
	"$PROGS/sr-hostile" quitter >>"$T/quit.txt" 2>&1 ||
		{ kill -CONT "$AGENT_PID"; fail "quitter: $(cat "$T/quit.txt")"; }
done
kill -CONT "$AGENT_PID"
all_drained() { [ "$(grep -c "released: 3 spans" "$T/agent.log")" = 20 ]; }
wait_until 5 all_drained ||
	fail "not every quitter's ring was drained: $(grep -c "released: 3 spans" "$T/agent.log")"
stop_agent
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
grep -q " warn " "$T/agent.log" && fail "a warning: $(grep " warn " "$T/agent.log" | head -3)"
n=$(grep -c "debug registry: reply to pid [0-9]* failed: \(Broken pipe\|Connection reset by peer\) (it hung up" "$T/agent.log")
echo "replies that found the producer gone: $n of 20 (debug lines)"
[ "$n" = 20 ] || fail "the scenario did not happen ($n failed replies of 20)"
out=$("$PROGS/sr-verify" "$T/out.pb") || fail "output: $out"
[ "$(grep -c "^service=hostile .* spans=3 " <<<"$out")" = 20 ] || fail "spans missing: $out"
echo PASS
