#!/usr/bin/env bash
# The agent under valgrind memcheck (docs/SECURITY.md): two representative
# scenarios, each ending with SIGTERM; memcheck must report no error and
# no definite or indirect leak (--error-exitcode), so the agent's exit
# status is 0.
#  1. honest producers through the file, json and console exporters, next
#     to hostile ones: rejected registrations (pipe, unsealed memfd, bad
#     header, an empty message with an fd), a quarantined ring (garbage
#     framing), a producer that rewrites its ring while drained;
#  2. the OTLP/HTTP exporter against a misbehaving receiver (garbage 200,
#     a reset mid-answer, a FIN after an answer, a 400: let go), beside
#     the file exporter;
#  3. the OTLP/gRPC exporter against the node receiver, every span
#     delivered. nghttp2 encodes a request's headers when it sends them,
#     after the submitting function returned: memcheck sees a header value
#     left on that function's stack (it did: a garbage grpc-timeout, which
#     the receiver refused as INTERNAL, and the batch was let go).
# Runs on the plain gcc build only (valgrind cannot run sanitizer builds;
# one compiler is enough), bounded in time.
. "$(dirname "$0")/agent-lib.sh"
case "$BUILD" in
*/gcc) ;;
*) [ -n "${HARDEN_VALGRIND:-}" ] || { echo "SKIP: valgrind runs on the plain gcc build only"; exit 77; } ;;
esac
command -v valgrind >/dev/null || { echo "SKIP: no valgrind"; exit 77; }
[ -x "$PROGS/harden_prod" ] || { echo "SKIP: no harden_prod"; exit 77; }
SLOW=6 # waits in agent-lib.sh scale with it
AGENT_REAL=$AGENT
AGENT="$T/agent-vg"
printf '#!/bin/sh\nexec valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --log-file=%s/vg.%%p.log "%s" "$@"\n' \
	"$T" "$AGENT_REAL" >"$AGENT"
chmod +x "$AGENT"
# Valgrind (3.19) does not know epoll_pwait2 (syscall 441): it warns and
# answers ENOSYS to the agent's probe, and the agent's loop takes its timerfd
# path (agent/loop.h), which is then what runs under valgrind here. That
# warning (a line and its four lines of advice) is not an error of ours.
vg_strip() { awk '/unhandled amd64-linux syscall: 441$/ {skip = 4; next} skip > 0 {skip--; next} {print}' "$1"; }
vg_ok() {
	local f bad=0
	for f in "$T"/vg.*.log; do
		[ -n "$(vg_strip "$f")" ] || continue
		echo "--- $f"; vg_strip "$f" | head -n 60; bad=1
	done
	[ $bad = 0 ] || fail "valgrind reported errors or leaks"
	rm -f "$T"/vg.*.log
}
start_vg() {
	# valgrind starts slowly: give the control socket time
	local i
	# Its own state directory: a spool left in the default one by
	# anything else on the machine would be replayed here and counted.
	"$AGENT" --socket "$SPANRING_SOCKET" --state-dir="$T/state" "$@" >>"$T/agent.out" \
		2>>"$T/agent.log" &
	AGENT_PID=$!
	STARTED+=("$AGENT_PID")
	for i in $(seq 600); do
		if [ -S "$SPANRING_SOCKET.ctl" ] && ctl ping >/dev/null 2>&1; then
			tr '\0' ' ' <"/proc/$AGENT_PID/cmdline" | grep -q valgrind ||
				fail "the agent does not run under valgrind"
			return 0
		fi
		kill -0 "$AGENT_PID" 2>/dev/null || fail "agent exited at start"
		sleep 0.05
	done
	fail "agent did not start under valgrind"
}

echo "== scenario 1: exporters, rejections, quarantine, a rewriting producer"
start_vg --file "$T/out.pb" --json "$T/out.jsonl" --exporter "console:$T/console.txt" \
	--registration-timeout 500ms
