#!/usr/bin/env bash
# The sleeping agent (ABI 1.2 and 1.3 wake-up protocol, docs/ABI.md "Sleeping
# agent"), against the real agent and real producer processes:
#  1. idle, with no producer and with 100 idle registered producers, the
#     agent makes at most 10 voluntary context switches per second (all its
#     threads) and uses at most 0.1 % of a core;
#  2. single spans at random intervals (1 ms .. 2 s, log-uniform) from
#     several producers while the agent sleeps: every span (over 2000: 16 producers for 40 s) is
#     exported (written to the file and released) within latency_bound +
#     5 ms, except by time the machine kept the agent or the probe off a
#     CPU: a span over the limit by no more than what the agent's threads
#     and the probe waited on a run queue meanwhile (schedstat) is counted
#     and printed, any other fails the test. On a quiet machine there are
#     none; when other suites load this 2-core machine, processes wait for
#     a CPU for tens of milliseconds. A lost wake-up leaves the agent
#     asleep, which no run-queue wait explains: when it is systematic
#     every producer ends up waiting (a probe gives up after 5 s); a rare
#     one waits for another producer's next span and fails the limit.
#     The producers register for MEMBARRIER_CMD_GLOBAL_EXPEDITED (ABI
#     1.3), so the agent's way to sleep takes microseconds;
#  2b. a hostile producer that sets and clears its need_wakeup at random and
#     rings its doorbell stalls no one else: honest producers' spans are
#     held to the same limit (the hostile one's own are not checked);
#  3. a producer killed between its commit and its doorbell loses no span;
#  4. a producer of ABI 1.1 (no wake-up protocol) is served by polling
#     while it is registered, and only then.
# Timing margins: sanitizer builds (SLOW) get wider bounds.
. "$(dirname "$0")/agent-lib.sh"
BOUND_MS=10
# The spans' file is on tmpfs when there is one: what is measured is the
# wake-up and the batching, and a file on disk adds the kernel's writeback
# throttling, which can stall a write while other suites build beside this
# one. (One run at load 10 saw a span wait 859 ms; its cause was not
# established: writeback and scheduling are both candidates.)
OUTDIR=$T
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	OUTDIR=$(mktemp -d /dev/shm/spanring-wake.XXXXXX)
	trap 'rm -rf "$OUTDIR"; cleanup' EXIT
fi
start_agent --file "$OUTDIR/out.pb" --latency-bound ${BOUND_MS}ms
grep -q "wake-up: membarrier" "$T/agent.log" || { echo "SKIP: no membarrier(MEMBARRIER_CMD_GLOBAL)"; exit 77; }
[ "$(ctl stats | jsonq 'd["agent"]["wake_mode"]')" = membarrier ] || fail "wake_mode metric"

