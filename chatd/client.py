"""A small asyncio client of the chatd protocol, for tests, the bench and app developers.

    async with await Client.connect("ws://127.0.0.1:8765/ws") as c:
        reply = await c.call("interests")
        event = await c.next_event("msg")

An ``unavailable`` reply (the store or the broker failing for a moment) is retried by
:meth:`Client.request` and :meth:`Client.call`: the same request with a new ``rid`` after the
reply's ``retry_after`` ms (at most 5 s; exponential back-off when it is missing), up to 5
attempts within 30 s in all; then the last reply is returned (or raised) as any other. A
``msg.send`` without a ``cid`` is given a random one before its first attempt, so a retry of a
send that was stored after all returns the first result instead of storing it twice. Other
error codes are never retried. Set ``retry_attempts = 1`` on a client to see every reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import secrets
from typing import Any, Literal

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

__all__ = ["Client", "ClientError"]


class ClientError(Exception):
    """An ``err`` reply: ``code``, ``msg`` and the whole reply map."""

    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.code = str(reply.get("code"))
        super().__init__(f"{self.code}: {reply.get('msg')}")


class Client:
    #: Attempts of one request while the server answers ``unavailable`` (1: no retry).
    retry_attempts: int = 5
    #: Seconds from the first attempt after which no further attempt is started.
    retry_total: float = 30.0
    #: Longest wait between attempts, in seconds, whatever ``retry_after`` says.
    retry_delay_cap: float = 5.0
    #: First back-off, in seconds, when an ``unavailable`` reply has no ``retry_after``.
    retry_backoff: float = 0.1

    def __init__(self, ws: ClientConnection, codec: Literal["msgpack", "json"]) -> None:
        self.ws = ws
        self.codec = codec
        self._rids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.replies_without_rid: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())
        self.user: dict[str, Any] | None = None
        self.token: str | None = None

    @classmethod
    async def connect(cls, url: str, codec: Literal["msgpack", "json"] = "msgpack",
                      **kwargs: Any) -> Client:
        ws = await connect(url, subprotocols=[Subprotocol(f"chatd.v1.{codec}")],
                           compression=None, **kwargs)
        return cls(ws, codec)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    def encode(self, obj: dict[str, Any]) -> bytes | str:
        if self.codec == "json":
            return json.dumps(obj, ensure_ascii=False)
        data: bytes = msgpack.packb(obj, use_bin_type=True)
        return data

    def decode(self, frame: bytes | str) -> dict[str, Any]:
        obj = json.loads(frame) if isinstance(frame, str) else msgpack.unpackb(frame, raw=False)
        assert isinstance(obj, dict)
        return obj

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                obj = self.decode(frame)
                rid = obj.get("rid")
                if obj.get("t") in ("ok", "err"):
                    fut = self._pending.pop(rid, None) if isinstance(rid, int) else None
                    if fut is not None and not fut.done():
                        fut.set_result(obj)
                    else:
                        await self.replies_without_rid.put(obj)
                else:
                    await self.events.put(obj)
        except ConnectionClosed:
            pass
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))

    async def request(self, op: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Send one request and return its reply map (``ok`` or ``err``).

        ``timeout`` is per attempt; ``unavailable`` replies are retried (see the module doc).
        """
        if op == "msg.send" and "cid" not in fields:
            fields["cid"] = secrets.token_hex(12)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_total
        attempt = 1
        while True:
            reply = await self._request_once(op, timeout, fields)
            if reply.get("t") != "err" or reply.get("code") != "unavailable":
                return reply
            if attempt >= self.retry_attempts:
                return reply
            delay = self._retry_delay(reply, attempt)
            if loop.time() + delay >= deadline:
                return reply
            await asyncio.sleep(delay)
            attempt += 1

    def _retry_delay(self, reply: dict[str, Any], attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` after an ``unavailable`` reply."""
        after = reply.get("retry_after")
        if isinstance(after, int | float) and not isinstance(after, bool) and after >= 0:
            return min(float(after) / 1000.0, self.retry_delay_cap)
        # No hint from the server: exponential back-off with jitter (so that the clients of
        # one failing node do not all come back at the same instant).
        base = min(self.retry_backoff * 2.0 ** (attempt - 1), self.retry_delay_cap)
        return base * random.uniform(0.5, 1.0)

    async def _request_once(self, op: str, timeout: float,
                            fields: dict[str, Any]) -> dict[str, Any]:
        rid = next(self._rids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self.ws.send(self.encode({"t": op, "rid": rid, **fields}))
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(rid, None)

    async def call(self, op: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Like :meth:`request` (retries included), but an ``err`` reply raises
        :class:`ClientError`."""
        reply = await self.request(op, timeout, **fields)
        if reply.get("t") == "err":
            raise ClientError(reply)
        return reply

    async def send_raw(self, frame: bytes | str) -> None:
        await self.ws.send(frame)

    async def next_event(self, t: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """The next pushed event (of type ``t`` when given; others before it are dropped)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if t is None or event.get("t") == t:
                    return event

    # --- account helpers ---------------------------------------------------------------

    async def register(self, phone: str, password: str = "correct horse 1",
                       birthdate: str = "1995-05-05", gender: str = "female",
                       interests: list[str] | None = None, nickname: str = "mask") -> str:
        """Register with the development SMS provider's code; returns the token."""
        sent = await self.call("sms.send", phone=phone, purpose="register")
        reply = await self.call("register", phone=phone, code=sent["dev_code"],
                                password=password, birthdate=birthdate, gender=gender,
                                interests=interests or ["music.rock"], nickname=nickname)
        self.user, self.token = reply["user"], reply["token"]
        return str(reply["token"])

    async def login(self, phone: str, password: str) -> str:
        reply = await self.call("login", phone=phone, password=password)
        self.user, self.token = reply["user"], reply["token"]
        return str(reply["token"])

    async def auth(self, token: str) -> dict[str, Any]:
        reply = await self.call("auth", token=token)
        self.user, self.token = reply["user"], token
        return reply
