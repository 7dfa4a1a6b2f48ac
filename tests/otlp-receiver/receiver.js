#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// An independent OTLP receiver for spanring's exporter tests: OTLP/HTTP
// (node:http, protobufjs) and OTLP/gRPC (@grpc/grpc-js, @grpc/proto-loader),
// both decoding with the official OTLP schema. Listens on 127.0.0.1 only
// and stops by itself (--max-seconds) or on SIGTERM.
//
//   receiver.js --out FILE [--http-port P] [--grpc-port P] [--port-file F]
//               [--script ACTIONS] [--max-seconds S] [--quiet]
//               [--host ADDR] [--count-only] [--sink] [--h2-port P]
//               [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM] [--tls-max12]]
// --tls-cert/--tls-key: OTLP/HTTP over TLS (node:https) and OTLP/gRPC over
// TLS (grpc-js, ALPN h2); --tls-client-ca: client certificates signed by
// that CA are required (mTLS); --tls-max12: at most TLS 1.2 (HTTP and the
// --h2-port endpoint; grpc-js has no such option). Each request record
// then has "tls":true.
// --count-only (benchmarks): decode every request, count its spans, record
// nothing per span. --sink (OTLP/HTTP benchmarks of the sender): read the
// body, answer 200, decode nothing. --host: the address to bind (default 127.0.0.1; the
// benchmarks bind a veth address inside a network namespace of their own).
//
// FILE gets one JSON line per accepted span ({"t":"span",...}) and one per
// request ({"t":"req","proto":"http"|"grpc","action":...,"spans":N}).
// ACTIONS is a comma-separated list applied to requests in order (A*K:
// K times); after the list every request is accepted. HTTP actions: 200,
// partial=N, 503, 503ra=S (Retry-After seconds), 503date=S (as an
// HTTP-date), 429, 502, 504, 400, 413, rst (reset mid-body), close (close
// without answering), halfclose (FIN before reading the body), hang (never answer), slow=MS (read nothing for MS),
// garbage (a non-HTTP answer). gRPC actions: ok, partial=N, unavailable,
// unavailable_ri=MS (RetryInfo), exhausted, exhausted_ri=MS, invalid,
// internal, hang, deadline.
'use strict';
const fs = require('fs');
const http = require('http');
const zlib = require('zlib');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const schema = require('./schema');

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith('--')) continue;
  const k = a.slice(2);
  const next = process.argv[i + 1];
  if (next === undefined || next.startsWith('--')) args[k] = true;
  else { args[k] = next; i++; }
}
const out = fs.openSync(args.out || '/dev/null', 'a');
let tlsOpts = null;
if (args['tls-cert']) {
  tlsOpts = {cert: fs.readFileSync(args['tls-cert']), key: fs.readFileSync(args['tls-key'])};
  if (args['tls-client-ca']) {
    tlsOpts.ca = fs.readFileSync(args['tls-client-ca']);
    tlsOpts.requestCert = true;
    tlsOpts.rejectUnauthorized = true;
  }
  if (args['tls-max12']) tlsOpts.maxVersion = 'TLSv1.2';
}
const quiet = !!args.quiet;
const maxSeconds = Number(args['max-seconds'] || 120);

function log(...m) { if (!quiet) console.error('[receiver]', ...m); }
function record(o) {
  if (o.t === 'req') { o.ts = Date.now(); if (tlsOpts) o.tls = true; }
  fs.writeSync(out, JSON.stringify(o) + '\n');
}

// script
const script = [];
for (const part of String(args.script || '').split(',').filter(Boolean)) {
  const m = /^(.*)\*(\d+)$/.exec(part);
  const n = m ? Number(m[2]) : 1;
  for (let i = 0; i < n; i++) script.push(m ? m[1] : part);
}
let step = 0;
function nextAction(dflt) { return step < script.length ? script[step++] : dflt; }
function param(action) { const i = action.indexOf('='); return i < 0 ? undefined : action.slice(i + 1); }

const {Req, Resp} = schema.load();
const stats = {http_requests: 0, grpc_requests: 0, spans: 0, decode_ms: 0, bytes: 0};

function firstSpan(reqObj) {
  try {
    const s = schema.spansOf(reqObj);
    return s.length ? s[0].span_id : '';
  } catch (e) {
    return '';
  }
}

