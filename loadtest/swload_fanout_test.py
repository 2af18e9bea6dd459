#!/usr/bin/python3
"""swload_fanout_test.py - checks `swload broadcast` and `swload subscribe`,
the two tools of the fan-out benchmark (loadtest/fanout), on loopback.

    swload_fanout_test.py PATH/TO/swload

- bad options get exit status 2 and a message;
- the backend answers GET /stats and 404, upgrades with the right
  Sec-WebSocket-Accept, sends numbered, time-stamped frames of --size
  bytes in order, answers a ping and a close, counts what it did;
- the subscriber opens its clients, receives, and reports no gap against
  the real backend; against a scripted sender (sequence 1 2 4 3 5 and a
  short message) it reports the gap, the reordering and the bad message;
  with --channels N its clients ask for N paths in turn.

Every process started here is stopped by PID; every wait is bounded.
Standard library only. Exit status 0 when every check passed."""

import base64
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

SWLOAD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SW_SWLOAD")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
FAILED = []


def check(cond, what):
    print("%s %s" % ("ok  " if cond else "FAIL", what), flush=True)
    if not cond:
        FAILED.append(what)


def run(argv, timeout=20):
    return subprocess.run([SWLOAD] + argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def http_get(port, path):
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.settimeout(5)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def read_frame(s):
    """(opcode, payload) of one unmasked server frame."""
    b0, b1 = recv_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    return b0 & 0x0F, recv_exact(s, n)


def client_frame(opcode, payload):
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def ws_open(port, path="/feed"):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(5)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n" % (path.encode(), key))
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    want = base64.b64encode(hashlib.sha1(key + GUID).digest())
    return s, head, want


def backend_checks():
    for bad in (["--size", "3"], ["--size", "70000"], ["--interval", "x"],
                ["--interval", "-1"], []):
        r = run(["broadcast", "--listen", "127.0.0.1:0"] + bad
                if bad else ["broadcast"])
        check(r.returncode == 2 and "swload" in r.stderr + "usage",
              "broadcast %s: exit 2 with a message" % " ".join(bad))
    p = subprocess.Popen([SWLOAD, "broadcast", "--listen", "127.0.0.1:0",
                          "--interval", "5", "--size", "100"],
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        check(line.startswith("listening on 127.0.0.1:"), "listening line")
        port = int(line.strip().rsplit(":", 1)[1])
        status, body = http_get(port, "/stats")
        st = json.loads(body)
        check(status.startswith("HTTP/1.1 200") and st["held"] == 0
              and st["broadcasts"] == 0, "GET /stats before any client")
        status, _ = http_get(port, "/other")
        check(status.startswith("HTTP/1.1 404"), "GET /other: 404")
        frames_check(port)
        r = run(["subscribe", "--url", "ws://127.0.0.1:%d/feed" % port,
                 "--clients", "20", "--duration", "0.5", "--json-only"])
        res = json.loads(r.stdout.strip().splitlines()[-1])
        check(r.returncode == 0 and res["opened"] == 20, "20 subscribers")
        check(res["deliveries"] > 20 and res["missed"] == 0
              and res["reordered"] == 0 and res["bad"] == 0
              and res["p50_us"] > 0, "deliveries in order, latency: %s"
              % r.stdout.strip())
        st = json.loads(http_get(port, "/stats")[1])
        check(st["upgraded"] == 21 and st["held_max"] >= 20
              and st["sends"] >= res["deliveries"] and st["received"] == 0,
              "counters after: %s" % json.dumps(st))
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
    check(p.returncode == 0 and out.strip().splitlines()[-1].startswith("{"),
          "SIGTERM: exit 0 with the stats line")


def frames_check(port):
    s, head, want = ws_open(port)
    check(head.startswith(b"HTTP/1.1 101") and want in head,
          "101 with Sec-WebSocket-Accept")
    seqs = []
    for _ in range(3):
        op, pl = read_frame(s)
        now = time.monotonic_ns()
        seq, sent = struct.unpack("<QQ", pl[:16])
        check(op == 2 and len(pl) == 100 and 0 < now - sent < 5 * 10**9
              and pl[16:19] == bytes([16, 17, 18]),
              "binary frame, 100 bytes, send time in the past, pattern")
        seqs.append(seq)
    check(seqs[1] == seqs[0] + 1 and seqs[2] == seqs[1] + 1,
          "sequence numbers consecutive: %s" % seqs)
    s.sendall(client_frame(0x9, b"hello"))
    op, pl = read_frame(s)
    while op == 2:
        op, pl = read_frame(s)
    check(op == 0xA and pl == b"hello", "ping answered with its payload")
    s.sendall(client_frame(0x8, struct.pack("!H", 1000)))
    op, pl = read_frame(s)
    while op == 2:
        op, pl = read_frame(s)
    check(op == 0x8 and pl == struct.pack("!H", 1000), "close 1000 answered")
    s.close()


def scripted_sender(ls, stop):
    """One WebSocket: 101, then seq 1 2 4 3 5 and a 4-byte message."""
    c, _ = ls.accept()
    c.settimeout(5)
    head = b""
    while b"\r\n\r\n" not in head:
        head += c.recv(4096)
    key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
           if ln.lower().startswith(b"sec-websocket-key:")][0]
    acc = base64.b64encode(hashlib.sha1(key + GUID).digest())
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % acc)
    time.sleep(0.3)  # measuring starts once the client is open
    for seq in (1, 2, 4, 3, 5):
        pl = struct.pack("<QQ", seq, time.monotonic_ns()) + b"x" * 48
        c.sendall(bytes([0x82, len(pl)]) + pl)
    c.sendall(bytes([0x82, 4]) + b"abcd")
    stop.wait(10)
    c.close()


