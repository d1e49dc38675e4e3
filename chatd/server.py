"""The network edge: the only module that imports ``websockets``.

Each complete message goes from the protocol's callback straight to the sans-I/O session;
one worker per connection runs requests in order (at most ``max_inflight`` queued, beyond that
``rate_limited``); replies and deliveries are appended to the connection's buffer and leave
in one socket write per loop pass, and a client whose outbound bytes pass the limit is closed
with 3008 instead of growing the server's memory (centrifuge's writer lesson).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import http
import itertools
import json
import logging
import secrets
import signal
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import DATA_OPCODES, Opcode
from websockets.frames import Frame as WsFrame
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response
from websockets.protocol import State

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension
    from websockets.utils import apply_mask
from websockets.typing import Origin, Subprotocol

from chatd.app import App
from chatd.broker import BrokerUnavailable
from chatd.config import Config
from chatd.errors import (
    CLOSE_IDLE,
    CLOSE_INTERNAL,
    CLOSE_SLOW,
    ChatError,
    Internal,
    RateLimited,
    Unavailable,
)
from chatd.httpapi import ApiServer
from chatd.httpedge import HttpExchange, MediaRoutes, Reply, clean_spool
from chatd.ids import UserId
from chatd.protocol import (
    CODECS,
    Frame,
    Reject,
    Request,
    Session,
    TokenBucket,
    codec_for_subprotocol,
)
from chatd.services.ops import Attach, Call, End, Outcome
from chatd.services.privacy import redact_frames
from chatd.store import StoreUnavailable

__all__ = ["ChatServer", "run"]

log = logging.getLogger("chatd.server")
_ids = itertools.count(1)
# Connection ids are unique across nodes too (a node skips the sender's connection by id).
_NODE_TAG = secrets.token_hex(3)
#: What ``unavailable`` asks a client to wait before it retries (same ``cid``).
UNAVAILABLE_RETRY_MS = 1000


class Flusher:
    """Writes each connection's frames of one loop pass with one ``transport.write``: a socket
    write per frame was a fifth of the event loop's time (py-spy, bench.ceiling)."""

    def __init__(self) -> None:
        self._dirty: list[Connection] = []

    def add(self, conn: Connection) -> None:
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self.flush)
        self._dirty.append(conn)

    def flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()


