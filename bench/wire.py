"""A lean msgpack WebSocket client for the load generator, on picows (Cython frame parser).

``chatd.client.Client`` (websockets, one reader task and queues per connection) costs several
times more CPU per frame; a generator built on it saturates its core before the server does.
Here every frame is one synchronous callback: replies resolve a callback or future by ``rid``,
events go to one handler, nothing is queued.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import msgpack
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = ["Conn", "ReplyError", "connect"]

Reply = dict[str, Any]
_packb = msgpack.Packer(use_bin_type=True).pack
_unpackb = msgpack.unpackb


class ReplyError(Exception):
    """An ``err`` reply (or a closed connection: code ``closed``)."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.code = str(reply.get("code"))
        super().__init__(f"{self.code}: {reply.get('msg', '')}")


class Conn(WSListener):  # type: ignore[misc]
    """One connection. ``on_event(conn, obj)`` gets every pushed event (no ``rid``)."""

    def __init__(self, on_event: Callable[[Conn, Reply], None]) -> None:
        super().__init__()
        self.on_event = on_event
        self.transport: WSTransport | None = None
        self.pending: dict[int, Callable[[Reply], None]] = {}
        self.rid = 0
        self.closed = asyncio.get_running_loop().create_future()
        # Free slots for the bench's own bookkeeping (user, conversations, counters).
        self.user: str = ""
        self.token: str = ""
        self.direct: str | None = None
        self.group: str | None = None
        self.outstanding = 0
        self.index = 0

    # --- picows callbacks --------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        # Nagle plus delayed ACKs would add ~40 ms to small frames sent back to back.
        sock = transport.underlying_transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.BINARY or kind is WSMsgType.TEXT:
            obj = _unpackb(frame.get_payload_as_bytes())
            rid = obj.get("rid")
            if rid is not None and (cb := self.pending.pop(rid, None)) is not None:
                cb(obj)
            else:
                self.on_event(self, obj)
        elif kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        pending, self.pending = self.pending, {}
        for cb in pending.values():
            cb({"t": "err", "code": "closed", "msg": "connection closed"})
        if not self.closed.done():
            self.closed.set_result(None)

    # --- requests -------------------------------------------------------------------------

    def send(self, obj: Reply, on_reply: Callable[[Reply], None] | None = None) -> int:
        """Send one request map (a ``rid`` is added); ``on_reply`` gets the ok/err map."""
        self.rid += 1
        obj["rid"] = self.rid
        if on_reply is not None:
            self.pending[self.rid] = on_reply
        self.send_raw(_packb(obj))
        return self.rid

    def send_raw(self, data: bytes) -> None:
        if self.transport is None or self.closed.done():
            raise ConnectionError("connection closed")
        self.transport.send(WSMsgType.BINARY, data)

    async def call(self, op: str, timeout: float = 30.0, **fields: Any) -> Reply:
        """One request; returns the ``ok`` map, raises :class:`ReplyError` on ``err``."""
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()

        def done(reply: Reply) -> None:
            if not fut.done():
                fut.set_result(reply)

        self.send({"t": op, **fields}, done)
        reply = await asyncio.wait_for(fut, timeout)
        if reply.get("t") == "err":
            raise ReplyError(reply)
        return reply

    def close(self) -> None:
        if self.transport is not None and not self.closed.done():
            self.transport.send_close(WSCloseCode.OK)
            self.transport.disconnect()


async def connect(url: str, on_event: Callable[[Conn, Reply], None],
                  local_addr: tuple[str, int] | None = None, timeout: float = 30.0) -> Conn:
    """Open one connection (msgpack subprotocol); ``local_addr`` picks the source address."""
    extra: dict[str, Any] = {"local_addr": local_addr} if local_addr else {}
    _, conn = await ws_connect(
        lambda: Conn(on_event), url, websocket_handshake_timeout=timeout,
        extra_headers={"Sec-WebSocket-Protocol": "chatd.v1.msgpack"}, **extra)
    assert isinstance(conn, Conn)
    return conn
