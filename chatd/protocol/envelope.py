"""Request envelopes: turn a decoded map into a validated :class:`Request` or raise BadRequest.

The machinery only: which ops exist is data handed in (an :data:`OpTable`), merged from the
declarations each service makes next to its methods (:mod:`chatd.services.ops`). Validation
checks presence and exact types (``True`` is not an int), so services receive clean values;
text fields marked ``text=`` also get the hygiene check of :mod:`chatd.protocol.text`. (The
codec has already refused lone surrogates, NUL and integers beyond 2^53 anywhere in the frame.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from chatd.errors import BadRequest
from chatd.protocol.text import TextKind, text_problem

__all__ = ["AuthLevel", "Field", "OpSpec", "OpTable", "Request", "parse_request"]

_MAX_RID: Final = 2**53  # JSON-safe integer range
_MAX_LIST: Final = 200

#: Who may run an op: anyone, an authenticated user, or a moderator (checked by the service,
#: which reads the role from the store).
AuthLevel = Literal["none", "user", "moderator"]


@dataclass(frozen=True, slots=True)
class Field:
    kind: type | tuple[type, ...]
    required: bool = True
    # For lists: the type of the items.
    items: type | None = None
    # For user-written text: ``"line"`` (nicknames) or ``"body"`` (multi-line), checked by
    # :func:`chatd.protocol.text.text_problem` (control, bidi and invisible-only text).
    text: TextKind | None = None


@dataclass(frozen=True, slots=True)
class OpSpec:
    name: str
    fields: Mapping[str, Field] = field(default_factory=dict)
    auth: AuthLevel = "user"

    @property
    def needs_user(self) -> bool:
        return self.auth != "none"


OpTable = Mapping[str, OpSpec]


@dataclass(frozen=True, slots=True)
class Request:
    op: str
    rid: int | None
    args: dict[str, Any]


def parse_request(obj: dict[str, Any], ops: OpTable) -> Request:
    """Validate one decoded frame. Raises BadRequest carrying the rid when it was readable."""
    rid_raw = obj.get("rid")
    if rid_raw is not None and (type(rid_raw) is not int or not 0 <= rid_raw <= _MAX_RID):
        raise BadRequest("'rid' must be a non-negative integer")
    rid: int | None = rid_raw
    try:
        return _parse_op(obj, rid, ops)
    except BadRequest as exc:
        exc.rid = rid
        raise


def _parse_op(obj: dict[str, Any], rid: int | None, ops: OpTable) -> Request:
    op = obj.get("t")
    if not isinstance(op, str):
        raise BadRequest("missing op: 't' must be a string")
    spec = ops.get(op)
    if spec is None:
        raise BadRequest(f"unknown op {op[:40]!r}")
    args: dict[str, Any] = {}
    for name, fspec in spec.fields.items():
        value = obj.get(name)
        if value is None:
            if fspec.required:
                raise BadRequest(f"missing field {name!r}", field=name)
            continue
        if not _is_kind(value, fspec.kind):
            raise BadRequest(f"field {name!r} has the wrong type", field=name)
        if fspec.items is not None:
            if len(value) > _MAX_LIST:
                raise BadRequest(f"field {name!r} has too many items", field=name)
            if not all(_is_kind(v, fspec.items) for v in value):
                raise BadRequest(f"field {name!r} has an item of the wrong type", field=name)
        if fspec.text is not None and isinstance(value, str):
            problem = text_problem(value, fspec.text)
            if problem is not None:
                raise BadRequest(f"field {name!r} {problem}", field=name)
        args[name] = value
    return Request(op, rid, args)


def _is_kind(value: object, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return kind is bool or (isinstance(kind, tuple) and bool in kind)
    return isinstance(value, kind)
