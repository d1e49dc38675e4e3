"""chatd on a real local Redis Cluster (three masters, ``tests/redis_cluster.py``): the broker
and presence contracts over sharded pub/sub, two real nodes on PostgreSQL with users on each
(1:1 chat after a match, a group, presence, limits, a word-list edit), channels that live on
their own shard only, and a master killed and restarted under load with nothing acknowledged
lost."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from chatd.broker.redis import redis_client
from chatd.broker.sharded_redis import ShardedRedisBroker
from chatd.client import Client
from chatd.config import Config, ConfigError, parse_redis_cluster_url
from chatd.presence import Presence
from chatd.presence.redis import RedisPresence
from tests.conftest import new_phone, t
from tests.redis_cluster import LocalCluster
from tests.test_broker_presence_contract import (  # noqa: F401  (run here on the cluster)
    Inbox,
    test_a_message_is_data_and_arrives_equal,
    test_presence_add_online_remove,
    test_subscribed_channel_gets_each_publish_once_in_order,
    test_unsubscribed_channel_gets_nothing,
)
from tests.test_scaleout import health, matched_across, user


def test_a_cluster_url_names_its_seeds() -> None:
    parsed = parse_redis_cluster_url("rediss+cluster://chatd:p%40ss@10.0.0.1:7000,[::1]:7001/")
    assert parsed is not None
    assert parsed.seeds == (("10.0.0.1", 7000), ("::1", 7001))
    assert (parsed.username, parsed.password, parsed.tls) == ("chatd", "p@ss", True)
    assert parse_redis_cluster_url("redis://127.0.0.1:6379/0") is None
    assert Config(broker="redis", redis_url="redis+cluster://a:7000,b:7000").broker == "redis"


@pytest.mark.parametrize("url, key_prefix, why", [
    ("redis+cluster://a:7000/0", "chatd:", "no database"),
    ("redis+cluster://a", "chatd:", "is not HOST:PORT"),
    ("redis+cluster://a:7000,b:x", "chatd:", "is not HOST:PORT"),
    ("redis+cluster://a:7000", "{chatd}:", "one shard"),
    ("cluster://a:7000", "chatd:", "unix:// or redis"),
])
def test_a_bad_cluster_setting_is_refused(url: str, key_prefix: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        Config(broker="redis", redis_url=url, key_prefix=key_prefix)


@pytest.fixture
async def broker(redis_cluster: LocalCluster,
                 prefix: str) -> AsyncIterator[tuple[ShardedRedisBroker, Inbox]]:
    inbox = Inbox()
    b = ShardedRedisBroker(redis_cluster.url, prefix, "contract")
    await b.start(inbox)
    try:
        yield b, inbox
    finally:
        await b.close()


@pytest.fixture
async def presence(redis_cluster: LocalCluster, prefix: str) -> AsyncIterator[Presence]:
    client = redis_client(redis_cluster.url)
    p = RedisPresence(client, "n1", prefix, ttl=1.0)
    await p.start()
    yield p
    await p.close()
    await client.aclose()


def nodes_on(node_process: Any, cluster: LocalCluster, prefix: str, pg_dsn: str,
             tmp_path: Path, *extra: str) -> list[Any]:
    return [node_process("--broker", "redis", "--redis-url", cluster.url, "--key-prefix", prefix,
                         "--store", "postgres", "--postgres-dsn", pg_dsn, "--node-id", f"rc{i}",
                         "--presence-ttl", "2", "--presence-grace", "0.2", *extra,
                         data_dir=tmp_path / f"d{i}") for i in range(2)]


def msgs_left(c: Client) -> list[dict[str, Any]]:
    left = [c.events.get_nowait() for _ in range(c.events.qsize())]
    return [e for e in left if e["t"] == "msg"]


async def test_a_channel_lives_on_the_shard_of_its_slot(redis_cluster: LocalCluster,
                                                        prefix: str) -> None:
    nodes = [ShardedRedisBroker(redis_cluster.url, prefix, f"n{i}") for i in range(2)]
    inboxes = [Inbox() for _ in nodes]
    for b, inbox in zip(nodes, inboxes, strict=True):
        await b.start(inbox)
    try:
        channels = [f"{prefix}c:{i}" for i in range(12)]
        for channel in channels:
            await nodes[0].subscribe(channel)
        await asyncio.sleep(0.2)
        for channel in channels:
            await nodes[1].publish(channel, channel)
        got = {(await inboxes[0].next())[1] for _ in channels}
        assert got == set(channels)
        # Each channel is held on its owner alone; no classic pub/sub anywhere.
        for channel in channels:
            owner = redis_cluster.owner(channel)
            assert nodes[0].shard_of(channel) == f"127.0.0.1:{owner}"
            for port in redis_cluster.ports:
                with redis_cluster.client(port) as r:
                    assert r.execute_command("PUBSUB", "SHARDNUMSUB", channel)[1] == \
                        (1 if port == owner else 0)
                    assert r.execute_command("PUBSUB", "NUMSUB", channel)[1] == 0
        # The last channel on a shard gone, its connection closes (within a second).
        for channel in channels:
            await nodes[0].unsubscribe(channel)
        await asyncio.sleep(1.5)
        for port in redis_cluster.ports:
            with redis_cluster.client(port) as r:
                mine = [c for c in r.client_list() if c.get("name") == f"{prefix}n0"
                        and c.get("ssub") not in (None, "0")]
                assert mine == []
        assert nodes[0].healthy and nodes[1].healthy
    finally:
        for b in nodes:
            await b.close()


async def test_a_moved_slot_takes_its_channel_along(redis_cluster: LocalCluster,
                                                    prefix: str) -> None:
    nodes = [ShardedRedisBroker(redis_cluster.url, prefix, f"n{i}") for i in range(2)]
    inboxes = [Inbox() for _ in nodes]
    for b, inbox in zip(nodes, inboxes, strict=True):
        await b.start(inbox)
    channel = prefix + "c:moving"
    slot = key_slot(channel.encode())
    source = redis_cluster.owner(channel)
    target = next(p for p in redis_cluster.ports if p != source)
    moved = False
    try:
        await nodes[0].subscribe(channel)
        await asyncio.sleep(0.2)
        await nodes[1].publish(channel, "before")
        assert await inboxes[0].next() == (channel, "before")
        await asyncio.to_thread(redis_cluster.move_slot, slot, source, target)
        moved = True
        # The subscriber follows on the server's SUNSUBSCRIBE; the publisher on MOVED.
        deadline = time.monotonic() + t(5)
        while nodes[0].shard_of(channel) != f"127.0.0.1:{target}" or not nodes[0].healthy:
            assert time.monotonic() < deadline, "the subscription did not follow its slot"
            await asyncio.sleep(0.05)
        await nodes[1].publish(channel, "after")
        assert await inboxes[0].next() == (channel, "after")
        for port, subscribers in ((target, 1), (source, 0)):
            with redis_cluster.client(port) as r:
                assert r.execute_command("PUBSUB", "SHARDNUMSUB", channel)[1] == subscribers
    finally:
        if moved:
            await asyncio.to_thread(redis_cluster.move_slot, slot, target, source)
        for b in nodes:
            await b.close()


def admin(pg_dsn: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "chatd", "admin", "--store", "postgres",
                    "--postgres-dsn", pg_dsn, *args], check=True, capture_output=True,
                   timeout=t(60))


def test_two_nodes_on_a_cluster(node_process: Any, redis_cluster: LocalCluster, prefix: str,
                                pg_dsn: str, tmp_path: Path) -> None:
    # Word-list polling every 60 s: within the test, only the sys channel carries an edit.
    n0, n1 = nodes_on(node_process, redis_cluster, prefix, pg_dsn, tmp_path,
                      "--user-messages-per-minute", "30", "--wordlist-poll-interval", "60")

    async def scenario() -> None:
        # A match across the nodes (the queue's script keys share the slot of {mq}), then a
        # 1:1 chat both ways and presence.
        a, b, _ = await matched_across(n0.url, n1.url)
        online = (await a.call("presence", users=[b.user["id"], "nobody"]))["online"]
        assert online == {b.user["id"]: True, "nobody": False}

        # A group with members on both nodes, one of them with a session on each.
        c = await user(n0.url, ["music.jazz"])
        c2 = await Client.connect(n1.url)
        await c2.auth(c.token)
        sent = await b.call("msg.send", conv="g:music.jazz", body="群消息")
        got = [await x.next_event("msg") for x in (a, c, c2)]
        assert {g["id"] for g in got} == {sent["id"]}
        await asyncio.sleep(0.3)
        for x in (a, b, c, c2):  # exactly once each, nothing echoed to the sender
            assert msgs_left(x) == []

        # Sharded: the group's channel is held by both nodes on its owner shard only.
        channel = f"{prefix}c:g:music.jazz"
        owner = redis_cluster.owner(channel)
        for port in redis_cluster.ports:
            with redis_cluster.client(port) as r:
                assert r.execute_command("PUBSUB", "SHARDNUMSUB", channel)[1] == \
                    (2 if port == owner else 0)
                assert r.execute_command("PUBSUB", "CHANNELS", f"{prefix}*") == []
                for node in ("rc0", "rc1"):  # at most one pub/sub connection per shard
                    subs = [x for x in r.client_list() if x.get("name") == f"{prefix}{node}"
                            and x.get("ssub") not in (None, "0")]
                    assert len(subs) <= 1 and all(x["sub"] == "0" for x in subs)

        # The per-user limit (30 a minute) holds in total: two connections on each node.
        flooder = await user(n0.url, ["music.rock"])
        conns = [flooder]
        for url in (n0.url, n1.url, n1.url):
            extra = await Client.connect(url)
            await extra.auth(flooder.token)
            conns.append(extra)
        replies = await asyncio.gather(*(x.request("msg.send", conv="g:music.rock",
                                                   body=f"m{i}")
                                         for x in conns for i in range(10)))
        codes = [r["t"] if r["t"] == "ok" else r["code"] for r in replies]
        assert codes.count("ok") == 30 and codes.count("rate_limited") == 10, codes

        # A moderator's word-list edit on one node holds on the other within a second.
        phone = new_phone()
        mod = await Client.connect(n0.url)
        await mod.register(phone)
        await asyncio.to_thread(admin, pg_dsn, "grant-moderator", phone)
        await mod.call("mod.words.add", word="集群违禁词", category="abuse")
        start = time.monotonic()
        while True:
            r = await b.request("msg.send", conv="g:music.jazz", body="这是集群违禁词")
            if r.get("code") == "filtered":
                break
            assert time.monotonic() - start < t(1.0), "the edit did not reach the other node"
            await asyncio.sleep(0.05)

        # b leaves: a sees b offline (presence grace 0.2 s here).
        b_id = b.user["id"]
        await b.close()
        deadline = time.monotonic() + t(5)
        while (await a.call("presence", users=[b_id]))["online"][b_id]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        for x in (a, c, c2, mod, *conns):
            await x.close()

    asyncio.run(asyncio.wait_for(scenario(), t(60)))


# Interest groups of two users each, one on each node; candidates for the restart test.
RESTART_TAGS = ["travel.camping", "film.documentary", "anime.cosplay", "photo.vlog",
                "food.hotpot", "game.mahjong", "sport.cycling", "book.poetry", "tech.ai",
                "anime.manga", "photo.photography", "sport.yoga"]


def test_a_master_restarted_under_load_loses_nothing_acknowledged(
        node_process: Any, redis_cluster: LocalCluster, prefix: str, pg_dsn: str,
        tmp_path: Path) -> None:
    # Three groups whose channel lives on the victim shard, three on the others.
    owners = {tag: redis_cluster.owner(f"{prefix}c:g:{tag}") for tag in RESTART_TAGS}
    victim = owners[RESTART_TAGS[0]]
    tags = [g for g in RESTART_TAGS if owners[g] == victim][:3] + \
        [g for g in RESTART_TAGS if owners[g] != victim][:3]
    assert len(tags) >= 4 and any(owners[g] != victim for g in tags)
    n0, n1 = nodes_on(node_process, redis_cluster, prefix, pg_dsn, tmp_path,
                      "--user-messages-per-minute", "100000")

    async def scenario() -> dict[str, float]:
        pairs = [(await user(n0.url, [tag]), await user(n1.url, [tag])) for tag in tags]
        for x, y in pairs:
            x.retry_attempts = y.retry_attempts = 1  # see every unavailable
        acked: dict[int, set[str]] = {}  # id(client) -> ids acknowledged to it as a sender
        acked_at: dict[str, float] = {}
        live: dict[int, set[str]] = {}  # id(client) -> msg ids it received live
        errors: list[str] = []
        stop = asyncio.Event()

        async def send(c: Client, conv: str) -> None:
            mine = acked.setdefault(id(c), set())
            i = 0
            while not stop.is_set():
                i += 1
                r = await c.request("msg.send", conv=conv, body=f"m{i}")
                if r["t"] == "ok":
                    mine.add(r["id"])
                    acked_at[r["id"]] = time.monotonic()
                else:
                    errors.append(str(r["code"]))
                await asyncio.sleep(0.04)

        async def collect(c: Client) -> None:
            mine = live.setdefault(id(c), set())
            while True:
                event = await c.events.get()
                if event["t"] == "msg":
                    mine.add(event["id"])

        senders = [asyncio.create_task(send(c, f"g:{tag}"))
                   for (x, y), tag in zip(pairs, tags, strict=True) for c in (x, y)]
        collectors = [asyncio.create_task(collect(c)) for pair in pairs for c in pair]
        await asyncio.sleep(t(1.5))
        redis_cluster.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        deadline = time.monotonic() + t(10)  # cluster-node-timeout is 2 s
        while not await asyncio.to_thread(redis_cluster.flagged_failed, victim):
            assert time.monotonic() < deadline, "the other masters never flagged it FAIL"
            await asyncio.sleep(0.1)
        await asyncio.sleep(t(0.5))
        await asyncio.to_thread(redis_cluster.start_node, victim)
        restarted = time.monotonic()
        await asyncio.to_thread(redis_cluster.wait_ok, t(30))
        deadline = time.monotonic() + t(20)
        while health(n0.port)["broker"] != "ok" or health(n1.port)["broker"] != "ok":
            assert time.monotonic() < deadline, "the nodes did not recover on their own"
            await asyncio.sleep(0.1)
        recovered = time.monotonic()
        await asyncio.sleep(t(1.5))  # traffic goes on after the recovery
        stop.set()
        await asyncio.gather(*senders)
        await asyncio.sleep(t(1.0))  # the last messages in flight
        for task in collectors:
            task.cancel()

        late = 0
        for (x, y), tag in zip(pairs, tags, strict=True):
            for c, peer in ((x, y), (y, x)):
                history: set[str] = set()
                after = 0
                while True:  # the whole history as c sees it, page by page
                    page = (await c.call("history", conv=f"g:{tag}", after=after,
                                         limit=100))["messages"]
                    history |= {m["id"] for m in page}
                    if len(page) < 100:
                        break
                    after = page[-1]["seq"]
                assert acked[id(c)] <= history, "an acknowledged message is not stored"
                # What did not arrive live, c gets from the history it catches up from.
                missed = acked[id(peer)] - live[id(c)]
                assert missed <= history, "an acknowledged message never reached the peer"
                # Once the nodes are healthy again, delivery is live again.
                assert all(acked_at[m] < recovered for m in missed), "not live after recovery"
                late += len(missed)
        for pair in pairs:
            for c in pair:
                await c.close()
        return {"acked": sum(len(v) for v in acked.values()), "not_live": late,
                **{f"err_{code}": errors.count(code) for code in set(errors)},
                "down_s": round(restarted - killed, 1),
                "recovered_after_restart_s": round(recovered - restarted, 1)}

    stats = asyncio.run(asyncio.wait_for(scenario(), t(60)))
    print("shard restart:", stats)
    assert stats["acked"] > 100
