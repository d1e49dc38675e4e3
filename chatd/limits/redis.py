"""Abuse counters in Redis: the limits hold in total across every node sharing it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Final

from chatd.broker.redis import REDIS_ERRORS
from chatd.limits import MemoryCounters

__all__ = ["RedisCounters"]

log = logging.getLogger("chatd.limits")

# INCRBY, then set the window on the first event (or on a key left without one), in one step.
_HIT: Final = """
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
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


#: A lease is this share of a key's limit (at least one event): a per-user limit of 120
#: messages a minute costs a round trip every 7 messages, the bench's 1,000,000 almost none.
LEASE_SHARE: Final = 16


class _Lease:
    __slots__ = ("left", "until")

    def __init__(self, left: int, until: float) -> None:
        self.left = left
        self.until = until  # time.monotonic() when the Redis window ends


class RedisCounters:
    """Fixed-window counters under ``prefix`` on a client the node shares (the broker's).

    :meth:`take` counts a lease of several events at once and spends it locally
    (:meth:`hit_now`): one round trip per lease, not per message, and never more than
    ``limit`` in total, since every lease is counted in Redis before it is spent. The cost:
    a user on two nodes may be refused while the other node still holds a lease.

    While Redis is unreachable, each node counts in its own memory (the limits then hold per
    node, not in total) rather than refusing or letting everything through.
    """

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = prefix + "lim:"
        self._hit = client.register_script(_HIT)
        self._forgive = client.register_script(_FORGIVE)
        self._local = MemoryCounters()
        self._leases: dict[str, _Lease] = {}
        self._taking: dict[str, asyncio.Future[None]] = {}
        self._warned = 0.0

    def hit_now(self, key: str, limit: int, window_ms: int) -> int | None:
        lease = self._leases.get(key)
        if lease is None or lease.left <= 0 or lease.until <= time.monotonic():
            return None
        lease.left -= 1
        return 0

    async def take(self, key: str, limit: int, window_ms: int) -> int:
        # One lease in flight per key: concurrent requests of one user wait for it and
        # spend it, instead of each taking (and wasting) a lease of its own.
        while (taking := self._taking.get(key)) is not None:
            await asyncio.shield(taking)
            wait = self.hit_now(key, limit, window_ms)
            if wait is not None:
                return wait
        done = self._taking[key] = asyncio.get_running_loop().create_future()
        try:
            return await self._take(key, limit, window_ms)
        finally:
            del self._taking[key]
            done.set_result(None)

    async def _take(self, key: str, limit: int, window_ms: int) -> int:
        size = max(1, limit // LEASE_SHARE)
        try:
            n, ttl = await self._hit(keys=[self._prefix + key], args=[window_ms, size])
        except REDIS_ERRORS as exc:
            self._degraded(exc)
            return self._local.hit_now(key, limit, window_ms)
        granted = min(size, limit - (int(n) - size))  # the part of the lease within the limit
        if granted <= 0:
            return max(1, int(ttl))
        if granted > 1:
            if len(self._leases) >= self._local.max_keys:
                self._drop_spent_leases()
            self._leases[key] = _Lease(granted - 1, time.monotonic() + int(ttl) / 1000)
        return 0

    def _drop_spent_leases(self) -> None:
        now = time.monotonic()
        self._leases = {k: v for k, v in self._leases.items() if v.left > 0 and v.until > now}
        while len(self._leases) >= self._local.max_keys:
            self._leases.pop(next(iter(self._leases)))

    async def hit(self, key: str, limit: int, window_ms: int) -> int:
        try:
            n, ttl = await self._hit(keys=[self._prefix + key], args=[window_ms, 1])
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
        self._leases.pop(key, None)
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
