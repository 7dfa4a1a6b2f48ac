#!/usr/bin/env bash
# docs/SECURITY.md R1 and R3, the attacks themselves, as other uids:
#  R1  a listener of another uid on the victim's socket path (given by
#      SPANRING_SOCKET, or squatting the per-user default, old and new)
#      receives no ring from the library, nor from the shim (exit, death
#      by a signal, the registration thread); SPANRING_AGENT_UID hands it
#      over; the victim's own agent at the default path and the root
#      system agent at /run/spanring/agent.sock still get the rings.
#  R3  a set-user-ID root program linked with libspanring, run by nobody
#      with SPANRING_SOCKET pointing at nobody's listener: the listener
#      gets nothing (a plain copy of the program, as a control, does).
. "$(dirname "$0")/preload_lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (squatters and producers run as other uids)"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: setpriv needed"; exit 77; }
VIC=65534 SQ=65533
asV() { setpriv --reuid=$VIC --regid=$VIC --clear-groups "$@"; }
asS() { setpriv --reuid=$SQ --regid=$SQ --clear-groups "$@"; }
VP=$PROGS/preload_victim
API=$PROGS/sr-apiprod
SQUAT=$PROGS/sr-squat
unset SPANRING_SOCKET XDG_RUNTIME_DIR
chmod 755 "$T"
mkdir -m 1777 "$T/pub"
ulimit -c 0
SQUATS=()
CREATED=()
sec_cleanup() {
	local p
	for p in "${SQUATS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${CREATED[@]}"; do rm -rf "$p"; done
	pl_cleanup
}
trap sec_cleanup EXIT

# squat UID PATH NAME: a listener of UID on PATH, result in $T/pub/NAME.res
squat() {
	setpriv --reuid="$1" --regid="$1" --clear-groups "$SQUAT" "$2" "$T/pub/$3.res" &
	SQUATS+=($!)
	eval "SQ_$3=$!"
	local i
	for i in $(seq 200); do [ -S "$2" ] && return 0; sleep 0.025; done
	fail "squatter $3 did not start"
}
# squat_fds NAME: stop squatter NAME; FDS: how many fds it received
squat_fds() {
	local pid
	eval "pid=\$SQ_$1"
	kill -TERM "$pid"
	local rc=0
	wait "$pid" || rc=$?
	[ -f "$T/pub/$1.res" ] || fail "squatter $1: no result (status $rc)"
	FDS=$(sed -n 's/.*fds=\([0-9]*\).*/\1/p' "$T/pub/$1.res")
}
# producers ENV...: as the victim: the library, the shim (exit, a death by
# SIGTERM, the registration thread), each bounded in time
producers() {
	asV env SPANRING_EXCLUDE=timeout "$@" timeout 20 "$API" >/dev/null 2>>"$T/prod.err" || true
	asV env SPANRING_EXCLUDE=timeout "$@" LD_PRELOAD="$PRELOAD" timeout 20 "$VP" exit 0 >/dev/null 2>>"$T/prod.err" || true
	asV env SPANRING_EXCLUDE=timeout "$@" LD_PRELOAD="$PRELOAD" timeout 20 "$VP" term >/dev/null 2>>"$T/prod.err" || true
	asV env SPANRING_EXCLUDE=timeout "$@" LD_PRELOAD="$PRELOAD" timeout 20 "$VP" closeall 1 >/dev/null 2>>"$T/prod.err" || true
}

# --- R1 (a): SPANRING_SOCKET names a socket another uid listens on.
squat $SQ "$T/pub/agent.sock" given
producers SPANRING_SOCKET="$T/pub/agent.sock" SPANRING_DEBUG=1 SPANRING_EXIT_TIMEOUT_MS=300
squat_fds given; n=$FDS
[ "$n" = 0 ] || fail "R1: a squatter of uid $SQ received $n ring fds through SPANRING_SOCKET"
grep -q "not handing the ring to $T/pub/agent.sock: it is served by uid $SQ" "$T/prod.err" ||
	fail "R1: the refusal is not reported: $(cat "$T/prod.err")"
echo "ok: a squatter named by SPANRING_SOCKET gets nothing"
# ... unless SPANRING_AGENT_UID names its uid.
squat $SQ "$T/pub/agent.sock" trusted
asV env SPANRING_SOCKET="$T/pub/agent.sock" SPANRING_AGENT_UID=$SQ timeout 20 "$API" >/dev/null
squat_fds trusted; n=$FDS
[ "$n" -ge 1 ] || fail "R1: SPANRING_AGENT_UID=$SQ did not hand the ring over ($n fds)"
echo "ok: SPANRING_AGENT_UID hands the ring to that uid"

# --- R1 (b): the per-user default path, squatted (the old and the new name).
UDIR=/tmp/spanring-$VIC
if [ -e /run/spanring/agent.sock ]; then
	echo "note: /run/spanring/agent.sock exists (a system agent?): default-path parts skipped"
	SYSTEM=busy
elif [ -e "$UDIR" ] || [ -e "$UDIR.sock" ]; then
	echo "note: $UDIR already exists: default-path parts skipped"
	SYSTEM=busy