function accept(proto, reqObj, action, bytes, encoding, hdr) {
  if (args['count-only']) {
    let n = 0;
    for (const rs of reqObj.resource_spans || []) {
      for (const ss of rs.scope_spans || []) n += (ss.spans || []).length;
    }
    stats.spans += n;
    stats.bytes += bytes;
    return n;
  }
  const spans = schema.spansOf(reqObj);
  for (const s of spans) record({t: 'span', proto, ...s});
  stats.spans += spans.length;
  stats.bytes += bytes;
  record({t: 'req', proto, action, spans: spans.length, bytes, encoding, hdr,
    first: spans.length ? spans[0].span_id : ''});
  return spans.length;
}

// ---- OTLP/HTTP ----
function decodeHttpBody(req, body) {
  if ((req.headers['content-encoding'] || '') === 'gzip') body = zlib.gunzipSync(body);
  const ct = (req.headers['content-type'] || '').split(';')[0].trim();
  if (ct === 'application/x-protobuf') {
    // CPU time (not wall time: producers may hold the CPUs meanwhile)
    const c0 = process.cpuUsage();
    const m = Req.decode(body);
    const o = args['count-only'] ? m : Req.toObject(m, schema.CONV);
    const c1 = process.cpuUsage(c0);
    stats.decode_ms += (c1.user + c1.system) / 1000;
    return o;
  }
  if (ct === 'application/json') {
    // OTLP/JSON: lowerCamelCase names, hex ids; back to the protobuf form
    const snake = (k) => k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
    const fix = (o) => {
      if (Array.isArray(o)) return o.map(fix);
      if (!o || typeof o !== 'object') return o;
      const r = {};
      for (const [k, v] of Object.entries(o)) {
        if ((k === 'traceId' || k === 'spanId' || k === 'parentSpanId') && typeof v === 'string') {
          r[snake(k)] = Buffer.from(v, 'hex').toString('base64');
        } else {
          r[snake(k)] = fix(v);
        }
      }
      return r;
    };
    const j = fix(JSON.parse(body.toString('utf8')));
    return Req.toObject(Req.fromObject(j), schema.CONV);
  }
  throw new Error('unexpected content-type ' + ct);
}

function httpAnswer(res, status, body, headers) {
  res.writeHead(status, {'Content-Type': 'application/x-protobuf', 'Content-Length': body.length,
    ...(headers || {})});
  res.end(body);
}

const httpServer = (tlsOpts ? require('https').createServer.bind(null, tlsOpts) : http.createServer)((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, {'Content-Type': 'application/json'});
    res.end(JSON.stringify(stats));
    return;
  }
  if (req.method !== 'POST' || req.url !== (args.path || '/v1/traces')) {
    res.writeHead(404); res.end(); return;
  }
  stats.http_requests++;
  const action = nextAction('200');
  const base = action.replace(/=.*$/, '');
  const chunks = [];
  let got = 0;
  if (base === 'halfclose') { // FIN before the body is read: the agent sees EOF mid-request
    record({t: 'req', proto: 'http', action, spans: 0});
    req.socket.end();
    return;
  }
  if (base === 'rst') {
    req.once('data', () => { record({t: 'req', proto: 'http', action, spans: 0}); req.socket.resetAndDestroy(); });
    return;
  }
  if (base === 'slow') {
    req.pause();
    setTimeout(() => req.resume(), Number(param(action) || 1000));
  }
  req.on('data', (c) => { chunks.push(c); got += c.length; });
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    // a request not accepted: recorded with its first span, to find its retry
    const refused = () => {
      let first = '';
      try { first = firstSpan(decodeHttpBody(req, body)); } catch (e) { /* undecodable */ }
      record({t: 'req', proto: 'http', action, spans: 0, bytes: got, first});
    };
    const reject = (status, msg, headers) => {
      refused();
      httpAnswer(res, status, schema.statusBytes(0, msg), headers);
    };
    switch (base) {
      case 'hang': refused(); return;
      case 'close': refused(); req.socket.destroy(); return;
      case 'garbage': refused(); req.socket.end('THIS IS NOT HTTP\r\n\r\n'); return;
      case '503': case '429': case '502': case '504': case '400': case '413':
        return reject(Number(base), `scripted ${base}`);
      case '503ra': return reject(503, 'scripted 503 with Retry-After', {'Retry-After': param(action)});
      case '503date': {
        const d = new Date(Date.now() + Number(param(action)) * 1000 + 999).toUTCString();
        return reject(503, 'scripted 503 with an HTTP-date Retry-After', {'Retry-After': d});
      }
      default: break;
    }
    if (args.sink) { // benchmarks of the sender: read, count, answer; no decode
      stats.bytes += got;
      httpAnswer(res, 200, Buffer.alloc(0));
      return;
    }
    let obj;
    try {
      obj = decodeHttpBody(req, body);
    } catch (e) {
      log('bad request body:', e.message);
      record({t: 'req', proto: 'http', action: 'undecodable', spans: 0, error: e.message});
      httpAnswer(res, 400, schema.statusBytes(3, 'undecodable: ' + e.message));
      return;
    }
    const n = accept('http', obj, action, got, req.headers['content-encoding'] || 'identity',
      req.headers['x-spanring-test']);
    let resp = {};
    if (base === 'partial') {
      resp = {partial_success: {rejected_spans: Number(param(action) || 1), error_message: 'scripted partial success'}};
    }
    httpAnswer(res, 200, Buffer.from(Resp.encode(Resp.create(resp)).finish()));
    log(`http: ${n} spans (${action})`);
  });
});
httpServer.keepAliveTimeout = 120000;
httpServer.headersTimeout = 125000;
httpServer.requestTimeout = 0;

