#!/usr/bin/env bash
# On a quiet ring (the agent sleeps: ABI 1.2+ wake-up protocol), a single
# committed span wakes the agent through the doorbell and is exported
# (written to the file and released) at once: after a quiet spell its
# batch deadline (latency_bound after the last scan) has passed. The
# bounds below leave room for a loaded CI machine.
. "$(dirname "$0")/agent-lib.sh"
start_agent --file "$T/out.pb"
out=$("$PROGS/sr-testprod" -S quiet -l 30) || fail "probe failed: $out"
echo "$out"
p50=$(sed -n 's/^latency_us p50=\([0-9]*\) .*/\1/p' <<<"$out")
max=$(sed -n 's/.* max=\([0-9]*\)$/\1/p' <<<"$out")
[ -n "$p50" ] || fail "no measurement"
[ "$p50" -le $((10000 * SLOW)) ] || fail "median latency ${p50}us"
[ "$max" -le $((100000 * SLOW)) ] || fail "worst latency ${max}us"
stop_agent
"$PROGS/sr-verify" "$T/out.pb" | grep -q "spans=30" || fail "probe spans not in the file"
echo PASS
