"""The single-node match queue around the pure :class:`~chatd.matching.MatchPolicy`.

Waiting users live in memory; a ticker asks the policy for pairs (and once more right after
each new arrival). A pair becomes a 1:1 conversation and both sides get ``match.found``.
The Redis-backed queue of the scale-out work replaces this class behind the same methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from chatd.config import Config
from chatd.errors import BadRequest, Forbidden
from chatd.matching import MatchConfig, MatchPolicy, Pair, Prefs, RecentPairs, Seeker
from chatd.matching import UserId as MatchUserId
from chatd.node import Node
from chatd.store import ConvId, Store, UserId

__all__ = ["MatchService"]

log = logging.getLogger("chatd.matching")


class MatchService:
    def __init__(self, config: Config, store: Store, node: Node,
                 clock: Callable[[], float] = time.monotonic, tick: float = 0.25) -> None:
        self.store = store
        self.node = node
        self.policy = MatchPolicy(MatchConfig(
            any_shared_after=config.match_any_shared_after,
            random_after=config.match_random_after,
            recent_pair_hours=config.match_recent_pair_hours))
        self.recent = RecentPairs(config.match_recent_pair_hours * 3600)
        self.waiting: dict[UserId, Seeker] = {}
        self._clock = clock
        self._tick = tick
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.matches = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chatd-matcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def start_waiting(self, user_id: UserId, prefs_raw: Any) -> None:
        try:
            prefs = Prefs.from_wire(prefs_raw) if prefs_raw is not None else Prefs()
        except ValueError as exc:
            raise BadRequest(str(exc), field="prefs") from None
        user = await self.store.get_user(user_id)
        if user is None:
            raise Forbidden("this account no longer exists")
        blocked = await self.store.blocked_by(user_id) | await self.store.blocks_of(user_id)
        previous = self.waiting.get(user_id)
        self.waiting[user_id] = Seeker(
            user_id=MatchUserId(user_id), tags=frozenset(user.interests), gender=user.gender,
            age=_age(user.birthdate), prefs=prefs,
            # Asking again keeps the place in the queue (and the widening earned so far).
            since=previous.since if previous else self._clock(),
            blocked=frozenset(MatchUserId(u) for u in blocked))
        self._wake.set()

    def cancel(self, user_id: UserId) -> None:
        """Idempotent: leave the queue if waiting."""
        self.waiting.pop(user_id, None)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick)
            self._wake.clear()
            try:
                await self.match_now()
            except Exception:
                log.exception("matching round failed")

    async def match_now(self) -> list[Pair]:
        if len(self.waiting) < 2:
            return []
        now = self._clock()
        self.recent.prune(now)
        pairs = self.policy.pair_all(list(self.waiting.values()), now,
                                     self.recent.predicate(now))
        for pair in pairs:
            a, b = UserId(pair.a), UserId(pair.b)
            self.waiting.pop(a, None)
            self.waiting.pop(b, None)
            self.recent.record(pair.a, pair.b, now)
            await self._create(a, b, pair)
        return pairs

    async def _create(self, a: UserId, b: UserId, pair: Pair) -> None:
        conv = ConvId("d:" + uuid.uuid4().hex)
        await self.store.create_direct(conv, a, b, int(time.time() * 1000))
        self.matches += 1
        ua, ub = await self.store.get_user(a), await self.store.get_user(b)
        for me, peer in ((a, ub), (b, ua)):
            await self.node.joined(me, conv)
            if peer is not None:
                await self.node.to_user(me, {
                    "t": "match.found", "conv": conv,
                    "peer": {"id": peer.id, "nickname": peer.nickname},
                    "shared": list(pair.shared), "level": pair.level})


def _age(birthdate: str) -> int | None:
    try:
        born = dt.date.fromisoformat(birthdate)
    except ValueError:
        return None
    today = dt.date.today()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
