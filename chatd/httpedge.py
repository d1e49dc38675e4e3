"""Plain HTTP/1.1 on the WebSocket port, for what a frame should not carry: uploads
(``POST /upload?kind=image|voice|avatar``) and files (``GET /media/<id>[/thumb]``).

``server.py`` hands a TCP connection here when its first request line is not a WebSocket
handshake or a page (see ``EdgeConnection`` there). :class:`HttpExchange` drives one
connection with h11 (sans-I/O HTTP/1.1: keep-alive, chunked bodies, ``Expect: 100-continue``):
a body streams to a temporary file and is cut off (413, connection closed) as soon as it
passes the size of its kind, so that no upload fills memory. :class:`MediaRoutes` answers the
requests from the media service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import parse_qs, urlsplit

import h11

from chatd.errors import ChatError, NotFound, Unauthorized
from chatd.ids import UserId
from chatd.services.media import MediaService
from chatd.store import StoreUnavailable
from chatd.store.media import MEDIA_KINDS

__all__ = ["HttpExchange", "MediaRoutes", "Reply", "clean_spool"]

log = logging.getLogger("chatd.http")

#: Request line and headers together (h11 refuses a longer head with 431).
MAX_HEAD: Final = 16 * 1024
#: A connection that sends nothing for this long (between requests or inside a body) closes.
IDLE_SECONDS: Final = 30.0
#: After a refusal mid-body, how long the rest is read and dropped before the close: closing
#: with unread input would reset the connection and lose the answer (nginx's lingering close).
LINGER_SECONDS: Final = 1.0
_STATUS: Final = {"bad_request": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404,
                  "method_not_allowed": 405, "too_large": 413, "filtered": 422,
                  "rate_limited": 429, "unavailable": 503}
_MEDIA_PATH: Final = re.compile(r"/media/([A-Za-z0-9_-]{8,64})(/thumb)?")
_RANGE: Final = re.compile(r"bytes=(\d*)-(\d*)")


def clean_spool(spool_dir: Path, older_than: float = 3600.0) -> None:
    """Remove spooled bodies a crashed process left (workers share the directory: only old
    ones, never an upload in progress)."""
    if not spool_dir.is_dir():
        return
    cutoff = time.time() - older_than
    for leftover in spool_dir.glob("up-*"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False


def json_reply(status: int, body: dict[str, Any], *, close: bool = False) -> Reply:
    return Reply(status, json.dumps(body, ensure_ascii=False).encode(),
                 [("Content-Type", "application/json"), ("Cache-Control", "no-store")], close)


def error_reply(exc: ChatError, *, close: bool = False) -> Reply:
    status = 415 if exc.details.get("reason") == "unsupported" else _STATUS.get(exc.code, 500)
    reply = json_reply(status, {"error": exc.code, "message": exc.msg, **exc.details},
                       close=close)
    if status == 401:
        reply.headers.append(("WWW-Authenticate", 'Bearer realm="chatd"'))
    elif status == 405:
        reply.headers.append(("Allow", exc.details["allow"]))
    return reply


@dataclass(frozen=True)
class Incoming:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value

    def param(self, name: str) -> str:
        """The first value of a query parameter, "" when absent."""
        return (self.query.get(name) or [""])[0]


class MediaRoutes:
    """What each request gets: the media service's answers in HTTP terms."""

    def __init__(self, media: MediaService, spool_dir: Path,
                 pages: Callable[[str], Reply] | None = None,
                 on_upload: Callable[[str, int], None] | None = None) -> None:
        self.media = media
        self.on_upload = on_upload  # (kind, HTTP status) of each upload, for the metrics
        self.spool_dir = spool_dir
        # The other GETs of the port (/healthz, /metrics, /app/...): a browser sends them on
        # a kept-alive connection that began with a media request.
        self.pages = pages

    def body_limit(self, req: Incoming) -> int:
        """The largest body this request may have (0: none); raises to refuse it at once."""
        if req.path == "/upload":
            if req.method != "POST":
                raise _MethodNotAllowed("POST")
            return self.media.max_bytes(req.param("kind"))
        if req.method not in ("GET", "HEAD"):
            raise _MethodNotAllowed("GET, HEAD") if _MEDIA_PATH.fullmatch(req.path) \
                else NotFound("no such page")
        return 0

    async def answer(self, req: Incoming, body: Path | None) -> Reply:
        reply = await self._route(req, body)
        if req.path == "/upload" and self.on_upload is not None:
            kind = req.param("kind")
            self.on_upload(kind if kind in MEDIA_KINDS else "other", reply.status)
        return reply

    async def _route(self, req: Incoming, body: Path | None) -> Reply:
        try:
            if req.path == "/upload":
                assert body is not None
                user = await self._bearer(req)
                record = await self.media.upload(user, req.param("kind"), body)
                return json_reply(200, record.wire())
            if _MEDIA_PATH.fullmatch(req.path):
                return await self._serve(req)
            if self.pages is not None:
                return self.pages(req.path)
            raise NotFound("no such page")
        except ChatError as exc:
            return error_reply(exc)
        except StoreUnavailable:
            return json_reply(503, {"error": "unavailable", "message": "retry shortly"})

    async def _bearer(self, req: Incoming) -> UserId:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send Authorization: Bearer <session token>")
        return await self.media.user_of_token(token.strip())

    async def _serve(self, req: Incoming) -> Reply:
        match = _MEDIA_PATH.fullmatch(req.path)
        assert match is not None  # answer() routed it here
        media_id, thumb = match.group(1), match.group(2) is not None
        link = req.param("link")
        viewer = None if link else await self._bearer(req)
        wanted = _RANGE.fullmatch(req.headers.get("range", "").replace(" ", ""))
        start, end = 0, None
        if wanted and wanted.group(1):
            start = int(wanted.group(1))
            end = int(wanted.group(2)) + 1 if wanted.group(2) else None
        served = await self.media.fetch(viewer, media_id, thumb, start, end, link)
        total, data = served.total, served.data
        if wanted and not wanted.group(1) and wanted.group(2):  # the last N bytes
            tail = min(int(wanted.group(2)), total)
            start, data = total - tail, data[total - tail:]
        headers = [("Content-Type", served.content_type),
                   ("Cache-Control", "private, max-age=86400"),
                   ("Accept-Ranges", "bytes"), ("ETag", f'"{media_id}{"-t" if thumb else ""}"'),
                   ("X-Content-Type-Options", "nosniff"),
                   ("Content-Security-Policy", "default-src 'none'; sandbox")]
        if not wanted:
            return Reply(200, data, headers)
        if start >= total or not data:
            return Reply(416, b"", [("Content-Range", f"bytes */{total}")])
        headers.append(("Content-Range", f"bytes {start}-{start + len(data) - 1}/{total}"))
        return Reply(206, data, headers)


