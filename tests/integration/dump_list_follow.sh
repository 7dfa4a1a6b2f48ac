#!/usr/bin/env bash
# spanring-dump list and follow against the real agent and real producers:
# the table and its JSON, follow picking up new spans, a producer that
# starts late and one that exits, follow of one PID without an agent, the
# agent's ringfd (root or the producer's uid only), and "no agent".
. "$(dirname "$0")/dump_lib.sh"

"$DUMP" -S "$T/nothing.sock" list >/dev/null 2>"$T/e"
expect_rc 3 $? "list without an agent"
grep -q "no agent: cannot connect to $T/nothing.sock.ctl" "$T/e" || fail "message: $(cat "$T/e")"
"$DUMP" -S "$T/nothing.sock" show --via-agent $$ >/dev/null 2>"$T/e"
expect_rc 3 $? "show --via-agent without an agent"
"$DUMP" -S "$T/nothing.sock" follow --via-agent >/dev/null 2>"$T/e"
expect_rc 3 $? "follow --via-agent without an agent"
ok "list, show/follow --via-agent without an agent: exit 3"

start_agent
start_producer shop 3 "$SOCK"
A=$PRODUCER
start_producer billing 2 "$SOCK"
B=$PRODUCER
for i in $(seq 100); do
	[ "$(grep -c "registered: pid" "$T/agent.log")" -ge 2 ] && break
	sleep 0.05
done
sleep 0.3 # a drain pass

"$DUMP" -S "$SOCK" list >"$T/list.txt" 2>"$T/e"
expect_rc 0 $? "list"
grep -q "^agent .* pid $AGENT, up .*socket $SOCK" "$T/list.txt" || fail "agent line: $(cat "$T/list.txt")"
grep -Eq "^[0-9]+ +$A +shop +active +8 \[.{8}\] +[0-9.]+% +0 +0 +9 +[0-9]+$" "$T/list.txt" ||
	fail "producer line of shop: $(cat "$T/list.txt")"
grep -Eq "^[0-9]+ +$B +billing +active +8 " "$T/list.txt" || fail "producer line of billing"
grep -Eq "^file +file +[0-9]+ +15 .*path=$T/spans.pb" "$T/list.txt" || fail "file exporter line"
grep -Eq "^json +json +[0-9]+ +15 " "$T/list.txt" || fail "json exporter line"
"$DUMP" -S "$SOCK" list --json >"$T/list.json"
expect_rc 0 $? "list --json"
"$PY" - "$T/list.json" "$A" "$B" <<'PYEOF' || fail "list --json content"
import json, sys
st = json.load(open(sys.argv[1]))
prods = {p["pid"]: p for p in st["producers"]}
a, b = int(sys.argv[2]), int(sys.argv[3])
assert prods[a]["service"] == "shop" and prods[b]["service"] == "billing", prods
assert prods[a]["spans"] == 9 and prods[b]["spans"] == 6, prods
assert len(prods[a]["slot_state"]) == 8
assert sorted(e["kind"] for e in st["exporters"]) == ["file", "json"]
PYEOF
ok "list: producers, fill, drops, counters and exporters (table and JSON)"

# follow every producer through the agent.
"$DUMP" -S "$SOCK" follow --json --count 15 --for 30s >"$T/fol.json" 2>"$T/fol.err" &
F=$!
CHILDREN+=("$F")
wait_for "$T/fol.err" "following pid $A (shop)"
wait_for "$T/fol.err" "following pid $B (billing)"
kill -TERM "$B"
wait_for "$T/fol.err" "pid $B exited"
kill -USR1 "$A"                     # 9 new spans of shop (traces 3..5)
wait_for "$T/shop.out" "^more 6"
start_producer late 2 "$SOCK"       # appears after follow started: 6 spans
C=$PRODUCER
wait_for "$T/fol.err" "following pid $C (late)"
for i in $(seq 200); do kill -0 "$F" 2>/dev/null || break; sleep 0.05; done
wait "$F"
expect_rc 0 $? "follow"
sed -n '10,18p' "$T/shop.manifest" >"$T/want.manifest"
cat "$T/late.manifest" >>"$T/want.manifest"
"$PY" "$CMP" "$T/fol.json" "$T/want.manifest" --exact --count 15 || fail "follow output"
ok "follow: new spans of a running producer and of one that started later, an exit noticed"

