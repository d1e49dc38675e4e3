"""Users' rights end to end: consents, export, deletion, and no personal data in any log."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import secrets
import time
from pathlib import Path

import pytest

from chatd.client import Client
from chatd.config import Config
from chatd.server import ChatServer
from tests.conftest import new_phone, registered, t
from tests.test_chat_e2e import matched


async def test_consents_shown_by_me_and_export(url: str) -> None:
    a = await registered(url)
    me = await a.call("me")
    assert me["consents"] == {"marketing": False, "location": False, "search_history": True}
    got = await a.call("consent.set", marketing=True, search_history=False)
    assert got["consents"] == {"marketing": True, "location": False, "search_history": False}
    assert (await a.call("me"))["consents"] == got["consents"]
    exported = (await a.call("account.export"))["export"]["consents"]
    assert exported["marketing"]["value"] is True and exported["marketing"]["updated_at"] > 0
    assert exported["location"] == {"value": False, "updated_at": None}
    assert (await a.request("consent.set"))["code"] == "bad_request"
    await a.close()


async def test_export_holds_exactly_my_data(url: str) -> None:
    a = await Client.connect(url)
    a_phone = new_phone()
    await a.register(a_phone, nickname="导出者", interests=["music.rock"])
    b_phone = new_phone()
    b = await Client.connect(url)
    await b.register(b_phone, nickname="别人家", interests=["music.rock"])
    await a.call("msg.send", conv="g:music.rock", body="我的消息")
    await b.call("msg.send", conv="g:music.rock", body="别人的消息")
    await a.call("post.create", body="我的帖子")
    await b.call("post.create", body="别人的帖子")
    await a.call("search", q="别人家")
    await a.call("report", kind="user", target=b.user["id"], reason="spam")  # type: ignore[index]
    await a.call("block", user=b.user["id"])  # type: ignore[index]
    export = (await a.call("account.export"))["export"]
    assert export["profile"]["phone"].endswith(a_phone[-8:])
    assert export["profile"]["nickname"] == "导出者"
    assert [m["body"] for m in export["messages"]] == ["我的消息"]
    assert [p["body"] for p in export["posts"]] == ["我的帖子"]
    assert [h["q"] for h in export["search_history"]] == ["别人家"]
    assert [(r["kind"], r["reason"]) for r in export["reports"]] == [("user", "spam")]
    assert export["blocked_users"] == [b.user["id"]]  # type: ignore[index]
    assert export["interests"] == ["music.rock"] and len(export["sessions"]) == 1
    assert export["sessions"][0]["device"] == ""
    text = json.dumps(export, ensure_ascii=False)
    for foreign in ("别人的消息", "别人的帖子", b_phone[-8:], "1995-05-05x"):
        assert foreign not in text
    assert "token" not in text
    for c in (a, b):
        await c.close()


async def test_delete_account_erases_everything(url: str) -> None:
    phone = new_phone()
    a = await Client.connect(url)
    await a.register(phone, password="delete me 123", nickname="将删除",
                     interests=["music.rock"])
    second = await Client.connect(url)
    await second.auth(a.token)  # type: ignore[arg-type]
    b = await registered(url, ["music.rock"], nickname="留下的")
    sent = await a.call("msg.send", conv="g:music.rock", body="删除前的消息")
    await b.call("msg.send", conv="g:music.rock", body="回复")
    await a.call("post.create", body="删除前的帖子", group="g:music.rock")
    await a.call("search", q="留下的")
    await b.call("report", kind="user", target=a.user["id"], reason="spam")  # type: ignore[index]
    assert (await a.request("account.delete", password="wrong password"))["code"] \
        == "unauthorized"
    assert (await a.request("account.delete"))["code"] == "bad_request"
    await a.call("account.delete", password="delete me 123")
    for c in (a, second):
        await asyncio.wait_for(c.ws.wait_closed(), t(5))
        assert c.ws.close_code == 4001
    # Nothing of theirs in any later query; seqs stay gap-free (anonymised, not removed).
    history = (await b.call("history", conv="g:music.rock"))["messages"]
    assert [m["seq"] for m in history] == [1, 2]
    gone = history[0]
    assert (gone["id"], gone["from"], gone["body"], gone["deleted"]) == (sent["id"], "deleted",
                                                                         "", True)
    assert (await b.call("search", q="将删除"))["users"] == []
    assert (await b.call("search", q="删除前"))["posts"] == []
    assert (await b.call("feed", scope="group", group="g:music.rock"))["posts"] == []
    mine = (await b.call("reports.mine"))["reports"]
    assert mine[0]["resolution"] == "account_deleted" and mine[0]["target"].startswith("deleted")
    async with await Client.connect(url) as c:
        assert (await c.request("auth", token=a.token))["code"] == "unauthorized"
        assert (await c.request("login", phone=phone,
                                password="delete me 123"))["code"] == "unauthorized"
        await c.register(phone, nickname="新的我")  # the phone can register again
        fresh = (await c.call("account.export"))["export"]
        assert fresh["messages"] == [] and fresh["posts"] == [] and fresh["search_history"] == []
        assert fresh["profile"]["id"] != a.user["id"]  # type: ignore[index]
    await b.close()


async def test_delete_with_sms_code(url: str) -> None:
    phone = new_phone()
    a = await Client.connect(url)
    await a.register(phone)
    assert (await a.request("sms.send", phone=new_phone(), purpose="delete"))["code"] \
        == "forbidden"
    code = (await a.call("sms.send", phone=phone, purpose="delete"))["dev_code"]
    await a.call("account.delete", code=code)
    await asyncio.wait_for(a.ws.wait_closed(), t(5))
    async with await Client.connect(url) as anon:
        assert (await anon.request("sms.send", phone=phone, purpose="delete"))["code"] \
            == "forbidden"


def _secrets_in(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s and s in text]


async def _flow(url: str) -> list[str]:
    """Every kind of personal data through every new op; returns the secrets to look for."""
    phone_a, phone_b = new_phone(), new_phone()
    a = await Client.connect(url, "json")  # text frames: readable if a frame were logged
    sent = await a.call("sms.send", phone=phone_a, purpose="register")
    await a.call("register", phone=phone_a, code=sent["dev_code"], password="pw secret 123",
                 birthdate="1990-01-02", gender="male", interests=["music.rock"],
                 nickname="隐私甲")
    b = await Client.connect(url)
    token_b = await b.register(phone_b, nickname="隐私乙")
    await a.call("msg.send", conv="g:music.rock", body="绝密消息内容")
    await a.call("post.create", body="绝密帖子内容")
    await a.call("search", q="绝密搜索词")
    await a.call("report", kind="user", target=b.user["id"], reason="spam",  # type: ignore[index]
                 text="绝密举报内容")
    await a.call("consent.set", location=True)
    await a.call("account.export")
    await a.request("msg.send", conv="g:music.rock", body="傻逼绝密")
    await b.call("account.delete", password="correct horse 1")
    await a.close()
    return [phone_a, phone_a[-11:], phone_b, phone_b[-11:], sent["dev_code"], token_b,
            a.token or "", "绝密", "pw secret 123", "1990-01-02"]


async def test_no_personal_data_in_logs(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = await _flow(url)
    server_lines = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records
                             if r.name.startswith("chatd"))
    assert server_lines  # the run did log
    assert _secrets_in(server_lines, secrets) == []


def test_no_personal_data_in_a_node_log_file(node_process) -> None:
    node = node_process("--log-level", "DEBUG")
    secrets = asyncio.run(_flow(node.url))
    node.stop()
    text = node.log.read_text(encoding="utf-8", errors="replace")
    assert "listening" in text
    assert _secrets_in(text, secrets) == []
    assert not re.search(r"\+86\d{11}", text)


def _files_holding(data_dir: Path, markers: list[bytes]) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for path in data_dir.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            hits = [m for m in markers if m in raw]
            if hits:
                found[path.name] = hits
    return found


async def test_erased_account_leaves_no_bytes_in_the_data_dir(config: Config, url: str) -> None:
    """After ``account.delete`` no file under the data dir (main file, WAL, shm) holds any of
    the user's texts or phones, the phone they had before a ``phone.rebind`` included."""
    tag = secrets.token_hex(4)
    old_phone, new_phone_ = new_phone(), new_phone()
    texts = {k: f"{k}{tag}zq" for k in ("nick", "bio", "msgbody", "postbody", "searchq",
                                         "reportnote")}
    a = await Client.connect(url)
    await a.register(old_phone, password="erase me 123", nickname=texts["nick"],
                     interests=["music.rock"])
    b = await registered(url, ["music.rock"])
    await a.call("sms.send", phone=old_phone, purpose="login")  # a code of the old phone
    code = (await a.call("sms.send", phone=new_phone_, purpose="rebind"))["dev_code"]
    await a.call("phone.rebind", phone=new_phone_, code=code)
    await a.call("profile.update", bio=texts["bio"])
    for n in range(3):
        await a.call("msg.send", conv="g:music.rock", body=f"{texts['msgbody']}{n}")
    await a.call("post.create", body=texts["postbody"])
    await a.call("search", q=texts["searchq"])
    await a.call("report", kind="user", target=b.user["id"], reason="spam",  # type: ignore[index]
                 text=texts["reportnote"])
    markers = [s.encode() for s in (*texts.values(), old_phone, new_phone_)]
    assert _files_holding(config.data_dir, markers)  # the test sees the data before
    await a.call("account.delete", password="erase me 123")
    await asyncio.wait_for(a.ws.wait_closed(), t(5))
    await b.call("msg.send", conv="g:music.rock", body="life goes on")
    deadline = time.monotonic() + t(5)
    for _ in range(1000):  # the checkpoint follows the commit: poll the files
        left = _files_holding(config.data_dir, markers)
        if not left or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert left == {}
    await b.close()


