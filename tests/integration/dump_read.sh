#!/usr/bin/env bash
# spanring-dump read of the real agent's output: the file exporter's
# length-delimited protobuf (also rotated: file -> file.1) and the OTLP/JSON
# lines exporter, compared field by field with what the producers wrote;
# truncated and corrupt files end with exit 8 after the valid records.
. "$(dirname "$0")/dump_lib.sh"

start_agent --file.rotate-bytes=4K --file.rotate-keep=20
start_producer shop 6 "$SOCK"
A=$PRODUCER
start_producer billing 4 "$SOCK"
B=$PRODUCER
kill -USR1 "$A"
wait_for "$T/shop.out" "^more 12"
kill -TERM "$A" "$B"
wait "$A" "$B" 2>/dev/null
TOTAL=$(( (12 + 4) * 3 ))
cat "$T/shop.manifest" "$T/billing.manifest" >"$T/all.manifest"
[ "$(wc -l <"$T/all.manifest")" = "$TOTAL" ] || fail "manifests"

# Every rotated piece, oldest first.
files() { ls -1 "$T"/spans.pb.* 2>/dev/null | sort -t. -k3,3nr; echo "$T/spans.pb"; }
for i in $(seq 100); do
	n=$("$DUMP" read --json $(files) 2>/dev/null | wc -l)
	j=$("$DUMP" read --json "$T/spans.jsonl" 2>/dev/null | wc -l)
	[ "$n" = "$TOTAL" ] && [ "$j" = "$TOTAL" ] && break
	sleep 0.1
done
[ "$n" = "$TOTAL" ] || fail "the agent's file holds $n spans, want $TOTAL: $(cat "$T/agent.log")"
[ -e "$T/spans.pb.1" ] || fail "the file exporter did not rotate (test needs file.1)"
ok "agent exported $TOTAL spans ($(files | wc -l) protobuf files, rotated)"

"$DUMP" read --json $(files) >"$T/pb.json"
expect_rc 0 $? "read --json of the protobuf files"
"$PY" "$CMP" "$T/pb.json" "$T/all.manifest" --exact --count "$TOTAL" || fail "protobuf file content"
"$DUMP" read --json "$T/spans.jsonl" >"$T/js.json"
expect_rc 0 $? "read --json of the OTLP/JSON lines"
"$PY" "$CMP" "$T/js.json" "$T/all.manifest" --exact --count "$TOTAL" || fail "JSON lines content"
"$DUMP" read --format json --json - <"$T/spans.jsonl" >"$T/stdin.json"
expect_rc 0 $? "read - (stdin, JSON)"
cmp -s "$T/stdin.json" "$T/js.json" || fail "stdin read differs"
ok "both exporters' files decode to exactly what was produced"

"$DUMP" read "$T/spans.pb" "$T/spans.jsonl" >"$T/lines.txt"
expect_rc 0 $? "read (lines)"
grep -q " billing  .* GET /item/0 " "$T/lines.txt" || fail "human lines: $(head -3 "$T/lines.txt")"
"$DUMP" read --service billing --name render --json "$T/spans.jsonl" >"$T/f.json"
"$PY" "$CMP" "$T/f.json" "$T/all.manifest" --exact --count 4 --where service=billing --where name=render ||
	fail "read with filters"
TRACE=$(sed -n '1p' "$T/billing.manifest" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["traceId"])')
COLUMNS=100 "$DUMP" read --trace "$TRACE" $(files) >"$T/wf.txt"
grep -q "^trace $TRACE  3 spans" "$T/wf.txt" || fail "waterfall from files: $(cat "$T/wf.txt")"
ok "lines, filters and the waterfall from files"

# Truncated and corrupt files: the valid part, then exit 8.
BIG=$T/spans.pb
size=$(stat -c %s "$BIG")
head -c $((size - 5)) "$BIG" >"$T/cut.pb"
good=$("$DUMP" read --json "$BIG" | wc -l)
"$DUMP" read --json "$T/cut.pb" >"$T/cut.json" 2>"$T/cut.err"
expect_rc 8 $? "read of a truncated protobuf file"
grep -q "truncated: record [0-9]* at byte [0-9]* announces" "$T/cut.err" || fail "message: $(cat "$T/cut.err")"
n=$(wc -l <"$T/cut.json")
[ "$n" -lt "$good" ] || fail "truncated file: $n spans, want fewer than $good"
"$PY" "$CMP" "$T/cut.json" "$T/all.manifest" --subset >/dev/null || fail "spans before the cut"
printf '\x85' >"$T/cutvarint.pb"
"$DUMP" read "$T/cutvarint.pb" >/dev/null 2>"$T/e"
expect_rc 8 $? "read of a cut length prefix"
grep -q "length prefix is cut off" "$T/e" || fail "message: $(cat "$T/e")"
{ cat "$BIG"; printf '\x05\xff\xff\xff\xff\xff'; cat "$BIG"; } >"$T/bad.pb"
"$DUMP" read --json "$T/bad.pb" >"$T/bad.json" 2>"$T/e"
expect_rc 8 $? "read of a file with an undecodable record"
grep -q "does not decode as an ExportTraceServiceRequest" "$T/e" || fail "message: $(cat "$T/e")"
[ "$(wc -l <"$T/bad.json")" = $((2 * good)) ] || fail "records around the bad one must be read"
head -c 3000 /dev/urandom >"$T/random.bin"
"$DUMP" read --format pb "$T/random.bin" >/dev/null 2>"$T/e"
rc=$?
[ "$rc" = 8 ] || [ "$rc" = 0 ] || fail "random bytes: exit $rc"
[ "$rc" -lt 128 ] || fail "random bytes: crash"
jsize=$(stat -c %s "$T/spans.jsonl")
head -c $((jsize - 40)) "$T/spans.jsonl" >"$T/cut.jsonl"
jgood=$(($(grep -c '' "$T/cut.jsonl") - 1))
"$DUMP" read --json "$T/cut.jsonl" >"$T/cutj.json" 2>"$T/e"
expect_rc 8 $? "read of a truncated JSON lines file"
grep -q "truncated: line [0-9]* (byte [0-9]*) is incomplete" "$T/e" || fail "message: $(cat "$T/e")"
[ "$(wc -l <"$T/cutj.json")" -gt 0 ] || fail "no spans before the cut JSON line"
"$PY" "$CMP" "$T/cutj.json" "$T/all.manifest" --subset >/dev/null || fail "JSON spans before the cut"
{ head -n1 "$T/spans.jsonl"; echo '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyzw"}]}]}]}'; } >"$T/badj.jsonl"
"$DUMP" read "$T/badj.jsonl" >/dev/null 2>"$T/e"
expect_rc 8 $? "read of a JSON line with a bad trace id"
grep -q "line 2 is not an OTLP/JSON ExportTraceServiceRequest: trace_id: not hex at resourceSpans\[0\].scopeSpans\[0\].spans\[0\].traceId" "$T/e" || fail "message: $(cat "$T/e")"
"$DUMP" read "$T/does-not-exist" >/dev/null 2>"$T/e"
expect_rc 1 $? "read of a missing file"
ok "truncated and corrupt files: exit 8 after the valid records; missing file: exit 1"
echo "PASS"
