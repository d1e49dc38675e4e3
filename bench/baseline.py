"""Bare servers on uvloop: the ceilings chatd is measured against in the same run.

    python -m bench.baseline echo|broadcast|relay|socketio|sink --port P

``echo`` sends every frame back. ``broadcast`` sends every frame to every open connection,
the sender included (its copy is its acknowledgement, like chatd's ``ok``), with one
``websockets.broadcast`` call. Both on ``websockets`` (asyncio API), no compression, like chatd.

``relay`` is chatd minus storage, filter and limits, on the same transport and codec (msgpack
maps, ``websockets``): it speaks the part of chatd's protocol the load generator's chatd mode
uses, so that mode drives it unchanged. ``auth`` takes any token as the user id,
``profile.update`` keeps the interests, ``match.start`` pairs two seekers with the same
interests in a direct conversation (``match.found`` to both); ``msg.send`` to a conversation
of the sender's writes ``msg`` (conv, id, from, body, ts) to the partner and then ``ok`` (id,
ts) to the sender, as chatd does.

``socketio`` is python-socketio 5 (``AsyncServer``, async_mode ``aiohttp``, default JSON
serializer) on aiohttp and uvloop: each client names its pair in the connect ``auth``
(``{"user": ..., "pair": ...}``) and enters that pair's room; a ``msg`` event
(``{"conv", "body"}``, with an ack id) is checked against the sender's room, emitted to the
room without the sender as a ``msg`` event (conv, id, from, body, ts), and acknowledged through
socket.io's ack (the handler's return value, ``{"id", "ts"}``). No storage either.

``sink`` is an upload endpoint on aiohttp and uvloop: ``POST /upload`` streams the body to a
temporary file and answers ``{"bytes": N}`` (receiving the bytes, nothing checked or decoded):
the ceiling of chatd's photo uploads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
import time
from collections import deque
from typing import Any

import msgpack
import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

_packb = msgpack.Packer(use_bin_type=True).pack
_unpackb = msgpack.unpackb
# What the relay answers to ``interests``: enough tags for the generator's per-process pairs.
TAGS = [{"id": f"tag{k:02d}"} for k in range(64)]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Relay:
    """Forward + ack between matched pairs (one instance per server: the routing table)."""

    def __init__(self) -> None:
        self.convs: dict[str, tuple[ServerConnection, ServerConnection]] = {}
        self.waiting: dict[tuple[str, ...], deque[tuple[ServerConnection, str]]] = {}
        self.pairs = itertools.count(1)
        prefix = f"{time.time_ns() & 0xFFFFFFFF:08x}"
        ids = itertools.count(1)
        self.new_id = lambda: f"{prefix}{next(ids):08x}"

    async def handler(self, ws: ServerConnection) -> None:
        user = ""
        interests: tuple[str, ...] = ()
        try:
            async for frame in ws:
                req: dict[str, Any] = _unpackb(frame)
                t = req.get("t")
                rid = req.get("rid")
                if t == "msg.send":  # the hot path
                    conv = req.get("conv")
                    pair = self.convs.get(conv)
                    if pair is None or ws not in pair:
                        await ws.send(_packb({"t": "err", "rid": rid, "code": "forbidden",
                                              "msg": "not a member of this conversation"}))
                        continue
                    peer = pair[1] if pair[0] is ws else pair[0]
                    mid, ts = self.new_id(), _now_ms()
                    with contextlib.suppress(ConnectionClosed):  # the peer is gone: not ours
                        await peer.send(_packb({"t": "msg", "conv": conv, "id": mid,
                                                "from": user, "body": req.get("body", ""),
                                                "ts": ts}))
                    await ws.send(_packb({"t": "ok", "rid": rid, "id": mid, "ts": ts}))
                elif t == "auth":
                    user = str(req.get("token", ""))
                    await ws.send(_packb({"t": "ok", "rid": rid,
                                          "user": {"id": user, "interests": list(interests)}}))
                elif t == "interests":
                    await ws.send(_packb({"t": "ok", "rid": rid, "tags": TAGS}))
                elif t == "profile.update":
                    interests = tuple(sorted(req.get("interests") or ()))
                    await ws.send(_packb({"t": "ok", "rid": rid}))
                elif t == "match.start":
                    await ws.send(_packb({"t": "ok", "rid": rid}))
                    await self._match(ws, user, interests)
                elif t == "match.cancel":
                    queue = self.waiting.get(interests)
                    if queue is not None:
                        self.waiting[interests] = deque(w for w in queue if w[0] is not ws)
                    if rid is not None:
                        await ws.send(_packb({"t": "ok", "rid": rid}))
                else:
                    await ws.send(_packb({"t": "err", "rid": rid, "code": "bad_request",
                                          "msg": f"the relay does not know {t!r}"}))
        except ConnectionClosed:
            pass
        finally:
            for conv in [c for c, pair in self.convs.items() if ws in pair]:
                del self.convs[conv]
            queue = self.waiting.get(interests)
            if queue is not None:
                self.waiting[interests] = deque(w for w in queue if w[0] is not ws)

    async def _match(self, ws: ServerConnection, user: str,
                     interests: tuple[str, ...]) -> None:
        queue = self.waiting.setdefault(interests, deque())
        if not queue:
            queue.append((ws, user))
            return
        peer, peer_user = queue.popleft()
        conv = f"d:{next(self.pairs)}"
        self.convs[conv] = (peer, ws)
        for conn, other in ((peer, user), (ws, peer_user)):
            with contextlib.suppress(ConnectionClosed):
                await conn.send(_packb({"t": "match.found", "conv": conv,
                                        "peer": {"id": other}, "shared": list(interests)}))


async def _websockets_main(kind: str, port: int, stop: asyncio.Event) -> None:
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

    handler = {"echo": echo, "broadcast": fan_out, "relay": Relay().handler}[kind]
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=1024,
                     ping_interval=None, max_size=1 << 20):
        await stop.wait()


async def _socketio_main(port: int, stop: asyncio.Event) -> None:
    import socketio
    from aiohttp import web

    sio = socketio.AsyncServer(async_mode="aiohttp")
    rooms: dict[str, str] = {}  # sid -> its pair's room
    users: dict[str, str] = {}
    prefix = f"{time.time_ns() & 0xFFFFFFFF:08x}"
    ids = itertools.count(1)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None) -> None:
        auth = auth or {}
        users[sid] = str(auth.get("user", sid))
        if auth.get("pair"):
            rooms[sid] = str(auth["pair"])
            await sio.enter_room(sid, rooms[sid])

    @sio.event
    async def disconnect(sid: str, reason: Any = None) -> None:
        rooms.pop(sid, None)
        users.pop(sid, None)

    @sio.on("msg")
    async def msg(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        room = rooms.get(sid)
        if room is None or data.get("conv") != room:
            return {"error": "forbidden"}
        mid, ts = f"{prefix}{next(ids):08x}", _now_ms()
        await sio.emit("msg", {"conv": room, "id": mid, "from": users[sid],
                               "body": data.get("body", ""), "ts": ts},
                       to=room, skip_sid=sid)
        return {"id": mid, "ts": ts}

    app = web.Application()
    sio.attach(app)
    await _serve_aiohttp(app, port, stop)


async def _serve_aiohttp(app: Any, port: int, stop: asyncio.Event) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def _sink_main(port: int, stop: asyncio.Event) -> None:
    import tempfile

    from aiohttp import web

    async def upload(request: web.Request) -> web.Response:
        size = 0
        with tempfile.TemporaryFile() as spool:
            async for chunk in request.content.iter_chunked(1 << 16):
                spool.write(chunk)
                size += len(chunk)
        return web.json_response({"bytes": size})

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/upload", upload)
    await _serve_aiohttp(app, port, stop)


async def main(kind: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if kind == "socketio":
        await _socketio_main(port, stop)
    elif kind == "sink":
        await _sink_main(port, stop)
    else:
        await _websockets_main(kind, port, stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["echo", "broadcast", "relay", "socketio", "sink"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(main(args.kind, args.port))
