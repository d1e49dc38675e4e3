"""Redis pub/sub brokers (``redis.asyncio`` with hiredis): one Redis, or a Redis Cluster.

:class:`RedisBroker` (one Redis): one reader task owns one pub/sub connection (redis-py's
PubSub; centrifuge's ``runForever``): the wanted channel set is kept here, so after any
disconnect the reader reconnects with exponential back-off, subscribes the whole set again,
and calls the node's ``on_reconnect`` hook to catch up from the store what was published
meanwhile. ``CancelledError`` always propagates. Publishing uses a separate connection pool.

For a ``redis+cluster://`` URL, :func:`redis_broker` returns the sharded one
(:mod:`chatd.broker.sharded_redis`: the same per shard, with Redis 7 ``SSUBSCRIBE`` /
``SPUBLISH``), and :func:`redis_client` a bounded ``RedisCluster``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Final

import msgpack
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from chatd.broker import BrokerUnavailable, Handler, Message, ReconnectHook
from chatd.config import parse_redis_cluster_url
from chatd.tasks import stop_task

__all__ = ["REDIS_ERRORS", "RedisBroker", "bounded_client", "handle_message", "redis_broker",
           "redis_client"]

log = logging.getLogger("chatd.broker")

#: What a Redis or Redis Cluster call raises when the server side fails. redis-py's cluster
#: errors (a slot not covered, no node reachable) are no ``RedisError``.
REDIS_ERRORS: Final = (RedisError, RedisClusterException, OSError)


def bounded_client(url: str, name: str | None = None, max_connections: int = 8) -> Any:
    """A client whose pool never grows past ``max_connections``: a burst of concurrent
    commands (hundreds of sessions closing at once) waits for a connection instead of
    opening one each, which would stay open and exhaust descriptors and Redis' maxclients."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, socket_timeout=2,
        socket_connect_timeout=2, client_name=name)
    return aioredis.Redis(connection_pool=pool)


def redis_client(url: str, name: str | None = None, max_connections: int = 8) -> Any:
    """The node's command client: :func:`bounded_client`, or a bounded ``RedisCluster`` for a
    ``redis+cluster://`` URL (``max_connections`` per shard)."""
    parsed = parse_redis_cluster_url(url)
    if parsed is None:
        return bounded_client(url, name, max_connections)
    return _BoundedCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.seeds],
        limit=max_connections, require_full_coverage=False, socket_timeout=2,
        socket_connect_timeout=2, client_name=name, username=parsed.username,
        password=parsed.password, ssl=parsed.tls)


def redis_broker(url: str, prefix: str = "chatd:", node_id: str = "") -> Any:
    """The broker for ``url``: sharded pub/sub on a Redis Cluster, plain pub/sub otherwise."""
    if parse_redis_cluster_url(url) is not None:
        from chatd.broker.sharded_redis import ShardedRedisBroker
        return ShardedRedisBroker(url, prefix, node_id)
    return RedisBroker(url, prefix, node_id)


# Set while a task holds one of the cluster client's permits (a pipeline's redirects call
# ``execute_command`` again: they must not wait for a second permit).
_PERMIT: ContextVar[bool] = ContextVar("chatd_redis_permit", default=False)


async def _bounded(permits: asyncio.Semaphore, call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        if _PERMIT.get():
            return await call()
        async with permits:
            token = _PERMIT.set(True)
            try:
                return await call()
            finally:
                _PERMIT.reset(token)
    except (AttributeError, RuntimeError) as exc:
        # redis-py's cluster client may disconnect a connection another task has just taken
        # (after a shard failed, free connections are closed): that task then writes to a
        # closed stream. It is a lost connection, and is reported so.
        raise RedisConnectionError(f"redis connection closed under a command: {exc}") from exc


class _BoundedCluster(RedisCluster):
    """A ``RedisCluster`` whose commands and pipelines wait for one of ``limit`` permits.

    Its per-shard pools raise ``MaxConnectionsError`` when full instead of waiting (what
    ``BlockingConnectionPool`` does for one Redis). A permit holder uses at most one
    connection per shard at a time, so ``limit`` per shard (plus two for redis-py's own slot
    map queries) is never exceeded.
    """

    def __init__(self, *args: Any, limit: int, **kwargs: Any) -> None:
        kwargs["max_connections"] = limit + 2
        super().__init__(*args, **kwargs)
        self.permits = asyncio.Semaphore(limit)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        return await _bounded(self.permits,
                              lambda: super(_BoundedCluster, self).execute_command(*args,
                                                                                   **kwargs))

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        return _BoundedPipeline(self, transaction)  # type: ignore[abstract]

    async def aclose(self) -> None:
        nodes = list(self.nodes_manager.nodes_cache.values())
        if _PIPELINE.get() and all(hasattr(n, "update_active_connections_for_reconnect")
                                   for n in nodes):
            # redis-py's pipeline retry closes the whole client to reinitialize it, cutting
            # the connections other tasks are using on healthy shards. Do what its command
            # path does instead: recycle connections once free, reinitialize before the next.
            for node in nodes:
                node.update_active_connections_for_reconnect()
                await node.disconnect_free_connections()
            self._initialize = True
            return
        await super().aclose()


_PIPELINE: ContextVar[bool] = ContextVar("chatd_redis_pipeline", default=False)


class _BoundedPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True,
                      allow_redirections: bool = True) -> list[Any]:
        client = self.cluster_client
        assert isinstance(client, _BoundedCluster)
        token = _PIPELINE.set(True)
        try:
            result: list[Any] = await _bounded(
                client.permits,
                lambda: super(_BoundedPipeline, self).execute(raise_on_error,
                                                              allow_redirections))
        finally:
            _PIPELINE.reset(token)
        return result


