"""Recall, delete-for-me, replies, delivered receipts, unread counts, the conversation list and
conversation mutes, end to end over real WebSockets, on SQLite and on PostgreSQL, and across
two nodes sharing Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chatd.client import Client, ClientError
from chatd.config import Config
from chatd.server import ChatServer
from tests.conftest import REDIS_URL, new_phone, t, url_of

RECALL_WINDOW = 3.0
SECRET = "撤回的秘密内容"


@pytest.fixture(params=["sqlite", "postgres"])
async def server(request: pytest.FixtureRequest, config: Config,
                 pg_dsn: str) -> AsyncIterator[ChatServer]:
    extra: dict[str, Any] = {"store": "postgres", "postgres_dsn": pg_dsn} \
        if request.param == "postgres" else {}
    srv = ChatServer(dataclasses.replace(config, recall_window=RECALL_WINDOW, presence_grace=0.2,
                                         **extra))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def user(url: str, nickname: str, tags: list[str] | None = None) -> Client:
    c = await Client.connect(url)
    c.phone = new_phone()  # type: ignore[attr-defined]
    await c.register(c.phone, interests=tags or ["music.jazz", "book.scifi"],  # type: ignore[attr-defined]
                     nickname=nickname)
    return c


async def device(url: str, of: Client) -> Client:
    """A second connection of the same user (another device, its own session)."""
    c = await Client.connect(url)
    await c.login(of.phone, "correct horse 1")  # type: ignore[attr-defined]
    return c


async def pair(url_a: str, url_b: str | None = None) -> tuple[Client, Client, str]:
    """Two users matched (two shared tags: a strong pair at once)."""
    a = await user(url_a, "甲")
    b = await user(url_b or url_a, "乙")
    await a.call("match.start")
    await b.call("match.start")
    conv = (await a.next_event("match.found", timeout=t(10)))["conv"]
    await b.next_event("match.found", timeout=t(10))
    return a, b, conv


async def result(c: Client, op: str, **fields: Any) -> dict[str, Any]:
    """The ``ok`` reply's fields."""
    reply = await c.call(op, **fields)
    return {k: v for k, v in reply.items() if k not in ("t", "rid")}


