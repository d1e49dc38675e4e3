"""Client input is validated at the edge: whatever a client sends gets an answer.

Lone surrogates (JSON ``"\\ud800"``, invalid UTF-8 in msgpack), NUL, integers beyond 2^53 and
non-finite numbers, in any field of any op and nested inside maps and lists, are answered
``bad_request`` naming the field. Never ``internal``, never silence, never a traceback; the
connection stays usable. Also: nothing pipelined behind a session-ending reply runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import msgpack
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from chatd.client import Client
from chatd.protocol import JSON, MSGPACK, Reject, Session, TokenBucket
from chatd.server import ChatServer
from chatd.services.registry import OPS
from chatd.store import UserId
from tests.conftest import new_phone, registered, t
from tests.test_authz_matrix import SAMPLES

SURROGATE = "ok\ud800"
HUGE = (2**63, -(2**63) - 1, 2**53 + 1)


def cases_for_strings() -> list[tuple[str, str, dict[str, Any]]]:
    """(op, field, request fields) with a lone surrogate in that one field, for every text
    field (and every list of texts) of every op."""
    out = []
    for op, spec in sorted(OPS.items()):
        for name, field in spec.fields.items():
            if field.kind is str:
                out.append((op, name, {**SAMPLES[op], name: SURROGATE}))
            elif field.kind is list and field.items is str:
                out.append((op, name, {**SAMPLES[op], name: ["fine", SURROGATE]}))
    return out


def cases_for_ints() -> list[tuple[str, str, dict[str, Any]]]:
    return [(op, name, {**SAMPLES[op], name: n})
            for op, spec in sorted(OPS.items())
            for name, field in spec.fields.items() if field.kind is int
            for n in HUGE]


async def raw(c: Client, frame: bytes | str) -> dict[str, Any]:
    """Send a frame the client would not encode itself; its reply (matched by nobody)."""
    await c.send_raw(frame)
    return await asyncio.wait_for(c.replies_without_rid.get(), t(5))


async def moderator(server: ChatServer, url: str, codec: Any = "json") -> Client:
    m = await registered(url, ["pet.cat"], codec=codec)
    await server.app.store.set_role(UserId(m.user["id"]), "moderator")  # type: ignore[index]
    return m


def quiet(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing at WARNING or above was logged by the server since the last clear."""
    loud = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.startswith("chatd")]
    assert loud == [], loud


def assert_bad_field(reply: dict[str, Any], rid: int, field: str, what: object) -> None:
    assert reply.get("t") == "err" and reply.get("code") == "bad_request", (what, reply)
    assert reply.get("field") == field and reply.get("rid") == rid, (what, reply)


async def test_lone_surrogates_in_any_text_field_get_bad_request(
        server: ChatServer, url: str, caplog: pytest.LogCaptureFixture) -> None:
    mod = await moderator(server, url)
    anon = await Client.connect(url, "json")
    caplog.clear()
    caplog.set_level(logging.WARNING)
    for rid, (op, name, fields) in enumerate(cases_for_strings(), 100):
        c = anon if OPS[op].auth == "none" else mod
        # json.dumps escapes the lone surrogate as \ud800: valid JSON, invalid text.
        reply = await raw(c, json.dumps({"t": op, "rid": rid, **fields}))
        assert_bad_field(reply, rid, name, (op, name))
    quiet(caplog)
    for c in (mod, anon):
        assert (await c.call("ping"))["t"] == "ok"  # the connections stay usable
    assert (await mod.call("msg.send", conv="g:pet.cat", body="still fine"))["seq"] >= 1
    await mod.close()
    await anon.close()


async def test_presence_with_a_lone_surrogate_is_answered(url: str) -> None:
    c = await registered(url, codec="json")
    reply = await raw(c, json.dumps({"t": "presence", "rid": 9, "users": ["\ud800"]}))
    assert_bad_field(reply, 9, "users", "presence")
    assert (await c.call("presence", users=[c.user["id"]]))["t"] == "ok"  # type: ignore[index]
    await c.close()


