#!/usr/bin/env bash
# An exporter that cannot write (its output is /dev/full: every write fails
# with ENOSPC) keeps its batches referenced and retries: meanwhile the ring
# is not released. After export_retry_max the batches are let go, counted
# and logged, and the ring space comes back; the agent and another exporter
# (null) go on, and the file exporter's failure does not hold up the other.
. "$(dirname "$0")/agent-lib.sh"
start_agent --file /dev/full --null --export-retry-max 4000ms
"$PROGS/sr-testprod" -S full -t 1 -n 200 -d 300 >"$T/p1.txt" 2>&1 || fail "producer"
grep -q "committed=200 drops=0" "$T/p1.txt" || fail "p1: $(cat "$T/p1.txt")"
# Still held after 300 ms: nothing released.
grep -q "unreleased=0" "$T/p1.txt" && fail "released although the file exporter failed"
stats=$(ctl stats)
python3 -c '
import json, sys
d = json.loads(sys.argv[1])
f = [e for e in d["exporters"] if e["kind"] == "file"][0]
n = [e for e in d["exporters"] if e["kind"] == "null"][0]
assert f["failures"] >= 1 and f["held"] >= 1 and f["let_go_spans"] == 0, f
assert n["spans"] == 200, n
' "$stats" || fail "while retrying: $stats"
wait_until 10 grep -q "exporter file: letting go of a batch of" "$T/agent.log" || fail "no let-go log line"
sleep 0.3
stats=$(ctl stats)
python3 -c '
import json, sys
d = json.loads(sys.argv[1])
f = [e for e in d["exporters"] if e["kind"] == "file"][0]
assert f["let_go_spans"] == 200 and f["held"] == 0 and f["retries"] >= 1, f
assert d["agent"]["inflight_batches"] == 0, d["agent"]
' "$stats" || fail "after letting go: $stats"
# The ring space came back: a new producer run is released promptly... once
# its own batches are let go in turn.
kill -0 "$AGENT_PID" || fail "agent died"
stop_agent
[ "$AGENT_RC" = 0 ] || fail "exit status $AGENT_RC"
echo PASS
