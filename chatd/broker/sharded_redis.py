"""The broker on a Redis Cluster: Redis 7 sharded pub/sub (``SSUBSCRIBE`` / ``SPUBLISH``).

Chosen by :func:`chatd.broker.redis.redis_broker` for a ``redis+cluster://`` URL; the plain
broker beside it (:mod:`chatd.broker.redis`) keeps ``PUBLISH`` / ``SUBSCRIBE`` on one Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import MovedError

from chatd.broker import BrokerUnavailable, Handler, Message, ReconnectHook
from chatd.broker.redis import REDIS_ERRORS, handle_message, redis_client
from chatd.config import parse_redis_cluster_url
from chatd.tasks import stop_task

__all__ = ["ShardedRedisBroker"]

log = logging.getLogger("chatd.broker")

#: (channel, payload, future, tries): one queued SPUBLISH.
_Pending = tuple[str, bytes, "asyncio.Future[None]", int]


@dataclass(eq=False)
class _Shard:
    """What this node holds on one cluster master."""

    name: str  # "host:port", as redis-py names cluster nodes
    host: str
    port: int
    slots: dict[int, set[str]] = field(default_factory=dict)  # wanted channels here, by slot
    reader: asyncio.Task[None] | None = None  # runs while ``slots`` is not empty
    pubsub: Any = None  # set while connected
    pending: set[bytes] = field(default_factory=set)  # SSUBSCRIBEs sent, not yet confirmed
    catch_up: bool = False  # run the node's on_reconnect hook once ``pending`` is empty
    healthy: bool = False
    pub: Any = None  # the publishing client
    outbox: list[_Pending] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None
    publish_ok: bool = True


class ShardedRedisBroker:
    """The broker on a Redis Cluster, with Redis 7 sharded pub/sub (SSUBSCRIBE / SPUBLISH).

    A channel lives on the master that owns its hash slot, so each message crosses one shard
    and a node connects only to the shards that hold its channels: per master, one pub/sub
    connection with its reader task while this node wants a channel there, and one
    publishing connection whose flusher sends each batch as one pipeline (order kept per
    channel). The wanted channels are kept here, by slot. A lost connection, a MOVED reply
    or a SUNSUBSCRIBE the server sent (the slot moved) marks the slot map stale; one
    maintenance task refreshes it, moves channels to their new owner, and the shard that
    gained them, like every reader that reconnects, calls the node's ``on_reconnect`` hook
    once all its channels are confirmed, to catch up from the store. A message whose shard
    cannot be reached fails with BrokerUnavailable (the node delivers it locally); the other
    shards go on. ``CancelledError`` always propagates.

    Not redis-py's ``ClusterPubSub`` (8.1 has ``ssubscribe`` / ``get_sharded_message``): its
    ``get_sharded_message`` polls the shards' connections in turn, each with the timeout
    (latency, or a busy loop), it resubscribes inside the library without telling us (no
    catch-up), and it borrows connections from the command pools.
    """

    local_only = False

    def __init__(self, url: str, prefix: str = "chatd:", node_id: str = "",
                 max_backoff: float = 2.0) -> None:
        """Owns ``client``: the node's bounded ``RedisCluster`` for commands, shared with
        presence, the match queue and the limits, closed here last."""
        parsed = parse_redis_cluster_url(url)
        if parsed is None:
            raise ValueError("ShardedRedisBroker needs a redis+cluster:// URL")
        self.url = url
        self._auth: dict[str, Any] = {"username": parsed.username,
                                      "password": parsed.password, "ssl": parsed.tls}
        self.client_name = f"{prefix}{node_id}".replace(" ", "_")
        self.max_backoff = max_backoff
        self.client = redis_client(url, self.client_name)
        self._shards: dict[str, _Shard] = {}
        self._where: dict[str, _Shard] = {}  # channel -> the shard it is subscribed on
        self._unrouted: set[str] = set()  # wanted, but no owner known yet
        self._stale = asyncio.Event()  # the slot map needs a refresh
        self._handler: Handler | None = None
        self._on_reconnect: ReconnectHook | None = None
        self._maintainer: asyncio.Task[None] | None = None
        self.reconnects = 0
        self.published = 0

    @property
    def healthy(self) -> bool:
        # Every shard holding our channels is subscribed, and no shard's last publish failed.
        return not self._unrouted and all(
            (s.healthy or not s.slots) and s.publish_ok for s in self._shards.values())

    def shard_of(self, channel: str) -> str | None:
        """The ``host:port`` of the shard this node holds ``channel`` on (tests, operators)."""
        shard = self._where.get(channel)
        return shard.name if shard is not None else None

    async def start(self, handler: Handler, on_reconnect: ReconnectHook | None = None) -> None:
        self._handler = handler
        self._on_reconnect = on_reconnect
        try:
            await self.client.initialize()
        except REDIS_ERRORS as exc:  # not reachable yet: the maintainer keeps trying
            log.error("redis cluster unreachable at start (%s)", type(exc).__name__)
            self._stale.set()
        self._maintainer = asyncio.create_task(self._maintain(), name="chatd-redis-slots")

    async def close(self) -> None:
        await stop_task(self._maintainer)
        self._maintainer = None
        for shard in self._shards.values():
            await stop_task(shard.reader)
            shard.reader = None
        flushers = [s.flusher for s in self._shards.values() if s.flusher is not None]
        if flushers:
            await asyncio.wait(flushers, timeout=2.0)
        for shard in self._shards.values():
            if shard.pub is not None:
                with contextlib.suppress(Exception):
                    await shard.pub.aclose()
        await self.client.aclose()

    # --- routing ------------------------------------------------------------------------

    def _owner(self, slot: int) -> _Shard | None:
        nodes = self.client.nodes_manager.slots_cache.get(slot)
        if not nodes:
            return None
        return self._shard(nodes[0].host, nodes[0].port)

    def _shard(self, host: str, port: int) -> _Shard:
        name = f"{host}:{port}"
        shard = self._shards.get(name)
        if shard is None:
            shard = self._shards[name] = _Shard(name, host, port)
        return shard

    def _redis(self, shard: _Shard, **kwargs: Any) -> Any:
        # No retries inside redis-py: a failure reaches our loop, which resubscribes by slot
        # (redis-py's own resubscribe sends every channel in one SSUBSCRIBE: CROSSSLOT).
        return aioredis.Redis(host=shard.host, port=shard.port, socket_connect_timeout=2,
                              client_name=self.client_name, retry=Retry(NoBackoff(), 0),
                              **self._auth, **kwargs)

    def _publisher(self, shard: _Shard) -> Any:
        # Two connections: the flusher's, and the probe's while a failed shard comes back.
        return self._redis(shard, socket_timeout=2, max_connections=2)

    # --- subscriptions ------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        if channel in self._where or channel in self._unrouted:
            return
        slot = key_slot(channel.encode())
        shard = self._owner(slot)
        if shard is None:
            self._unrouted.add(channel)
            self._stale.set()
            return
        await self._place(channel, slot, shard)

    async def unsubscribe(self, channel: str) -> None:
        self._unrouted.discard(channel)
        shard = self._where.pop(channel, None)
        if shard is None:
            return
        slot = key_slot(channel.encode())
        chans = shard.slots.get(slot)
        if chans is not None:
            chans.discard(channel)
            if not chans:
                del shard.slots[slot]
        shard.pending.discard(channel.encode())
        # An empty shard's reader closes its connection by itself within a second.
        await self._send(shard, "sunsubscribe", [channel])

    async def _place(self, channel: str, slot: int, shard: _Shard) -> None:
        self._where[channel] = shard
        shard.slots.setdefault(slot, set()).add(channel)
        if shard.reader is None:
            shard.reader = asyncio.create_task(self._read_shard(shard),
                                               name=f"chatd-redis-reader-{shard.name}")
        elif shard.pubsub is not None:
            shard.pending.add(channel.encode())
            await self._send(shard, "ssubscribe", [channel])

    async def _send(self, shard: _Shard, command: str, channels: list[str]) -> None:
        pubsub = shard.pubsub
        if pubsub is None:
            return  # the reader subscribes its whole set when it (re)connects
        if command == "sunsubscribe" and not shard.slots:
            return  # the reader closes the connection, and its subscriptions, by itself
        try:
            await getattr(pubsub, command)(*channels)
        # AttributeError: redis-py's, when the reader closes the connection under a send.
        except (*REDIS_ERRORS, AttributeError) as exc:
            log.warning("redis %s on %s failed (%s); the reader will resubscribe", command,
                        shard.name, type(exc).__name__)

    # --- the slot map -------------------------------------------------------------------

    async def _maintain(self) -> None:
        """Refresh the slot map when something said it is stale, move channels whose slot
        has a new owner, and probe shards whose last publish failed."""
        backoff = 0.25
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stale.wait(), 1.0)
            try:
                if self._stale.is_set():
                    self._stale.clear()
                    await self.client.nodes_manager.initialize()
                    await self._reroute()
                await self._probe()
                backoff = 0.25
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                log.warning("redis cluster slot map refresh failed (%s)", type(exc).__name__)
                self._stale.set()
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(self.max_backoff, backoff * 2)
                continue
            except Exception:
                log.exception("redis cluster maintenance failed")
                self._stale.set()
            # At most one refresh a second: each one recycles the command connections.
            await asyncio.sleep(1.0)

    async def _reroute(self) -> None:
        moves: dict[_Shard, list[str]] = {}
        for channel in list(self._unrouted):
            owner = self._owner(key_slot(channel.encode()))
            if owner is not None:
                self._unrouted.discard(channel)
                moves.setdefault(owner, []).append(channel)
        for shard in list(self._shards.values()):
            for slot, chans in list(shard.slots.items()):
                owner = self._owner(slot)
                if owner is None or owner is shard:
                    continue
                del shard.slots[slot]
                shard.pending.difference_update(c.encode() for c in chans)
                await self._send(shard, "sunsubscribe", sorted(chans))
                moves.setdefault(owner, []).extend(chans)
        if moves:
            log.warning("redis cluster: %d channels move to %s", sum(map(len, moves.values())),
                        ", ".join(sorted(owner.name for owner in moves)))
        for owner, moved in moves.items():
            owner.catch_up = True  # what was published meanwhile is in the store
            for channel in moved:
                self._where.pop(channel, None)
                await self._place(channel, key_slot(channel.encode()), owner)

    async def _probe(self) -> None:
        for shard in list(self._shards.values()):
            if shard.publish_ok or shard.outbox:
                continue
            if shard.pub is None:
                shard.pub = self._publisher(shard)
            with contextlib.suppress(*REDIS_ERRORS):
                await shard.pub.ping()
                shard.publish_ok = True

    # --- publishing ---------------------------------------------------------------------

    async def publish(self, channel: str, message: Message) -> None:
        """Queue an SPUBLISH (as MessagePack) on the channel's shard; its flusher sends
        everything queued meanwhile as one pipeline (order kept)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue((channel, msgpack.packb(message, use_bin_type=True), fut, 0))
        await fut

    def _enqueue(self, item: _Pending, shard: _Shard | None = None) -> None:
        if shard is None:
            shard = self._owner(key_slot(item[0].encode()))
        if shard is None:
            self._stale.set()
            item[2].set_exception(BrokerUnavailable("redis cluster: slot not covered"))
            return
        shard.outbox.append(item)
        if shard.flusher is None or shard.flusher.done():
            shard.flusher = asyncio.create_task(self._flush(shard),
                                                name=f"chatd-redis-publish-{shard.name}")

    async def _flush(self, shard: _Shard) -> None:
        while shard.outbox:
            batch, shard.outbox = shard.outbox, []
            if shard.pub is None:
                shard.pub = self._publisher(shard)
            pipe = shard.pub.pipeline(transaction=False)
            for channel, payload, _, _ in batch:
                pipe.spublish(channel, payload)
            try:
                results = await pipe.execute(raise_on_error=False)
            except REDIS_ERRORS as exc:
                shard.publish_ok = False
                self._stale.set()
                error = BrokerUnavailable(f"redis publish failed: {type(exc).__name__}")
                for _, _, fut, _ in batch:
                    if not fut.done():
                        fut.set_exception(error)
                continue
            shard.publish_ok = True
            for item, result in zip(batch, results, strict=True):
                fut = item[2]
                if fut.done():
                    continue
                if isinstance(result, MovedError) and item[3] == 0:
                    # The slot moved: send it once more to the node the reply names, at once
                    # so that the channel's order holds; the map is refreshed meanwhile.
                    self._stale.set()
                    self._enqueue((*item[:3], 1), self._shard(result.host, result.port))
                elif isinstance(result, Exception):
                    fut.set_exception(BrokerUnavailable(
                        f"redis publish refused: {type(result).__name__}"))
                else:
                    self.published += 1
                    fut.set_result(None)

    # --- the readers --------------------------------------------------------------------

    async def _read_shard(self, shard: _Shard) -> None:
        backoff = 0.05
        lost = False
        while True:
            pubsub = self._redis(shard, health_check_interval=5).pubsub()
            try:
                await pubsub.connect()
                # No await between the snapshot and publishing ``pubsub``: a channel placed
                # later is sent by ``_place`` itself.
                by_slot = [sorted(chans) for chans in shard.slots.values()]
                shard.pubsub = pubsub
                shard.pending = {c.encode() for chans in by_slot for c in chans}
                if lost:
                    shard.catch_up = True
                for chans in by_slot:  # one SSUBSCRIBE per slot (several would be CROSSSLOT)
                    wanted = [c for c in chans if self._where.get(c) is shard]
                    if wanted:
                        await pubsub.ssubscribe(*wanted)
                if lost:
                    self.reconnects += 1
                    log.warning("redis shard %s reconnected; %d channels resubscribed",
                                shard.name, len(shard.pending))
                backoff = 0.05
                await self._read(shard, pubsub)
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                if shard.healthy or not lost:
                    log.error("redis shard %s pub/sub lost (%s); local delivery continues",
                              shard.name, type(exc).__name__)
                lost = True
                self._stale.set()  # the slot may have a new owner (a failover)
            except Exception:
                log.exception("redis shard %s reader failed", shard.name)
                lost = True
            finally:
                shard.pubsub = None
                shard.healthy = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            # Exit only when no channel is wanted here, with no await between the check and
            # clearing ``reader`` (a channel placed later starts a new reader).
            if not shard.slots:
                shard.reader = None
                return
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(self.max_backoff, backoff * 2)
            if not shard.slots:
                shard.reader = None
                return

    async def _read(self, shard: _Shard, pubsub: Any) -> None:
        handler = self._handler
        assert handler is not None
        while shard.slots:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            kind, channel = message["type"], message["channel"].decode()
            if kind == "smessage":
                # Only while wanted here: an unsubscribe may still be on its way.
                if self._where.get(channel) is shard:
                    await handle_message(handler, channel, message["data"])
            elif kind == "ssubscribe":
                shard.pending.discard(message["channel"])
                if not shard.pending:
                    await self._confirmed(shard)
            elif kind == "sunsubscribe" and self._where.get(channel) is shard:
                # Not ours: the server dropped the channel (its slot moved away).
                log.warning("redis shard %s dropped %s; refreshing the slot map",
                            shard.name, channel)
                self._stale.set()

    async def _confirmed(self, shard: _Shard) -> None:
        """Every channel of the shard is subscribed: healthy, and caught up if asked."""
        shard.healthy = True
        if shard.catch_up and self._on_reconnect is not None:
            shard.catch_up = False
            try:
                await self._on_reconnect()
            except Exception:
                log.exception("catch-up after the reconnect of %s failed", shard.name)
        shard.catch_up = False
