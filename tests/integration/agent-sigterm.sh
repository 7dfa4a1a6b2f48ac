#!/usr/bin/env bash
# SIGTERM with spans pending (in a batch that is not due, and in rings the
# agent has not polled yet): the agent stops accepting, drains every ring,
# flushes its exporters and exits 0 with every span in the file.
. "$(dirname "$0")/agent-lib.sh"
start_agent --file "$T/out.pb" --batch-max-age 30s --batch-max-bytes 64M --poll-interval-min 10s \
	--poll-interval-max 10s
# One producer that has exited (its spans went into a batch that waits).
"$PROGS/sr-testprod" -S gone -t 3 -s 3 -z 1048576 -n 3000 -d 0 >"$T/gone.txt" 2>&1 || fail "producer"
grep -q "committed=9000 drops=0" "$T/gone.txt" || fail "gone: $(cat "$T/gone.txt")"
# One that stays connected (its spans wait in its ring: the next poll is 10s away).
"$PROGS/sr-testprod" -S held -t 2 -s 2 -z 1048576 -n 2000 -d 0 -H >"$T/held.txt" 2>&1 &
held=$!; STARTED+=($held)
wait_until 5 grep -q "committed=4000 drops=0 registered=1" "$T/held.txt" || fail "held: $(cat "$T/held.txt")"
stats=$(ctl stats)
[ "$(jsonq 'd["agent"]["batches"]' <<<"$stats")" = 0 ] || fail "something was exported early: $stats"
t0=$(date +%s%N)
stop_agent
t1=$(date +%s%N)
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
echo "agent exited in $(( (t1 - t0) / 1000000 ))ms"
"$PROGS/sr-verify" --expect gone:3:3000 --expect held:2:2000 "$T/out.pb" || fail "spans missing"
grep -q "stopping: no new producers" "$T/agent.log" || fail "no stop log line"
[ -S "$SPANRING_SOCKET" ] && fail "socket file left behind"
echo PASS