async def handle_message(handler: Handler, channel: Any, data: bytes) -> None:
    """Decode one broker message and hand it to the node (a bad one is logged, dropped)."""
    if isinstance(channel, bytes):
        channel = channel.decode()
    try:
        message = msgpack.unpackb(data, raw=False)
    except Exception:
        log.warning("dropped an unreadable broker message on %s", channel)
        return
    try:
        result = handler(channel, message)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("handling a broker message failed")


class RedisBroker:
    local_only = False

    def __init__(self, url: str, prefix: str = "chatd:", node_id: str = "",
                 max_backoff: float = 2.0) -> None:
        """Owns ``client``: the node's one bounded Redis client for commands, shared with
        presence and the match queue, closed here last."""
        self.url = url
        # Named connections: operators (and tests) can find this node's in CLIENT LIST.
        self.client_name = f"{prefix}{node_id}".replace(" ", "_")
        # A channel the reader always holds, so its connection exists with no other channel.
        self._reader_channel = f"{prefix}reader"
        self.max_backoff = max_backoff
        self._pub = self.client = bounded_client(url, self.client_name)
        self._channels: set[str] = set()
        self._pubsub: Any = None
        self._handler: Handler | None = None
        self._on_reconnect: ReconnectHook | None = None
        self._reader: asyncio.Task[None] | None = None
        self._healthy = False  # the reader's connection is up and subscribed
        self._publish_ok = True
        self._outbox: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.reconnects = 0
        self.published = 0

    @property
    def healthy(self) -> bool:
        # Both directions: the reader holds its subscriptions and the last publish went out.
        return self._healthy and self._publish_ok

    async def start(self, handler: Handler, on_reconnect: ReconnectHook | None = None) -> None:
        self._handler = handler
        self._on_reconnect = on_reconnect
        self._reader = asyncio.create_task(self._run(), name="chatd-redis-reader")
        # Give the first connection a moment so a healthy start is reported healthy.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 3.0)

    async def close(self) -> None:
        await stop_task(self._reader)
        self._reader = None
        if self._flusher is not None:
            await asyncio.wait([self._flusher], timeout=2.0)
        await self._pub.aclose()

    async def subscribe(self, channel: str) -> None:
        if channel in self._channels:
            return
        self._channels.add(channel)
        await self._send("subscribe", channel)

    async def unsubscribe(self, channel: str) -> None:
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        await self._send("unsubscribe", channel)

    async def _send(self, command: str, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None or not self._healthy:
            return  # the reader subscribes the whole set when it reconnects
        try:
            await getattr(pubsub, command)(channel)
        except (RedisError, OSError) as exc:
            log.warning("redis %s failed (%s); the reader will resubscribe", command,
                        type(exc).__name__)

    async def publish(self, channel: str, message: Message) -> None:
        """Queue the publish (as MessagePack); one flusher sends everything queued meanwhile
        as one pipeline (a round trip and a parse per batch, not per message; order kept)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((channel, msgpack.packb(message, use_bin_type=True), fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="chatd-redis-publish")
        await fut

    async def _flush(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            pipe = self._pub.pipeline(transaction=False)
            for channel, payload, _ in batch:
                pipe.publish(channel, payload)
            try:
                await pipe.execute()
            except (RedisError, OSError) as exc:
                self._publish_ok = False
                error = BrokerUnavailable(f"redis publish failed: {type(exc).__name__}")
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(error)
                continue
            self._publish_ok = True
            self.published += len(batch)
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    # --- the reader ---------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.05
        first = True
        while True:
            pubsub = aioredis.Redis.from_url(
                self.url, socket_connect_timeout=2, health_check_interval=5,
                client_name=self.client_name).pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._reader_channel)
                if self._channels:
                    await pubsub.subscribe(*self._channels)
                self._pubsub = pubsub
                self._healthy = True
                self._publish_ok = True  # Redis answers again; the next publish will tell
                self._connected.set()
                if not first:
                    self.reconnects += 1
                    log.warning("redis pub/sub reconnected; %d channels resubscribed",
                                len(self._channels))
                    if self._on_reconnect is not None:
                        await self._on_reconnect()
                first = False
                backoff = 0.05
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._healthy:
                    log.error("redis pub/sub lost (%s); local delivery continues",
                              type(exc).__name__)
                self._healthy = False
            except Exception:
                log.exception("redis reader failed")
                self._healthy = False
            finally:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(self.max_backoff, backoff * 2)

    async def _read(self, pubsub: Any) -> None:
        handler = self._handler
        assert handler is not None
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None and message.get("type") == "message":
                await handle_message(handler, message["channel"], message["data"])

