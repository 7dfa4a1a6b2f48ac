#!/usr/bin/env python3
"""A misbehaving OTLP/HTTP receiver for the hardening tests.

Raw sockets on 127.0.0.1 (no HTTP library: it must be able to answer
badly). Each request it reads takes the next action of the script; after
the script, every request is answered 200. Accepted request bodies are
appended, varint-length-delimited, to --out (the file exporter's format,
so harden_verify.py checks them); one JSON line per request goes to --log.

  harden_receiver.py --out FILE --log FILE --port-file FILE --script A,B,...
                     [--max-seconds S] [--validate 1]

--validate: an "ok" request is decoded first (harden_verify.py's reader);
one span that does not parse makes it a 400 (not accepted), as a
receiver that validates its input does.

Actions (A*K: K times):
  ok            200, empty protobuf body, keep-alive (accepted)
  loris         the status line and headers one byte every 300 ms, never
                finished (not accepted: the client must time out)
  garbage200    200 with a body that is no ExportTraceServiceResponse (accepted)
  huge200       200 with a 50 MB body sent as fast as it is read (accepted)
  endless       200, chunked, one 1-byte chunk every 100 ms, no end (not accepted)
  headerflood   200 then 200000 header lines (not accepted: the parser refuses)
  okfin         200 (accepted), then FIN: the connection is half-closed
  rstbody       200 with Content-Length 100, 3 bytes of it, then RST (not accepted)
  400           400 Bad Request (not accepted: the client lets the batch go)
"""
import json
import socket
import struct
import sys
import threading
import time


def args_of(argv):
    a, i = {}, 1
    while i < len(argv):
        a[argv[i].lstrip("-")] = argv[i + 1]
        i += 2
    return a


A = args_of(sys.argv)
script = []
for part in filter(None, A.get("script", "").split(",")):
    name, _, k = part.partition("*")
    script += [name] * (int(k) if k else 1)
lock = threading.Lock()
out = open(A["out"], "ab")
log = open(A["log"], "a")


def next_action():
    with lock:
        return script.pop(0) if script else "ok"


def record(**kw):
    with lock:
        kw["t"] = time.time()
        log.write(json.dumps(kw) + "\n")
        log.flush()


def accept_body(body):
    n = len(body)
    pre = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            pre += bytes([b | 0x80])
        else:
            pre += bytes([b])
            break
    with lock:
        out.write(pre + body)
        out.flush()


def read_request(c, buf):
    """One request: (head, body, rest) or None at EOF."""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            return None
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
    while len(rest) < n:
        d = c.recv(65536)
        if not d:
            return None
        rest += d
    return head, rest[:n], rest[n:]


sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from harden_verify import Bad, fields, span  # noqa: E402


def valid(body):
    try:
        for f, wt, rs in fields(body):
            for f2, wt2, ss in fields(rs):
                if f2 == 2:
                    for f3, wt3, sp in fields(ss):
                        if f3 == 2:
                            span(sp)
        return True
    except Bad:
        return False


OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
      b"Content-Length: 0\r\n\r\n")


def serve(c):
    buf = b""
    try:
        while True:
            r = read_request(c, buf)
            if r is None:
                return
            head, body, buf = r
            act = next_action()
            if act == "ok" and A.get("validate") and not valid(body):
                act = "400"
            record(action=act, bytes=len(body))
            if act == "ok":
                accept_body(body)
                c.sendall(OK)
            elif act == "loris":
                for ch in b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n" * 100:
                    c.sendall(bytes([ch]))
                    time.sleep(0.3)
                return
            elif act == "garbage200":
                accept_body(body)
                junk = b"\xff\xfe\xfd\xfc garbage \x00\x01"
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(junk) + junk)
            elif act == "huge200":
                accept_body(body)
                size = 50 << 20
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                          b"Content-Length: %d\r\n\r\n" % size)
                chunk = b"\x00" * (1 << 20)
                for _ in range(size >> 20):
                    c.sendall(chunk)
            elif act == "endless":
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                while True:
                    c.sendall(b"1\r\nx\r\n")
                    time.sleep(0.1)
            elif act == "headerflood":
                c.sendall(b"HTTP/1.1 200 OK\r\n")
                line = b"X-Flood: aaaaaaaaaaaaaaaaaaaaaaaa\r\n"
                for _ in range(200):
                    c.sendall(line * 1000)
                return
            elif act == "okfin":
                accept_body(body)
                c.sendall(OK)
                c.shutdown(socket.SHUT_WR)
                while c.recv(65536):
                    pass
                return
            elif act == "rstbody":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
                time.sleep(0.05)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
                return
            elif act == "400":
                msg = b"scripted 400"
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(msg) + msg)
            else:
                raise SystemExit("unknown action " + act)
    except OSError:
        pass
    finally:
        try:
            c.close()
        except OSError:
            pass


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    with open(A["port-file"] + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    import os
    os.rename(A["port-file"] + ".tmp", A["port-file"])
    deadline = time.time() + float(A.get("max-seconds", 120))
    s.settimeout(0.5)
    while time.time() < deadline:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()


main()