async def test_huge_integers_in_any_int_field_get_bad_request(
        server: ChatServer, url: str, caplog: pytest.LogCaptureFixture) -> None:
    mod_json = await moderator(server, url)
    mod_pack = await moderator(server, url, codec="msgpack")
    caplog.clear()
    caplog.set_level(logging.WARNING)
    for rid, (op, name, fields) in enumerate(cases_for_ints(), 100):
        reply = await raw(mod_json, json.dumps({"t": op, "rid": rid, **fields}))
        assert_bad_field(reply, rid, name, (op, name, fields[name]))
        for n in (2**64 - 1, 2**63, -(2**63), 2**53 + 1):  # what msgpack can carry
            frame = msgpack.packb({"t": op, "rid": rid, **fields, name: n})
            reply = await raw(mod_pack, frame)
            assert_bad_field(reply, rid, name, (op, name, n, "msgpack"))
    # The bound is 2^53 either way: the largest allowed value is still taken.
    assert (await mod_json.call("history", conv="g:pet.cat", after=2**53))["messages"] == []
    quiet(caplog)
    for c in (mod_json, mod_pack):
        assert (await c.call("ping"))["t"] == "ok"
        await c.close()


async def test_nested_values_are_checked_too(url: str, caplog: pytest.LogCaptureFixture) -> None:
    c = await registered(url, codec="json")
    caplog.clear()
    caplog.set_level(logging.WARNING)
    nested: list[tuple[str, dict[str, Any], str]] = [
        ("match.start", {"prefs": {"age_min": 2**63}}, "prefs"),
        ("match.start", {"prefs": {"age_min": -(2**70)}}, "prefs"),
        ("match.start", {"prefs": {"gender": ["male", "\udfff"]}}, "prefs"),
        ("match.start", {"prefs": {"\ud800": 1}}, "prefs"),
        ("match.start", {"prefs": {"gender": "male\u0000"}}, "prefs"),
        ("profile.update", {"interests": ["music.rock\u0000"]}, "interests"),
        ("msg.send", {"conv": "g:music.rock", "body": "hi", "x": [[{"y": 2**64}]]}, "x"),
    ]
    for rid, (op, fields, name) in enumerate(nested, 1):
        assert_bad_field(await raw(c, json.dumps({"t": op, "rid": rid, **fields})), rid,
                         name, (op, fields))
    # Non-finite numbers (Python's json reads NaN and Infinity) and bad keys are refused too.
    r = await raw(c, '{"t": "match.start", "rid": 50, "prefs": {"age_min": NaN}}')
    assert_bad_field(r, 50, "prefs", "NaN")
    r = await raw(c, json.dumps({"t": "ping", "rid": 51, "\ud800": 1}))
    assert r["code"] == "bad_request" and r["rid"] == 51 and "field" not in r
    quiet(caplog)
    assert (await c.call("match.start", prefs={"age_min": 18}))["queued"] is True
    await c.close()


async def test_invalid_utf8_in_msgpack_names_the_field(url: str) -> None:
    c = await registered(url)
    frame = msgpack.packb({"t": "msg.send", "rid": 4, "conv": "g:music.rock", "body": "XX"})
    reply = await raw(c, frame.replace(b"\xa2XX", b"\xa2\xed\xa0"))  # an encoded surrogate
    assert_bad_field(reply, 4, "body", "msgpack utf-8")
    await c.close()


def test_codec_refuses_what_the_store_cannot_hold() -> None:
    """The same checks without a socket: the sans-I/O session, both codecs."""
    for codec in (JSON, MSGPACK):
        s = Session(codec, TokenBucket(1e6, 10**6), OPS)
        for value in ("a\ud800", "\udc00b", "nul\x00", 2**53 + 1, -(2**53) - 1, 2**64 - 1,
                      float("inf"), {"k": [1, 2**60]}):
            obj = {"t": "ping", "rid": 3, "v": value}
            if codec is JSON:
                frame: bytes | str = json.dumps(obj)
            elif isinstance(value, str) and not value.startswith("nul"):
                # msgpack cannot carry a surrogate; the same bytes, invalid as UTF-8.
                frame = msgpack.packb({**obj, "v": "XXXX"}).replace(
                    b"XXXX", value.encode("utf-8", "surrogatepass"))  # 4 bytes
            else:
                frame = msgpack.packb(obj)
            result = s.receive(frame)
            assert isinstance(result, Reject), (codec.name, value)
            reply = codec.encode(result.error.to_wire())  # the reply itself encodes fine
            back = json.loads(reply) if isinstance(reply, str) else msgpack.unpackb(reply)
            assert back["field"] == "v" and back["rid"] == 3, (codec.name, value, back)
        # At the bound and ordinary text are fine.
        obj = {"t": "ping", "rid": 2**53, "v": [2**53, -(2**53), "日本語 👨\u200d👩\u200d👧", 1.5]}
        ok = s.receive(json.dumps(obj) if codec is JSON else msgpack.packb(obj))
        assert not isinstance(ok, Reject), ok


