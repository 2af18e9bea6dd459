#!/usr/bin/python3
"""wss_client.py - a third-party wss:// client for tests/integration/tls_test.c.

usage: wss_client.py URI CAFILE SERVERNAME echo
         text and binary messages (up to 16 MiB) with SHA-256 checks;
         prints "echo ok N" on success
       wss_client.py URI CAFILE SERVERNAME hold N FLAGFILE
         opens N connections, echoes once on each, prints "open N", waits
         for FLAGFILE to exist, echoes again on every one, prints "hold ok N"
Exit status 0 only when every echo matched. Uses python3-websockets (v10,
asyncio API).
"""
import asyncio
import hashlib
import os
import ssl
import sys

import websockets


def context(cafile, servername):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True
    return ctx


async def echo_one(ws, msg):
    await ws.send(msg)
    got = await ws.recv()
    if type(got) is not type(msg) or \
            hashlib.sha256(got if isinstance(got, bytes) else got.encode())\
            .digest() != hashlib.sha256(
                msg if isinstance(msg, bytes) else msg.encode()).digest():
        raise SystemExit("echo mismatch (%d bytes)" % len(msg))


async def echo(uri, ctx, name):
    msgs = ["hello over wss", "é" * 1000, b"\x00\x01binary\xff",
            os.urandom(70000), os.urandom(1 << 20), os.urandom(16 << 20),
            "t" * (16 << 20) ]
    async with websockets.connect(uri, ssl=ctx, server_hostname=name,
                                  max_size=None, open_timeout=10,
                                  ping_interval=None) as ws:
        for m in msgs:
            await echo_one(ws, m)
    print("echo ok %d" % len(msgs), flush=True)


async def hold(uri, ctx, name, n, flag):
    conns = []
    for _ in range(n):
        conns.append(await websockets.connect(uri, ssl=ctx,
                                              server_hostname=name,
                                              max_size=None,
                                              ping_interval=None))
    for i, ws in enumerate(conns):
        await echo_one(ws, "before %d" % i)
    print("open %d" % n, flush=True)
    for _ in range(600):
        if os.path.exists(flag):
            break
        await asyncio.sleep(0.05)
    else:
        raise SystemExit("flag file never appeared")
    for i, ws in enumerate(conns):
        await echo_one(ws, "after %d" % i)
        await echo_one(ws, os.urandom(300000))
    for ws in conns:
        await ws.close()
    print("hold ok %d" % n, flush=True)


def main():
    uri, cafile, name, mode = sys.argv[1:5]
    ctx = context(cafile, name)
    if mode == "echo":
        asyncio.run(echo(uri, ctx, name))
    else:
        asyncio.run(hold(uri, ctx, name, int(sys.argv[5]), sys.argv[6]))


if __name__ == "__main__":
    main()
