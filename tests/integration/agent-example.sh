#!/usr/bin/env bash
# Real spans from the tracing API (tools/spanring-example and its worker
# child process) through the agent: every span the rings say were committed
# reaches the file and the OTLP/JSON output, each under its own process's
# resource, and the worker's spans continue the parent's traces.
. "$(dirname "$0")/agent-lib.sh"
EX=$BIN/spanring-example
[ -x "$EX" ] || { echo "SKIP: no spanring-example"; exit 77; }
start_agent --file "$T/out.pb" --json "$T/out.jsonl"
OTEL_SERVICE_NAME=ex-svc "$EX" --threads 3 --requests 20 >"$T/ex.txt" 2>&1 || fail "example failed"
OTEL_SERVICE_NAME=ex-other "$EX" --requests 5 --no-child >>"$T/ex.txt" 2>&1 || fail "example 2 failed"
wait_until 5 sh -c "[ \$(grep -c \"service 'ex-\" '$T/agent.log') -ge 3 ] && \
	[ \$(grep -c \"service 'ex-[a-z]*') released\" '$T/agent.log') -ge 3 ]" || fail "examples not released"
stop_agent
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
committed=$(sed -n "s/.*service 'ex-[a-z]*') released: .*ring says \([0-9]*\) committed.*/\1/p" "$T/agent.log" \
	| awk '{s+=$1} END {print s}')
"$PROGS/sr-verify" "$T/out.pb" >"$T/verify.txt" || { cat "$T/verify.txt"; fail "verify"; }
cat "$T/verify.txt"
got=$(sed -n 's/^requests=[0-9]* spans=\([0-9]*\)/\1/p' "$T/verify.txt")
[ "$got" = "$committed" ] && [ "$got" -gt 100 ] || fail "file has $got spans, rings committed $committed"
python3 - "$T/out.jsonl" "$got" <<'PY' || fail "json: traces"
import json, sys
spans = {}
for line in open(sys.argv[1]):
    for rs in json.loads(line)["resourceSpans"]:
        attrs = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
        svc = attrs["service.name"]["stringValue"]
        pid = int(attrs["process.pid"]["intValue"])
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                spans[s["spanId"]] = (svc, pid, s)
assert len(spans) == int(sys.argv[2]), (len(spans), sys.argv[2])
pids = {(svc, pid) for svc, pid, _ in spans.values()}
assert len({p for s, p in pids if s == "ex-svc"}) >= 2, pids  # parent and worker
# Every parent link resolves, and some cross a process boundary.
cross = 0
for svc, pid, s in spans.values():
    p = s.get("parentSpanId")
    if p:
        assert p in spans, ("dangling parent", s["name"])
        psvc, ppid, ps = spans[p]
        assert ps["traceId"] == s["traceId"]
        cross += ppid != pid
assert cross > 0, "no trace continued in the worker process"
print("spans", len(spans), "processes", len(pids), "cross-process links", cross)
PY
echo PASS
