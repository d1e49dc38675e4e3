"""Redis pub/sub broker (``redis.asyncio`` with hiredis).

One reader task owns one pub/sub connection (redis-py's PubSub; centrifuge's ``runForever``):
the wanted channel set is kept here, so after any disconnect the reader reconnects with
exponential back-off, subscribes the whole set again, and calls the node's ``on_reconnect``
hook to catch up from the store what was published meanwhile. ``CancelledError`` always
propagates. Publishing uses a separate connection pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatd.broker import BrokerUnavailable, Handler, Message, ReconnectHook
from chatd.tasks import stop_task

__all__ = ["RedisBroker", "bounded_client"]

log = logging.getLogger("chatd.broker")


def bounded_client(url: str, name: str | None = None, max_connections: int = 8) -> Any:
    """A client whose pool never grows past ``max_connections``: a burst of concurrent
    commands (hundreds of sessions closing at once) waits for a connection instead of
    opening one each, which would stay open and exhaust descriptors and Redis' maxclients."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, socket_timeout=2,
        socket_connect_timeout=2, client_name=name)
    return aioredis.Redis(connection_pool=pool)


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
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            try:
                data = msgpack.unpackb(message["data"], raw=False)
            except Exception:
                log.warning("dropped an unreadable broker message on %s", channel)
                continue
            try:
                result = handler(channel, data)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("handling a broker message failed")

