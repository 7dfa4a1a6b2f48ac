#!/usr/bin/env bash
# errno and return values of every interposed function are the program's
# own: the same transcript with and without the shim (every category on,
# spans of every kind recorded), for an ordinary program and for one that
# runs with the shim but without an agent.
. "$(dirname "$0")/preload_lib.sh"
E=$PROGS/preload_errno
[ -x "$E" ] || fail "$E not built"
agent_start
"$E" >"$T/plain.txt" 2>&1 || fail "preload_errno without the shim: $(cat "$T/plain.txt")"
SPANRING_TRACE=all traced "$E" >"$T/shim.txt" 2>&1 || fail "preload_errno under the shim"
diff -u "$T/plain.txt" "$T/shim.txt" || fail "the transcripts differ"
SPANRING_SOCKET=$T/nobody.sock SPANRING_TRACE=all traced "$E" >"$T/noagent.txt" 2>&1 \
	|| fail "preload_errno without an agent"
diff -u "$T/plain.txt" "$T/noagent.txt" || fail "the transcripts differ (no agent)"
agent_stop
check <<'PY'
from preload_check import *
p = S.proc("preload_errno")
names = sorted({c["name"] for c in S.children(p)})
for n in ("connect", "getaddrinfo", "wait", "fsync", "fdatasync", "sh"):
    expect(n in names, "%s spans recorded: %s" % (n, names))
PY
cat "$T/plain.txt"
echo "ok: errno and results unchanged"
