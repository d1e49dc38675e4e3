"""Users' rights end to end: consents, export, deletion, and no personal data in any log."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest

from chatd.client import Client
from tests.conftest import new_phone, registered, t


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