// ---- OTLP/gRPC ----
const pkgDef = protoLoader.loadSync(schema.SERVICE_PROTO, {
  includeDirs: [schema.protoDir()], keepCase: true, longs: String, enums: Number, bytes: Buffer,
  defaults: false, oneofs: true,
});
const svc = grpc.loadPackageDefinition(pkgDef).opentelemetry.proto.collector.trace.v1.TraceService;
const grpcServer = new grpc.Server({'grpc.max_receive_message_length': 64 << 20});

function grpcFail(cb, code, msg, retryMs) {
  const md = new grpc.Metadata();
  if (retryMs !== undefined) md.set('grpc-status-details-bin', schema.statusBytes(code, msg, retryMs));
  cb({code, details: msg, metadata: md});
}

grpcServer.addService(svc.service, {
  Export(call, cb) {
    stats.grpc_requests++;
    const action = nextAction('ok');
    const base = action.replace(/=.*$/, '');
    const p = param(action);
    const S = grpc.status;
    if (base !== 'ok' && base !== 'partial') {
      record({t: 'req', proto: 'grpc', action, spans: 0, first: firstSpan(call.request)});
    }
    switch (base) {
      case 'unavailable': return grpcFail(cb, S.UNAVAILABLE, 'scripted UNAVAILABLE');
      case 'unavailable_ri': return grpcFail(cb, S.UNAVAILABLE, 'scripted UNAVAILABLE with RetryInfo', Number(p));
      case 'exhausted': return grpcFail(cb, S.RESOURCE_EXHAUSTED, 'scripted RESOURCE_EXHAUSTED');
      case 'exhausted_ri': return grpcFail(cb, S.RESOURCE_EXHAUSTED, 'scripted RESOURCE_EXHAUSTED with RetryInfo', Number(p));
      case 'invalid': return grpcFail(cb, S.INVALID_ARGUMENT, 'scripted INVALID_ARGUMENT');
      case 'internal': return grpcFail(cb, S.INTERNAL, 'scripted INTERNAL');
      case 'deadline': return grpcFail(cb, S.DEADLINE_EXCEEDED, 'scripted DEADLINE_EXCEEDED');
      case 'hang': return;
      default: break;
    }
    const n = accept('grpc', call.request, action, 0, call.metadata.get('grpc-encoding')[0] || 'identity',
      call.metadata.get('x-spanring-test')[0]);
    const resp = base === 'partial'
      ? {partial_success: {rejected_spans: Number(p || 1), error_message: 'scripted partial success'}} : {};
    cb(null, resp);
    log(`grpc: ${n} spans (${action})`);
  },
});

