#!/usr/bin/env bash
# A dead backend costs the others nothing, and an outage loses nothing
# (issue 12 items 2-3): per-instance hold budget and disk spool.
#
# Why short outages prove it: what matters is an outage longer than the
# ring can hold at that rate. The producer here uses SPANRING_SLOT_SIZE=128K
# (8 slots: 1 MiB of ring, about 3 900 spans of 270 bytes, 0.8 s at 5 k
# spans/s); the outage lasts 3 s, 4 times what the ring holds, and the
# instances may hold 256 KiB of it each (a dead one nothing but its probe). (The issue's 50 k spans/s and
# 60 s need three Node.js receivers decoding 50 k spans/s each: more than
# this 2-core machine has; the rate does not change the mechanism, the
# ratio outage/ring does.) Without the
# hold budget the dead instance pins the ring and the producers drop
# (checked: the same run with --otlp.hold-budget=0 fails "dropped=0");
# without the spool its spans would be let go. Longer outages only add
# records to the spool, whose bound is tested on its own (section 3).
#
# 1. three OTLP/HTTP instances, one backend dead 3 s while 2 threads
#    produce 5 k spans/s (the suite runs on a loaded 2-core machine, ASan
#    too): no producer drop, the two others receive every span while it
#    is down (90 % of what was drained by the end of the outage within
#    2 s, with c still down; all of it in the end), the dead one everything once back (0
#    lost, 0 duplicates: refused connections have nothing in flight),
#    delivery resumes within 2 s of its return, the agent's own memory
#    stays bounded (RssAnon);
# 2. the agent SIGKILLed and restarted during an outage: the spool is
#    replayed, 0 spans lost (duplicates only from at-least-once);
# 3. a spool too small for the outage lets go of exactly what its
#    counters say (missing at the receiver == let_go_spans ==
#    let_go_spans_spool_full == the spool's own count);
# 4. the same spool and replay for an OTLP/gRPC instance (0 lost).
. "$(dirname "$0")/otlp-lib.sh"

RPIDS=()
declare -A RPID
start_recv_n() { # NAME [HTTP_PORT [GRPC_PORT]]: receiver writing $T/recv-NAME.jsonl; sets HP GP
	local n=$1 hp=${2:-0} gp=${3:-0}
	rm -f "$T/ports-$n.json"
	node "$rdir/receiver.js" --out "$T/recv-$n.jsonl" --http-port "$hp" --grpc-port "$gp" \
		--host 127.0.0.1 --port-file "$T/ports-$n.json" --max-seconds 240 --quiet \
		2>>"$T/recv.err" &
	RPID[$n]=$!
	RPIDS+=($!)
	for _ in $(seq 200); do [ -f "$T/ports-$n.json" ] && break; sleep 0.05; done
	[ -f "$T/ports-$n.json" ] || fail "receiver $n did not start"
	HP=$(node -e 'console.log(require(process.argv[1]).http)' "$T/ports-$n.json")
	GP=$(node -e 'console.log(require(process.argv[1]).grpc)' "$T/ports-$n.json")
}
stop_recv_n() { kill "${RPID[$1]}" 2>/dev/null || true; wait "${RPID[$1]}" 2>/dev/null || true; }
trap 'for p in "${RPIDS[@]}"; do kill "$p" 2>/dev/null || true; done; otlp_cleanup' EXIT

expect_file() { ls "$T"/exp-*.jsonl | paste -sd,; }
check_n() { # NAME ARGS...: check.js on a receiver's file; prints its line
	node "$rdir/check.js" --recv "$T/recv-$1.jsonl" --expect "$(expect_file)" --proto http "${@:2}"
}

say "1. one of three backends dead for 3 s, 5 k spans/s, 128 KiB slots"
start_recv_n a; PA=$HP
start_recv_n b; PB=$HP
start_recv_n c; PC=$HP
stop_recv_n c
start_agent_state --exporter "otlp_http/a:http://127.0.0.1:$PA" --exporter "otlp_http/b:http://127.0.0.1:$PB" \
	--exporter "otlp_http/c:http://127.0.0.1:$PC" --otlp.hold-budget=256K \
	--otlp.retry-initial=100ms ${OUTAGE_AGENT_ARGS:-}
