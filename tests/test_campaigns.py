"""Marketing SMS end to end: a real local HTTP receiver as the webhook SMS gateway, campaigns
from the CLI and from the server API, the consent they honour, their rate bound, the word
filter, the unsubscribe hint, and the signed inbound-SMS webhook that withdraws consent.
On SQLite and on PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from chatd.client import Client
from chatd.config import Config
from chatd.server import ChatServer
from chatd.services.campaigns import Pacer, is_unsubscribe, with_unsubscribe_hint
from chatd.services.phones import mask_phone, normalize_phone
from chatd.store import User, UserId
from tests.conftest import new_phone, t, url_of
from tests.pg import create_database, drop_database
from tests.test_server_api import INBOUND, api, ok, with_api

HINT = "回T退订"


class Gateway:
    """A local SMS gateway: records every POST (with its arrival time); answers 500 for the
    phones in ``fail``."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, dict[str, Any]]] = []
        self.fail: set[str] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/sms", self._sms)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/sms"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _sms(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posts.append((time.monotonic(), body))
        if body.get("phone") in self.fail or "*" in self.fail:
            return web.json_response({"error": "no"}, status=500)
        return web.json_response({"ok": True})

    def code(self, phone: str) -> str:
        return str(next(b["code"] for _, b in reversed(self.posts)
                        if b.get("phone") == phone and "code" in b))

    def texts(self, text: str | None = None) -> list[tuple[float, str, str]]:
        """(arrival, phone, text) of every marketing text (with ``text`` only, if given)."""
        return [(at, b["phone"], b["text"]) for at, b in self.posts
                if b.get("purpose") == "marketing" and (text is None or b["text"] == text)]


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    g = Gateway()
    await g.start()
    try:
        yield g
    finally:
        await g.stop()


@pytest.fixture(params=["sqlite", "postgres"])
async def store_config(request: pytest.FixtureRequest, config: Config,
                       gateway: Gateway) -> AsyncIterator[Config]:
    """The suite's config with the API, the webhook SMS gateway, and the store of the param
    (PostgreSQL: a database of this test alone, so its audience is its users alone)."""
    base = with_api(config, sms_provider="webhook", sms_webhook_url=gateway.url,
                    campaign_rate_per_second=50.0)
    if request.param == "sqlite":
        yield base
        return
    dsn = await create_database()
    try:
        yield base.replace(store="postgres", postgres_dsn=dsn)
    finally:
        await drop_database(dsn)


@pytest.fixture
async def node(store_config: Config) -> AsyncIterator[ChatServer]:
    srv = ChatServer(store_config)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def member(srv: ChatServer, gateway: Gateway,
                 marketing: bool | None = None) -> tuple[Client, str]:
    """A registered user (code read from the gateway) with this marketing consent; the
    client and the bare phone."""
    phone = new_phone()
    c = await Client.connect(url_of(srv))
    await c.call("sms.send", phone=phone, purpose="register")
    reply = await c.call("register", phone=phone, code=gateway.code(normalize_phone(phone)),
                         password="correct horse 1", birthdate="1990-01-01", gender="male",
                         interests=["music.rock"], nickname="营销对象")
    c.user, c.token = reply["user"], reply["token"]
    if marketing is not None:
        await c.call("consent.set", marketing=marketing)
    return c, phone


def uid_of(c: Client) -> UserId:
    assert c.user is not None
    return UserId(c.user["id"])


async def until_ended(srv: ChatServer, campaign_id: str, seconds: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + t(seconds)
    while time.monotonic() < deadline:
        campaign: dict[str, Any] = (await ok(srv, "campaign.get", id=campaign_id))["campaign"]
        if campaign["state"] != "running":
            return campaign
        await asyncio.sleep(0.05)
    pytest.fail("the campaign did not end")


def no_phone_in(text: str, phones: list[str]) -> None:
    for phone in phones:
        assert phone not in text and normalize_phone(phone) not in text, mask_phone(phone)


async def admin(config: Config, *args: str) -> tuple[int, str, str]:
    """``chatd admin`` on the node's store, as a subprocess (the gateway keeps serving)."""
    store = ["--store", "postgres", "--postgres-dsn", config.postgres_dsn] \
        if config.store == "postgres" else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatd", "admin", "--data-dir", str(config.data_dir),
        "--wordlists", *config.wordlists, *store, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), t(60))
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_campaign_reaches_only_consenting_users(node: ChatServer, gateway: Gateway,
                                                          tmp_path: Path) -> None:
    yes = [await member(node, gateway, True) for _ in range(3)]
    no, _ = await member(node, gateway, False)
    never, _ = await member(node, gateway)
    banned, _ = await member(node, gateway, True)
    changed, changed_phone = await member(node, gateway, True)
    await changed.call("consent.set", marketing=False)
    await node.app.store.set_banned(uid_of(banned), 2**50)
    failing = normalize_phone(yes[2][1])
    gateway.fail.add(failing)
    text = tmp_path / "spring.txt"
    text.write_text("春季活动：会员八折，速来！\n", encoding="utf-8")
    config = node.config
    code, out, err = await admin(config, "campaign", "send", "--text-file", str(text),
                                 "--id", "spring", "--sms-provider", "webhook",
                                 "--sms-webhook-url", gateway.url)
    assert code == 0, err
    assert "campaign spring done: 2 sent, 1 failed of 3 recipients (by cli)" in out
    got = gateway.texts()
    assert sorted(p for _, p, _ in got) == sorted(normalize_phone(p) for _, p in yes)
    assert {body for _, _, body in got} == {f"春季活动：会员八折，速来！ {HINT}"}
    assert mask_phone(failing) in err  # the failure is told, masked
    no_phone_in(out + err, [p for _, p in yes] + [changed_phone])
    row = await node.app.store.get_campaign("spring")
    assert row is not None and (row.state, row.recipients, row.sent, row.failed, row.actor) == (
        "done", 3, 2, 1, "cli")
    audit = (await node.app.store.audit_log(None, 1))[0]
    assert (audit.actor, audit.action, audit.target) == ("cli", "campaign.start", "spring")
    # The same id again sends nothing twice; show tells the record.
    code, out, _ = await admin(config, "campaign", "send", "--text-file", str(text), "--id",
                               "spring", "--sms-provider", "webhook", "--sms-webhook-url",
                               gateway.url)
    assert code == 0 and "started before; nothing sent again" in out
    assert len(gateway.texts()) == 3
    code, out, _ = await admin(config, "campaign", "show", "spring")
    assert code == 0 and "campaign spring done: 2 sent, 1 failed of 3" in out
    for c in (*(c for c, _ in yes), no, never, banned, changed):
        await c.close()


