"""The server HTTP API end to end: real HTTP on 127.0.0.1, real WebSocket clients, real stores;
one node, and two nodes on Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from chatd.client import Client
from chatd.config import Config
from chatd.server import ChatServer
from chatd.services.phones import mask_phone, normalize_phone
from chatd.store import UserId
from tests.conftest import REDIS_URL, new_phone, registered, t, url_of

KEY = "app-secret-0123456789abcdef"
OTHER_KEY = "ops-secret-fedcba9876543210"
INBOUND = "inbound-secret-0123456789"
KEYS = (f"app:{KEY}", f"ops:{OTHER_KEY}")


def with_api(config: Config, **changes: Any) -> Config:
    return config.replace(api_keys=KEYS, api_port=0, sms_inbound_secret=INBOUND, **changes)


async def api(srv: ChatServer, method: str, key: str | None = KEY, http: str = "POST",
              raw: bytes | None = None, **body: Any) -> tuple[int, dict[str, Any], Any]:
    """One call: (status, JSON answer, headers)."""
    assert srv.api is not None
    headers = {"Authorization": f"apikey {key}"} if key is not None else {}
    kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
    async with aiohttp.ClientSession() as s, s.request(
            http, f"http://127.0.0.1:{srv.api.port}/api/{method}", headers=headers,
            **kwargs) as r:
        return r.status, await r.json(), r.headers


async def ok(srv: ChatServer, method: str, **body: Any) -> dict[str, Any]:
    status, answer, _ = await api(srv, method, **body)
    assert status == 200, answer
    result: dict[str, Any] = answer["result"]
    return result


def uid_of(c: Client) -> str:
    assert c.user is not None
    return str(c.user["id"])


@pytest.fixture
async def api_server(config: Config) -> AsyncIterator[ChatServer]:
    srv = ChatServer(with_api(config, presence_grace=0.0))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_keys_authenticate_and_never_reach_the_logs(
        api_server: ChatServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "app-secret-0123456789abcdeX"
    assert (await api(api_server, "presence", key=None, users=[]))[0] == 401
    status, answer, headers = await api(api_server, "presence", key=wrong, users=[])
    assert (status, answer["error"]["code"]) == (401, "unauthorized")
    assert headers["WWW-Authenticate"] == "apikey"
    async with aiohttp.ClientSession() as s, s.post(
            f"http://127.0.0.1:{api_server.api.port}/api/presence",  # type: ignore[union-attr]
            json={"users": []}, headers={"Authorization": f"Bearer {KEY}"}) as r:
        assert r.status == 401
    # Unknown methods are not told apart from known ones before the key is checked.
    assert (await api(api_server, "no.such", key=None))[0] == 401
    assert (await ok(api_server, "presence", users=[])) == {"online": {}}
    assert (await api(api_server, "presence", key=OTHER_KEY, users=[]))[0] == 200
    status, answer, _ = await api(api_server, "no.such")
    assert (status, answer["error"]["code"]) == (404, "not_found")
    assert (await api(api_server, "presence", http="GET"))[0] == 405
    status, answer, _ = await api(api_server, "presence", raw=b"{not json")
    assert (status, answer["error"]["code"]) == (400, "bad_request")
    assert (await api(api_server, "presence", raw=b"[1, 2]"))[0] == 400
    status, answer, _ = await api(api_server, "presence", users="x")
    assert (status, answer["error"]["field"]) == (400, "users")
    assert (await api(api_server, "presence", raw=b"x" * 70_000))[0] == 413
    async with aiohttp.ClientSession() as s, s.get(
            f"http://127.0.0.1:{api_server.api.port}/elsewhere") as r:  # type: ignore[union-attr]
        assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
    metrics = api_server.app.scrape().decode()
    for series in ('method="presence",status="401"', 'method="presence",status="405"',
                   'method="unknown",status="404"'):
        assert f"chatd_api_requests_total{{{series}}}" in metrics
    text = caplog.text + repr(api_server.config)
    assert "refused without a valid key" in caplog.text
    for secret in (KEY, OTHER_KEY, wrong, INBOUND):
        assert secret not in text
        assert secret[:12] not in text


async def test_publish_reaches_a_user_and_a_conversation(api_server: ChatServer,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    url = url_of(api_server)
    a = await registered(url, ["music.rock"], codec="json")
    b = await registered(url, ["music.rock"])
    a2 = await Client.connect(url)
    await a2.auth(a.token)  # type: ignore[arg-type]
    result = await ok(api_server, "publish", user=uid_of(a), text="充值成功",
                      data={"order": "o-1", "amount": 30})
    assert result == {"online": True}
    for c in (a, a2):
        assert await c.next_event("system") == {"t": "system", "text": "充值成功",
                                                "data": {"order": "o-1", "amount": 30}}
    await ok(api_server, "publish", conv="g:music.rock", text="本群今晚有活动")
    for c in (a, a2, b):
        event = await c.next_event("system")
        assert event == {"t": "system", "conv": "g:music.rock", "text": "本群今晚有活动"}
    # b never got a's private notice: the next system event b saw was the group's.
    refused = [
        ({"user": "nobody", "text": "x"}, 404),
        ({"conv": "g:no.such", "text": "x"}, 404),
        ({"user": uid_of(a), "conv": "g:music.rock", "text": "x"}, 400),
        ({"text": "x"}, 400),
        ({"user": uid_of(a), "text": "   "}, 400),
        ({"user": uid_of(a), "text": "bad\x07bell"}, 400),
        ({"user": uid_of(a), "text": "x" * 2001}, 413),
        ({"user": uid_of(a), "text": "x", "data": {"big": "y" * 5000}}, 413),
        ({"user": uid_of(a), "text": "x", "data": [1]}, 400),
    ]
    for body, status in refused:
        assert (await api(api_server, "publish", **body))[0] == status, body
    audit = await api_server.app.store.audit_log(None, 10)
    published = [e for e in audit if e.action == "api.publish"]
    assert [(e.actor, e.target) for e in published] == [("api:app", "g:music.rock"),
                                                        ("api:app", uid_of(a))]
    assert "充值成功" not in caplog.text  # no text of a system message in the logs
    offline = await registered(url)
    await offline.close()
    assert (await ok(api_server, "publish", user=uid_of(offline), text="hi")) == {
        "online": False}
    for c in (a, a2, b):
        await c.close()


async def test_broadcast_reaches_every_online_session(api_server: ChatServer) -> None:
    url = url_of(api_server)
    clients = [await registered(url, ["pet.dog"], codec=codec)
               for codec in ("json", "msgpack", "json")]
    anonymous = await Client.connect(url)  # not logged in: not a user to announce to
    await ok(api_server, "broadcast", text="系统维护通知", data={"at": "02:00"})
    for c in clients:
        assert await c.next_event("system") == {"t": "system", "text": "系统维护通知",
                                                "data": {"at": "02:00"}, "broadcast": True}
    with pytest.raises(TimeoutError):
        await anonymous.next_event("system", timeout=t(0.3))
    entry = (await api_server.app.store.audit_log(None, 1))[0]
    assert (entry.actor, entry.action, entry.target, entry.detail) == (
        "api:app", "api.broadcast", "*", "系统维护通知")
    for c in (*clients, anonymous):
        await c.close()


async def test_disconnect_closes_every_connection_and_may_revoke(api_server: ChatServer) -> None:
    url = url_of(api_server)
    a = await registered(url)
    again = await Client.connect(url)
    await again.auth(a.token)  # type: ignore[arg-type]
    assert await ok(api_server, "disconnect", user=uid_of(a)) == {"sessions_revoked": 0}
    for c in (a, again):
        await asyncio.wait_for(c.ws.wait_closed(), t(5))
        assert c.ws.close_code == 4001
    # The token still works: the app may come back.
    back = await Client.connect(url)
    await back.auth(a.token)  # type: ignore[arg-type]
    assert await ok(api_server, "disconnect", user=uid_of(a), revoke=True) == {
        "sessions_revoked": 1}
    await asyncio.wait_for(back.ws.wait_closed(), t(5))
    async with await Client.connect(url) as late:
        assert (await late.request("auth", token=a.token))["code"] == "unauthorized"
    assert (await api(api_server, "disconnect", user="nobody"))[0] == 404
    actions = [(e.action, e.detail) for e in await api_server.app.store.audit_log(None, 2)]
    assert actions == [("api.disconnect", "revoke=1"), ("api.disconnect", "revoke=0")]


async def test_ban_mute_unban_are_the_moderators_sanctions(api_server: ChatServer) -> None:
    url = url_of(api_server)
    phone = new_phone()
    bad = await Client.connect(url)
    await bad.register(phone, password="bad password 1")
    bad_id = uid_of(bad)
    muted = await ok(api_server, "mute", user=bad_id, duration=60, note="刷屏")
    notice = await bad.next_event("mod.notice")
    assert (notice["kind"], notice["until"], notice["reason"]) == ("mute", muted["until"],
                                                                   "刷屏")
    assert (await bad.request("msg.send", conv="g:music.rock", body="hi"))["reason"] == "muted"
    assert (await api(api_server, "mute", user=bad_id))[0] == 400  # duration is required
    banned = await ok(api_server, "ban", user=bad_id, duration=3600, note="支付欺诈")
    await asyncio.wait_for(bad.ws.wait_closed(), t(5))
    assert bad.ws.close_code == 4001
    async with await Client.connect(url) as c:
        refused = await c.request("login", phone=phone, password="bad password 1")
        assert (refused["code"], refused["until"]) == ("forbidden", banned["until"])
    looked = await ok(api_server, "user", user=bad_id)
    assert looked["user"]["banned"] is True and looked["user"]["banned_until"] == banned["until"]
    assert await ok(api_server, "unban", user=bad_id) == {}
    async with await Client.connect(url) as c:
        await c.login(phone, "bad password 1")
    assert (await api(api_server, "unban", user="nobody"))[0] == 404
    assert (await api(api_server, "ban", user="nobody"))[0] == 404
    mod = await registered(url)
    await api_server.app.store.set_role(UserId(uid_of(mod)), "moderator")
    status, answer, _ = await api(api_server, "ban", user=uid_of(mod))
    assert (status, answer["error"]["reason"]) == (403, "moderator")
    entries = await api_server.app.store.audit_log(None, 10, bad_id)
    assert [(e.actor, e.action) for e in entries] == [("api:app", "unban"), ("api:app", "ban"),
                                                      ("api:app", "mute")]
    assert "支付欺诈" in entries[1].detail
    await mod.close()


async def test_user_lookup_masks_the_phone_and_presence(api_server: ChatServer) -> None:
    url = url_of(api_server)
    phone = new_phone()
    c = await Client.connect(url)
    await c.register(phone, nickname="查一查")
    status, answer, _ = await api(api_server, "user", user=uid_of(c))
    assert status == 200
    user = answer["result"]["user"]
    e164 = normalize_phone(phone)
    assert user["phone"] == mask_phone(e164) and phone not in str(answer)
    assert phone[-8:] not in str(answer)
    assert (user["id"], user["nickname"], user["role"], user["verified"], user["banned"],
            user["muted"]) == (uid_of(c), "查一查", "user", False, False, False)
    assert "birthdate" not in user and "pw_hash" not in user
    assert answer["result"]["online"] is True
    assert (await api(api_server, "user", user="nobody"))[0] == 404
    other = await registered(url)
    online = await ok(api_server, "presence", users=[uid_of(c), uid_of(other), "nobody"])
    assert online == {"online": {uid_of(c): True, uid_of(other): True, "nobody": False}}
    await other.close()
    for _ in range(100):  # presence_grace is 0 here: gone as soon as the node noticed
        online = await ok(api_server, "presence", users=[uid_of(other)])
        if not online["online"][uid_of(other)]:
            break
        await asyncio.sleep(0.02)
    assert online == {"online": {uid_of(other): False}}
    await c.close()


async def test_each_key_has_its_own_rate_limit(config: Config) -> None:
    srv = ChatServer(with_api(config, api_requests_per_minute=5))
    await srv.start()
    try:
        for _ in range(5):
            assert (await api(srv, "presence", users=[]))[0] == 200
        status, answer, headers = await api(srv, "presence", users=[])
        assert (status, answer["error"]["code"]) == (429, "rate_limited")
        assert answer["error"]["retry_after"] > 0 and int(headers["Retry-After"]) >= 1
        assert (await api(srv, "presence", key=OTHER_KEY, users=[]))[0] == 200
    finally:
        await srv.stop()


async def test_verification_hook_and_verification_set(config: Config) -> None:
    calls: list[dict[str, Any]] = []

    async def verify(request: web.Request) -> web.Response:
        calls.append(await request.json())
        return web.json_response({})

    receiver = web.Application()
    receiver.router.add_post("/verify", verify)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    srv = ChatServer(with_api(config, verification_url=f"http://127.0.0.1:{port}/verify"))
    await srv.start()
    try:
        phone = new_phone()
        c = await Client.connect(url_of(srv))
        await c.register(phone)
        assert c.user is not None
        assert (c.user["verified"], c.user["verification"]) == (False, "pending")
        for _ in range(200):
            if calls:
                break
            await asyncio.sleep(0.01)
        assert calls == [{"user_id": uid_of(c)}]  # the id alone: never the phone
        me = (await c.call("me"))["user"]
        assert (me["verified"], me["verification"]) == (False, "pending")
        assert await ok(srv, "verification.set", user=uid_of(c), state="verified") == {
            "verification": "verified", "verified": True}
        me = (await c.call("me"))["user"]
        assert (me["verified"], me["verification"]) == (True, "verified")
        assert (await ok(srv, "user", user=uid_of(c)))["user"]["verified"] is True
        assert (await api(srv, "verification.set", user=uid_of(c), state="maybe"))[0] == 400
        assert (await api(srv, "verification.set", user="nobody", state="verified"))[0] == 404
        await ok(srv, "verification.set", user=uid_of(c), state="rejected")
        assert (await c.call("me"))["user"]["verified"] is False
        audit = [(e.actor, e.action) for e in await srv.app.store.audit_log(None, 5, uid_of(c))]
        assert audit == [("api:app", "verification.rejected"),
                         ("api:app", "verification.verified")]
        await c.close()
    finally:
        await srv.stop()
        await runner.cleanup()


async def test_without_a_verifier_accounts_are_not_verified(api_server: ChatServer) -> None:
    c = await registered(url_of(api_server))
    assert c.user is not None
    assert (c.user["verified"], c.user["verification"]) == (False, "")
    await c.close()


@pytest.fixture
async def two_api_nodes(config: Config, pg_dsn: str, prefix: str
                        ) -> AsyncIterator[list[ChatServer]]:
    """Two in-process nodes sharing Redis (broker, presence, counters) and PostgreSQL, each
    with its own API listener."""
    servers = [ChatServer(dataclasses.replace(
        with_api(config), data_dir=config.data_dir / f"n{i}", broker="redis",
        redis_url=REDIS_URL, key_prefix=prefix, node_id=f"n{i}", store="postgres",
        postgres_dsn=pg_dsn)) for i in range(2)]
    for srv in servers:
        await srv.start()
    try:
        yield servers
    finally:
        for srv in servers:
            await srv.stop()


async def test_api_calls_reach_users_on_the_other_node(two_api_nodes: list[ChatServer]) -> None:
    n1, n2 = two_api_nodes
    tag = "book.scifi"
    a = await registered(url_of(n1), [tag])
    b = await registered(url_of(n2), [tag])
    b_on_n1 = await Client.connect(url_of(n1))
    await b_on_n1.auth(b.token)  # type: ignore[arg-type]
    assert await ok(n1, "publish", user=uid_of(b), text="来自后台") == {"online": True}
    for c in (b, b_on_n1):
        assert (await c.next_event("system", timeout=t(5)))["text"] == "来自后台"
    await ok(n2, "publish", conv=f"g:{tag}", text="群公告")
    for c in (a, b, b_on_n1):
        assert (await c.next_event("system", timeout=t(5)))["conv"] == f"g:{tag}"
    await ok(n1, "broadcast", text="全站公告")
    for c in (a, b, b_on_n1):
        assert (await c.next_event("system", timeout=t(5)))["broadcast"] is True
    online = await ok(n2, "presence", users=[uid_of(a), uid_of(b)])
    assert online == {"online": {uid_of(a): True, uid_of(b): True}}
    await ok(n1, "disconnect", user=uid_of(b))
    for c in (b, b_on_n1):
        await asyncio.wait_for(c.ws.wait_closed(), t(5))
        assert c.ws.close_code == 4001
    await ok(n2, "ban", user=uid_of(a), duration=60)
    await asyncio.wait_for(a.ws.wait_closed(), t(5))
    assert a.ws.close_code == 4001


async def test_a_busy_api_port_stops_start_up_and_leaves_nothing_running(config: Config) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        srv = ChatServer(with_api(config).replace(api_port=busy.getsockname()[1]))
        with pytest.raises(OSError):
            await srv.start()
    # Everything it had started is closed: the data directory can be taken again at once.
    again = ChatServer(with_api(config))
    await again.start()
    await again.stop()
