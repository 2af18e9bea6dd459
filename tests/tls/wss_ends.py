#!/usr/bin/python3
"""wss_ends.py - how a wss:// connection ends, for tests/integration/tls_test.c.

usage: wss_ends.py HOST PORT CAFILE SERVERNAME closenotify|reset

Opens a wss:// connection to /ws over a raw TLS socket (the test CA
trusted, SERVERNAME sent and verified), echoes one masked text frame, then
  closenotify  sends a TLS close_notify without a WebSocket close and waits
               (10 s at most) for the gateway's close_notify and then its
               TCP FIN: prints "close_notify ok"
  reset        aborts the TCP connection (SO_LINGER 0: an RST) without a
               word: prints "reset sent"
Exit status 0 only when each step happened as described.
"""
import base64
import os
import socket
import ssl
import struct
import sys


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise SystemExit("FAIL: connection closed after %d of %d bytes"
                             % (len(out), n))
        out += chunk
    return out


def upgrade(s, name):
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (name, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += recv_exact(s, 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit("FAIL: no 101: %r" % head[:80])


def echo(s, text):
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    s.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)
    b0, b1 = recv_exact(s, 2)
    if b0 != 0x81 or b1 != len(payload):
        raise SystemExit("FAIL: echo header %02x %02x" % (b0, b1))
    if recv_exact(s, len(payload)) != payload:
        raise SystemExit("FAIL: echo payload differs")


def main():
    host, port, cafile, name, mode = sys.argv[1:6]
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection((host, int(port)), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=name)
    upgrade(s, name)
    echo(s, "before the end")
    if mode == "closenotify":
        # unwrap sends our close_notify and returns once the gateway's
        # close_notify came back (a timeout or an error raises)
        plain = s.unwrap()
        while plain.recv(4096):
            pass  # nothing may follow but the FIN; recv returns b"" then
        print("close_notify ok", flush=True)
    elif mode == "reset":
        # the TLS socket took over raw's descriptor; closing it sends no
        # close_notify (Python never calls SSL_shutdown on close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        s.close()
        print("reset sent", flush=True)
    else:
        raise SystemExit("usage: wss_ends.py HOST PORT CA NAME closenotify|reset")


if __name__ == "__main__":
    main()
