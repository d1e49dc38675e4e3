"""Lean WebSocket clients for the load generator, on picows (Cython frame parser).

``chatd.client.Client`` (websockets, one reader task and queues per connection) costs several
times more CPU per frame; a generator built on it saturates its core before the server does.
Here every frame is one synchronous callback: replies resolve a callback or future by ``rid``,
events go to one handler, nothing is queued.

:class:`Conn` speaks chatd's msgpack maps; :class:`SioConn` the socket.io protocol (v5) on
Engine.IO v4 over a bare WebSocket (``/socket.io/?EIO=4&transport=websocket``, no polling),
JSON text frames: ``0{...}`` open, ``40{auth}`` connect, ``42<id>["event", data]`` an event
that asks for an ack, ``43<id>[...]`` the ack, ``42["event", data]`` a pushed event, and
``2``/``3`` ping/pong. The python-socketio client would cost the generator several times more.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgpack
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = ["Conn", "ReplyError", "SioConn", "connect", "sio_connect", "sio_url"]

Reply = dict[str, Any]
_packb = msgpack.Packer(use_bin_type=True).pack
_unpackb = msgpack.unpackb
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


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


class SioConn(Conn):
    """One socket.io client connection to the default namespace; ``on_event(conn, obj)`` gets
    each pushed event as its data map with ``"t"`` set to the event name. ``ready`` is done
    once the namespace connect is acknowledged (``sid`` set)."""

    def __init__(self, on_event: Callable[[Conn, Reply], None], auth: Reply | None) -> None:
        super().__init__(on_event)
        self.auth = auth
        self.sid = ""
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT:
            data = frame.get_payload_as_utf8_text()
            if data[:1] == "4":  # an Engine.IO message: one socket.io packet
                self._packet(data)
            elif data[:1] == "2":  # the server's ping (Engine.IO v4: the server pings)
                transport.send(WSMsgType.TEXT, "3" + data[1:])
            elif data[:1] == "0":  # open: answer with the namespace connect
                transport.send(WSMsgType.TEXT,
                               "40" + (_dumps(self.auth) if self.auth is not None else ""))
            elif data[:1] == "1":  # close
                transport.disconnect()
        elif kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def _packet(self, data: str) -> None:
        kind = data[1:2]
        if kind == "2":  # EVENT, "42[...]" (the server asks no acks here)
            args = _loads(data[data.index("[", 2):])
            obj = args[1] if len(args) > 1 and isinstance(args[1], dict) else {"args": args[1:]}
            obj["t"] = args[0]
            self.on_event(self, obj)
        elif kind == "3":  # ACK, "43<id>[...]"
            start = data.index("[", 2)
            cb = self.pending.pop(int(data[2:start]), None)
            if cb is not None:
                args = _loads(data[start:])
                cb(args[0] if args and isinstance(args[0], dict) else {"args": args})
        elif kind == "0":  # CONNECT acknowledged, "40{"sid": ...}"
            self.sid = str(_loads(data[2:]).get("sid", "")) if len(data) > 2 else ""
            if not self.ready.done():
                self.ready.set_result(None)
        elif kind == "4":  # CONNECT_ERROR
            if not self.ready.done():
                self.ready.set_exception(ConnectionRefusedError(data[2:]))
        elif kind == "1" and self.transport is not None:  # DISCONNECT by the server
            self.transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the socket.io connect"))
        super().on_ws_disconnected(transport)

    def emit(self, event: str, data: Any, on_ack: Callable[[Reply], None] | None = None) -> int:
        """Send ``42[<event>, <data>]``; with ``on_ack`` it carries an ack id and ``on_ack``
        gets the ack's first argument (a map; closed: ``{"t": "err", "code": "closed"}``)."""
        if self.transport is None or self.closed.done():
            raise ConnectionError("connection closed")
        if on_ack is None:
            self.transport.send(WSMsgType.TEXT, "42" + _dumps([event, data]))
            return 0
        self.rid += 1
        self.pending[self.rid] = on_ack
        self.transport.send(WSMsgType.TEXT, f"42{self.rid}" + _dumps([event, data]))
        return self.rid


def sio_url(url: str) -> str:
    """``ws://host:port[/...]`` as the socket.io endpoint, WebSocket transport only (a URL
    that already names ``EIO`` is kept as it is)."""
    parts = urlsplit(url)
    if "EIO=" in parts.query:
        return url
    return urlunsplit((parts.scheme, parts.netloc, "/socket.io/", "EIO=4&transport=websocket",
                       ""))


async def sio_connect(url: str, on_event: Callable[[Conn, Reply], None],
                      auth: Reply | None = None, timeout: float = 30.0) -> SioConn:
    """Open one socket.io connection (namespace ``/``, connect payload ``auth``)."""
    _, conn = await ws_connect(lambda: SioConn(on_event, auth), sio_url(url),
                               websocket_handshake_timeout=timeout)
    assert isinstance(conn, SioConn)
    try:
        await asyncio.wait_for(conn.ready, timeout)
    except BaseException:
        conn.close()
        raise
    return conn
