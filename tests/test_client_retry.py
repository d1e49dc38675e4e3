"""chatd.client.Client retries ``unavailable`` replies, against a real local WebSocket server.

The server here is written in the test (websockets on port 0, msgpack binary frames like
chatd) so that it can fail on purpose; no part of the client is mocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from chatd.client import Client, ClientError


class FlakyServer:
    """Answers by the request's ``conv``:

    - ``g:flaky``: ``unavailable`` (``retry_after`` 50) on the first two attempts of a cid,
      then ``ok`` (the same ``id``/``seq`` for every later attempt of that cid);
    - ``g:nohint``: like ``g:flaky`` but without ``retry_after`` (client back-off);
    - ``g:down``: always ``unavailable`` (``retry_after`` 10);
    - ``g:slow``: always ``unavailable`` with ``retry_after`` 1000;
    - ``g:locked``: always ``forbidden``;
    - ``g:broken``: always ``internal``;
    anything else: ``ok``.
    """

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.stored: dict[str, dict[str, Any]] = {}

    def attempts(self, conv: str) -> list[dict[str, Any]]:
        return [r for r in self.seen if r.get("conv") == conv]

    def answer(self, req: dict[str, Any]) -> dict[str, Any]:
        rid, conv, cid = req.get("rid"), req.get("conv"), req.get("cid")
        n = sum(1 for r in self.seen if r.get("conv") == conv and r.get("cid") == cid)
        if conv in ("g:flaky", "g:nohint") and n < 2:
            err: dict[str, Any] = {"t": "err", "rid": rid, "code": "unavailable",
                                   "msg": "storage unavailable; retry"}
            if conv == "g:flaky":
                err["retry_after"] = 50
            return err
        if conv == "g:down":
            return {"t": "err", "rid": rid, "code": "unavailable", "msg": "down",
                    "retry_after": 10}
        if conv == "g:slow":
            return {"t": "err", "rid": rid, "code": "unavailable", "msg": "down",
                    "retry_after": 1000}
        if conv == "g:locked":
            return {"t": "err", "rid": rid, "code": "forbidden", "msg": "not a member",
                    "reason": "muted"}
        if conv == "g:broken":
            return {"t": "err", "rid": rid, "code": "internal", "msg": "internal error"}
        if req.get("t") == "msg.send":
            key = f"{conv}/{cid}"
            first = self.stored.setdefault(
                key, {"id": f"m{len(self.stored) + 1}", "seq": len(self.stored) + 1, "ts": 1})
            return {"t": "ok", "rid": rid, **first}
        return {"t": "ok", "rid": rid}

    async def handler(self, ws: ServerConnection) -> None:
        async for frame in ws:
            assert isinstance(frame, bytes), "chatd.v1.msgpack uses binary frames"
            req = msgpack.unpackb(frame, raw=False)
            reply = self.answer(req)
            self.seen.append(req)
            await ws.send(msgpack.packb(reply, use_bin_type=True))


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[FlakyServer, str]]:
    fs = FlakyServer()
    async with serve(fs.handler, "127.0.0.1", 0,
                     subprotocols=[Subprotocol("chatd.v1.msgpack")]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield fs, f"ws://127.0.0.1:{port}/ws"


async def test_unavailable_is_retried_with_the_same_cid_until_ok(
        flaky: tuple[FlakyServer, str]) -> None:
    fs, url = flaky
    async with await Client.connect(url) as c:
        loop = asyncio.get_running_loop()
        started = loop.time()
        reply = await c.call("msg.send", conv="g:flaky", body="hi", cid="c-1")
        waited = loop.time() - started
    assert reply["t"] == "ok" and reply["id"] == "m1" and reply["seq"] == 1
    attempts = fs.attempts("g:flaky")
    assert len(attempts) == 3
    assert {a["cid"] for a in attempts} == {"c-1"}
    assert all(a["body"] == "hi" and a["t"] == "msg.send" for a in attempts)
    assert len({a["rid"] for a in attempts}) == 3  # a new rid per attempt
    assert waited >= 0.09  # two waits of retry_after 50 ms


async def test_request_retries_too_and_returns_the_ok_map(
        flaky: tuple[FlakyServer, str]) -> None:
    fs, url = flaky
    async with await Client.connect(url) as c:
        reply = await c.request("msg.send", conv="g:flaky", body="hi", cid="r-1")
    assert reply["t"] == "ok" and reply["seq"] == 1
    assert [a["cid"] for a in fs.attempts("g:flaky")] == ["r-1"] * 3


async def test_msg_send_without_cid_gets_one_kept_on_every_attempt(
        flaky: tuple[FlakyServer, str]) -> None:
    fs, url = flaky
    async with await Client.connect(url) as c:
        reply = await c.call("msg.send", conv="g:flaky", body="no cid")
        other = await c.call("msg.send", conv="g:plain", body="no cid either")
    assert reply["t"] == "ok"
    attempts = fs.attempts("g:flaky")
    assert len(attempts) == 3
    cids = {a.get("cid") for a in attempts}
    assert len(cids) == 1
    (cid,) = cids
    assert isinstance(cid, str) and 1 <= len(cid) <= 64  # the protocol's cid limit
    # Each send gets its own cid, so two sends without one are two messages.
    (plain,) = fs.attempts("g:plain")
    assert plain["cid"] != cid and other["id"] != reply["id"]


async def test_forbidden_and_internal_are_not_retried(
        flaky: tuple[FlakyServer, str]) -> None:
    fs, url = flaky
    async with await Client.connect(url) as c:
        with pytest.raises(ClientError) as exc:
            await c.call("msg.send", conv="g:locked", body="x", cid="f-1")
        assert exc.value.code == "forbidden" and exc.value.reply["reason"] == "muted"
        reply = await c.request("msg.send", conv="g:broken", body="x", cid="i-1")
        assert reply["code"] == "internal"
    assert len(fs.attempts("g:locked")) == 1
    assert len(fs.attempts("g:broken")) == 1


async def test_retries_are_bounded_then_the_error_is_raised(
        flaky: tuple[FlakyServer, str]) -> None:
    fs, url = flaky
    async with await Client.connect(url) as c:
        with pytest.raises(ClientError) as exc:
            await c.call("msg.send", conv="g:down", body="x", cid="d-1")
        assert exc.value.code == "unavailable" and exc.value.reply["retry_after"] == 10
        reply = await c.request("history", conv="g:down", after=0, limit=10)
        assert reply["code"] == "unavailable"
    sends = [a for a in fs.attempts("g:down") if a["t"] == "msg.send"]
    assert len(sends) == Client.retry_attempts == 5
    assert {a["cid"] for a in sends} == {"d-1"}
    assert len([a for a in fs.attempts("g:down") if a["t"] == "history"]) == 5


async def test_no_retry_that_would_end_after_the_total_budget(
        flaky: tuple[FlakyServer, str]) -> None:
    fs, url = flaky
    async with await Client.connect(url) as c:
        c.retry_total = 0.5  # retry_after 1000 ms would end past it: give up at once
        loop = asyncio.get_running_loop()
        started = loop.time()
        reply = await c.request("msg.send", conv="g:slow", body="x", cid="s-1")
        assert loop.time() - started < 0.5
    assert reply["code"] == "unavailable"
    assert len(fs.attempts("g:slow")) == 1


async def test_back_off_without_retry_after(flaky: tuple[FlakyServer, str]) -> None:
    fs, url = flaky
    async with await Client.connect(url) as c:
        reply = await c.call("msg.send", conv="g:nohint", body="x", cid="n-1")
    assert reply["t"] == "ok"
    assert [a["cid"] for a in fs.attempts("g:nohint")] == ["n-1"] * 3


async def test_retry_attempts_1_turns_retries_off(flaky: tuple[FlakyServer, str]) -> None:
    fs, url = flaky
    async with await Client.connect(url) as c:
        c.retry_attempts = 1
        reply = await c.request("msg.send", conv="g:flaky", body="x", cid="o-1")
    assert reply["code"] == "unavailable" and reply["retry_after"] == 50
    assert len(fs.attempts("g:flaky")) == 1
