#!/usr/bin/env bash
# Hostile producers against the real agent while an honest one runs: each
# is rejected with the right reason code (and a log line naming it), or
# quarantined with a log line and in the stats; a connection that never
# registers is closed; a reconnect flood is rate-limited in the log. The
# honest producer delivers every span and the agent stays up.
. "$(dirname "$0")/agent-lib.sh"
start_agent --file "$T/out.pb" --registration-timeout 300ms
"$PROGS/sr-testprod" -S honest -t 2 -s 2 -n 30000 -r 5000 -W >"$T/honest.txt" 2>&1 &
honest=$!; STARTED+=($honest)

# mode expected-status log-text
reject() {
	local out
	out=$("$PROGS/sr-hostile" "$1" 2>&1) || true
	grep -q "^status=$2 " <<<"$out" || fail "$1: expected status $2, got: $out"
	wait_until 2 grep -q "rejected pid [0-9]* uid [0-9]*: .*($2): .*$3" "$T/agent.log" \
		|| fail "$1: no log line with '$3'"
	echo "rejected $1: $out"
}
reject abi 2 "unsupported ABI major version"
reject reqabi 2 "unsupported ABI major version"
reject badmagic 1 "bad request magic"
reject unsealed 4 "not sealed against shrink"
reject growable 4 "not sealed against shrink"
reject pipe 3 "not a memfd"
reject file 3 "not a memfd (no seals)"
reject socket 3 "not a memfd"
reject devzero 3 "not a memfd"
reject lying 6 "header offsets disagree with the layout"
reject size 5 "ring_size differs from the memfd size"
reject uninit 6 "ring header not initialized"
reject nofd 1 "no fd attached"
reject twofds 1 "more than one fd attached"
reject short 1 "request has the wrong size"

# quarantined after registration: mode log-text
quarantine() {
	"$PROGS/sr-hostile" "$1" 4000 >"$T/h-$1.txt" 2>&1 &
	local h=$!; STARTED+=($h)
	wait_until 5 grep -q misbehaved "$T/h-$1.txt" || fail "$1 did not register: $(cat "$T/h-$1.txt")"
	wait_until 3 grep -q "quarantined: .*$2" "$T/agent.log" || fail "$1: no quarantine line '$2'"
	local st
	st=$(ctl rings)
	python3 -c '
import json, sys
rings = json.loads(sys.argv[1])
q = [r for r in rings if r["service"] == "hostile" and r["state"] == "quarantined" and sys.argv[2] in r["reason"]]
assert q, rings
' "$st" "$2" || fail "$1: not reported as quarantined: $st"
	kill "$h" 2>/dev/null; wait "$h" 2>/dev/null
	echo "quarantined $1"
}
quarantine head-beyond "beyond tail"
quarantine head-back "head moved backwards"
quarantine garbage "truncated or malformed record header"
quarantine badscope "scope offset beyond scope_len"

# A connection that never sends its request is closed.
out=$("$PROGS/sr-hostile" stall 3000)
grep -q "closed-by-agent" <<<"$out" || fail "stalled connection not closed: $out"
grep -q "sent no request within" "$T/agent.log" || fail "no log line for the stalled connection"

# A reconnect flood: logged, but rate-limited.
for i in $(seq 60); do "$PROGS/sr-hostile" abi 0 >/dev/null 2>&1; done
wait_until 2 true
[ "$(grep -c 'rejected pid' "$T/agent.log")" -lt 40 ] || fail "rejections not rate-limited"
for i in $(seq 20); do "$PROGS/sr-hostile" abi 0 >/dev/null 2>&1; done
sleep 0.2

wait "$honest" || fail "honest producer failed"
grep -q "committed=60000 drops=0 registered=1" "$T/honest.txt" || fail "honest: $(cat "$T/honest.txt")"
grep -q "unreleased=0" "$T/honest.txt" || fail "honest: spans left in the ring"
stats=$(ctl stats)
python3 -c '
import json, sys
d = json.loads(sys.argv[1])["agent"]
assert d["quarantined"] == 4, d
r = d["rejected_by_reason"]
assert r["EABI"] >= 2 and r["ESEALS"] == 2 and r["ENOTMEMFD"] == 4 and r["EHEADER"] == 2, r
assert r["ESIZE"] == 1 and r["EPROTO"] == 4, r
' "$stats" || fail "stats: $stats"
kill -0 "$AGENT_PID" || fail "agent died"
stop_agent
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
"$PROGS/sr-verify" --expect honest:2:30000 "$T/out.pb" || fail "honest spans"
# The quarantined producers' valid spans before the fault went out too.
echo PASS
