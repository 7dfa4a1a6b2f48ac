#!/usr/bin/env bash
# spanring-dump show on a live producer with no agent: the ring read
# read-only through /proc/PID/fd, header and slots, every committed span
# (OTLP/JSON checked field by field by Python), the waterfall, filters,
# and the errors: no such pid, no ring, permission denied.
. "$(dirname "$0")/dump_lib.sh"

start_producer shop 4
P=$PRODUCER
M=$T/shop.manifest
[ "$(wc -l <"$M")" = 12 ] || fail "manifest has $(wc -l <"$M") lines"

# The ring bytes before: show must not change a single one.
RINGFD=$(for f in /proc/$P/fd/*; do [[ "$(readlink "$f")" == "/memfd:spanring"* ]] && echo "$f"; done | head -n1)
[ -n "$RINGFD" ] || fail "no ring fd in /proc/$P/fd"
before=$(sha256sum <"$RINGFD")

"$DUMP" show "$P" >"$T/show.txt" 2>"$T/show.err"
expect_rc 0 $? "show"
grep -q "^ring of pid $P: service shop" "$T/show.txt" || fail "no ring line: $(head -3 "$T/show.txt")"
# The producer writes the minor of the tree it was built from.
minor=$(sed -n 's/^#define SPANRING_ABI_MINOR \([0-9]*\)u$/\1/p' "$SRC/include/spanring/ring_abi.h")
[ -n "$minor" ] || fail "no SPANRING_ABI_MINOR in ring_abi.h"
grep -q "ABI 1\.$minor," "$T/show.txt" || fail "no ABI 1.$minor line: $(grep ABI "$T/show.txt")"
grep -q "agent: none has adopted this ring" "$T/show.txt" || fail "agent line"
grep -Eq "^ +0 +[0-9]+ +0 +[0-9]+ " "$T/show.txt" || fail "slot 0 line (tail 0)"
[ "$(grep -c ' shop  ' "$T/show.txt")" = 12 ] || fail "want 12 span lines: $(cat "$T/show.txt")"
grep -q "12 spans in the ring" "$T/show.txt" || fail "span count line"
grep -q "GET /item/2 .*ERROR(boom 2)" "$T/show.txt" || fail "error status on the line"
grep -q "url.path=/item/3" "$T/show.txt" || fail "key attributes on the line"
ok "show: header, slots, 12 span lines"

"$DUMP" show --json "$P" >"$T/show.json" 2>"$T/show.err"
expect_rc 0 $? "show --json"
"$PY" "$CMP" "$T/show.json" "$M" --exact --count 12 || fail "show --json differs from the manifest"
ok "show --json matches the manifest field by field"

# Filters (checked against the manifest through the JSON form).
"$DUMP" show --json --name db.query "$P" >"$T/f1.json" &&
	"$PY" "$CMP" "$T/f1.json" "$M" --exact --where name=db.query >/dev/null || fail "--name"
"$DUMP" show --json --min-duration 20ms "$P" >"$T/f2.json" &&
	"$PY" "$CMP" "$T/f2.json" "$M" --exact --count 1 --where name="GET /item/1" >/dev/null ||
	fail "--min-duration 20ms: $(cat "$T/f2.json" | head -c 300)"
"$DUMP" show --json --service 'sh*' "$P" >"$T/f3.json" && [ "$(wc -l <"$T/f3.json")" = 12 ] ||
	fail "--service glob match"
"$DUMP" show --json --service nomatch "$P" >"$T/f4.json" && [ ! -s "$T/f4.json" ] ||
	fail "--service that matches nothing"
TRACE=$(sed -n '4p' "$M" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["traceId"])')
"$DUMP" show --json --lines --trace "${TRACE:0:12}" "$P" >"$T/f5.json" &&
	"$PY" "$CMP" "$T/f5.json" "$M" --exact --count 3 --where traceId="$TRACE" >/dev/null ||
	fail "--trace prefix"
ok "filters: --name, --min-duration, --service, --trace"

# Waterfall of one trace, scaled to $COLUMNS.
COLUMNS=80 "$DUMP" show --trace "$TRACE" "$P" >"$T/wf.txt" 2>&1
expect_rc 0 $? "show --trace (waterfall)"
grep -q "^trace $TRACE  3 spans, 40.000ms" "$T/wf.txt" || fail "waterfall title: $(cat "$T/wf.txt")"
grep -q "^GET /item/1 \[shop\]" "$T/wf.txt" || fail "waterfall root"
grep -Eq "^(├─|\|-) db.query" "$T/wf.txt" || fail "waterfall child db.query"
grep -Eq "^(└─|\`-) render" "$T/wf.txt" || fail "waterfall last child render"
sed -n '/^GET \/item\/1/,$p' "$T/wf.txt" >"$T/wf.rows"
cols=$(max_columns "$T/wf.rows")
[ "$cols" -le 80 ] && [ "$cols" -ge 70 ] || fail "waterfall rows are $cols columns, want about 80"
COLUMNS=140 "$DUMP" show --ascii --trace "$TRACE" "$P" >"$T/wf2.txt"
sed -n '/^GET \/item\/1/,$p' "$T/wf2.txt" >"$T/wf2.rows"
cols=$(max_columns "$T/wf2.rows")
[ "$cols" -le 140 ] && [ "$cols" -ge 120 ] || fail "ASCII waterfall rows are $cols columns, want about 140"
grep -q '^|- db.query.*|  *#\+  *|' "$T/wf2.txt" || fail "ASCII waterfall bar: $(cat "$T/wf2.txt")"
ok "waterfall: tree and bars at 80 and 140 columns"

after=$(sha256sum <"$RINGFD")
[ "$before" = "$after" ] || fail "the ring changed while being shown"
ok "the ring is byte for byte unchanged"

# Errors: no such pid, a process without a ring, permission denied.
"$DUMP" show notapid >/dev/null 2>"$T/e1"
expect_rc 2 $? "show of an invalid pid"
"$DUMP" show --no-agent 999999999 >/dev/null 2>"$T/e1"
expect_rc 4 $? "show of a pid that cannot exist"
sleep 30 &
SLEEPER=$!
CHILDREN+=("$SLEEPER")
"$DUMP" show --no-agent "$SLEEPER" >/dev/null 2>"$T/e2"
expect_rc 4 $? "show of a process without a ring"
grep -q "has no spanring ring" "$T/e2" || fail "message: $(cat "$T/e2")"
kill "$SLEEPER"; wait "$SLEEPER" 2>/dev/null
"$DUMP" show --no-agent "$SLEEPER" >/dev/null 2>"$T/e3"
expect_rc 4 $? "show of a pid that does not exist"
grep -q "no such process" "$T/e3" || fail "message: $(cat "$T/e3")"
ok "no such pid / no ring: exit 4"

if can_be_nobody; then
	as_nobody "$DUMP" show --no-agent "$P" >/dev/null 2>"$T/e4"
	expect_rc 5 $? "show of another user's process"
	grep -q "permission denied" "$T/e4" || fail "message: $(cat "$T/e4")"
	ok "permission denied: exit 5"
else
	echo "note: cannot run as another user here: permission test skipped"
fi
echo "PASS"