async def test_export_shows_sms_codes_and_moderation_state(url: str) -> None:
    phone = new_phone()
    a = await Client.connect(url)
    await a.register(phone, nickname="导出码", interests=["music.rock"])
    await a.call("sms.send", phone=phone, purpose="login")
    flagged = await a.call("msg.send", conv="g:music.rock", body="说说敏感话题")
    await a.call("msg.send", conv="g:music.rock", body="平常")
    export = (await a.call("account.export"))["export"]
    codes = export["sms_codes"]
    assert [c["purpose"] for c in codes] == ["register", "login"]
    assert set(codes[0]) == {"purpose", "created_at", "expires_at", "used", "attempts"}
    assert codes[0]["used"] is True and codes[1]["used"] is False
    assert codes[1]["expires_at"] > codes[1]["created_at"] and codes[1]["attempts"] == 0
    by_id = {m["id"]: m for m in export["messages"]}
    assert by_id[flagged["id"]]["flagged"] is True
    assert [m["flagged"] for m in export["messages"] if m["id"] != flagged["id"]] == [False]
    assert all(p["flagged"] is False for p in export["posts"])
    await a.close()


async def test_export_keeps_a_left_direct_conversation(url: str) -> None:
    a, b, fa, _ = await matched(url, ["pet.cat"], ["pet.cat"])
    conv = fa["conv"]
    await a.call("msg.send", conv=conv, body="再见")
    await a.call("conv.leave", conv=conv)
    export = (await a.call("account.export"))["export"]
    left = [c for c in export["conversations"] if c["conv"] == conv]
    assert len(left) == 1 and left[0]["kind"] == "direct"
    assert left[0]["left_at"] is not None and left[0]["joined_at"] <= left[0]["left_at"]
    assert [m["body"] for m in export["messages"] if m["conv"] == conv] == ["再见"]
    for c in (a, b):
        await c.close()


async def test_expired_sms_codes_are_purged_on_a_schedule(config: Config) -> None:
    srv = ChatServer(dataclasses.replace(config, sms_purge_interval=0.05))
    await srv.start()
    try:
        store = srv.app.store
        now = int(time.time() * 1000)
        old, fresh = "+8613900000001", "+8613900000002"
        await store.add_sms_code(old, "login", b"h" * 32, now - 2 * 86_400_000,
                                 now - 2 * 86_400_000 + 300_000)
        await store.add_sms_code(fresh, "login", b"f" * 32, now - 600_000, now - 300_000)
        deadline = time.monotonic() + t(5)
        while time.monotonic() < deadline:
            if await store.latest_sms_code(old, "login") is None:
                break
            await asyncio.sleep(0.05)
        assert await store.latest_sms_code(old, "login") is None
        kept = await store.latest_sms_code(fresh, "login")
        # Still counted by the SMS limits (a day back), but the expired code's hash is gone.
        assert kept is not None and kept.code_hash == b""
        assert await store.sms_sends_since(fresh, now - 86_400_000) == [now - 600_000]
    finally:
        await srv.stop()
    assert srv.app.privacy.purging is False