def subscriber_order_checks():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    stop = threading.Event()
    t = threading.Thread(target=scripted_sender, args=(ls, stop))
    t.start()
    try:
        r = run(["subscribe", "--url", "ws://127.0.0.1:%d/" %
                 ls.getsockname()[1], "--clients", "1", "--duration", "1"])
    finally:
        stop.set()
        t.join(10)
        ls.close()
    lines = r.stdout.strip().splitlines()
    check(lines[0].startswith("all 1 connections open")
          and lines[1].startswith("measured"), "start and end lines")
    res = json.loads(lines[-1])
    check(res["deliveries"] == 5 and res["missed"] == 1 and res["gaps"] == 1
          and res["reordered"] == 1 and res["bad"] == 1,
          "gap, reordering and a short message counted: %s" % lines[-1])
    r = run(["subscribe", "--url", "http://127.0.0.1:1/"])
    check(r.returncode == 2, "subscribe with a bad URL: exit 2")


def channel_sender(ls, n, paths, stop):
    """n WebSockets answered with a 101; the request target of each goes
    to paths."""
    conns = []
    for _ in range(n):
        c, _ = ls.accept()
        c.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.recv(4096)
        paths.append(head.split(b" ", 2)[1].decode())
        key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
               if ln.lower().startswith(b"sec-websocket-key:")][0]
        acc = base64.b64encode(hashlib.sha1(key + GUID).digest())
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\n"
                  b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: %s\r\n\r\n" % acc)
        conns.append(c)
    stop.wait(10)
    for c in conns:
        c.close()


def subscriber_channel_checks():
    """--channels 3: connection i asks for PATH + (i mod 3)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    paths, stop = [], threading.Event()
    t = threading.Thread(target=channel_sender, args=(ls, 6, paths, stop))
    t.start()
    try:
        r = run(["subscribe", "--url", "ws://127.0.0.1:%d/live/ch" %
                 ls.getsockname()[1], "--clients", "6", "--channels", "3",
                 "--duration", "0.2"])
    finally:
        stop.set()
        t.join(10)
        ls.close()
    check(sorted(paths) == ["/live/ch0", "/live/ch0", "/live/ch1",
                            "/live/ch1", "/live/ch2", "/live/ch2"],
          "--channels 3 spreads 6 clients over ch0..ch2: %s" % paths)
    r = run(["subscribe", "--url", "ws://127.0.0.1:1/", "--channels", "0"])
    check(r.returncode == 2, "--channels 0: exit 2")


def main():
    if not SWLOAD or not os.access(SWLOAD, os.X_OK):
        print("usage: swload_fanout_test.py PATH/TO/swload")
        return 2
    backend_checks()
    subscriber_order_checks()
    subscriber_channel_checks()
    print("%d failed" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
