#!/usr/bin/env bash
# SECURITY.md R8: a process that swaps a FIFO (and other file types) onto
# the fd number spanring-dump is about to open, between dump's readlinkat
# and its open of /proc/PID/fd/N. Before the fix the blocking open of the
# FIFO (no writer) hung dump for good (13 of 100 runs here). Now dump must
# never hang, never open a device or FIFO for reading, still show the real
# ring, and say plainly which fd it skipped.
. "$(dirname "$0")/dump_lib.sh"
SWAP=$BUILD/tests/progs/dump_swapper
[ -x "$SWAP" ] || { echo "SKIP: $SWAP not built"; exit 77; }

# run_many N WHAT CMD...: N runs of CMD (PID substituted) with a 3 s limit each.
hits=0
run_many() {
	local n=$1 what=$2 i rc
	shift 2
	for ((i = 0; i < n; i++)); do
		timeout -k 1 3 "$@" >"$T/o" 2>"$T/e"
		rc=$?
		[ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "$what: hung (run $i of $n, killed by timeout)"
		expect_rc 0 "$rc" "$what (run $i): $(head -c 300 "$T/e")"
		grep -q "swapper" "$T/o" || fail "$what: the real ring was not shown: $(head -c 300 "$T/o")"
		# Only the skip message, naming the fd and what it was.
		if grep -v -E "^spanring-dump: pid $P: fd 2[0-9][0-9] named like a ring is (a FIFO|a character device|a directory|a regular file|a socket|another file) when opened, not a (spanring )?memfd; skipped$|^-- " "$T/e" | grep -q .; then
			fail "$what: unexpected message: $(head -c 300 "$T/e")"
		fi
		grep -q "when opened" "$T/e" && hits=$((hits + 1))
	done
	return 0
}

start_swapper() {
	"$SWAP" "$T" "$1" >"$T/swap.out" 2>&1 &
	P=$!
	CHILDREN+=("$P")
	wait_for "$T/swap.out" "^ready" 10
}

# A FIFO with a read end and no writer: the blocking open that hung.
start_swapper fifo
run_many 100 "show --no-agent (FIFO swapped in)" "$DUMP" show --no-agent "$P"
run_many 30 "follow --no-agent PID (FIFO swapped in)" "$DUMP" follow --no-agent --from-tail --for 20ms "$P"
[ "$hits" -gt 0 ] || fail "the swap never hit the window in 130 runs: the test did not test anything"
ok "FIFO swapped in: 130 runs, none hung, $hits skipped the swapped fd with a message"
kill "$P"
wait "$P" 2>/dev/null

# Every other kind too: a device, a directory, a regular file, a socket, a memfd that is no ring.
hits=0
start_swapper all
run_many 60 "show --no-agent (any file swapped in)" "$DUMP" show --no-agent "$P"
run_many 20 "follow --no-agent PID (any file swapped in)" "$DUMP" follow --no-agent --from-tail --for 20ms "$P"
ok "any file type swapped in: 80 runs, none hung, $hits skipped the swapped fd"
kill "$P"
wait "$P" 2>/dev/null

# The attack as it happens: an unprivileged user's process, and root
# following every process of /proc (no PID given).
if can_be_nobody; then
	mkdir -p "$T/nobody"
	chown 65534:65534 "$T/nobody"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$SWAP" "$T/nobody" fifo >"$T/swap.out" 2>&1 &
	P=$!
	CHILDREN+=("$P")
	wait_for "$T/swap.out" "^ready" 10
	for ((i = 0; i < 20; i++)); do
		timeout -k 1 5 "$DUMP" --no-agent follow --for 50ms >"$T/o" 2>"$T/e"
		rc=$?
		[ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "root's follow of /proc hung on nobody's FIFO (run $i)"
		[ "$rc" -lt 128 ] || fail "follow crashed ($rc)"
		grep -q "following pid $P (swapper)" "$T/o" || fail "nobody's real ring not followed: $(head -c 300 "$T/o")"
	done
	ok "root following all of /proc, nobody's process swapping a FIFO in: 20 runs, none hung"
else
	echo "skip: the run as another uid (needs root and setpriv)"
fi
echo "PASS"
