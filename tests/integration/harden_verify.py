#!/usr/bin/env python3
"""Check the agent's protobuf output when hostile producers were in it.

Reads files of varint-length-delimited ExportTraceServiceRequest messages
(the file exporter) with a small protobuf reader of its own. Unlike
tests/progs/sr-verify (which needs every request to decode), it walks the
request one ResourceSpans at a time: the agent writes the ResourceSpans
framing and the Resource itself, so every group can be attributed to its
producer's service even when a hostile producer's span bytes are garbage
(it rewrote them after the agent walked their headers: the known gap in
docs/SECURITY.md). A group whose spans do not parse is "corrupt".

  harden_verify.py [--expect SVC:THREADS:SPANS]... [--prefix SVC]...
                   [--corrupt-ok SVC]... [--allow-dups] [--resource SVC] FILE...

--expect: every thread 0..THREADS-1 of SVC has exactly the seqs
  0..SPANS-1, each once (unless --allow-dups), and no group of SVC is corrupt.
--prefix: SVC's seqs are 0..m-1 for some m, each once.
--corrupt-ok: corrupt groups are allowed for SVC (hostile producers);
  any other corrupt group fails the check.
--resource: print the resource attributes of SVC's groups ("resource
  SVC key=value ..." once per distinct resource).
Prints "requests=R groups=G spans=S corrupt=C" and one line per service.
"""
import sys
from collections import defaultdict


class Bad(Exception):
    pass


def varint(b, i):
    v = s = 0
    while True:
        if i >= len(b) or s > 63:
            raise Bad("varint")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if not c & 0x80:
            return v, i


def fields(b):
    i, n = 0, len(b)
    while i < n:
        tag, i = varint(b, i)
        f, wt = tag >> 3, tag & 7
        if f == 0:
            raise Bad("field 0")
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            if i + 8 > n:
                raise Bad("i64")
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            ln, i = varint(b, i)
            if i + ln > n:
                raise Bad("len")
            v, i = b[i:i + ln], i + ln
        elif wt == 5:
            if i + 4 > n:
                raise Bad("i32")
            v, i = b[i:i + 4], i + 4
        else:
            raise Bad("wire type")
        yield f, wt, v


def kv(b):
    key, val = None, None
    for f, wt, v in fields(b):
        if f == 1 and wt == 2:
            key = v.decode("utf-8", "replace")
        elif f == 2 and wt == 2:
            for f2, wt2, v2 in fields(v):
                if f2 == 1 and wt2 == 2:
                    val = v2.decode("utf-8", "replace")
                elif f2 == 3 and wt2 == 0:
                    val = v2 - (1 << 64) if v2 >= 1 << 63 else v2
    return key, val


def span(b):
    attrs, tid, sid = {}, None, None
    for f, wt, v in fields(b):
        if f == 1:
            if wt != 2:
                raise Bad("trace_id")
            tid = v
        elif f == 2:
            if wt != 2:
                raise Bad("span_id")
            sid = v
        elif f == 9 and wt == 2:
            k, val = kv(v)
            attrs[k] = val
        elif f in (7, 8) and wt != 1:
            raise Bad("times")
    if tid is None or len(tid) != 16 or sid is None or len(sid) != 8:
        raise Bad("ids")
    return attrs


