"""Moderators end to end: word lists (one node, two nodes, the admin CLI, restarts), the
review and report queues, mutes and bans, and ``forbidden`` for everyone else."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chatd.client import Client, ClientError
from chatd.server import ChatServer
from chatd.services.registry import MOD_OPS
from chatd.store import UserId
from tests.conftest import new_phone, registered, t
from tests.test_scaleout import cluster


async def moderator(server: ChatServer, url: str) -> Client:
    m = await registered(url, nickname="管理员")
    assert m.user is not None
    await server.app.store.set_role(UserId(m.user["id"]), "moderator")
    return m


async def code_of(c: Client, op: str, **fields: Any) -> str:
    reply = await c.request(op, **fields)
    return str(reply.get("code", reply["t"]))


async def test_moderator_word_lists_apply_at_once(server: ChatServer, url: str) -> None:
    mod = await moderator(server, url)
    user = await registered(url)
    assert (await user.call("msg.send", conv="g:music.rock", body="你个新坏词"))["seq"] == 1
    added = await mod.call("mod.words.add", word="新坏词", category="abuse", action="block")
    assert added["version"] >= 1
    err = await user.request("msg.send", conv="g:music.rock", body="你个新坏词")
    assert (err["code"], err["category"]) == ("filtered", "abuse")
    # Dry run with offsets into the original text.
    dry = await mod.call("mod.words.check", text="你个新 坏词!")
    assert dry["blocked"] and [(m["start"], m["end"]) for m in dry["matches"]] == [(2, 6)]
    listed = await mod.call("mod.words.list", q="坏词")
    assert {"word": "新坏词", "category": "abuse", "action": "block"} in listed["entries"]
    assert listed["version"] == added["version"]
    # The allow-list wins over an entry; removing it again restores the entry.
    await mod.call("mod.allow.add", word="新坏词典")
    assert (await user.call("msg.send", conv="g:music.rock", body="买本新坏词典"))["seq"] == 2
    await mod.call("mod.allow.remove", word="新坏词典")
    assert await code_of(user, "msg.send", conv="g:music.rock", body="买本新坏词典") == "filtered"
    removed = await mod.call("mod.words.remove", word="新坏词")
    assert removed["version"] > added["version"]
    assert (await user.call("msg.send", conv="g:music.rock", body="你个新坏词"))["seq"] == 3
    version = await mod.call("mod.words.version")
    assert version["version"] == removed["version"] and version["size"] >= 3
    # A bad change is refused and changes nothing.
    bad = await mod.request("mod.words.add", word="x", action="explode")
    assert (bad["code"], bad["field"]) == ("bad_request", "action")
    assert (await mod.call("mod.words.version"))["version"] == removed["version"]
    audit = (await mod.call("mod.audit"))["entries"]
    assert [e["action"] for e in audit[:4]] == ["words.remove", "words.allow_remove",
                                                "words.allow_add", "words.add"]
    assert audit[0]["actor"] == mod.user["id"] and audit[0]["detail"] == "新坏词"  # type: ignore[index]
    for c in (mod, user):
        await c.close()


async def test_every_mod_op_is_forbidden_to_users(url: str) -> None:
    user = await registered(url)
    fields = {"word": "x", "text": "x", "queue": "review", "item": "m:x", "action": "dismiss",
              "id": "x",
              "user": "nobody", "duration": 60}
    assert len(MOD_OPS) >= 14
    for op in MOD_OPS:
        reply = await user.request(op, **fields)
        assert (reply["t"], reply["code"], reply["reason"]) == ("err", "forbidden",
                                                                 "not_moderator"), op
    anonymous = await Client.connect(url)
    assert await code_of(anonymous, "mod.words.add", word="x") == "unauthorized"
    for c in (user, anonymous):
        await c.close()


async def test_report_then_ban_closes_sessions_and_refuses_login(server: ChatServer,
                                                                 url: str) -> None:
    mod = await moderator(server, url)
    reporter = await registered(url)
    phone = new_phone()
    bad = await Client.connect(url)
    await bad.register(phone, password="bad password 1", nickname="捣蛋")
    bad_id = bad.user["id"]  # type: ignore[index]
    other_conn = await Client.connect(url)
    await other_conn.auth(bad.token)  # type: ignore[arg-type]
    first = await reporter.call("report", kind="user", target=bad_id, reason="harassment",
                                text="骂人")
    again = await reporter.call("report", kind="user", target=bad_id, reason="spam")
    assert again["report"]["id"] == first["report"]["id"] and again["report"]["count"] == 2
    items = (await mod.call("mod.queue", queue="reports"))["items"]
    item = next(i for i in items if i["user"] == bad_id)
    assert (item["reason"], item["text"], item["reporter"]) == ("spam", "骂人",
                                                                 reporter.user["id"])  # type: ignore[index]
    done = await mod.call("mod.resolve", item=item["item"], action="ban", note="repeat abuse")
    assert done["resolved"] == 1 and done["until"] > time.time() * 1000 + 10 * 365 * 86400e3
    for c in (bad, other_conn):
        await asyncio.wait_for(c.ws.wait_closed(), t(5))
        assert c.ws.close_code == 4001
    async with await Client.connect(url) as again_c:
        refused = await again_c.request("login", phone=phone, password="bad password 1")
        assert (refused["code"], refused["reason"]) == ("forbidden", "banned")
        assert (await again_c.request("auth", token=bad.token))["code"] in ("unauthorized",
                                                                            "forbidden")
    mine = (await reporter.call("reports.mine"))["reports"]
    assert [(r["state"], r["resolution"]) for r in mine] == [("resolved", "ban")]
    assert "reporter" not in mine[0] and "snapshot" not in mine[0]
    await mod.call("mod.unban", user=bad_id)
    async with await Client.connect(url) as back:
        await back.login(phone, "bad password 1")
    for c in (mod, reporter):
        await c.close()


async def test_mute_refuses_sends_until_it_ends(server: ChatServer, url: str) -> None:
    mod = await moderator(server, url)
    user = await registered(url)
    muted = await mod.call("mod.mute", user=user.user["id"], duration=1)  # type: ignore[index]
    notice = await user.next_event("mod.notice")
    assert notice["kind"] == "mute" and notice["until"] == muted["until"]
    err = await user.request("msg.send", conv="g:music.rock", body="hello")
    assert (err["code"], err["reason"], err["until"]) == ("forbidden", "muted", muted["until"])
    assert (await user.request("post.create", body="hi"))["reason"] == "muted"
    await asyncio.sleep(max(0.0, muted["until"] / 1000 - time.time()) + 0.05)
    assert (await user.call("msg.send", conv="g:music.rock", body="hello"))["seq"] >= 1
    # A moderator cannot mute another moderator (revoke the role first).
    other_mod = await moderator(server, url)
    assert await code_of(mod, "mod.mute", user=other_mod.user["id"],  # type: ignore[index]
                         duration=60) == "forbidden"
    for c in (mod, user, other_mod):
        await c.close()


async def test_review_queue_delete_and_warn(server: ChatServer, url: str) -> None:
    mod = await moderator(server, url)
    user = await registered(url)
    sent = await user.call("msg.send", conv="g:music.rock", body="聊聊敏感话题")
    post = (await user.call("post.create", body="敏感话题帖子", group="g:music.rock"))["post"]
    items = (await mod.call("mod.queue", queue="review"))["items"]
    assert {i["item"] for i in items} >= {"m:" + sent["id"], "p:" + post["id"]}
    assert next(i for i in items if i["id"] == sent["id"])["where"] == "g:music.rock"
    await mod.call("mod.resolve", item="m:" + sent["id"], action="delete")
    event = await user.next_event("msg.deleted")
    assert (event["id"], event["seq"]) == (sent["id"], sent["seq"])
    history = (await user.call("history", conv="g:music.rock"))["messages"]
    gone = next(m for m in history if m["id"] == sent["id"])
    assert gone["body"] == "" and gone["deleted"] is True
    await mod.call("mod.resolve", item="p:" + post["id"], action="warn", note="注意言辞")
    warning = await user.next_event("mod.notice")
    assert (warning["kind"], warning["reason"]) == ("warn", "注意言辞")
    left = {i["item"] for i in (await mod.call("mod.queue", queue="review"))["items"]}
    assert not left & {"m:" + sent["id"], "p:" + post["id"]}
    assert await code_of(mod, "mod.resolve", item="p:nope", action="dismiss") == "not_found"
    for c in (mod, user):
        await c.close()


def _admin(data_dir: Path, wordlist: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatd", "admin", "--data-dir", str(data_dir),
                           "--wordlists", str(wordlist), *args],
                          capture_output=True, text=True, timeout=t(60), check=True)


async def _refused_within(c: Client, body: str, seconds: float) -> float:
    """Seconds until a message with ``body`` is refused as filtered."""
    start = time.monotonic()
    while True:
        reply = await c.request("msg.send", conv="g:music.rock", body=body)
        if reply.get("code") == "filtered":
            return time.monotonic() - start
        if time.monotonic() - start > seconds:
            pytest.fail(f"not filtered within {seconds} s")
        await asyncio.sleep(0.05)


def test_admin_cli_changes_a_running_node_and_survive_restart(node_process, tmp_path: Path,
                                                               wordlist: Path) -> None:
    data = tmp_path / "data"
    node = node_process(data_dir=data)

    async def scenario() -> None:
        async with await Client.connect(node.url) as c:
            await c.register(new_phone())
            await asyncio.to_thread(_admin, data, wordlist, "words", "add", "命令行词",
                                    "--category", "ads", "--action", "block")
            assert await _refused_within(c, "命令行词", t(2.5)) < t(2.5)
        out = await asyncio.to_thread(_admin, data, wordlist, "words", "export")
        assert "@category ads\n@action block\n" in out.stdout and "命令行词" in out.stdout
        assert "加微信" in out.stdout  # the base lists are part of the export

    asyncio.run(scenario())
    node.stop()
    again = node_process(data_dir=data)

    async def after_restart() -> None:
        async with await Client.connect(again.url) as c:
            await c.register(new_phone())
            reply = await c.request("msg.send", conv="g:music.rock", body="命令行词")
            assert (reply["code"], reply["category"]) == ("filtered", "ads")

    asyncio.run(after_restart())


def test_word_change_reaches_the_other_node_within_a_second(node_process, prefix: str,
                                                            tmp_path: Path,
                                                            wordlist: Path) -> None:
    n1, n2 = cluster(node_process, prefix)

    async def scenario() -> None:
        phone = new_phone()
        mod = await Client.connect(n1.url)
        await mod.register(phone)
        await asyncio.to_thread(_admin, tmp_path / "data", wordlist, "grant-moderator", phone)
        user = await Client.connect(n2.url)
        await user.register(new_phone())
        await mod.call("mod.words.add", word="跨节点词", category="abuse")
        took = await _refused_within(user, "跨节点词", t(1.0))
        assert took < t(1.0)
        with pytest.raises(ClientError):
            await mod.call("msg.send", conv="g:music.rock", body="跨节点词")
        for c in (mod, user):
            await c.close()

    asyncio.run(scenario())


async def test_mute_covers_profile_typing_and_reports(server: ChatServer, url: str) -> None:
    mod = await moderator(server, url)
    user = await registered(url)
    other = await registered(url)
    sent = await other.call("msg.send", conv="g:music.rock", body="hi")
    muted = await mod.call("mod.mute", user=user.user["id"], duration=60)  # type: ignore[index]
    for op, fields in (("profile.update", {"nickname": "新名字"}),
                       ("profile.update", {"bio": "新简介"}),
                       ("typing", {"conv": "g:music.rock"}),
                       ("report", {"kind": "message", "target": sent["id"], "reason": "spam"})):
        err = await user.request(op, **fields)
        assert (err["code"], err.get("reason"), err.get("until")) == \
            ("forbidden", "muted", muted["until"]), (op, fields)
    # Interests are no published text: still allowed.
    await user.call("profile.update", interests=["music.rock", "pet.cat"])
    for c in (mod, user, other):
        await c.close()


async def test_each_reporter_hears_the_outcome(server: ChatServer, url: str) -> None:
    mod = await moderator(server, url)
    first, second, bystander = [await registered(url) for _ in range(3)]
    target = await registered(url)
    target_id = target.user["id"]  # type: ignore[index]
    mine = (await first.call("report", kind="user", target=target_id, reason="spam"))["report"]
    theirs = (await second.call("report", kind="user", target=target_id,
                                reason="harassment"))["report"]
    item = next(i for i in (await mod.call("mod.queue", queue="reports"))["items"]
                if i["id"] == mine["id"])
    assert (await mod.call("mod.resolve", item=item["item"], action="warn"))["resolved"] == 2
    for c, report in ((first, mine), (second, theirs)):
        assert await c.next_event("report.resolved", timeout=t(5)) == {
            "t": "report.resolved", "id": report["id"], "kind": "user", "target": target_id,
            "resolution": "warn"}
    # A message report, dismissed: its reporter hears it; nobody else hears anything.
    sent = await target.call("msg.send", conv="g:music.rock", body="普通消息")
    report = (await first.call("report", kind="message", target=sent["id"],
                               reason="spam"))["report"]
    await mod.call("mod.resolve", item="r:" + report["id"], action="dismiss")
    event = await first.next_event("report.resolved", timeout=t(5))
    assert (event["id"], event["kind"], event["target"], event["resolution"]) == (
        report["id"], "message", sent["id"], "dismiss")
    for c in (second, bystander, target):
        with pytest.raises(TimeoutError):
            await c.next_event("report.resolved", timeout=t(0.3))
    for c in (mod, first, second, bystander, target):
        await c.close()
