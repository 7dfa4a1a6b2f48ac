#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Per-slot timeline of one producer's ring, and the OTLP requests of the agent.

  ring_timeline.py sample OUT PRODUCER-OUT CMD...
      Start CMD (the producer; its output to PRODUCER-OUT) and sample its
      ring read-only (/proc/PID/fd, mmap PROT_READ) every ~5 ms until it
      exits: per slot head, tail (the agent's release point), spans and
      drop_full (-ENOSPC). Python starts before the producer, so the
      first sample is taken within milliseconds of the producer's start.
  ring_timeline.py report OUT [STRACE]
      Print the OTLP/HTTP requests (from `strace -tt` of the agent:
      first sendmsg of a request to the first bytes of its answer), the
      moments spans were dropped per slot with each slot's fill
      (head - tail), and a summary. Times are seconds after the producer
      started.
"""
import mmap, os, re, struct, subprocess, sys, time, datetime


def sample(out, pout, cmd):
    po = open(pout, 'w')
    t_spawn = time.time()
    proc = subprocess.Popen(cmd, stdout=po, stderr=subprocess.STDOUT)
    pid, fd = proc.pid, None
    while fd is None and proc.poll() is None:
        try:
            for n in os.listdir('/proc/%d/fd' % pid):
                try:
                    if os.readlink('/proc/%d/fd/%s' % (pid, n)).startswith('/memfd:spanring'):
                        fd = os.open('/proc/%d/fd/%s' % (pid, n), os.O_RDONLY | os.O_NONBLOCK)
                        break
                except OSError:
                    pass
        except OSError:
            pass
        time.sleep(0.0005)
    if fd is None:
        return proc.wait()
    m = mmap.mmap(fd, 4096 * 8, mmap.MAP_SHARED, mmap.PROT_READ)
    # struct spanring_ring_hdr: slot_count @40, slot_size @44, prod_off @48, cons_off @56
    slots, size, prod_off, cons_off = struct.unpack_from('<IIQQ', m, 40)
    with open(out, 'w') as f:
        f.write('# slots %d size %d spawn %.6f\n' % (slots, size, t_spawn))
        while proc.poll() is None:
            row = []
            for i in range(slots):
                head, spans, full = struct.unpack_from('<QQQ', m, prod_off + 64 * i)
                tail, = struct.unpack_from('<Q', m, cons_off + 64 + 64 * i)
                row.append('%d,%d,%d,%d' % (head, tail, spans, full))
            f.write('%.6f %s\n' % (time.time(), ' '.join(row)))
            time.sleep(0.005)
    return proc.wait()


def report(out, strace):
    rows, hdr = [], None
    for l in open(out):
        if l.startswith('#'):
            hdr = l.split()
            continue
        t, *sl = l.split()
        rows.append((float(t), [tuple(map(int, s.split(','))) for s in sl]))
    size, t0 = int(hdr[4]), float(hdr[6])
    print('ring: %s slots x %d bytes; first sample %.3f s after the producer started' %
          (hdr[2], size, rows[0][0] - t0 if rows else -1))
    if strace and os.path.exists(strace):
        d = datetime.datetime.fromtimestamp(t0, datetime.timezone.utc)
        t0d = d.hour * 3600 + d.minute * 60 + d.second + d.microsecond / 1e6
        # strace -tt prints local time; the agent runs with TZ unset in the benches: UTC
        fd, req = None, None
        for l in open(strace):
            m = re.match(r'(?:\d+ )?(\d+):(\d+):([\d.]+) (\w+)\((\d+), (.*) = (-?\d+)', l)
            if not m:
                continue
            h, mi, s, call, f, rest, ret = m.groups()
            t = int(h) * 3600 + int(mi) * 60 + float(s) - t0d
            if call == 'sendmsg' and 'POST ' in rest:
                fd = f
            if f != fd:
                continue
            if call == 'sendmsg':
                if req is None and 'POST ' in rest:
                    req = [t, 0]
                if req is not None:
                    req[1] += max(int(ret), 0)
            elif call in ('recvfrom', 'read') and int(ret) > 0 and req is not None:
                print('request at %7.3f s: %8d bytes, answered after %4.0f ms' %
                      (req[0], req[1], (t - req[0]) * 1000))
                req = None
    prev, first, last = None, None, None
    for t, sl in rows:
        if prev:
            dd = [sl[i][3] - prev[i][3] for i in range(len(sl))]
            if any(dd):
                first = t - t0 if first is None else first
                last = t - t0
                print('  %7.3f s  dropped per slot %s  fill %s' % (
                    t - t0, dd, ' '.join('%d%%' % (100 * (s[0] - s[1]) // size) for s in sl)))
        prev = sl
    tot = [s[3] for s in rows[-1][1]] if rows else []
    print('SUMMARY dropped=%d per slot %s first=%s last=%s' % (
        sum(tot), tot, '-' if first is None else '%.3f' % first, '-' if last is None else '%.3f' % last))


if __name__ == '__main__':
    if len(sys.argv) >= 5 and sys.argv[1] == 'sample':
        sys.exit(sample(sys.argv[2], sys.argv[3], sys.argv[4:]))
    if len(sys.argv) >= 3 and sys.argv[1] == 'report':
        report(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
        sys.exit(0)
    print(__doc__)
    sys.exit(2)
