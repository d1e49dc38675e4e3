"""The sans-I/O connection state: frames in, validated requests or ready-made replies out.

It never awaits and never touches a socket (websockets' ``protocol.py`` lesson): the server feeds
it each frame with :meth:`Session.receive` and writes whatever bytes it is given back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chatd.errors import BadRequest, ChatError, RateLimited, Unauthorized
from chatd.ids import UserId
from chatd.protocol.codec import Codec, Frame
from chatd.protocol.envelope import OpTable, Request, parse_request

__all__ = ["Reject", "Session", "TokenBucket"]


class TokenBucket:
    """Requests per second with bursts; a monotonic clock so wall-clock jumps change nothing."""

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> int:
        """Take one token; 0 when allowed, else the milliseconds until one is free."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0
        return max(1, int((1.0 - self._tokens) / self.rate * 1000))


@dataclass(frozen=True, slots=True)
class Reject:
    """A frame that was answered without reaching a service: send ``reply`` as it is."""

    reply: Frame
    error: ChatError


class Session:
    """Per-connection protocol state: codec, op table, rate limit, who is authenticated.

    The one record of who is on the connection: the edge sets ``user_id`` and ``token_hash``
    when it applies a login effect and clears them when the session ends.
    """

    def __init__(self, codec: Codec, bucket: TokenBucket, ops: OpTable) -> None:
        self.codec = codec
        self.bucket = bucket
        self.ops = ops
        self.user_id: UserId | None = None
        self.token_hash: bytes | None = None

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    def receive(self, frame: Frame) -> Request | Reject:
        try:
            obj = self.codec.decode(frame)
            request = parse_request(obj, self.ops)
            retry_ms = self.bucket.take()
            if retry_ms:
                raise RateLimited(retry_ms, "slow down: request rate limit")
        except RateLimited as exc:
            exc.rid = request.rid
            return Reject(self.encode(exc.to_wire()), exc)
        except ChatError as exc:
            return Reject(self.encode(exc.to_wire()), exc)
        return request

    def authorize(self, request: Request) -> None:
        """Checked when the request runs, not when it arrives: a pipelined ``auth`` counts."""
        if self.ops[request.op].needs_user and self.user_id is None:
            raise Unauthorized()

    def ok(self, rid: int | None, result: dict[str, Any] | None = None) -> Frame:
        reply: dict[str, Any] = {"t": "ok"}
        if rid is not None:
            reply["rid"] = rid
        if result:
            reply.update(result)
        return self.encode(reply)

    def error(self, exc: ChatError, rid: int | None) -> Frame:
        return self.encode(exc.to_wire(rid))

    def encode(self, obj: dict[str, Any]) -> Frame:
        return self.codec.encode(obj)

    def bad_frame(self, msg: str) -> Frame:
        return self.encode(BadRequest(msg).to_wire())
