#!/usr/bin/env bash
# Exporter-side faults (docs/SECURITY.md, threats T10-T12): nothing
# crashes, nothing is lost silently: every span is delivered, or counted
# as let go with a log line, and the rings are released.
#  - disk full: the file and json exporters on a 1 MiB tmpfs (mounted
#    here; skipped where mounting is not permitted): the files keep only
#    whole records, delivered + let go = committed exactly, the let-go is
#    logged; with space freed during the retries, everything arrives;
#  - OTLP/HTTP against a receiver that misbehaves in ways the OTLP tests
#    (otlp_http_faults.sh: rst, close, halfclose, garbage, hang, slow
#    reader, 4xx/5xx) do not cover: a slow-loris status line, a 200 with a
#    body that is no response, a 50 MB response body, an endless chunked
#    body, a header flood, a FIN right after an answer, a reset in the
#    middle of a response body: every span reaches the receiver exactly
#    once, none is let go, the agent's memory stays bounded;
#  - memory pressure (RLIMIT_AS): rings that no longer fit the agent's
#    address space are refused (EINTERNAL, logged, counted), an honest
#    producer beside them loses nothing, and registration works again
#    once the pressure is gone (not under sanitizers: they reserve
#    terabytes of address space).
. "$(dirname "$0")/agent-lib.sh"
stats_exp() { # kind field
	ctl stats | python3 -c '
import json, sys
d = json.load(sys.stdin)
e = [x for x in d["exporters"] if x["kind"] == sys.argv[1]][0]
print(e[sys.argv[2]])' "$1" "$2"
}
# wait until exporter KIND holds nothing and delivered + let go = N
settled() {
	local k=$1 n=$2 i
	for i in $(seq $((200 * SLOW))); do
		local s l h
		s=$(stats_exp "$k" spans) l=$(stats_exp "$k" let_go_spans) h=$(stats_exp "$k" held)
		[ $((s + l)) = "$n" ] && [ "$h" = 0 ] && return 0
		sleep 0.1
	done
	fail "exporter $k: spans $s + let go $l != $n (held $h)"
}
ran=0

