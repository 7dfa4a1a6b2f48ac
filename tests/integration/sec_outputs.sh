#!/usr/bin/env bash
# Issue 14, the agent's output files, with the real binary:
#  R5a  output files are created 0600 (a 0755 state directory no longer
#       exposes spans), or with exactly --output-mode / output_mode; a bad
#       mode is a configuration error naming the flag or the file line;
#  R10  an existing file that is not the exporter's own output (copies of
#       /etc/passwd and /bin/ls, {"a":1}, a text file) is refused at start
#       with an error naming it, and left byte for byte as it was, by the
#       file and the JSON exporter;
#  R15  errors about files and sockets name them: --file in a missing
#       directory, sockets under a regular file, a metrics port in use.
. "$(dirname "$0")/sec_lib.sh"
# start_fail ARGS...: the agent must exit 1 at start; its stderr in $T/start.log
start_fail() {
	"$AGENT" "$@" >/dev/null 2>"$T/start.log" &
	local p=$! i
	for i in $(seq 100); do kill -0 $p 2>/dev/null || break; sleep 0.05; done
	kill -0 $p 2>/dev/null && { kill $p; fail "agent started with: $*"; }
	wait $p
	local rc=$?
	[ $rc = 1 ] || fail "exit status $rc (want 1) for: $* ($(cat "$T/start.log"))"
}

# ---- R5a: modes
umask 022
start_agent --file "$T/out.pb" --json "$T/out.jsonl"
"$PROGS/sr-testprod" -S modes -n 20 >/dev/null 2>&1 || fail "producer"
stop_agent
for f in out.pb out.jsonl; do
	m=$(stat -c %a "$T/$f")
	[ "$m" = 600 ] || fail "$f created with mode $m (want 600)"
done
rm -f "$T/out.pb" "$T/out.jsonl"
umask 077
start_agent --file "$T/out.pb" --json "$T/out.jsonl" --output-mode 0640
"$PROGS/sr-testprod" -S modes -n 20 >/dev/null 2>&1 || fail "producer"
stop_agent
umask 022
for f in out.pb out.jsonl; do
	m=$(stat -c %a "$T/$f")
	[ "$m" = 640 ] || fail "$f created with mode $m (want 640 from --output-mode, umask 077)"
done
echo "output files: 0600 by default, --output-mode 0640 exactly"
out=$("$AGENT" --socket "$T/x.sock" --file "$T/y.pb" --output-mode=0777 2>&1); rc=$?
[ $rc = 2 ] || fail "exit status $rc for a bad mode"
grep -q "option '--output-mode=0777': key 'output_mode': invalid value '0777'" <<<"$out" || fail "$out"
printf 'output_mode = 0751\n' >"$T/bad.conf"
out=$("$AGENT" -c "$T/bad.conf" --check-config 2>&1) && fail "bad output_mode accepted"
grep -q "bad.conf:1: key 'output_mode': invalid value '0751'" <<<"$out" || fail "$out"
echo "a bad mode names the flag: $out"

# ---- R10: files that are not ours
mkdir "$T/f"
cp /etc/passwd "$T/f/passwd"
cp /bin/ls "$T/f/ls"
printf '{"a":1}' >"$T/f/a.json"
printf 'line one\nline two\nline three' >"$T/f/text"
for f in passwd ls a.json text; do
	cp "$T/f/$f" "$T/f/$f.orig"
	for exp in file json; do
		start_fail --socket "$T/r.sock" "--$exp" "$T/f/$f"
		grep -q "error cannot start the exporters: exporter $exp: $T/f/$f exists and is not spanring output" \
			"$T/start.log" || fail "--$exp $f: $(cat "$T/start.log")"
		cmp -s "$T/f/$f" "$T/f/$f.orig" || fail "--$exp changed $f"
	done
	echo "refused, unchanged: $f ($(stat -c %s "$T/f/$f") bytes)"
done

# ---- R15: paths named in errors
start_fail --socket "$T/r.sock" --file "$T/missing/dir/spans.pb"
grep -q "cannot start the exporters: exporter file: cannot create $T/missing/dir/spans.pb: No such file or directory" \
	"$T/start.log" || fail "missing directory: $(cat "$T/start.log")"
start_fail --socket "$T/r.sock" --json "$T/missing/spans.jsonl"
grep -q "exporter json: cannot create $T/missing/spans.jsonl" "$T/start.log" || fail "$(cat "$T/start.log")"
touch "$T/plain"
start_fail --socket "$T/plain/agent.sock" --null
grep -q "cannot start: cannot bind the registration socket $T/plain/agent.sock: Not a directory" \
	"$T/start.log" || fail "socket: $(cat "$T/start.log")"
start_fail --socket "$T/s2.sock" --control-socket "$T/plain/ctl.sock" --null
grep -q "cannot start: cannot bind the control socket $T/plain/ctl.sock: Not a directory" \
	"$T/start.log" || fail "control socket: $(cat "$T/start.log")"
# the holder binds a free port itself and only then names it (picking a
# port first and binding it later races with every other test)
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen()
open(sys.argv[1]+".tmp","w").write(str(s.getsockname()[1])); __import__("os").rename(sys.argv[1]+".tmp",sys.argv[1]); time.sleep(10)' "$T/held-port" &
holder=$!; STARTED+=($holder)
for i in $(seq 100); do [ -s "$T/held-port" ] && break; sleep 0.05; done
port=$(cat "$T/held-port") || fail "the port holder did not start"
start_fail --socket "$T/s3.sock" --null --metrics-port "$port"
grep -q "cannot start: metrics: cannot listen on 127.0.0.1:$port: Address already in use" "$T/start.log" ||
	fail "metrics port: $(cat "$T/start.log")"
echo "errors name the path: $(grep -h error "$T/start.log" | head -1)"
echo PASS
