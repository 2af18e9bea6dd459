// jwt_ws.js - npm `ws` client for the jwt_auth suite.
//
//   node jwt_ws.js ws://127.0.0.1:PORT/path [TOKEN [N]]
//
// Opens a WebSocket with "Authorization: Bearer TOKEN" (none when TOKEN is
// absent or empty). On the 101 it sends N text messages (default 1), each
// after the echo of the one before: prints "ok open", then "ok echo" when
// all N came back and exits 0. When the gateway closes the session first
// it prints "echoed K" and "close CODE" and exits 3. When the gateway
// refuses the upgrade it prints "status NNN" and the WWW-Authenticate value
// as "www-authenticate VALUE" and exits 2. Anything else exits 1.
'use strict';
const WebSocket = require('ws');

const [url, token, n] = process.argv.slice(2);
const want = Number(n || 1);
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const ws = new WebSocket(url, { headers, perMessageDeflate: false });
const timer = setTimeout(() => {
  console.log('FAIL timeout');
  process.exit(1);
}, 10000);
let echoed = 0;
const text = (i) => `hello through jwt_auth ${i}`;

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
  ws.send(text(0));
});
ws.on('message', (data) => {
  if (data.toString() !== text(echoed)) {
    console.log(`FAIL echo: ${data.toString().slice(0, 40)}`);
    process.exit(1);
  }
  echoed++;
  if (echoed < want) {
    ws.send(text(echoed));
    return;
  }
  console.log('ok echo');
  ws.close(1000);
});
ws.on('close', (code) => {
  clearTimeout(timer);
  if (echoed < want) {
    console.log(`echoed ${echoed}`);
    console.log(`close ${code}`);
    process.exit(3);
  }
  process.exit(0);
});
