"""Push notifications end to end: real WebSocket clients, a real chatd, a real HTTP push
gateway on 127.0.0.1 (an aiohttp app), on SQLite and PostgreSQL, and across two nodes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from chatd.client import Client
from chatd.config import Config
from chatd.push.webhook import sign
from chatd.server import ChatServer
from tests.conftest import REDIS_URL, new_phone, t, url_of

SECRET = "push-gateway-secret-0123456789"
DELAY = 0.3


class Gateway:
    """The operator's push gateway: records every POST, fails the first ``fail`` ones."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail = 0
        self.bad_signatures = 0
        self.url = ""
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers.get("X-Chatd-Timestamp", "")
        if request.headers.get("X-Chatd-Signature") != sign(SECRET.encode(), stamp, body):
            self.bad_signatures += 1
            return web.Response(status=401)
        self.attempts += 1
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=503)
        self.received.append(json.loads(body))
        self._arrived.set()
        return web.Response(status=200)

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/push", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/push"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(t(timeout)):
            while True:
                self._arrived.clear()  # before the check: an arrival after it sets it again
                if len(self.received) >= count:
                    return
                await self._arrived.wait()


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    g = Gateway()
    await g.start()
    yield g
    await g.stop()


def push_config(config: Config, gateway: Gateway, **kw: Any) -> Config:
    return dataclasses.replace(config, push_webhook_url=gateway.url, push_webhook_secret=SECRET,
                               push_delay=DELAY, push_poll_interval=0.1, push_retry_base=0.2,
                               presence_grace=0.2, **kw)


@pytest.fixture(params=["sqlite", "postgres"])
async def server(request: pytest.FixtureRequest, config: Config, gateway: Gateway,
                 pg_dsn: str) -> AsyncIterator[ChatServer]:
    extra: dict[str, Any] = {"store": "postgres", "postgres_dsn": pg_dsn} \
        if request.param == "postgres" else {}
    srv = ChatServer(push_config(config, gateway, **extra))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def user(url: str, nickname: str) -> Client:
    c = await Client.connect(url)
    c.phone = new_phone()  # type: ignore[attr-defined]
    await c.register(c.phone, interests=["music.jazz", "book.scifi"],  # type: ignore[attr-defined]
                     nickname=nickname)
    return c


async def pair(url_a: str, url_b: str | None = None) -> tuple[Client, Client, str]:
    a, b = await user(url_a, "甲"), await user(url_b or url_a, "乙")
    await a.call("match.start")
    await b.call("match.start")
    conv = (await a.next_event("match.found", timeout=t(10)))["conv"]
    await b.next_event("match.found", timeout=t(10))
    return a, b, conv


async def offline_with_device(c: Client, token: str = "device-token") -> str:
    """Register a push device for ``c``'s session, then close the app; returns the token."""
    await c.call("push.register", vendor="fcm", token=token)
    session = c.token
    await c.close()
    assert session
    return session


async def settle(seconds: float = DELAY * 4) -> None:
    """Long enough for a push that was going to be sent to be sent."""
    await asyncio.sleep(t(seconds))


async def test_an_offline_user_gets_one_push_per_burst(server: ChatServer,
                                                        gateway: Gateway) -> None:
    a, b, conv = await pair(url_of(server))
    b_id = b.user["id"]  # type: ignore[index]
    await offline_with_device(b)
    for text in ("在吗", "出来玩", "看到回我"):
        await a.call("msg.send", conv=conv, body=text)
    await gateway.wait(1)
    await settle()
    [push] = gateway.received
    assert (push["vendor"], push["token"], push["user"]) == ("fcm", "device-token", b_id)
    assert push["title"] == "甲" and push["body"] == "发来一条新消息"  # no text by default
    assert push["data"]["conv"] == conv and push["data"]["seq"] == 3
    assert push["fcm"]["message"]["token"] == "device-token"  # FCM HTTP v1, ready to forward
    assert "看到回我" not in json.dumps(push, ensure_ascii=False)
    assert gateway.bad_signatures == 0
    # The next burst is the next notification.
    await a.call("msg.send", conv=conv, body="还在吗")
    await gateway.wait(2)
    await a.close()


