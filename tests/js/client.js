// client.js - npm `ws` as a WebSocket client through the gateway.
//
//   node client.js ws://127.0.0.1:PORT/path
//
// Echo checks against an echo backend: a text message, a binary message, a
// 1 MiB binary message (byte i = i % 251, the suites' test pattern) and a
// ping whose pong must carry the same payload. Prints one line per check
// ("ok NAME" or "FAIL NAME: why"), the SHA-256 of the 1 MiB echo as
// "sha256 HEX", and exits 0 only when every check passed.
'use strict';
const crypto = require('crypto');
const WebSocket = require('ws');

const url = process.argv[2];
const pattern = (n) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
};

let failed = false;
const check = (name, cond, why) => {
  console.log(cond ? `ok ${name}` : `FAIL ${name}: ${why}`);
  if (!cond) failed = true;
};

const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 0 });
const timer = setTimeout(() => {
  console.log('FAIL timeout');
  process.exit(1);
}, 20000);

const next = () => new Promise((resolve) => ws.once('message',
  (data, isBinary) => resolve({ data, isBinary })));

ws.on('error', (e) => {
  console.log(`FAIL error: ${e.message}`);
  process.exit(1);
});

ws.on('open', async () => {
  ws.send('hello from node');
  let m = await next();
  check('text', !m.isBinary && m.data.toString() === 'hello from node',
    `got ${m.data.toString().slice(0, 40)}`);

  const small = pattern(1000);
  ws.send(small);
  m = await next();
  check('binary', m.isBinary && Buffer.compare(m.data, small) === 0,
    `got ${m.data.length} bytes`);

  const big = pattern(1 << 20);
  ws.send(big);
  m = await next();
  const sum = crypto.createHash('sha256').update(m.data).digest('hex');
  check('1mib', m.isBinary && m.data.length === big.length,
    `got ${m.data.length} bytes`);
  console.log(`sha256 ${sum}`);

  const pong = new Promise((resolve) => ws.once('pong', resolve));
  ws.ping(Buffer.from('nodeping'));
  const p = await pong;
  check('ping', p.toString() === 'nodeping', `pong carried ${p.toString()}`);

  ws.close(1000);
  ws.on('close', (code) => {
    check('close', code === 1000, `close code ${code}`);
    clearTimeout(timer);
    process.exit(failed ? 1 : 0);
  });
});
