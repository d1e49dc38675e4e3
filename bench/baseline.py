"""Bare ``websockets`` servers on uvloop: the ceilings chatd is measured against in the same run.

    python -m bench.baseline echo|broadcast --port P

``echo`` sends every frame back. ``broadcast`` sends every frame to every open connection,
the sender included (its copy is its acknowledgement, like chatd's ``ok``), with one
``websockets.broadcast`` call. Same transport settings as chatd: no compression.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed


async def main(kind: str, port: int) -> None:
    members: set[ServerConnection] = set()

    async def echo(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                await ws.send(frame)

    async def fan_out(ws: ServerConnection) -> None:
        members.add(ws)
        try:
            async for frame in ws:
                broadcast(members, frame)
        except ConnectionClosed:
            pass
        finally:
            members.discard(ws)

    handler = echo if kind == "echo" else fan_out
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=1024,
                     ping_interval=None, max_size=1 << 20):
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["echo", "broadcast"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(main(args.kind, args.port))
