"""The match queue service around the pure :class:`~chatd.matching.MatchPolicy`.

Where waiting users live is a :class:`MatchQueue`: in memory for one node, or in Redis
(:mod:`chatd.matching.redis`) for several, where one node at a time holds the matcher lease.
The service asks the policy for pairs at once after each arrival (and on a ticker, for the
widening timers and the other nodes' arrivals), claims the round's pairs atomically from the
queue (nobody is matched twice), and turns them into 1:1 conversations; both sides get
``match.found``. A round costs a fixed number of store jobs and queue calls, whatever its
size: a burst of arrivals is paired in a few rounds, not one user at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from chatd.config import Config
from chatd.errors import BadRequest, Forbidden
from chatd.ids import ConvId, UserId
from chatd.matching import Arrivals, MatchConfig, MatchPolicy, Pair, Prefs, Seeker
from chatd.node import Node
from chatd.services.accounts import age_on
from chatd.services.ops import Call, Field, op
from chatd.store import Store, User
from chatd.tasks import stop_task

__all__ = ["MatchQueue", "MatchService", "MemoryMatchQueue", "match_config"]

log = logging.getLogger("chatd.matching")

# Below this many waiting users the policy runs on the loop: a thread hop costs more.
_INLINE_POOL = 256


def match_config(config: Config) -> MatchConfig:
    """The policy's tunables from the node's settings (the ``match_*`` ones)."""
    return MatchConfig(any_shared_after=config.match_any_shared_after,
                       hold_pool=config.match_hold_pool,
                       random_after=config.match_random_after,
                       recent_pair_hours=config.match_recent_pair_hours)


class MatchQueue(Protocol):
    """Waiting users. ``now`` is the clock ``Seeker.since`` is measured on."""

    def now(self) -> float: ...
    async def get(self, user_id: UserId) -> Seeker | None: ...
    async def put(self, seeker: Seeker) -> None: ...
    async def remove(self, user_id: UserId) -> None: ...
    async def lead(self) -> bool: ...
    async def snapshot(self) -> list[Seeker]: ...

    async def claim(self, pairs: Sequence[tuple[UserId, UserId]]) -> list[bool]:
        """Take each pair out of the queue if both are still waiting (and, on several
        nodes, this node still holds the lease): one answer per pair, in order."""
        ...

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

    async def claim(self, pairs: Sequence[tuple[UserId, UserId]]) -> list[bool]:
        out = []
        for a, b in pairs:
            ok = a != b and a in self.waiting and b in self.waiting
            if ok:
                del self.waiting[a], self.waiting[b]
            out.append(ok)
        return out

    async def close(self) -> None:
        return None


class _UserLoader:
    """Coalesces the user lookups of concurrent ``match.start`` calls into one
    ``get_users`` store job per burst (group commit's idea): 10,000 arrivals cost a few
    jobs, not 10,000 round trips through the store's queue."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # Two parallel lists: no object per waiting caller besides its future.
        self._ids: list[UserId] = []
        self._futs: list[asyncio.Future[User | None]] = []
        self._task: asyncio.Task[None] | None = None

    def get(self, user_id: UserId) -> asyncio.Future[User | None]:
        """The user (``None`` if no such account), once the next batch is read."""
        fut: asyncio.Future[User | None] = asyncio.get_running_loop().create_future()
        self._ids.append(user_id)
        self._futs.append(fut)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush(), name="chatd-match-users")
        return fut

    async def _flush(self) -> None:
        # Lookups queued while a batch is in the store form the next batch.
        while self._ids:
            ids, futs = self._ids, self._futs
            self._ids, self._futs = [], []
            try:
                users = await self._store.get_users(list(dict.fromkeys(ids)))
            except Exception as exc:
                for fut in futs:
                    if not fut.done():  # else its caller gave up (connection closed)
                        fut.set_exception(exc)
            else:
                for user_id, fut in zip(ids, futs, strict=True):
                    if not fut.done():
                        fut.set_result(users.get(user_id))

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None
        for fut in self._futs:
            fut.cancel()
        self._ids, self._futs = [], []


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
        self._users = _UserLoader(store)
        # Arrivals of the users this node matched lately: a burst keeps the queue busy
        # (newcomers hold out for a strong pair) even once it is paired.
        self._arrivals = Arrivals(policy.any_shared_after)
        self.matches = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chatd-matcher")

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None
        await self._users.close()
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
        user = await self._users.get(user_id)
        if user is None:
            raise Forbidden("this account no longer exists")
        previous = await self.queue.get(user_id)
        # No block lists here: every round reads the blocks among the waiting users from
        # the store (made before or while waiting, on any node), which is all that counts.
        await self.queue.put(Seeker(
            user_id=user_id, tags=frozenset(user.interests), gender=user.gender,
            age=_age(user.birthdate), prefs=prefs, nickname=user.nickname,
            verified=user.verified, avatar=user.avatar,
            # Asking again keeps the place in the queue (and the widening earned so far).
            since=previous.since if previous else self.queue.now()))
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
        # A round at once after each arrival (``_wake``; arrivals during a round make the
        # next one start right after it), else every tick: widening timers, and on several
        # nodes the arrivals at the other nodes (only the lease holder pairs).
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
        # Two reads, one store round trip (SQLite runs them in one batch).
        recent_rows, blocks = await asyncio.gather(self.store.recent_pairs(ids, since),
                                                   self.store.blocks_among(ids))
        recent = {(str(a), str(b)) for a, b in recent_rows}
        waiting = _with_blocks(waiting, blocks)
        now = self.queue.now()
        arrivals = self._arrivals.count(waiting, now)

        def pair_all() -> list[Pair]:
            return self.policy.pair_all(
                waiting, now, lambda a, b: (a, b) in recent or (b, a) in recent,
                arrivals=arrivals)

        # The policy is pure and takes ~0.1 s for 10k arrivals: big pools go off the loop.
        pairs = await asyncio.to_thread(pair_all) if len(waiting) > _INLINE_POOL \
            else pair_all()
        if not pairs:
            return []
        # Blocks once more right before the conversations exist: a block made while the
        # policy ran drops the pair, and both stay waiting (nothing was claimed).
        blocks = await self.store.blocks_among([UserId(u) for p in pairs for u in (p.a, p.b)])
        pairs = [p for p in pairs if (p.a, p.b) not in blocks and (p.b, p.a) not in blocks]
        claimed = await self.queue.claim([(UserId(p.a), UserId(p.b)) for p in pairs])
        made = [p for p, ok in zip(pairs, claimed, strict=True) if ok]
        if made:
            seekers = {s.user_id: s for s in waiting}
            for p in made:
                self._arrivals.matched(seekers[p.a].since)
                self._arrivals.matched(seekers[p.b].since)
            await self._create(made, seekers)
        return made

    async def _create(self, pairs: list[Pair], seekers: dict[UserId, Seeker]) -> None:
        """One transaction for the round's conversations, then each user's ``joined`` and
        ``match.found`` (the peer's nickname is the one the queue holds: no store read)."""
        convs = [(ConvId("d:" + uuid.uuid4().hex), UserId(p.a), UserId(p.b)) for p in pairs]
        await self.store.create_directs(convs, int(time.time() * 1000))
        self.matches += len(pairs)
        tells = ((me, conv, seekers[peer], pair)
                 for (conv, a, b), pair in zip(convs, pairs, strict=True)
                 for me, peer in ((a, b), (b, a)))
        if self.node.broker.local_only:
            # One node: a publish is a function call that never waits; awaiting them one by
            # one costs no task and leaves no garbage to the next collection.
            for tell in tells:
                try:
                    await self._tell(*tell)
                except Exception:
                    log.exception("match.found not delivered")
            return
        # Several nodes: all at once, so the broker sends them as one pipeline instead of
        # one round trip each.
        for result in await asyncio.gather(*(self._tell(*tell) for tell in tells),
                                           return_exceptions=True):
            if isinstance(result, Exception):
                log.error("match.found not delivered: %s", type(result).__name__)

    async def _tell(self, me: UserId, conv: ConvId, peer: Seeker, pair: Pair) -> None:
        # Joined first: the user's node routes the conversation before the user can send.
        await self.node.joined(me, conv)
        await self.node.to_user(me, {
            "t": "match.found", "conv": conv,
            "peer": {"id": peer.user_id, "nickname": peer.nickname,
                     "avatar": peer.avatar or None},
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