else
	SYSTEM=free
	CREATED+=("$UDIR" "$UDIR.sock")
	mkdir -m 0777 "$UDIR" && chown $SQ:$SQ "$UDIR"
	squat $SQ "$UDIR/agent.sock" newpath
	squat $SQ "$UDIR.sock" oldpath
	: >"$T/prod.err"
	producers SPANRING_DEBUG=1 SPANRING_EXIT_TIMEOUT_MS=300
	squat_fds newpath; n=$FDS; squat_fds oldpath; m=$FDS
	[ "$n" = 0 ] && [ "$m" = 0 ] ||
		fail "R1: squatters of the default paths received $n + $m ring fds"
	grep -q "not using $UDIR/agent.sock: its directory is not private to uid $VIC" \
		"$T/prod.err" || fail "R1: the squatted directory is not reported: $(cat "$T/prod.err")"
	# The victim's own agent refuses the squatted directory, naming it.
	set +e
	asV "$AGENT" --null >"$T/vagent.out" 2>&1
	rc=$?
	set -e
	[ $rc != 0 ] && grep -q "$UDIR/agent.sock" "$T/vagent.out" ||
		fail "R1: the victim's agent started in a squatted directory: $(cat "$T/vagent.out")"
	rm -rf "$UDIR" "$UDIR.sock"
	echo "ok: squatters of the per-user default paths get nothing; the agent refuses"

	# --- R1 (c): the victim's own agent at the default path gets the rings.
	mkdir -m 0700 "$T/v" && chown $VIC:$VIC "$T/v"
	setpriv --reuid=$VIC --regid=$VIC --clear-groups "$AGENT" --file "$T/v/spans.pb" \
		--batch-max-age=1ms 2>"$T/v.log" &
	va=$!
	STARTED+=("$va")
	for _ in $(seq 200); do [ -S "$UDIR/agent.sock" ] && break; sleep 0.025; done
	[ -S "$UDIR/agent.sock" ] || fail "the victim's agent did not start: $(cat "$T/v.log")"
	[ "$(stat -c '%a %u' "$UDIR")" = "700 $VIC" ] || fail "$UDIR: $(stat -c '%a %u' "$UDIR")"
	producers
	kill -TERM $va; wait $va || fail "victim agent exit status $?: $(tail -n 5 "$T/v.log")"
	"$DECODE" "$T/v/spans.pb" >"$T/v.jsonl"
	a=$(grep -c '"name":"apiprod-span"' "$T/v.jsonl" || true)
	p=$(grep -c '"spanring.process.end"' "$T/v.jsonl" || true)
	[ "$a" = 3 ] && [ "$p" = 3 ] || fail "R1: the victim's own agent got $a API spans, $p process spans"
	echo "ok: the victim's own agent at $UDIR/agent.sock gets its rings"
	rm -rf "$UDIR"

	# --- R1 (d): the root system agent, found without any setting.
	[ -d /run/spanring ] || { mkdir -m 0755 /run/spanring; CREATED+=(/run/spanring); }
	CREATED+=(/run/spanring/agent.sock /run/spanring/agent.sock.ctl)
	"$AGENT" --socket /run/spanring/agent.sock --file "$T/sys.pb" --batch-max-age=1ms \
		2>"$T/sys.log" &
	sa=$!
	STARTED+=("$sa")
	for _ in $(seq 200); do [ -S /run/spanring/agent.sock ] && break; sleep 0.025; done
	producers
	kill -TERM $sa; wait $sa || fail "system agent exit status $?: $(tail -n 5 "$T/sys.log")"
	"$DECODE" "$T/sys.pb" >"$T/sys.jsonl"
	a=$(grep -c '"name":"apiprod-span"' "$T/sys.jsonl" || true)
	p=$(grep -c '"spanring.process.end"' "$T/sys.jsonl" || true)
	[ "$a" = 3 ] && [ "$p" = 3 ] || fail "R1: the system agent got $a API spans, $p process spans"
	rm -f /run/spanring/agent.sock /run/spanring/agent.sock.ctl
	echo "ok: the root system agent gets a non-root process's rings by default"
fi

# --- R3: a set-user-ID root program and the environment.
if findmnt -n -o OPTIONS -T "$T" | tr ',' '\n' | grep -qx nosuid; then
	echo "note: $T is on a nosuid filesystem: R3 skipped"
else
	mkdir -m 0755 "$T/suid"
	cp "$API" "$T/suid/prog"
	cp "$API" "$T/suid/plain"
	chown root:root "$T/suid/prog"
	chmod 4755 "$T/suid/prog"
	chmod 0755 "$T/suid/plain"
	squat $VIC "$T/pub/nobody.sock" suid
	asV env SPANRING_SOCKET="$T/pub/nobody.sock" timeout 20 "$T/suid/prog" >"$T/suid.out" 2>&1 ||
		fail "the setuid program failed: $(cat "$T/suid.out")"
	squat_fds suid; n=$FDS
	[ "$n" = 0 ] || fail "R3: nobody's listener received $n ring fds from a setuid-root program"
	squat $VIC "$T/pub/nobody.sock" control
	asV env SPANRING_SOCKET="$T/pub/nobody.sock" timeout 20 "$T/suid/plain" >/dev/null 2>&1 || true
	squat_fds control; n=$FDS
	[ "$n" -ge 1 ] || fail "R3 control: the same program without set-user-ID sent nothing"
	echo "ok: a setuid-root program ignores SPANRING_SOCKET (its owner's listener gets nothing)"
fi
echo "ok: socket squatting and set-user-ID"
