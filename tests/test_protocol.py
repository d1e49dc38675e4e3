"""The sans-I/O protocol layer, driven without sockets."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatd.errors import Unauthorized
from chatd.ids import UserId
from chatd.protocol import JSON, MSGPACK, Reject, Request, Session, TokenBucket
from chatd.services.registry import OPS


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def session(codec=MSGPACK, rate: float = 1000, burst: int = 1000, clock=None) -> Session:
    return Session(codec, TokenBucket(rate, burst, clock or FakeClock()), OPS)


def reply(s: Session, frame) -> dict:
    result = s.receive(frame)
    assert isinstance(result, Reject), result
    raw = result.reply
    return json.loads(raw) if isinstance(raw, str) else msgpack.unpackb(raw)


def pack(obj) -> bytes:
    return msgpack.packb(obj)


def test_valid_request_is_parsed() -> None:
    result = session().receive(pack({"t": "sms.send", "rid": 7, "phone": "1", "purpose": "login"}))
    assert isinstance(result, Request)
    assert result.op == "sms.send" and result.rid == 7
    assert result.args == {"phone": "1", "purpose": "login"}


@pytest.mark.parametrize("frame, needle", [
    (b"\xc1\xff\x00", "MessagePack"),
    (pack([1, 2, 3]), "map"),
    (pack({"rid": 1}), "op"),
    (pack({"t": "nope", "rid": 1}), "unknown op"),
    (pack({"t": "sms.send", "rid": 1, "phone": 5, "purpose": "login"}), "wrong type"),
    (pack({"t": "sms.send", "rid": 1, "purpose": "login"}), "missing field 'phone'"),
    (pack({"t": "history", "rid": 1, "conv": "g:x", "after": True}), "wrong type"),
    (pack({"t": "ping", "rid": "x"}), "rid"),
    ("{\"t\": \"ping\"}", "text frame"),
    (pack({1: 2}), "MessagePack"),
])
def test_malformed_msgpack_frames_get_bad_request(frame, needle) -> None:
    r = reply(session(), frame)
    assert r["t"] == "err" and r["code"] == "bad_request"
    assert needle in r["msg"]


def test_rid_is_echoed_in_errors_when_readable() -> None:
    r = reply(session(), pack({"t": "nope", "rid": 42}))
    assert r["rid"] == 42


@pytest.mark.parametrize("frame, needle", [
    ("not json", "JSON"),
    ("[1]", "map"),
    (b"\x80", "binary frame"),
    ("{\"t\": \"register\", \"rid\": 3}", "missing field"),
])
def test_malformed_json_frames_get_bad_request(frame, needle) -> None:
    r = reply(session(JSON), frame)
    assert r["code"] == "bad_request" and needle in r["msg"]


def test_deep_nesting_is_refused() -> None:
    obj: object = 1
    for _ in range(100):
        obj = [obj]
    r = reply(session(), pack({"t": "ping", "x": obj}))
    assert r["code"] == "bad_request"


def test_token_bucket_limits_and_refills() -> None:
    clock = FakeClock()
    s = session(rate=2, burst=2, clock=clock)
    frame = pack({"t": "ping", "rid": 1})
    assert isinstance(s.receive(frame), Request)
    assert isinstance(s.receive(frame), Request)
    r = reply(s, frame)
    assert r["code"] == "rate_limited" and r["retry_after"] > 0 and r["rid"] == 1
    clock.now += 0.5
    assert isinstance(s.receive(frame), Request)


def test_authorize_refuses_auth_ops_before_login() -> None:
    s = session()
    req = s.receive(pack({"t": "msg.send", "rid": 1, "conv": "g:x", "body": "hi"}))
    assert isinstance(req, Request)
    with pytest.raises(Unauthorized):
        s.authorize(req)
    s.user_id = UserId("u1")
    s.authorize(req)


def test_ok_reply_shape() -> None:
    s = session(JSON)
    assert json.loads(s.ok(5, {"x": 1})) == {"t": "ok", "rid": 5, "x": 1}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = session().receive(data)
    if isinstance(result, Reject):
        assert msgpack.unpackb(result.reply)["t"] == "err"


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=4),
    max_leaves=20), max_size=6))
def test_random_maps_get_request_or_well_formed_error(obj: dict) -> None:
    obj.setdefault("t", "msg.send")
    result = session(JSON).receive(json.dumps(obj))
    if isinstance(result, Reject):
        r = json.loads(result.reply)
        assert r["t"] == "err" and isinstance(r["code"], str) and isinstance(r["msg"], str)
