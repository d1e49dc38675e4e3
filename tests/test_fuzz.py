"""Fuzzing the protocol layer with hypothesis: random and mutated frames, every op.

Bounded in ``make test``; a longer run:
``CHATD_FUZZ_EXAMPLES=200000 .venv/bin/python -m pytest tests/test_fuzz.py``.
No input may raise; every answer is a well-formed ``err`` or a validated request; memory stays
bounded.
"""

from __future__ import annotations

import json
import os
import tracemalloc
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatd.protocol import JSON, MSGPACK, Reject, Request, Session, TokenBucket
from chatd.services.registry import OPS

EXAMPLES = int(os.environ.get("CHATD_FUZZ_EXAMPLES", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
           | st.floats(allow_nan=True) | st.text(max_size=50) | st.binary(max_size=50))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=30)


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A known op with each field either right, missing, or of a random type."""
    op = draw(st.sampled_from(sorted(OPS)))
    env: dict[str, Any] = {"t": op}
    if draw(st.booleans()):
        env["rid"] = draw(st.integers(min_value=-5, max_value=2**60) | st.text(max_size=3))
    for name, spec in OPS[op].fields.items():
        choice = draw(st.integers(0, 2))
        if choice == 0:
            continue
        if choice == 1 and spec.kind is str:
            env[name] = draw(st.text(max_size=30))
        elif choice == 1 and spec.kind is list:
            env[name] = draw(st.lists(st.text(max_size=10), max_size=5))
        else:
            env[name] = draw(values)
    extra = draw(st.dictionaries(st.text(max_size=6), values, max_size=3))
    return {**extra, **env}


def check(session: Session, frame: bytes | str) -> None:
    result = session.receive(frame)
    if isinstance(result, Request):
        assert result.op in OPS
        for name, value in result.args.items():
            spec = OPS[result.op].fields[name]
            # Exact types: a bool only where the field is a bool (True is not an int).
            assert isinstance(value, spec.kind)
            assert isinstance(value, bool) == (spec.kind is bool), (name, value)
        return
    assert isinstance(result, Reject)
    reply = json.loads(result.reply) if isinstance(result.reply, str) else \
        msgpack.unpackb(result.reply)
    assert reply["t"] == "err" and isinstance(reply["code"], str) and reply["msg"]


def fresh(codec: Any) -> Session:
    return Session(codec, TokenBucket(1e9, 10**9), OPS)


@FUZZ
@given(envelopes())
def test_mutated_envelopes_msgpack(env: dict[str, Any]) -> None:
    check(fresh(MSGPACK), msgpack.packb(env, use_bin_type=True))


@FUZZ
@given(envelopes())
def test_mutated_envelopes_json(env: dict[str, Any]) -> None:
    try:
        text = json.dumps(env)
    except (TypeError, ValueError):
        return  # bytes values have no JSON form
    check(fresh(JSON), text)


@FUZZ
@given(st.binary(max_size=2048), st.integers(0, 64))
def test_truncated_and_flipped_frames(data: bytes, flip: int) -> None:
    base = msgpack.packb({"t": "msg.send", "rid": 1, "conv": "g:x", "body": "hi"})
    mutated = bytearray(base + data)
    if mutated:
        mutated[flip % len(mutated)] ^= 0xFF
    check(fresh(MSGPACK), bytes(mutated))
    check(fresh(MSGPACK), bytes(mutated[: flip % (len(mutated) + 1)]))


def test_hostile_shapes_and_bounded_memory() -> None:
    session = fresh(MSGPACK)
    pack = msgpack.packb
    # {"t": "ping", "x": [[[... 10,000 levels ...]]]}, written by hand: the packer refuses it.
    deep = b"\x82" + pack("t") + pack("ping") + pack("x") + b"\x91" * 10_000 + pack("x")
    hostile = [
        deep,  # deep nesting
        msgpack.packb({"t": "ping", **{f"k{i}": i for i in range(5000)}}),  # huge map
        msgpack.packb({"t": "ping", "rid": 2**64 - 1}),  # huge number
        b"\xa3\xff\xfe\xfd",  # invalid UTF-8 string
        b"\xdf\xff\xff\xff\xff",  # a map header claiming 4 billion entries
        b"\xdd\xff\xff\xff\xff",  # an array header claiming 4 billion items
        msgpack.packb({"t": "register", "interests": ["x"] * 100_000}),
    ]
    tracemalloc.start()
    for frame in hostile * 20:
        check(session, frame)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 1024 * 1024
    check(fresh(JSON), "[" * 100_000 + "]" * 100_000)
    check(fresh(JSON), '{"t": "ping", "rid": 1e400}')
