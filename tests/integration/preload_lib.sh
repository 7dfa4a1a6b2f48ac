# Sourced by the LD_PRELOAD shim's integration tests (tests/integration/
# preload_*.sh; not a test itself: not executable). A private agent on a
# socket in a mktemp -d directory writing the file exporter's output, the
# shim, the span decoder; everything started is killed on exit.
#
# Under ASan+UBSan builds, the sanitizer runtime the shim was linked with
# is preloaded first (it must come first in the link map), so that every
# program, instrumented or not, can load the instrumented shim; ASan then
# leaves signals and leaks alone, so programs behave as without it (a
# test that cannot run that way skips). TSan builds skip: its runtime does
# not support being preloaded into uninstrumented programs.
set -euo pipefail
BIN=${SPANRING_TEST_BIN:?run through tests/run-checks.sh}
BUILD=${SPANRING_TEST_BUILD:?}
SRC=${SPANRING_TEST_SRC:?}
SHIM=$BUILD/libspanring-preload.so
APISTUB=$BUILD/libspanring-api.so.0
PROGS=$BUILD/tests/progs
DECODE=$PROGS/preload_spans
AGENT=$BIN/spanring-agent
[ -f "$SHIM" ] || { echo "FAIL: $SHIM not built"; exit 1; }
PRELOAD=$SHIM
SAN=
SANRT=  # what uninstrumented programs need preloaded to load instrumented libraries
case "$BUILD" in
*tsan*) echo "SKIP: the TSan runtime cannot be preloaded into uninstrumented programs"; exit 77 ;;
*asan*)
	SAN=asan
	export PRELOAD_SAN=asan # read by the Python checks
	rt=$(ldd "$SHIM" | sed -n 's/.*=> \(\/[^ ]*\(libasan\|clang_rt\.asan\)[^ ]*\) .*/\1/p' | head -n1)
	[ -n "$rt" ] || { echo "FAIL: no ASan runtime in ldd $SHIM"; exit 1; }
	SANRT=$rt
	PRELOAD="$rt $SHIM"
	export ASAN_OPTIONS=detect_leaks=0:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0:allow_user_segv_handler=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	;;
esac
[ -x "$AGENT" ] || { echo "SKIP: no agent binary"; exit 77; }
[ -x "$DECODE" ] || { echo "FAIL: $DECODE not built"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 needed"; exit 77; }

# A clean environment: nothing inherited may steer the shim or the agent.
unset LD_PRELOAD TRACEPARENT TRACESTATE OTEL_SDK_DISABLED OTEL_TRACES_SAMPLER \
	OTEL_TRACES_SAMPLER_ARG OTEL_SERVICE_NAME OTEL_RESOURCE_ATTRIBUTES SPANRING_TRACE \
	SPANRING_MIN_DURATION_US SPANRING_SIGNALS SPANRING_EXCLUDE SPANRING_DEBUG \
	SPANRING_EXIT_TIMEOUT_MS MAKEFLAGS MFLAGS 2>/dev/null || true

T=$(mktemp -d /tmp/spanring-preload.XXXXXX)
export SPANRING_SOCKET=$T/agent.sock
AGENT_PID=
STARTED=()
pl_cleanup() {
	local p
	for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap pl_cleanup EXIT

fail() {
	echo "FAIL: $*"
	echo "--- agent log (last 20 lines)"
	tail -n 20 "$T/agent.log" 2>/dev/null || true
	exit 1
}

# Start the agent: file exporter into $T/spans.pb.
agent_start() {
	"$AGENT" --socket "$SPANRING_SOCKET" --file "$T/spans.pb" --batch-max-age=1ms \
		>>"$T/agent.out" 2>>"$T/agent.log" &
	AGENT_PID=$!
	STARTED+=("$AGENT_PID")
	local i
	for i in $(seq 200); do
		[ -S "$SPANRING_SOCKET" ] && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || fail "agent exited at start"
		sleep 0.025
	done
	fail "agent did not start"
}

# Stop the agent (SIGTERM: it drains every ring and flushes) and decode
# what it wrote into $T/spans.jsonl.
agent_stop() {
	kill -TERM "$AGENT_PID" 2>/dev/null || true
	local i
	for i in $(seq 400); do
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.025
	done
	kill -0 "$AGENT_PID" 2>/dev/null && fail "agent did not exit after SIGTERM"
	wait "$AGENT_PID" || fail "agent exit status $?"
	: >>"$T/spans.pb"
	"$DECODE" "$T/spans.pb" >"$T/spans.jsonl" || fail "the agent's output does not decode"
}

# traced CMD...: run CMD under the shim, bounded in time. timeout itself
# is excluded (SPANRING_EXCLUDE), so CMD's process span is the root.
traced() {
	SPANRING_EXCLUDE="${SPANRING_EXCLUDE:+$SPANRING_EXCLUDE,}timeout" LD_PRELOAD=$PRELOAD \
		timeout -k 5 60 "$@"
}

# check: python assertions on the spans (stdin: the script; the module
# preload_check is importable, the spans are in S).
check() {
	PYTHONPATH="$SRC/tests/integration" python3 - "$T/spans.jsonl" "$@" || fail "span checks"
}
