#!/usr/bin/env bash
# SECURITY.md R12: spanring-dump names the producer, not the agent, when it
# reads /proc (the agent holds a copy of every ring's fd); and a --socket
# or --control given on the command line that cannot be reached is an
# error naming it (exit 3), not a silent fall back to /proc.
. "$(dirname "$0")/dump_lib.sh"

start_agent
svc=pidtest$$
start_producer "$svc" 3 "$SOCK"
P=$PRODUCER
for i in $(seq 100); do grep -q "registered: pid $P" "$T/agent.log" && break; sleep 0.05; done
grep -q "registered: pid $P" "$T/agent.log" || fail "producer not registered: $(cat "$T/agent.log")"
# The agent holds the ring too (the bug's premise).
held=0
for f in /proc/$AGENT/fd/*; do [[ "$(readlink "$f")" == /memfd:spanring* ]] && held=1; done
[ "$held" = 1 ] || fail "the agent holds no ring fd: the test does not test anything"

# follow without the agent, every process: the ring is the producer's.
"$DUMP" --no-agent follow --json --service "$svc" --for 6s >"$T/f.json" 2>"$T/f.err" &
F=$!
CHILDREN+=("$F")
wait_for "$T/f.err" "($svc)" 10
sleep 0.3
kill -USR1 "$P"
wait_for "$T/$svc.out" "^more 6"
sleep 0.5
kill -TERM "$P"
wait "$P" 2>/dev/null
wait "$F" # --for 6s: the agent keeps its copy for a while after the exit
rc=$?
# It reads every process's rings: another test's hostile ring may add 4-7.
[ "$rc" -lt 128 ] && [ "$rc" != 1 ] && [ "$rc" != 2 ] && [ "$rc" != 3 ] ||
	fail "follow --no-agent: exit $rc: $(grep -v '^-- ' "$T/f.err" | head -3)"
grep -q "following pid $P ($svc)\$" "$T/f.err" || fail "follow did not name the producer: $(grep "$svc" "$T/f.err")"
if grep "($svc)" "$T/f.err" | grep -v "following pid $P ($svc)\$" | grep -q .; then
	fail "follow named another pid (the agent is $AGENT): $(grep "$svc" "$T/f.err")"
fi
grep -q "pid $P exited" "$T/f.err" || fail "follow did not notice the producer's exit: $(cat "$T/f.err")"
[ "$(grep -c "($svc)" "$T/f.err")" = 1 ] || fail "the ring was followed more than once: $(grep "$svc" "$T/f.err")"
"$PY" "$CMP" "$T/f.json" "$T/$svc.manifest" --subset --count 9 || fail "follow output"
ok "follow --no-agent: the ring followed once, as pid $P's (agent $AGENT), not again after it exited"

start_producer "$svc" 2 "$SOCK"
P=$PRODUCER
for i in $(seq 100); do grep -q "registered: pid $P" "$T/agent.log" && break; sleep 0.05; done
"$DUMP" --no-agent show "$P" >"$T/s.txt" 2>"$T/e"
expect_rc 0 $? "show PID"
grep -q "^ring of pid $P: service $svc" "$T/s.txt" || fail "show PID header: $(head -n 2 "$T/s.txt")"
# show of the agent's pid: its copies, each named by its producer.
"$DUMP" --no-agent show "$AGENT" >"$T/s.txt" 2>"$T/e"
expect_rc 0 $? "show AGENTPID"
grep -q "^ring of pid $P (read through pid $AGENT, which holds it but does not write it): service $svc" "$T/s.txt" ||
	fail "show AGENTPID: $(grep "^ring" "$T/s.txt")"
ok "show: the producer named, also when the ring is read through the agent's fd"

# A --socket given that cannot be reached: exit 3, the path named.
for cmd in "show $P" "follow --for 200ms $P" "follow --for 200ms"; do
	# shellcheck disable=SC2086
	"$DUMP" --socket "$T/typo.sock" $cmd >/dev/null 2>"$T/e"
	expect_rc 3 $? "--socket typo $cmd"
	grep -q "$T/typo.sock" "$T/e" || fail "--socket typo $cmd: message does not name it: $(cat "$T/e")"
	# shellcheck disable=SC2086
	"$DUMP" --control "$T/typo.ctl" $cmd >/dev/null 2>"$T/e"
	expect_rc 3 $? "--control typo $cmd"
	grep -q "$T/typo.ctl" "$T/e" || fail "--control typo $cmd: message: $(cat "$T/e")"
done
"$DUMP" --socket "$T/typo.sock" --no-agent show "$P" >/dev/null 2>"$T/e"
expect_rc 2 $? "--socket with --no-agent"
# The right --socket works; the default socket (none there) still falls back to /proc.
"$DUMP" --socket "$SOCK" show "$P" >/dev/null 2>"$T/e"
expect_rc 0 $? "--socket SOCK show: $(cat "$T/e")"
SPANRING_SOCKET=$T/default-nothing.sock XDG_RUNTIME_DIR=$T "$DUMP" show "$P" >/dev/null 2>"$T/e"
expect_rc 0 $? "default socket absent: show through /proc: $(cat "$T/e")"
ok "an unreachable --socket/--control is exit 3 naming the path; the default still falls back"

# The agent asked for by --socket goes away during follow: said once, no /proc scan instead.
"$DUMP" --socket "$SOCK" follow --json --for 5s >"$T/g.json" 2>"$T/g.err" &
F=$!
CHILDREN+=("$F")
wait_for "$T/g.err" "following pid $P ($svc)" 10
kill -TERM "$AGENT"
wait "$AGENT" 2>/dev/null
wait "$F"
expect_rc 0 $? "follow --socket, agent gone"
[ "$(grep -c "the agent at $SOCK.ctl stopped answering; following the rings already open" "$T/g.err")" = 1 ] ||
	fail "follow --socket without its agent: $(cat "$T/g.err")"
ok "follow --socket: the agent going away is said once, and follow keeps to its rings"
echo "PASS"
