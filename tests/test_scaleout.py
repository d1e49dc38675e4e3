"""Several real node processes sharing Redis (and one SQLite directory on this host)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis

from bench.harness import PrivateRedis
from chatd.client import Client
from tests.conftest import new_phone, t

REDIS_URL = "redis://127.0.0.1:6379/0"


def cluster(node_process: Any, prefix: str, n: int = 2, redis_url: str = REDIS_URL,
            *extra: str) -> list[Any]:
    return [node_process("--broker", "redis", "--redis-url", redis_url, "--key-prefix", prefix,
                         "--presence-ttl", "2", "--node-id", f"n{i}", *extra)
            for i in range(n)]


async def user(url: str, tags: list[str], nickname: str = "u") -> Client:
    c = await Client.connect(url)
    await c.register(new_phone(), interests=tags, nickname=nickname)
    return c


async def matched_across(url_a: str, url_b: str) -> tuple[Client, Client, str]:
    """Two users on two nodes matched through the shared queue, then a message each way."""
    a = await user(url_a, ["music.jazz", "book.scifi"], "甲")
    b = await user(url_b, ["music.jazz", "book.scifi"], "乙")
    await a.call("match.start")
    await b.call("match.start")
    fa = await a.next_event("match.found", timeout=t(10))
    fb = await b.next_event("match.found", timeout=t(10))
    assert fa["conv"] == fb["conv"] and fa["peer"]["id"] == b.user["id"]  # type: ignore[index]
    conv = fa["conv"]
    await a.call("msg.send", conv=conv, body="跨节点你好")
    assert (await b.next_event("msg"))["body"] == "跨节点你好"
    await b.call("msg.send", conv=conv, body="收到")
    assert (await a.next_event("msg"))["body"] == "收到"
    return a, b, conv


def health(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return dict(json.loads(r.read()))
    except urllib.error.HTTPError as e:
        return dict(json.loads(e.read()))


def test_two_nodes_match_chat_receipts_presence_and_groups(node_process, prefix) -> None:
    n1, n2 = cluster(node_process, prefix)

    async def scenario() -> None:
        a, b, conv = await matched_across(n1.url, n2.url)
        await a.call("read", conv=conv, seq=2)
        assert (await b.next_event("read"))["seq"] == 2
        online = (await a.call("presence", users=[b.user["id"], "nobody"]))["online"]
        assert online == {b.user["id"]: True, "nobody": False}

        # A group with members on both nodes, one of them with a session on each node.
        c1 = await user(n1.url, ["music.jazz"])
        c2 = await Client.connect(n2.url)
        await c2.auth(c1.token)
        sent = await b.call("msg.send", conv="g:music.jazz", body="群消息")
        got = [await x.next_event("msg") for x in (a, c1, c2)]
        assert {g["id"] for g in got} == {sent["id"]}
        await asyncio.sleep(0.5)
        for x in (a, b, c1, c2):  # exactly once each, and nothing echoed to the sender
            # (receipts of the 1:1 above, `delivered`, may still arrive: they are not msgs)
            left = [x.events.get_nowait() for _ in range(x.events.qsize())]
            assert [e for e in left if e["t"] == "msg"] == []
        for x in (a, b, c1, c2):
            await x.close()

    asyncio.run(scenario())


def test_password_reset_ends_sessions_on_every_node(node_process, prefix) -> None:
    n1, n2 = cluster(node_process, prefix)

    async def scenario() -> None:
        phone = new_phone()
        a = await Client.connect(n1.url)
        await a.register(phone, password="old-password")
        async with await Client.connect(n2.url) as c:
            code = (await c.call("sms.send", phone=phone, purpose="reset"))["dev_code"]
            await c.call("password.reset", phone=phone, code=code, password="new-password")
        await asyncio.wait_for(a.ws.wait_closed(), t(5))
        assert a.ws.close_code == 4001

    asyncio.run(scenario())


def test_pubsub_connection_killed_messages_still_arrive(node_process, prefix) -> None:
    n1, n2 = cluster(node_process, prefix)

    async def scenario() -> None:
        a = await user(n1.url, ["pet.cat"])
        b = await user(n2.url, ["pet.cat"])
        r = redis.Redis.from_url(REDIS_URL)
        killed = 0
        for client in r.client_list():
            if client.get("name", "").startswith(prefix) and client.get("cmd") in (
                    "subscribe", "ping", "unsubscribe"):
                r.client_kill_filter(_id=client["id"])
                killed += 1
        r.close()
        assert killed >= 2
        sent = [await b.call("msg.send", conv="g:pet.cat", body=f"m{i}") for i in range(5)]
        got = []
        async with asyncio.timeout(t(10)):
            while len(got) < 5:
                got.append(await a.next_event("msg"))
        assert sorted(g["seq"] for g in got) == [s["seq"] for s in sent]
        history = (await a.call("history", conv="g:pet.cat"))["messages"]
        assert [m["body"] for m in history] == [f"m{i}" for i in range(5)]
        for x in (a, b):
            await x.close()

    asyncio.run(scenario())


def test_redis_restart_local_delivery_continues_and_recovers(node_process, prefix,
                                                              tmp_path: Path) -> None:
    private = PrivateRedis(tmp_path / "redis")
    private.start()
    try:
        n1, n2 = cluster(node_process, prefix, 2, private.url)

        async def scenario() -> None:
            a = await user(n1.url, ["sport.running"])
            a2 = await user(n1.url, ["sport.running"])
            b = await user(n2.url, ["sport.running"])
            private.stop()
            await asyncio.sleep(0.5)
            # Redis is down: same-node delivery goes on, acknowledged sends are stored.
            sent = await a.call("msg.send", conv="g:sport.running", body="during")
            assert (await a2.next_event("msg"))["id"] == sent["id"]
            assert health(n1.port)["broker"] == "degraded"
            private.start()
            deadline = time.monotonic() + t(10)
            while health(n1.port)["broker"] != "ok" or health(n2.port)["broker"] != "ok":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            # b on the other node got the message from the store catch-up, or asks history.
            history = (await b.call("history", conv="g:sport.running"))["messages"]
            assert [m["id"] for m in history] == [sent["id"]]
            after = await b.call("msg.send", conv="g:sport.running", body="after")
            assert (await a.next_event("msg", timeout=t(5)))["id"] == after["id"]
            for x in (a, a2, b):
                await x.close()

        asyncio.run(scenario())
    finally:
        private.stop()


def test_sigkill_a_node_users_resume_elsewhere(node_process, prefix) -> None:
    n1, n2 = cluster(node_process, prefix)

    async def scenario() -> None:
        a = await user(n1.url, ["game.fps"])
        b = await user(n2.url, ["game.fps"])
        waiting = await user(n2.url, ["art.calligraphy"])
        await waiting.call("match.start")
        a_id, token = a.user["id"], a.token
        await b.call("msg.send", conv="g:game.fps", body="one")
        last = (await a.next_event("msg"))["seq"]
        n1.stop(signal.SIGKILL)
        await b.call("msg.send", conv="g:game.fps", body="two")
        # Presence forgets the dead node's user within the TTL (2 s here).
        deadline = time.monotonic() + t(6)
        while (await b.call("presence", users=[a_id]))["online"][a_id]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        # a reconnects to the surviving node and resumes with history.
        a2 = await Client.connect(n2.url)
        await a2.auth(token)
        missed = (await a2.call("history", conv="g:game.fps", after=last))["messages"]
        assert [m["body"] for m in missed] == ["two"]
        # The surviving node's waiting user is still in the queue and gets matched.
        other = await user(n2.url, ["art.calligraphy"])
        await other.call("match.start")
        found = await waiting.next_event("match.found", timeout=t(10))
        assert found["peer"]["id"] == other.user["id"]
        for x in (a2, b, waiting, other):
            await x.close()

    asyncio.run(scenario())


def test_sqlite_dir_refused_for_second_memory_node(node_process, tmp_path: Path) -> None:
    node_process()
    with pytest.raises(RuntimeError, match="another chatd node is using"):
        node_process()


def test_three_nodes_on_postgres_group_delivery_and_seq(node_process, prefix, pg_dsn,
                                                        tmp_path: Path) -> None:
    nodes = [node_process("--broker", "redis", "--key-prefix", prefix, "--store", "postgres",
                          "--postgres-dsn", pg_dsn, "--node-id", f"pg{i}",
                          data_dir=tmp_path / f"d{i}") for i in range(3)]

    async def scenario() -> None:
        members = [await user(n.url, ["food.coffee"]) for n in nodes]
        # Concurrent senders on three nodes: seqs from one shared counter, no gaps.
        acks = await asyncio.gather(*(
            m.call("msg.send", conv="g:food.coffee", body=f"{i}-{j}", cid=f"{i}-{j}")
            for j in range(10) for i, m in enumerate(members)))
        assert sorted(a["seq"] for a in acks) == list(range(1, 31))
        for i, m in enumerate(members):  # each member gets the 20 others' messages once
            got: list[dict[str, Any]] = []
            async with asyncio.timeout(t(10)):
                while len(got) < 20:
                    got.append(await m.next_event("msg"))
            assert len({g["id"] for g in got}) == 20
            assert all(not g["body"].startswith(f"{i}-") for g in got)
        for m in members:
            await m.close()

    asyncio.run(scenario())


def test_block_while_both_wait_on_two_nodes_stops_the_match(node_process, prefix) -> None:
    n1, n2 = cluster(node_process, prefix)

    async def scenario() -> None:
        a = await user(n1.url, ["sport.badminton"], "甲")
        b = await user(n2.url, ["tech.programming"], "乙")  # random after 2 s
        await a.call("match.start")
        await b.call("match.start")
        await b.call("block", user=a.user["id"])
        await asyncio.sleep(3)
        assert a.events.empty() and b.events.empty()
        # Both are still waiting: a third user is matched with one of them.
        c = await user(n2.url, ["sport.badminton"], "丙")
        await c.call("match.start")
        found = await c.next_event("match.found", timeout=t(10))
        assert found["peer"]["id"] in (a.user["id"], b.user["id"])
        for x in (a, b, c):
            await x.close()

    asyncio.run(scenario())