"$PROGS/sr-testprod" -S honest -t 2 -n 1000 -r 2000 -W -d 20000 >"$T/honest.txt" 2>&1 &
hp=$!; STARTED+=($hp)
for m in pipe unsealed lying; do "$PROGS/sr-hostile" "$m" >/dev/null 2>&1 || true; done
"$PROGS/harden_prod" emptyfd 3 >/dev/null
"$PROGS/sr-hostile" garbage 500 >/dev/null 2>&1 || true
"$PROGS/harden_prod" rewrite framing vg-rewrite 1000 >/dev/null 2>&1 || true
"$PROGS/sr-hostile" stall 1500 >/dev/null 2>&1 || true
wait $hp || fail "honest producer: $(cat "$T/honest.txt")"
grep -q "committed=2000 drops=0 registered=1" "$T/honest.txt" || fail "honest: $(cat "$T/honest.txt")"
grep -q "unreleased=0" "$T/honest.txt" || fail "honest: not released"
stats=$(ctl stats)
python3 -c '
import json, sys
a = json.loads(sys.argv[1])["agent"]
assert a["quarantined"] == 2 and a["rejected"] == 3, a
' "$stats" || fail "stats: $stats"
stop_agent
[ "$AGENT_RC" = 0 ] || { vg_ok; fail "agent exit status $AGENT_RC"; }
vg_ok
python3 "$SRC/tests/integration/harden_verify.py" --expect honest:2:1000 --corrupt-ok vg-rewrite \
	--corrupt-ok hostile "$T/out.pb" || fail "output"
echo "memcheck: clean"

echo "== scenario 2: OTLP/HTTP against a misbehaving receiver"
python3 "$SRC/tests/integration/harden_receiver.py" --out "$T/recv.pb" --log "$T/recv.log" \
	--port-file "$T/port" --max-seconds 120 --script garbage200,rstbody,okfin,400 2>"$T/recv.err" &
STARTED+=($!)
wait_until 5 test -s "$T/port" || fail "receiver did not start"
rm -f "$T/out.pb"
start_vg --file "$T/out.pb" --exporter "otlp_http:http://127.0.0.1:$(cat "$T/port")/v1/traces" \
	--otlp.timeout=5s --otlp.retry-initial=50ms --otlp.retry-max-backoff=200ms
"$PROGS/sr-testprod" -S otlp -n 2000 -r 1000 -z 1048576 -W -d 30000 >"$T/p.txt" 2>&1 ||
	fail "producer: $(cat "$T/p.txt")"
grep -q "unreleased=0" "$T/p.txt" || fail "producer: not released"
e=$(ctl stats | python3 -c '
import json, sys
e = [x for x in json.load(sys.stdin)["exporters"] if x["kind"] == "otlp_http"][0]
print(e["spans"], e["let_go_spans"], e["held"])')
set -- $e
echo "otlp_http: $1 delivered, $2 let go, $3 held"
[ $(($1 + $2)) = 2000 ] && [ "$3" = 0 ] && [ "$2" -gt 0 ] || fail "delivered + let go != 2000: $e"
grep -q "HTTP 400 (not retryable)" "$T/agent.log" || fail "no log line for the 400"
stop_agent
[ "$AGENT_RC" = 0 ] || { vg_ok; fail "agent exit status $AGENT_RC"; }
vg_ok
echo "memcheck: clean"
echo "== scenario 3: OTLP/gRPC, headers that outlive their submission"
command -v node >/dev/null && [ -d "$SRC/tests/otlp-receiver/node_modules" ] ||
	{ echo "SKIP: no node receiver"; exit 77; }
node "$SRC/tests/otlp-receiver/receiver.js" --out "$T/grpc.jsonl" --http-port 0 --grpc-port 0 \
	--host 127.0.0.1 --port-file "$T/ports.json" --max-seconds 120 --quiet 2>"$T/grpc-recv.err" &
STARTED+=($!)
wait_until 5 test -s "$T/ports.json" || fail "gRPC receiver did not start"
gp=$(node -e 'console.log(require(process.argv[1]).grpc)' "$T/ports.json")
start_vg --exporter "otlp_grpc:http://127.0.0.1:$gp" --otlp.timeout=7s
"$PROGS/sr-testprod" -S grpc -n 2000 -r 2000 -W -d 30000 >"$T/g.txt" 2>&1 ||
	fail "producer: $(cat "$T/g.txt")"
grep -q "unreleased=0" "$T/g.txt" || fail "producer: not released"
e=$(ctl stats | python3 -c '
import json, sys
e = [x for x in json.load(sys.stdin)["exporters"] if x["kind"] == "otlp_grpc"][0]
print(e["spans"], e["let_go_spans"])')
set -- $e
echo "otlp_grpc: $1 delivered, $2 let go"
[ "$1" = 2000 ] && [ "$2" = 0 ] || fail "otlp_grpc delivered $1 and let go $2 of 2000 ($(grep warn "$T/agent.log" | tail -3))"
stop_agent
[ "$AGENT_RC" = 0 ] || { vg_ok; fail "agent exit status $AGENT_RC"; }
vg_ok
echo "memcheck: clean"
AGENT=$AGENT_REAL
echo PASS
