// SPDX-License-Identifier: MIT
// The official OTLP schema (opentelemetry-proto, from the workspace's
// shared/otlp-proto), loaded with protobufjs, and the canonical form of a
// decoded span that the receiver records and the checker compares.
'use strict';
const fs = require('fs');
const path = require('path');
const protobuf = require('protobufjs');

const SERVICE_PROTO = 'opentelemetry/proto/collector/trace/v1/trace_service.proto';

function protoDir() {
  const here = path.resolve(__dirname, '..', '..');
  const cands = [process.env.OTLP_PROTO_DIR, path.join(here, '..', 'shared', 'otlp-proto'),
    '/work/shared/otlp-proto'].filter(Boolean);
  for (const d of cands) {
    if (fs.existsSync(path.join(d, SERVICE_PROTO))) return d;
  }
  throw new Error('official OTLP schema not found (set OTLP_PROTO_DIR); looked in ' + cands.join(', '));
}

const CONV = {longs: String, enums: Number, bytes: Buffer, defaults: false, oneofs: true};

function load() {
  const dir = protoDir();
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => path.join(dir, target);
  root.loadSync(SERVICE_PROTO, {keepCase: true});
  root.resolveAll();
  const Req = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  const Resp = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
  return {dir, root, Req, Resp};
}

// google.rpc.Status and RetryInfo, declared here from googleapis' field
// numbers (independent of the agent's own proto file).
const rpcRoot = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: {fields: {type_url: {type: 'string', id: 1}, value: {type: 'bytes', id: 2}}},
            Duration: {fields: {seconds: {type: 'int64', id: 1}, nanos: {type: 'int32', id: 2}}},
          },
        },
        rpc: {
          nested: {
            Status: {fields: {code: {type: 'int32', id: 1}, message: {type: 'string', id: 2},
              details: {rule: 'repeated', type: 'google.protobuf.Any', id: 3}}},
            RetryInfo: {fields: {retry_delay: {type: 'google.protobuf.Duration', id: 1}}},
          },
        },
      },
    },
  },
});
const Status = rpcRoot.lookupType('google.rpc.Status');
const RetryInfo = rpcRoot.lookupType('google.rpc.RetryInfo');

function statusBytes(code, message, retryDelayMs) {
  const details = [];
  if (retryDelayMs !== undefined) {
    const ri = RetryInfo.encode(RetryInfo.create({retry_delay: {
      seconds: Math.floor(retryDelayMs / 1000), nanos: (retryDelayMs % 1000) * 1e6}})).finish();
    details.push({type_url: 'type.googleapis.com/google.rpc.RetryInfo', value: ri});
  }
  return Buffer.from(Status.encode(Status.create({code, message, details})).finish());
}

const hex = (b) => (b ? Buffer.from(b).toString('hex') : '');

function anyValue(v) {
  if (!v || !v.value) return null;
  switch (v.value) {
    case 'string_value': return {s: v.string_value};
    case 'bool_value': return {b: v.bool_value};
    case 'int_value': return {i: String(v.int_value)};
    case 'double_value': return {d: v.double_value};
    case 'bytes_value': return {bytes: hex(v.bytes_value)};
    case 'array_value': return {a: ((v.array_value && v.array_value.values) || []).map(anyValue)};
    case 'kvlist_value': return {kv: attrs((v.kvlist_value && v.kvlist_value.values) || [])};
    default: return {unknown: v.value};
  }
}

function attrs(list) {
  const o = {};
  for (const kv of list || []) o[kv.key] = anyValue(kv.value);
  return o;
}

const str = (x) => (x === undefined || x === null ? '0' : String(x));

// Every span of a decoded (toObject) ExportTraceServiceRequest, canonical.
function spansOf(req) {
  const out = [];
  for (const rs of req.resource_spans || []) {
    const res = {attrs: attrs(rs.resource && rs.resource.attributes),
      dropped: (rs.resource && rs.resource.dropped_attributes_count) || 0};
    for (const ss of rs.scope_spans || []) {
      const sc = ss.scope || {};
      const scope = {name: sc.name || '', version: sc.version || '', attrs: attrs(sc.attributes),
        schema_url: ss.schema_url || ''};
      for (const s of ss.spans || []) {
        out.push({
          resource: res, scope,
          trace_id: hex(s.trace_id), span_id: hex(s.span_id), parent_span_id: hex(s.parent_span_id),
          trace_state: s.trace_state || '', flags: s.flags || 0, name: s.name || '', kind: s.kind || 0,
          start: str(s.start_time_unix_nano), end: str(s.end_time_unix_nano),
          attrs: attrs(s.attributes), dropped_attributes: s.dropped_attributes_count || 0,
          events: (s.events || []).map((e) => ({time: str(e.time_unix_nano), name: e.name || '',
            attrs: attrs(e.attributes), dropped: e.dropped_attributes_count || 0})),
          dropped_events: s.dropped_events_count || 0,
          links: (s.links || []).map((l) => ({trace_id: hex(l.trace_id), span_id: hex(l.span_id),
            trace_state: l.trace_state || '', attrs: attrs(l.attributes), flags: l.flags || 0})),
          dropped_links: s.dropped_links_count || 0,
          status: {code: (s.status && s.status.code) || 0, message: (s.status && s.status.message) || ''},
        });
      }
    }
  }
  return out;
}

module.exports = {load, CONV, spansOf, statusBytes, Status, protoDir, SERVICE_PROTO};
