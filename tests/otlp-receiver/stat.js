#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Query the agent's control socket and print values of its `stats` JSON:
//   stat.js SOCKET.ctl agent.spans exp.otlp_http.failures ...
// (exp.NAME selects the exporter named NAME); `stat.js SOCKET.ctl` alone
// prints the whole JSON.
'use strict';
const net = require('net');
const [sock, ...paths] = process.argv.slice(2);
const c = net.connect(sock, () => c.write('stats\n'));
let data = '';
c.on('data', (d) => {
  data += d;
  try { done(JSON.parse(data)); } catch (e) { /* more to come */ }
});
c.on('error', (e) => { console.error('stat.js:', e.message); process.exit(2); });
function done(j) {
  c.destroy();
  if (!paths.length) { console.log(JSON.stringify(j)); process.exit(0); }
  for (const p of paths) {
    const parts = p.split('.');
    let v = j;
    if (parts[0] === 'exp') {
      v = (j.exporters || []).find((e) => e.name === parts[1]);
      parts.splice(0, 2);
    }
    for (const k of parts) v = v === undefined ? undefined : v[k];
    console.log(v === undefined ? 'undefined' : typeof v === 'object' ? JSON.stringify(v) : v);
  }
  process.exit(0);
}
setTimeout(() => { console.error('stat.js: no answer'); process.exit(2); }, 5000);
