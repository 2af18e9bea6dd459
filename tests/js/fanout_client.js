// fanout_client.js - npm `ws` as a subscriber of a fan-out channel.
//
//   node fanout_client.js ws://127.0.0.1:PORT/path COUNT
//
// Prints "open" once the handshake is done and sends "hello from node"
// (the gateway forwards it to the channel's upstream). Checks that a ping
// is answered ("ok ping"). Then reads COUNT messages "SEQ TARGET ..." from
// the broadcast backend (tests/support/fanback.c), each SEQ one more than
// the last, prints "ok COUNT first F last L", closes with 1000 and prints
// "closed CODE". Any other outcome prints "FAIL why" and exits 1.
'use strict';
const WebSocket = require('ws');

const url = process.argv[2];
const count = parseInt(process.argv[3], 10);
const fail = (why) => {
  console.log(`FAIL ${why}`);
  process.exit(1);
};
const timer = setTimeout(() => fail('timeout'), 30000);

const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 0 });
ws.on('error', (e) => fail(`error: ${e.message}`));

let got = 0;
let first = 0;
let prev = 0;
ws.on('open', () => {
  console.log('open');
  ws.send('hello from node');
  ws.once('pong', (p) => {
    if (p.toString() !== 'nodeping') fail(`pong carried ${p.toString()}`);
    console.log('ok ping');
  });
  ws.ping(Buffer.from('nodeping'));
});

ws.on('message', (data, isBinary) => {
  const seq = parseInt(data.toString().split(' ', 1)[0], 10);
  if (isBinary || !(seq > 0)) fail(`not a broadcast: ${data.toString().slice(0, 40)}`);
  if (got > 0 && seq !== prev + 1) fail(`order: ${seq} after ${prev}`);
  if (got === 0) first = seq;
  prev = seq;
  got++;
  if (got === count) {
    console.log(`ok ${count} first ${first} last ${prev}`);
    ws.close(1000);
  }
});

ws.on('close', (code) => {
  console.log(`closed ${code}`);
  clearTimeout(timer);
  process.exit(got === count && code === 1000 ? 0 : 1);
});
