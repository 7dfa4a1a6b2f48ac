#!/usr/bin/env bash
# Endings: exit, _exit, _Exit, quick_exit with their codes; death by
# SIGSEGV, SIGABRT, SIGTERM (raised and sent) with an ERROR span naming the
# signal and the same wait status as without the shim; SIGKILL loses the
# span and nothing else (everything committed decodes). A program's own
# SIGSEGV handler still runs, and sigaction() reports what it would
# without the shim.
. "$(dirname "$0")/preload_lib.sh"
V=$PROGS/preload_victim
[ -x "$V" ] || fail "$V not built"
ulimit -c 0
agent_start

status() { # status CMD...: prints the exit status, never fails
	set +e
	"$@" >/dev/null 2>&1
	echo $?
	set -e
}
pre() { LD_PRELOAD="$PRELOAD" "$@"; }

for m in "exit 3" "exit 0" "_exit 4" "_Exit 6" "quick 8" segv abort term; do
	# shellcheck disable=SC2086
	want=$(status "$V" $m)
	# shellcheck disable=SC2086
	got=$(status pre "$V" $m)
	[ "$want" = "$got" ] || fail "$m: status $got, want $want"
	echo "$m -> $got"
done

# A signal from outside, while it sleeps.
LD_PRELOAD="$PRELOAD" "$V" sleep 20000 >"$T/sleep.out" &
vp=$!
STARTED+=("$vp")
for _ in $(seq 200); do grep -q ready "$T/sleep.out" 2>/dev/null && break; sleep 0.025; done
kill -TERM "$vp"
set +e; wait "$vp"; rc=$?; set -e
[ $rc = 143 ] || fail "SIGTERM: status $rc"

# SIGKILL: no span for that process, nothing partial for anyone.
LD_PRELOAD="$PRELOAD" "$V" sleep 20000 >"$T/kill.out" &
kp=$!
STARTED+=("$kp")
for _ in $(seq 200); do grep -q ready "$T/kill.out" 2>/dev/null && break; sleep 0.025; done
sleep 0.1
kill -KILL "$kp"
set +e; wait "$kp"; rc=$?; set -e
[ $rc = 137 ] || fail "SIGKILL: status $rc"

# The program's own handler wins; queries see no shim.
want=$("$V" own-handler; echo "rc=$?")
got=$(pre "$V" own-handler; echo "rc=$?")
[ "$want" = "$got" ] || fail "own handler: '$got' vs '$want'"
want=$("$V" sigquery)
got=$(pre "$V" sigquery)
[ "$want" = "$got" ] || fail "sigaction view: '$got' vs '$want'"
# SIGINT ignored on entry (a background job's) stays ignored.
want=$(trap '' INT; "$V" sigquery)
got=$(trap '' INT; pre "$V" sigquery)
[ "$want" = "$got" ] || fail "ignored SIGINT: '$got' vs '$want'"

# No handlers at all: the span of a crash is lost, the crash is the same.
got=$(SPANRING_SIGNALS=none status pre "$V" segv)
[ "$got" = 139 ] || fail "SPANRING_SIGNALS=none segv: $got"
agent_stop

check "$kp" "$vp" <<'PY'
from preload_check import *
kp, vp = int(sys.argv[2]), int(sys.argv[3])
vs = [s for s in S.procs() if s["name"] == "preload_victim"]
by = {}
for s in vs:
    by.setdefault(tuple(s["attrs"]["process.command_args"][1:]), []).append(s)
def one(*args):
    got = by.get(args, [])
    expect(len(got) == 1, "one span for %s, got %d" % (args, len(got)))
    return got[0]
for args, code in ((("exit", "3"), 3), (("exit", "0"), 0), (("_exit", "4"), 4),
                   (("_Exit", "6"), 6), (("quick", "8"), 8)):
    s = one(*args)
    a = s["attrs"]
    expect(a["spanring.process.end"] == "exit" and a["process.exit.code"] == code,
           "%s: %s" % (args, a))
    expect(s["status"] == (2 if code else 0), "%s status %s" % (args, s["status"]))
for mode, sig in (("segv", "SIGSEGV"), ("abort", "SIGABRT"), ("term", "SIGTERM")):
    s = one(mode)
    a = s["attrs"]
    expect(a["spanring.process.end"] == "signal" and a["spanring.process.signal"] == sig and
           s["status"] == 2 and s["msg"] == "terminated by " + sig and
           "process.exit.code" not in a, "%s: %s" % (mode, s))
    expect(s["end"] >= s["start"], "times")
sent = [s for s in vs if s["attrs"]["process.pid"] == vp]
expect(len(sent) == 1 and sent[0]["attrs"]["spanring.process.signal"] == "SIGTERM", "sent SIGTERM")
expect(not [s for s in vs if s["attrs"]["process.pid"] == kp], "SIGKILL: no span")
h = one("own-handler")
expect(h["attrs"]["process.exit.code"] == 42, "own handler exits 42 through _exit")
expect(len(by.get(("segv",), [])) == 1, "SPANRING_SIGNALS=none: the second segv has no span")
print("%d victim spans" % len(vs))
PY
echo "ok: endings and signals"