async def test_previews_quiet_hours_and_opting_out(server: ChatServer, gateway: Gateway) -> None:
    a, b, conv = await pair(url_of(server))
    settings = (await b.call("notify.settings", previews=True))["settings"]
    assert settings == {"enabled": True, "previews": True, "groups": False, "quiet_start": -1,
                        "quiet_end": -1, "tz_offset": 480}
    token = await offline_with_device(b)
    await a.call("msg.send", conv=conv, body="周末爬山吗")
    await gateway.wait(1)
    assert gateway.received[0]["body"] == "周末爬山吗"
    # Quiet all day long (00:00 to 23:59 local): held, not sent.
    b = await Client.connect(url_of(server))
    await b.auth(token)
    await b.call("notify.settings", quiet_start=0, quiet_end=1439)
    push = (await b.call("account.export"))["export"]["push"]  # the user's own data
    assert [(d["vendor"], d["token"]) for d in push["devices"]] == [("fcm", "device-token")]
    assert push["settings"]["previews"] is True and push["settings"]["quiet_end"] == 1439
    assert [(n["kind"], n["state"]) for n in push["notifications"]] == [("msg", "sent")]
    await b.close()
    await a.call("msg.send", conv=conv, body="睡了吗")
    await settle()
    assert len(gateway.received) == 1
    bad = await a.request("notify.settings", quiet_start=2000)
    assert (bad["code"], bad["field"]) == ("bad_request", "quiet_start")
    await a.close()


async def test_a_closing_connection_does_not_count_as_online(server: ChatServer,
                                                             gateway: Gateway) -> None:
    """Between the client's close frame and the end of the connection, what is sent to the
    user is pushed: the closing connection neither takes the message nor counts as online."""
    a, b, conv = await pair(url_of(server))
    b_id = b.user["id"]  # type: ignore[index]
    await b.call("push.register", vendor="fcm", token="device-token")
    # The app closes (its close frame is sent) but the TCP connection lingers, unread.
    b.ws.transport.pause_reading()
    b.ws.protocol.send_close(1000)
    b.ws.send_data()
    for _ in range(int(t(5) / 0.01)):
        if not server.app.hub.online(b_id):
            break
        await asyncio.sleep(0.01)
    assert not server.app.hub.online(b_id)  # at once, not when the connection ends
    sent = await a.call("msg.send", conv=conv, body="还在吗")
    await gateway.wait(1)
    assert gateway.received[0]["data"]["seq"] == sent["seq"]
    b.ws.transport.abort()
    await a.close()


async def test_a_message_refused_by_a_slow_reader_is_pushed(config: Config,
                                                            gateway: Gateway) -> None:
    """The message whose frame found the recipient's outbound queue full (closed 3008) never
    reached them: it is not marked delivered, and they are told by push."""
    srv = ChatServer(push_config(config, gateway, outbound_queue_bytes=256 * 1024,
                                 rate_per_second=10_000, rate_burst=100_000,
                                 max_message_chars=20_000))
    await srv.start()
    try:
        url = url_of(srv)
        sock = socket.socket()  # tiny socket buffers: backpressure after a few MB
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        b = await Client.connect(url, sock=sock)
        await b.register(new_phone(), interests=["music.jazz"], nickname="乙")
        a = await user(url, "甲")
        await a.call("match.start")
        await b.call("match.start")
        conv = (await a.next_event("match.found", timeout=t(10)))["conv"]
        await b.next_event("match.found", timeout=t(10))
        await b.call("push.register", vendor="fcm", token="device-token")
        b.ws.transport.pause_reading()
        slow = srv.app.metrics.closed_slow
        for i in range(1000):
            last = await a.call("msg.send", conv=conv, body="慢" * 20_000, cid=f"m{i}")
            if slow._value.get() >= 1:  # type: ignore[attr-defined]
                break
        assert slow._value.get() == 1  # type: ignore[attr-defined]
        await gateway.wait(1)
        assert gateway.received[0]["data"]["seq"] == last["seq"]
        [summary] = [c for c in (await a.call("convs"))["convs"] if c["conv"] == conv]
        assert summary["peer_delivered_seq"] < last["seq"]
        b.ws.transport.abort()
        await a.close()
    finally:
        await srv.stop()


