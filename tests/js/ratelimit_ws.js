// ratelimit_ws.js - npm `ws` as a client of a rate-limited WebSocket route
// with an echo upstream behind it.
//
//   node ratelimit_ws.js URL seq|burst N [KEY]
//
// seq:   send text message i, wait for its echo (or the session's end),
//        then the next; after N echoes, close 1000.
// burst: send N text messages at once, then close 1000. The upstream
//        answers the close after echoing everything it got, so the echoes
//        seen before the close are exactly the messages the gateway let
//        through.
// KEY, when given, is sent as the X-Key header. Prints "echoed K" and
// "close CODE" (the code the session ended with), exits 0 unless the
// connection failed or nothing ended it within 20 s.
'use strict';
const WebSocket = require('ws');

const [url, mode, nArg, key] = process.argv.slice(2);
const n = parseInt(nArg, 10);
const headers = key ? { 'X-Key': key } : {};
const ws = new WebSocket(url, { perMessageDeflate: false, headers });
let echoed = 0;
let waiting = null;

const timer = setTimeout(() => {
  console.log(`FAIL timeout (echoed ${echoed})`);
  process.exit(1);
}, 20000);

ws.on('error', (e) => {
  console.log(`FAIL error: ${e.message}`);
  process.exit(1);
});

ws.on('message', () => {
  echoed++;
  if (waiting) {
    const w = waiting;
    waiting = null;
    w();
  }
});

ws.on('close', (code) => {
  console.log(`echoed ${echoed}`);
  console.log(`close ${code}`);
  clearTimeout(timer);
  process.exit(0);
});

ws.on('open', async () => {
  if (mode === 'burst') {
    for (let i = 0; i < n; i++) ws.send(`m${i}`);
    ws.close(1000);
    return;
  }
  for (let i = 0; i < n; i++) {
    const echo = new Promise((resolve) => { waiting = resolve; });
    ws.send(`m${i}`);
    await echo;
  }
  ws.close(1000);
});