# ---- disk full ---------------------------------------------------------------------
mkdir -p "$T/full"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m spanring-full "$T/full" 2>/dev/null; then
	ran=1
	trap 'for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null; done; wait 2>/dev/null
		umount "$T/full" 2>/dev/null; cleanup' EXIT
	echo "== file and json exporters on a full disk: let go after the retry budget, counted"
	start_agent --file "$T/full/s.pb" --json "$T/full/s.jsonl" --export-retry-max 1s
	# a 4 MiB slot holds every span while the exporters retry: no drop
	"$PROGS/sr-testprod" -S full -n 20000 -z 4194304 -W -d 20000 >"$T/p1.txt" 2>&1 || fail "producer"
	grep -q "committed=20000 drops=0 registered=1" "$T/p1.txt" || fail "p1: $(cat "$T/p1.txt")"
	grep -q "unreleased=0" "$T/p1.txt" || fail "the rings were not released"
	settled file 20000
	settled json 20000
	fs=$(stats_exp file spans) fl=$(stats_exp file let_go_spans)
	js=$(stats_exp json spans) jl=$(stats_exp json let_go_spans)
	echo "file: $fs delivered, $fl let go; json: $js delivered, $jl let go"
	[ "$fl" -gt 0 ] && [ "$jl" -gt 0 ] || fail "the disk was not full?"
	grep -q "exporter file: letting go of a batch of" "$T/agent.log" || fail "no let-go line (file)"
	grep -q "exporter json: letting go of a batch of" "$T/agent.log" || fail "no let-go line (json)"
	kill -0 "$AGENT_PID" || fail "agent died"
	stop_agent
	[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
	# The files hold whole records only, exactly the spans counted as delivered.
	out=$(python3 "$SRC/tests/integration/harden_verify.py" --prefix full "$T/full/s.pb") ||
		fail "file output: $out"
	grep -q "spans=$fs " <<<"$out" || fail "file holds other than $fs spans: $out"
	n=$(python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    n += sum(len(ss.get("spans", [])) for rs in d["resourceSpans"] for ss in rs.get("scopeSpans", []))
print(n)' "$T/full/s.jsonl") || fail "json output is not whole lines of JSON"
	[ "$n" = "$js" ] || fail "json file holds $n spans, $js counted"
	rm -f "$T/full"/*

	echo "== the disk fills up, then space is freed within the retry budget: nothing let go"
	head -c 900K /dev/zero >"$T/full/filler" 2>/dev/null || true
	start_agent --file "$T/full/s.pb" --export-retry-max 30s
	"$PROGS/sr-testprod" -S refill -n 5000 -z 4194304 -W -d 0 >"$T/p2.txt" 2>&1 || fail "producer"
	wait_until 10 test "$(stats_exp file failures)" -gt 0 || fail "no write failure"
	rm -f "$T/full/filler"
	settled file 5000
	[ "$(stats_exp file let_go_spans)" = 0 ] || fail "spans let go although space came back"
	stop_agent
	python3 "$SRC/tests/integration/harden_verify.py" --expect refill:1:5000 "$T/full/s.pb" ||
		fail "file after the disk came back"
	umount "$T/full"
	trap cleanup EXIT
else
	echo "== disk full: skipped (mounting a tmpfs is not permitted here)"
fi

# ---- a misbehaving OTLP/HTTP receiver ------------------------------------------------------
echo "== OTLP/HTTP: slow loris, garbage 200, 50 MB answer, endless body, header flood, FIN, reset mid-answer"
python3 "$SRC/tests/integration/harden_receiver.py" --out "$T/recv.pb" --log "$T/recv.log" \
	--port-file "$T/port" --max-seconds 120 \
	--script loris,garbage200,huge200,endless,headerflood,okfin,rstbody 2>"$T/recv.err" &
STARTED+=($!)
wait_until 5 test -s "$T/port" || fail "receiver did not start"
port=$(cat "$T/port")
start_agent --file "$T/s.pb" --exporter "otlp_http:http://127.0.0.1:$port/v1/traces" \
	--otlp.timeout=1s --otlp.retry-initial=50ms --otlp.retry-max-backoff=200ms --export-retry-max 60s
rss0=$(awk '/^VmRSS/{print $2}' "/proc/$AGENT_PID/status")
"$PROGS/sr-testprod" -S otlp -n 16000 -r 2000 -z 1048576 -W -d 30000 >"$T/p3.txt" 2>&1 || fail "producer"
grep -q "committed=16000 drops=0 registered=1" "$T/p3.txt" || fail "p3: $(cat "$T/p3.txt")"
settled otlp_http 16000
rss1=$(awk '/^VmRSS/{print $2}' "/proc/$AGENT_PID/status")
acts=$(python3 -c '
import json, sys
print(",".join(json.loads(l)["action"] for l in open(sys.argv[1])))' "$T/recv.log")
echo "receiver saw: $(cut -d, -f1-9 <<<"$acts"),... ($(tr ',' '\n' <<<"$acts" | wc -l) requests)"
for a in loris garbage200 huge200 endless headerflood okfin rstbody; do
	grep -q "$a" <<<"$acts" || fail "the script did not reach $a"
done
[ "$(stats_exp otlp_http let_go_spans)" = 0 ] || fail "spans let go"
[ "$(stats_exp otlp_http spans)" = 16000 ] || fail "delivered $(stats_exp otlp_http spans)"
[ "$(stats_exp otlp_http timeouts)" = 2 ] || fail "timeouts $(stats_exp otlp_http timeouts) (loris, endless)"
[ "$(stats_exp otlp_http retries)" = "$(stats_exp otlp_http failures)" ] || fail "a failed batch not retried"
grep -q "that is not an ExportTraceServiceResponse" "$T/agent.log" || fail "garbage 200 not logged"
grep -q "invalid HTTP response" "$T/agent.log" || fail "header flood not logged"
echo "agent RSS: ${rss0} kB before, ${rss1} kB after a 50 MB answer"
[ $((rss1 - rss0)) -lt $((20000 * SLOW)) ] || fail "agent memory grew by $((rss1 - rss0)) kB"
kill -0 "$AGENT_PID" || fail "agent died"
stop_agent
[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
python3 "$SRC/tests/integration/harden_verify.py" --expect otlp:1:16000 "$T/recv.pb" ||
	fail "receiver: not every span exactly once"
python3 "$SRC/tests/integration/harden_verify.py" --expect otlp:1:16000 "$T/s.pb" || fail "file"
ran=1

# ---- memory pressure --------------------------------------------------------------------------
case "$BUILD" in
*asan* | *tsan*) echo "== RLIMIT_AS: skipped under sanitizers" ;;
*)
	echo "== RLIMIT_AS: rings that do not fit are refused; an honest producer loses nothing"
	AGENT_REAL=$AGENT
	AGENT="$T/agent-as"
	printf '#!/bin/sh\nulimit -v 400000\nexec "%s" "$@"\n' "$AGENT_REAL" >"$AGENT"
	chmod +x "$AGENT"
	rm -f "$T/s.pb"
	start_agent --file "$T/s.pb"
	"$PROGS/sr-testprod" -S pressure -n 20000 -r 4000 -W -d 30000 >"$T/p4.txt" 2>&1 &
	hp=$!
	sleep 0.5
	# 8 MiB slots: each ring takes 16 MiB of the agent's address space
	out=$("$PROGS/harden_prod" many 40 1500 8388608)
	echo "40 rings of 8 MiB: $out"
	ok=$(sed -n 's/.*ok=\([0-9]*\) .*/\1/p' <<<"$out")
	ei=$(sed -n 's/.*einternal=\([0-9]*\) .*/\1/p' <<<"$out")
	[ $((ok + ei)) = 40 ] || fail "registered + refused != 40: $out"
	[ "$ei" -ge 1 ] || fail "nothing refused under RLIMIT_AS: $out"
	grep -q "EINTERNAL (9): cannot map the ring" "$T/agent.log" || fail "no log line for the refusal"
	wait $hp || fail "honest producer"
	grep -q "committed=20000 drops=0 registered=1" "$T/p4.txt" || fail "p4: $(cat "$T/p4.txt")"
	grep -q "unreleased=0" "$T/p4.txt" || fail "p4: spans left in the ring"
	out=$("$PROGS/harden_prod" many 3 0 8388608)
	grep -q "ok=3 " <<<"$out" || fail "registration after the pressure: $out"
	kill -0 "$AGENT_PID" || fail "agent died"
	stop_agent
	[ "$AGENT_RC" = 0 ] || fail "agent exit status $AGENT_RC"
	# at least once: under memory pressure a walk may be repeated
	python3 "$SRC/tests/integration/harden_verify.py" --expect pressure:1:20000 --allow-dups \
		"$T/s.pb" || fail "honest producer's spans"
	AGENT=$AGENT_REAL
	;;
esac
[ $ran = 1 ] || exit 77
echo PASS
