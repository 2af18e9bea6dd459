// status_browser.js - load the gateway's status page in headless Chromium
// and watch it, for tests/integration/status_test.c.
//
//   node status_browser.js CHROMIUM ADMIN_URL WORK_DIR UPSTREAM SERVER
//                          [TIMEOUT_MS]
//
// Opens ADMIN_URL/status (through chromium.js: profile in WORK_DIR, every
// browser process cleaned up) and polls the rendered page every 100 ms:
//   1. "rendered" once the page has refreshed itself at least twice and
//      shows SERVER of UPSTREAM as up; then every server row ("row UPSTREAM
//      SERVER STATE") and the route count ("routes N");
//   2. then it reads ADMIN_URL/status.json itself, and once the gateway
//      says SERVER is down, counts the page's refreshes until the page shows
//      it down: "down after N refreshes" (the caller makes SERVER fail after
//      seeing "rendered");
//   3. it watches one more second, and reports the console: every
//      console.error/assert, uncaught exception and browser log entry of
//      level error ("console ..."), then "console errors N".
// "result PASS" when all of it held and N errors is 0.
'use strict';
const http = require('http');
const path = require('path');
const { launch } = require(path.join(__dirname, 'chromium.js'));

const [chromium, adminUrl, workArg, upstream, server] =
  process.argv.slice(2, 7);
const timeoutMs = Number(process.argv[7] || 30000);
if (!chromium || !adminUrl || !workArg || !upstream || !server) {
  console.log('usage: status_browser.js CHROMIUM ADMIN_URL WORK_DIR ' +
    'UPSTREAM SERVER [TIMEOUT_MS]');
  process.exit(2);
}
const b = launch(chromium, workArg, timeoutMs);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const errors = [];
b.onEvent((msg) => {
  const p = msg.params || {};
  if (msg.method === 'Runtime.consoleAPICalled' &&
      (p.type === 'error' || p.type === 'assert')) {
    errors.push('console.' + p.type + ': ' +
      (p.args || []).map((a) => a.value !== undefined ? a.value
        : a.description).join(' '));
  } else if (msg.method === 'Runtime.exceptionThrown') {
    const d = p.exceptionDetails || {};
    errors.push('exception: ' + (d.exception ? d.exception.description
      : d.text));
  } else if (msg.method === 'Log.entryAdded' && p.entry &&
             p.entry.level === 'error') {
    errors.push('log: ' + p.entry.text + ' ' + (p.entry.url || ''));
  }
});

function gatewayState() {
  return new Promise((resolve) => {
    http.get(adminUrl + '/status.json', (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        try {
          const s = JSON.parse(body);
          const u = s.upstreams.find((x) => x.name === upstream);
          const v = u.servers.find((x) => x.address === server);
          resolve(v.state);
        } catch (e) {
          resolve('?');
        }
      });
    }).on('error', () => resolve('?'));
  });
}

const pageExpr = `JSON.stringify({
  updates: Number(document.body.dataset.updates || 0),
  rows: [...document.querySelectorAll('tr[data-server]')].map((r) =>
    [r.closest('table').dataset.upstream, r.dataset.server, r.dataset.state,
     r.querySelector('td.state').textContent]),
  routes: document.querySelectorAll('#routes tr').length,
})`;

(async () => {
  const { targetId } = await b.send('Target.createTarget',
    { url: 'about:blank' });
  const { sessionId } = await b.send('Target.attachToTarget',
    { targetId, flatten: true });
  await b.send('Runtime.enable', {}, sessionId);
  await b.send('Log.enable', {}, sessionId);
  await b.send('Page.enable', {}, sessionId);
  await b.send('Page.navigate', { url: adminUrl + '/status' }, sessionId);
  const look = async () => {
    const r = await b.send('Runtime.evaluate',
      { expression: pageExpr, returnByValue: true }, sessionId);
    try {
      return JSON.parse(r.result.value);
    } catch (e) {
      return { updates: 0, rows: [], routes: 0 };
    }
  };
  const row = (p) => p.rows.find((x) => x[0] === upstream && x[1] === server);
  let p;
  for (;;) {
    p = await look();
    const r = row(p);
    if (p.updates >= 2 && r && r[2] === 'up') {
      break;
    }
    await sleep(100);
  }
  console.log('rendered');
  for (const r of p.rows) {
    console.log(`row ${r[0]} ${r[1]} ${r[2]} ${r[3]}`);
  }
  console.log(`routes ${p.routes}`);
  let downAt = -1;
  for (;;) {
    p = await look();
    if (downAt < 0 && await gatewayState() === 'down') {
      downAt = p.updates;
    }
    const r = row(p);
    if (r && r[2] === 'down') {
      if (downAt < 0) {
        downAt = p.updates; // the page was quicker than our own look
      }
      console.log(`down after ${p.updates - downAt} refreshes (${r[3]})`);
      break;
    }
    await sleep(100);
  }
  await sleep(1000);
  for (const e of errors) {
    console.log(`console ${e}`);
  }
  console.log(`console errors ${errors.length}`);
  b.finish(errors.length === 0 ? 'PASS' : 'FAIL: console errors',
    errors.length === 0 ? 0 : 1);
})().catch((e) => b.finish(`FAIL: devtools: ${e.message}`, 1));