# agent_usage: "<voluntary switches> <cpu ns>" summed over the agent's threads
agent_usage() {
	local v=0 c=0 t x
	for t in /proc/"$AGENT_PID"/task/*; do
		x=$(sed -n 's/^voluntary_ctxt_switches:\s*//p' "$t/status")
		v=$((v + x))
		c=$((c + $(cut -d' ' -f1 "$t/schedstat")))
	done
	echo "$v $c"
}
# idle_check LABEL: 10 s of nothing; fail above 10 switches/s or 0.1 % CPU
idle_check() {
	sleep 1 # let it fall asleep
	local a b dv dc
	a=$(agent_usage)
	sleep 10
	b=$(agent_usage)
	dv=$(( ${b% *} - ${a% *} ))
	dc=$(( ${b#* } - ${a#* } ))
	echo "idle ($1): $dv voluntary context switches, $((dc / 1000)) us CPU in 10 s"
	[ "$dv" -le 100 ] || fail "idle ($1): $dv wake-ups in 10 s (target <= 100)"
	[ "$dc" -le $((10000000 * SLOW)) ] || fail "idle ($1): $((dc / 1000)) us CPU in 10 s (target <= 10000)"
}
idle_check "no producer"

IDLE=()
for i in $(seq 100); do
	"$PROGS/sr-testprod" -S idle$i -n 1 -H -d 2000 >"$T/idle$i.txt" 2>&1 &
	IDLE+=($!); STARTED+=($!)
done
wait_until 20 sh -c "[ \"\$(grep -c 'producer [0-9]* registered' '$T/agent.log')\" -ge 100 ]" ||
	fail "idle producers did not register"
idle_check "100 idle producers"
kill -TERM "${IDLE[@]}" 2>/dev/null
wait "${IDLE[@]}" 2>/dev/null

# 2. random intervals, several producers
s0=$(ctl stats | jsonq 'd["agent"]["sleeps"]')
e0=$(ctl stats | jsonq 'd["agent"]["membarriers_expedited"]')
limit_us=$(( (BOUND_MS + 5 * SLOW) * 1000 ))
NRND=16 # x 40 s, about 150 spans each
PR=()
for i in $(seq $NRND); do
	"$PROGS/sr-testprod" -S rnd$i -l 100000 -i 1:2000 -T 40 -B $limit_us -P "$AGENT_PID" \
		>"$T/rnd$i.txt" 2>&1 &
	PR+=($!); STARTED+=($!)
done
# Each says it registered for the expedited membarrier (ABI 1.3) where the
# kernel has it, and the stats say how each is woken.
rnd_wake() { ctl stats | jsonq '",".join(sorted(set(p["wake"] for p in d["producers"] if p["service"].startswith("rnd"))))'; }
all_rnd() { [ "$(ctl stats | jsonq 'sum(p["service"].startswith("rnd") for p in d["producers"])')" -eq $NRND ]; }
wait_until 5 all_rnd || fail "the $NRND random producers did not register"
w=$(rnd_wake)
if grep -q "wake-up: membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED" "$T/agent.log"; then
	[ "$w" = doorbell-expedited ] || fail "random producers' wake: '$w' (want doorbell-expedited)"
else
	[ "$w" = doorbell ] || [ "$w" = doorbell-expedited ] || fail "random producers' wake: '$w'"
fi
# probe_result LABEL FILE: print the probe's result and its over-limit
# probes; fail on one the machine does not explain. Adds to total/over.
total=0 over=0
probe_result() {
	local out n o u
	out=$(cat "$2")
	n=$(sed -n 's/^committed=\([0-9]*\) .*/\1/p' <<<"$out")
	o=$(sed -n 's/^over=\([0-9]*\) .*/\1/p' <<<"$out")
	u=$(sed -n 's/.* unexplained=\([0-9]*\)$/\1/p' <<<"$out")
	echo "$1: $(tail -1 <<<"$out")"
	grep '^probe [0-9]*:' <<<"$out" | sed "s/^/  $1 /"
	[ -n "$n" ] && [ -n "$u" ] || fail "$1: no measurement: $out"
	[ "$u" -eq 0 ] || fail "$1: $u spans over ${limit_us}us that no wait for a CPU explains (a lost wake-up?)"
	total=$((total + n)); over=$((over + o))
}
for i in $(seq $NRND); do
	wait "${PR[$((i - 1))]}" || fail "producer rnd$i: $(cat "$T/rnd$i.txt")"
	probe_result rnd$i "$T/rnd$i.txt"
done
echo "random-interval spans: $total, each within ${limit_us}us except $over, each of those by no more than the agent and the probe waited for a CPU"
[ "$total" -ge 2000 ] || fail "only $total trials"
s1=$(ctl stats | jsonq 'd["agent"]["sleeps"]')
[ "$s1" -gt "$s0" ] || fail "the agent never slept during the random test"
# Where the kernel offers it, every sleep used the expedited membarrier.
if grep -q "wake-up: membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED" "$T/agent.log"; then
	e1=$(ctl stats | jsonq 'd["agent"]["membarriers_expedited"]')
	[ $((e1 - e0)) -ge $((s1 - s0)) ] || fail "$((s1 - s0)) sleeps but $((e1 - e0)) expedited membarriers"
	echo "expedited membarriers: $((e1 - e0)) for $((s1 - s0)) sleeps"
fi

# 2b. a hostile producer flips its need_wakeup and rings meanwhile
"$PROGS/sr-testprod" -S flipper -M -l 100000 -i 1:50 -T 12 >"$T/flip.txt" 2>&1 &
flip=$!; STARTED+=($flip)
PR=()
for i in $(seq 3); do
	"$PROGS/sr-testprod" -S honest$i -l 100000 -i 1:300 -T 10 -B $limit_us -P "$AGENT_PID" \
		>"$T/honest$i.txt" 2>&1 &
	PR+=($!); STARTED+=($!)
done
for i in $(seq 3); do
	wait "${PR[$((i - 1))]}" || fail "honest$i next to the flipper: $(cat "$T/honest$i.txt")"
	probe_result "honest$i next to the flipper" "$T/honest$i.txt"
done
kill -TERM "$flip" 2>/dev/null; wait "$flip" 2>/dev/null
echo "flipper (its own latency, not checked): $(tail -1 "$T/flip.txt")"

# 3. killed between its commit and its doorbell: nothing lost
n0=$(ctl stats | jsonq 'd["agent"]["spans"]')
"$PROGS/sr-testprod" -S killed -K >"$T/killed.txt" 2>&1
grep -q "committed=1 then SIGKILL" "$T/killed.txt" || fail "killed producer: $(cat "$T/killed.txt")"
more_spans() { [ "$(ctl stats | jsonq 'd["agent"]["spans"]')" -gt "$1" ]; }
wait_until 2 more_spans "$n0" || fail "the killed producer's span was not exported"
echo "killed producer: its span exported"

# 4. ABI 1.1 producer: polled while registered
p0=$(ctl stats | jsonq 'd["agent"]["polls"]')
out=$("$PROGS/sr-testprod" -S old -O -l 10) || fail "old producer: $out"
echo "ABI 1.1 producer: $(tail -1 <<<"$out")"
max=$(sed -n 's/.* max=\([0-9]*\)$/\1/p' <<<"$out")
[ "$max" -le $((100000 * SLOW)) ] || fail "old producer waited ${max}us"
p1=$(ctl stats | jsonq 'd["agent"]["polls"]')
[ $((p1 - p0)) -ge 50 ] || fail "old producer not polled ($((p1 - p0)) scans)"
grep -q "service 'old'.*(polled: ABI minor < 2" "$T/agent.log" || fail "no 'polled' registration line"
sleep 1
a=$(ctl stats | jsonq 'd["agent"]["polls"]'); sleep 1; b=$(ctl stats | jsonq 'd["agent"]["polls"]')
[ $((b - a)) -le 5 ] || fail "still polling after the old producer left ($((b - a)) scans/s)"

stop_agent
[ "$AGENT_RC" -eq 0 ] || fail "agent exit status $AGENT_RC"
echo PASS