async def test_api_campaign_keeps_its_rate_retries_safely_and_cancels(
        config: Config, gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rate = 10.0
    srv = ChatServer(with_api(config, sms_provider="webhook", sms_webhook_url=gateway.url,
                              campaign_rate_per_second=rate))
    await srv.start()
    try:
        users = [await member(srv, gateway, True) for _ in range(12)]
        started = (await ok(srv, "campaign.start", text="限时福利", id="promo-1"))["campaign"]
        assert (started["state"], started["recipients"], started["text"]) == (
            "running", 12, f"限时福利 {HINT}")
        again = (await ok(srv, "campaign.start", text="限时福利", id="promo-1"))["campaign"]
        assert again["created_at"] == started["created_at"]
        status, answer, _ = await api(srv, "campaign.start", text="另一个活动")
        assert (status, answer["error"]["code"], answer["error"]["running"]) == (
            409, "conflict", "promo-1")
        status, _, _ = await api(srv, "campaign.start", text="换个说法", id="promo-1")
        assert status == 409
        ended = await until_ended(srv, "promo-1")
        assert (ended["state"], ended["sent"], ended["failed"]) == ("done", 12, 0)
        sent = gateway.texts(f"限时福利 {HINT}")
        assert sorted(p for _, p, _ in sent) == sorted(normalize_phone(p) for _, p in users)
        # The bound, loosely: 12 sends at 10/s span at least ~1.1 s, and no second holds
        # many more than 10 of them.
        times = sorted(at for at, _, _ in sent)
        assert times[-1] - times[0] >= 0.8 * (len(times) - 1) / rate
        assert max(sum(1 for x in times if s <= x < s + 1.0) for s in times) <= rate + 2
        # A cancel stops the sender within a page (here 10 recipients).
        await ok(srv, "campaign.start", text="第二波", id="promo-2")
        cancelled = (await ok(srv, "campaign.cancel", id="promo-2"))["campaign"]
        assert cancelled["state"] == "cancelled" and cancelled["finished_at"] is not None
        await asyncio.sleep(t(1.5))
        second = len(gateway.texts(f"第二波 {HINT}"))
        assert second <= 10
        # The record keeps the state the cancel gave it and counts what did go out.
        row = (await ok(srv, "campaign.get", id="promo-2"))["campaign"]
        assert (row["state"], row["sent"]) == ("cancelled", second)
        assert (await api(srv, "campaign.get", id="nope"))[0] == 404
        actions = [(e.actor, e.action, e.target) for e in await srv.app.store.audit_log(None, 3)]
        assert actions == [("api:app", "campaign.cancel", "promo-2"),
                           ("api:app", "campaign.start", "promo-2"),
                           ("api:app", "campaign.start", "promo-1")]
        no_phone_in(caplog.text, [p for _, p in users])
        assert "限时福利" not in caplog.text
        for c, _ in users:
            await c.close()
    finally:
        await srv.stop()


async def test_the_word_filter_refuses_or_masks_a_campaign(config: Config, gateway: Gateway,
                                                            tmp_path: Path) -> None:
    srv = ChatServer(with_api(config, sms_provider="webhook", sms_webhook_url=gateway.url,
                              campaign_rate_per_second=50.0))
    await srv.start()
    try:
        c, _ = await member(srv, gateway, True)
        status, answer, _ = await api(srv, "campaign.start", text="你个傻逼快来买")
        assert (status, answer["error"]["code"], answer["error"]["category"]) == (
            422, "filtered", "abuse")
        blocked = tmp_path / "blocked.txt"
        blocked.write_text("傻逼促销", encoding="utf-8")
        code, _, err = await admin(srv.config, "campaign", "send", "--text-file", str(blocked),
                                     "--sms-provider", "webhook", "--sms-webhook-url",
                                     gateway.url)
        assert code == 1 and err.startswith("chatd: error: ") and "abuse" in err, err
        assert gateway.texts() == []
        # Masked words go out masked; a text that ends with the hint gets no second one.
        masked = (await ok(srv, "campaign.start", text="加微信领券"))["campaign"]
        assert masked["text"] == f"***领券 {HINT}"
        await until_ended(srv, masked["id"])
        hinted = (await ok(srv, "campaign.start", text=f"新品上市 {HINT}"))["campaign"]
        assert hinted["text"] == f"新品上市 {HINT}"
        await until_ended(srv, hinted["id"])
        assert [body for _, _, body in gateway.texts()] == [f"***领券 {HINT}",
                                                            f"新品上市 {HINT}"]
        assert (await api(srv, "campaign.start", text="x" * 600))[0] == 413
        assert (await api(srv, "campaign.start", text="   "))[0] == 400
        assert (await api(srv, "campaign.start", text="ok", id="bad id!"))[0] == 400
        await c.close()
    finally:
        await srv.stop()


def signed(body: bytes, secret: str = INBOUND) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def inbound(srv: ChatServer, body: dict[str, Any] | bytes,
                  signature: str | None = "auto") -> tuple[int, dict[str, Any]]:
    assert srv.api is not None
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "auto":
        headers["X-Chatd-Signature"] = signed(raw)
    elif signature is not None:
        headers["X-Chatd-Signature"] = signature
    async with aiohttp.ClientSession() as s, s.post(
            f"http://127.0.0.1:{srv.api.port}/sms/inbound", data=raw, headers=headers) as r:
        return r.status, await r.json()


async def marketing(c: Client) -> bool:
    return bool((await c.call("me"))["consents"]["marketing"])


async def test_a_signed_reply_withdraws_consent(node: ChatServer, gateway: Gateway,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    a, a_phone = await member(node, gateway, True)
    b, b_phone = await member(node, gateway, True)
    c, c_phone = await member(node, gateway, True)
    # Unsigned, wrongly signed, signed with another secret: 401, nothing changes.
    body = {"phone": b_phone, "text": "T"}
    raw = json.dumps(body).encode()
    assert (await inbound(node, raw, None))[0] == 401
    assert (await inbound(node, raw, "00" * 32))[0] == 401
    assert (await inbound(node, raw, signed(raw, "another-secret-1234567")))[0] == 401
    assert (await inbound(node, {"phone": b_phone, "text": "T!"}, signed(raw)))[0] == 401
    assert await marketing(b)
    # Signed: a stop word turns consent off, whatever the case and spacing.
    assert await inbound(node, {"phone": a_phone, "text": " td "}) == (200, {"result": {}})
    assert not await marketing(a)
    assert (await inbound(node, {"phone": "+86" + c_phone, "text": "退订"},
                          )) == (200, {"result": {}})
    assert not await marketing(c)
    raw = json.dumps({"phone": b_phone, "text": "t"}).encode()
    assert (await inbound(node, raw, "sha256=" + signed(raw)))[0] == 200
    assert not await marketing(b)
    await b.call("consent.set", marketing=True)
    # Other texts and unknown phones answer the same and change nothing.
    assert await inbound(node, {"phone": b_phone, "text": "你好"}) == (200, {"result": {}})
    assert await inbound(node, {"phone": new_phone(), "text": "T"}) == (200, {"result": {}})
    assert await inbound(node, {"phone": "not a phone", "text": "T"}) == (200, {"result": {}})
    assert await marketing(b)
    assert (await inbound(node, {"phone": b_phone}))[0] == 400
    assert (await inbound(node, b"{nope"))[0] == 400
    # The next campaign skips those who withdrew.
    started = (await ok(node, "campaign.start", text="回归礼包"))["campaign"]
    assert started["recipients"] == 1
    await until_ended(node, started["id"])
    assert [p for _, p, _ in gateway.texts()] == [normalize_phone(b_phone)]
    no_phone_in(caplog.text, [a_phone, b_phone, c_phone])
    for x in (a, b, c):
        await x.close()


async def test_inbound_webhook_is_off_without_its_secret(config: Config) -> None:
    srv = ChatServer(with_api(config).replace(sms_inbound_secret=""))
    await srv.start()
    try:
        raw = b'{"phone": "13800000000", "text": "T"}'
        assert (await inbound(srv, raw, signed(raw)))[0] == 404
    finally:
        await srv.stop()


def test_unsubscribe_hint_and_stop_words() -> None:
    assert with_unsubscribe_hint(" 新品上市。\n") == f"新品上市。 {HINT}"
    assert with_unsubscribe_hint(f"新品上市 {HINT}  ") == f"新品上市 {HINT}"
    for reply in ("T", "t", " td ", "Td", "退订", "\t退订\n"):
        assert is_unsubscribe(reply), reply
    for reply in ("", "TT", "退订了", "stop", "T D"):
        assert not is_unsubscribe(reply), reply


async def test_the_pacer_spaces_starts_and_never_bursts_to_catch_up() -> None:
    pacer = Pacer(50.0)
    start = time.monotonic()
    for _ in range(11):
        await pacer.wait()
    assert time.monotonic() - start >= 0.8 * 10 / 50
    await asyncio.sleep(0.2)  # late: the next starts are spaced again, not bunched
    start = time.monotonic()
    for _ in range(3):
        await pacer.wait()
    assert time.monotonic() - start >= 0.8 * 2 / 50


async def consenting(srv: ChatServer, n: int) -> list[str]:
    """``n`` users with marketing consent on, made in the store (faster than registering);
    their phones."""
    phones = []
    for i in range(n):
        phone = normalize_phone(new_phone())
        user = User(UserId(f"bulk-{phone[1:]}-{i}"), phone, "x", "1990-01-01", "male", "批量",
                    "", "user", int(time.time() * 1000) - 10_000, ("music.rock",))
        await srv.app.store.create_user(user, [])
        await srv.app.store.set_consent(user.id, "marketing", True, user.created_at)
        phones.append(phone)
    return phones


async def test_a_down_gateway_fails_the_campaign_and_a_stop_interrupts_it(
        config: Config, gateway: Gateway) -> None:
    gateway.fail.add("*")
    srv = ChatServer(with_api(config, sms_provider="webhook", sms_webhook_url=gateway.url,
                              campaign_rate_per_second=40.0))
    await srv.start()
    try:
        await consenting(srv, 60)
        started = (await ok(srv, "campaign.start", text="打折"))["campaign"]
        ended = await until_ended(srv, started["id"])
        # Stopped after 20 failures in a row, checked at the end of each page (40 here).
        assert (ended["state"], ended["sent"], ended["failed"]) == ("failed", 0, 40)
    finally:
        await srv.stop()
    gateway.fail.clear()
    slow = ChatServer(with_api(config, sms_provider="webhook", sms_webhook_url=gateway.url,
                               campaign_rate_per_second=5.0))
    await slow.start()
    try:
        started = (await ok(slow, "campaign.start", text="慢慢发"))["campaign"]
        await asyncio.sleep(t(0.5))
    finally:
        await slow.stop()  # a stopping node ends its campaign: interrupted, not running
    again = ChatServer(config)
    await again.start()
    try:
        row = await again.app.store.get_campaign(started["id"])
        assert row is not None and row.state == "interrupted" and row.finished_at is not None
        assert 0 < len(gateway.texts("慢慢发 " + HINT)) < 60
    finally:
        await again.stop()
