#!/usr/bin/env bash
# SECURITY.md R13: follow --count N prints exactly N spans, even when one
# poll finds many more (before the fix, --count 1 printed every span the
# first poll read: 64 and more).
. "$(dirname "$0")/dump_lib.sh"

start_producer many 40 # 120 spans in the ring, no agent: they stay
P=$PRODUCER
for n in 1 5; do
	for form in --json ""; do
		timeout 20 "$DUMP" --no-agent follow $form --from-tail --count "$n" "$P" >"$T/c.out" 2>"$T/c.err"
		expect_rc 0 $? "follow --count $n $form"
		if [ -n "$form" ]; then
			got=$(wc -l <"$T/c.out")
		else
			got=$(grep -c "GET /item\|db.query\|render" "$T/c.out")
		fi
		[ "$got" = "$n" ] || fail "follow --count $n $form printed $got spans: $(head -c 400 "$T/c.out")"
	done
	# Real spans of the producer, each once.
	timeout 20 "$DUMP" --no-agent follow --json --from-tail --count "$n" "$P" >"$T/c.json" 2>/dev/null
	"$PY" "$CMP" "$T/c.json" "$T/many.manifest" --subset --count "$n" || fail "follow --count $n: which spans"
	ok "follow --count $n: exactly $n spans of 120 available (lines and JSON)"
done
# New spans arriving in one burst (SIGUSR1: 120 more) after follow started.
"$DUMP" --no-agent follow --json --count 5 --for 20s "$P" >"$T/b.json" 2>"$T/b.err" &
F=$!
CHILDREN+=("$F")
wait_for "$T/b.err" "following pid $P (many)"
kill -USR1 "$P"
for i in $(seq 200); do kill -0 "$F" 2>/dev/null || break; sleep 0.05; done
wait "$F"
expect_rc 0 $? "follow --count 5 of a burst"
[ "$(wc -l <"$T/b.json")" = 5 ] || fail "follow --count 5 of a burst printed $(wc -l <"$T/b.json")"
ok "follow --count 5 of a burst of 120 new spans: 5"
echo "PASS"
