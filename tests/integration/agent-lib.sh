# Sourced by the agent's integration tests (not a test itself: not executable).
# Private socket and files in a mktemp -d directory; everything started is
# killed on exit; helpers to start/stop the agent and talk to its control
# socket.
set -u
BIN=${SPANRING_TEST_BIN:?run through tests/run-checks.sh}
BUILD=${SPANRING_TEST_BUILD:?}
SRC=${SPANRING_TEST_SRC:?}
PROGS=$BUILD/tests/progs
AGENT=$BIN/spanring-agent
[ -x "$AGENT" ] || { echo "SKIP: no agent binary"; exit 77; }
[ -x "$PROGS/sr-testprod" ] || { echo "SKIP: no test programs"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 needed"; exit 77; }
T=$(mktemp -d /tmp/spanring-it.XXXXXX)
export SPANRING_SOCKET=$T/agent.sock
# Sanitizer builds are slower: scale waits.
case "$BUILD" in *asan*|*tsan*) SLOW=3 ;; *) SLOW=1 ;; esac
STARTED=()
AGENT_PID=

cleanup() {
	local p
	for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	echo "--- agent log (last 40 lines)"
	tail -n 40 "$T/agent.log" 2>/dev/null
	exit 1
}

# start_agent ARGS...: start the agent on $SPANRING_SOCKET, wait until the
# control socket answers. Appends to $T/agent.log (stderr), $T/agent.out.
start_agent() {
	"$AGENT" --socket "$SPANRING_SOCKET" --state-dir="$T/state" "$@" >>"$T/agent.out" 2>>"$T/agent.log" &
	AGENT_PID=$!
	STARTED+=("$AGENT_PID")
	local i
	for i in $(seq 200); do
		[ -S "$SPANRING_SOCKET.ctl" ] && ctl ping >/dev/null 2>&1 && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || fail "agent exited at start"
		sleep 0.025
	done
	fail "agent did not start"
}

# stop_agent: SIGTERM, wait (bounded); sets AGENT_RC.
stop_agent() {
	kill -TERM "$AGENT_PID" 2>/dev/null
	local i
	for i in $(seq $((400 * SLOW))); do
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.025
	done
	kill -0 "$AGENT_PID" 2>/dev/null && fail "agent did not exit after SIGTERM"
	wait "$AGENT_PID"
	AGENT_RC=$?
}

# ctl COMMAND: one command on the control socket, prints the answer line.
ctl() {
	python3 - "$SPANRING_SOCKET.ctl" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
buf = b""
while not buf.endswith(b"\n"):
    d = s.recv(1 << 20)
    if not d:
        break
    buf += d
sys.stdout.write(buf.decode())
PY
}

# jsonq EXPR: evaluate a Python expression over the JSON on stdin (as d).
jsonq() {
	python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# wait_until SECONDS COMMAND...: poll until the command succeeds.
wait_until() {
	local t=$1; shift
	local n=$((t * 20 * SLOW)) i
	for i in $(seq "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

# protoc_count FILE PROTO_DIR PROTO: spans in one request, decoded by protoc.
protoc_count() {
	protoc --decode=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest \
		-I "$2" "$3" <"$1" | grep -c '^ *spans {'
}
