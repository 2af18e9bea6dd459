// echo_server.js - WebSocket echo backend on the npm `ws` package, the
// third-party reference peer of the conformance suite
// (tests/integration/ws_conformance_test.c).
//
//   node echo_server.js [PORT]      (0 or nothing: the kernel picks one)
//
// Prints "listening on 127.0.0.1:PORT" once bound. Every message is echoed
// whole with its type (ws reassembles fragments and validates UTF-8, close
// codes and framing itself: it is the strict peer). permessage-deflate is
// accepted when a client offers it (no context takeover, so the compressed
// bytes are the same on every run). A text message "__rsv1" makes the server
// write, on the raw socket, a text frame with RSV1 set although nothing was
// negotiated: a server breaking RFC 6455 5.2 on purpose, so the suite can
// check that the gateway refuses it toward the client.
'use strict';

const { WebSocketServer } = require('ws');

const port = parseInt(process.argv[2] || '0', 10);
const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: port,
    maxPayload: 64 * 1024 * 1024,
    perMessageDeflate: {
        threshold: 0,
        serverNoContextTakeover: true,
        clientNoContextTakeover: true,
    },
});

wss.on('listening', () => {
    console.log('listening on 127.0.0.1:' + wss.address().port);
});

wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
        if (!isBinary && data.length === 6 && data.toString() === '__rsv1') {
            // FIN + RSV1 + text, unmasked, 2 bytes "ok"
            ws._socket.write(Buffer.from([0xc1, 0x02, 0x6f, 0x6b]));
            return;
        }
        ws.send(data, { binary: isBinary });
    });
    ws.on('error', () => {});
});

process.on('SIGTERM', () => process.exit(0));
