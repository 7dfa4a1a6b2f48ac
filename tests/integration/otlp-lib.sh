# SPDX-License-Identifier: MIT
# Shared helpers of the OTLP exporter integration tests (sourced, not run):
# the independent receiver (tests/otlp-receiver), the real agent on a
# private socket, the test producer, stats from the control socket.
# Everything binds 127.0.0.1 and is stopped by the EXIT trap.
set -euo pipefail
src=${SPANRING_TEST_SRC:?}
build=${SPANRING_TEST_BUILD:?}
bin=${SPANRING_TEST_BIN:?}
rdir="$src/tests/otlp-receiver"
prod="$build/tests/progs/otlp-prod"
command -v node >/dev/null || { echo "node is not installed (tools/setup-deps.sh)"; exit 1; }
[ -d "$rdir/node_modules/@grpc/grpc-js" ] ||
	{ echo "tests/otlp-receiver/node_modules missing: run tools/setup-deps.sh"; exit 1; }
T=$(mktemp -d /tmp/spanring-otlp.XXXXXX)
RECV_PID="" AGENT_PID=""
otlp_cleanup() {
	[ -n "$AGENT_PID" ] && kill -9 "$AGENT_PID" 2>/dev/null || true
	[ -n "$RECV_PID" ] && kill "$RECV_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	if [ "${KEEP_TMP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap otlp_cleanup EXIT

say() { printf '== %s\n' "$*"; }
fail() {
	echo "FAIL: $*"
	[ -f "$T/agent.log" ] && { echo "--- agent log (tail)"; tail -n 40 "$T/agent.log"; }
	[ -f "$T/recv.err" ] && { echo "--- receiver log (tail)"; tail -n 20 "$T/recv.err"; }
	exit 1
}

# start_receiver SCRIPT [HTTP_PORT GRPC_PORT]: sets HTTP_PORT, GRPC_PORT.
start_receiver() {
	local script=$1 hp=${2:-0} gp=${3:-0}
	rm -f "$T/ports.json"
	# RECV_NETNS/RECV_HOST: run it in a network namespace, on that address
	${RECV_NETNS:+ip netns exec "$RECV_NETNS"} node "$rdir/receiver.js" --out "$T/recv.jsonl" \
		--http-port "$hp" --grpc-port "$gp" --host "${RECV_HOST:-127.0.0.1}" ${RECV_ARGS:-} \
		--port-file "$T/ports.json" --script "$script" --max-seconds 240 2>>"$T/recv.err" &
	RECV_PID=$!
	for _ in $(seq 200); do [ -f "$T/ports.json" ] && break; sleep 0.05; done
	[ -f "$T/ports.json" ] || fail "receiver did not start"
	HTTP_PORT=$(node -e 'console.log(require(process.argv[1]).http)' "$T/ports.json")
	GRPC_PORT=$(node -e 'console.log(require(process.argv[1]).grpc)' "$T/ports.json")
	H2_PORT=$(node -e 'console.log(require(process.argv[1]).h2)' "$T/ports.json")
}

stop_receiver() {
	[ -n "$RECV_PID" ] || return 0
	kill "$RECV_PID" 2>/dev/null || true
	wait "$RECV_PID" 2>/dev/null || true
	RECV_PID=""
}

# start_agent ARGS...: the agent with a file exporter beside, zero-copy
# check on, fast retries unless the arguments say otherwise; no hold budget
# and no spool (the retry machinery alone) unless the arguments set them.
start_agent() {
	rm -f "$T/s.pb"
	"$bin/spanring-agent" --socket "$T/a.sock" --file "$T/s.pb" --debug-zero-copy-check=true \
		--otlp.retry-initial=100ms --otlp.retry-max-backoff=400ms --state-dir="$T/state" \
		--otlp.hold-budget=0 --otlp.spool-bytes=0 "$@" >>"$T/agent.log" 2>&1 &
	AGENT_PID=$!
	for _ in $(seq 200); do [ -S "$T/a.sock.ctl" ] && break; sleep 0.05; done
	[ -S "$T/a.sock.ctl" ] || fail "agent did not start"
	export SPANRING_SOCKET="$T/a.sock"
}

# start_agent_state ARGS...: the agent with only the exporters the
# arguments give (their defaults otherwise: hold budget, spool, probe),
# zero-copy check on, its state (the spools) in $STATE_DIR, else $T/state.
start_agent_state() {
	"$bin/spanring-agent" --socket "$T/a.sock" --debug-zero-copy-check=true \
		--state-dir="${STATE_DIR:-$T/state}" "$@" >>"$T/agent.log" 2>&1 &
	AGENT_PID=$!
	for _ in $(seq 200); do [ -S "$T/a.sock.ctl" ] && break; sleep 0.05; done
	[ -S "$T/a.sock.ctl" ] || fail "agent did not start"
	export SPANRING_SOCKET="$T/a.sock"
}

# rss_anon_kb [PID]: the agent's own memory (kB), not the rings it maps
rss_anon_kb() { awk '/^RssAnon/ {print $2}' "/proc/${1:-$AGENT_PID}/status"; }
# The bound the outage tests hold it to (kB). Sanitizers keep shadow
# memory and quarantines (ASan's holds up to 256 MB of freed blocks): not
# checked there.
RSS_LIMIT_KB=32768
case "$build" in *asan* | *tsan* | *ubsan*) RSS_LIMIT_KB=$((4 << 20)) ;; esac

stop_agent() {
	[ -n "$AGENT_PID" ] || return 0
	kill -TERM "$AGENT_PID"
	local rc=0
	wait "$AGENT_PID" || rc=$?
	AGENT_PID=""
	[ $rc -eq 0 ] || fail "agent exited with $rc"
}

stat() { node "$rdir/stat.js" "$T/a.sock.ctl" "$@"; }

# produce NAME SERVICE ARGS...: the test producer; expected spans in $T/exp-NAME.jsonl
produce() {
	local name=$1 svc=$2
	shift 2
	OTEL_SERVICE_NAME=$svc "$prod" -o "$T/exp-$name.jsonl" "$@" >"$T/prod-$name.out" ||
		fail "producer $name failed"
	grep -q "dropped=0" "$T/prod-$name.out" || fail "producer $name dropped spans: $(cat "$T/prod-$name.out")"
}

expected_count() { cat "$T"/exp-*.jsonl | wc -l; }

# wait_settled EXPORTER TOTAL [SECONDS]: until the exporter delivered or
# let go TOTAL spans and holds nothing.
wait_settled() {
	local e=$1 total=$2 secs=${3:-30} i
	for ((i = 0; i < secs * 10; i++)); do
		local v
		v=$(stat "exp.$e.spans" "exp.$e.let_go_spans" "exp.$e.held" | paste -sd' ')
		set -- $v
		if [ $(($1 + $2)) -ge "$total" ] && [ "$3" = 0 ]; then return 0; fi
		sleep 0.1
	done
	fail "exporter $e did not settle: spans/let_go/held = $v, want $total"
}

# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" = "$3" ] || fail "$1: got $2, want $3"; echo "ok: $1 = $2"; }
expect_ge() { [ "$2" -ge "$3" ] || fail "$1: got $2, want >= $3"; echo "ok: $1 = $2 (>= $3)"; }

# The zero-copy proof: every iovec handed to the kernel was checked and
# span bytes came from ring memory only.
check_zero_copy() {
	local v
	v=$(stat agent.zc_iov_checked agent.zc_violations | paste -sd' ')
	set -- $v
	[ "$1" -gt 0 ] || fail "zero-copy check did not run"
	expect_eq "zero-copy violations ($1 iovecs checked)" "$2" 0
}

check_spans() { # check.js args...
	node "$rdir/check.js" --recv "$T/recv.jsonl" \
		--expect "$(ls "$T"/exp-*.jsonl | paste -sd,)" "$@" || fail "span check failed"
}

reset_run() {
	stop_agent
	stop_receiver
	rm -f "$T"/exp-*.jsonl "$T/recv.jsonl" "$T/s.pb" "$T/agent.log" "$T/recv.err"
}
