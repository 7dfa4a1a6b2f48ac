#!/usr/bin/env bash
# Regenerate the seed corpora of tests/fuzz/corpus/<target>/ from real
# outputs (run by hand after a format change; the seeds are committed):
#   ring       the ring of a real producer (tests/progs/dump_producer: spans
#              through the public API and the library's encoder), read
#              through /proc/PID/fd while it waits, turned into the ring
#              target's op programs (scope table, resource, records, drains)
#   dump_ring  the same ring as programs of show/follow/release for
#              spanring-dump's ring reader
#   ring_read  the same ring's scope table and slot bytes for the ring
#              reader alone (lib/ring_read.h)
#   reg        registration requests as lib/client.c sends them, with each
#              kind of fd of the target's menu
#   config     configuration files using every key the agent's --help lists
#   dump_file  the real agent's file (protobuf) and json exporter outputs of
#              those spans, whole and cut
#   otlp_http  raw HTTP responses of the project's OTLP receiver
#              (tests/otlp-receiver) for each scripted answer
#
#   B=build/gcc tests/fuzz/gen-corpus.sh     (binaries of a normal build)
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build/gcc}
BIN=$B/bin
PROGS=$B/tests/progs
C=tests/fuzz/corpus
T=$(mktemp -d /tmp/spanring-gen.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$C"/{ring,dump_ring,ring_read,reg,config,dump_file,otlp_http}

# ---- a real agent and a real producer ----------------------------------------
export SPANRING_SOCKET=$T/agent.sock
"$BIN/spanring-agent" --socket "$SPANRING_SOCKET" --file "$T/out.pb" --json "$T/out.jsonl" \
	--batch-max-age 1ms 2>"$T/agent.log" &
agent=$!
pids+=($agent)
for _ in $(seq 100); do [ -S "$SPANRING_SOCKET" ] && break; sleep 0.05; done
SPANRING_SLOT_SIZE=16384 "$PROGS/dump_producer" spans 3 "$T/manifest" >"$T/prod.out" 2>&1 &
prod=$!
pids+=($prod)
for _ in $(seq 100); do grep -q ready "$T/prod.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.3

python3 - "$prod" "$C" <<'PY'
import os, struct, sys
pid, C = sys.argv[1], sys.argv[2]
ring = None
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        l = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if l.startswith("/memfd:spanring"):
        ring = open(f"/proc/{pid}/fd/{fd}", "rb").read()
        break
assert ring, "no ring found"
(magic, amaj, amin, hsz, psz, feat, total, nslots, ssize, prod_off, cons_off, scope_off,
 res_off, data_off, scope_cap, res_cap, res_len, flags, scope_len) = struct.unpack_from(
    "<QIIIIQQIIQQQQQIIIIQ", ring, 0)
assert magic == 0x474E49524E415053
head = struct.unpack_from("<Q", ring, prod_off)[0]
data = ring[data_off:data_off + min(head, ssize)]
scope = ring[scope_off:scope_off + scope_len]
res = ring[res_off:res_off + res_len]

def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1
        v |= (c & 0x7f) << s; s += 7
        if not c & 0x80:
            return v, i

def records(b):
    """Split a slot's bytes into whole records (tag, length/varint, payload)."""
    out, i = [], 0
    while i < len(b):
        st = i
        tag, i = varint(b, i)
        wt = tag & 7
        if wt == 0:
            _, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i); i += n
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        out.append(b[st:i])
    return out

recs = records(data)

def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v & 0xffffffff)
def write(region, off, b):
    out = b""
    for k in range(0, len(b), 255):
        ch = b[k:k + 255]
        out += bytes([0, region]) + u16(off + k) + bytes([len(ch)]) + ch
    return out
def append(slot, b): return bytes([1, slot]) + u16(len(b)) + b
def commit(slot): return bytes([2, slot])
ADOPT, DRAIN, CLOSE = bytes([4]), bytes([5]), bytes([7])
def release(i): return bytes([6, i])

# The real scope table, resource and their lengths in the fuzz ring's header.
base = write(3, 0, scope) + write(4, 0, res) + write(0, 96, u32(res_len)) + \
    write(0, 104, struct.pack("<Q", scope_len))
body = b"".join(recs)
seeds = {}
seeds["real-spans"] = bytes([0]) + base + append(0, body) + commit(0) + ADOPT + DRAIN + release(0) + DRAIN
seeds["real-spans-2slots"] = bytes([1]) + base + append(0, body) + commit(0) + append(1, body) + \
    commit(1) + DRAIN + release(0) + DRAIN
seeds["real-spans-small-batches"] = bytes([4]) + base + append(0, body) + commit(0) + DRAIN + \
    release(1) + release(0) + DRAIN
seeds["real-spans-one-by-one"] = bytes([0]) + base + b"".join(
    append(0, r) + commit(0) + DRAIN for r in recs) + b"".join(release(0) for _ in recs)
# Wrap around the 16 KiB slot: append, drain, release until past the end.
wrap = bytes([0]) + base + ADOPT
n = 0
while n < 3 * 16384:
    wrap += append(0, body) + commit(0) + DRAIN + release(0)
    n += len(body)
