// many.js - N npm `ws` clients at once, each echoing COUNT messages of
// 1 MiB (the test pattern) one after the other, checking each echo's
// SHA-256.
//
//   node many.js ws://127.0.0.1:PORT/path N COUNT
//
// Prints "ok N COUNT" and exits 0 when every echo matched; otherwise
// "FAIL why" and exit 1.
'use strict';
const crypto = require('crypto');
const WebSocket = require('ws');

const [url, nArg, countArg] = process.argv.slice(2);
const n = Number(nArg);
const count = Number(countArg);
const big = Buffer.alloc(1 << 20);
for (let i = 0; i < big.length; i++) big[i] = i % 251;
const want = crypto.createHash('sha256').update(big).digest('hex');

const fail = (why) => {
  console.log(`FAIL ${why}`);
  process.exit(1);
};
setTimeout(() => fail('timeout'), 60000);

const one = (id) => new Promise((resolve) => {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 0 });
  let left = count;
  ws.on('error', (e) => fail(`connection ${id}: ${e.message}`));
  ws.on('open', () => ws.send(big));
  ws.on('message', (data) => {
    const sum = crypto.createHash('sha256').update(data).digest('hex');
    if (sum !== want) fail(`connection ${id}: echo sha256 ${sum}`);
    if (--left > 0) {
      ws.send(big);
    } else {
      ws.close(1000);
    }
  });
  ws.on('close', () => resolve());
});

Promise.all(Array.from({ length: n }, (_, i) => one(i))).then(() => {
  console.log(`ok ${n} ${count}`);
  process.exit(0);
});
