// server.js - npm `ws` as an echo backend behind the gateway.
//
//   node server.js
//
// Listens on 127.0.0.1 on a port the kernel picks and prints
// "listening on 127.0.0.1:PORT". Every message is echoed back with its
// type (text or binary); fragmented messages are echoed whole. Pings are
// answered by the library. Runs until killed.
'use strict';
const WebSocket = require('ws');

const wss = new WebSocket.WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: false,
  maxPayload: 64 * 1024 * 1024,
});
wss.on('listening', () => {
  console.log(`listening on 127.0.0.1:${wss.address().port}`);
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => ws.terminate());
});