// ---- raw HTTP/2 gRPC endpoint (node:http2) for faults grpc-js cannot make ----
// --h2-port: the same TraceService/Export, answered by hand, with the
// actions rst_refused / rst_internal (RST_STREAM after the first DATA),
// goaway (GOAWAY below the stream, then close) and ok.
function startH2(port, cb) {
  const http2 = require('http2');
  const C = http2.constants;
  const h2 = tlsOpts ? http2.createSecureServer({...tlsOpts}) : http2.createServer();
  // GOAWAY(last-stream-id L) promises the client that no stream above L
  // was or will be processed, so the client resends those. The goaway
  // action, on stream G, sends L = G - 2 (node turns an L of 0 into "the
  // last stream processed", so the action must not fall on a session's
  // first stream) and keeps the promise: from the decision on, streams
  // >= G are refused here (sess.refuseFrom), and the frame waits until
  // every stream below G is closed, answered, so that none is cut by the
  // session's end. Otherwise a batch counted here would be refused or
  // reset there, and come back as a duplicate or be let go.
  h2.on('session', (sess) => {
    sess.on('error', () => {});
    sess.live = new Set();
    sess.refuseFrom = 0;
  });
  const goAway = (sess, g) => {
    for (const id of sess.live) {
      if (id < g) { setTimeout(() => goAway(sess, g), 5); return; }
    }
    sess.goaway(C.NGHTTP2_NO_ERROR, g - 2);
    setTimeout(() => sess.destroy(), 50);
  };
  const refused = (sess, id) => sess.refuseFrom > 0 && id >= sess.refuseFrom;
  h2.on('stream', (stream, headers) => {
    stream.on('error', () => {}); // the resets we make ourselves
    stats.grpc_requests++;
    const sess = stream.session;
    const id = stream.id;
    sess.live.add(id);
    stream.once('close', () => sess.live.delete(id));
    if (refused(sess, id)) { stream.resume(); return; } // the GOAWAY refuses it
    const action = nextAction('ok');
    if (action === 'rst_refused' || action === 'rst_internal' || action === 'goaway') {
      stream.once('data', () => {
        record({t: 'req', proto: 'grpc', action, spans: 0});
        if (action === 'goaway') {
          if (id < 3) log('goaway on the first stream of a session cannot say "none processed"');
          sess.refuseFrom = id;
          goAway(sess, id);
        } else {
          stream.close(action === 'rst_refused' ? C.NGHTTP2_REFUSED_STREAM : C.NGHTTP2_INTERNAL_ERROR);
        }
      });
      stream.resume();
      return;
    }
    const chunks = [];
    let got = 0;
    stream.on('data', (c) => { chunks.push(c); got += c.length; });
    stream.on('end', () => {
      if (refused(sess, id)) return; // not processed: the GOAWAY says so
      const body = Buffer.concat(chunks);
      const len = body.readUInt32BE(1);
      const obj = Req.toObject(Req.decode(body.subarray(5, 5 + len)), schema.CONV);
      accept('grpc', obj, action, got, headers['grpc-encoding'] || 'identity', headers['x-spanring-test']);
      const resp = Buffer.from(Resp.encode(Resp.create({})).finish());
      const pre = Buffer.alloc(5);
      pre.writeUInt32BE(resp.length, 1);
      stream.respond({':status': 200, 'content-type': 'application/grpc'}, {waitForTrailers: true});
      stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0', 'grpc-message': ''}));
      stream.end(Buffer.concat([pre, resp]));
    });
  });
  h2.listen(port, args.host || '127.0.0.1', () => cb(h2.address().port));
}

// ---- start, ports, stop ----
const ports = {};
let pending = 0;
function ready() {
  if (--pending) return;
  if (args['port-file']) {
    fs.writeFileSync(args['port-file'] + '.tmp', JSON.stringify(ports));
    fs.renameSync(args['port-file'] + '.tmp', args['port-file']);
  }
  log('listening', JSON.stringify(ports), 'script', JSON.stringify(script));
}
if (args['http-port'] !== undefined) {
  pending++;
  httpServer.listen(Number(args['http-port']), args.host || '127.0.0.1', () => {
    ports.http = httpServer.address().port;
    ready();
  });
}
if (args['grpc-port'] !== undefined) {
  pending++;
  grpcServer.bindAsync(`${args.host || '127.0.0.1'}:${Number(args['grpc-port'])}`, tlsOpts
    ? grpc.ServerCredentials.createSsl(tlsOpts.ca || null,
      [{cert_chain: tlsOpts.cert, private_key: tlsOpts.key}], !!tlsOpts.ca)
    : grpc.ServerCredentials.createInsecure(),
    (err, port) => {
      if (err) { console.error(err); process.exit(1); }
      ports.grpc = port;
      ready();
    });
}
if (args['h2-port'] !== undefined) {
  pending++;
  startH2(Number(args['h2-port']), (p) => { ports.h2 = p; ready(); });
}
function stop() {
  record({t: 'summary', ...stats});
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, maxSeconds * 1000).unref();