async def test_online_or_muted_users_get_none(server: ChatServer, gateway: Gateway) -> None:
    url = url_of(server)
    a, b, conv = await pair(url)
    await b.call("push.register", vendor="hms", token="online-device")
    await a.call("msg.send", conv=conv, body="你好")
    assert (await b.next_event("msg"))["body"] == "你好"
    # A second device of b, offline with a device, while b is online on the first: none.
    b2 = await Client.connect(url)
    await b2.login(b.phone, "correct horse 1")  # type: ignore[attr-defined]
    await offline_with_device(b2, "second-device")
    await a.call("msg.send", conv=conv, body="收到吗")
    await settle()
    assert gateway.received == []
    # Muted: nothing while the mute lasts, even with every device offline.
    until = (await b.call("ping"))["ts"] + 3_600_000
    await b.call("conv.mute", conv=conv, until=until)
    await offline_with_device(b, "online-device")
    await a.call("msg.send", conv=conv, body="静音了吗")
    await settle()
    assert gateway.received == []
    await a.close()


async def test_a_failing_gateway_is_retried(server: ChatServer, gateway: Gateway) -> None:
    a, b, conv = await pair(url_of(server))
    await offline_with_device(b)
    gateway.fail = 2
    await a.call("msg.send", conv=conv, body="重试")
    await gateway.wait(1)
    await settle()
    assert gateway.attempts == 3 and len(gateway.received) == 1
    await a.close()


async def test_unregister_and_logout_stop_pushes(server: ChatServer, gateway: Gateway) -> None:
    url = url_of(server)
    a, b, conv = await pair(url)
    await b.call("push.register", vendor="mi", token="t1")
    await b.call("push.unregister", vendor="mi")
    await b.close()
    await a.call("msg.send", conv=conv, body="没有设备")
    await settle()
    assert gateway.received == []
    bad = await a.request("push.register", vendor="nokia", token="x")
    assert (bad["code"], bad["field"]) == ("bad_request", "vendor")
    await a.close()


async def test_nothing_is_lost_across_a_restart(config: Config, gateway: Gateway,
                                                pg_dsn: str) -> None:
    cfg = push_config(config, gateway, store="postgres", postgres_dsn=pg_dsn)
    srv = ChatServer(cfg)
    await srv.start()
    a, b, conv = await pair(url_of(srv))
    await offline_with_device(b)
    gateway.fail = 10**6  # the gateway is down
    await a.call("msg.send", conv=conv, body="重启之前")
    await settle()
    await a.close()
    await srv.stop()
    assert gateway.received == []
    gateway.fail = 0  # back up; a new node process picks the job up
    srv = ChatServer(cfg)
    await srv.start()
    try:
        await gateway.wait(1, timeout=15)
        assert gateway.received[0]["data"]["conv"] == conv
    finally:
        await srv.stop()


async def test_two_nodes_push_once(config: Config, gateway: Gateway, pg_dsn: str,
                                   prefix: str) -> None:
    servers = [ChatServer(push_config(
        config, gateway, data_dir=config.data_dir / f"n{i}" if config.data_dir else None,
        broker="redis", redis_url=REDIS_URL, key_prefix=prefix, node_id=f"n{i}",
        store="postgres", postgres_dsn=pg_dsn)) for i in range(2)]
    for srv in servers:
        await srv.start()
    try:
        n1, n2 = (url_of(s) for s in servers)
        a, b, conv = await pair(n1, n2)
        await offline_with_device(b)
        await asyncio.sleep(t(0.5))  # past the presence grace
        for text in ("跨节点", "推送"):
            await a.call("msg.send", conv=conv, body=text)
        await gateway.wait(1)
        await settle()
        assert len(gateway.received) == 1  # both nodes poll; one claims
        await a.close()
    finally:
        for srv in servers:
            await srv.stop()


async def test_report_outcomes_and_notices_reach_offline_users(server: ChatServer,
                                                            gateway: Gateway) -> None:
    url = url_of(server)
    mod, reporter, target = [await user(url, n) for n in ("审核", "举报人", "被举报")]
    await server.app.store.set_role(mod.user["id"], "moderator")  # type: ignore[index]
    report = (await reporter.call("report", kind="user", target=target.user["id"],  # type: ignore[index]
                                  reason="spam"))["report"]
    await offline_with_device(reporter)
    await mod.call("mod.resolve", item="r:" + report["id"], action="dismiss")
    await gateway.wait(1)
    [push] = gateway.received
    assert push["data"] == {"kind": "report", "id": report["id"]}
    assert push["title"] == "举报处理结果"
    await mod.call("mod.warn", user=reporter.user["id"], note="请文明发言")  # type: ignore[index]
    await gateway.wait(2)
    assert gateway.received[1]["data"] == {"kind": "notice"}
    assert "文明" not in json.dumps(gateway.received[1], ensure_ascii=False)
    for c in (mod, target):
        await c.close()
