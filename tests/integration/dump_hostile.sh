#!/usr/bin/env bash
# spanring-dump against rings that break the ABI (tests/progs/dump_producer
# hostile KIND): each ends with its own message and exit code, prints what
# was valid before the fault, never crashes (also under ASan), and never
# writes to the ring.
. "$(dirname "$0")/dump_lib.sh"

# kind  exit  message  spans-printed
cases=(
	"good      0 -                                   2"
	"framing   7 truncated.or.malformed.record       2"
	"head      7 head.beyond.tail                    2"
	"abi       6 ABI.mismatch:.ring.ABI.99           0"
	"magic     7 header:.bad.magic                   0"
	"offsets   7 offsets.disagree                    0"
	"spanbytes 7 does.not.decode.as.a.Span           2"
	"deep      7 nested.deeper.than.32               2"
	"biglen    7 slot.0.at.byte                      2"
	"scope     7 scope.offset.beyond.scope_len       2"
)
for c in "${cases[@]}"; do
	read -r kind want msg nspans <<<"$c"
	"$PROD" hostile "$kind" >"$T/$kind.out" 2>&1 &
	P=$!
	CHILDREN+=("$P")
	wait_for "$T/$kind.out" "^ready" 10
	RINGFD=$(for f in /proc/$P/fd/*; do [[ "$(readlink "$f")" == "/memfd:spanring"* ]] && echo "$f"; done | head -n1)
	before=$(sha256sum <"$RINGFD")
	"$DUMP" show --no-agent "$P" >"$T/$kind.show" 2>"$T/$kind.err"
	expect_rc "$want" $? "show of a '$kind' ring"
	if [ "$msg" != - ]; then
		grep -Eq "$msg" "$T/$kind.err" || fail "$kind: message: $(cat "$T/$kind.err")"
	else
		[ ! -s "$T/$kind.err" ] || fail "$kind: unexpected message: $(cat "$T/$kind.err")"
	fi
	got=$(grep -c "hostile.good" "$T/$kind.show")
	[ "$got" = "$nspans" ] || fail "$kind: $got valid spans printed, want $nspans"
	# The same through the JSON form: valid spans still parse.
	"$DUMP" show --json --no-agent "$P" >"$T/$kind.json" 2>/dev/null
	expect_rc "$want" $? "show --json of a '$kind' ring"
	"$PY" -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$T/$kind.json" ||
		fail "$kind: --json output is not JSON lines"
	[ "$(wc -l <"$T/$kind.json")" = "$nspans" ] || fail "$kind: JSON lines"
	# follow reads the same ring: reports, does not crash, goes on.
	"$DUMP" follow --no-agent --from-tail --for 300ms "$P" >"$T/$kind.fol" 2>"$T/$kind.ferr"
	rc=$?
	[ "$rc" -lt 128 ] || fail "$kind: follow crashed ($rc)"
	[ "$rc" = "$want" ] ||
		fail "$kind: follow exit $rc, want $want"
	after=$(sha256sum <"$RINGFD")
	[ "$before" = "$after" ] || fail "$kind: the ring changed"
	kill "$P"
	wait "$P" 2>/dev/null
	ok "$kind: exit $want, $nspans valid spans, ring untouched"
done
echo "PASS"
