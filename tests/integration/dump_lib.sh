# Shared helpers of the spanring-dump integration tests (sourced, not run).
# Environment (tests/run-checks.sh): SPANRING_TEST_BIN, SPANRING_TEST_BUILD,
# SPANRING_TEST_SRC. Exit 0 pass, 1 fail, 77 skip.
set -u
BIN=${SPANRING_TEST_BIN:?}
BUILD=${SPANRING_TEST_BUILD:?}
SRC=${SPANRING_TEST_SRC:?}
DUMP=$BIN/spanring-dump
AGENT_BIN=$BIN/spanring-agent
PROD=$BUILD/tests/progs/dump_producer
CMP="$SRC/tests/integration/dump_compare.py"
for x in "$DUMP" "$PROD"; do
	[ -x "$x" ] || { echo "SKIP: $x not built"; exit 77; }
done
PY=$(command -v python3 || true)
[ -n "$PY" ] || { echo "SKIP: python3 is needed to check the JSON output"; exit 77; }
# No leak reports from the ASan build's producers we kill on purpose.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
T=$(mktemp -d /tmp/spanring-dump-test.XXXXXX)
CHILDREN=()
cleanup() {
	local p
	for p in "${CHILDREN[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.2
	for p in "${CHILDREN[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}
ok() { echo "ok: $*"; }

# wait_for FILE PATTERN [seconds]: until FILE has a line matching PATTERN.
wait_for() {
	local i
	for ((i = 0; i < ${3:-10} * 20; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "timed out waiting for '$2' in $1: $(tail -n 5 "$1" 2>/dev/null)"
}

# start_agent: the real agent on a private socket, file and JSON exporters.
SOCK=$T/agent.sock
start_agent() {
	[ -x "$AGENT_BIN" ] || { echo "SKIP: spanring-agent not built"; exit 77; }
	"$AGENT_BIN" --socket "$SOCK" --file "$T/spans.pb" --json "$T/spans.jsonl" \
		--log-level info "$@" >"$T/agent.log" 2>&1 &
	AGENT=$!
	CHILDREN+=("$AGENT")
	wait_for "$T/agent.log" "started" 10
	[ -S "$SOCK.ctl" ] || fail "agent control socket missing: $(cat "$T/agent.log")"
}

# start_producer NAME N [socket]: dump_producer with N traces (3 spans each);
# sets PRODUCER (its pid); its manifest is $T/NAME.manifest.
start_producer() {
	OTEL_SERVICE_NAME=$1 SPANRING_SOCKET=${3:-$T/no-agent.sock} SPANRING_EXIT_TIMEOUT_MS=200 \
		"$PROD" spans "$2" "$T/$1.manifest" >"$T/$1.out" 2>&1 &
	PRODUCER=$!
	CHILDREN+=("$PRODUCER")
	wait_for "$T/$1.out" "^ready" 10
}

# expect_rc WANT GOT WHAT: exit codes; 128+ means a crash (signal).
expect_rc() {
	[ "$2" -lt 128 ] || fail "$3: crashed (exit $2)"
	[ "$1" = "$2" ] || fail "$3: exit $2, want $1"
}

# Column count of the longest line of a file (UTF-8 aware).
max_columns() {
	"$PY" -c 'import sys; print(max([len(l.rstrip("\n")) for l in open(sys.argv[1], encoding="utf-8")] or [0]))' "$1"
}

# as_nobody CMD...: run as uid/gid 65534 (permission tests); can_be_nobody
# says whether that is possible here (root, setpriv, and a build directory
# that others may enter).
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
can_be_nobody() {
	[ "$(id -u)" = 0 ] && command -v setpriv >/dev/null || return 1
	chmod 755 "$T"
	as_nobody "$DUMP" --help >/dev/null 2>&1
}
