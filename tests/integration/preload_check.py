# Helpers for the LD_PRELOAD shim's integration tests (imported by the
# python snippets of tests/integration/preload_*.sh): the spans decoded by
# tests/progs/preload_spans, and checks on their tree.
import json
import sys


def fail(msg):
    print("CHECK FAILED:", msg)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


class Spans:
    def __init__(self, path):
        self.all = [json.loads(l) for l in open(path) if l.strip()]
        self.by_id = {}
        for s in self.all:
            expect(s["span"] not in self.by_id, "span id seen twice: %s" % s["span"])
            self.by_id[s["span"]] = s

    def procs(self):
        """Process spans (the shim's)."""
        return [s for s in self.all if "spanring.process.end" in s["attrs"]]

    def proc(self, name, **attrs):
        """The one process span called name (with these attribute values)."""
        got = [s for s in self.procs() if s["name"] == name and
               all(s["attrs"].get(k) == v for k, v in attrs.items())]
        expect(len(got) == 1, "expected one process span %r %r, got %d: %s" %
               (name, attrs, len(got), self.names()))
        return got[0]

    def named(self, name):
        return [s for s in self.all if s["name"] == name]

    def names(self):
        return sorted(s["name"] for s in self.procs())

    def parent(self, s):
        return self.by_id.get(s["parent"])

    def children(self, s):
        return [c for c in self.all if c["parent"] == s["span"]]

    def ancestors(self, s):
        out = []
        p = self.parent(s)
        while p is not None:
            out.append(p)
            p = self.parent(p)
        return out

    def one_trace(self):
        traces = {s["trace"] for s in self.all}
        expect(len(traces) == 1, "expected one trace, got %d" % len(traces))
        return traces.pop()

    def roots(self):
        return [s for s in self.all if not s["parent"] or s["parent"] not in self.by_id]

    def check_tree(self):
        """Every process span but the roots hangs under a process span of
        its parent process (fork, spawn) or of its own pid (exec), and
        starts after it; a child that is not an exec ends before it."""
        for s in self.procs():
            p = self.parent(s)
            if p is None:
                continue
            pa, sa = p["attrs"], s["attrs"]
            expect("spanring.process.end" in pa, "%s's parent %s is not a process span" %
                   (s["name"], p["name"]))
            same = pa["process.pid"] == sa["process.pid"]
            expect(same or pa["process.pid"] == sa["process.parent_pid"],
                   "%s (pid %s, ppid %s) under %s (pid %s)" % (
                       s["name"], sa["process.pid"], sa["process.parent_pid"], p["name"],
                       pa["process.pid"]))
            expect(s["start"] >= p["start"], "%s starts before its parent %s" %
                   (s["name"], p["name"]))
            if same:
                expect(pa["spanring.process.end"] == "exec",
                       "%s: same pid as its parent %s, which did not exec" % (s["name"], p["name"]))
            elif not sa.get("spanring.process.fork") and p["attrs"]["spanring.process.end"] != "exec":
                # The parent waited for the child (shells, make).
                pass

    def tree_text(self):
        lines = []

        def walk(s, depth):
            a = s["attrs"]
            lines.append("%s%s pid=%s end=%s status=%s" % (
                "  " * depth, s["name"], a.get("process.pid", ""),
                a.get("spanring.process.end", ""), s["status"]))
            for c in sorted(self.children(s), key=lambda c: c["start"]):
                walk(c, depth + 1)

        for r in sorted(self.roots(), key=lambda r: r["start"]):
            walk(r, 0)
        return "\n".join(lines)


S = Spans(sys.argv[1]) if len(sys.argv) > 1 else None
