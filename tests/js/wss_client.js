// wss_client.js - npm `ws` as a wss:// client: tests/integration/tls_test.c
// and loadtest/tls_bench.
//
//   node wss_client.js echo  URL CAFILE SERVERNAME
//   node wss_client.js hold  URL CAFILE SERVERNAME N FLAGFILE
//   node wss_client.js bench URL CAFILE SERVERNAME SECONDS [SIZE]
//   node wss_client.js idle  URL CAFILE SERVERNAME N
//
// The server certificate is verified against CAFILE (the test CA) and
// SERVERNAME (sent as SNI and checked against the certificate); nothing
// turns verification off. URL is wss://127.0.0.1:PORT/PATH.
//
// echo   a text message, a binary message (byte i = i % 251), and 16 MiB
//        binary and text messages; every echo is compared by type, length
//        and SHA-256. Prints "ok NAME sha256 HEX" per check, then
//        "echo ok N"; exit 0 only when all matched.
// hold   opens N connections, echoes once on each, prints "open N", waits
//        (at most 60 s) for FLAGFILE to exist, then echoes a text and a
//        300 KB binary message on every one of the same connections,
//        prints "hold ok N" and closes them with 1000.
// bench  one connection, SIZE-byte binary messages (default 64) sent one
//        at a time, each after the previous echo, for SECONDS; prints one
//        JSON line {"messages":M,"seconds":S,"msgs_per_s":R}.
// idle   opens N connections (at most 100 handshakes at a time), prints
//        "open N", holds them until stdin ends or SIGTERM, then checks that
//        every one is still open, prints "idle ok N" (or "dropped K") and
//        exits.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const WebSocket = require('ws');

const [mode, url, caFile, serverName] = process.argv.slice(2, 6);
if (!mode || !url || !caFile || !serverName) {
  console.log('usage: wss_client.js echo|hold|bench|idle URL CAFILE NAME ...');
  process.exit(2);
}
const ca = fs.readFileSync(caFile);

function open() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      ca,
      servername: serverName,
      rejectUnauthorized: true,
      perMessageDeflate: false,
      maxPayload: 0,
      handshakeTimeout: 10000,
    });
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => {
      ws.removeListener('error', reject);
      resolve(ws);
    });
    ws.once('error', reject);
  });
}

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

// Send one message and wait for the next one; resolve with its echo check.
function echoOne(ws, msg) {
  return new Promise((resolve, reject) => {
    const onClose = (code) => reject(new Error(`closed (${code})`));
    ws.once('close', onClose);
    ws.once('message', (data, isBinary) => {
      ws.removeListener('close', onClose);
      const want = Buffer.isBuffer(msg) ? msg : Buffer.from(msg);
      if (isBinary !== Buffer.isBuffer(msg)) {
        reject(new Error(`echo type differs (binary=${isBinary})`));
      } else if (data.length !== want.length || sha(data) !== sha(want)) {
        reject(new Error(`echo differs: ${data.length} of ${want.length} ` +
          'bytes'));
      } else {
        resolve(sha(data));
      }
    });
    ws.send(msg);
  });
}

function pattern(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    b[i] = i % 251;
  }
  return b;
}

function closeAll(conns) {
  return Promise.all(conns.map((ws) => new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) {
      resolve();
      return;
    }
    ws.once('close', resolve);
    ws.close(1000);
  })));
}

async function echo() {
  const ws = await open();
  const msgs = [
    ['text', 'hello over wss from node \u00e9\u4e16'],
    ['binary', pattern(1000)],
    ['binary-16mib', crypto.randomBytes(16 << 20)],
    ['text-16mib', 'w'.repeat(16 << 20)],
  ];
  for (const [name, m] of msgs) {
    console.log(`ok ${name} sha256 ${await echoOne(ws, m)}`);
  }
  await closeAll([ws]);
  console.log(`echo ok ${msgs.length}`);
}

async function hold(n, flag) {
  const conns = [];
  for (let i = 0; i < n; i++) {
    conns.push(await open());
  }
  for (let i = 0; i < n; i++) {
    await echoOne(conns[i], `before ${i}`);
  }
  console.log(`open ${n}`);
  const until = Date.now() + 60000;
  while (!fs.existsSync(flag)) {
    if (Date.now() > until) {
      throw new Error('flag file never appeared');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  for (let i = 0; i < n; i++) {
    await echoOne(conns[i], `after ${i}`);
    await echoOne(conns[i], crypto.randomBytes(300000));
  }
  console.log(`hold ok ${n}`);
  await closeAll(conns);
}

async function bench(seconds, size) {
  const ws = await open();
  const msg = crypto.randomBytes(size);
  let count = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  await new Promise((resolve, reject) => {
    ws.on('close', (code) => reject(new Error(`closed (${code})`)));
    ws.on('message', (data) => {
      if (data.length !== size) {
        reject(new Error(`echo of ${data.length} bytes`));
        return;
      }
      count++;
      if (process.hrtime.bigint() >= end) {
        resolve();
      } else {
        ws.send(msg);
      }
    });
    ws.send(msg);
  });
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(JSON.stringify({ messages: count, seconds: +secs.toFixed(3),
    msgs_per_s: +(count / secs).toFixed(1) }));
  ws.removeAllListeners('close');
  await closeAll([ws]);
}

async function idle(n) {
  const conns = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      conns.push(await open());
    }
  };
  await Promise.all(Array.from({ length: Math.min(100, n) }, worker));
  let dropped = 0;
  for (const ws of conns) {
    ws.on('close', () => dropped++);
  }
  console.log(`open ${conns.length}`);
  await new Promise((resolve) => {
    process.stdin.on('end', resolve);
    process.stdin.on('error', resolve);
    process.stdin.resume();
    process.on('SIGTERM', resolve);
  });
  console.log(dropped === 0 ? `idle ok ${n}` : `dropped ${dropped}`);
  for (const ws of conns) {
    ws.removeAllListeners('close');
    ws.terminate();
  }
  process.exit(dropped === 0 ? 0 : 1);
}

const args = process.argv.slice(6);
const run = {
  echo: () => echo(),
  hold: () => hold(Number(args[0]), args[1]),
  bench: () => bench(Number(args[0]), Number(args[1] || 64)),
  idle: () => idle(Number(args[0])),
}[mode];
if (!run) {
  console.log(`unknown mode ${mode}`);
  process.exit(2);
}
run().then(() => process.exit(0), (e) => {
  console.log(`FAIL ${mode}: ${e.message}`);
  process.exit(1);
});
