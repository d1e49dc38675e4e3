"""The match queue service around the pure :class:`~chatd.matching.MatchPolicy`.

Where waiting users live is a :class:`MatchQueue`: in memory for one node, or in Redis
(:mod:`chatd.matching.redis`) for several, where one node at a time holds the matcher lease.
The service asks the policy for pairs on a ticker (and at once after each arrival), claims
each pair atomically from the queue (nobody is matched twice), and turns it into a 1:1
conversation; both sides get ``match.found``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from chatd.errors import BadRequest, Forbidden
from chatd.ids import ConvId, UserId
from chatd.matching import MatchConfig, MatchPolicy, Pair, Prefs, Seeker
from chatd.node import Node
from chatd.services.accounts import age_on
from chatd.services.ops import Call, Field, op
from chatd.store import Store
from chatd.tasks import stop_task

__all__ = ["MatchQueue", "MatchService", "MemoryMatchQueue"]

log = logging.getLogger("chatd.matching")


class MatchQueue(Protocol):
    """Waiting users. ``now`` is the clock ``Seeker.since`` is measured on."""

    def now(self) -> float: ...
    async def get(self, user_id: UserId) -> Seeker | None: ...
    async def put(self, seeker: Seeker) -> None: ...
    async def remove(self, user_id: UserId) -> None: ...
    async def lead(self) -> bool: ...
    async def snapshot(self) -> list[Seeker]: ...
    async def claim(self, a: UserId, b: UserId) -> bool: ...
    async def close(self) -> None: ...


class MemoryMatchQueue:
    """One node: a dict, on the monotonic clock (wall-clock jumps do not widen anyone)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.waiting: dict[UserId, Seeker] = {}
        self._clock = clock

    def now(self) -> float:
        return self._clock()

    async def get(self, user_id: UserId) -> Seeker | None:
        return self.waiting.get(user_id)

    async def put(self, seeker: Seeker) -> None:
        self.waiting[UserId(seeker.user_id)] = seeker

    async def remove(self, user_id: UserId) -> None:
        self.waiting.pop(user_id, None)

    async def lead(self) -> bool:
        return True

    async def snapshot(self) -> list[Seeker]:
        return list(self.waiting.values())

    async def claim(self, a: UserId, b: UserId) -> bool:
        if a not in self.waiting or b not in self.waiting:
            return False
        del self.waiting[a], self.waiting[b]
        return True

    async def close(self) -> None:
        return None


class MatchService:
    def __init__(self, policy: MatchConfig, store: Store, node: Node, queue: MatchQueue,
                 tick: float = 0.25) -> None:
        self.store = store
        self.node = node
        self.queue = queue
        self.policy = MatchPolicy(policy)
        self._recent_ms = int(policy.recent_pair_hours * 3_600_000)
        self._tick = tick
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._removals: set[UserId] = set()
        self.matches = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chatd-matcher")

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None
        await self.queue.close()

    @op("match.start", prefs=Field(dict, required=False))
    async def start_waiting(self, call: Call, prefs: Any = None) -> dict[str, Any]:
        await self.enqueue(call.user, prefs)
        return {"queued": True}

    @op("match.cancel")
    async def cancel_op(self, call: Call) -> None:
        await self.cancel(call.user)

    async def enqueue(self, user_id: UserId, prefs_raw: Any) -> None:
        try:
            prefs = Prefs.from_wire(prefs_raw)
        except ValueError as exc:
            raise BadRequest(str(exc), field="prefs") from None
        user = await self.store.get_user(user_id)
        if user is None:
            raise Forbidden("this account no longer exists")
        blocked = await self.store.blocked_by(user_id) | await self.store.blocks_of(user_id)
        previous = await self.queue.get(user_id)
        await self.queue.put(Seeker(
            user_id=user_id, tags=frozenset(user.interests), gender=user.gender,
            age=_age(user.birthdate), prefs=prefs,
            # Asking again keeps the place in the queue (and the widening earned so far).
            since=previous.since if previous else self.queue.now(),
            blocked=frozenset(u for u in blocked)))
        self._wake.set()

    async def cancel(self, user_id: UserId) -> None:
        """Idempotent: leave the queue if waiting. If the queue cannot be reached (Redis
        down), the removal is retried on every tick, so nobody is matched with a ghost."""
        try:
            await self.queue.remove(user_id)
        except Exception:
            self._removals.add(user_id)
            raise

    async def _retry_removals(self) -> None:
        for user_id in list(self._removals):
            await self.queue.remove(user_id)
            self._removals.discard(user_id)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick)
            self._wake.clear()
            try:
                await self._retry_removals()
                await self.match_now()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("matching round failed")

    async def match_now(self) -> list[Pair]:
        if not await self.queue.lead():
            return []
        waiting = await self.queue.snapshot()
        if len(waiting) < 2:
            return []
        since = int(time.time() * 1000) - self._recent_ms
        ids = [UserId(s.user_id) for s in waiting]
        recent = {(str(a), str(b)) for a, b in await self.store.recent_pairs(ids, since)}
        # Blocks made while waiting (on any node) are read from the store every round: a
        # seeker's own list dates from its match.start.
        waiting = _with_blocks(waiting, await self.store.blocks_among(ids))
        # The policy is pure and can take half a second for 10k arrivals: off the loop.
        pairs = await asyncio.to_thread(
            self.policy.pair_all, waiting, self.queue.now(),
            lambda a, b: (a, b) in recent or (b, a) in recent)
        if pairs:
            # And once more right before the conversations exist: a block made while the
            # policy ran drops the pair, and both stay waiting (nothing was claimed).
            blocks = await self.store.blocks_among(
                [UserId(u) for p in pairs for u in (p.a, p.b)])
            pairs = [p for p in pairs if (p.a, p.b) not in blocks and (p.b, p.a) not in blocks]
        made = [p for p in pairs if await self.queue.claim(UserId(p.a), UserId(p.b))]
        if made:
            await self._create(made)
        return made

    async def _create(self, pairs: list[Pair]) -> None:
        """One transaction for the round's conversations, one read for the nicknames."""
        convs = [(ConvId("d:" + uuid.uuid4().hex), UserId(p.a), UserId(p.b)) for p in pairs]
        await self.store.create_directs(convs, int(time.time() * 1000))
        self.matches += len(pairs)
        users = await self.store.get_users([u for _, a, b in convs for u in (a, b)])
        for (conv, a, b), pair in zip(convs, pairs, strict=True):
            for me, peer in ((a, users.get(b)), (b, users.get(a))):
                await self.node.joined(me, conv)
                if peer is not None:
                    await self.node.to_user(me, {
                        "t": "match.found", "conv": conv,
                        "peer": {"id": peer.id, "nickname": peer.nickname},
                        "shared": list(pair.shared), "level": pair.level})


def _with_blocks(waiting: list[Seeker],
                 blocks: set[tuple[UserId, UserId]]) -> list[Seeker]:
    """The seekers with the stored blocks among them added to their ``blocked`` sets."""
    if not blocks:
        return waiting
    extra: dict[str, set[UserId]] = {}
    for blocker, blocked in blocks:
        extra.setdefault(blocker, set()).add(blocked)
    return [dataclasses.replace(s, blocked=s.blocked | extra[s.user_id])
            if s.user_id in extra else s for s in waiting]


def _age(birthdate: str) -> int | None:
    try:
        return age_on(dt.date.fromisoformat(birthdate), dt.date.today())
    except ValueError:
        return None


