"""Presence in Redis: per user a sorted set of node ids scored by their expiry (ms).

A live node re-scores all its users every ``ttl / 3`` seconds in one pipeline; a crashed node
stops, and its entries fall out of ``online`` when their score passes. Entries are also
trimmed on every refresh, and each key expires when no node refreshes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from chatd.broker import BrokerUnavailable
from chatd.broker.redis import REDIS_ERRORS
from chatd.ids import UserId
from chatd.tasks import stop_task

__all__ = ["RedisPresence"]

log = logging.getLogger("chatd.presence")


class RedisPresence:
    def __init__(self, client: Any, node_id: str, prefix: str = "chatd:",
                 ttl: float = 15.0) -> None:
        """``client``: the node's shared Redis client (its owner closes it)."""
        self._r = client
        self.node_id = node_id
        self.prefix = prefix
        self.ttl = ttl
        self._users: set[UserId] = set()
        self._task: asyncio.Task[None] | None = None

    def _key(self, user_id: str) -> str:
        return f"{self.prefix}p:{user_id}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._refresh_forever(), name="chatd-presence")

    async def close(self) -> None:
        await stop_task(self._task)
        with contextlib.suppress(*REDIS_ERRORS):
            pipe = self._r.pipeline(transaction=False)
            for user_id in self._users:
                pipe.zrem(self._key(user_id), self.node_id)
            await pipe.execute()
        self._users.clear()

    async def add(self, user_id: UserId) -> None:
        self._users.add(user_id)
        with contextlib.suppress(*REDIS_ERRORS):  # the refresher retries
            await self._write([user_id])

    async def remove(self, user_id: UserId) -> None:
        self._users.discard(user_id)
        with contextlib.suppress(*REDIS_ERRORS):
            await self._r.zrem(self._key(user_id), self.node_id)

    async def online(self, users: Sequence[UserId]) -> dict[UserId, bool]:
        """Raises BrokerUnavailable (the retryable ``unavailable``) when Redis, or the shard
        of one of the users, cannot answer."""
        now = int(time.time() * 1000)
        pipe = self._r.pipeline(transaction=False)
        for user_id in users:
            pipe.zcount(self._key(user_id), now, "+inf")
        try:
            counts = await pipe.execute()
        except REDIS_ERRORS as exc:
            raise BrokerUnavailable(f"presence unreachable: {type(exc).__name__}") from exc
        return {u: bool(n) for u, n in zip(users, counts, strict=True)}

    async def _write(self, users: Sequence[UserId]) -> None:
        now = int(time.time() * 1000)
        expiry = now + int(self.ttl * 1000)
        pipe = self._r.pipeline(transaction=False)
        for user_id in users:
            key = self._key(user_id)
            pipe.zadd(key, {self.node_id: expiry})
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.pexpire(key, int(self.ttl * 2000))
        await pipe.execute()

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                users = list(self._users)
                for i in range(0, len(users), 1000):
                    await self._write(users[i:i + 1000])
            except REDIS_ERRORS as exc:
                log.warning("presence refresh failed (%s)", type(exc).__name__)
