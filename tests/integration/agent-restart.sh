#!/usr/bin/env bash
# The agent is killed with SIGKILL in the middle of a run and restarted on
# the same socket and output file: the producer reconnects with the same
# memfd, the new agent continues from the stored tail, no span is lost
# (the ring holds the outage: the producer drops nothing), duplicates come
# only from what was in flight, and the output file stays decodable (a
# record cut by the kill is truncated away at restart).
. "$(dirname "$0")/agent-lib.sh"
start_agent --file "$T/out.pb"
first=$AGENT_PID
"$PROGS/sr-testprod" -S survivor -t 2 -s 2 -z 1048576 -n 8000 -r 2000 -d 20000 \
	>"$T/prod.txt" 2>&1 &
prod=$!; STARTED+=($prod)
wait_until 5 grep -q "registered: pid $prod" "$T/agent.log" || fail "producer did not register"
sleep 1
kill -KILL "$first"
wait "$first" 2>/dev/null
echo "agent killed"
sleep 0.7
start_agent --file "$T/out.pb"
wait_until 10 grep -q "registered: pid $prod .*(reconnect)" "$T/agent.log" \
	|| fail "producer did not reconnect"
wait "$prod" || fail "producer failed"
cat "$T/prod.txt"
grep -q "committed=16000 drops=0" "$T/prod.txt" || fail "producer dropped spans: $(cat "$T/prod.txt")"
grep -q "unreleased=0" "$T/prod.txt" || fail "spans left in the ring"
stop_agent
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
"$PROGS/sr-verify" --allow-dups --expect survivor:2:8000 "$T/out.pb" >"$T/verify.txt" \
	|| { cat "$T/verify.txt"; fail "spans lost"; }
cat "$T/verify.txt"
dups=$(sed -n 's/.*service=survivor .* dups=\([0-9]*\)/\1/p' "$T/verify.txt")
# In flight at the kill: at most what was drained but not yet released.
[ "$dups" -le 2000 ] || fail "too many duplicates: $dups"
echo PASS
