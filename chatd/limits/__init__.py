"""Abuse counters shared by every node: one interface, a memory and a Redis implementation.

A counter counts events of one key in fixed windows: :meth:`Counters.hit` counts one event and
answers 0 while the count is within ``limit``, else the milliseconds until the window ends.
Counting happens first and atomically, so concurrent requests can never all pass a check made
before a slow step (the reserve-then-forgive pattern: hit, do the work, ``forgive`` on success).

- :class:`MemoryCounters`: one node alone; counts live in this process (lost on restart).
  :meth:`~MemoryCounters.hit_now` answers without an await, so the hot path stays cheap.
- ``chatd.limits.redis.RedisCounters``: several nodes; ``INCR`` + ``PEXPIRE`` in one Lua script,
  so the limit holds in total across nodes. Its :meth:`~Counters.take` leases a share of a
  key's limit to this node (a sixteenth of it), which ``hit_now`` then spends without a
  round trip; ``hit_now`` answers ``None`` when no lease is left (await ``take``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Counters", "MemoryCounters"]


class Counters(Protocol):
    def hit_now(self, key: str, limit: int, window_ms: int) -> int | None:
        """Like :meth:`take` without an await, or ``None`` when this backend cannot now."""

    async def take(self, key: str, limit: int, window_ms: int) -> int:
        """Like :meth:`hit`, for a limit the hot path checks with :meth:`hit_now`: the
        backend may reserve a share of ``limit`` for this node; the total still holds."""

    async def hit(self, key: str, limit: int, window_ms: int) -> int:
        """Count one event of ``key``: 0 within ``limit`` per window, else ms to wait."""

    async def forgive(self, key: str) -> None:
        """Take back one counted event (a reserved attempt that succeeded or was refused)."""

    async def reset(self, key: str) -> None:
        """Forget every event of ``key``."""

    async def close(self) -> None: ...


class MemoryCounters:
    """Fixed-window counters in this process, on a monotonic clock; at most ``max_keys`` keys
    (the oldest window is dropped first)."""

    def __init__(self, max_keys: int = 200_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self._clock = clock
        self._counts: dict[str, list[float]] = {}  # key -> [count, window end (s)]

    def hit_now(self, key: str, limit: int, window_ms: int) -> int:
        now = self._clock()
        entry = self._counts.get(key)
        if entry is None or entry[1] <= now:
            if entry is None and len(self._counts) >= self.max_keys:
                self._counts.pop(next(iter(self._counts)))
            self._counts[key] = [1, now + window_ms / 1000]
            return 0 if limit >= 1 else window_ms
        entry[0] += 1
        if entry[0] <= limit:
            return 0
        return max(1, int((entry[1] - now) * 1000))

    async def hit(self, key: str, limit: int, window_ms: int) -> int:
        return self.hit_now(key, limit, window_ms)

    async def take(self, key: str, limit: int, window_ms: int) -> int:
        return self.hit_now(key, limit, window_ms)

    def forgive_now(self, key: str) -> None:
        entry = self._counts.get(key)
        if entry is not None and entry[0] > 0:
            entry[0] -= 1

    async def forgive(self, key: str) -> None:
        self.forgive_now(key)

    def reset_now(self, key: str) -> None:
        self._counts.pop(key, None)

    async def reset(self, key: str) -> None:
        self.reset_now(key)

    async def close(self) -> None:
        return None
