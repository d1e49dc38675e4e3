"""Request envelopes: turn a decoded map into a validated :class:`Request` or raise BadRequest.

Each op declares its fields once (:data:`OPS`); validation checks presence and exact types
(``True`` is not an int), so services receive clean values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from chatd.errors import BadRequest

__all__ = ["MOD_OPS", "OPS", "Field", "OpSpec", "Request", "parse_request"]

_MAX_RID: Final = 2**53  # JSON-safe integer range
_MAX_LIST: Final = 200


@dataclass(frozen=True, slots=True)
class Field:
    kind: type | tuple[type, ...]
    required: bool = True
    # For lists: the type of the items.
    items: type | None = None


@dataclass(frozen=True, slots=True)
class OpSpec:
    fields: dict[str, Field]
    auth: bool = True


@dataclass(frozen=True, slots=True)
class Request:
    op: str
    rid: int | None
    args: dict[str, Any]


S = Field(str)
S_OPT = Field(str, required=False)
I_OPT = Field(int, required=False)
B_OPT = Field(bool, required=False)

OPS: Final[dict[str, OpSpec]] = {
    # Accounts (before auth)
    "sms.send": OpSpec({"phone": S, "purpose": S}, auth=False),
    "register": OpSpec({
        "phone": S, "code": S, "password": S, "birthdate": S, "gender": S,
        "interests": Field(list, items=str), "nickname": S,
        "device": S_OPT,
    }, auth=False),
    "login": OpSpec({"phone": S, "password": S_OPT, "code": S_OPT, "device": S_OPT}, auth=False),
    "auth": OpSpec({"token": S}, auth=False),
    "password.reset": OpSpec({"phone": S, "code": S, "password": S}, auth=False),
    "interests": OpSpec({}, auth=False),
    "ping": OpSpec({}, auth=False),
    # Accounts (after auth)
    "me": OpSpec({}),
    "logout": OpSpec({}),
    "phone.rebind": OpSpec({"phone": S, "code": S}),
    "profile.update": OpSpec({
        "nickname": S_OPT, "bio": S_OPT, "interests": Field(list, required=False, items=str),
    }),
    # Matching and chat
    "match.start": OpSpec({"prefs": Field(dict, required=False)}),
    "match.cancel": OpSpec({}),
    "msg.send": OpSpec({"conv": S, "body": S, "cid": S_OPT}),
    "history": OpSpec({"conv": S, "after": I_OPT, "limit": I_OPT}),
    "convs": OpSpec({}),
    "conv.leave": OpSpec({"conv": S}),
    "read": OpSpec({"conv": S, "seq": Field(int)}),
    "typing": OpSpec({"conv": S}),
    "presence": OpSpec({"users": Field(list, items=str)}),
    "block": OpSpec({"user": S}),
    "unblock": OpSpec({"user": S}),
    # Status posts, feeds, search, reports
    "post.create": OpSpec({"body": S, "group": S_OPT, "city": S_OPT}),
    "post.delete": OpSpec({"id": S}),
    "feed": OpSpec({"scope": S, "group": S_OPT, "before": S_OPT, "limit": I_OPT}),
    "search": OpSpec({"q": S, "kind": S_OPT, "offset": I_OPT, "limit": I_OPT}),
    "search.history": OpSpec({"limit": I_OPT}),
    "search.history.clear": OpSpec({}),
    "report": OpSpec({"kind": S, "target": S, "reason": S, "text": S_OPT}),
    "reports.mine": OpSpec({}),
    # Users' rights
    "consent.set": OpSpec({"marketing": B_OPT, "location": B_OPT, "search_history": B_OPT}),
    "account.export": OpSpec({}),
    "account.delete": OpSpec({"password": S_OPT, "code": S_OPT}),
    # Moderators only (everyone else: forbidden)
    "mod.words.add": OpSpec({"word": S, "category": S_OPT, "action": S_OPT}),
    "mod.words.remove": OpSpec({"word": S}),
    "mod.allow.add": OpSpec({"word": S}),
    "mod.allow.remove": OpSpec({"word": S}),
    "mod.words.list": OpSpec({"q": S_OPT, "offset": I_OPT, "limit": I_OPT}),
    "mod.words.version": OpSpec({}),
    "mod.words.check": OpSpec({"text": S}),
    "mod.queue": OpSpec({"queue": S, "offset": I_OPT, "limit": I_OPT}),
    "mod.resolve": OpSpec({"item": S, "action": S, "duration": I_OPT, "note": S_OPT}),
    "mod.warn": OpSpec({"user": S, "note": S_OPT}),
    "mod.mute": OpSpec({"user": S, "duration": Field(int), "note": S_OPT}),
    "mod.ban": OpSpec({"user": S, "duration": I_OPT, "note": S_OPT}),
    "mod.unban": OpSpec({"user": S}),
    "mod.audit": OpSpec({"before": I_OPT, "limit": I_OPT, "target": S_OPT}),
}

#: The moderator ops: each answers ``forbidden`` to anyone whose role is not ``moderator``.
MOD_OPS: Final = tuple(op for op in OPS if op.startswith("mod."))


def parse_request(obj: dict[str, Any]) -> Request:
    """Validate one decoded frame. Raises BadRequest carrying the rid when it was readable."""
    rid_raw = obj.get("rid")
    if rid_raw is not None and (type(rid_raw) is not int or not 0 <= rid_raw <= _MAX_RID):
        raise BadRequest("'rid' must be a non-negative integer")
    rid: int | None = rid_raw
    try:
        return _parse_op(obj, rid)
    except BadRequest as exc:
        exc.rid = rid
        raise


def _parse_op(obj: dict[str, Any], rid: int | None) -> Request:
    op = obj.get("t")
    if not isinstance(op, str):
        raise BadRequest("missing op: 't' must be a string")
    spec = OPS.get(op)
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
        args[name] = value
    return Request(op, rid, args)


def _is_kind(value: object, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return kind is bool or (isinstance(kind, tuple) and bool in kind)
    return isinstance(value, kind)
