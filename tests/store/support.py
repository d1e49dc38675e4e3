"""Helpers of the store suite: ids unique per run, records, small scenarios.

SQLite gets a fresh file per test; PostgreSQL one fresh database per session (``tests.pg``),
so every test makes its own ids and phones with :func:`uid` and :func:`phone`.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from chatd.store import ConvId, Post, Store, User, UserId

__all__ = ["NOW", "Backend", "direct", "new_user", "phone", "post", "uid", "user"]

RUN = secrets.token_hex(3)
_seq = itertools.count(1)
NOW = 1_700_000_000_000


def uid(prefix: str = "u") -> str:
    """An id no other test of this run (or an earlier run) uses."""
    return f"{prefix}-{RUN}-{next(_seq)}"


def phone() -> str:
    return f"+86139{int(RUN, 16) % 10000:04d}{next(_seq):05d}"


def user(interests: tuple[str, ...] = (), **kw: object) -> User:
    base = User(id=UserId(uid()), phone=phone(), pw_hash="argon2$x", birthdate="2000-01-02",
                gender="f", nickname="nick", bio="", role="user", created_at=NOW,
                interests=interests)
    return replace(base, **kw)  # type: ignore[arg-type]


def post(author: UserId, body: str = "hello", ts: int = NOW, group: str | None = None,
         **kw: object) -> Post:
    return Post(uid("p"), author, body, ts, group, **kw)  # type: ignore[arg-type]


@dataclass
class Backend:
    name: str
    make: Callable[[], Store]
    # Runs one SQL statement behind the store's back (for columns the protocol cannot set).
    raw: Callable[[str, tuple[object, ...]], Awaitable[None]]
    dsn: str = ""  # PostgreSQL: the test database, for tests that look below the store


async def new_user(store: Store, interests: tuple[str, ...] = (),
                   groups: tuple[str, ...] = ()) -> User:
    u = user(interests)
    await store.create_user(u, [ConvId(g) for g in groups])
    return u


async def direct(store: Store) -> tuple[ConvId, User, User]:
    a, b = await new_user(store), await new_user(store)
    conv = ConvId(uid("d"))
    await store.create_direct(conv, a.id, b.id, NOW)
    return conv, a, b