def main(argv):
    expect, prefix, corrupt_ok, files, dups_ok = [], [], set(), [], False
    show_res, resources = set(), {}
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in ("--expect", "--prefix", "--corrupt-ok", "--resource"):
            val = argv[i + 1]
            i += 2
            if a == "--expect":
                s, t, n = val.rsplit(":", 2)
                expect.append((s, int(t), int(n)))
            elif a == "--prefix":
                prefix.append(val)
            elif a == "--resource":
                show_res.add(val)
            else:
                corrupt_ok.add(val)
            continue
        if a == "--allow-dups":
            dups_ok = True
        else:
            files.append(a)
        i += 1
    seen = defaultdict(lambda: defaultdict(list))  # svc -> thread -> [seq]
    corrupt = defaultdict(int)
    unattributed = defaultdict(int)
    requests = groups = spans = 0
    failures = []
    for path in files:
        data = open(path, "rb").read()
        i = 0
        while i < len(data):
            try:
                n, j = varint(data, i)
            except Bad:
                failures.append(f"{path}: cut length prefix at {i}")
                break
            if j + n > len(data):
                failures.append(f"{path}: record at {i} cut by the end of the file")
                break
            req = data[j:j + n]
            i = j + n
            requests += 1
            # The agent's framing: these must always parse.
            try:
                top = list(fields(req))
            except Bad as e:
                failures.append(f"request {requests}: the agent's framing does not parse ({e})")
                continue
            for f, wt, rs in top:
                if f != 1 or wt != 2:
                    failures.append(f"request {requests}: top-level field {f}/{wt}")
                    continue
                groups += 1
                svc = None
                try:
                    parts = list(fields(rs))
                except Bad:
                    failures.append(f"request {requests}: ResourceSpans framing broken")
                    continue
                attrs = []
                for f2, wt2, v2 in parts:
                    if f2 == 1 and wt2 == 2:
                        for f3, wt3, v3 in fields(v2):
                            if f3 == 1 and wt3 == 2:
                                k, val = kv(v3)
                                attrs.append(f"{k}={val}")
                                if k == "service.name":
                                    svc = val
                if svc in show_res:
                    resources[" ".join(sorted(attrs))] = svc
                if svc is None:
                    failures.append(f"request {requests}: a group without service.name")
                    continue
                try:
                    got = []
                    for f2, wt2, v2 in parts:
                        if f2 != 2:
                            continue
                        for f3, wt3, v3 in fields(v2):
                            if f3 == 2 and wt3 == 2:
                                got.append(span(v3))
                except Bad:
                    corrupt[svc] += 1
                    continue
                for a in got:
                    spans += 1
                    t, s = a.get("test.thread"), a.get("test.seq")
                    if not isinstance(t, int) or not isinstance(s, int):
                        unattributed[svc] += 1
                        continue
                    seen[svc][t].append(s)
    print(f"requests={requests} groups={groups} spans={spans} corrupt={sum(corrupt.values())}")
    for svc in sorted(set(seen) | set(corrupt) | set(unattributed)):
        n = sum(len(v) for v in seen[svc].values())
        print(f"service={svc} spans={n} threads={len(seen[svc])} corrupt_groups={corrupt[svc]} "
              f"unattributed={unattributed[svc]}")
    for attrs, svc in resources.items():
        print(f"resource {svc} {attrs}")
    for svc, cnt in corrupt.items():
        if cnt and svc not in corrupt_ok:
            failures.append(f"{svc}: {cnt} corrupt groups (an honest producer's spans damaged)")
    for svc, cnt in unattributed.items():
        if cnt and svc not in corrupt_ok:
            failures.append(f"{svc}: {cnt} spans without test.thread/test.seq")
    for svc, threads, n in expect:
        th = seen.get(svc, {})
        if sorted(th) != list(range(threads)):
            failures.append(f"{svc}: threads {sorted(th)}, expected 0..{threads - 1}")
        for t in range(threads):
            seqs = th.get(t, [])
            uniq = set(seqs)
            if uniq != set(range(n)):
                missing = n - len(uniq & set(range(n)))
                failures.append(f"{svc} thread {t}: {missing} of {n} missing, "
                                f"{len(uniq - set(range(n)))} unexpected")
            if not dups_ok and len(seqs) != len(uniq):
                failures.append(f"{svc} thread {t}: {len(seqs) - len(uniq)} duplicates")
    for svc in prefix:
        for t, seqs in seen.get(svc, {}).items():
            if sorted(seqs) != list(range(len(seqs))):
                failures.append(f"{svc} thread {t}: not a prefix 0..m-1 each once")
    for f in failures[:20]:
        print("harden_verify: " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
