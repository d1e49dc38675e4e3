"""Interest groups, 1:1 matching and chat, end to end with real clients on a real server."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from chatd.client import Client
from chatd.server import ChatServer
from tests.conftest import new_phone, registered, t, url_of


async def matched(url: str, tags_a: list[str], tags_b: list[str],
                  **kw: object) -> tuple[Client, Client, dict, dict]:
    a = await registered(url, tags_a, nickname="甲")
    b = await registered(url, tags_b, nickname="乙")
    await a.call("match.start", **kw)
    await b.call("match.start", **kw)
    fa = await a.next_event("match.found", timeout=t(10))
    fb = await b.next_event("match.found", timeout=t(10))
    return a, b, fa, fb


async def test_match_on_shared_tag_and_chat_both_ways(url: str) -> None:
    a, b, fa, fb = await matched(url, ["music.jazz", "pet.cat"], ["pet.cat", "music.jazz"])
    assert fa["conv"] == fb["conv"] and fa["conv"].startswith("d:")
    assert fa["peer"] == {"id": b.user["id"], "nickname": "乙",  # type: ignore[index]
                          "avatar": None}
    assert fa["shared"] == ["music.jazz", "pet.cat"]
    conv = fa["conv"]
    sent = await a.call("msg.send", conv=conv, body="你好")
    assert sent["seq"] == 1 and sent["id"] and sent["ts"] > 0
    got = await b.next_event("msg")
    assert got == {"t": "msg", "conv": conv, "id": sent["id"], "seq": 1,
                   "from": a.user["id"], "body": "你好", "ts": sent["ts"]}  # type: ignore[index]
    await b.call("msg.send", conv=conv, body="hi")
    assert (await a.next_event("msg"))["seq"] == 2
    await b.call("read", conv=conv, seq=2)
    receipt = await a.next_event("read")
    assert receipt["seq"] == 2 and receipt["user"] == b.user["id"]  # type: ignore[index]
    await a.call("typing", conv=conv)
    assert (await b.next_event("typing"))["user"] == a.user["id"]  # type: ignore[index]
    for c in (a, b):
        await c.close()


async def test_no_shared_tag_matches_randomly_only_after_widening(url: str) -> None:
    a = await registered(url, ["sport.yoga"])
    b = await registered(url, ["tech.ai"])
    await a.call("match.start")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await b.call("match.start")
    fa = await a.next_event("match.found", timeout=t(10))
    waited = loop.time() - started
    assert fa["shared"] == [] and fa["level"] == "random"
    assert waited >= 1.9  # match_random_after is 2 s in the test config
    for c in (a, b):
        await c.close()


async def test_cancel_and_disconnect_leave_the_queue(server: ChatServer) -> None:
    url = url_of(server)
    a = await registered(url, ["book.scifi"])
    await a.call("match.start")
    await a.call("match.cancel")
    await a.call("match.cancel")  # idempotent
    assert a.user["id"] not in server.app.matching.queue.waiting  # type: ignore[index]
    await a.call("match.start")
    await a.close()
    for _ in range(50):
        if a.user["id"] not in server.app.matching.queue.waiting:  # type: ignore[index]
            break
        await asyncio.sleep(0.02)
    assert a.user["id"] not in server.app.matching.queue.waiting  # type: ignore[index]


async def test_blocked_users_never_match(server: ChatServer) -> None:
    url = url_of(server)
    a = await registered(url, ["food.hotpot"])
    b = await registered(url, ["food.hotpot"])
    await a.call("block", user=b.user["id"])  # type: ignore[index]
    await a.call("match.start")
    await b.call("match.start")
    await asyncio.sleep(2.6)  # past the random widening too
    assert a.events.empty() and b.events.empty()
    assert len(server.app.matching.queue.waiting) == 2
    for c in (a, b):
        await c.close()


async def test_prefs_are_validated_and_honoured(url: str) -> None:
    a = await registered(url, ["pet.dog"], gender="male")
    r = await a.request("match.start", prefs={"gender": "robot"})
    assert r["code"] == "bad_request"
    b = await registered(url, ["pet.dog"], gender="male")
    await a.call("match.start", prefs={"gender": "female"})
    await b.call("match.start")
    await asyncio.sleep(2.6)
    assert a.events.empty()
    c = await registered(url, ["pet.dog"], gender="female")
    await c.call("match.start")
    assert (await a.next_event("match.found", timeout=t(5)))["peer"]["id"] == \
        c.user["id"]  # type: ignore[index]
    for x in (a, b, c):
        await x.close()


async def test_group_messages_reach_every_member_and_blocks_hide_sender(url: str) -> None:
    a = await registered(url, ["anime.cosplay"])
    b = await registered(url, ["anime.cosplay", "art.drawing"])
    c = await registered(url, ["anime.cosplay"])
    other = await registered(url, ["art.drawing"])
    await c.call("block", user=a.user["id"])  # type: ignore[index]
    sent = await a.call("msg.send", conv="g:anime.cosplay", body="大家好")
    assert (await b.next_event("msg"))["id"] == sent["id"]
    await b.call("msg.send", conv="g:anime.cosplay", body="欢迎")
    assert (await c.next_event("msg"))["body"] == "欢迎"  # the blocked sender's was skipped
    assert other.events.empty()
    convs = (await b.call("convs"))["convs"]
    group = next(x for x in convs if x["conv"] == "g:anime.cosplay")
    assert group["kind"] == "group" and group["last_seq"] >= 2
    # A non-member is refused.
    r = await other.request("msg.send", conv="g:anime.cosplay", body="hi")
    assert r["code"] == "forbidden"
    assert (await other.request("history", conv="g:anime.cosplay"))["code"] == "forbidden"
    # Changing interests changes memberships at once.
    await other.call("profile.update", interests=["anime.cosplay"])
    await a.call("msg.send", conv="g:anime.cosplay", body="新人好")
    assert (await other.next_event("msg"))["body"] == "新人好"
    for x in (a, b, c, other):
        await x.close()


async def test_filter_actions_on_messages(server: ChatServer) -> None:
    url = url_of(server)
    a = await registered(url, ["tech.gadgets"])
    b = await registered(url, ["tech.gadgets"])
    conv = "g:tech.gadgets"
    r = await a.request("msg.send", conv=conv, body="你是傻-逼")
    assert r["code"] == "filtered" and r["category"] == "abuse"
    masked = await a.call("msg.send", conv=conv, body="来加微信吧")
    assert masked["body"] == "来***吧"  # the sender learns what was stored
    assert (await b.next_event("msg"))["body"] == "来***吧"
    await a.call("msg.send", conv=conv, body="聊聊敏感话题")
    assert (await b.next_event("msg"))["body"] == "聊聊敏感话题"
    history = (await b.call("history", conv=conv))["messages"]
    assert [m["body"] for m in history] == ["来***吧", "聊聊敏感话题"]  # nothing blocked stored
    assert history[0]["seq"] == masked["seq"] == 1
    flagged = await server.app.store._run(  # type: ignore[attr-defined]
        lambda db: db.execute("SELECT body FROM messages WHERE flagged=1").fetchall())
    assert [f[0] for f in flagged] == ["聊聊敏感话题"]
    for x in (a, b):
        await x.close()


async def test_offline_peer_catches_up_with_history(url: str) -> None:
    a, b, fa, _ = await matched(url, ["travel.camping"], ["travel.camping"])
    conv = fa["conv"]
    await b.call("msg.send", conv=conv, body="before")
    last = (await a.next_event("msg"))["seq"]
    token = a.token
    await a.close()
    sent = [await b.call("msg.send", conv=conv, body=f"m{i}") for i in range(5)]
    a2 = await Client.connect(url)
    await a2.auth(token)  # type: ignore[arg-type]
    missed = (await a2.call("history", conv=conv, after=last))["messages"]
    assert [m["body"] for m in missed] == [f"m{i}" for i in range(5)]
    assert [m["seq"] for m in missed] == [s["seq"] for s in sent] == list(range(2, 7))
    convs = (await a2.call("convs"))["convs"]
    assert next(c for c in convs if c["conv"] == conv)["unread"] == 6
    for x in (a2, b):
        await x.close()


async def test_retried_cid_stores_nothing_new(url: str) -> None:
    a = await registered(url, ["film.documentary"])
    first = await a.call("msg.send", conv="g:film.documentary", body="x", cid="client-1")
    again = await a.call("msg.send", conv="g:film.documentary", body="x", cid="client-1")
    assert first == {**again, "rid": first["rid"]}
    history = (await a.call("history", conv="g:film.documentary"))["messages"]
    assert len(history) == 1
    await a.close()


async def test_leaving_a_direct_conversation(url: str) -> None:
    a, b, fa, _ = await matched(url, ["game.mahjong"], ["game.mahjong"])
    conv = fa["conv"]
    await a.call("conv.leave", conv=conv)
    left = await b.next_event("conv.left")
    assert left["user"] == a.user["id"]  # type: ignore[index]
    r = await b.request("msg.send", conv=conv, body="hello?")
    assert r["code"] == "forbidden" and r["reason"] == "closed"
    assert (await a.request("msg.send", conv=conv, body="x"))["code"] == "forbidden"
    for x in (a, b):
        await x.close()


async def test_blocked_user_cannot_message_blocker(url: str) -> None:
    a, b, fa, _ = await matched(url, ["book.poetry"], ["book.poetry"])
    await a.call("block", user=b.user["id"])  # type: ignore[index]
    r = await b.request("msg.send", conv=fa["conv"], body="hey")
    assert r["code"] == "forbidden" and r["reason"] == "blocked"
    await a.call("unblock", user=b.user["id"])  # type: ignore[index]
    assert (await b.call("msg.send", conv=fa["conv"], body="hey"))["seq"] == 1
    assert (await a.request("block", user="nobody"))["code"] == "not_found"
    for x in (a, b):
        await x.close()


async def test_seq_has_no_gaps_under_concurrent_senders(url: str) -> None:
    clients = [await registered(url, ["photo.vlog"]) for _ in range(10)]
    replies = await asyncio.gather(*(
        c.call("msg.send", conv="g:photo.vlog", body=f"{i}-{j}", cid=f"{i}-{j}")
        for j in range(10) for i, c in enumerate(clients)))
    assert sorted(r["seq"] for r in replies) == list(range(1, 101))
    history = (await clients[0].call("history", conv="g:photo.vlog", limit=200))["messages"]
    assert [m["seq"] for m in history] == list(range(1, 101))
    for c in clients:
        await c.close()


def test_sigkill_after_acknowledged_sends_loses_nothing(node_process, tmp_path: Path) -> None:
    data = tmp_path / "data"
    node = node_process(data_dir=data)

    async def send_many(url: str) -> tuple[str, list[dict]]:
        c = await Client.connect(url)
        token = await c.register(new_phone(), interests=["music.folk"])
        acks = await asyncio.gather(*(
            c.call("msg.send", conv="g:music.folk", body=f"n{i}", cid=f"k{i}")
            for i in range(16)))
        return token, acks

    token, acks = asyncio.run(send_many(node.url))
    node.stop(signal.SIGKILL)  # right after the acknowledgements: no graceful flush
    node2 = node_process(data_dir=data)

    async def check(url: str) -> list[dict]:
        async with await Client.connect(url) as c:
            await c.auth(token)
            return (await c.call("history", conv="g:music.folk", limit=200))["messages"]

    history = asyncio.run(check(node2.url))
    assert {m["id"] for m in history} >= {a["id"] for a in acks}
    assert [m["seq"] for m in history] == list(range(1, len(history) + 1))


async def test_presence_only_for_shared_conversations_without_blocks(url: str) -> None:
    me = await registered(url, ["sport.swimming"])
    mate = await registered(url, ["sport.swimming"])
    blocker = await registered(url, ["sport.swimming"])
    blocked = await registered(url, ["sport.swimming"])
    stranger = await registered(url, ["sport.cycling"])
    await blocker.call("block", user=me.user["id"])  # type: ignore[index]
    await me.call("block", user=blocked.user["id"])  # type: ignore[index]
    ids = {c: c.user["id"] for c in (me, mate, blocker, blocked, stranger)}  # type: ignore[index]
    online = (await me.call("presence", users=list(ids.values())))["online"]
    assert online == {ids[me]: True, ids[mate]: True, ids[blocker]: False,
                      ids[blocked]: False, ids[stranger]: False}
    # The stranger learns nothing about anyone (the same answer as for an offline user).
    assert not any((await stranger.call("presence", users=[ids[mate], ids[me]]))[
        "online"].values())
    for c in ids:
        await c.close()


async def test_block_while_both_wait_stops_the_match(server: ChatServer) -> None:
    url = url_of(server)
    a = await registered(url, ["sport.badminton"], nickname="甲")
    b = await registered(url, ["tech.programming"], nickname="乙")  # random after 2 s
    await a.call("match.start")
    await b.call("match.start")
    await a.call("block", user=b.user["id"])  # type: ignore[index]
    await asyncio.sleep(2.6)  # past the random widening
    assert a.events.empty() and b.events.empty()
    assert len(server.app.matching.queue.waiting) == 2  # both still waiting
    for c in (a, b):
        await c.close()


async def test_history_and_unread_apply_the_readers_blocks(url: str) -> None:
    me = await registered(url, ["food.baking"])
    pest = await registered(url, ["food.baking"])
    friend = await registered(url, ["food.baking"])
    await me.call("block", user=pest.user["id"])  # type: ignore[index]
    await pest.call("msg.send", conv="g:food.baking", body="spam")
    await friend.call("msg.send", conv="g:food.baking", body="hello")
    history = (await me.call("history", conv="g:food.baking"))["messages"]
    assert [m["body"] for m in history] == ["hello"]
    convs = (await me.call("convs"))["convs"]
    assert next(c for c in convs if c["conv"] == "g:food.baking")["unread"] == 1
    for c in (me, pest, friend):
        await c.close()