# --- nothing queued behind a session-ending reply runs ----------------------------------

async def pipelined(url: str, requests: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                                      int | None]:
    """Open a raw JSON connection, write every request in ONE write (no waiting for any
    reply), then read until the server closes. Returns the replies and the close code."""
    proto = ClientProtocol(parse_uri(url), subprotocols=[Subprotocol("chatd.v1.json")])
    proto.send_request(proto.connect())
    reader, writer = await asyncio.open_connection("127.0.0.1", urlsplit(url).port)
    writer.write(b"".join(proto.data_to_send()))
    while proto.state is not State.OPEN:
        data = await asyncio.wait_for(reader.read(65536), t(5))
        assert data, "no handshake response"
        proto.receive_data(data)
    assert proto.handshake_exc is None
    list(proto.events_received())  # the handshake response
    for request in requests:
        proto.send_text(json.dumps(request).encode())
    writer.write(b"".join(proto.data_to_send()))
    replies: list[dict[str, Any]] = []
    while True:
        data = await asyncio.wait_for(reader.read(65536), t(10))
        if not data:
            proto.receive_eof()
            break
        proto.receive_data(data)
        writer.write(b"".join(proto.data_to_send()))  # answer the close handshake
        for event in proto.events_received():
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                replies.append(json.loads(bytes(event.data)))
    writer.close()
    return replies, proto.close_rcvd.code if proto.close_rcvd is not None else None


def sends(first_rid: int, tag: str, n: int = 6) -> list[dict[str, Any]]:
    return [{"t": "msg.send", "rid": first_rid + i, "conv": "g:music.rock",
             "body": f"{tag} {i}", "cid": f"{tag}-{i}"} for i in range(n)]


async def group_bodies(observer: Client) -> list[str]:
    history = await observer.call("history", conv="g:music.rock", limit=200)
    return [m["body"] for m in history["messages"]]


@pytest.mark.parametrize("ending", ["logout", "account.delete"])
async def test_nothing_pipelined_behind_a_session_ending_reply_runs(url: str,
                                                                    ending: str) -> None:
    observer = await registered(url, ["music.rock"])  # still logged in, same group
    author = await registered(url, ["music.rock"])
    assert author.token is not None
    await author.close()
    end: dict[str, Any] = {"t": ending, "rid": 3}
    if ending == "account.delete":
        end["password"] = "correct horse 1"
    tag = f"after {ending}"
    replies, code = await pipelined(url, [
        {"t": "auth", "rid": 1, "token": author.token},
        {"t": "msg.send", "rid": 2, "conv": "g:music.rock", "body": f"before {ending}",
         "cid": f"before-{ending}"},
        end, *sends(4, tag)])
    by_rid = {r.get("rid"): r for r in replies}
    assert [by_rid[i]["t"] for i in (1, 2, 3)] == ["ok", "ok", "ok"], replies
    assert [r for r in replies if r.get("rid", 0) >= 4] == [], replies  # never run
    assert code == 4001
    await asyncio.sleep(t(0.3))  # time enough to store a late message, had one run
    bodies = await group_bodies(observer)
    assert not [b for b in bodies if b.startswith(tag)], bodies
    if ending == "logout":
        assert f"before {ending}" in bodies
    # The other account and the node are fine.
    assert (await observer.call("msg.send", conv="g:music.rock", body="still here"))["seq"]
    async with await Client.connect(url) as again:
        reply = await again.request("auth", token=author.token)
        assert reply["code"] == "unauthorized"
    await observer.close()


async def test_logout_with_a_fresh_login_pipelined_stops_too(url: str) -> None:
    """login + logout + sends in one write: the sends queued behind the logout never run."""
    phone = new_phone()
    observer = await registered(url, ["music.rock"])
    author = await Client.connect(url)
    await author.register(phone, interests=["music.rock"])
    await author.close()
    replies, code = await pipelined(url, [
        {"t": "login", "rid": 1, "phone": phone, "password": "correct horse 1"},
        {"t": "logout", "rid": 2}, *sends(3, "after relogin")])
    assert [r["t"] for r in replies if r.get("rid") in (1, 2)] == ["ok", "ok"], replies
    assert [r for r in replies if r.get("rid", 0) >= 3] == [] and code == 4001, replies
    await asyncio.sleep(t(0.3))
    assert not [b for b in await group_bodies(observer) if b.startswith("after relogin")]
    await observer.close()
