"""Frame codecs: MessagePack on binary frames, JSON on text frames. Pure functions, no I/O."""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

import msgpack

from chatd.errors import BadRequest

__all__ = ["CODECS", "JSON", "MSGPACK", "Codec", "Frame", "codec_for_subprotocol"]

Frame = bytes | str
SUBPROTOCOL_MSGPACK: Final = "chatd.v1.msgpack"
SUBPROTOCOL_JSON: Final = "chatd.v1.json"

# Bounds on what msgpack may allocate for one frame, independent of the frame size limit.
_MAX_NESTING: Final = 32


class Codec(Protocol):
    name: str
    subprotocol: str
    binary: bool

    def decode(self, frame: Frame) -> dict[str, Any]: ...
    def encode(self, obj: dict[str, Any]) -> Frame: ...


def _check_map(obj: object) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise BadRequest("a frame must hold exactly one map")
    if not all(isinstance(k, str) for k in obj):
        raise BadRequest("map keys must be strings")
    _check_depth(obj, 0)
    return obj


def _check_depth(obj: object, depth: int) -> None:
    if depth > _MAX_NESTING:
        raise BadRequest("frame nested too deeply")
    if isinstance(obj, dict):
        for v in obj.values():
            if isinstance(v, dict | list):
                _check_depth(v, depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict | list):
                _check_depth(v, depth + 1)


class MsgpackCodec:
    name = "msgpack"
    subprotocol = SUBPROTOCOL_MSGPACK
    binary = True

    def decode(self, frame: Frame) -> dict[str, Any]:
        if isinstance(frame, str):
            raise BadRequest("text frame on a msgpack connection; send binary frames")
        try:
            obj = msgpack.unpackb(frame, raw=False, strict_map_key=True, use_list=True)
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
