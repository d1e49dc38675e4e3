"""The match queue in Redis, shared by every node.

- Waiting users: one hash ``{prefix}{mq}`` (user id -> JSON seeker and the node holding them).
- One matcher at a time: the node that holds the lease ``{prefix}{mq}:leader`` (SET NX PX,
  extended by its holder on every tick) pairs the whole queue with the same policy as a
  single node. If it dies, another node takes the lease when it expires.
- A round's pairs are claimed by one Lua script call (per ``CLAIM_CHUNK`` pairs) that removes
  both users of each pair only if both are still waiting AND the caller still holds the
  lease: no user is matched twice, even across a handover.
- The matcher keeps the seekers it decoded: an entry whose JSON did not change since the
  last snapshot is not decoded again (most of a big queue, tick after tick).
- Every node marks itself alive (``{prefix}{mq}:node:<id>``, short TTL) on each tick; the
  matcher drops entries of nodes that stopped, so users of a crashed node do not linger.
- Every key carries the hash tag ``{mq}``: on a Redis Cluster the claim script (queue and
  lease) and the MGET of the liveness keys touch one slot, as a cluster requires. The same
  names on one Redis (nothing in them outlives a restart of the queue).
Times are wall-clock seconds here: ``since`` must mean the same on every host.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final

from chatd.broker import BrokerUnavailable
from chatd.broker.redis import REDIS_ERRORS
from chatd.matching.policy import Prefs, Seeker, UserId

__all__ = ["CLAIM_CHUNK", "RedisMatchQueue"]

# ARGV: the lease holder's id, then a, b of each pair. One 0/1 per pair (all 0 without the
# lease). HEXISTS of each side, so a user in two pairs (never from one round) is taken once.
_CLAIM: Final = """
local out = {}
local lead = redis.call('GET', KEYS[2]) == ARGV[1]
for i = 2, #ARGV, 2 do
  local a, b = ARGV[i], ARGV[i + 1]
  if lead and a ~= b and redis.call('HEXISTS', KEYS[1], a) == 1
      and redis.call('HEXISTS', KEYS[1], b) == 1 then
    redis.call('HDEL', KEYS[1], a, b)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""
# Pairs per claim call: Redis runs nothing else while a script runs (~1 ms per 1,000 pairs).
CLAIM_CHUNK: Final = 1000
_LEAD: Final = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""


class RedisMatchQueue:
    def __init__(self, client: Any, node_id: str, prefix: str = "chatd:",
                 lease_ms: int = 3000, alive_ms: int = 5000) -> None:
        self._r = client  # the node's shared Redis client (its owner closes it)
        self.node_id = node_id
        self._queue = f"{prefix}{{mq}}"
        self._leader = f"{prefix}{{mq}}:leader"
        self._alive_prefix = f"{prefix}{{mq}}:node:"
        self.lease_ms = lease_ms
        self.alive_ms = alive_ms
        self._claim = self._r.register_script(_CLAIM)
        self._lead = self._r.register_script(_LEAD)
        self._decoded: dict[str, tuple[Any, Seeker, str]] = {}  # user -> (raw, seeker, node)

    def now(self) -> float:
        return time.time()

    # The request path (match.start, match.cancel): Redis down is BrokerUnavailable, which
    # the client sees as the retryable ``unavailable``.

    async def get(self, user_id: str) -> Seeker | None:
        with _reachable():
            raw = await self._r.hget(self._queue, user_id)
        return _decode(raw)[0] if raw else None

    async def put(self, seeker: Seeker) -> None:
        with _reachable():
            await self._r.hset(self._queue, seeker.user_id, _encode(seeker, self.node_id))

    async def remove(self, user_id: str) -> None:
        with _reachable():
            await self._r.hdel(self._queue, user_id)

    async def lead(self) -> bool:
        """Mark this node alive; True when it holds (or just took) the matcher lease."""
        await self._r.set(self._alive_prefix + self.node_id, "1", px=self.alive_ms)
        return bool(await self._lead(keys=[self._leader], args=[self.node_id, self.lease_ms]) == 1)

    async def snapshot(self) -> list[Seeker]:
        entries = await self._r.hgetall(self._queue)
        cache, self._decoded = self._decoded, {}
        decoded = []
        for key, raw in entries.items():
            user = key.decode() if isinstance(key, bytes) else str(key)
            hit = cache.get(user)
            entry = hit if hit is not None and hit[0] == raw else (raw, *_decode(raw))
            self._decoded[user] = entry
            decoded.append((user, (entry[1], entry[2])))
        nodes = sorted({node for _, (_, node) in decoded})
        alive = dict(zip(nodes, await self._r.mget([self._alive_prefix + n for n in nodes])
                         if nodes else [], strict=True))
        seekers, gone = [], []
        for user, (seeker, node) in decoded:
            if alive.get(node):
                seekers.append(seeker)
            else:
                gone.append(user)
        if gone:  # their node stopped marking itself alive: it crashed
            await self._r.hdel(self._queue, *gone)
        return seekers

    async def claim(self, pairs: Sequence[tuple[UserId, UserId]]) -> list[bool]:
        out: list[bool] = []
        for k in range(0, len(pairs), CLAIM_CHUNK):
            args = [self.node_id, *(u for pair in pairs[k:k + CLAIM_CHUNK] for u in pair)]
            result = await self._claim(keys=[self._queue, self._leader], args=args)
            out.extend(r == 1 for r in result)
        return out

    async def close(self) -> None:
        return None


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except REDIS_ERRORS as exc:
        raise BrokerUnavailable(f"match queue unreachable: {type(exc).__name__}") from exc


def _encode(s: Seeker, node_id: str) -> str:
    return json.dumps({
        "u": s.user_id, "t": sorted(s.tags), "g": s.gender, "a": s.age, "p": s.prefs.to_wire(),
        "s": s.since, "b": sorted(s.blocked), "k": s.nickname, "v": s.verified,
        "i": s.avatar, "n": node_id,
    })


def _decode(raw: Any) -> tuple[Seeker, str]:
    d = json.loads(raw)
    seeker = Seeker(user_id=UserId(d["u"]), tags=frozenset(d["t"]), gender=d["g"], age=d["a"],
                    prefs=Prefs.from_wire(d["p"] or None), since=float(d["s"]),
                    blocked=frozenset(UserId(u) for u in d["b"]), nickname=d.get("k", ""),
                    verified=bool(d.get("v", False)), avatar=d.get("i", ""))
    return seeker, str(d["n"])
