#!/usr/bin/env bash
# spanring-dump against a ring that wraps under it: one 16 KiB slot, a
# producer writing as fast as it can, the real agent draining and
# releasing. show and follow must never crash, never call the ring
# corrupt, and never print a span that was not produced exactly so (a torn
# or overwritten record is skipped and reported, not decoded).
. "$(dirname "$0")/dump_lib.sh"

start_agent
OTEL_SERVICE_NAME=stream SPANRING_SOCKET=$SOCK SPANRING_SLOTS=1 SPANRING_SLOT_SIZE=16K \
	SPANRING_EXIT_TIMEOUT_MS=200 "$PROD" stream "$T/stream.manifest" >"$T/stream.out" 2>&1 &
P=$!
CHILDREN+=("$P")
wait_for "$T/stream.out" "^ready"
sleep 0.2

"$DUMP" -S "$SOCK" follow --json --for 3s "$P" >"$T/fol.json" 2>"$T/fol.err" &
F=$!
CHILDREN+=("$F")
"$DUMP" --no-agent follow --json --for 3s "$P" >"$T/fol2.json" 2>"$T/fol2.err" &
F2=$!
CHILDREN+=("$F2")
shown=0
for i in $(seq 30); do
	"$DUMP" show --json "$P" >"$T/show.$i.json" 2>"$T/show.$i.err"
	rc=$?
	expect_rc 0 "$rc" "show #$i of a wrapping ring ($(cat "$T/show.$i.err"))"
	shown=$((shown + $(wc -l <"$T/show.$i.json")))
	"$DUMP" show "$P" >/dev/null 2>&1
	expect_rc 0 $? "show (lines) #$i"
done
wait "$F"
expect_rc 0 $? "follow (agent) of a wrapping ring: $(grep -v '^-- ' "$T/fol.err" | head -3)"
wait "$F2"
expect_rc 0 $? "follow (/proc) of a wrapping ring: $(grep -v '^-- ' "$T/fol2.err" | head -3)"
kill -TERM "$P"
wait "$P" 2>/dev/null
produced=$(wc -l <"$T/stream.manifest")
[ "$produced" -gt 2000 ] || fail "the producer wrote only $produced spans"
# Identical spans print identical lines: one check for all the runs.
cat "$T"/show.*.json | sort -u >"$T/show.all.json"
"$PY" "$CMP" "$T/show.all.json" "$T/stream.manifest" --subset ||
	fail "show printed a span that differs from what was produced"
for f in fol fol2; do
	"$PY" "$CMP" "$T/$f.json" "$T/stream.manifest" --subset || fail "$f printed a wrong span"
	n=$(wc -l <"$T/$f.json")
	[ "$n" -gt 100 ] || fail "$f printed only $n spans"
done
gaps=$(grep -c "gap:\|released by the agent while being read\|dropped" "$T/fol.err" "$T/fol2.err" "$T"/show.*.err | awk -F: '{s+=$NF} END {print s}')
ok "$produced spans produced; show printed $shown over 30 runs, follow $(wc -l <"$T/fol.json") and $(wc -l <"$T/fol2.json"), all exact; $gaps gaps/drops reported"
echo "PASS"
