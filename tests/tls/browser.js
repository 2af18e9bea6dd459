// browser.js - drive headless Chromium through page.html for tls_test.c.
//
//   node browser.js CHROMIUM PAGE_URL WORK_DIR [TIMEOUT_MS]
//
// Starts Chromium through tests/js/chromium.js (profile in WORK_DIR, the
// DevTools protocol on a pipe, clean-up of every browser process), opens
// PAGE_URL in a new target and polls `#result` with Runtime.evaluate every
// 100 ms, in real time, until the page has written its verdict ("PASS" or
// "FAIL: ...") or TIMEOUT_MS (default 30000) passes. --dump-dom with
// --virtual-time-budget is not used: virtual time runs the page's timers
// ahead of the network, so the page's own watchdog fired before the
// WebSocket round trips ended.
//
// Output: chromium.js's ("browser pgid N", "result TEXT" or "result
// TIMEOUT", "stray N", "leftover N").
// Exit status 0 only for "result PASS" with "leftover 0".
'use strict';
const path = require('path');
const { launch } = require(path.join(__dirname, '..', 'js', 'chromium.js'));

const [chromium, pageUrl, workArg] = process.argv.slice(2, 5);
const timeoutMs = Number(process.argv[5] || 30000);
if (!chromium || !pageUrl || !workArg) {
  console.log('usage: browser.js CHROMIUM PAGE_URL WORK_DIR [TIMEOUT_MS]');
  process.exit(2);
}
const b = launch(chromium, workArg, timeoutMs);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const { targetId } = await b.send('Target.createTarget', { url: pageUrl });
  const { sessionId } = await b.send('Target.attachToTarget',
    { targetId, flatten: true });
  const expr = "(document.getElementById('result') || {}).textContent || ''";
  for (;;) {
    const r = await b.send('Runtime.evaluate',
      { expression: expr, returnByValue: true }, sessionId);
    const text = r && r.result ? String(r.result.value) : '';
    if (text !== '' && text !== 'RUNNING') {
      b.finish(text, text === 'PASS' ? 0 : 1);
      return;
    }
    await sleep(100);
  }
})().catch((e) => b.finish(`FAIL: devtools: ${e.message}`, 1));
