"""The sans-I/O wire protocol: codecs, envelope validation, per-connection session state."""

from __future__ import annotations

from chatd.protocol.codec import CODECS, JSON, MSGPACK, Codec, Frame, codec_for_subprotocol
from chatd.protocol.envelope import AuthLevel, Field, OpSpec, OpTable, Request, parse_request
from chatd.protocol.session import Reject, Session, TokenBucket

__all__ = [
    "CODECS",
    "JSON",
    "MSGPACK",
    "AuthLevel",
    "Codec",
    "Field",
    "Frame",
    "OpSpec",
    "OpTable",
    "Reject",
    "Request",
    "Session",
    "TokenBucket",
    "codec_for_subprotocol",
    "parse_request",
]
