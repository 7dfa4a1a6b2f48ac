#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Agent-side benchmarks for tests/bench/run.sh (issue 3 §9, issue 7 §4-6).

    agent.py SECTION --build B --out DIR [--quick]

SECTION is one of
  prodagent the producer hot path (bench_producer, reference span) with the
            real agent draining to the null exporter instead of the
            in-process consumer thread, 1 and 2 threads, 8 MiB and 512 KiB slots
  agent     spans/s and agent CPU ns/span, 1/8/64 producer processes, to the
            null, file and OTLP/HTTP exporters, api and raw producers; agent
            memory (VmHWM, RssAnon, RssShmem)
  latency   span end -> released by every exporter, p50/p99, at 10 k spans/s
            and at saturation (bench_agentprod --latency)
  rates     producer-side drops at set rates with the default ring (5 M/s)
  sockbase  protobuf-c over loopback TCP / unix socket vs spanring producer +
            agent, same spans, same rate
  scale     256 producer processes on one agent; 1..1024 threads in one
            process; memory of rings + agent vs processes and threads
  wake      the agent when little happens (issue 15): CPU and voluntary
            context switches over 10 s idle (no producer; 100 idle
            registered producers), agent CPU per span and end-to-end
            latency at 10 k and 1 k spans/s to OTLP/HTTP; with --base B2
            the same cases also with B2's agent and producers ("before")
Each appends JSON lines to DIR/SECTION.jsonl and the commands it ran to
DIR/SECTION.commands. Every process it starts is bounded in time and
killed on exit; sockets are unix sockets in a private temp dir, the OTLP
sink listens on 127.0.0.1.

