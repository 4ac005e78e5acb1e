#!/usr/bin/env python3
"""The floor of what any policy server does: a minimal Postfix policy server
in Python (asyncio, one process) counting requests per sender in a dict
with a fixed window. Benchmarks only.

usage: python_floor_policy.py PORT LIMIT [WINDOW_SECONDS]
"""
import asyncio
import sys
import time

PORT = int(sys.argv[1])
LIMIT = int(sys.argv[2])
WINDOW = int(sys.argv[3]) if len(sys.argv) > 3 else 3600
counts = {}


async def serve(reader, writer):
    attrs = {}
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            line = line.rstrip(b"\n")
            if line:
                name, _, value = line.partition(b"=")
                attrs[name] = value
                continue
            key = (attrs.get(b"sender", b""), int(time.time()) // WINDOW)
            n = counts.get(key, 0)
            if n >= LIMIT:
                writer.write(b"action=DEFER_IF_PERMIT rate limit\n\n")
            else:
                counts[key] = n + 1
                writer.write(b"action=DUNNO\n\n")
            attrs = {}
    except ConnectionError:
        pass
    writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", PORT, backlog=1024)
    async with server:
        await server.serve_forever()


asyncio.run(main())
