#!/usr/bin/env bash
# Switching off, and inheriting: OTEL_SDK_DISABLED=true and
# SPANRING_TRACE=none leave programs and their environment exactly as
# without the shim and record nothing; SPANRING_EXCLUDE leaves one program
# alone; a set-user-ID program (secure execution) is left alone; a
# TRACEPARENT/TRACESTATE given by the caller is the root's parent, an
# unsampled one makes the whole tree unsampled (and still propagated).
. "$(dirname "$0")/preload_lib.sh"
V=$PROGS/preload_victim
agent_start

# What a program sees of its environment, minus LD_PRELOAD itself.
envlist='env | grep -v "^LD_PRELOAD=" | grep -v "^_=" | sort; echo hello | tr a-z A-Z'
for setting in OTEL_SDK_DISABLED=true OTEL_SDK_DISABLED=TRUE SPANRING_TRACE=none; do
	want=$(env "$setting" /bin/sh -c "$envlist" | grep -v "^${setting%%=*}=")
	got=$(env "$setting" LD_PRELOAD="$PRELOAD" /bin/sh -c "$envlist" | grep -v "^${setting%%=*}=")
	[ "$got" = "$want" ] || fail "$setting changes what programs see:
$(diff <(echo "$want") <(echo "$got"))"
done
# An inherited context passes through untouched when disabled.
tp=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
got=$(TRACEPARENT=$tp OTEL_SDK_DISABLED=true LD_PRELOAD="$PRELOAD" /bin/sh -c 'echo $TRACEPARENT')
[ "$got" = "$tp" ] || fail "disabled: TRACEPARENT changed to $got"

# Excluded program: no span of its own, its parent is traced.
SPANRING_EXCLUDE='preload_vic*' traced /bin/sh -c "'$V' exit 0; true" || fail "exclude"

# Secure execution: a set-user-ID copy (root running it as nobody).
suid=0
# (Not under ASan: an instrumented program does not run set-user-ID.)
if [ -z "$SAN" ] && [ "$(id -u)" = 0 ] && cp "$V" "$T/suid" && chown 65534 "$T/suid" && chmod 4755 "$T/suid" &&
	chmod 755 "$T"; then
	suid=1
	traced /bin/sh -c "'$T/suid' exit 0" || fail "setuid program under the shim"
fi

# Inherited context: parent of the root, flags, tracestate.
TRACEPARENT=$tp TRACESTATE='vendor=abc,other=x' traced /bin/sh -c 'echo "$TRACESTATE" >'"'$T/ts'"
[ "$(cat "$T/ts")" = "vendor=abc,other=x" ] || fail "TRACESTATE not passed on: $(cat "$T/ts")"
# Unsampled: nothing recorded, the flags travel on.
utp=00-11111111111111111111111111111111-2222222222222222-00
got=$(TRACEPARENT=$utp traced /bin/sh -c 'sh -c "echo \$TRACEPARENT"')
case "$got" in 00-11111111111111111111111111111111-*-00) ;; *) fail "unsampled propagation: $got" ;; esac
agent_stop

check "$tp" "$suid" <<'PY'
from preload_check import *
tp, suid = sys.argv[2], sys.argv[3] == "1"
print(S.tree_text())
trace, parent = tp.split("-")[1:3]
expect(not [s for s in S.procs() if s["name"] == "preload_victim"], "excluded program has no span")
expect(not [s for s in S.all if s["trace"] == "11111111111111111111111111111111"], "unsampled tree")
roots = [s for s in S.procs() if s["trace"] == trace]
expect(len(roots) == 1, "one span in the inherited trace: %d" % len(roots))
r = roots[0]
expect(r["parent"] == parent and (r["flags"] & 0x300) == 0x300, "remote parent: %s" % r)
shs = [s for s in S.procs() if s["name"] == "sh"]
expect(len(shs) == 2 + (1 if suid else 0), "the sh around excluded/setuid programs are traced")
for s in shs:
    expect(not S.children(s), "no child span under %s" % s["attrs"]["process.command_args"])
PY
echo "ok: disabled, excluded, secure, inherited"
