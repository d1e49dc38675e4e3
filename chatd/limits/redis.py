"""Abuse counters in Redis: the limits hold in total across every node sharing it."""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from chatd.broker.redis import REDIS_ERRORS
from chatd.limits import MemoryCounters

__all__ = ["RedisCounters"]

log = logging.getLogger("chatd.limits")

# INCR, then set the window on the first event (or on a key left without one), in one step.
_HIT: Final = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""
# DECR only a key that exists and is above zero (never leaves a key without its window).
_FORGIVE: Final = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return n
"""


class RedisCounters:
    """Fixed-window counters under ``prefix`` on a client the node shares (the broker's).

    While Redis is unreachable, each node counts in its own memory (the limits then hold per
    node, not in total) rather than refusing or letting everything through.
    """

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = prefix + "lim:"
        self._hit = client.register_script(_HIT)
        self._forgive = client.register_script(_FORGIVE)
        self._local = MemoryCounters()
        self._warned = 0.0

    def hit_now(self, key: str, limit: int, window_ms: int) -> int | None:
        return None

    async def hit(self, key: str, limit: int, window_ms: int) -> int:
        try:
            n, ttl = await self._hit(keys=[self._prefix + key], args=[window_ms])
        except REDIS_ERRORS as exc:
            self._degraded(exc)
            return self._local.hit_now(key, limit, window_ms)
        return 0 if int(n) <= limit else max(1, int(ttl))

    async def forgive(self, key: str) -> None:
        self._local.forgive_now(key)
        try:
            await self._forgive(keys=[self._prefix + key])
        except REDIS_ERRORS as exc:
            self._degraded(exc)

    async def reset(self, key: str) -> None:
        self._local.reset_now(key)
        try:
            await self._client.delete(self._prefix + key)
        except REDIS_ERRORS as exc:
            self._degraded(exc)

    def _degraded(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned > 10:
            self._warned = now
            log.warning("limits counted on this node only: Redis unreachable (%s)",
                        type(exc).__name__)

    async def close(self) -> None:
        return None  # the client is the broker's: it closes it