seeds["real-spans-wrap"] = wrap
# Reconnect: the previous agent released the first record.
first = len(recs[0]) + (len(recs[1]) if recs[0][0] != 0x12 else 0)
seeds["real-spans-reconnect"] = bytes([2]) + base + append(0, body) + commit(0) + \
    write(2, 64, struct.pack("<QQ", first, 0)) + ADOPT + DRAIN + release(0)
seeds["real-spans-close"] = bytes([0]) + base + append(0, body) + commit(0) + ADOPT + CLOSE + \
    release(0) + DRAIN
seeds["real-spans-then-garbage"] = bytes([0]) + base + append(0, body + b"\x12\x80\x80") + \
    commit(0) + DRAIN + release(0)
seeds["real-spans-head-games"] = bytes([0]) + base + append(0, body) + commit(0) + DRAIN + \
    bytes([3, 0]) + u32(-5) + DRAIN
seeds["real-header-only"] = bytes([0]) + write(0, 0, ring[0:128]) + ADOPT
for name, b in seeds.items():
    open(f"{C}/ring/{name}", "wb").write(b)

# spanring-dump's ring reader: 4 SHOW, 5 FOLLOW, 6 TAIL slot delta:u16, 7 REOPEN
SHOW, FOLLOW, REOPEN = bytes([4]), bytes([5]), bytes([7])
def tail(slot, d): return bytes([6, slot]) + u16(d)
dseeds = {
    "real-show": bytes([0]) + base + append(0, body) + commit(0) + SHOW,
    "real-show-json-verbose": bytes([(1 << 3) | 32]) + base + append(0, body) + commit(0) + SHOW,
    "real-waterfall": bytes([2 << 3]) + base + append(0, body) + commit(0) + SHOW,
    "real-follow-start": bytes([2 << 1]) + base + append(0, body) + commit(0) + FOLLOW +
        append(0, body) + commit(0) + FOLLOW,
    "real-follow-tail-release": bytes([1 << 1]) + base + append(0, body) + commit(0) + FOLLOW +
        tail(0, len(body)) + append(0, body) + commit(0) + FOLLOW + SHOW,
    "real-2slots-reopen": bytes([1]) + base + append(0, body) + commit(0) + append(1, body) +
        commit(1) + SHOW + REOPEN + FOLLOW,
    "real-follow-garbage": bytes([2 << 1]) + base + append(0, body + b"\x12\x80\x80") + commit(0) +
        FOLLOW + FOLLOW,
}
for name, b in dseeds.items():
    open(f"{C}/dump_ring/{name}", "wb").write(b)

