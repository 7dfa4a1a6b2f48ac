#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Renders the agent, LTTng, socket-baseline and scale results of
tests/bench/run.sh (DIR/{agent,agentcg,latency,rates,sockbase,scale,lttng}.jsonl)
into the generated blocks of the benchmark document, and prints a summary.

    report_agent.py OUT_DIR DOC B

A block whose section did not run (no results file) is left as it is.
"""
import collections
import json
import os
import re
import statistics
import sys

OUT, DOC, B = sys.argv[1], sys.argv[2], sys.argv[3]
med = statistics.median


def jl(name):
    p = os.path.join(OUT, name)
    if not os.path.exists(p):
        return None
    return [json.loads(l) for l in open(p) if l.strip()]


def commands(name):
    p = os.path.join(OUT, name)
    return [l.rstrip("\n").split("|", 1) for l in open(p)] if os.path.exists(p) else []


def fmt(x, d=0):
    if x is None:
        return "–"
    return f"{x:,.{d}f}".replace(",", " ") if abs(x) >= 10000 else f"{x:.{d}f}"


def mmm(xs, d=0):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt(xs[0], d)
    return f"{fmt(med(xs), d)} ({fmt(min(xs), d)}–{fmt(max(xs), d)})"


def mm(xs):
    return med(xs) if xs else None


blocks = {}
summary = []
T = {}  # figures the targets use

# ---- producer with the agent ------------------------------------------------------
pa = jl("prodagent.jsonl")
if pa is not None:
    pa = [r for r in pa if "error" not in r]
    by = collections.defaultdict(list)
    order = []
    for r in pa:
        if r["config"] not in order:
            order.append(r["config"])
        by[r["config"]].append(r)
    def cf(x, k):
        v = x["result"].get("committed_only", x["result"]).get(k)
        return v if v and v > 0 else None
    L = ["| threads | slots | median ns/span | p99 ns/span | batch mean ns/span | drops | agent CPU ns/span |",
         "|---:|---|---:|---:|---:|---:|---:|"]
    for c in order:
        rs = by[c]
        calls = sum(x["result"]["calls"] * x["result"]["threads"] for x in rs)
        drops = sum(x["result"]["drops"] for x in rs)
        L.append(f"| {rs[0]['threads']} | {rs[0]['slot']} | {mmm([cf(x, 'median_ns') for x in rs])} | "
                 f"{mmm([cf(x, 'p99_ns') for x in rs])} | {mmm([cf(x, 'batch_median_ns') for x in rs], 1)} | "
                 f"{100 * drops / calls if calls else 0:.2f} % | {mmm([x['agent_ns_per_span'] for x in rs], 1)} |")
    L.append("")
    L.append(f"`bench_producer --agent` (no consumer thread, no inline drain: a real `spanring-agent "
             f"--null` drains the ring), the reference span, measured as in the producer table (per-span "
             f"rdtsc median and p99, batch mean; committed spans only), median over "
             f"{len({r['round'] for r in pa})} runs (min–max). *drops*: % of all spans made. *agent CPU*: "
             "its schedstat delta over the run / spans exported.")
    blocks["producer-agent"] = "\n".join(L)
    T["prodagent"] = by

# ---- agent --------------------------------------------------------------------
agent = jl("agent.jsonl")
agent_err = [r for r in agent or [] if "error" in r]
agent = [r for r in agent if "error" not in r] if agent is not None else None
if agent is not None and not agent:
    agent = None
if agent is not None:
    by = collections.defaultdict(list)
    order = []
    for r in agent:
        if r["config"] not in order:
            order.append(r["config"])
        by[r["config"]].append(r)
    L = ["| exporter | producers | producer | spans/s exported | agent CPU ns/span | agent CPU use | "
         "producer CPU ns/span | spans/batch | producer drops | agent VmHWM / RssAnon / RssShmem (MiB) |",
         "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in order:
        rs = by[c]
        r0 = rs[0]
        hwm = max(r["agent_mem_kb"].get("VmHWM", 0) for r in rs) / 1024
        anon = max(r["agent_mem_kb"].get("RssAnon", 0) for r in rs) / 1024
        shm = max(r["agent_mem_kb"].get("RssShmem", 0) for r in rs) / 1024
        L.append(f"| {r0['exporter']} | {r0['procs']} | {r0['mode']} | "
                 f"{mmm([r['spans_per_s'] / 1e6 for r in rs], 2)} M | "
                 f"{mmm([r['agent_ns_per_span'] for r in rs], 1)} | "
                 f"{mmm([100 * r['agent_cpu_util'] for r in rs])} % | "
                 f"{mmm([r['prod_ns_per_span'] for r in rs], 0)} | "
                 f"{mmm([r['spans_per_batch'] for r in rs], 0)} | "
                 f"{mmm([r['drop_pct'] for r in rs], 1)} % | {hwm:.1f} / {anon:.1f} / {shm:.1f} |")
    if not any(r["exporter"] == "otlp_http" for r in agent):
        L.append("| otlp_http | 1, 8, 64 | – | **not yet measured** (not run: quick mode) | | | | | | |")
    n = len({r["round"] for r in agent})
    loads = [float(r["loadavg"]) for r in agent]
    rb = [r["bytes_per_span"] for r in agent if r["mode"] == "api" and r["bytes_per_span"]]
    rr = [r["bytes_per_span"] for r in agent if r["mode"] == "raw" and r["bytes_per_span"]]
    L.append("")
    L.append(f"Median over {n} round{'s' if n > 1 else ''} (min–max). Each run: a fresh agent "
             f"(`-q`, default settings) with the exporter, N producer processes of "
             f"`bench_agentprod` flat out, a {agent[0]['window_s']:.1f} s window sampled after all "
             "registered and a warm-up; *spans/s* and *agent CPU ns/span* over that window "
             "(agent CPU: `/proc/PID/task/*/schedstat`, all its threads, exact ns; *CPU use*: "
             "share of one CPU). *producer* `api`: the library's API, reference span "
             f"({fmt(mm(rb), 0)} B per span exported, framing included); `raw`: the same span "
             f"pre-encoded and copied into a one-slot ring ({fmt(mm(rr), 0)} B), ~10x cheaper, so that "
             "the producer outruns the agent. *producer drops*: spans the rings refused in the window "
             "(ring full), % of spans offered. Memory: the agent's peak RSS (VmHWM) and, at the end of "
             "the window, its private memory (RssAnon) and the ring pages it maps (RssShmem: the "
             "producers' shared memory, counted once per mapping; see *Scale* for the rings' real "
             f"footprint). Load average during these runs: {min(loads):.1f}–{max(loads):.1f} "
             "(other jobs share this 2-CPU machine).")
    if agent_err:
        L.append("")
        L.append("Runs that failed (the driver's control-socket request got no answer in 30 s, "
                 "or another error; state of the agent at that moment):")
        L.append("")
        for r in agent_err:
            d = r.get("diag") or {}
            a = d.get("agent", {})
            L.append(f"- round {r['round']}, {r['config']}: `{r['error'][:160]}`; agent state "
                     f"{a.get('state', '?')}, wchan `{a.get('wchan', '?')}`, kernel stack "
                     f"`{' / '.join(x.split(' ')[-1].split('+')[0] for x in a.get('stack', '').splitlines()[:6])}`, "
                     f"Dirty {d.get('meminfo_dirty_kb', '?')} kB, load {d.get('loadavg', '?')}")
    blocks["agent"] = "\n".join(L)
    # Wake-ups (polls + doorbells + batch timers) per second and the agent's CPU per wake-up.
    W = [r for r in agent if r["exporter"] == "null" and r["procs"] <= 8 and r["spans"]]
    if W:
        wk = [(r["polls"] + r["doorbells"] + r["batches"]) / r["window_s"] for r in W]
        cpw = [r["agent_cpu_s"] * 1e9 / (r["polls"] + r["doorbells"] + r["batches"]) / 1000 for r in W
               if r["polls"] + r["doorbells"] + r["batches"]]
        spw = [r["spans"] / (r["polls"] + r["doorbells"] + r["batches"]) for r in W
               if r["polls"] + r["doorbells"] + r["batches"]]
        T["wakeups"] = (wk, cpw, spw)
        L.append("")
        L.append(f"Wake-ups of the agent (polls + doorbells + batch-age timers) in the null-exporter runs "
                 f"with 1 and 8 producers: {mmm(wk, 0)} per second, {mmm(spw, 0)} spans and "
                 f"{mmm(cpw, 1)} µs of agent CPU per wake-up.")
        blocks["agent"] = "\n".join(L)
    nul = [r["agent_ns_per_span"] for r in agent if r["exporter"] == "null" and r["agent_ns_per_span"]]
    nul_raw1 = [r["agent_ns_per_span"] for r in agent if r["config"] == "null.raw.p1" and r["agent_ns_per_span"]]
    fil = [r["agent_ns_per_span"] for r in agent if r["exporter"] == "file" and r["agent_ns_per_span"]]
    T["agent_null"] = nul
    T["agent_null_raw1"] = nul_raw1
    T["agent_file"] = fil
    T["agent_hwm_mib"] = max(r["agent_mem_kb"].get("VmHWM", 0) for r in agent) / 1024
    T["agent_anon_mib"] = max(r["agent_mem_kb"].get("RssAnon", 0) for r in agent) / 1024
    T["agent_priv_mib"] = max((r["agent_mem_kb"].get("VmHWM", 0) - r["agent_mem_kb"].get("RssShmem", 0))
                              for r in agent) / 1024
    T["max_spans_s"] = max(r["spans_per_s"] for r in agent)
    summary.append(f"agent: null {mmm(nul, 1)} ns/span, file {mmm(fil, 1)} ns/span, "
                   f"max {T['max_spans_s'] / 1e6:.2f} M spans/s, VmHWM ≤ {T['agent_hwm_mib']:.1f} MiB")

# ---- agent callgrind ----------------------------------------------------------------
acg = jl("agentcg.jsonl")
LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.+?):(\S+)(?:\s+\[(.*)\])?\s*$")


def annotate(path):
    mx, sm = {}, collections.Counter()
    if not os.path.exists(path):
        return mx, sm
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        fn = m.group(3)
        mx[fn] = max(mx.get(fn, 0), n)
        sm[fn] += n
    return mx, sm


if acg is not None:
    C = ["| exporter | instructions per span (difference of two runs) | runs: spans exported, instructions |",
         "|---|---:|---|"]
    bds = {}
    for e in acg:
        r1, r2 = e["runs"][0], e["runs"][1]
        ips = None
        if r1["ir"] and r2["ir"] and r1["spans"] is not None and r2["spans"] and r2["spans"] > r1["spans"]:
            ips = (r2["ir"] - r1["ir"]) / (r2["spans"] - r1["spans"])
        T[f"agent_ips_{e['exporter']}"] = ips
        C.append(f"| {e['exporter']} | {fmt(ips, 1)} | {r1['spans']} spans {fmt(r1['ir'])} instr; "
                 f"{r2['spans']} spans {fmt(r2['ir'])} instr |")
        if ips:
            i1, _ = annotate(os.path.join(OUT, r1["file"] + ".incl"))
            i2, _ = annotate(os.path.join(OUT, r2["file"] + ".incl"))
            _, s1 = annotate(os.path.join(OUT, r1["file"] + ".self"))
            _, s2 = annotate(os.path.join(OUT, r2["file"] + ".self"))
            dn = r2["spans"] - r1["spans"]
            rows = []
            for fn in i2:
                if ("*" in fn or fn.startswith("0x") or fn.startswith("__libc_start") or
                        fn in ("main", "(below main)", "_start")):
                    continue
                inc = (i2.get(fn, 0) - i1.get(fn, 0)) / dn
                slf = (s2.get(fn, 0) - s1.get(fn, 0)) / dn
                if inc >= 0.5:
                    rows.append((fn, inc, slf))
            rows.sort(key=lambda x: -x[1])
            bds[e["exporter"]] = rows[:14]
    C.append("")
    C.append(f"The agent under `valgrind --tool=callgrind` (user-space instructions only: the "
             f"kernel's share, e.g. the file exporter's `writev` copy, is not counted), fed by one raw "
             f"producer at {acg[0]['rate'] // 1000} k spans/s for two durations; the difference of the "
             "instruction totals over the difference of the spans exported is the steady cost per span "
             "at that rate, polls and batches included, start-up excluded.")
    for exp, rows in bds.items():
        C.append("")
        C.append(f"By function, {exp} exporter (instructions per span, inclusive / self):")
        C.append("")
        C.append("| function | inclusive | self |")
        C.append("|---|---:|---:|")
        for fn, inc, slf in rows:
            C.append(f"| `{fn}` | {inc:.1f} | {slf:.1f} |")
    blocks["agent-callgrind"] = "\n".join(C)

# ---- latency --------------------------------------------------------------------------
lat = jl("latency.jsonl")
if lat is not None:
    by = collections.defaultdict(list)
    order = []
    for r in lat:
        if r["config"] not in order:
            order.append(r["config"])
        by[r["config"]].append(r)
    L = ["| exporter | producer | load | spans committed/s | drops | latency p50 µs | p90 µs | p99 µs | max µs |",
         "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for c in order:
        rs = by[c]
        r0 = rs[0]
        res = [r["result"] for r in rs if r.get("result")]
        lats = [x["lat"] for x in res if x.get("lat")]
        L.append(f"| {r0['exporter']} | {r0['mode']} | "
                 f"{'10 k spans/s' if r0['case'] == 'r10k' else 'saturation (flat out)'} | "
                 f"{mmm([x['committed'] / x['wall_s'] for x in res if x.get('wall_s')], 0)} | "
                 f"{mmm([100 * x['drops'] / (x['drops'] + x['committed']) for x in res if x.get('committed')], 1)} % | "
                 f"{mmm([x['p50_us'] for x in lats])} | {mmm([x['p90_us'] for x in lats])} | "
                 f"{mmm([x['p99_us'] for x in lats])} | {mmm([x['max_us'] for x in lats])} |")
    n = len({r["round"] for r in lat})
    loads = [float(r["loadavg"]) for r in lat]
    L.append("")
    L.append(f"Median over {n} run{'s' if n > 1 else ''} (min–max). Latency: from the span's commit "
             "(its end: the library stamps `end_ns` just before it commits) until the agent released "
             "it, i.e. every exporter had finished with it (file: its `writev` returned; null: the "
             "batch was handed over), seen by a thread of the producer polling the slot's `tail` every "
             "~20 µs (resolution ~0.1 ms on this VM). At 10 k spans/s every span is measured; at "
             "saturation every 64th committed span. Agent defaults: `poll_interval_max` 5 ms (an idle "
             "agent's back-off), `batch_max_age` 2 ms. "
             f"Load average during these runs: {min(loads):.1f}–{max(loads):.1f}.")
    blocks["latency"] = "\n".join(L)
    T["lat10k_p99"] = {c: [r["result"]["lat"]["p99_us"] for r in by[c] if r.get("result", {}).get("lat")]
                       for c in order if c.endswith("r10k")}

# ---- rates ------------------------------------------------------------------------------
rates = jl("rates.jsonl")
if rates is not None:
    by = collections.defaultdict(list)
    order = []
    for r in rates:
        if r["config"] not in order:
            order.append(r["config"])
        by[r["config"]].append(r)
    L = ["| producer | processes | target rate | agent settings | offered spans/s | committed spans/s | "
         "drops | agent CPU ns/span |",
         "|---|---:|---:|---|---:|---:|---:|---:|"]
    for c in order:
        rs = by[c]
        r0 = rs[0]
        tr = "flat out" if r0["target_rate"] == 0 else f"{r0['target_rate'] / 1e6:g} M/s"
        envs = " ".join(f"`{k}={v}`" for k, v in (r0.get("producer_env") or {}).items())
        L.append(f"| {c.split('.')[0]}{' ' + envs if envs else ''} | {r0['procs']} | {tr} | "
                 f"{' '.join('`' + a + '`' for a in r0.get('agent_args', [])) or 'defaults'} | "
                 f"{mmm([r['offered_per_s'] / 1e6 for r in rs], 2)} M | "
                 f"{mmm([r['committed_per_s'] / 1e6 for r in rs], 2)} M | "
                 f"{mmm([r['drop_pct'] for r in rs], 2)} % | {mmm([r['agent_ns_per_span'] for r in rs], 1)} |")
    n = len({r["round"] for r in rates})
    loads = [float(r["loadavg"]) for r in rates]
    L.append("")
    L.append(f"Median over {n} run{'s' if n > 1 else ''} (min–max). Default ring (8 slots × 512 KiB; "
             "a raw producer thread writes one slot; an api one moves to a free slot when its own is full) unless a row sets `SPANRING_SLOT_SIZE`, agent with "
             "the null exporter. The producer paces "
             "itself in 100 µs chunks; *offered*: spans it made per second (committed + refused), "
             "*committed*: spans the ring took; *drops*: refused, % of offered. "
             f"Load average during these runs: {min(loads):.1f}–{max(loads):.1f}.")
    blocks["rates"] = "\n".join(L)
    T["rates"] = by

# ---- socket baseline ------------------------------------------------------------------------
sb = jl("sockbase.jsonl")
if sb is not None:
    byr = collections.defaultdict(dict)
    for r in sb:
        byr[r["round"]][r["config"]] = r
    def col(cfg, key):
        out = []
        for rd in byr.values():
            x = rd.get(cfg)
            if not x:
                continue
            v = x["result"].get(key) if "result" in x else x.get(key)
            if v is not None:
                out.append(v)
        return out
    L = ["| path | sender / producer CPU ns/span | receiver / agent CPU ns/span | total CPU ns/span | "
         "ratio to spanring (same round) |", "|---|---:|---:|---:|---:|"]
    sr_tot = col("spanring.null", "total_ns_per_span")
    ratios = {}
    for tr in ("tcp", "unix"):
        xs = []
        for rd in byr.values():
            a, s = rd.get(f"sock.{tr}"), rd.get("spanring.null")
            if a and s and a["result"].get("total_ns_per_span") and s.get("total_ns_per_span"):
                xs.append(a["result"]["total_ns_per_span"] / s["total_ns_per_span"])
        ratios[tr] = xs
        L.append(f"| protobuf-c batches of 512 over {'loopback TCP' if tr == 'tcp' else 'a unix socket'} | "
                 f"{mmm(col(f'sock.{tr}', 'sender_ns_per_span'), 0)} | "
                 f"{mmm(col(f'sock.{tr}', 'receiver_ns_per_span'), 0)} | "
                 f"{mmm(col(f'sock.{tr}', 'total_ns_per_span'), 0)} | {mmm(xs, 1)} × |")
    L.append(f"| spanring: library API → ring → agent (null exporter) | "
             f"{mmm(col('spanring.null', 'prod_ns_per_span'), 0)} | "
             f"{mmm(col('spanring.null', 'agent_ns_per_span'), 0)} | {mmm(sr_tot, 0)} | 1 |")
    prod = jl("producer.jsonl") or []
    ref = [r["result"].get("committed_only", r["result"])["batch_median_ns"] for r in prod
           if r.get("config") == "ref.t1" and not r.get("error")]
    sat = [r["agent_ns_per_span"] for r in (agent or []) if r["exporter"] == "null" and r["agent_ns_per_span"]]
    socks = col("sock.tcp", "total_ns_per_span") + col("sock.unix", "total_ns_per_span")
    if ref and sat and socks:
        tot = med(ref) + med(sat)
        T["sock_ratio_sat"] = med(socks) / tot
        L.append(f"| *spanring at full speed (derived, same suite): producer batch mean (Producer table, "
                 f"reference, 1 thread) + agent null median (Agent table)* | {med(ref):.0f} | {med(sat):.0f} | "
                 f"{tot:.0f} | *{med(socks) / tot:.1f} ×* |")
    rate = next((r["rate"] for r in sb if r["config"] == "spanring.null"), None)
    L.append("")
    L.append(f"Median over {len(byr)} round{'s' if len(byr) > 1 else ''} (min–max); every path "
             f"carries the same reference spans at {fmt(rate)} spans/s (both pace themselves once per "
             "512 spans), CPU time of every process involved (getrusage of the sender, the receiver "
             "and the spanring producer, whole process including start-up; the agent's schedstat "
             "delta around the run, idle polls included). The baseline is favourable to sockets: no "
             "per-span allocation (message structs reused), no string copies, a 4-byte length frame "
             "instead of HTTP/gRPC, no response.")
    blocks["sockbase"] = "\n".join(L)
    T["sock_ratio"] = ratios

# ---- scale -------------------------------------------------------------------------------------
sc = jl("scale.jsonl")
if sc is not None:
    P_ = [r for r in sc if r["config"].startswith("procs.")]
    TH = [r for r in sc if r["config"].startswith("threads.")]
    L = ["| producer processes | registered | rejected | time to register all | rings: allocated / "
         "mapped size | agent VmHWM | agent RssAnon | agent RssShmem | agent fds | producers' RSS (sum) |",
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in P_:
        a = r["agent"]
        L.append(f"| {r['procs']} | {r['registered']} | {r['rejected']} | {r['register_all_s']:.2f} s | "
                 f"{r['ring_alloc_kb'] / 1024:.1f} / {r['ring_size_kb'] / 1024:.0f} MiB | "
                 f"{a.get('VmHWM', 0) / 1024:.1f} MiB | {a.get('RssAnon', 0) / 1024:.1f} MiB | "
                 f"{a.get('RssShmem', 0) / 1024:.1f} MiB | {r['agent_fds']} | {r['prod_rss_kb'] / 1024:.0f} MiB |")
    L.append("")
    if P_:
        L.append(f"Each process: `bench_agentprod --rate 2000 --hold` (the reference span at 2 000 spans/s "
                 "for the run, then it keeps its ring registered while memory is read), default ring "
                 "(8 slots × 512 KiB). *rings allocated*: pages of the rings' memfds that exist "
                 "(`st_blocks` of each memfd, each counted once): the rings' real cost to the host; "
                 "*mapped size*: what they could grow to. Agent limits left at their defaults "
                 "(`max_producers` 4096, `max_producers_per_uid` 1024, `max_mapped_per_uid` 4G); "
                 f"RLIMIT_NOFILE of the suite: soft {P_[0]['nofile'][0]}, hard {P_[0]['nofile'][1]} "
                 "(the agent keeps 2 descriptors per producer: the connection and the memfd).")
        L.append("")
    L.append("| threads in one process | started | spans/s committed | drops | threads sharing a slot | "
             "rings: allocated | process RSS |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|")
    for r in TH:
        L.append(f"| {r['threads']} | {r['threads_started']} | {fmt(r['committed_per_s'], 0)} | "
                 f"{fmt(r['drop_pct'], 1)} % | {r['slots_shared']} | {r['ring_alloc_kb'] / 1024:.1f} MiB | "
                 f"{r['prod_rss_kb'] / 1024:.1f} MiB |")
    L.append("")
    L.append("One process, N threads each writing the reference span flat out for the run "
             "(`bench_agentprod --threads N --hold`), default ring: 8 slots, of which 7 are owned by "
             "one thread each and 1 is shared by every other thread under a mutex. "
             f"Load average during these runs: {min(float(r['loadavg']) for r in sc):.1f}–"
             f"{max(float(r['loadavg']) for r in sc):.1f}.")
    blocks["scale"] = "\n".join(L)
    T["scale"] = sc

# ---- LTTng ---------------------------------------------------------------------------------------
lt = jl("lttng.jsonl")
if lt is not None:
    errs = [r for r in lt if r["kind"] == "error"]
    setup = next((r for r in lt if r["kind"] == "setup"), None)
    L = []
    if setup:
        L.append(f"LTTng-UST {setup['ust']}, {setup['tools']}; our own `lttng-sessiond --daemonize "
                 "--no-kernel` (root, `LTTNG_HOME` in a temp dir), per-user buffers, trace written to a "
                 "temp dir on the same disk as the agent's file output.")
        L.append("")
    prod = [r for r in lt if r["kind"] == "producer"]
    if prod:
        byrd = collections.defaultdict(dict)
        for r in prod:
            byrd[r["round"]][r["tool"]] = r["result"]
        def colp(tool, key):
            return [rd[tool][key] for rd in byrd.values() if tool in rd and rd[tool].get(key)]
        def rat(a, b, key):
            return [rd[a][key] / rd[b][key] for rd in byrd.values()
                    if a in rd and b in rd and rd[a].get(key) and rd[b].get(key)]
        L.append("| caller's cost | median ns | p99 ns | batch mean ns | instructions |")
        L.append("|---|---:|---:|---:|---:|")
        cg = next((r for r in lt if r["kind"] == "callgrind"), None)
        lt_ipe = (cg["ir2"] - cg["ir1"]) / (cg["n2"] - cg["n1"]) if cg else None
        T["lttng_ipe"] = lt_ipe
        def sr_committed(key):
            return [rd["spanring"].get("committed_only", rd["spanring"]).get(key) for rd in byrd.values()
                    if "spanring" in rd]
        L.append(f"| spanring reference span (start → end, consumer thread) | {mmm(sr_committed('median_ns'))} | "
                 f"{mmm(sr_committed('p99_ns'))} | {mmm(sr_committed('batch_median_ns'), 1)} | "
                 f"see *Instructions per span* (2043 when written) |")
        L.append(f"| LTTng-UST tracepoint, same payload | {mmm(colp('lttng.span', 'median_ns'))} | "
                 f"{mmm(colp('lttng.span', 'p99_ns'))} | {mmm(colp('lttng.span', 'batch_median_ns'), 1)} | "
                 f"{fmt(lt_ipe, 0)} |")
        L.append(f"| LTTng-UST tracepoint, one integer | {mmm(colp('lttng.one_int', 'median_ns'))} | "
                 f"{mmm(colp('lttng.one_int', 'p99_ns'))} | {mmm(colp('lttng.one_int', 'batch_median_ns'), 1)} | – |")
        r_med = [rd["spanring"].get("committed_only", rd["spanring"])["median_ns"] / rd["lttng.span"]["median_ns"]
                 for rd in byrd.values() if "spanring" in rd and "lttng.span" in rd]
        r_bat = [rd["spanring"].get("committed_only", rd["spanring"])["batch_median_ns"] /
                 rd["lttng.span"]["batch_median_ns"]
                 for rd in byrd.values() if "spanring" in rd and "lttng.span" in rd]
        L.append(f"| **ratio spanring / LTTng, same round** | {mmm(r_med, 2)} | | {mmm(r_bat, 2)} | |")
        L.append("")
        L.append(f"{len(byrd)} rounds, each: `bench_producer` (reference span, 8 MiB slots, consumer "
                 "thread) then `bench_lttng` (event enabled, session active), both pinned to CPU 0, "
                 "median (min–max) over rounds. The LTTng caller prepares ids, name, times and values "
                 "outside the timed call (only a counter changes): the figure is the tracepoint alone, "
                 "which favours LTTng; spanring's includes two clock reads and an id. Instructions: "
                 "`callgrind --toggle-collect=one_event`, difference of two runs.")
        L.append("")
        T["lttng_ratio_med"] = r_med
        T["lttng_ratio_batch"] = r_bat
        T["lttng_med"] = colp("lttng.span", "median_ns")
    cons = [r for r in lt if r["kind"] == "consumer"]
    if cons:
        L.append("| consumer daemon | events recorded | discarded | lttng-consumerd CPU | CPU ns/event | trace bytes/event |")
        L.append("|---|---:|---:|---:|---:|---:|")
        T["lttng_cons"] = {}
        for r in cons:
            calls = r["result"]["calls"] if "result" in r else r["events"]
            disc = r.get("discarded") or 0
            rec = calls - disc
            ns = r["consumer_cpu_ns"] / rec if rec else None
            T["lttng_cons"][r["channel"] + " / " + r["phase"]] = ns
            L.append(f"| {r['channel']}, {r['phase']} | {fmt(rec)} | {fmt(disc)} "
                     f"({100 * disc / calls:.1f} %) | {r['consumer_cpu_ns'] / 1e6:.1f} ms | {fmt(ns, 1)} | "
                     f"{fmt(r['trace_bytes'] / rec, 0) if r.get('trace_bytes') and rec else '–'} |")
        L.append("")
        L.append("Consumer CPU: every thread of `lttng-consumerd` (schedstat) from before the first "
                 "event to after `lttng stop` (which waits until the consumer has written "
                 "everything); events recorded = calls − discarded. *flat out*: one `bench_lttng` "
                 "process emitting as fast as it can (~150 ns per event, i.e. ~6 M events/s); "
                 "*rounds*: the rounds above, with pauses. Discarded events: `lttng list SESSION` "
                 "(\"Discarded events\").")
    if errs:
        L.append("")
        L.append("**Not measured (or only partly)** — what failed:")
        L.append("")
        for e in errs:
            L.append(f"- step *{e['step']}*: `{e['command']}` → `{e['error'].strip()[:400]}`")
    blocks["lttng"] = "\n".join(L)

# ---- targets -----------------------------------------------------------------------------------
G = ["| target (issue) | measured | status |", "|---|---|---|"]


def status(ok):
    return "**PASS**" if ok else "**MISS**"


if T.get("prodagent"):
    for c, rs in T["prodagent"].items():
        ms = [x["result"].get("committed_only", x["result"]).get("median_ns") for x in rs]
        ms = [m for m in ms if m]
        if ms and c.endswith(".8M"):
            G.append(f"| reference span median ≤ 100 ns, agent draining to null ({rs[0]['threads']} "
                     f"thread{'s' if rs[0]['threads'] > 1 else ''}, 8 MiB slots; 7 §7) | {mmm(ms, 1)} ns (batch mean "
                     f"{mmm([x['result'].get('committed_only', x['result']).get('batch_median_ns') for x in rs], 1)}) | "
                     f"{status(med(ms) <= 100)} |")


if T.get("agent_null"):
    m = med(T["agent_null"])
    G.append(f"| agent CPU ≤ 20 ns/span to the null exporter (3 §9, 7 §7) | all null runs {mmm(T['agent_null'], 1)} ns; "
             f"1 raw producer {mmm(T.get('agent_null_raw1', []), 1)} ns | {status(m <= 20)} |")
    G.append(f"| ≥ 10 M spans/s per agent core when producers supply them | best window "
             f"{T['max_spans_s'] / 1e6:.2f} M spans/s exported (agent CPU use well below one core: "
             f"bound by batching, see the analysis) | {status(T['max_spans_s'] >= 10e6)} |")
if T.get("agent_hwm_mib") is not None:
    G.append(f"| agent RSS ≤ 32 MiB at any rate (3 §9, 7 §7), as VmHWM (includes the ring pages it maps) | "
             f"≤ {T['agent_hwm_mib']:.1f} MiB over the agent runs (1–64 producers) | "
             f"{status(T['agent_hwm_mib'] <= 32)} |")
    G.append(f"| ... the agent's own memory (VmHWM − RssShmem: heap, stacks, code) | ≤ {T['agent_priv_mib']:.1f} MiB "
             f"(RssAnon ≤ {T['agent_anon_mib']:.1f} MiB) | {status(T['agent_priv_mib'] <= 32)} |")
if sc:
    big = [r for r in sc if r["config"].startswith("procs.")]
    if big:
        b = big[-1]
        G.append(f"| agent RSS ≤ 32 MiB with {b['procs']} producers (Scale) | VmHWM "
                 f"{b['agent'].get('VmHWM', 0) / 1024:.1f} MiB, of which ring pages (RssShmem) "
                 f"{b['agent'].get('RssShmem', 0) / 1024:.1f} MiB; RssAnon {b['agent'].get('RssAnon', 0) / 1024:.1f} MiB | "
                 f"{status(b['agent'].get('VmHWM', 0) / 1024 <= 32)} as VmHWM, "
                 f"{status((b['agent'].get('VmHWM', 0) - b['agent'].get('RssShmem', 0)) / 1024 <= 32)} without the rings |")
if T.get("rates"):
    for key in ("api.5M", "raw.5M"):
        rs = T["rates"].get(key)
        if rs:
            d = med([r["drop_pct"] for r in rs])
            G.append(f"| no producer-side drops at 5 M spans/s, default ring ({key.split('.')[0]} producer; 3 §9, 7 §7) | "
                     f"offered {mmm([r['offered_per_s'] / 1e6 for r in rs], 2)} M/s, drops {mmm([r['drop_pct'] for r in rs], 2)} % | "
                     f"{status(d == 0)} |")
    s4 = T["rates"].get("api.5M.slot4M")
    if s4:
        a4 = [r["agent_ns_per_span"] for r in s4 if r["agent_ns_per_span"]]
        if a4:
            G.append(f"| agent CPU ≤ 20 ns/span to null when fed at 5 M spans/s (one API producer, "
                     f"`SPANRING_SLOT_SIZE=4M`, default agent) | {mmm(a4, 1)} ns, "
                     f"{mmm([r['committed_per_s'] / 1e6 for r in s4], 2)} M spans/s | {status(med(a4) <= 20)} |")
    mx = T["rates"].get("api.max")
    if mx:
        G.append(f"| (can the producers here reach 5 M/s?) one API producer flat out | offered "
                 f"{mmm([r['offered_per_s'] / 1e6 for r in mx], 2)} M/s, committed "
                 f"{mmm([r['committed_per_s'] / 1e6 for r in mx], 2)} M/s, drops {mmm([r['drop_pct'] for r in mx], 1)} % | – |")
if T.get("lat10k_p99"):
    for c, xs in T["lat10k_p99"].items():
        if xs:
            G.append(f"| end-to-end p99 ≤ 10 ms at 10 k spans/s ({c.replace('.r10k', '')}; 7 §7) | "
                     f"{mmm([x / 1000 for x in xs], 1)} ms | {status(med(xs) <= 10000)} |")
if T.get("lttng_ratio_med"):
    G.append(f"| producer median ≤ 0.75 × LTTng-UST per event, same run (7 §7) | ratio {mmm(T['lttng_ratio_med'], 2)} "
             f"(batch mean {mmm(T['lttng_ratio_batch'], 2)}) | {status(med(T['lttng_ratio_med']) <= 0.75)} |")
if T.get("lttng_cons"):
    flat = [v for k, v in T["lttng_cons"].items() if "flat" in k and v]
    lc = med(flat) if flat else None
    if lc and T.get("agent_null"):
        G.append(f"| agent CPU/span (null) ≤ LTTng consumer CPU/event (same run) | {med(T['agent_null']):.1f} vs "
                 f"{lc:.1f} ns | {status(med(T['agent_null']) <= lc)} |")
    if lc and T.get("agent_file"):
        G.append(f"| agent CPU/span (file) ≤ 0.5 × LTTng consumer CPU/event (7 §7) | {med(T['agent_file']):.1f} vs "
                 f"0.5 × {lc:.1f} ns | {status(med(T['agent_file']) <= 0.5 * lc)} |")
if T.get("sock_ratio"):
    for tr, xs in T["sock_ratio"].items():
        if xs:
            G.append(f"| producer + agent CPU ≥ 10 × lower than the socket baseline ({tr}, same rate, same round; 7 §7) | "
                     f"{mmm(xs, 1)} × | {status(med(xs) >= 10)} |")
    if T.get("sock_ratio_sat"):
        G.append(f"| ... with spanring's full-speed costs (derived from other tables of this run) | "
                 f"{T['sock_ratio_sat']:.1f} × | {status(T['sock_ratio_sat'] >= 10)} (derived) |")
if len(G) > 2:
    blocks["agent-targets"] = "\n".join(G)

# ---- wake: the agent when little happens (issue 15) -------------------------------------------
wk = jl("wake.jsonl")
if wk is not None:
    wk = [r for r in wk if "error" not in r]
    names = {"idle.p0": "idle, no producer", "idle.p100": "idle, 100 registered producers",
             "otlp.r10k": "10 k spans/s, OTLP/HTTP", "otlp.r1k": "1 k spans/s, OTLP/HTTP"}
    L = ["| situation | agent | agent CPU, % of a core | wake-ups/s (voluntary context switches) "
         "| agent CPU µs/span | spans/batch | end-to-end p50 µs | p99 µs | max µs "
         "| released p50 µs | p99 µs |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    W = []
    for case in ("idle.p0", "idle.p100", "otlp.r10k", "otlp.r1k"):
        for build in ("before", "after"):
            rs = [r for r in wk if r["config"] == case and r["build"] == build]
            if not rs:
                continue
            lat = [r.get("lat", {}) for r in rs]
            e2e = [r.get("e2e", {}) for r in rs]
            L.append(f"| {names[case]} | {build} | {mmm([r['agent_cpu_pct'] for r in rs], 3)} | "
                     f"{mmm([r['wakeups_per_s'] for r in rs], 1)} | "
                     f"{mmm([r.get('agent_us_per_span') for r in rs], 2)} | "
                     f"{mmm([r.get('spans_per_batch') for r in rs])} | "
                     f"{mmm([x.get('p50_us') for x in e2e])} | {mmm([x.get('p99_us') for x in e2e])} | "
                     f"{mmm([x.get('max_us') for x in e2e])} | "
                     f"{mmm([x.get('p50_us') for x in lat])} | {mmm([x.get('p99_us') for x in lat])} |")
            if build == "after":
                cpu = mm([r["agent_cpu_pct"] for r in rs])
                wu = mm([r["wakeups_per_s"] for r in rs])
                us = mm([r.get("agent_us_per_span") for r in rs if r.get("agent_us_per_span")])
                p99 = mm([x.get("p99_us") for x in e2e if x.get("p99_us") is not None])
                if case.startswith("idle"):
                    W.append(f"| {names[case]}: ≤ 0.1 % of a core, ≤ 10 wake-ups/s | "
                             f"{fmt(cpu, 3)} %, {fmt(wu, 1)}/s | {status(cpu <= 0.1 and wu <= 10)} |")
                elif case == "otlp.r10k":
                    W.append(f"| {names[case]}: ≤ 1 µs/span, end-to-end p99 ≤ 10 ms | {fmt(us, 2)} µs, "
                             f"p99 {fmt(p99)} µs | {status(us is not None and us <= 1 and p99 is not None and p99 <= 10000)} |")
                else:
                    W.append(f"| {names[case]}: ≤ 5 µs/span | {fmt(us, 2)} µs | "
                             f"{status(us is not None and us <= 5)} |")
    fnames = {"floor.r10k.n1": "floor: 1 backend, batches of 10 k spans/s",
              "floor.r1k.n1": "floor: 1 backend, batches of 1 k spans/s",
              "floor.r10k.n3": "floor: 3 backends, batches of 10 k spans/s"}
    for case, name in fnames.items():
        rs = [r for r in wk if r["config"] == case]
        if rs:
            L.append(f"| {name} | no agent: `bench_reqfloor` | {mmm([r['agent_cpu_pct'] for r in rs], 3)} | "
                     f"– | {mmm([r['agent_us_per_span'] for r in rs], 2)} | – | – | – | – | – | – |")
    la = [float(r["loadavg"]) for r in wk]
    L.append("")
    L.append(f"Median over {max((r['round'] for r in wk), default=0)} rounds (min–max). Each run: a "
             "fresh agent (`-q`, defaults: `latency_bound` 10 ms) exporting over OTLP/HTTP to "
             "`bench_otlpsink` on 127.0.0.1, and a 10 s window: agent CPU from "
             "`/proc/PID/task/*/schedstat` (all its threads), wake-ups from `voluntary_ctxt_switches` "
             "of `/proc/PID/task/*/status` (all its threads, the membarrier helper included). "
             "*idle*: no producer, or 100 `sr-testprod -n 1 -H` processes each registered with one "
             "span exported before the window. *k spans/s*: one `bench_agentprod --mode api` "
             "producer paced to the rate. *End-to-end*: every span, from its end (`end_time_unix_nano`, "
             "the producer's clock) until the sink had read its request whole (`bench_otlpsink "
             "--latency` decodes every span's end time). *Released*: every span, from its commit until "
             "the agent released its ring space (`bench_agentprod --latency --lat-every 1`): the "
             "exporter reads the answer with its next batch, up to one `latency_bound` after the "
             "backend got it (docs/EXPORTERS.md, \"Data path\"). *before*: the "
             "agent and producers of the build given with `--base` (the previous version). *floor*: "
             "no agent, only what a batch takes from the kernel: `tests/bench/bench_reqfloor.c` "
             "wakes every 8.75 ms (7/8 of `latency_bound`, the agent's batch period under a steady "
             "flow), reads each backend's previous answer without waiting and sends one request "
             "of the size the agent sent at that rate (same round) with one `sendmsg`; µs/span is "
             "its CPU per batch × 114 batches/s ÷ the rate. "
             f"Load average during these runs: {min(la, default=0):.1f}–{max(la, default=0):.1f}.")
    if len(L) > 3:
        blocks["wake"] = "\n".join(L)
    if W:
        blocks["wake-targets"] = "\n".join(["| target (issue 15) | measured (median) | met |",
                                           "|---|---|---|"] + W)

# ---- commands ------------------------------------------------------------------------------------
K = []
for sec in ("prodagent", "agent", "agentcg", "latency", "rates", "sockbase", "scale", "lttng", "wake"):
    cs = commands(f"{sec}.commands")
    if cs:
        K.append(f"# {sec}")
        K += [re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:$PORT", c) for _, c in cs]
if K:
    blocks["commands-agent"] = "```sh\n" + "\n".join(K) + "\n```"

# ---- write ----------------------------------------------------------------------------------------
for s in summary:
    print(s)
if len(G) > 2:
    print("\ntargets (issues 3 and 7):")
    for line in G[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        print(f"  {cells[2].replace('**', ''):<5} {cells[0]}: {cells[1]}")
if DOC == "-":
    sys.exit(0)
text = open(DOC).read() if os.path.exists(DOC) else "# spanring benchmarks\n"
for name, body in blocks.items():
    begin, end = f"<!-- BEGIN bench:{name} -->", f"<!-- END bench:{name} -->"
    new = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: new, text, flags=re.S)
    else:
        text += f"\n## {name}\n\n{new}\n"
open(DOC, "w").write(text)
print(f"document: {DOC} (blocks: {', '.join(blocks)})", file=sys.stderr)