# follow one PID without the agent; it ends when the process exits.
"$DUMP" --no-agent follow --json "$A" >"$T/fol2.json" 2>"$T/fol2.err" &
F=$!
CHILDREN+=("$F")
wait_for "$T/fol2.err" "following pid $A (shop)"
kill -USR1 "$A"
wait_for "$T/shop.out" "^more 9"
for i in $(seq 100); do [ "$(wc -l <"$T/fol2.json")" -ge 9 ] && break; sleep 0.05; done
kill -TERM "$A"
wait "$A" 2>/dev/null
for i in $(seq 200); do kill -0 "$F" 2>/dev/null || break; sleep 0.05; done
wait "$F"
expect_rc 0 $? "follow PID (ends when the process exits)"
grep -q "every followed process has exited" "$T/fol2.err" || fail "end message: $(cat "$T/fol2.err")"
sed -n '19,27p' "$T/shop.manifest" >"$T/want2.manifest"
"$PY" "$CMP" "$T/fol2.json" "$T/want2.manifest" --exact --count 9 || fail "follow PID output"
"$DUMP" --no-agent follow "$A" >/dev/null 2>"$T/e"
expect_rc 4 $? "follow of a pid that is gone"
ok "follow PID without the agent; exit 4 once it is gone"

# The agent's ringfd: root gets the ring, another uid does not.
"$DUMP" -S "$SOCK" show --via-agent --json "$C" >"$T/va.json" 2>"$T/e"
expect_rc 0 $? "show --via-agent"
[ "$(wc -l <"$T/va.json")" -le 6 ] || fail "show --via-agent: too many spans"
"$DUMP" -S "$SOCK" show --via-agent "$C" >"$T/va.txt" 2>"$T/e"
grep -q "^ring of pid $C: service late" "$T/va.txt" || fail "show --via-agent header: $(cat "$T/va.txt" "$T/e")"
if can_be_nobody; then
	as_nobody "$DUMP" -S "$SOCK" show "$C" >/dev/null 2>"$T/e"
	expect_rc 5 $? "show of root's producer as nobody (agent asked after /proc)"
	grep -q "permission denied" "$T/e" || fail "message: $(cat "$T/e")"
	ok "ringfd: root gets the ring, another uid gets exit 5"
fi
"$DUMP" -S "$SOCK" show --via-agent 999999 >/dev/null 2>"$T/e"
expect_rc 4 $? "show --via-agent of a pid the agent does not serve"

# A producer the agent quarantined (the agent tests' hostile producer).
HOSTILE=$BUILD/tests/progs/sr-hostile
if [ -x "$HOSTILE" ]; then
	SPANRING_SOCKET=$SOCK "$HOSTILE" garbage 5000 >"$T/hostile.out" 2>&1 &
	H=$!
	CHILDREN+=("$H")
	wait_for "$T/hostile.out" "misbehaved"
	for i in $(seq 60); do
		"$DUMP" -S "$SOCK" list >"$T/list2.txt" 2>&1
		grep -q "^ *quarantined: " "$T/list2.txt" && break
		sleep 0.05
	done
	grep -Eq "^[0-9]+ +$H +[^ ]+ +quarantined " "$T/list2.txt" || fail "quarantined producer: $(cat "$T/list2.txt")"
	grep -Eq "^ +quarantined: slot 0 at byte [0-9]+: " "$T/list2.txt" || fail "quarantine reason"
	ok "list shows a quarantined producer and why"
fi
echo "PASS"