SPANRING_SLOT_SIZE=128K produce p svc-p -t 2 -r 1250 -n 7500 &
ppid=$!
max_rss=0
for i in $(seq 30); do # 3 s of outage
	r=$(rss_anon_kb); [ "$r" -gt "$max_rss" ] && max_rss=$r
	sleep 0.1
done
held_c=$(stat exp.otlp_http/c.held_bytes)
# on time: while c is still down, a and b catch up with what the agent
# had drained at the end of the outage (less what the last few requests
# carry) within 2 s. On a loaded machine the producer can fall behind its
# schedule and catch up in a burst just before the sample, so the two are
# given the time a healthy backend needs, not an instant; a backend that
# waited for c would not catch up before c is back.
drained=$(stat agent.spans)
t0=$(date +%s%N)
while :; do
	v=$(stat exp.otlp_http/a.spans exp.otlp_http/b.spans | paste -sd' ')
	set -- $v
	[ "$1" -ge $((drained * 9 / 10)) ] && [ "$2" -ge $((drained * 9 / 10)) ] && break
	[ $(($(date +%s%N) - t0)) -lt 2000000000 ] || break
	sleep 0.05
done
echo "after 3 s of outage: drained $drained, a received $1, b received $2" \
	"$((($(date +%s%N) - t0) / 1000000)) ms later, c still down"
[ "$1" -ge $((drained * 9 / 10)) ] && [ "$2" -ge $((drained * 9 / 10)) ] ||
	fail "a healthy backend lags while c is down: drained $drained, 2 s later a $1, b $2"
start_recv_n c "$PC"
back=$(date +%s%N)
first=""
for i in $(seq 100); do
	if [ "$(stat exp.otlp_http/c.spans)" -gt 0 ]; then first=$(date +%s%N); break; fi
	sleep 0.05
done
[ -n "$first" ] || fail "nothing delivered to c 5 s after it came back"
resume_ms=$(((first - back) / 1000000))
echo "c: first delivery ${resume_ms} ms after it came back; ring bytes it held while down: $held_c"
[ "$resume_ms" -le 2000 ] || fail "delivery resumed after ${resume_ms} ms (> 2 s)"
[ "$held_c" -le $((256 * 1024 + 300 * 1024)) ] || fail "c held $held_c ring bytes (budget 256K)"
wait $ppid || fail "producer failed (dropped?)"
total=$(expected_count)
for e in a b c; do wait_settled "otlp_http/$e" "$total" 60; done
for i in $(seq 20); do r=$(rss_anon_kb); [ "$r" -gt "$max_rss" ] && max_rss=$r; sleep 0.05; done
echo "agent RssAnon at most ${max_rss} kB"
[ "$max_rss" -le "$RSS_LIMIT_KB" ] || fail "agent RssAnon $max_rss kB (> $RSS_LIMIT_KB kB)"
expect_eq "c let go" "$(stat exp.otlp_http/c.let_go_spans)" 0
expect_ge "c spilled to its spool" "$(stat exp.otlp_http/c.spilled_spans)" 1
expect_eq "c replayed = spilled" "$(stat exp.otlp_http/c.replayed_spans)" "$(stat exp.otlp_http/c.spilled_spans)"
# a healthy backend that pauses (GC) may spill a little too: not a loss
echo "spilled by the healthy ones: a $(stat exp.otlp_http/a.spilled_spans), b $(stat exp.otlp_http/b.spilled_spans)"
check_zero_copy
stop_agent
for e in a b c; do check_n $e || fail "backend $e"; done
stop_recv_n a; stop_recv_n b; stop_recv_n c
rm -f "$T"/exp-*.jsonl "$T"/recv-*.jsonl "$T/agent.log"

