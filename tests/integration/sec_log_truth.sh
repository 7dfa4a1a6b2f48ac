#!/usr/bin/env bash
# Issue 14 R17: log lines that say what happened, against a dead OTLP
# endpoint (http://127.0.0.1:1/v1/traces) with short retry settings and
# no spool (which would keep the batches: otlp_outage.sh tests that).
#  1. Batches whose retry time runs out: one line says the attempt failed
#     and that they are let go; never "0 batches retry in 0.000s" first.
#  2. SIGTERM while the exporter still holds batches: the shutdown line
#     says which spans stay in the rings of running producers (for the
#     next agent) and which are lost with the rings of producers that have
#     exited; no later line contradicts it ("letting go of" held batches).
#     Before, it said all of them "stay in the rings for the next agent",
#     then let them go. The running producer's spans are indeed not
#     released.
. "$(dirname "$0")/sec_lib.sh"
DEAD=http://127.0.0.1:1/v1/traces
start_agent --exporter otlp_http:$DEAD --otlp.hold-budget=0 --otlp.spool-bytes=0 --otlp.retry-initial=100ms --otlp.retry-max-backoff=200ms \
	--export-retry-max=1s
"$PROGS/sr-testprod" -S gone -n 300 -d 100 >/dev/null 2>&1
"$PROGS/sr-testprod" -S gone2 -n 200 -d 100 >/dev/null 2>&1
all_let_go() { [ "$(ctl stats | jsonq 'd["exporters"][0]["let_go_spans"]')" = 500 ]; }
wait_until 10 all_let_go || fail "not everything let go: $(ctl stats)"
stop_agent
grep "exporter otlp_http" "$T/agent.log" | sed 's/^[^ ]* //' | sort | uniq -c | sort -rn | head -5
grep -q " 0 batches retry" "$T/agent.log" && fail "'0 batches retry': $(grep " 0 batches retry" "$T/agent.log")"
grep -q "warn exporter otlp_http ($DEAD): cannot connect: .*; letting go of [1-9][0-9]* batches ([1-9][0-9]* spans): their retry time (export_retry_max 1.0s) is exhausted" \
	"$T/agent.log" || fail "no line saying the failed batches are let go"
grep -q "exiting: 500 spans drained in [0-9]* batches, 2 producers served; delivered: otlp_http 0 (let go 500)" \
	"$T/agent.log" || fail "exit line: $(grep exiting "$T/agent.log")"
echo "retry exhausted: one true line"

: >"$T/agent.log"
start_agent --exporter otlp_http:$DEAD --otlp.hold-budget=0 --otlp.spool-bytes=0 --otlp.retry-initial=100ms --otlp.retry-max-backoff=200ms \
	--shutdown-timeout=1s
"$PROGS/sr-testprod" -S gone -n 300 -d 100 >/dev/null 2>&1
"$PROGS/sr-testprod" -S gone2 -n 100 -d 100 >/dev/null 2>&1
"$PROGS/sr-testprod" -S live -n 50 -d 100 -H >"$T/live.txt" 2>&1 &
live=$!; STARTED+=($live)
wait_until 5 grep -q "committed=50" "$T/live.txt" || fail "live: $(cat "$T/live.txt")"
sleep 0.3
stop_agent
kill "$live"; wait "$live" 2>/dev/null
sed 's/^[^ ]* //' "$T/agent.log" | grep -v "retry in" | tail -8
grep -q "warn shutdown timeout: exporters still hold [0-9]* batches; 50 spans of 1 running producer stay in their rings for the next agent; 400 spans of 2 producers that have exited are lost$" \
	"$T/agent.log" || fail "shutdown line: $(grep shutdown "$T/agent.log")"
grep -q "their spans stay in the rings" "$T/agent.log" && fail "the old claim"
sed -n '/shutdown timeout/,$p' "$T/agent.log" | grep -q "warn .*letting go of" &&
	fail "a let-go line after the shutdown line: $(sed -n '/shutdown timeout/,$p' "$T/agent.log")"
grep -q "^unreleased=[1-9]" "$T/live.txt" || fail "the running producer's spans were released: $(cat "$T/live.txt")"
echo "SIGTERM: spans of running producers stay, of exited ones are lost, and the log says so"
echo PASS
