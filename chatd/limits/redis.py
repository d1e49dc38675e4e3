"""Abuse counters in Redis: the limits hold in total across every node sharing it."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["RedisCounters"]

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
    """Fixed-window counters under ``prefix`` on a client the node shares (the broker's)."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = prefix + "lim:"
        self._hit = client.register_script(_HIT)
        self._forgive = client.register_script(_FORGIVE)

    def hit_now(self, key: str, limit: int, window_ms: int) -> int | None:
        return None

    async def hit(self, key: str, limit: int, window_ms: int) -> int:
        n, ttl = await self._hit(keys=[self._prefix + key], args=[window_ms])
        return 0 if int(n) <= limit else max(1, int(ttl))

    async def forgive(self, key: str) -> None:
        await self._forgive(keys=[self._prefix + key])

    async def reset(self, key: str) -> None:
        await self._client.delete(self._prefix + key)

    async def close(self) -> None:
        return None  # the client is the broker's: it closes it