# The ring reader alone: conf (bit 7: record limit conf & 0x7f), table
# length:u16, scope_len:u64, the table, then the slot's bytes.
def rr(conf, slen, slot): return bytes([conf]) + u16(len(scope)) + struct.pack("<Q", slen) + scope + slot
rseeds = {
    "real-slot": rr(0, scope_len, body),
    "real-slot-garbage": rr(0, scope_len, body + b"\x12\x80\x80"),
    "real-slot-tiny-limit": rr(0x80 | 64, scope_len, body),
    "real-slot-short-scope-len": rr(0, scope_len // 2, body),
    "real-slot-scope-len-past-cap": rr(0, 1 << 20, body),
}
for name, b in rseeds.items():
    open(f"{C}/ring_read/{name}", "wb").write(b)

# ---- registration: the request lib/client.c sends, with each kind of fd ------
REQ = struct.pack("<IIIIQ40x", 0x31474552, 1, 0, 0, 0)
kinds = ["ring", "ring-patched", "pipe", "devzero", "unsealed", "no-seal-seal", "write-sealed",
         "socket", "file", "eventfd", "ring-rdonly"]
for k, name in enumerate(kinds):
    extra = b"\x00\x00\x08" + b"\xff" * 8 if name == "ring-patched" else b""
    open(f"{C}/reg/{name}", "wb").write(bytes([1, k]) + extra + bytes([2]))
open(f"{C}/reg/raw-request", "wb").write(bytes([1, 0, 0, 64]) + REQ)
open(f"{C}/reg/reconnect-flag", "wb").write(bytes([1, 0, 1, 12, 4]) + u32(1))
open(f"{C}/reg/two-fds", "wb").write(bytes([2, 0, 2, 2]))
open(f"{C}/reg/denied", "wb").write(bytes([5, 0, 2]))
open(f"{C}/reg/stall", "wb").write(bytes([8]))
open(f"{C}/reg/second-message-bell", "wb").write(bytes([1 | 16 | 32, 0, 2]))
PY

kill -TERM "$prod"
wait "$prod" || true
sleep 0.2
kill -TERM "$agent"
wait "$agent" || true

# ---- exported files ---------------------------------------------------------------
python3 - "$T" "$C" <<'PY'
import sys
T, C = sys.argv[1], sys.argv[2]
pb = open(f"{T}/out.pb", "rb").read()
js = open(f"{T}/out.jsonl", "rb").read()
assert pb and js
seeds = {
    "pb-auto": bytes([0]) + pb, "pb-lines": bytes([1]) + pb, "pb-json": bytes([1 | 4]) + pb,
    "pb-waterfall-verbose": bytes([1 | 8 | 16 | 32]) + pb, "pb-cut": bytes([1]) + pb[:len(pb) // 2],
    "json-auto": bytes([0]) + js, "json-lines": bytes([2 | 16]) + js,
    "json-waterfall": bytes([2 | 8 | 64]) + js, "json-cut": bytes([2]) + js[:len(js) * 2 // 3],
    "json-filtered": bytes([2 | 128]) + js,
}
for name, b in seeds.items():
    open(f"{C}/dump_file/{name}", "wb").write(b)
PY

# ---- configuration files ----------------------------------------------------------
"$BIN/spanring-agent" --help | awk '/^Keys/{k=1;next} k&&/^  [a-z]/{print $1}' >"$T/keys"
python3 - "$T/keys" "$C" <<'PY'
import sys
keys = open(sys.argv[1]).read().split()
C = sys.argv[2]
vals = {"socket": "/tmp/x.sock", "socket_mode": "0660", "control_socket": "/tmp/x.ctl",
        "control_socket_mode": "0600", "allow_uids": "0,1000", "allow_gids": "0",
        "max_producers": "100", "max_producers_per_uid": "10", "max_mapped_per_uid": "1G",
        "registration_timeout": "2s", "log_level": "warn", "poll_interval_min": "500us",
        "poll_interval_max": "10ms", "batch_max_bytes": "2M", "batch_max_age": "5ms",
        "max_inflight_batches": "64", "watermark_pct": "75", "metrics_port": "0",
        "exporters": "file,json", "host_name": "h", "debug_zero_copy_check": "true",
        "output_mode": "0640", "max_scope_bytes": "128K", "host_id": "h",
        "otlp.endpoint": "http://127.0.0.1:4318", "otlp.headers": "a=b,c=d%20e",
        "otlp.protocol": "http/protobuf", "otlp.compression": "gzip"}
lines = ["# every key"]
for k in keys:
    v = vals.get(k, "1s" if "timeout" in k or "retry" in k else "/tmp/f" if k.endswith(".path") else "3")
    lines.append(f"{k} = {v}")
open(f"{C}/config/every-key", "wb").write(b"\x00" + "\n".join(lines).encode() + b"\n")
open(f"{C}/config/quoted", "wb").write(b"\x00; c\n\n  socket = \"/tmp/a b.sock\"\nexporters=null\n")
open(f"{C}/config/error", "wb").write(b"\x00batch_max_age = soon\n")
open(f"{C}/config/args", "wb").write(
    b"\x01--file\x00/tmp/x.pb\x00--batch-max-age=5ms\x00-s\x00/tmp/s\x00--exporter\x00otlp_http:http://127.0.0.1:1/v1/traces\x00-v")
PY

# ---- OTLP/HTTP responses of the real receiver -------------------------------------
if command -v node >/dev/null && [ -d tests/otlp-receiver/node_modules ]; then
	script="200,partial=2,503ra=1,503date=2,429,502,400,413,garbage"
	node tests/otlp-receiver/receiver.js --out /dev/null --http-port 0 --port-file "$T/ports" \
		--script "$script" --quiet --max-seconds 30 &
	pids+=($!)
	for _ in $(seq 100); do [ -s "$T/ports" ] && break; sleep 0.05; done
	python3 - "$T" "$C" "$script" <<'PY'
import json, socket, sys, time
T, C, script = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
ports = json.load(open(f"{T}/ports"))
port = ports.get("http") or ports.get("http_port")
pb = open(f"{T}/out.pb", "rb").read()
# the first request of the file: varint length, then the message
n = s = i = 0
while True:
    c = pb[i]; i += 1; n |= (c & 0x7f) << s; s += 7
    if not c & 0x80: break
body = pb[i:i + n]
for action in script:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    s.settimeout(1.5)
    resp = b""
    try:
        while True:
            d = s.recv(65536)
            if not d: break
            resp += d
    except socket.timeout:
        pass
    s.close()
    name = action.replace("=", "-")
    # split 0 (all at once), end 1 (half-close after it)
    open(f"{C}/otlp_http/{name}", "wb").write(bytes([0, 1]) + resp)
    open(f"{C}/otlp_http/{name}-bytewise", "wb").write(bytes([1, 0]) + resp)
PY
else
	echo "gen-corpus: node or the receiver's modules missing: otlp_http seeds not regenerated" >&2
fi
# A few the receiver does not send: chunked, 100 Continue, keep-alive pipelining.
printf '\x00\x00HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-protobuf\r\n\r\n2\r\n\x0a\x00\r\n0\r\n\r\n' >"$C/otlp_http/continue-chunked"
printf '\x03\x02HTTP/1.1 503 Service Unavailable\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n' >"$C/otlp_http/pipelined"
echo "seeds:"; for d in "$C"/*; do echo "  $(basename "$d"): $(ls "$d" | wc -l) files, $(du -sk "$d" | cut -f1) KiB"; done
