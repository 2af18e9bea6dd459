// jwt_ws.js - npm `ws` client for the jwt_auth suite.
//
//   node jwt_ws.js ws://127.0.0.1:PORT/path [TOKEN]
//
// Opens a WebSocket with "Authorization: Bearer TOKEN" (none when TOKEN is
// absent). On the 101 it sends one text message and expects the echo:
// prints "ok open", "ok echo" and exits 0. When the gateway refuses the
// upgrade it prints "status NNN" and the WWW-Authenticate value as
// "www-authenticate VALUE" and exits 2. Anything else exits 1.
'use strict';
const WebSocket = require('ws');

const [url, token] = process.argv.slice(2);
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const ws = new WebSocket(url, { headers, perMessageDeflate: false });
const timer = setTimeout(() => {
  console.log('FAIL timeout');
  process.exit(1);
}, 10000);

ws.on('unexpected-response', (req, res) => {
  console.log(`status ${res.statusCode}`);
  console.log(`www-authenticate ${res.headers['www-authenticate'] || ''}`);
  clearTimeout(timer);
  process.exit(2);
});
ws.on('error', (e) => {
  console.log(`FAIL error: ${e.message}`);
  process.exit(1);
});
ws.on('open', () => {
  console.log('ok open');
  ws.send('hello through jwt_auth');
});
ws.on('message', (data) => {
  const ok = data.toString() === 'hello through jwt_auth';
  console.log(ok ? 'ok echo' : `FAIL echo: ${data.toString().slice(0, 40)}`);
  clearTimeout(timer);
  ws.close(1000);
  ws.on('close', () => process.exit(ok ? 0 : 1));
});
