#!/usr/bin/env bash
# Rings handed over just before the agent stops are not dropped. Shim
# processes that make no other span register at their end with one
# message and no answer awaited (docs/ABI.md 13.3a): when they exit, their
# connection may still sit in the agent's accept queue. Here the agent is
# frozen (SIGSTOP) while 20 traced processes run and exit, then told to
# stop (SIGTERM, then SIGCONT): it must take the 20 queued rings and
# export their process spans before it exits.
. "$(dirname "$0")/preload_lib.sh"
agent_start
# The socket file exists from bind(); connections queue only after
# listen(): wait for the line the agent logs once it is ready.
for _ in $(seq 200); do grep -q " started " "$T/agent.log" && break; sleep 0.025; done
grep -q " started " "$T/agent.log" || fail "agent not ready"
kill -STOP "$AGENT_PID"
for i in $(seq 20); do
	traced /bin/true || { kill -CONT "$AGENT_PID"; fail "true under the shim"; }
done
kill -TERM "$AGENT_PID"
kill -CONT "$AGENT_PID"
agent_stop
check <<'PY'
from preload_check import *
n = len([s for s in S.procs() if s["name"] == "true"])
expect(n == 20, "20 process spans of true, got %d" % n)
print("ok: 20 queued rings taken at stop")
PY
echo PASS
