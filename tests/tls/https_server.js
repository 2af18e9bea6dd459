// https_server.js - a TLS upstream for tests/integration/tls_test.c.
//
//   node https_server.js CERT KEY [PORT]
//
// Serves HTTPS on 127.0.0.1:PORT (0 or absent: the kernel picks) with the
// PEM certificate chain CERT and key KEY, TLS 1.2 and 1.3, ALPN http/1.1.
// Once bound it prints "listening on 127.0.0.1:P". Every request gets 200
// text/plain with the same body layout as `swload echo` (so the suites'
// sw_test_echo_header() reads it): the request line, one "Name: value" line
// per received header in received order, then these lines about the TLS
// connection it arrived on:
//   X-Upstream-Tls: yes
//   X-Upstream-Sni: NAME        (the server name the client sent, or "-")
//   X-Upstream-Alpn: PROTO      (the negotiated protocol, or "-")
//   X-Upstream-Tls-Version: V   (e.g. TLSv1.3)
// then a blank line. Request bodies are read and discarded. A WebSocket
// upgrade (npm `ws` from tests/js/node_modules) is accepted and echoes
// every message with its type: a wss:// upstream. Runs until SIGTERM or
// SIGINT.
'use strict';
const fs = require('fs');
const https = require('https');
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'js', 'node_modules',
  'ws'));

const [certFile, keyFile, portArg] = process.argv.slice(2, 5);
if (!certFile || !keyFile) {
  console.log('usage: https_server.js CERT KEY [PORT]');
  process.exit(2);
}

const server = https.createServer({
  cert: fs.readFileSync(certFile),
  key: fs.readFileSync(keyFile),
  minVersion: 'TLSv1.2',
  ALPNProtocols: ['http/1.1'],
}, (req, res) => {
  req.resume();
  req.on('end', () => {
    const s = req.socket;
    let body = `${req.method} ${req.url} HTTP/${req.httpVersion}\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      body += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\n`;
    }
    body += 'X-Upstream-Tls: yes\n';
    body += `X-Upstream-Sni: ${s.servername || '-'}\n`;
    body += `X-Upstream-Alpn: ${s.alpnProtocol || '-'}\n`;
    body += `X-Upstream-Tls-Version: ${s.getProtocol()}\n\n`;
    res.writeHead(200, {
      'Content-Type': 'text/plain',
      'Content-Length': Buffer.byteLength(body),
      'X-Backend': 'https',
    });
    res.end(body);
  });
});
const wss = new WebSocket.WebSocketServer({
  server,
  perMessageDeflate: false,
  maxPayload: 0,
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.on('tlsClientError', (e, socket) => {
  console.log(`tls client error: ${e.message}`);
  socket.destroy();
});
server.listen(Number(portArg || 0), '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// close() waits for keep-alive connections; do not wait for them long.
process.on('SIGTERM', () => setTimeout(() => process.exit(0), 500).unref());