class Connection:
    """One client connection: the hub's ``Conn``, writing to the socket once per loop pass.

    No task and no queue per connection: a fan-out costs one buffer append per recipient,
    and the frames of one pass leave together (:class:`Flusher`). The transport's write
    buffer is the bounded outbound queue: a client that lets it pass ``limit`` bytes is
    closed with 3008 instead of growing the server's memory (centrifuge's writer lesson).
    """

    def __init__(self, ws: ServerConnection, session: Session, limit: int, metrics: Any,
                 address: str, flusher: Flusher) -> None:
        self.ws = ws
        self.session = session
        self.codec = codec = session.codec
        self.cid = f"{_NODE_TAG}-{next(_ids)}"
        self.address = address
        self._limit = limit
        self._send = ws.protocol.send_binary if codec.binary else ws.protocol.send_text
        # A compressed connection needs its own bytes; otherwise a fan-out shares them.
        self._shares_bytes = not ws.protocol.extensions
        self._opcode = Opcode.BINARY if codec.binary else Opcode.TEXT
        self.closing: asyncio.Task[None] | None = None
        #: Called once when the connection starts closing (the node's ``release``).
        self.on_closing: Callable[[Connection], None] | None = None
        self._metrics = metrics
        self._flusher = flusher
        self._out: list[bytes] = []
        self._out_bytes = 0

    # Who is on the connection is the session's to say; the hub reads it from here.
    @property
    def user_id(self) -> UserId | None:
        return self.session.user_id

    @property
    def token_hash(self) -> bytes | None:
        return self.session.token_hash

    def call(self) -> Call:
        s = self.session
        return Call(self.cid, self.address, s.user_id, s.token_hash)

    def enqueue(self, frame: Frame) -> bool:
        """Queue ``frame`` for this pass's write; False when the connection is closing (or
        just closed as slow) and the frame will never reach the client."""
        payload = frame.encode() if isinstance(frame, str) else frame
        if self._shares_bytes:  # no extension: the frame is the header and the payload
            if not self._room_for(len(payload) + 10):
                return False
            self._append(_server_frame(self._opcode, payload))
            return True
        if not self._room_for(len(payload)):
            return False
        try:
            self._send(payload)  # compressed: websockets' protocol frames it
        except Exception as exc:  # the protocol is closing under us
            log.debug("[%s] write failed: %s", self.cid, type(exc).__name__)
            return False
        for data in self.ws.protocol.data_to_send():
            if data:  # (an empty chunk means end of stream: only after a close, not here)
                self._append(data)
        return True

    def enqueue_shared(self, frame: Frame, wire: dict[str, bytes]) -> bool:
        """Like :meth:`enqueue`, for a fan-out: the WebSocket frame is serialised once per
        codec (``wire`` is the fan-out's cache) and the same bytes go to every recipient
        (centrifuge's prepared message; what ``websockets.broadcast`` does per connection)."""
        if not self._shares_bytes:
            return self.enqueue(frame)
        data = wire.get(self.codec.name)
        if data is None:
            payload = frame.encode() if isinstance(frame, str) else frame
            data = wire[self.codec.name] = _server_frame(self._opcode, payload)
        if not self._room_for(len(data)):
            return False
        self._append(data)
        return True

    def _append(self, data: bytes) -> None:
        if not self._out:
            self._flusher.add(self)
        self._out.append(data)
        self._out_bytes += len(data)

    def flush(self) -> None:
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        self._out, self._out_bytes = [], 0
        if not self.ws.transport.is_closing():
            self.ws.transport.write(data)

    def _room_for(self, size: int) -> bool:
        """Open, and the write buffer can take ``size`` more bytes (else: closed as slow)."""
        ws = self.ws
        if self.closing is not None or ws.protocol.state is not State.OPEN:
            return False
        queued = ws.transport.get_write_buffer_size() + self._out_bytes
        if queued + size > self._limit:
            log.warning("[%s] slow reader: %d bytes queued; closing", self.cid, queued)
            self._metrics.closed_slow.inc()
            self.close_soon(CLOSE_SLOW, "slow: outbound queue full")
            return False
        return True

    def closing_started(self) -> None:
        """The connection stopped being open (either side began the close, or TCP is gone):
        tell :attr:`on_closing` once, at once, not when the handler gets round to it."""
        hook, self.on_closing = self.on_closing, None
        if hook is not None:
            hook(self)

    def close_soon(self, code: int, reason: str) -> None:
        """Start the closing handshake. Frames are written as they come, so whatever was
        enqueued before (a reply, say) goes out first."""
        self.closing_started()
        if self.closing is None:
            self.flush()
            self.closing = asyncio.ensure_future(self.ws.close(code, reason))


def _server_frame(opcode: Opcode, payload: bytes) -> bytes:
    """One unfragmented, unmasked frame without extensions (RFC 6455 5.2): what websockets'
    ``Frame.serialize(mask=False)`` writes, in a quarter of its time."""
    size = len(payload)
    if size < 126:
        return bytes((0x80 | opcode, size)) + payload
    if size < 0x10000:
        return struct.pack("!BBH", 0x80 | opcode, 126, size) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, size) + payload


# Stages of an edge connection: the request line routes it; websockets parses the handshake
# request; chatd parses the frames after it (until the close, or a frame too big); then
# websockets gets everything (as it does for pages).
_ROUTE, _HANDSHAKE, _FRAMES, _PASS = "route", "handshake", "frames", "pass"
_PLAIN_DATA = frozenset((0x81, 0x82))  # FIN, no reserved bits, text or binary


