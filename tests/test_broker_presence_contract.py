"""The Broker and Presence contracts, run against the memory and the Redis implementations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis

from chatd.broker import Broker, MemoryBroker
from chatd.broker.redis import RedisBroker
from chatd.presence import MemoryPresence, Presence
from chatd.presence.redis import RedisPresence
from chatd.store import UserId

REDIS_URL = "redis://127.0.0.1:6379/0"


class Inbox:
    def __init__(self) -> None:
        self.got: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    def __call__(self, channel: str, payload: bytes) -> None:
        self.got.put_nowait((channel, payload))

    async def next(self, timeout: float = 2.0) -> tuple[str, bytes]:
        return await asyncio.wait_for(self.got.get(), timeout)


@pytest.fixture(params=["memory", "redis"])
async def broker(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[tuple[Broker,
                                                                                   Inbox]]:
    inbox = Inbox()
    b: Broker = MemoryBroker() if request.param == "memory" else \
        RedisBroker(REDIS_URL, prefix, "contract")
    await b.start(inbox)
    try:
        yield b, inbox
    finally:
        await b.close()


async def test_subscribed_channel_gets_each_publish_once_in_order(broker: Any,
                                                                  prefix: str) -> None:
    b, inbox = broker
    channel = prefix + "c:one"
    await b.subscribe(channel)
    await asyncio.sleep(0.1)  # a subscription takes effect asynchronously on Redis
    for i in range(20):
        await b.publish(channel, b"m%d" % i)
    got = [await inbox.next() for _ in range(20)]
    assert got == [(channel, b"m%d" % i) for i in range(20)]
    await asyncio.sleep(0.1)
    assert inbox.got.empty()
    assert b.healthy


async def test_a_message_is_data_and_arrives_equal(broker: Any, prefix: str) -> None:
    b, inbox = broker
    channel = prefix + "c:data"
    await b.subscribe(channel)
    await asyncio.sleep(0.1)
    message = ["c", "g:x", ["u1", None], {"t": "msg", "seq": 3, "body": "你好", "raw": b"\x00"}]
    await b.publish(channel, message)
    got_channel, got = await inbox.next()
    assert got_channel == channel and list(got) == message


async def test_redis_drops_an_unreadable_message_and_reads_on(prefix: str) -> None:
    inbox = Inbox()
    b = RedisBroker(REDIS_URL, prefix, "contract")
    await b.start(inbox)
    try:
        channel = prefix + "c:garbage"
        await b.subscribe(channel)
        await asyncio.sleep(0.1)
        raw = redis.Redis.from_url(REDIS_URL)
        raw.publish(channel, b"\xc1 not msgpack")
        raw.close()
        await b.publish(channel, "after")
        assert await inbox.next() == (channel, "after")
    finally:
        await b.close()


async def test_unsubscribed_channel_gets_nothing(broker: Any, prefix: str) -> None:
    b, inbox = broker
    channel = prefix + "c:two"
    await b.publish(channel, b"before")  # nobody subscribed: at most once means dropped
    await b.subscribe(channel)
    await asyncio.sleep(0.1)
    await b.unsubscribe(channel)
    await asyncio.sleep(0.1)
    await b.publish(channel, b"after")
    await asyncio.sleep(0.2)
    assert inbox.got.empty()


async def test_redis_publish_reaches_every_subscribed_node(prefix: str) -> None:
    nodes = [RedisBroker(REDIS_URL, prefix, f"n{i}") for i in range(3)]
    inboxes = [Inbox() for _ in nodes]
    for b, inbox in zip(nodes, inboxes, strict=True):
        await b.start(inbox)
    try:
        channel = prefix + "c:shared"
        for b in nodes[:2]:
            await b.subscribe(channel)
        await asyncio.sleep(0.1)
        await nodes[2].publish(channel, b"hello")
        assert await inboxes[0].next() == (channel, b"hello")
        assert await inboxes[1].next() == (channel, b"hello")
        await asyncio.sleep(0.2)
        assert inboxes[2].got.empty()
    finally:
        for b in nodes:
            await b.close()


@pytest.fixture(params=["memory", "redis"])
async def presence(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Presence]:
    if request.param == "memory":
        p: Presence = MemoryPresence()
        await p.start()
        yield p
        await p.close()
        return
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    p = RedisPresence(client, "n1", prefix, ttl=1.0)
    await p.start()
    yield p
    await p.close()
    await client.aclose()


async def test_presence_add_online_remove(presence: Presence) -> None:
    a, b = UserId("alice"), UserId("bob")
    await presence.add(a)
    assert await presence.online([a, b]) == {a: True, b: False}
    await presence.remove(a)
    assert await presence.online([a]) == {a: False}


async def test_redis_presence_is_shared_and_forgets_a_crashed_node(prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    n1 = RedisPresence(client, "n1", prefix, ttl=1.0)
    n2 = RedisPresence(client, "n2", prefix, ttl=1.0)
    await n1.start()
    await n2.start()
    try:
        user = UserId("carol")
        await n1.add(user)
        assert (await n2.online([user]))[user]  # seen from the other node
        await asyncio.sleep(1.5)
        assert (await n2.online([user]))[user]  # n1 is alive and refreshes it
        # n1 "crashes": its refresher stops and nothing removes the user.
        assert n1._task is not None
        n1._task.cancel()
        await asyncio.sleep(1.3)
        assert not (await n2.online([user]))[user]  # gone within the TTL
    finally:
        await n2.close()
        await client.aclose()
