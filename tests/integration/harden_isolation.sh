#!/usr/bin/env bash
# The known gap and its mitigation (docs/SECURITY.md, T15): a producer
# rewrites the bytes inside its committed span records after the agent
# walked their headers (tests/progs/harden_prod.c rewrite payload), so a
# request that carries its spans no longer decodes. A receiver that
# validates its input (harden_receiver.py --validate) answers 400 to the
# whole request, other producers' spans included. The OTLP/HTTP exporter
# then sends each producer's spans of the refused batches on their own
# (slices of the same ring memory, no copy): only the culprit's are let
# go, counted and logged with its pid and service; the honest producer's
# spans all arrive, exactly once.
. "$(dirname "$0")/agent-lib.sh"
[ -x "$PROGS/harden_prod" ] || { echo "SKIP: no harden_prod"; exit 77; }
stats_exp() { # field
	ctl stats | python3 -c '
import json, sys
e = [x for x in json.load(sys.stdin)["exporters"] if x["kind"] == "otlp_http"][0]
print(e[sys.argv[1]])' "$1"
}
python3 "$SRC/tests/integration/harden_receiver.py" --out "$T/recv.pb" --log "$T/recv.log" \
	--port-file "$T/port" --max-seconds 120 --validate 1 2>"$T/recv.err" &
STARTED+=($!)
wait_until 5 test -s "$T/port" || fail "receiver did not start"
start_agent --file "$T/s.pb" --exporter "otlp_http:http://127.0.0.1:$(cat "$T/port")/v1/traces" \
	--otlp.retry-initial=50ms --otlp.retry-max-backoff=200ms --batch-max-age 5ms
"$PROGS/sr-testprod" -S honest -t 2 -n 10000 -r 4000 -z 1048576 -W -d 30000 >"$T/honest.txt" 2>&1 &
hp=$!; STARTED+=($hp)
"$PROGS/harden_prod" rewrite payload culprit 2500 >"$T/culprit.txt" 2>&1 || fail "culprit: $(cat "$T/culprit.txt")"
wait $hp || fail "honest: $(cat "$T/honest.txt")"
grep -q "committed=20000 drops=0 registered=1" "$T/honest.txt" || fail "honest: $(cat "$T/honest.txt")"
grep -q "unreleased=0" "$T/honest.txt" || fail "honest: not released"
total=$(ctl stats | jsonq 'd["agent"]["spans"]')
for i in $(seq $((200 * SLOW))); do
	s=$(stats_exp spans) l=$(stats_exp let_go_spans) h=$(stats_exp held)
	[ $((s + l)) = "$total" ] && [ "$h" = 0 ] && break
	sleep 0.1
done
[ $((s + l)) = "$total" ] && [ "$h" = 0 ] || fail "not settled: $s delivered + $l let go != $total ($h held)"
iso=$(stats_exp isolations) groups=$(stats_exp isolated_let_go_groups)
echo "agent exported $total spans: $s delivered, $l let go; $iso requests isolated, $groups groups let go"
[ "$iso" -ge 1 ] || fail "no request was refused: the rewriter did not break one"
[ "$groups" -ge 1 ] || fail "nothing let go after isolation"
grep -q "for the spans of producer [0-9]* (pid [0-9]*, service 'culprit') alone: letting go" \
	"$T/agent.log" || fail "the culprit is not named in the log"
grep "alone: letting go" "$T/agent.log" | grep -v "service 'culprit'" &&
	fail "another producer's spans were let go"
stop_agent
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
python3 "$SRC/tests/integration/harden_verify.py" --expect honest:2:10000 --corrupt-ok culprit \
	"$T/recv.pb" || fail "the honest producer's spans did not all arrive exactly once"
echo PASS