async def error(c: Client, op: str, **fields: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        await c.call(op, **fields)
    return info.value.reply


async def quiet(c: Client, kind: str, seconds: float = 0.4) -> None:
    """No ``kind`` event arrives within ``seconds``."""
    with pytest.raises(TimeoutError):
        await c.next_event(kind, timeout=seconds)


async def in_database(srv: ChatServer, text: str) -> bool:
    """Whether ``text`` is anywhere in the stored bytes (SQLite: the files; PostgreSQL:
    the messages table)."""
    config = srv.app.config
    if config.store == "postgres":
        conn = await asyncpg.connect(config.postgres_dsn)
        try:
            return bool(await conn.fetchval("SELECT count(*) FROM messages WHERE body LIKE $1",
                                            f"%{text}%"))
        finally:
            await conn.close()
    needle, db = text.encode(), Path(config.db_path)
    files = [db, db.with_name(db.name + "-wal")]
    return await asyncio.to_thread(
        lambda: any(needle in p.read_bytes() for p in files if p.exists()))


async def test_recall_reaches_every_connection_and_erases_the_text(server: ChatServer) -> None:
    url = url_of(server)
    a, b, conv = await pair(url)
    a2 = await device(url, a)
    sent = await a.call("msg.send", conv=conv, body=SECRET)
    assert (await b.next_event("msg"))["body"] == SECRET
    assert (await a2.next_event("msg"))["body"] == SECRET
    assert await in_database(server, SECRET)  # the check below can see stored text
    assert (await error(b, "msg.recall", conv=conv, id=sent["id"]))["reason"] == "not_yours"
    assert (await error(a, "msg.recall", conv=conv, id="nope"))["code"] == "not_found"
    assert await result(a, "msg.recall", conv=conv, id=sent["id"]) == {"id": sent["id"],
                                                                    "seq": sent["seq"]}
    expected = {"t": "msg.recalled", "conv": conv, "id": sent["id"], "seq": sent["seq"]}
    for c in (a, a2, b):
        assert await c.next_event("msg.recalled") == expected
    [entry] = (await b.call("history", conv=conv))["messages"]
    assert entry["recalled"] is True and entry["body"] == "" and entry["seq"] == sent["seq"]
    export = json.dumps(await a.call("account.export"), ensure_ascii=False)
    assert SECRET not in export
    assert not await in_database(server, SECRET)
    # Past the window the message stays.
    late = await a.call("msg.send", conv=conv, body="留下来")
    await asyncio.sleep(RECALL_WINDOW + 0.2)
    assert (await error(a, "msg.recall", conv=conv, id=late["id"]))["reason"] == "too_late"
    for c in (a, a2, b):
        await c.close()


async def test_hide_is_for_me_only_on_every_device(server: ChatServer) -> None:
    url = url_of(server)
    a, b, conv = await pair(url)
    b2 = await device(url, b)
    first = await a.call("msg.send", conv=conv, body="第一条")
    await a.call("msg.send", conv=conv, body="第二条")
    second = await a.call("msg.send", conv=conv, body="第三条")
    assert await result(b, "msg.hide", conv=conv, id=second["id"]) == {"id": second["id"],
                                                                     "seq": second["seq"]}
    hidden = await b2.next_event("msg.hidden")
    assert hidden == {"t": "msg.hidden", "conv": conv, "id": second["id"], "seq": second["seq"]}
    await quiet(a, "msg.hidden")  # nobody else hears of it
    assert [m["body"] for m in (await b2.call("history", conv=conv))["messages"]] == \
        ["第一条", "第二条"]
    assert [m["body"] for m in (await a.call("history", conv=conv))["messages"]] == \
        ["第一条", "第二条", "第三条"]
    [mine] = [c for c in (await b.call("convs"))["convs"] if c["conv"] == conv]
    assert mine["last"]["body"] == "第二条" and mine["unread"] == 2
    [theirs] = [c for c in (await a.call("convs"))["convs"] if c["conv"] == conv]
    assert theirs["last"]["body"] == "第三条"
    assert (await error(b, "msg.hide", conv=conv, id="nope"))["code"] == "not_found"
    stranger = await user(url, "丙", ["pet.cat"])
    assert (await error(stranger, "msg.hide", conv=conv, id=first["id"]))["code"] == "forbidden"
    for c in (a, b, b2, stranger):
        await c.close()


async def test_replies_carry_a_quote_that_follows_a_recall(server: ChatServer) -> None:
    url = url_of(server)
    a, b, conv = await pair(url)
    question = await a.call("msg.send", conv=conv, body="周末去看展吗？")
    await b.next_event("msg")
    answer = await b.call("msg.send", conv=conv, body="好啊", reply_to=question["id"])
    got = await a.next_event("msg")
    assert got["reply_to"] == question["id"]
    assert got["quote"] == {"id": question["id"], "seq": question["seq"],
                            "from": a.user["id"], "body": "周末去看展吗？"}  # type: ignore[index]
    await a.call("msg.recall", conv=conv, id=question["id"])
    history = (await b.call("history", conv=conv))["messages"]
    reply = next(m for m in history if m["id"] == answer["id"])
    assert reply["quote"]["recalled"] is True and reply["quote"]["body"] == ""
    # Only a message of the same conversation can be quoted.
    group = await a.call("msg.send", conv="g:music.jazz", body="群里的话")
    for target in (group["id"], "nope"):
        refused = await error(b, "msg.send", conv=conv, body="x", reply_to=target)
        assert (refused["code"], refused["field"]) == ("bad_request", "reply_to")
    for c in (a, b):
        await c.close()


async def test_delivered_live_and_after_being_offline(server: ChatServer) -> None:
    url = url_of(server)
    a, b, conv = await pair(url)
    sent = await a.call("msg.send", conv=conv, body="在吗")
    assert await a.next_event("delivered", timeout=t(5)) == {"t": "delivered", "conv": conv,
                                                             "seq": sent["seq"]}
    await quiet(b, "delivered")  # the receiver is not told of its own receipt
    token = b.token
    await b.close()
    await asyncio.sleep(0.3)
    await a.call("msg.send", conv=conv, body="人呢")
    last = await a.call("msg.send", conv=conv, body="看到回我")
    await quiet(a, "delivered")  # nobody has received them yet
    b = await Client.connect(url)
    await b.auth(token)
    [entry] = [c for c in (await a.call("convs"))["convs"] if c["conv"] == conv]
    assert (entry["peer_delivered_seq"], entry["peer_read_seq"]) == (sent["seq"], 0)
    assert len((await b.call("history", conv=conv, after=sent["seq"]))["messages"]) == 2
    assert await a.next_event("delivered", timeout=t(5)) == {"t": "delivered", "conv": conv,
                                                             "seq": last["seq"]}
    await b.call("history", conv=conv)  # read again: the mark does not move, no new event
    await quiet(a, "delivered")
    await b.call("read", conv=conv, seq=last["seq"])
    assert (await a.next_event("read"))["seq"] == last["seq"]
    for c in (a, b):
        await c.close()


async def test_unread_counts_only_what_is_worth_reading(server: ChatServer) -> None:
    url = url_of(server)
    tags = ["film.movie"]
    me = await user(url, "我", tags)
    friend = await user(url, "友", tags)
    pest = await user(url, "烦", tags)
    group = "g:film.movie"
    await me.call("msg.send", conv=group, body="我自己说的")
    keep = await friend.call("msg.send", conv=group, body="有意思")
    gone = await friend.call("msg.send", conv=group, body="说错了")
    hide = await friend.call("msg.send", conv=group, body="不想看")
    await pest.call("msg.send", conv=group, body="广告")
    await me.call("block", user=pest.user["id"])  # type: ignore[index]
    await friend.call("msg.recall", conv=group, id=gone["id"])
    await me.call("msg.hide", conv=group, id=hide["id"])
    [entry] = [c for c in (await me.call("convs"))["convs"] if c["conv"] == group]
    assert entry["unread"] == 1
    assert entry["last"]["id"] == gone["id"] and entry["last"]["recalled"] is True
    await me.call("read", conv=group, seq=keep["seq"])
    [entry] = [c for c in (await me.call("convs"))["convs"] if c["conv"] == group]
    assert entry["unread"] == 0
    for c in (me, friend, pest):
        await c.close()


async def test_conversation_list_and_mutes(server: ChatServer) -> None:
    url = url_of(server)
    a, b, conv = await pair(url)
    a2 = await device(url, a)
    # The list is ordered by the last message's millisecond: the sends must not share one.
    await b.call("msg.send", conv=conv, body="你好呀")
    await asyncio.sleep(0.005)
    await a.call("msg.send", conv="g:book.scifi", body="三体第二部")
    await asyncio.sleep(0.005)
    await a.call("msg.send", conv="g:music.jazz", body="最近在听什么")
    convs = (await a2.call("convs"))["convs"]
    assert [c["conv"] for c in convs] == ["g:music.jazz", "g:book.scifi", conv]
    direct = convs[2]
    assert direct["peer"] == {"id": b.user["id"], "nickname": "乙",  # type: ignore[index]
                              "online": True, "avatar": None}
    assert direct["last"]["body"] == "你好呀" and direct["unread"] == 1
    assert direct["muted_until"] == 0 and "name" not in direct
    assert convs[0]["name"] and convs[0]["peer"] is None and convs[0]["unread"] == 0
    until = (await a.call("ping"))["ts"] + 3_600_000
    assert await result(a, "conv.mute", conv=conv, until=until) == {"until": until}
    assert await a2.next_event("conv.muted") == {"t": "conv.muted", "conv": conv,
                                                 "until": until}
    [entry] = [c for c in (await a2.call("convs"))["convs"] if c["conv"] == conv]
    assert entry["muted_until"] == until
    [theirs] = [c for c in (await b.call("convs"))["convs"] if c["conv"] == conv]
    assert theirs["muted_until"] == 0  # a mute is the muter's own
    assert await result(a, "conv.mute", conv=conv, until=0) == {"until": 0}
    [entry] = [c for c in (await a.call("convs"))["convs"] if c["conv"] == conv]
    assert entry["muted_until"] == 0
    assert (await error(a, "conv.mute", conv=conv, until=-5))["field"] == "until"
    await b.close()
    await a.next_event("presence", timeout=t(5))  # offline, after the grace
    [entry] = [c for c in (await a.call("convs"))["convs"] if c["conv"] == conv]
    assert entry["peer"]["online"] is False
    await a.call("block", user=entry["peer"]["id"])
    for c in (a, a2):
        await c.close()


async def test_profiles_name_the_people_you_share_a_conversation_with(server: ChatServer) -> None:
    url = url_of(server)
    me = await user(url, "我", ["pet.dog"])
    mate = await user(url, "狗友", ["pet.dog"])
    stranger = await user(url, "路人", ["food.tea"])
    pest = await user(url, "烦人", ["pet.dog"])
    await me.call("block", user=pest.user["id"])  # type: ignore[index]
    ids = [c.user["id"] for c in (me, mate, stranger, pest)]  # type: ignore[index]
    got = (await me.call("profiles", users=[*ids, "nobody"]))["users"]
    assert sorted(got) == sorted(ids[:2])  # a stranger, a blocked user, unknown ids: left out
    assert got[ids[1]]["nickname"] == "狗友" and "phone" not in got[ids[1]]
    assert (await error(me, "profiles", users=["x"] * 101))["field"] == "users"
    for c in (me, mate, stranger, pest):
        await c.close()


@pytest.fixture
async def two_nodes(config: Config, pg_dsn: str, prefix: str) -> AsyncIterator[list[str]]:
    """Two in-process nodes sharing Redis (broker, presence, match queue) and PostgreSQL."""
    servers = [ChatServer(dataclasses.replace(
        config, data_dir=config.data_dir / f"n{i}" if config.data_dir else None,
        broker="redis", redis_url=REDIS_URL, key_prefix=prefix, node_id=f"n{i}",
        store="postgres", postgres_dsn=pg_dsn)) for i in range(2)]
    for srv in servers:
        await srv.start()
    try:
        yield [url_of(srv) for srv in servers]
    finally:
        for srv in servers:
            await srv.stop()


async def test_recall_hide_and_delivered_across_nodes(two_nodes: list[str]) -> None:
    n1, n2 = two_nodes
    a, b, conv = await pair(n1, n2)
    a_elsewhere = await device(n2, a)
    sent = await a.call("msg.send", conv=conv, body=SECRET)
    assert (await b.next_event("msg"))["body"] == SECRET
    assert await a.next_event("delivered", timeout=t(5)) == {"t": "delivered", "conv": conv,
                                                             "seq": sent["seq"]}
    assert (await a_elsewhere.next_event("delivered"))["seq"] == sent["seq"]
    await a.call("msg.recall", conv=conv, id=sent["id"])
    for c in (b, a_elsewhere):
        assert (await c.next_event("msg.recalled"))["id"] == sent["id"]
    other = await a.call("msg.send", conv=conv, body="再说一遍")
    await a.call("msg.hide", conv=conv, id=other["id"])
    assert (await a_elsewhere.next_event("msg.hidden"))["id"] == other["id"]
    for c in (a, b, a_elsewhere):
        await c.close()
