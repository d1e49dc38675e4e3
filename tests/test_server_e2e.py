"""The endpoint: HTTP routes, malformed frames, limits, slow readers, shutdown, restarts."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import urllib.request
from pathlib import Path

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chatd.client import Client
from chatd.config import Config
from chatd.server import ChatServer
from tests.conftest import new_phone, registered, t, url_of


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


async def test_healthz_and_metrics(server: ChatServer) -> None:
    status, body = await asyncio.to_thread(http_get, server.port, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    async with await Client.connect(url_of(server)) as c:
        await c.call("ping")
        status, body = await asyncio.to_thread(http_get, server.port, "/metrics")
    assert status == 200
    assert b"chatd_connections 1.0" in body and b'chatd_requests_total{op="ping"}' in body
    assert (await asyncio.to_thread(http_get, server.port, "/nope"))[0] == 404


async def test_no_subprotocol_means_msgpack(url: str) -> None:
    async with connect(url, compression=None) as ws:
        assert ws.subprotocol is None
        await ws.send(msgpack.packb({"t": "ping", "rid": 1}))
        reply = msgpack.unpackb(await ws.recv())
        assert reply["t"] == "ok" and reply["rid"] == 1


async def test_malformed_frames_get_errors_and_connection_carries_on(url: str) -> None:
    async with await Client.connect(url) as c:
        await c.send_raw(b"\xc1 not msgpack")
        await c.send_raw("a text frame")
        await c.send_raw(msgpack.packb({"t": "no.such.op", "rid": 9}))
        r1 = await asyncio.wait_for(c.replies_without_rid.get(), 5)
        r2 = await asyncio.wait_for(c.replies_without_rid.get(), 5)
        assert r1["code"] == r2["code"] == "bad_request"
        assert (await c.call("ping"))["t"] == "ok"
    async with await Client.connect(url, "json") as c:
        await c.send_raw(b"\x00binary")
        await c.send_raw(b"\xff\xfe")
        await c.send_raw("[1, 2]")
        for _ in range(3):
            assert (await asyncio.wait_for(c.replies_without_rid.get(), 5))["code"] == \
                "bad_request"
        assert (await c.call("ping"))["t"] == "ok"


async def test_invalid_utf8_text_frame(url: str) -> None:
    # A raw text frame with invalid UTF-8, written below the client library.
    async with connect(url, subprotocols=["chatd.v1.json"], compression=None) as ws:
        ws.protocol.send_text(b'{"t":"\xff"}')
        ws.send_data()
        try:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["code"] == "bad_request"
        except ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 1007


async def test_oversized_frame_closes_1009(url: str) -> None:
    async with await Client.connect(url, max_size=None) as c:
        await c.send_raw(b"\x00" * 70_000)
        await asyncio.wait_for(c.ws.wait_closed(), 5)
        assert c.ws.close_code == 1009
    async with await Client.connect(url) as other:  # the server carries on
        assert (await other.call("ping"))["t"] == "ok"


async def test_request_rate_limit(tmp_path: Path, wordlist: Path) -> None:
    srv = ChatServer(Config(port=0, data_dir=tmp_path / "d", wordlists=(str(wordlist),),
                            rate_per_second=1, rate_burst=3))
    await srv.start()
    try:
        async with await Client.connect(url_of(srv)) as c:
            replies = await asyncio.gather(*(c.request("ping") for _ in range(5)))
            codes = [r["t"] if r["t"] == "ok" else r["code"] for r in replies]
            assert codes.count("ok") == 3 and codes.count("rate_limited") == 2
            assert all(r["retry_after"] > 0 for r in replies if r["t"] == "err")
    finally:
        await srv.stop()


async def test_origin_allow_list(tmp_path: Path, wordlist: Path) -> None:
    srv = ChatServer(Config(port=0, data_dir=tmp_path / "d", wordlists=(str(wordlist),),
                            origins=("https://app.example",)))
    await srv.start()
    try:
        async with connect(url_of(srv), origin="https://app.example"):  # type: ignore[arg-type]
            pass
        async with connect(url_of(srv)):  # native apps send no Origin
            pass
        with pytest.raises(InvalidStatus) as info:
            async with connect(url_of(srv), origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert info.value.response.status_code == 403
    finally:
        await srv.stop()


async def test_idle_timeout_closes_4002(tmp_path: Path, wordlist: Path) -> None:
    srv = ChatServer(Config(port=0, data_dir=tmp_path / "d", wordlists=(str(wordlist),),
                            idle_timeout=0.3))
    await srv.start()
    try:
        async with await Client.connect(url_of(srv)) as c:
            await asyncio.wait_for(c.ws.wait_closed(), t(5))
            assert c.ws.close_code == 4002
    finally:
        await srv.stop()


async def test_slow_reader_is_disconnected_3008(tmp_path: Path, wordlist: Path) -> None:
    srv = ChatServer(Config(port=0, data_dir=tmp_path / "d", wordlists=(str(wordlist),),
                            outbound_queue_bytes=256 * 1024, rate_per_second=10_000,
                            rate_burst=100_000, max_message_chars=20_000))
    await srv.start()
    try:
        url = url_of(srv)
        sender = await registered(url, ["game.rpg"])
        # The slow client: reads nothing, with tiny socket buffers so backpressure is quick.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        slow = await connect(url, sock=sock, compression=None, max_queue=1,
                             subprotocols=["chatd.v1.msgpack"])
        phone = new_phone()
        await slow.send(msgpack.packb({"t": "sms.send", "rid": 1, "phone": phone,
                                       "purpose": "register"}))
        code = msgpack.unpackb(await slow.recv())["dev_code"]
        await slow.send(msgpack.packb({"t": "register", "rid": 2, "phone": phone, "code": code,
                                       "password": "password-1", "birthdate": "1990-01-01",
                                       "gender": "male", "interests": ["game.rpg"],
                                       "nickname": "slow"}))
        await slow.recv()
        slow.transport.pause_reading()
        body = "慢" * 20_000  # 60 kB a message: kernel buffers fill after a few MB
        for i in range(1000):
            await sender.call("msg.send", conv="g:game.rpg", body=body, cid=f"m{i}")
            if srv.app.metrics.closed_slow._value.get() >= 1:  # type: ignore[attr-defined]
                break
        assert srv.app.metrics.closed_slow._value.get() == 1  # type: ignore[attr-defined]
        assert (await sender.call("ping"))["t"] == "ok"  # the others carry on
        slow.transport.abort()
        await sender.close()
    finally:
        await srv.stop()


async def test_graceful_shutdown_closes_1001_and_health_503(tmp_path: Path,
                                                            wordlist: Path) -> None:
    srv = ChatServer(Config(port=0, data_dir=tmp_path / "d", wordlists=(str(wordlist),)))
    await srv.start()
    c = await Client.connect(url_of(srv))
    stopping = asyncio.create_task(srv.stop())
    await asyncio.wait_for(c.ws.wait_closed(), t(10))
    assert c.ws.close_code == 1001
    await stopping


async def test_shutdown_grace_reports_draining_first(tmp_path: Path, wordlist: Path) -> None:
    srv = ChatServer(Config(port=0, data_dir=tmp_path / "d", wordlists=(str(wordlist),),
                            shutdown_grace=1.0))
    await srv.start()
    c = await Client.connect(url_of(srv))
    stopping = asyncio.create_task(srv.stop())
    await asyncio.sleep(0.2)
    status, body = await asyncio.to_thread(http_get, srv.port, "/healthz")
    assert status == 503 and json.loads(body)["status"] == "draining"
    with pytest.raises(InvalidStatus) as info:  # no new WebSocket while draining
        await connect(url_of(srv))
    assert info.value.response.status_code == 503
    assert (await c.call("ping"))["t"] == "ok"  # existing sessions still served
    await asyncio.wait_for(c.ws.wait_closed(), t(10))
    assert c.ws.close_code == 1001
    await stopping


def test_process_restart_keeps_accounts_and_sigterm_exits_0(node_process) -> None:
    phone = new_phone()

    async def register(url: str) -> str:
        async with await Client.connect(url) as c:
            return await c.register(phone, password="password-1")

    async def login(url: str, token: str) -> None:
        async with await Client.connect(url) as c:
            assert (await c.call("login", phone=phone, password="password-1"))["token"]
        async with await Client.connect(url) as c:
            await c.auth(token)

    node = node_process()
    token = asyncio.run(register(node.url))
    status, _ = http_get(node.port, "/healthz")
    assert status == 200
    assert node.stop(signal.SIGTERM) == 0
    node2 = node_process()
    asyncio.run(login(node2.url, token))
    assert node2.stop(signal.SIGINT) == 0
