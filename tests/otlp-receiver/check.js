#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Compare what the receiver recorded with what the producers say they
// emitted (tests/progs/otlp-prod -o), and optionally with the agent's file
// exporter output (length-delimited ExportTraceServiceRequest), decoded
// here with the official schema.
//
//   check.js --recv recv.jsonl --expect a.jsonl[,b.jsonl] [--file spans.pb]
//            [--service NAME] [--missing-ok] [--dups-ok] [--proto http|grpc]
// Prints "received=N expected=N missing=N duplicates=N mismatched=N
// unexpected=N file=N" and exits 1 on any problem (missing spans are
// allowed with --missing-ok: the test compares them with the agent's
// let-go count).
'use strict';
const fs = require('fs');
const schema = require('./schema');

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith('--')) continue;
  const next = process.argv[i + 1];
  if (next === undefined || next.startsWith('--')) args[a.slice(2)] = true;
  else { args[a.slice(2)] = next; i++; }
}
const lines = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const recv = lines(args.recv).filter((o) => o.t === 'span' && (!args.proto || o.proto === args.proto));
const expected = [];
for (const f of String(args.expect || '').split(',').filter(Boolean)) expected.push(...lines(f));

const seen = new Map();
let dups = 0;
for (const s of recv) {
  if (seen.has(s.span_id)) dups++;
  else seen.set(s.span_id, s);
}
const problems = [];
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);
let missing = 0, mismatched = 0;
const expIds = new Set();
for (const e of expected) {
  expIds.add(e.span_id);
  const r = seen.get(e.span_id);
  if (!r) { missing++; continue; }
  const fields = ['trace_id', 'parent_span_id', 'name', 'kind', 'start', 'end', 'attrs', 'events',
    'status'];
  const bad = [];
  for (const f of fields) if (!eq(r[f], e[f])) bad.push(f);
  const links = r.links.map((l) => ({trace_id: l.trace_id, span_id: l.span_id, attrs: l.attrs}));
  if (!eq(links, e.links)) bad.push('links');
  if (r.scope.name !== 'otlp-test.scope' || r.scope.version !== '1.2.3' ||
      !eq(r.scope.attrs, {'scope.attr': {s: 'scope-value'}})) bad.push('scope');
  const ra = r.resource.attrs;
  if (!ra['process.pid'] || ra['process.pid'].i !== String(e.pid)) bad.push('resource.process.pid');
  if (args.service && (!ra['service.name'] || ra['service.name'].s !== args.service)) bad.push('resource.service.name');
  if (bad.length) {
    mismatched++;
    if (problems.length < 5) problems.push(`span ${e.name} (${e.span_id}): ${bad.join(', ')} differ:\n  got ` +
      JSON.stringify(r) + '\n  want ' + JSON.stringify(e));
  }
}
let unexpected = 0;
for (const id of seen.keys()) if (!expIds.has(id)) unexpected++;

let fileCount = -1;
if (args.file) {
  // The file exporter's output, decoded independently: same spans, same bytes' meaning.
  const {Req} = schema.load();
  const buf = fs.readFileSync(args.file);
  const fileSpans = new Map();
  let off = 0;
  while (off < buf.length) {
    let len = 0, shift = 0, b;
    do { b = buf[off++]; len += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
    const req = Req.toObject(Req.decode(buf.subarray(off, off + len)), schema.CONV);
    off += len;
    for (const s of schema.spansOf(req)) fileSpans.set(s.span_id, s);
  }
  fileCount = fileSpans.size;
  let fileDiff = 0;
  for (const [id, r] of seen) {
    const f = fileSpans.get(id);
    const {t, proto, ...rest} = r;
    if (!f || !eq(rest, f)) {
      fileDiff++;
      if (problems.length < 8) problems.push(`span ${id}: receiver and file exporter differ:\n  recv ` +
        JSON.stringify(rest) + '\n  file ' + JSON.stringify(f));
    }
  }
  if (fileDiff) problems.push(`${fileDiff} spans differ between receiver and file`);
  if (!args['missing-ok'] && fileCount !== seen.size) problems.push(`file has ${fileCount} spans, receiver ${seen.size}`);
}

console.log(`received=${recv.length} expected=${expected.length} missing=${missing} duplicates=${dups} ` +
  `mismatched=${mismatched} unexpected=${unexpected} file=${fileCount}`);
for (const p of problems) console.log(p);
const ok = (dups === 0 || args['dups-ok']) && mismatched === 0 && unexpected === 0 && (args['missing-ok'] || missing === 0) &&
  problems.length === 0;
process.exit(ok ? 0 : 1);
