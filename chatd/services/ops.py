"""How a service declares its ops, and what a request hands back to the edge.

An op is declared once, on the method that does it::

    @op("msg.send", conv=S, body=BODY, cid=S_OPT)
    async def send(self, call: Call, conv: str, body: str, cid: str | None = None) -> Reply:

The decorator records the wire name, the fields (validated by :mod:`chatd.protocol` before
the method runs, then passed as keyword arguments) and who may call it. User-written text is
declared as such (``LINE``, ``BODY``) so the edge refuses control characters, bidi overrides
and invisible-only text in it, with no check in the service. :func:`op_specs`
merges the declarations of the service classes into the table the protocol layer receives as
data; :func:`bind_ops` binds them to the service instances for the dispatcher.

A method answers with the reply map, ``None`` (a bare ``ok``), or an :class:`Outcome` whose
:data:`Effect` changes the session: :class:`Attach` after a login, :class:`End` after a logout
or an account deletion. The edge (``server.py``) applies effects: it is the one writer of
connection state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from chatd.errors import Unauthorized
from chatd.ids import ConvId, UserId
from chatd.protocol.envelope import AuthLevel, Field, OpSpec

__all__ = [
    "BODY",
    "BODY_OPT",
    "B_OPT",
    "I_OPT",
    "LINE",
    "LINE_OPT",
    "STR_LIST",
    "S_OPT",
    "Attach",
    "BoundOp",
    "Call",
    "Effect",
    "End",
    "Field",
    "Outcome",
    "Reply",
    "S",
    "bind_ops",
    "op",
    "op_specs",
]

S: Final = Field(str)
S_OPT: Final = Field(str, required=False)
I_OPT: Final = Field(int, required=False)
B_OPT: Final = Field(bool, required=False)
STR_LIST: Final = Field(list, items=str)
#: User-written text, checked at the edge (:mod:`chatd.protocol.text`): single-line text shown
#: to others (nicknames, a city), and multi-line text (bodies, bios, report texts, notes).
LINE: Final = Field(str, text="line")
LINE_OPT: Final = Field(str, required=False, text="line")
BODY: Final = Field(str, text="body")
BODY_OPT: Final = Field(str, required=False, text="body")

_MARK: Final = "__chatd_op__"


@dataclass(frozen=True, slots=True)
class Call:
    """Who is asking: what the edge knows of the connection a request came on."""

    conn_id: str
    address: str
    user_id: UserId | None = None
    token_hash: bytes | None = None

    @property
    def user(self) -> UserId:
        """The authenticated user (the session refuses ``auth != "none"`` ops before)."""
        if self.user_id is None:
            raise Unauthorized()
        return self.user_id


@dataclass(frozen=True, slots=True)
class Attach:
    """The connection now belongs to ``user_id``: register it with the node."""

    user_id: UserId
    token_hash: bytes
    convs: Mapping[ConvId, int]  # each conversation of the user and its last stored seq
    blocked: frozenset[UserId]


@dataclass(frozen=True, slots=True)
class End:
    """The session ends with this reply: nothing queued behind it runs, then close."""

    code: int
    reason: str


Effect = Attach | End


@dataclass(frozen=True, slots=True)
class Outcome:
    reply: dict[str, Any] | None
    effect: Effect


Reply = dict[str, Any] | Outcome | None
Handler = Callable[..., Awaitable[Reply]]
F = TypeVar("F", bound=Handler)


def op(name: str, *, auth: AuthLevel = "user", **fields: Field) -> Callable[[F], F]:
    """Declare the decorated service method as the op ``name`` with these fields."""
    def mark(fn: F) -> F:
        setattr(fn, _MARK, OpSpec(name, dict(fields), auth))
        return fn
    return mark


@dataclass(frozen=True, slots=True)
class BoundOp:
    spec: OpSpec
    run: Handler  # run(call, **validated_args)


def _declared(cls: type) -> list[tuple[str, OpSpec]]:
    found = []
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            spec = getattr(value, _MARK, None)
            if isinstance(spec, OpSpec):
                found.append((attr, spec))
    return found


def op_specs(*classes: type) -> dict[str, OpSpec]:
    """The merged op table of these service classes; an op declared twice is a bug."""
    table: dict[str, OpSpec] = {}
    for cls in classes:
        for _, spec in _declared(cls):
            if spec.name in table:
                raise ValueError(f"op {spec.name!r} is declared twice")
            table[spec.name] = spec
    return table


def bind_ops(*services: object) -> dict[str, BoundOp]:
    """Every declared op of these service instances, bound to its method."""
    bound: dict[str, BoundOp] = {}
    for service in services:
        for attr, spec in _declared(type(service)):
            if spec.name in bound:
                raise ValueError(f"op {spec.name!r} is declared twice")
            bound[spec.name] = BoundOp(spec, getattr(service, attr))
    return bound