class EdgeConnection(ServerConnection):
    """A TCP connection on the WebSocket port, routed by its first request line: WebSocket
    handshakes and pages (GET) go to ``websockets``; uploads and files (``POST /upload``,
    ``GET /media/...``) to the HTTP edge, since ``websockets`` parses nothing but GET and
    holds a whole response in memory. One port serves both, as the issue and clients expect.
    """

    routes: MediaRoutes  # set on the subclass a server makes (see ChatServer._listen)
    exchanges: set[HttpExchange]
    open_timeout: float

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head = b""
        self._http: HttpExchange | None = None
        self._stage = _ROUTE
        # Messages go to a callback, not through websockets' recv(): its assembler, queue
        # and a reader task woken per frame were a sixth of the event loop's time (py-spy).
        self._sink: Callable[[str | bytes | None], None] | None = None
        self._on_closing: Callable[[], None] | None = None
        self._rx: bytes | bytearray = b""  # received after the handshake, not parsed yet
        self._fragments: list[bytes] | None = None
        self._fragmented_text = False
        # websockets' own open_timeout would cut a long upload off: the handshake deadline
        # is kept here for WebSockets only.
        self._deadline = self.loop.call_later(self.open_timeout, self._handshake_expired)

    def set_sink(self, sink: Callable[[str | bytes | None], None],
                 on_closing: Callable[[], None]) -> None:
        """Deliver each complete message to ``sink``: ``str`` for text, ``bytes`` for
        binary, ``None`` for a text message that is not valid UTF-8. What arrived since the
        handshake is parsed now. ``on_closing`` is called when the client's close frame
        arrives or the connection is lost, whichever comes first."""
        self._sink, self._on_closing = sink, on_closing
        if self.protocol.state is not State.OPEN:
            self._closing()
        self._frames(b"")

    def process_event(self, event: Any) -> None:
        if self.request is None or not isinstance(event, WsFrame):
            super().process_event(event)  # the handshake request
            return
        if event.opcode is Opcode.PONG:
            self.acknowledge_pings(bytes(event.data))
            return
        if event.opcode not in DATA_OPCODES:
            if event.opcode is Opcode.CLOSE:
                self._closing()
            return  # ping and close: the protocol answered them already
        if event.opcode is not Opcode.CONT:
            text = event.opcode is Opcode.TEXT
            if event.fin:
                self._deliver(bytes(event.data), text)
                return
            self._fragmented_text = text  # the first of several fragments
        if self._fragments is None:
            self._fragments = []
        self._fragments.append(bytes(event.data))  # the protocol enforces max_size
        if event.fin:
            data, self._fragments = b"".join(self._fragments), None
            self._deliver(data, self._fragmented_text)

    def _deliver(self, data: bytes, text: bool) -> None:
        message: str | bytes | None = data
        if text:
            try:
                message = data.decode()
            except UnicodeDecodeError:
                message = None
        if self._sink is not None:  # (frames reach websockets only once it is set)
            self._sink(message)

    def _closing(self) -> None:
        hook, self._on_closing = self._on_closing, None
        if hook is not None:
            hook()

    def _handshake_expired(self) -> None:
        if self._http is None and self.protocol.state is State.CONNECTING:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        stage = self._stage
        if stage is _FRAMES:
            self._frames(data)
        elif self._http is not None:
            self._http.feed(data)
        elif stage is _HANDSHAKE:
            self._handshake(data)
        elif stage is _PASS:
            super().data_received(data)
        else:
            self._route(data)

    def _route(self, data: bytes) -> None:
        self._head += data
        line_end = self._head.find(b"\r\n")
        if line_end < 0 and len(self._head) < 8192:
            return  # the request line is not complete yet
        head, self._head = self._head, b""
        method, _, rest = head[:max(line_end, 0)].partition(b" ")
        if method == b"GET" and not rest.startswith(b"/media/"):
            self._stage = _HANDSHAKE
            self._handshake(head)
            return
        self._stage = _PASS
        self._deadline.cancel()
        self._http = HttpExchange(self.transport, self.routes, self.exchanges.discard)
        self.exchanges.add(self._http)
        self._http.feed(head)

    def _handshake(self, data: bytes) -> None:
        """websockets parses the request; what follows its blank line is frames, ours."""
        seen = self._head + data  # (the blank line may straddle two reads)
        end = seen.find(b"\r\n\r\n")
        if end < 0:
            self._head = seen[-3:]
            super().data_received(data)
            return
        cut = end + 4 - len(self._head)
        self._head = b""
        self._stage = _FRAMES
        super().data_received(data[:cut])
        self._rx = data[cut:]  # parsed once the handler sets the sink

    def _frames(self, data: bytes) -> None:
        """Parse frames: a complete unfragmented data message goes straight to the sink
        (websockets' generator-based parser cost ~6 µs a frame); every other frame (ping,
        pong, close, fragments, reserved bits, unmasked, bad opcodes) is handed to websockets
        whole, so its parser always starts at a frame boundary and answers as it always did."""
        buf: bytes | bytearray = data
        if self._rx:
            self._rx += data
            buf = self._rx
        if self._sink is None:  # the handler has not started yet
            self._rx = buf if isinstance(buf, bytearray) else bytearray(buf)
            return
        protocol, size, pos = self.protocol, len(buf), 0
        limit = protocol.max_message_size
        hand_over = False
        while size - pos >= 2:
            if protocol.state is not State.OPEN:
                hand_over = True  # closing: websockets discards the rest
                break
            head1, head2 = buf[pos], buf[pos + 1]
            length, header = head2 & 0x7F, 2
            if length >= 126:
                header = 4 if length == 126 else 10
                if size - pos < header:
                    break
                length = int.from_bytes(buf[pos + 2:pos + header])
            if limit is not None and length > limit:
                hand_over = True  # websockets closes with 1009
                break
            if head2 & 0x80:
                header += 4  # the mask
            start = pos + header
            end = start + length
            if end > size:
                break  # not complete yet
            if head1 in _PLAIN_DATA and head2 & 0x80 and protocol.current_size is None:
                self._deliver(apply_mask(buf[start:end], buf[start - 4:start]), head1 == 0x81)
            else:
                super().data_received(bytes(buf[pos:end]))
            pos = end
        rest = buf[pos:] if pos else buf
        if hand_over:
            self._stage, self._rx = _PASS, b""
            super().data_received(bytes(rest))
        elif isinstance(rest, bytearray) or not rest:
            self._rx = rest  # (a slice of a bytearray is a copy already)
        else:
            self._rx = bytearray(rest)

    def eof_received(self) -> None:
        if self._http is not None:
            self._http.eof()
            return
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.cancel()
        self._closing()
        if self._http is not None:
            self._http.lost()
        super().connection_lost(exc)


class ChatServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.app = App(config)
        # websockets logs whole data frames at DEBUG: bodies, codes, tokens. Never keep them.
        redact_frames(logging.getLogger("chatd.ws"))
        self._server: Server | None = None
        self.port = config.port
        #: The server HTTP API on its own listener (None when no key or secret is set).
        self.api = ApiServer(config, self.app) if config.api_enabled else None
        self._per_address: dict[str, int] = {}
        self._exchanges: set[HttpExchange] = set()
        self._flusher = Flusher()
        self._unavailable, self._unavailable_logged = 0, 0.0

    async def start(self) -> None:
        await self.app.start()
        try:
            await self._listen()
        except BaseException:
            # A port in use, say: undo what started (the store's thread, the purge task)
            # before the error leaves, or they outlive the event loop.
            await self._unlisten()
            await self.app.close()
            raise

    async def _listen(self) -> None:
        origins: list[Origin | None] | None = None
        if self.config.origins:
            # Browsers send Origin; native apps send none, and are allowed.
            origins = [Origin(o) for o in self.config.origins] + [None]
        spool = self.config.data_dir / "uploads"
        clean_spool(spool)
        edge = type("Edge", (EdgeConnection,), {
            "routes": MediaRoutes(self.app.media, spool, self._page_reply,
                                  lambda kind, status: self.app.metrics.uploads.labels(
                                      kind, str(status)).inc()),
            "exchanges": self._exchanges, "open_timeout": self.config.open_timeout})
        self._server = await serve(
            self._handle, self.config.host, self.config.port, create_connection=edge,
            subprotocols=[Subprotocol(s) for s in CODECS],
            select_subprotocol=_select_subprotocol,
            process_request=self._http,
            origins=origins,
            compression="deflate" if self.config.compression else None,
            max_size=self.config.max_frame_bytes,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_timeout,
            open_timeout=None,  # EdgeConnection keeps the handshake deadline
            logger=logging.getLogger("chatd.ws"),
            reuse_port=self.config.reuse_port or None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("chatd node %s listening on ws://%s:%d/ws", self.app.node_id,
                 self.config.host, self.port)
        if self.api is not None:
            await self.api.start()

    async def stop(self) -> None:
        """Graceful: /healthz turns 503 (new WebSockets too) for ``shutdown_grace`` seconds so
        a load balancer stops routing here, then no new connections, close with 1001, flush
        the store."""
        self.app.draining = True
        if self.config.shutdown_grace > 0:
            log.info("draining: /healthz answers 503 for %.1f s", self.config.shutdown_grace)
            await asyncio.sleep(self.config.shutdown_grace)
        await self._unlisten()
        await self.app.close()
        log.info("chatd node %s stopped", self.app.node_id)

    async def _unlisten(self) -> None:
        if self.api is not None:
            await self.api.stop()
        for exchange in list(self._exchanges):  # uploads and downloads in progress end
            exchange.close()
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()

    # --- plain HTTP on the same port -----------------------------------------------------

    def _http(self, ws: ServerConnection, request: HttpRequest) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            if self.app.draining:
                return _response(503, b'{"status":"draining"}', "application/json")
            address = client_address(ws, self.config.trusted_proxies)
            if self._per_address.get(address, 0) >= self.config.max_conns_per_address:
                self.app.metrics.errors.labels("too_many_connections").inc()
                return _response(429, b'{"status":"too many connections from this address"}',
                                 "application/json")
            return None
        return self._page(request.path)

    def _page(self, target: str) -> Response:
        """A plain GET of the port other than the WebSocket and media: health, metrics,
        the web pages."""
        path = target.split("?", 1)[0]
        if path == "/healthz":
            status, body = self.app.health()
            return _response(status, json.dumps(body).encode(), "application/json")
        if path == "/metrics":
            return _response(200, self.app.scrape(),
                             "text/plain; version=0.0.4; charset=utf-8")
        if self.config.serve_web_pages and target.startswith(("/app", "/mod")):
            return _static(path)
        return _response(404, b"not found\n", "text/plain")

    def _page_reply(self, target: str) -> Reply:
        page = self._page(target)
        return Reply(page.status_code, bytes(page.body), list(page.headers.raw_items()))

    # --- one WebSocket connection --------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        codec = codec_for_subprotocol(ws.subprotocol)
        address = client_address(ws, self.config.trusted_proxies)
        self._per_address[address] = self._per_address.get(address, 0) + 1
        session = Session(codec, TokenBucket(self.config.rate_per_second,
                                             self.config.rate_burst), self.app.ops)
        conn = Connection(ws, session, self.config.outbound_queue_bytes, self.app.metrics,
                          address, self._flusher)
        conn.on_closing = self.app.node.release
        inbox: asyncio.Queue[Request] = asyncio.Queue(self.config.max_inflight)
        self.app.metrics.connections.inc()
        log.debug("[%s] open (%s)", conn.cid, codec.name)
        worker = asyncio.create_task(self._work(conn, session, inbox), name=f"{conn.cid}-worker")
        try:
            await self._read(ws, conn, session, inbox)
        except Exception:
            log.exception("[%s] connection failed", conn.cid)
            conn.close_soon(CLOSE_INTERNAL, "internal error")
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            conn.close_soon(1000, "")
            with contextlib.suppress(asyncio.TimeoutError, ConnectionClosed):
                await asyncio.wait_for(asyncio.shield(conn.closing), 1.0)  # type: ignore[arg-type]
            try:
                await self.app.disconnected(conn)
            except Exception:
                # e.g. Redis down while leaving the match queue: the bookkeeping below must
                # still run, or the connection's slot would leak.
                log.exception("[%s] cleanup after disconnect failed", conn.cid)
            self.app.metrics.connections.dec()
            left = self._per_address[address] - 1
            if left:
                self._per_address[address] = left
            else:
                del self._per_address[address]
            log.debug("[%s] closed", conn.cid)

    async def _read(self, ws: ServerConnection, conn: Connection, session: Session,
                    inbox: asyncio.Queue[Request]) -> None:
        """Feed each message to the session, then the worker, until the connection is gone
        (in the protocol's callback: no task switch per frame)."""
        assert isinstance(ws, EdgeConnection)
        reader = _Reader(conn, session, inbox, self.app.metrics, self.config.idle_timeout)
        ws.set_sink(reader.received, conn.closing_started)
        try:
            await ws.wait_closed()
        finally:
            reader.timer.cancel()

    async def _work(self, conn: Connection, session: Session,
                    inbox: asyncio.Queue[Request]) -> None:
        while True:
            request = await inbox.get()
            if conn.closing is not None:
                return  # revoked, banned, logged out: nothing queued behind it runs
            self.app.metrics.count_request(request.op)
            end: End | None = None
            try:
                session.authorize(request)
                result = await self.app.handle(conn.call(), request)
                if isinstance(result, Outcome):
                    end = await self._apply(conn, result)
                    result = result.reply
                reply = session.ok(request.rid, result)
            except ChatError as exc:
                self.app.metrics.errors.labels(exc.code).inc()
                reply = session.error(exc, request.rid)
            except (StoreUnavailable, BrokerUnavailable) as exc:
                # Retryable: the store or the broker is failing for a moment (health says so).
                self._note_unavailable(request.op, exc)
                self.app.metrics.errors.labels(Unavailable.code).inc()
                reply = session.error(Unavailable(UNAVAILABLE_RETRY_MS), request.rid)
            except Exception:
                log.exception("[%s] %s failed", conn.cid, request.op)
                self.app.metrics.errors.labels("internal").inc()
                reply = session.error(Internal(), request.rid)
            conn.enqueue(reply)
            if end is not None:
                conn.close_soon(end.code, end.reason)
                return

    def _note_unavailable(self, op: str, exc: Exception) -> None:
        """One WARNING line per few seconds of an outage, not one per refused request."""
        self._unavailable += 1
        now = time.monotonic()
        if now - self._unavailable_logged >= 5.0:
            log.warning("%d requests refused as unavailable (last: %s: %s)", self._unavailable,
                        op, exc)
            self._unavailable, self._unavailable_logged = 0, now

    async def _apply(self, conn: Connection, outcome: Outcome) -> End | None:
        """Apply a session effect: the one place that changes who is on a connection."""
        effect, session = outcome.effect, conn.session
        if isinstance(effect, Attach):
            session.user_id, session.token_hash = effect.user_id, effect.token_hash
            await self.app.node.attach(conn, effect.user_id, dict(effect.convs),
                                       set(effect.blocked))
            if conn.on_closing is None:  # it began closing while it logged in
                self.app.node.release(conn)
            return None
        session.token_hash = None
        return effect


class _Reader:
    """What one connection does with each message it receives, and its idle timer: an object
    with slots, not closures (10,000 idle connections each hold one)."""

    __slots__ = ("conn", "idle", "inbox", "last", "loop", "metrics", "session", "timer")

    def __init__(self, conn: Connection, session: Session, inbox: asyncio.Queue[Request],
                 metrics: Any, idle: float) -> None:
        self.conn, self.session, self.inbox, self.metrics = conn, session, inbox, metrics
        self.loop = asyncio.get_running_loop()
        self.idle = idle
        self.last = self.loop.time()
        # One idle timer per connection, re-armed only when it fires: a wait_for per frame
        # cost a timer and a task wrapper for every message (~5 µs).
        self.timer = self.loop.call_later(idle, self.watch)

    def watch(self) -> None:
        quiet = self.loop.time() - self.last
        if quiet >= self.idle:
            self.conn.close_soon(CLOSE_IDLE, "idle timeout")
        else:
            self.timer = self.loop.call_later(self.idle - quiet, self.watch)

    def received(self, message: str | bytes | None) -> None:
        conn, session = self.conn, self.session
        if conn.closing is not None:
            return  # revoked, banned, timed out: nothing more is read
        self.last = self.loop.time()
        try:
            if message is None:
                conn.enqueue(session.bad_frame("text frame holds invalid UTF-8"))
                return
            result = session.receive(message)
            if isinstance(result, Reject):
                self.metrics.errors.labels(result.error.code).inc()
                conn.enqueue(result.reply)
            elif self.inbox.full():
                err = RateLimited(100, "too many requests in flight")
                self.metrics.errors.labels(err.code).inc()
                conn.enqueue(session.error(err, result.rid))
            else:
                self.inbox.put_nowait(result)
        except Exception:
            log.exception("[%s] connection failed", conn.cid)
            conn.close_soon(CLOSE_INTERNAL, "internal error")


def client_address(ws: ServerConnection, trusted_proxies: tuple[str, ...]) -> str:
    """The peer address, or the client a trusted reverse proxy names in X-Forwarded-For."""
    remote = ws.remote_address
    peer = str(remote[0]) if remote else ""
    request = ws.request
    if peer in trusted_proxies and request is not None:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1]
    return peer


