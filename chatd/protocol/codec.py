"""Frame codecs: MessagePack on binary frames, JSON on text frames. Pure functions, no I/O.

Decoding also checks every value of the frame, however deeply nested, so nothing a service or
the store could choke on gets past the edge: no string with a lone surrogate (JSON ``"\\ud800"``;
invalid UTF-8 in msgpack) or a NUL, no integer beyond +-2^53, no NaN or infinity, no nesting
deeper than 32. A fault in a top-level field is ``bad_request`` naming it in ``field``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final, Protocol

import msgpack

from chatd.errors import BadRequest

__all__ = ["CODECS", "JSON", "MSGPACK", "Codec", "Frame", "codec_for_subprotocol"]

Frame = bytes | str
SUBPROTOCOL_MSGPACK: Final = "chatd.v1.msgpack"
SUBPROTOCOL_JSON: Final = "chatd.v1.json"

# Bounds on what msgpack may allocate for one frame, independent of the frame size limit.
_MAX_NESTING: Final = 32
#: Integers anywhere in a frame stay within what JSON clients and the store hold exactly.
MAX_INT: Final = 2**53
_MAX_FIELD_NAME: Final = 64


class Codec(Protocol):
    name: str
    subprotocol: str
    binary: bool

    def decode(self, frame: Frame) -> dict[str, Any]: ...
    def encode(self, obj: dict[str, Any]) -> Frame: ...


def _check_map(obj: object) -> dict[str, Any]:
    """One map whose every value is clean (see :func:`_value_problem`); a fault in a
    top-level field names it (``field``), and the reply carries the rid when it is readable."""
    if not isinstance(obj, dict):
        raise BadRequest("a frame must hold exactly one map")
    if not all(isinstance(k, str) for k in obj):
        raise BadRequest("map keys must be strings")
    try:
        for key, value in obj.items():
            if _str_problem(key):
                raise BadRequest("a map key is not valid text")
            problem = _value_problem(value, 1)
            if problem is not None:
                named = key if len(key) <= _MAX_FIELD_NAME else None
                raise BadRequest(f"field {key[:_MAX_FIELD_NAME]!r} {problem}", field=named)
    except BadRequest as exc:
        rid = obj.get("rid")
        if type(rid) is int and 0 <= rid <= MAX_INT:
            exc.rid = rid
        if exc.details.get("field") is None:
            exc.details.pop("field", None)
        raise
    return obj


def _str_problem(s: str) -> str | None:
    if "\x00" in s:
        return "holds a NUL character"
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid text (a lone surrogate or invalid UTF-8)"
    return None


def _value_problem(obj: object, depth: int) -> str | None:
    """Anything a service or the store could choke on, anywhere in a decoded value."""
    if isinstance(obj, str):
        return _str_problem(obj)
    if isinstance(obj, bool):
        return None
    if isinstance(obj, int):
        return None if -MAX_INT <= obj <= MAX_INT else "is an integer out of range (2^53)"
    if isinstance(obj, float):
        return None if math.isfinite(obj) else "is not a finite number"
    if isinstance(obj, dict | list):
        if depth > _MAX_NESTING:
            return "is nested too deeply"
        if isinstance(obj, dict):
            for k, v in obj.items():
                if not isinstance(k, str):
                    return "holds a map with a key that is not a string"
                problem = _str_problem(k) or _value_problem(v, depth + 1)
                if problem is not None:
                    return problem
            return None
        for v in obj:
            problem = _value_problem(v, depth + 1)
            if problem is not None:
                return problem
    return None


class MsgpackCodec:
    name = "msgpack"
    subprotocol = SUBPROTOCOL_MSGPACK
    binary = True

    def decode(self, frame: Frame) -> dict[str, Any]:
        if isinstance(frame, str):
            raise BadRequest("text frame on a msgpack connection; send binary frames")
        try:
            # Invalid UTF-8 decodes to lone surrogates, which the value check refuses by field.
            obj = msgpack.unpackb(frame, raw=False, strict_map_key=True, use_list=True,
                                  unicode_errors="surrogateescape")
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            raise BadRequest("frame is not valid MessagePack") from None
        except UnicodeDecodeError:
            raise BadRequest("frame holds invalid UTF-8") from None
        except Exception:
            raise BadRequest("frame is not valid MessagePack") from None
        return _check_map(obj)

    def encode(self, obj: dict[str, Any]) -> bytes:
        data: bytes = msgpack.packb(obj, use_bin_type=True)
        return data


class JsonCodec:
    name = "json"
    subprotocol = SUBPROTOCOL_JSON
    binary = False

    def decode(self, frame: Frame) -> dict[str, Any]:
        if isinstance(frame, bytes):
            raise BadRequest("binary frame on a JSON connection; send text frames")
        try:
            obj = json.loads(frame)
        except (ValueError, RecursionError):
            raise BadRequest("frame is not valid JSON") from None
        return _check_map(obj)

    def encode(self, obj: dict[str, Any]) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


MSGPACK: Final = MsgpackCodec()
JSON: Final = JsonCodec()
CODECS: Final[dict[str, Codec]] = {MSGPACK.subprotocol: MSGPACK, JSON.subprotocol: JSON}


def codec_for_subprotocol(subprotocol: str | None) -> Codec:
    """The codec the client negotiated; msgpack when it offered neither."""
    return CODECS.get(subprotocol or "", MSGPACK)