say "2. agent SIGKILLed and restarted during an outage: the spool is replayed"
start_recv_n k; PK=$HP
stop_recv_n k
start_agent_state --exporter "otlp_http/k:http://127.0.0.1:$PK" --otlp.hold-budget=64K
produce k svc-k -t 1 -r 2500 -n 10000 &
ppid=$!
sleep 2.5
expect_ge "k spilled before the kill" "$(stat exp.otlp_http/k.spilled_spans)" 1
kill -KILL "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true
echo "agent killed"
sleep 0.3
rm -f "$T/a.sock" "$T/a.sock.ctl"
start_agent_state --exporter "otlp_http/k:http://127.0.0.1:$PK" --otlp.hold-budget=64K
for i in $(seq 50); do grep -q "spool .* to replay" "$T/agent.log" && break; sleep 0.1; done
grep -q "spool .* to replay" "$T/agent.log" || fail "the restarted agent found no spool"
sleep 1
start_recv_n k "$PK"
wait $ppid || fail "producer failed (dropped?)"
total=$(expected_count)
for i in $(seq 300); do
	n=$(grep -c '"t":"span"' "$T/recv-k.jsonl" || true)
	[ "$n" -ge "$total" ] && [ "$(stat exp.otlp_http/k.held)" = 0 ] && break
	sleep 0.1
done
line=$(check_n k --dups-ok) || fail "spans lost: $line"
echo "$line"
stop_agent
stop_recv_n k
rm -f "$T"/exp-*.jsonl "$T"/recv-*.jsonl "$T/agent.log"

say "3. a spool too small for the outage lets go of exactly what it counts"
start_recv_n f; PF=$HP
stop_recv_n f
MP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_agent_state --exporter "otlp_http/f:http://127.0.0.1:$PF" --otlp.hold-budget=64K \
	--otlp.spool-bytes=1M --metrics-port="$MP"
produce f svc-f -t 1 -n 12000
total=$(expected_count)
for i in $(seq 100); do [ "$(stat exp.otlp_http/f.held_bytes)" -le 65536 ] && break; sleep 0.1; done
lg=$(stat exp.otlp_http/f.let_go_spans)
expect_ge "f let go (spool full)" "$lg" 1
expect_eq "f let go = spool full cause" "$(stat exp.otlp_http/f.let_go_spans_spool_full)" "$lg"
expect_eq "f let go = spool's own count" "$(stat exp.otlp_http/f.spool_let_go_spans)" "$lg"
prom() { python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
	"http://127.0.0.1:$MP/metrics"; }
# one scrape, then grep: "prom | grep -q" would close the pipe under
# python, whose BrokenPipeError fails the pipeline (pipefail)
metrics=$(prom) || fail "cannot scrape http://127.0.0.1:$MP/metrics"
pl=$(grep '^spanring_exporter_send_failed_spans_total{exporter="otlp_http/f",cause="spool_full"}' <<<"$metrics")
expect_eq "Prometheus: let go, cause spool_full" "${pl##* }" "$lg"
grep -q '^spanring_exporter_spool_capacity_bytes{exporter="otlp_http/f"} 1048576$' <<<"$metrics" ||
	fail "Prometheus: no spool capacity"
start_recv_n f "$PF"
wait_settled otlp_http/f "$total" 60
expect_eq "f let go after replay" "$(stat exp.otlp_http/f.let_go_spans)" "$lg"
stop_agent
line=$(check_n f --missing-ok) || fail "check: $line"
echo "$line"
missing=$(sed -n 's/.*missing=\([0-9]*\).*/\1/p' <<<"$line")
expect_eq "spans missing at the receiver = let go" "$missing" "$lg"
grep -q 'exporter otlp_http/f: spool full' "$T/agent.log" || fail "no log line naming the instance"
stop_recv_n f
rm -f "$T"/exp-*.jsonl "$T"/recv-*.jsonl "$T/agent.log"

say "4. OTLP/gRPC: the backend down, then back: replayed from the spool"
start_recv_n g; PG=$GP
stop_recv_n g
start_agent_state --exporter "otlp_grpc/g:http://127.0.0.1:$PG" --otlp.hold-budget=64K
produce g svc-g -t 1 -n 3000
total=$(expected_count)
sleep 0.5
expect_ge "g spilled" "$(stat exp.otlp_grpc/g.spilled_spans)" 1
start_recv_n g 0 "$PG"
wait_settled otlp_grpc/g "$total" 60
expect_eq "g let go" "$(stat exp.otlp_grpc/g.let_go_spans)" 0
check_zero_copy
stop_agent
node "$rdir/check.js" --recv "$T/recv-g.jsonl" --expect "$(expect_file)" --proto grpc ||
	fail "backend g"
echo "otlp_outage: all checks passed"
