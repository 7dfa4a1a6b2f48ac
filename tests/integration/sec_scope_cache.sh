#!/usr/bin/env bash
# Issue 14 R2: one unprivileged producer must not run the agent out of
# memory through the scope cache. The attack of the review: a ring with a
# 1 MiB scope table whose entries start at successive offsets and each
# reach to the end of the table (overlapping), used one after the other
# (sr-hostile scope-bomb); before the fix every one was copied (about
# 1 MiB each) and 400 of them took the agent's anonymous memory to about
# 400 MB. Now the first overlapping entry quarantines the producer, and the
# agent's RssAnon stays under 64 MiB while three such producers (as uid
# 65534 where possible) attack together. The agent runs with the weakest
# setting, max_scope_bytes = 1M (the ABI's largest table), so that the
# overlap check is what stops them (the default 64K cap stops each at its
# first entry; test_agent_drain covers both). An honest producer beside
# them delivers every span.
. "$(dirname "$0")/sec_lib.sh"
BOUND_KIB=$((64 * 1024))
start_agent --file "$T/out.pb" --max-scope-bytes 1M
"$PROGS/sr-testprod" -S honest -t 2 -n 20000 -r 4000 -W >"$T/honest.txt" 2>&1 &
honest=$!; STARTED+=($honest)
run_hostile() { if [ $nobody_ok = 1 ]; then as_nobody "$@"; else "$@"; fi; }
pids=()
for i in 1 2 3; do
	run_hostile "$PROGS/sr-hostile" scope-bomb 400 >"$T/bomb$i.txt" 2>&1 &
	pids+=($!); STARTED+=($!)
done
max=0
while kill -0 "${pids[0]}" 2>/dev/null || kill -0 "${pids[1]}" 2>/dev/null ||
	kill -0 "${pids[2]}" 2>/dev/null; do
	r=$(rss_kib "$AGENT_PID" RssAnon)
	[ "${r:-0}" -gt $max ] && max=$r
	[ "$max" -gt $((BOUND_KIB * 4)) ] && break # clearly unbounded: stop early
	sleep 0.05
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
r=$(rss_kib "$AGENT_PID" RssAnon); [ "$r" -gt $max ] && max=$r
echo "agent RssAnon peak ${max} KiB (bound ${BOUND_KIB} KiB); VmRSS $(rss_kib "$AGENT_PID" VmRSS) KiB"
cat "$T"/bomb*.txt
[ "$max" -le $BOUND_KIB ] || fail "agent RssAnon reached ${max} KiB (bound ${BOUND_KIB} KiB)"
for i in 1 2 3; do
	grep -q "^steps=[12] released=1$" "$T/bomb$i.txt" ||
		fail "bomb $i: more than one overlapping entry was taken: $(cat "$T/bomb$i.txt")"
done
[ "$(grep -c " warn producer .*) quarantined: .*scope entry overlaps an earlier one" "$T/agent.log")" = 3 ] ||
	fail "not every attacker was quarantined for overlapping entries"
wait "$honest" || fail "honest producer failed"
grep -q "committed=40000 drops=0 registered=1" "$T/honest.txt" || fail "honest: $(cat "$T/honest.txt")"
grep -q "unreleased=0" "$T/honest.txt" || fail "honest: spans left in the ring"
kill -0 "$AGENT_PID" || fail "agent died"
stop_agent
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
"$PROGS/sr-verify" --expect honest:2:20000 "$T/out.pb" | tail -n 3 || fail "honest spans"
echo PASS