CPU time comes from /proc/PID/task/*/schedstat (ns, exact, summed over the
process's threads), sampled at both ends of a measurement window; memory
from /proc/PID/status; ring memory from st_blocks of each ring's memfd
(/proc/PID/fd), each memfd counted once.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

P = argparse.ArgumentParser()
P.add_argument("section")
P.add_argument("--build", required=True)
P.add_argument("--out", required=True)
P.add_argument("--quick", action="store_true")
P.add_argument("--base", help="wake: a second build to compare with (its agent and producers)")
A = P.parse_args()
B = A.build
AGENT = os.path.join(B, "bin", "spanring-agent")
PROD = os.path.join(B, "bench", "bench_agentprod")
SINK = os.path.join(B, "bench", "bench_otlpsink")
SOCKBASE = os.path.join(B, "bench", "bench_sockbase")
TMP = tempfile.mkdtemp(prefix="sr-bench-agent.")
CHILDREN = []
QUICK = A.quick


def log(msg):
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {A.section}: {msg}\n")
    sys.stderr.flush()


def emit(obj):
    with open(os.path.join(A.out, f"{A.section}.jsonl"), "a") as f:
        f.write(json.dumps(obj) + "\n")


def command(cid, cmd):
    with open(os.path.join(A.out, f"{A.section}.commands"), "a") as f:
        if A.base:
            cmd = cmd.replace(A.base.rstrip("/") + "/", "$BASE/")
        f.write(f"{cid}|{cmd.replace(B + '/', '$B/').replace(TMP, '$T')}\n")


def cleanup():
    for p in CHILDREN:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
    for p in CHILDREN:
        try:
            p.wait(timeout=5)
        except Exception:
            pass
    subprocess.run(["rm", "-rf", TMP])


def task_vcsw(pid):
    """Voluntary context switches of every live thread of pid (wake-ups)."""
    total = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                for line in open(f"/proc/{pid}/task/{t}/status"):
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
            except (OSError, ValueError):
                pass
    except OSError:
        pass
    return total


def task_cpu_ns(pid):
    """CPU time of every live thread of pid (schedstat: exact, ns)."""
    total = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    return total


def ut_st(pid):
    """utime, stime of the process in seconds (/proc/PID/stat, clock ticks)."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        hz = os.sysconf("SC_CLK_TCK")
        return int(f[11]) / hz, int(f[12]) / hz
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0


def proc_status(pid):
    out = {}
    try:
        for line in open(f"/proc/{pid}/status"):
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"):
                out[k] = int(v.split()[0])  # kB, or a count
    except OSError:
        pass
    return out


def memfds(pids):
    """{(dev, ino): allocated bytes} of the spanring memfds the pids hold."""
    seen = {}
    for pid in pids:
        d = f"/proc/{pid}/fd"
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            try:
                link = os.readlink(f"{d}/{n}")
                if not link.startswith("/memfd:spanring"):
                    continue
                st = os.stat(f"{d}/{n}")
                seen[(st.st_dev, st.st_ino)] = (st.st_blocks * 512, st.st_size)
            except OSError:
                pass
    return seen


def loadavg():
    return open("/proc/loadavg").read().split()[0]


class Agent:
    def __init__(self, args, tag="a", binary=None):
        self.sock = os.path.join(TMP, f"{tag}.sock")
        # Its own state directory (spools): the machine's default one is
        # neither read nor left behind.
        self.args = [binary or AGENT, "--socket", self.sock, "-q",
                     "--state-dir=" + os.path.join(TMP, f"{tag}.state")] + args
        self.log = open(os.path.join(TMP, f"{tag}.log"), "ab")
        self.p = subprocess.Popen(self.args, stdout=self.log, stderr=self.log)
        CHILDREN.append(self.p)
        for _ in range(400):
            if os.path.exists(self.sock + ".ctl"):
                try:
                    self.ctl("ping")
                    return
                except OSError:
                    pass
            if self.p.poll() is not None:
                raise RuntimeError(f"agent exited at start: {self.args}")
            time.sleep(0.01)
        raise RuntimeError("agent did not start")

    def ctl(self, cmd, timeout=30):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock + ".ctl")
        s.sendall((cmd + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(1 << 20)
            if not d:
                break
            buf += d
        s.close()
        return json.loads(buf)

    def cpu(self):
        return task_cpu_ns(self.p.pid)

    def mem(self):
        return proc_status(self.p.pid)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode


class Sink:
    def __init__(self, latency=False):
        pf = os.path.join(TMP, "sink.port")
        if os.path.exists(pf):
            os.unlink(pf)
        self.p = subprocess.Popen([SINK, "--port-file", pf, "--max-seconds", "900"] +
                                  (["--latency"] if latency else []),
                                  stdout=subprocess.PIPE, text=True)
        CHILDREN.append(self.p)
        for _ in range(300):
            if os.path.exists(pf) and open(pf).read().strip():
                break
            time.sleep(0.01)
        self.port = int(open(pf).read())

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        out, _ = self.p.communicate(timeout=10)
        try:
            return json.loads(out)
        except ValueError:
            return {}


def exporter_args(exp):
    if exp == "null":
        return ["--null"], None
    if exp == "file":
        return ["--file", os.path.join(TMP, "out.pb"), "--file.rotate-bytes", "256M",
                "--file.rotate-keep", "1"], None
    if exp == "otlp_http":
        sink = Sink()
        return ["--exporter", f"otlp_http:http://127.0.0.1:{sink.port}/v1/traces"], sink
    raise ValueError(exp)


def start_producers(ag, n, args, env_extra=None, prog=None):
    env = dict(os.environ, SPANRING_SOCKET=ag.sock)
    env.update(env_extra or {})
    ps = []
    for _ in range(n):
        p = subprocess.Popen([prog or PROD] + args, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        CHILDREN.append(p)
        ps.append(p)
    return ps


def wait_registered(ag, n, timeout=20):
    t = time.time() + timeout
    st = ag.ctl("stats")
    while time.time() < t:
        st = ag.ctl("stats")
        if st["agent"]["producers"] >= n:
            return st
        time.sleep(0.02)
    return st


def collect(ps, sig=True, timeout=30):
    out = []
    for p in ps:
        if sig and p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in ps:
        try:
            o, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            o, _ = p.communicate()
        for line in (o or "").splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
                break
    return out


LAST_DIAG = {}


def diag(pid):
    """Where a process is (state, wchan, kernel stack) when it does not answer."""
    d = {}
    for k in ("wchan", "stack"):
        try:
            d[k] = open(f"/proc/{pid}/{k}").read()[:600]
        except OSError:
            pass
    try:
        d["state"] = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        pass
    d["cpu_ns"] = task_cpu_ns(pid)
    return d


def sample(ag, ps):
    global LAST_DIAG
    try:
        st = ag.ctl("stats")
    except socket.timeout:
        LAST_DIAG = {"agent": diag(ag.p.pid), "loadavg": loadavg(),
                     "meminfo_dirty_kb": next((int(l.split()[1]) for l in open("/proc/meminfo")
                                               if l.startswith("Dirty:")), None)}
        raise
    drops = sum(pr.get("drops", {}).get("total", 0) for pr in st["producers"])
    committed = sum(pr.get("producer_committed", 0) for pr in st["producers"])
    ut, stt = ut_st(ag.p.pid)
    return {"t": time.monotonic(), "spans": st["agent"]["spans"], "bytes": st["agent"]["bytes"],
            "agent_utime": ut, "agent_stime": stt,
            "agent_cpu": ag.cpu(), "prod_cpu": sum(task_cpu_ns(p.pid) for p in ps),
            "drops": drops, "committed": committed, "batches": st["agent"]["batches"],
            "polls": st["agent"]["polls"], "doorbells": st["agent"]["doorbells"],
            "producers": st["agent"]["producers"]}


# ---- producer hot path with the agent draining ----------------------------------

def section_prodagent():
    rounds = 1 if QUICK else 5
    spans = 20000 if QUICK else 200000
    bp = os.path.join(B, "bench", "bench_producer")
    pin = ["--pin"] if os.environ.get("BENCH_PIN", "1") == "1" else []
    for r in range(1, rounds + 1):
        log(f"round {r}/{rounds}")
        for t in (1, 2):
            for slot in ("8M", "512K"):
                cid = f"ref.t{t}.agent.{slot}"
                ag = Agent(["--null"])
                args = [bp, "--variant", "reference", "--threads", str(t), "--spans", str(spans),
                        "--agent", "--json"] + pin
                if r == 1:
                    command(cid, f"{AGENT} --socket $T/a.sock -q --null & SPANRING_SOCKET=$T/a.sock "
                            f"SPANRING_SLOT_SIZE={slot} {' '.join(args)}")
                env = dict(os.environ, SPANRING_SOCKET=ag.sock, SPANRING_SLOT_SIZE=slot)
                a0 = ag.cpu()
                p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
                time.sleep(0.05)
                a1 = ag.cpu()
                st = ag.ctl("stats")
                ag.stop()
                try:
                    o = json.loads(p.stdout)
                except ValueError:
                    emit({"round": r, "config": cid, "error": p.stderr.strip()[-300:]})
                    continue
                emit({"round": r, "config": cid, "threads": t, "slot": slot, "result": o,
                      "exported": st["agent"]["spans"],
                      "agent_ns_per_span": (a1 - a0) / st["agent"]["spans"] if st["agent"]["spans"] else None,
                      "loadavg": loadavg()})
                c = o.get("committed_only", o)
                log(f"{cid}: median {c['median_ns']} ns, batch {c['batch_median_ns']} ns, "
                    f"drops {o['drops']}, exported {st['agent']['spans']}")


# ---- agent: throughput and CPU per span ---------------------------------------

def section_agent():
    rounds = 1 if QUICK else 3
    window = 0.6 if QUICK else 1.5
    warm = 0.3 if QUICK else 0.5
    if QUICK:
        cases = [("null", "raw", 1), ("null", "api", 1), ("null", "api", 8), ("file", "api", 1)]
    else:
        cases = [(e, m, n) for e in ("null", "file", "otlp_http") for m in ("raw", "api")
                 for n in (1, 8, 64)]
    for r in range(1, rounds + 1):
        log(f"round {r}/{rounds}")
        for exp, mode, n in cases:
            try:
                one_agent_case(r, exp, mode, n, window, warm)
            except Exception as e:  # one case failing must not end the section
                log(f"{exp}.{mode}.p{n}: failed: {e!r}")
                emit({"round": r, "config": f"{exp}.{mode}.p{n}", "exporter": exp, "mode": mode,
                      "procs": n, "error": repr(e), "diag": LAST_DIAG})
                for p in CHILDREN:
                    if p.poll() is None:
                        p.kill()
                for p in CHILDREN:
                    try:
                        p.wait(timeout=10)
                    except Exception:
                        pass
                CHILDREN.clear()


def one_agent_case(r, exp, mode, n, window, warm):
    eargs, sink = exporter_args(exp)
    ag = Agent(eargs)
    pargs = ["--mode", mode, "--duration-ms", "0"]
    cid = f"{exp}.{mode}.p{n}"
    if r == 1:
        command(cid, f"{AGENT} --socket $T/a.sock -q {' '.join(eargs)} & "
                f"{n} x SPANRING_SOCKET=$T/a.sock {PROD} {' '.join(pargs)}  (SIGTERM after the window)")
    ps = start_producers(ag, n, pargs)
    st = wait_registered(ag, n)
    reg = st["agent"]["producers"]
    time.sleep(warm)
    s0 = sample(ag, ps)
    time.sleep(window)
    s1 = sample(ag, ps)
    mem = ag.mem()
    la = loadavg()
    outs = collect(ps)
    ag.stop()
    sk = sink.stop() if sink else None
    for f in os.listdir(TMP):
        if f.startswith("out.pb"):
            os.unlink(os.path.join(TMP, f))
    d = {k: s1[k] - s0[k] for k in s0}
    spans = d["spans"]
    res = {
        "round": r, "config": cid, "exporter": exp, "mode": mode, "procs": n, "registered": reg,
        "window_s": d["t"], "spans": spans, "spans_per_s": spans / d["t"] if d["t"] else 0,
        "bytes_per_span": d["bytes"] / spans if spans else None,
        "agent_cpu_s": d["agent_cpu"] / 1e9,
        "agent_ns_per_span": d["agent_cpu"] / spans if spans else None,
        "agent_cpu_util": d["agent_cpu"] / 1e9 / d["t"],
        "agent_sys_frac": d["agent_stime"] / (d["agent_utime"] + d["agent_stime"])
        if d["agent_utime"] + d["agent_stime"] > 0 else None,
        "prod_cpu_s": d["prod_cpu"] / 1e9,
        "prod_ns_per_span": d["prod_cpu"] / spans if spans else None,
        "drops": d["drops"], "committed": d["committed"],
        "drop_pct": 100.0 * d["drops"] / (d["drops"] + d["committed"]) if d["drops"] + d["committed"] else 0,
        "batches": d["batches"], "polls": d["polls"], "doorbells": d["doorbells"],
        "spans_per_batch": spans / d["batches"] if d["batches"] else None,
        "agent_mem_kb": mem, "loadavg": la, "sink": sk,
        "prod_results": len(outs),
    }
    emit(res)
    log(f"{cid}: {res['spans_per_s'] / 1e6:.2f} M spans/s, agent {res['agent_ns_per_span'] or 0:.1f} ns/span, "
        f"drops {res['drop_pct']:.1f}%, HWM {mem.get('VmHWM', 0)} kB, load {la}")


# ---- latency --------------------------------------------------------------------

def section_latency():
    rounds = 1 if QUICK else 3
    dur = 1000 if QUICK else 3000
    cases = [
        ("r10k", ["--rate", "10000", "--lat-every", "1"]),
        ("sat", ["--rate", "0", "--lat-every", "64"]),
    ]
    for r in range(1, rounds + 1):
        log(f"round {r}/{rounds}")
        for exp in ["null", "file"]:
            for mode in (["api"] if QUICK else ["api", "raw"]):
                for cname, cargs in cases:
                    eargs, sink = exporter_args(exp)
                    ag = Agent(eargs)
                    pargs = ["--mode", mode, "--latency", "--duration-ms", str(dur),
                             "--quiet-start", "200"] + cargs
                    cid = f"{exp}.{mode}.{cname}"
                    if r == 1:
                        command(cid, f"{AGENT} --socket $T/a.sock -q {' '.join(eargs)} & "
                                f"SPANRING_SOCKET=$T/a.sock {PROD} {' '.join(pargs)}")
                    ps = start_producers(ag, 1, pargs)
                    outs = collect(ps, sig=False, timeout=dur / 1000 + 30)
                    la = loadavg()
                    ag.stop()
                    if sink:
                        sink.stop()
                    o = outs[0] if outs else {}
                    emit({"round": r, "config": cid, "exporter": exp, "mode": mode, "case": cname,
                          "result": o, "loadavg": la})
                    lat = o.get("lat", {})
                    log(f"{cid}: p50 {lat.get('p50_us')} us p99 {lat.get('p99_us')} us "
                        f"({o.get('committed')} spans, {o.get('drops')} drops, load {la})")


# ---- rates: drops at a set rate, default ring ---------------------------------------

def section_rates():
    rounds = 1 if QUICK else 2
    dur = 800 if QUICK else 2000
    tuned = ["--batch-max-bytes=128K", "--poll-interval-min=200us"]
    cases = [  # id, processes, producer arguments (rate per thread), extra agent arguments
        ("api.1M", 1, ["--mode", "api", "--rate", "1000000"], []),
        ("api.2M", 1, ["--mode", "api", "--rate", "2000000"], []),
        ("api.5M", 1, ["--mode", "api", "--rate", "5000000"], []),
        ("api.max", 1, ["--mode", "api", "--rate", "0"], []),
        ("api.2x2.5M", 2, ["--mode", "api", "--rate", "2500000"], []),
        ("raw.1M", 1, ["--mode", "raw", "--rate", "1000000"], []),
        ("raw.2M", 1, ["--mode", "raw", "--rate", "2000000"], []),
        ("raw.5M", 1, ["--mode", "raw", "--rate", "5000000"], []),
        ("raw.2x2.5M", 2, ["--mode", "raw", "--rate", "2500000"], []),
        ("api.5M.b128k", 1, ["--mode", "api", "--rate", "5000000"], tuned[:1]),
        ("raw.5M.b128k", 1, ["--mode", "raw", "--rate", "5000000"], tuned[:1]),
        ("api.5M.tuned", 1, ["--mode", "api", "--rate", "5000000"], tuned),
        ("raw.5M.tuned", 1, ["--mode", "raw", "--rate", "5000000"], tuned),
        ("api.5M.b64k", 1, ["--mode", "api", "--rate", "5000000"], ["--batch-max-bytes=64K"]),
        ("api.5M.slot4M", 1, ["--mode", "api", "--rate", "5000000"], [], {"SPANRING_SLOT_SIZE": "4M"}),
        ("api.5M.slot4M.b128k", 1, ["--mode", "api", "--rate", "5000000"], tuned[:1],
         {"SPANRING_SLOT_SIZE": "4M"}),
    ]
    if QUICK:
        cases = [c for c in cases if c[0] in ("api.5M", "raw.5M", "raw.5M.tuned")]
    for r in range(1, rounds + 1):
        log(f"round {r}/{rounds}")
        for case in cases:
            cid, n, cargs, xargs = case[:4]
            penv = case[4] if len(case) > 4 else {}
            ag = Agent(["--null"] + xargs)
            pargs = cargs + ["--duration-ms", str(dur)]
            if r == 1:
                envs = " ".join(f"{k}={v}" for k, v in penv.items())
                command(cid, f"{AGENT} --socket $T/a.sock -q --null {' '.join(xargs)} & {n} x "
                        f"SPANRING_SOCKET=$T/a.sock {envs + ' ' if envs else ''}{PROD} {' '.join(pargs)}")
            a0 = ag.cpu()
            ps = start_producers(ag, n, pargs, penv)
            outs = collect(ps, sig=False, timeout=dur / 1000 + 30)
            time.sleep(0.1)
            a1 = ag.cpu()
            la = loadavg()
            st = ag.ctl("stats")
            ag.stop()
            committed = sum(o["committed"] for o in outs)
            drops = sum(o["drops"] for o in outs)
            wall = max((o["wall_s"] for o in outs), default=0)
            res = {"round": r, "config": cid, "procs": n, "target_rate": n * int(cargs[3]),
                   "agent_args": xargs, "producer_env": penv,
                   "committed": committed, "drops": drops,
                   "offered_per_s": (committed + drops) / wall if wall else 0,
                   "committed_per_s": committed / wall if wall else 0,
                   "drop_pct": 100.0 * drops / (committed + drops) if committed + drops else 0,
                   "agent_ns_per_span": (a1 - a0) / st["agent"]["spans"] if st["agent"]["spans"] else None,
                   "prod_cpu_s": sum(o["cpu_s"] for o in outs), "wall_s": wall, "loadavg": la,
                   "doorbells": st["agent"]["doorbells"], "batches": st["agent"]["batches"]}
            emit(res)
            log(f"{cid}: offered {res['offered_per_s'] / 1e6:.2f} M/s, committed "
                f"{res['committed_per_s'] / 1e6:.2f} M/s, drops {res['drop_pct']:.2f}% (load {la})")


# ---- socket baseline vs spanring -------------------------------------------------------

def section_sockbase():
    rounds = 1 if QUICK else 3
    rate = 250000
    dur_s = 0.5 if QUICK else 2.0
    nsp = int(rate * dur_s)
    for r in range(1, rounds + 1):
        log(f"round {r}/{rounds}")
        for tr in ["tcp", "unix"]:
            args = [SOCKBASE, "--transport", tr, "--spans", str(nsp), "--rate", str(rate), "--json"]
            if r == 1:
                command(f"sock.{tr}", " ".join(args))
            p = subprocess.run(args, capture_output=True, text=True, timeout=120)
            try:
                o = json.loads(p.stdout)
            except ValueError:
                o = {"error": p.stderr.strip()[-300:]}
            emit({"round": r, "config": f"sock.{tr}", "result": o, "loadavg": loadavg()})
            log(f"sock.{tr}: {o.get('total_ns_per_span')} ns/span (sender {o.get('sender_ns_per_span')}, "
                f"receiver {o.get('receiver_ns_per_span')})")
        # spanring: the same spans at the same rate, agent with the null exporter.
        ag = Agent(["--null"])
        # paced like the baseline's sender: one clock check / sleep per 512 spans
        pargs = ["--mode", "api", "--rate", str(rate), "--chunk", "512",
                 "--duration-ms", str(int(dur_s * 1000))]
        if r == 1:
            command("spanring.null", f"{AGENT} --socket $T/a.sock -q --null & "
                    f"SPANRING_SOCKET=$T/a.sock {PROD} {' '.join(pargs)}")
        a0 = ag.cpu()
        ps = start_producers(ag, 1, pargs)
        outs = collect(ps, sig=False, timeout=dur_s + 30)
        # until the agent has exported everything
        t = time.time() + 5
        while time.time() < t and outs and ag.ctl("stats")["agent"]["spans"] < outs[0]["committed"]:
            time.sleep(0.01)
        a1 = ag.cpu()
        st = ag.ctl("stats")
        ag.stop()
        o = outs[0] if outs else {}
        spans = st["agent"]["spans"]
        res = {"round": r, "config": "spanring.null", "rate": rate, "committed": o.get("committed"),
               "exported": spans, "drops": o.get("drops"),
               "prod_ns_per_span": o["cpu_s"] * 1e9 / o["committed"] if o.get("committed") else None,
               "agent_ns_per_span": (a1 - a0) / spans if spans else None, "loadavg": loadavg()}
        res["total_ns_per_span"] = (res["prod_ns_per_span"] or 0) + (res["agent_ns_per_span"] or 0)
        emit(res)
        log(f"spanring.null: producer {res['prod_ns_per_span']:.1f} + agent {res['agent_ns_per_span']:.1f} ns/span")


# ---- scale ------------------------------------------------------------------------------------

def measure_mem(ag, ps):
    rings = memfds([p.pid for p in ps] + [ag.p.pid])
    prss = [proc_status(p.pid) for p in ps]
    return {
        "rings": len(rings),
        "ring_alloc_kb": sum(v[0] for v in rings.values()) // 1024,
        "ring_size_kb": sum(v[1] for v in rings.values()) // 1024,
        "agent": ag.mem(),
        "prod_rss_kb": sum(x.get("VmRSS", 0) for x in prss),
        "prod_anon_kb": sum(x.get("RssAnon", 0) for x in prss),
    }


def section_scale():
    import resource
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    dur = 500 if QUICK else 1500
    proc_counts = [1, 16, 64] if QUICK else [1, 16, 64, 256]
    thread_counts = [1, 8, 64] if QUICK else [1, 8, 64, 256, 1024]
    # processes: each writes at 2 000 spans/s for a while, then holds its ring
    for n in proc_counts:
        ag = Agent(["--null"])
        pargs = ["--mode", "api", "--rate", "2000", "--duration-ms", str(dur), "--hold",
                 "--wait-reg", "20000"]
        command(f"procs.{n}", f"{AGENT} --socket $T/a.sock -q --null & {n} x "
                f"SPANRING_SOCKET=$T/a.sock {PROD} {' '.join(pargs)}")
        a0 = ag.cpu()
        t0 = time.monotonic()
        ps = start_producers(ag, n, pargs)
        st = wait_registered(ag, n, timeout=60)
        treg = time.monotonic() - t0
        time.sleep(dur / 1000 + 0.5)
        mem = measure_mem(ag, ps)
        st = ag.ctl("stats")
        a1 = ag.cpu()
        agent_fds = len(os.listdir(f"/proc/{ag.p.pid}/fd"))
        outs = collect(ps)
        ag.stop()
        res = {"config": f"procs.{n}", "procs": n, "threads": 1, "registered": st["agent"]["producers"],
               "rejected": st["agent"]["rejected"], "register_all_s": treg,
               "spans": st["agent"]["spans"], "drops": sum(o["drops"] for o in outs),
               "committed": sum(o["committed"] for o in outs), "agent_fds": agent_fds,
               "agent_cpu_s": (a1 - a0) / 1e9, "nofile": list(nofile), "loadavg": loadavg(), **mem}
        emit(res)
        log(f"procs.{n}: registered {res['registered']}/{n} in {treg:.2f} s, rings {mem['ring_alloc_kb']} kB "
            f"resident, agent HWM {mem['agent'].get('VmHWM')} kB anon {mem['agent'].get('RssAnon')} kB")
    # threads: one process, flat out
    for n in thread_counts:
        ag = Agent(["--null"])
        pargs = ["--mode", "api", "--threads", str(n), "--duration-ms", str(dur), "--hold"]
        command(f"threads.{n}", f"{AGENT} --socket $T/a.sock -q --null & "
                f"SPANRING_SOCKET=$T/a.sock {PROD} {' '.join(pargs)}")
        t0 = time.monotonic()
        ps = start_producers(ag, 1, pargs)
        # wait for the run to end (the JSON line is printed before --hold)
        o = None
        line = ps[0].stdout.readline()
        if line.startswith("{"):
            o = json.loads(line)
        t_run = time.monotonic() - t0
        time.sleep(0.3)
        mem = measure_mem(ag, ps)
        st = ag.ctl("stats")
        collect(ps)
        ag.stop()
        o = o or {}
        res = {"config": f"threads.{n}", "procs": 1, "threads": n,
               "threads_started": o.get("threads_started"), "committed": o.get("committed"),
               "drops": o.get("drops"), "wall_s": o.get("wall_s"),
               "committed_per_s": o["committed"] / o["wall_s"] if o.get("wall_s") else None,
               "drop_pct": 100.0 * o["drops"] / (o["drops"] + o["committed"]) if o.get("committed") else None,
               "slots_shared": o.get("slots_shared"), "exported": st["agent"]["spans"],
               "process_run_s": t_run,
               "loadavg": loadavg(), **mem}
        emit(res)
        log(f"threads.{n}: {res['committed_per_s'] or 0:.0f} spans/s, drops {res['drop_pct'] or 0:.1f}%, "
            f"rings {mem['ring_alloc_kb']} kB, process RSS {mem['prod_rss_kb']} kB")


# ---- callgrind of the agent's drain/export path -------------------------------------------

def section_agentcg():
    """Instructions per span in the agent (user space only): two runs of the agent
    under callgrind, the raw producer at 100 k spans/s for two durations; the
    difference of the totals over the difference of the spans exported is the
    steady-state cost per span at that rate (polls included, start-up excluded)."""
    import shutil
    if not shutil.which("valgrind"):
        log("valgrind not installed, skipped")
        return
    durs = (300, 900) if QUICK else (1000, 3000)
    rate = 100000
    for exp in ["null", "file"]:
        runs = []
        for dur in durs:
            f = os.path.join(A.out, f"agentcg.{exp}.{dur}.out")
            eargs, _ = exporter_args(exp)
            sock = os.path.join(TMP, "cg.sock")
            args = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={f}", AGENT,
                    "--socket", sock, "-q"] + eargs
            command(f"{exp}.{dur}", " ".join(args).replace(A.out + "/", "$OUT/") +
                    f" & SPANRING_SOCKET=$T/cg.sock {PROD} --mode raw --rate {rate} --duration-ms {dur}")
            lg = open(os.path.join(TMP, "cg.log"), "ab")
            p = subprocess.Popen(args, stdout=lg, stderr=lg)
            CHILDREN.append(p)
            t = time.time() + 60
            while time.time() < t and not os.path.exists(sock + ".ctl"):
                time.sleep(0.05)
            env = dict(os.environ, SPANRING_SOCKET=sock)
            pr = subprocess.run([PROD, "--mode", "raw", "--rate", str(rate), "--duration-ms", str(dur),
                                 "--wait-reg", "30000"], env=env, capture_output=True, text=True,
                                timeout=120)
            time.sleep(0.5)
            ag = Agent.__new__(Agent)
            ag.sock = sock
            try:
                spans = ag.ctl("stats")["agent"]["spans"]
            except (OSError, ValueError):
                spans = None
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            lg.close()
            ir = None
            try:
                for line in open(f):
                    if line.startswith("totals:") or line.startswith("summary:"):
                        ir = int(line.split()[1])
            except OSError:
                pass
            for mode in ("yes", "no"):
                with open(f"{f}.{'incl' if mode == 'yes' else 'self'}", "w") as o:
                    subprocess.run(["callgrind_annotate", f"--inclusive={mode}", "--threshold=100", f],
                                   stdout=o, stderr=subprocess.DEVNULL)
            runs.append({"dur_ms": dur, "spans": spans, "ir": ir, "file": os.path.basename(f)})
            log(f"{exp} {dur} ms: {spans} spans, {ir} instructions")
        emit({"exporter": exp, "rate": rate, "runs": runs})


# ---- wake: the agent when little happens (issue 15) ----------------------------------------

def section_wake():
    rounds = 1 if QUICK else 3
    window = 4.0 if QUICK else 10.0
    builds = [("after", B)] + ([("before", A.base)] if A.base else [])
    for r in range(1, rounds + 1):
        log(f"round {r}/{rounds}")
        for label, bd in builds:
            agent_bin = os.path.join(bd, "bin", "spanring-agent")
            prod = os.path.join(bd, "bench", "bench_agentprod")
            idle_prod = os.path.join(bd, "tests", "progs", "sr-testprod")
            for case in ("idle.p0", "idle.p100", "otlp.r10k", "otlp.r1k"):
                try:
                    wake_case(r, label, case, agent_bin, prod, idle_prod, window)
                except Exception as e:  # one case failing must not end the section
                    log(f"{label}.{case}: failed: {e!r}")
                    emit({"round": r, "build": label, "config": case, "error": repr(e)})
                for p in CHILDREN:
                    if p.poll() is None:
                        p.kill()
                for p in CHILDREN:
                    try:
                        p.wait(timeout=10)
                    except Exception:
                        pass
                CHILDREN.clear()
        for rate, n in ((10000, 1), (1000, 1), (10000, 3)):
            try:
                floor_case(r, rate, n, window)
            except Exception as e:  # one case failing must not end the section
                log(f"floor r{rate} n{n}: failed: {e!r}")
            CHILDREN.clear()


FLOOR_BODY = {}  # rate -> request body bytes the agent sent at that rate


def floor_case(r, rate, backends, window):
    """The least any agent can spend per batch: bench_reqfloor wakes every
    7/8 of latency_bound and sends one request of the agent's measured size
    to each of `backends` sinks (tests/bench/bench_reqfloor.c)."""
    body = FLOOR_BODY.get(rate)
    if not body:
        return
    sinks = [Sink() for _ in range(backends)]
    period_us = 8750
    cmd = [os.path.join(B, "bench", "bench_reqfloor"), "--body", str(int(body)),
           "--period-us", str(period_us), "--seconds", str(int(window))]
    for sk in sinks:
        cmd += ["--port", str(sk.port)]
    if r == 1:
        command(f"floor.r{rate // 1000}k.n{backends}",
                " ".join(cmd[:-2 * backends]) + f" {backends} x --port <bench_otlpsink>")
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=window + 30).stdout)
    for sk in sinks:
        sk.stop()
    per_s = 1e6 / period_us
    res = {"round": r, "build": "floor", "config": f"floor.r{rate // 1000}k.n{backends}",
           "rate": rate, "backends": backends, "body": body,
           "cpu_us_per_batch": out["cpu_us_per_batch"],
           "agent_us_per_span": out["cpu_us_per_batch"] * per_s / rate,
           "agent_cpu_pct": out["cpu_us_per_batch"] * per_s / 1e4, "loadavg": loadavg()}
    emit(res)
    log(f"floor r{rate} n{backends}: {out['cpu_us_per_batch']:.1f} us/batch, "
        f"{res['agent_us_per_span']:.2f} us/span")


def wake_case(r, label, case, agent_bin, prod, idle_prod, window):
    sink = Sink(latency=case.startswith("otlp."))
    eargs = ["--exporter", f"otlp_http:http://127.0.0.1:{sink.port}/v1/traces"]
    ag = Agent(eargs, binary=agent_bin)
    cid = f"{label}.{case}"
    ps = []
    if case == "idle.p100":
        pargs = ["-S", "idle", "-n", "1", "-H", "-d", "3000"]
        ps = start_producers(ag, 100, pargs, prog=idle_prod)
        if r == 1:
            command(cid, f"{agent_bin} --socket $T/a.sock -q {' '.join(eargs)} & 100 x "
                    f"SPANRING_SOCKET=$T/a.sock {idle_prod} {' '.join(pargs)}; "
                    f"{window:g} s window from 1 s after the last registration")
        wait_registered(ag, 100, timeout=60)
        time.sleep(4.0)  # every idle producer committed its span and was drained
    elif case.startswith("otlp.r"):
        rate = 10000 if case == "otlp.r10k" else 1000
        pargs = ["--mode", "api", "--rate", str(rate), "--latency", "--lat-every", "1",
                 "--duration-ms", str(int((window + 3) * 1000)), "--quiet-start", "200"]
        ps = start_producers(ag, 1, pargs, prog=prod)
        if r == 1:
            command(cid, f"{agent_bin} --socket $T/a.sock -q {' '.join(eargs)} & "
                    f"SPANRING_SOCKET=$T/a.sock {prod} {' '.join(pargs)}; "
                    f"{window:g} s window from 1.5 s after registration")
        wait_registered(ag, 1)
        time.sleep(1.5)
    else:
        if r == 1:
            command(cid, f"{agent_bin} --socket $T/a.sock -q {' '.join(eargs)}; "
                    f"{window:g} s window from 1 s after the start")
        time.sleep(1.0)
    st0 = ag.ctl("stats")
    c0, v0, t0 = ag.cpu(), task_vcsw(ag.p.pid), time.monotonic()
    time.sleep(window)
    c1, v1, t1 = ag.cpu(), task_vcsw(ag.p.pid), time.monotonic()
    st1 = ag.ctl("stats")
    la = loadavg()
    outs = collect(ps, sig=case == "idle.p100", timeout=window + 30)
    ag.stop()
    sk = sink.stop()
    spans = st1["agent"]["spans"] - st0["agent"]["spans"]
    batches = st1["agent"]["batches"] - st0["agent"]["batches"]
    dt = t1 - t0
    res = {"round": r, "build": label, "config": case, "window_s": dt,
           "agent_cpu_s": (c1 - c0) / 1e9, "agent_cpu_pct": 100.0 * (c1 - c0) / 1e9 / dt,
           "wakeups_per_s": (v1 - v0) / dt, "spans": spans, "batches": batches,
           "spans_per_batch": spans / batches if batches else None,
           "agent_us_per_span": (c1 - c0) / 1e3 / spans if spans else None,
           "wake_mode": st1["agent"].get("wake_mode"), "loadavg": la, "sink": sk}
    if case.startswith("otlp.r") and outs:
        res["lat"] = outs[0].get("lat", {})
        res["drops"] = outs[0].get("drops")
        res["e2e"] = sk.get("lat", {})
        if label == "after" and sk.get("requests"):
            FLOOR_BODY[rate] = sk["body_bytes"] / sk["requests"]
    emit(res)
    lat, e2e = res.get("lat", {}), res.get("e2e", {})
    log(f"{cid}: agent {res['agent_cpu_pct']:.3f} % of a core, {res['wakeups_per_s']:.1f} wake-ups/s, "
        f"{res['agent_us_per_span'] or 0:.2f} us/span, {res['spans_per_batch'] or 0:.0f} spans/batch, "
        f"end-to-end p50 {e2e.get('p50_us')} p99 {e2e.get('p99_us')} us, "
        f"released p50 {lat.get('p50_us')} p99 {lat.get('p99_us')} us (load {la})")


try:
    {"wake": section_wake, "prodagent": section_prodagent, "agentcg": section_agentcg, "agent": section_agent, "latency": section_latency, "rates": section_rates,
     "sockbase": section_sockbase, "scale": section_scale}[A.section]()
finally:
    cleanup()