class _MethodNotAllowed(ChatError):
    code = "method_not_allowed"

    def __init__(self, allow: str) -> None:
        super().__init__(f"use {allow}", allow=allow)


class HttpExchange:
    """One HTTP/1.1 connection, fed by the transport's ``data_received``."""

    def __init__(self, transport: asyncio.Transport, routes: MediaRoutes,
                 on_done: Callable[[HttpExchange], None]) -> None:
        self.transport = transport
        self.routes = routes
        self._on_done = on_done
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._loop = asyncio.get_running_loop()
        self._req: Incoming | None = None
        self._spool: IO[bytes] | None = None
        self._limit = 0
        self._received = 0
        self._task: asyncio.Task[None] | None = None
        self._idle = self._loop.call_later(IDLE_SECONDS, self.close)
        self._lingering = False

    def feed(self, data: bytes) -> None:
        if self._lingering:
            return  # the rest of a refused body: dropped
        self._idle.cancel()
        self._idle = self._loop.call_later(IDLE_SECONDS, self.close)
        try:
            self._h11.receive_data(data)
        except RuntimeError:  # data after a response that closes the connection
            return
        self._pump()

    def eof(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._h11.receive_data(b"")
        self._pump()

    def lost(self) -> None:
        self._idle.cancel()
        if self._task is not None:
            self._task.cancel()
        self._drop_spool()
        self._on_done(self)

    def close(self) -> None:
        self.transport.close()

    def _pump(self) -> None:
        while self._task is None and not self._lingering and not self.transport.is_closing():
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._send(json_reply(exc.error_status_hint, {"error": "bad_request",
                                                              "message": "malformed HTTP"},
                                      close=True))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._begin(event)
            elif isinstance(event, h11.Data):
                self._received += len(event.data)
                if self._received > self._limit:
                    self._refuse_body()
                    return
                if self._spool is not None:
                    self._spool.write(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.transport.pause_reading()  # one request at a time
                self._idle.cancel()  # a request being answered is not idle (uploads queue)
                self._task = self._loop.create_task(self._answer())
            elif isinstance(event, h11.ConnectionClosed):
                self.close()
                return

    def _begin(self, event: h11.Request) -> None:
        target = urlsplit(event.target.decode("ascii", "replace"))
        self._req = req = Incoming(event.method.decode("ascii", "replace"), target.path,
                                   parse_qs(target.query),
                                   {k.decode().lower(): v.decode("latin-1")
                                    for k, v in event.headers})
        self._received = 0
        try:
            self._limit = self.routes.body_limit(req)
        except ChatError as exc:
            self._send(error_reply(exc, close=True))
            return
        declared = req.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._limit:
            self._refuse_body()  # before a byte of it is read
            return
        if self._limit:
            self.routes.spool_dir.mkdir(parents=True, exist_ok=True)
            self._spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in _drop_spool)
                dir=self.routes.spool_dir, prefix="up-", delete=False)
            if req.headers.get("expect", "").lower() == "100-continue":
                self._write(self._h11.send(h11.InformationalResponse(status_code=100,
                                                                     headers=[])))

    def _refuse_body(self) -> None:
        limit = self._limit
        self._drop_spool()
        self._send(json_reply(413, {"error": "too_large", "limit": limit,
                                    "message": f"the body is at most {limit} bytes"},
                              close=True))

    async def _answer(self) -> None:
        req, spool = self._req, self._spool
        assert req is not None
        try:
            if spool is not None:
                spool.close()
            reply = await self.routes.answer(req, Path(spool.name) if spool is not None
                                             else None)
        except Exception:
            log.exception("HTTP %s %s failed", req.method, req.path)
            reply = json_reply(500, {"error": "internal", "message": "internal error"},
                               close=True)
        finally:
            self._drop_spool()
        if req.method == "HEAD":  # the headers of the GET, without its body
            reply.headers = [h for h in reply.headers if h[0].lower() != "content-length"]
            reply.headers.append(("Content-Length", str(len(reply.body))))
            reply.body = b""
        self._task = None
        self._idle = self._loop.call_later(IDLE_SECONDS, self.close)
        self._send(reply)
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
            self.transport.resume_reading()
            self._pump()  # a pipelined request may be buffered already

    def _send(self, reply: Reply) -> None:
        headers = list(reply.headers)
        if not any(k.lower() == "content-length" for k, _ in headers):
            headers.append(("Content-Length", str(len(reply.body))))
        if reply.close:
            headers.append(("Connection", "close"))
        try:
            self._write(self._h11.send(h11.Response(status_code=reply.status, headers=headers)))
            if reply.body:
                self._write(self._h11.send(h11.Data(data=reply.body)))
            self._write(self._h11.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            self.close()
            return
        if reply.close or self._h11.our_state is h11.MUST_CLOSE:
            self._linger()

    def _linger(self) -> None:
        """Send the answer and the end of our side, drop what still comes, then close."""
        if self._h11.their_state in (h11.DONE, h11.CLOSED, h11.MUST_CLOSE) \
                or not self.transport.can_write_eof():
            self.close()
            return
        self._lingering = True
        self.transport.write_eof()
        self._idle.cancel()
        self._idle = self._loop.call_later(LINGER_SECONDS, self.close)

    def _write(self, data: bytes | None) -> None:
        if data:
            self.transport.write(data)

    def _drop_spool(self) -> None:
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()
            with contextlib.suppress(OSError):
                os.unlink(spool.name)
