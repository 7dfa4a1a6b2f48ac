#!/usr/bin/env bash
# Concurrent hostility against the real agent (docs/SECURITY.md, threats
# T4-T6), next to honest producers that must not notice:
#  - producers that, while the agent drains them, keep rewriting what it
#    reads and ring the doorbell without pause (the double-fetch/TOCTOU
#    case; tests/progs/harden_prod.c rewrite):
#      meta     the header, resource, res_len, consumer header,
#               scope_at_tail, counters: values the agent read once at
#               registration: it must not notice: every span delivered
#               intact, exactly once, until the bad record at the end;
#      payload  the bytes inside committed span records, also after the
#               walk: the framing holds, every span is exported (count
#               exact), their bytes may be garbage (the known gap);
#      framing  head (backwards, beyond, anything), scope_len, the scope
#               table, record headers: quarantined;
#  - a producer that tries to shrink and grow its memfd, to seal it
#    against writing and to add seals after registration: all EPERM (it is
#    sealed), and its spans are delivered;
#  - a producer that sends its request and closes at once (the reply
#    fails): what it committed before is exported.
# Exact outcomes: the agent stays up and exits 0; the rewriters and only
# they are quarantined (one log line each, meta and payload for the bad
# record they end with); nothing is rejected; the
# honest producers' spans are all delivered, each once, in groups that
# decode (the rewriters' own span bytes may be garbage: the known gap);
# no zero-copy violation.
. "$(dirname "$0")/agent-lib.sh"
[ -x "$PROGS/harden_prod" ] || { echo "SKIP: no harden_prod"; exit 77; }
start_agent --file "$T/out.pb" --debug-zero-copy-check=true
"$PROGS/sr-testprod" -S honest -t 2 -s 2 -n 20000 -r 5000 -W >"$T/honest.txt" 2>&1 &
honest=$!; STARTED+=($honest)
kinds=(meta payload framing)
hostile=()
for k in "${kinds[@]}"; do
	"$PROGS/harden_prod" rewrite "$k" "toctou-$k" 2500 >"$T/rw-$k.txt" 2>&1 &
	hostile+=($!); STARTED+=($!)
done
out=$("$PROGS/harden_prod" resize resize 500) || fail "resize: $out"
echo "resize: $out"
for what in shrink grow fallocate seal_write seal_future_write reopen_truncate; do
	grep -q "$what=EPERM" <<<"$out" || fail "resize: $what did not fail with EPERM: $out"
done
grep -q "committed=500 unreleased=0" <<<"$out" || fail "resize: spans not delivered: $out"
out=$("$PROGS/harden_prod" early early 300) || fail "early: $out"
grep -q "committed=300" <<<"$out" || fail "early: $out"

for i in 0 1 2; do
	k=${kinds[$i]}
	wait "${hostile[$i]}" || fail "rewriter $k: $(cat "$T/rw-$k.txt")"
	grep -q "registered=1 committed=" "$T/rw-$k.txt" || fail "rewriter $k: $(cat "$T/rw-$k.txt")"
done
wait "$honest" || fail "honest producer failed: $(cat "$T/honest.txt")"
grep -q "committed=40000 drops=0 registered=1" "$T/honest.txt" || fail "honest: $(cat "$T/honest.txt")"
grep -q "unreleased=0" "$T/honest.txt" || fail "honest: spans left in the ring"
kill -0 "$AGENT_PID" || fail "agent died"

stats=$(ctl stats)
python3 -c '
import json, sys
d = json.loads(sys.argv[1]); a = d["agent"]
assert a["quarantined"] == 3, a
assert a["rejected"] == 0, a
assert a["registered"] == 6, a            # honest, 3 rewriters, resize, early
assert a["zc_violations"] == 0, a
' "$stats" || fail "stats: $stats"
for k in "${kinds[@]}"; do
	n=$(grep -c "service 'toctou-$k') quarantined" "$T/agent.log")
	[ "$n" = 1 ] || fail "toctou-$k: $n quarantine lines (expected exactly 1)"
done
# meta and payload: the walk never saw a fault before the bad record, and
# exported every span committed before it.
for k in meta payload; do
	grep -q "service 'toctou-$k') quarantined: slot 0 at byte [0-9]*: unexpected field (field 15" \
		"$T/agent.log" || fail "toctou-$k: quarantined for something else: $(grep "toctou-$k') quar" "$T/agent.log")"
	c=$(sed -n 's/.*committed=\([0-9]*\).*/\1/p' "$T/rw-$k.txt")
	wait_until 5 grep -q "service 'toctou-$k') released: $c spans" "$T/agent.log" ||
		fail "toctou-$k: not all of its $c spans exported: $(grep "toctou-$k') rel" "$T/agent.log")"
done
grep "quarantined:" "$T/agent.log" | cut -c1-220 | sed 's/^/  /'
stop_agent
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
cm=$(sed -n 's/.*committed=\([0-9]*\).*/\1/p' "$T/rw-meta.txt")
python3 "$SRC/tests/integration/harden_verify.py" --expect honest:2:20000 --expect resize:1:500 \
	--expect early:1:300 --expect "toctou-meta:1:$cm" --corrupt-ok toctou-payload \
	--corrupt-ok toctou-framing "$T/out.pb" || fail "output check"
echo PASS