def _select_subprotocol(ws: ServerConnection, offered: Any) -> Subprotocol | None:
    for proto in offered:
        if proto in CODECS:
            return Subprotocol(proto)
    return None  # no subprotocol: the client gets msgpack


_WEB_ROOT = Path(__file__).resolve().parent / "web"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
          ".json": "application/json", ".txt": "text/plain; charset=utf-8"}


def _static(path: str) -> Response:
    """A file of chatd/web/ (/app/ and /mod/ and what they load); nothing outside it."""
    if path in ("/app", "/mod"):
        return Response(301, "Moved Permanently",
                        Headers([("Location", path + "/"), ("Content-Length", "0")]), b"")
    relative = path.lstrip("/")
    if relative.endswith("/"):
        relative += "index.html"
    target = (_WEB_ROOT / relative).resolve()
    if not target.is_relative_to(_WEB_ROOT) or not target.is_file() \
            or target.suffix not in _TYPES:
        return _response(404, b"not found\n", "text/plain")
    response = _response(200, target.read_bytes(), _TYPES[target.suffix])
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "style-src 'self' 'unsafe-inline'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _response(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store")])
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


async def run(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    server = ChatServer(config)
    await server.start()
    # What start-up built (word lists, catalog, modules) lives as long as the process: out of
    # the collector's sight. And young collections rarer: in a burst of 10,000 match.start,
    # collections were half the loop's time (bench.matching: drain 2.5 s -> 1.7 s).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"chatd listening on ws://{config.host}:{server.port}/ws "
          f"(data in {config.data_dir}, store {config.store}, broker {config.broker})"
          + (f"; server API on http://{config.api_host}:{server.api.port}/api/"
             if server.api is not None else ""), flush=True)
    await stop.wait()
    log.info("signal received: draining")
    await server.stop()


