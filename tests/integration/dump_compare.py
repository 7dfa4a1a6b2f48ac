#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check spanring-dump --json output against what dump_producer wrote.

  dump_compare.py OUTPUT MANIFEST... [--exact | --subset] [--count N]
                  [--where KEY=VALUE]...

OUTPUT holds JSON lines, each an OTLP/JSON ExportTraceServiceRequest
(parsed here with Python's own json module, independent of the tool).
Each span is matched to its manifest line by spanId and compared field by
field: ids (lowercase hex of the right length), parent, name, kind (an
integer), start/end (decimal strings), typed attributes (int64 as
strings), status, the event, service.name and scope. Every object key
must be lowerCamelCase. --exact: the spans are exactly the manifest's
(after --where filters on manifest fields); --subset: each span is in a
manifest; --count: that many spans.
"""
import json
import re
import sys

CAMEL = re.compile(r"^[a-z][A-Za-z0-9]*$")


def die(msg):
    print("dump_compare: " + msg)
    sys.exit(1)


def check_keys(v, where):
    if isinstance(v, dict):
        for k, x in v.items():
            if not CAMEL.match(k):
                die("%s: key %r is not lowerCamelCase" % (where, k))
            check_keys(x, where + "." + k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            check_keys(x, "%s[%d]" % (where, i))


def any_value(v):
    """AnyValue -> python value, checking the JSON mapping's types."""
    if len(v) != 1:
        die("AnyValue with %d members: %r" % (len(v), v))
    (k, x), = v.items()
    if k == "stringValue":
        assert isinstance(x, str)
        return x
    if k == "intValue":
        if not isinstance(x, str) or not re.match(r"^-?[0-9]+$", x):
            die("intValue must be a decimal string: %r" % (x,))
        return int(x)
    if k == "doubleValue":
        if not isinstance(x, (int, float)):
            die("doubleValue must be a number: %r" % (x,))
        return float(x)
    if k == "boolValue":
        if not isinstance(x, bool):
            die("boolValue must be a boolean: %r" % (x,))
        return x
    if k == "arrayValue":
        return [any_value(x) for x in x.get("values", [])]
    if k == "kvlistValue":
        return {a["key"]: any_value(a["value"]) for a in x.get("values", [])}
    if k == "bytesValue":
        return x
    die("unexpected AnyValue member %s" % k)


def main():
    args = sys.argv[1:]
    mode, count, where = "exact", None, []
    files = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--exact", "--subset"):
            mode = a[2:]
        elif a == "--count":
            i += 1
            count = int(args[i])
        elif a == "--where":
            i += 1
            k, v = args[i].split("=", 1)
            where.append((k, v))
        else:
            files.append(a)
        i += 1
    out, manifests = files[0], files[1:]
    want = {}
    for m in manifests:
        for line in open(m):
            e = json.loads(line)
            if all(str(e.get(k)) == v for k, v in where):
                want[e["spanId"]] = e
    got = {}
    for n, line in enumerate(open(out), 1):
        if not line.strip():
            continue
        req = json.loads(line)
        check_keys(req, "line %d" % n)
        rs = req["resourceSpans"]
        if len(rs) != 1 or len(rs[0]["scopeSpans"]) != 1 or len(rs[0]["scopeSpans"][0]["spans"]) != 1:
            die("line %d: expected one resource, scope and span" % n)
        res = {a["key"]: any_value(a["value"]) for a in rs[0]["resource"]["attributes"]}
        ss = rs[0]["scopeSpans"][0]
        s = ss["spans"][0]
        sid = s["spanId"]
        if not re.match(r"^[0-9a-f]{16}$", sid) or not re.match(r"^[0-9a-f]{32}$", s["traceId"]):
            die("line %d: ids must be lowercase hex (16 and 32 digits): %s %s" % (n, s["traceId"], sid))
        if sid in got:
            die("line %d: span %s twice" % (n, sid))
        got[sid] = (s, res, ss.get("scope", {}), n)
    if count is not None and len(got) != count:
        die("%d spans in the output, want %d" % (len(got), count))
    for sid, (s, res, scope, n) in got.items():
        e = want.get(sid)
        if e is None:
            die("line %d: span %s (%s) is in no manifest" % (n, sid, s.get("name")))
        ctx = "line %d span %s" % (n, sid)
        checks = [
            ("traceId", s["traceId"], e["traceId"]),
            ("parentSpanId", s.get("parentSpanId", ""), e["parentSpanId"]),
            ("name", s["name"], e["name"]),
            ("kind", s.get("kind", 0), e["kind"]),
            ("startTimeUnixNano", s["startTimeUnixNano"], e["startTimeUnixNano"]),
            ("endTimeUnixNano", s["endTimeUnixNano"], e["endTimeUnixNano"]),
            ("status.code", s.get("status", {}).get("code", 0), e["status"]),
            ("status.message", s.get("status", {}).get("message", ""), e["statusMessage"]),
            ("service.name", res.get("service.name"), e["service"]),
            ("scope.name", scope.get("name"), "dump.test"),
            ("scope.version", scope.get("version"), "1.2.3"),
        ]
        for what, a, b in checks:
            if a != b:
                die("%s: %s is %r, want %r" % (ctx, what, a, b))
        if not isinstance(s.get("kind", 0), int):
            die("%s: kind must be an integer" % ctx)
        attrs = {a["key"]: any_value(a["value"]) for a in s.get("attributes", [])}
        if attrs != e["attributes"]:
            die("%s: attributes %r, want %r" % (ctx, attrs, e["attributes"]))
        evs = [x["name"] for x in s.get("events", [])]
        if evs != ([e["event"]] if e["event"] else []):
            die("%s: events %r, want %r" % (ctx, evs, e["event"]))
        for x in s.get("events", []):
            if not isinstance(x["timeUnixNano"], str):
                die("%s: event timeUnixNano must be a string" % ctx)
    if mode == "exact":
        missing = sorted(set(want) - set(got))
        if missing:
            die("%d manifest spans missing from the output, e.g. %s (%s)" %
                (len(missing), missing[0], want[missing[0]]["name"]))
    print("dump_compare: %d spans match" % len(got))


if __name__ == "__main__":
    main()
