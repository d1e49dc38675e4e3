"""The Store contract: one suite, run against every implementation (SQLite, PostgreSQL).

SQLite gets a fresh file per test; PostgreSQL one fresh database per session (``tests.pg``),
so every test makes its own ids and phones with :func:`uid` and :func:`phone`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
import pytest

from chatd.store import (
    ConvId,
    DuplicateError,
    Message,
    SessionRow,
    SQLiteStore,
    Store,
    StoreError,
    User,
    UserId,
)
from chatd.store.postgres import PostgresStore
from chatd.store.postgres.schema import MIGRATIONS as PG_MIGRATIONS
from chatd.store.sqlite.schema import MIGRATIONS as SQLITE_MIGRATIONS
from tests.pg import create_database, drop_database, pg_dsn

__all__ = ["pg_dsn"]  # re-exported so pytest sees the fixture

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


@dataclass
class Backend:
    name: str
    make: Callable[[], Store]
    # Runs one SQL statement behind the store's back (for columns the protocol cannot set).
    raw: Callable[[str, tuple[object, ...]], Awaitable[None]]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "chatd.db"

        async def raw_sqlite(sql: str, args: tuple[object, ...]) -> None:
            with contextlib.closing(sqlite3.connect(path)) as conn, conn:
                conn.execute(sql.replace("$1", "?").replace("$2", "?"), args)

        return Backend("sqlite", lambda: SQLiteStore(path), raw_sqlite)
    dsn: str = request.getfixturevalue("pg_dsn")

    async def raw_pg(sql: str, args: tuple[object, ...]) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    return Backend("postgres", lambda: PostgresStore(dsn, min_size=1, max_size=10), raw_pg)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = backend.make()
    await s.open()
    try:
        yield s
    finally:
        await s.close()


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


# --- users -----------------------------------------------------------------------------------

async def test_create_and_get_user(store: Store) -> None:
    g = uid("g:")
    u = user(("music.rock", "books"), bio="hi")
    await store.create_user(u, [ConvId(g)])
    assert await store.get_user(u.id) == u
    assert await store.get_user_by_phone(u.phone) == u
    assert await store.get_user(UserId(uid())) is None
    assert await store.get_user_by_phone(phone()) is None
    got = await store.get_user(u.id)
    assert got is not None and got.interests == ("music.rock", "books")
    assert (got.banned_until, got.muted_until) == (0, 0)


async def test_duplicate_phone_or_id(store: Store) -> None:
    u = await new_user(store)
    with pytest.raises(DuplicateError):
        await store.create_user(user(phone=u.phone), [])
    with pytest.raises(DuplicateError):
        await store.create_user(user(id=u.id), [])
    assert issubclass(DuplicateError, StoreError)
    # A failed registration leaves nothing behind: it was one transaction.
    g = ConvId(uid("g:"))
    failed = user(("t",), phone=u.phone)
    with pytest.raises(DuplicateError):
        await store.create_user(failed, [g])
    assert await store.get_user(failed.id) is None
    assert await store.send_context(g, failed.id) is None


async def test_set_password_and_phone(store: Store) -> None:
    u, v = await new_user(store), await new_user(store)
    await store.set_password(u.id, "argon2$new")
    got = await store.get_user(u.id)
    assert got is not None and got.pw_hash == "argon2$new"
    fresh = phone()
    await store.set_phone(u.id, fresh)
    assert await store.get_user_by_phone(u.phone) is None
    moved = await store.get_user_by_phone(fresh)
    assert moved is not None and moved.id == u.id
    with pytest.raises(DuplicateError):
        await store.set_phone(u.id, v.phone)
    still = await store.get_user(u.id)
    assert still is not None and still.phone == fresh


async def test_update_profile_fields(store: Store) -> None:
    u = await new_user(store, ("a", "b"))
    got = await store.update_profile(u.id, "new nick", None, None, None)
    assert (got.nickname, got.bio, got.interests) == ("new nick", "", ("a", "b"))
    got = await store.update_profile(u.id, None, "about me", None, None)
    assert (got.nickname, got.bio) == ("new nick", "about me")
    assert await store.get_user(u.id) == got
    with pytest.raises(StoreError):
        await store.update_profile(UserId(uid()), "x", None, None, None)


async def test_update_profile_interests_sync_groups(store: Store) -> None:
    g1, g2, g3 = ConvId(uid("g:")), ConvId(uid("g:")), ConvId(uid("g:"))
    u = await new_user(store, ("t1", "t2"), (g1, g2))
    other = await new_user(store, ("t3",), (g3,))
    for i in range(3):
        await store.append_message(g3, uid("m"), other.id, f"m{i}", NOW, None, False)
    got = await store.update_profile(u.id, None, None, ["t3", "t2"], [g2, g3])
    assert got.interests == ("t3", "t2")
    assert await store.is_member(g2, u.id) and await store.is_member(g3, u.id)
    assert not await store.is_member(g1, u.id)
    assert u.id not in await store.conv_members(g1)
    summary = {c.id: c for c in await store.user_convs(u.id)}
    assert set(summary) == {g2, g3}
    # A new member starts at the group's last seq: old messages are not unread.
    assert (summary[g3].last_seq, summary[g3].read_seq) == (3, 3)
    assert summary[g3].kind == "group" and summary[g3].peer is None
    # A brand-new group is created on demand.
    g4 = ConvId(uid("g:"))
    await store.update_profile(u.id, None, None, ["t4"], [g4])
    assert [c.id for c in await store.user_convs(u.id)] == [g4]
    ctx = await store.send_context(g4, u.id)
    assert ctx is not None and ctx.kind == "group" and ctx.member


async def test_rejoin_group_after_leaving(store: Store) -> None:
    g = ConvId(uid("g:"))
    u = await new_user(store, ("t",), (g,))
    other = await new_user(store, ("t",), (g,))
    assert await store.leave_conv(g, u.id, NOW)
    assert not await store.is_member(g, u.id) and await store.was_member(g, u.id)
    ctx = await store.send_context(g, other.id)
    assert ctx is not None and not ctx.closed  # leaving a group does not close it
    await store.append_message(g, uid("m"), other.id, "hi", NOW, None, False)
    await store.update_profile(u.id, None, None, ["t"], [g])
    assert await store.is_member(g, u.id)
    [summary] = await store.user_convs(u.id)
    assert (summary.id, summary.last_seq, summary.read_seq) == (g, 1, 1)


# --- sessions --------------------------------------------------------------------------------

async def test_sessions(store: Store) -> None:
    u, v = await new_user(store), await new_user(store)
    rows = [SessionRow(secrets.token_bytes(32), u.id, f"dev{i}", NOW, NOW + 1000)
            for i in range(3)]
    for r in rows:
        await store.create_session(r)
    other = SessionRow(secrets.token_bytes(32), v.id, "", NOW, NOW + 1000)
    await store.create_session(other)
    assert await store.get_session(rows[0].token_hash, NOW) == rows[0]
    # Expired at expires_at exactly.
    assert await store.get_session(rows[0].token_hash, NOW + 1000) is None
    assert await store.get_session(secrets.token_bytes(32), NOW) is None
    with pytest.raises(DuplicateError):
        await store.create_session(rows[0])
    await store.delete_session(rows[2].token_hash)
    assert await store.get_session(rows[2].token_hash, NOW) is None
    gone = await store.delete_user_sessions(u.id, keep=rows[0].token_hash)
    assert gone == [rows[1].token_hash] and all(type(h) is bytes for h in gone)
    assert await store.get_session(rows[0].token_hash, NOW) == rows[0]
    assert await store.delete_user_sessions(u.id) == [rows[0].token_hash]
    assert await store.delete_user_sessions(u.id) == []
    assert await store.get_session(other.token_hash, NOW) == other


# --- SMS codes -------------------------------------------------------------------------------

async def test_sms_codes(store: Store) -> None:
    p = phone()
    assert await store.latest_sms_code(p, "register") is None
    await store.add_sms_code(p, "register", b"h1", NOW, NOW + 300_000)
    first = await store.latest_sms_code(p, "register")
    assert first is not None
    assert (first.phone, first.purpose, first.code_hash, first.created_at, first.expires_at,
            first.attempts, first.used) == (p, "register", b"h1", NOW, NOW + 300_000, 0, False)
    await store.add_sms_code(p, "reset", b"r1", NOW + 10, NOW + 300_000)
    await store.add_sms_code(p, "register", b"h2", NOW + 20, NOW + 300_000)
    second = await store.latest_sms_code(p, "register")
    assert second is not None and second.code_hash == b"h2" and second.id > first.id
    # The new code replaced the older one of its purpose, not the other purpose's.
    assert not await store.sms_code_used(first.id)
    reset = await store.latest_sms_code(p, "reset")
    assert reset is not None and not reset.used
    await store.sms_code_failed(second.id)
    await store.sms_code_failed(second.id)
    again = await store.latest_sms_code(p, "register")
    assert again is not None and again.attempts == 2
    assert await store.sms_code_used(second.id)
    assert not await store.sms_code_used(second.id)
    used = await store.latest_sms_code(p, "register")
    assert used is not None and used.used
    assert await store.sms_sends_since(p, NOW) == [NOW, NOW + 10, NOW + 20]
    assert await store.sms_sends_since(p, NOW + 10) == [NOW + 10, NOW + 20]
    assert await store.sms_sends_since(phone(), 0) == []
    # The deployment-wide count: codes to any phone since a time (far ahead: this test's own).
    later = NOW + 10**12 + secrets.randbelow(10**9)
    await store.add_sms_code(phone(), "login", b"g1", later, later + 1)
    await store.add_sms_code(phone(), "login", b"g2", later + 5, later + 6)
    assert await store.sms_total_since(later) == 2
    assert await store.sms_total_since(later + 1) == 1


async def test_sms_code_used_once_under_concurrency(store: Store) -> None:
    p = phone()
    await store.add_sms_code(p, "login", b"h", NOW, NOW + 1)
    code = await store.latest_sms_code(p, "login")
    assert code is not None
    wins = await asyncio.gather(*(store.sms_code_used(code.id) for _ in range(10)))
    assert wins.count(True) == 1


# --- conversations ---------------------------------------------------------------------------

async def test_direct_conversation(store: Store) -> None:
    conv, a, b = await direct(store)
    stranger = await new_user(store)
    assert await store.is_member(conv, a.id) and await store.is_member(conv, b.id)
    assert not await store.is_member(conv, stranger.id)
    assert not await store.was_member(conv, stranger.id)
    assert sorted(await store.conv_members(conv)) == sorted([a.id, b.id])
    assert await store.conv_members(ConvId(uid("d"))) == []
    [sa] = await store.user_convs(a.id)
    assert (sa.id, sa.kind, sa.last_seq, sa.read_seq, sa.peer, sa.closed) == \
        (conv, "direct", 0, 0, b.id, False)
    [sb] = await store.user_convs(b.id)
    assert sb.peer == a.id
    with pytest.raises(DuplicateError):
        await store.create_direct(conv, a.id, b.id, NOW)


async def test_user_convs_order_and_unread(store: Store) -> None:
    # Groups first, then ids bytewise ("Z" < "a"), whatever the database collation.
    tag = uid("")
    groups = [ConvId(f"g:{tag}-b"), ConvId(f"g:{tag}-Z"), ConvId(f"g:{tag}-a")]
    u = await new_user(store, ("x",), tuple(groups))
    peer = await new_user(store)
    d1, d2 = ConvId(uid("dB")), ConvId(uid("da"))
    await store.create_direct(d1, u.id, peer.id, NOW)
    await store.create_direct(d2, u.id, peer.id, NOW)
    for i in range(4):
        await store.append_message(d2, uid("m"), peer.id, str(i), NOW, None, False)
    await store.set_read(d2, u.id, 1)
    convs = await store.user_convs(u.id)
    assert [c.id for c in convs] == [*sorted(groups), d1, d2]
    by_id = {c.id: c for c in convs}
    assert (by_id[d2].last_seq, by_id[d2].read_seq) == (4, 1)
    assert by_id[d1].peer == peer.id


async def test_leave_closes_direct(store: Store) -> None:
    conv, a, b = await direct(store)
    assert await store.leave_conv(conv, a.id, NOW + 5)
    assert not await store.leave_conv(conv, a.id, NOW + 6)
    assert not await store.leave_conv(ConvId(uid("d")), a.id, NOW)
    assert not await store.is_member(conv, a.id) and await store.was_member(conv, a.id)
    assert await store.conv_members(conv) == [b.id]
    assert await store.user_convs(a.id) == []
    [sb] = await store.user_convs(b.id)
    assert sb.closed and sb.peer == a.id
    ctx = await store.send_context(conv, b.id)
    assert ctx is not None and ctx.closed and ctx.member


async def test_send_context(store: Store, backend: Backend) -> None:
    conv, a, b = await direct(store)
    assert await store.send_context(ConvId(uid("d")), a.id) is None
    ctx = await store.send_context(conv, a.id)
    assert ctx is not None
    assert (ctx.kind, ctx.closed, ctx.member, ctx.peer, ctx.peer_blocked_sender,
            ctx.muted_until) == ("direct", False, True, b.id, False, 0)
    await store.block(a.id, b.id, NOW)  # the sender blocking the peer is not the question
    ctx = await store.send_context(conv, a.id)
    assert ctx is not None and not ctx.peer_blocked_sender
    await store.block(b.id, a.id, NOW)
    ctx = await store.send_context(conv, a.id)
    assert ctx is not None and ctx.peer_blocked_sender
    # muted_until has no setter in the protocol yet: set the column directly.
    await backend.raw("UPDATE users SET muted_until=$1 WHERE id=$2", (NOW + 60_000, a.id))
    ctx = await store.send_context(conv, a.id)
    assert ctx is not None and ctx.muted_until == NOW + 60_000
    g = ConvId(uid("g:"))
    await new_user(store, ("t",), (g,))
    ctx = await store.send_context(g, a.id)
    assert ctx is not None
    assert (ctx.kind, ctx.closed, ctx.member, ctx.peer, ctx.peer_blocked_sender) == \
        ("group", False, False, None, False)


async def test_recent_pairs(store: Store) -> None:
    _, a, b = await direct(store)
    c, d = await new_user(store), await new_user(store)
    old = ConvId(uid("d"))
    await store.create_direct(old, a.id, c.id, NOW - 10)
    await store.create_direct(ConvId(uid("d")), c.id, d.id, NOW)
    await store.leave_conv(old, a.id, NOW)  # a former member still met them
    pair = tuple(sorted((a.id, b.id)))
    assert await store.recent_pairs([a.id], NOW) == {pair}
    assert await store.recent_pairs([a.id, b.id], NOW) == {pair}
    assert await store.recent_pairs([a.id], NOW - 10) == {pair, tuple(sorted((a.id, c.id)))}
    assert await store.recent_pairs([d.id], NOW + 1) == set()
    assert await store.recent_pairs([b.id], NOW + 1) == set()  # created at NOW: not since
    assert await store.recent_pairs([], 0) == set()


# --- messages --------------------------------------------------------------------------------

async def test_append_and_history(store: Store) -> None:
    conv, a, b = await direct(store)
    sent = []
    for i in range(5):
        r = await store.append_message(conv, uid("m"), (a, b)[i % 2].id, f"body {i}", NOW + i,
                                       None, i == 3)
        assert r.created and r.message.seq == i + 1
        sent.append(r.message)
    assert sent[0] == Message(conv, sent[0].id, 1, a.id, "body 0", NOW)
    assert await store.history(conv, 0, 100) == sent
    assert await store.history(conv, 0, 2) == sent[:2]
    assert await store.history(conv, 2, 2) == sent[2:4]
    assert await store.history(conv, 5, 10) == []
    assert await store.history(ConvId(uid("d")), 0, 10) == []
    [summary] = await store.user_convs(a.id)
    assert summary.last_seq == 5
    with pytest.raises(StoreError) as err:
        await store.append_message(ConvId(uid("d")), uid("m"), a.id, "x", NOW, None, False)
    assert not isinstance(err.value, DuplicateError)
    with pytest.raises(DuplicateError):
        await store.append_message(conv, sent[0].id, a.id, "same id", NOW, None, False)
    # Neither failure consumed a seq.
    r = await store.append_message(conv, uid("m"), a.id, "next", NOW, None, False)
    assert r.message.seq == 6


async def test_append_cid_idempotent(store: Store) -> None:
    conv, a, b = await direct(store)
    cid = uid("c")
    first = await store.append_message(conv, uid("m"), a.id, "hello", NOW, cid, False)
    retry = await store.append_message(conv, uid("m"), a.id, "hello again", NOW + 1, cid, False)
    assert first.created and not retry.created
    assert retry.message == first.message
    # The same cid from another sender is another message; no cid never deduplicates.
    other = await store.append_message(conv, uid("m"), b.id, "hi", NOW, cid, False)
    assert other.created and other.message.seq == 2
    n1 = await store.append_message(conv, uid("m"), a.id, "x", NOW, None, False)
    n2 = await store.append_message(conv, uid("m"), a.id, "x", NOW, None, False)
    assert (n1.message.seq, n2.message.seq) == (3, 4)
    assert [m.seq for m in await store.history(conv, 0, 10)] == [1, 2, 3, 4]


async def test_append_cid_race(store: Store) -> None:
    conv, a, _ = await direct(store)
    cid = uid("c")
    results = await asyncio.gather(*(
        store.append_message(conv, uid("m"), a.id, "once", NOW, cid, False) for _ in range(20)))
    assert sum(r.created for r in results) == 1
    assert {r.message for r in results} == {results[0].message}
    assert [m.seq for m in await store.history(conv, 0, 100)] == [1]


async def test_set_read(store: Store) -> None:
    conv, a, b = await direct(store)
    stranger = await new_user(store)
    for _ in range(3):
        await store.append_message(conv, uid("m"), b.id, "x", NOW, None, False)
    assert await store.set_read(conv, a.id, 2) == 2
    assert await store.set_read(conv, a.id, 1) == 2  # never backwards
    assert await store.set_read(conv, a.id, 99) == 3  # clamped to last_seq
    assert await store.set_read(conv, stranger.id, 2) == 0
    [summary] = await store.user_convs(a.id)
    assert summary.read_seq == 3
    [summary] = await store.user_convs(b.id)
    assert summary.read_seq == 0


# --- blocks ----------------------------------------------------------------------------------

async def test_blocks(store: Store) -> None:
    a, b, c = await new_user(store), await new_user(store), await new_user(store)
    assert await store.blocked_by(a.id) == set() and await store.blocks_of(b.id) == set()
    await store.block(a.id, b.id, NOW)
    await store.block(a.id, b.id, NOW + 1)  # idempotent
    await store.block(a.id, c.id, NOW)
    await store.block(c.id, b.id, NOW)
    assert await store.blocked_by(a.id) == {b.id, c.id}
    assert await store.blocks_of(b.id) == {a.id, c.id}
    await store.unblock(a.id, b.id)
    await store.unblock(a.id, b.id)  # idempotent too
    assert await store.blocked_by(a.id) == {c.id}
    assert await store.blocks_of(b.id) == {c.id}


# --- concurrency and lifecycle ---------------------------------------------------------------

async def test_concurrent_appends_two_nodes(store: Store, backend: Backend) -> None:
    """200 appends from 20 tasks over two store instances ("nodes"): seqs exactly 1..200."""
    conv, a, b = await direct(store)
    second = backend.make()
    await second.open()
    try:
        async def writer(node: Store, w: int) -> list[int]:
            seqs = []
            for i in range(10):
                r = await node.append_message(conv, uid("m"), (a, b)[w % 2].id, f"{w}.{i}", NOW,
                                              f"{w}.{i}", False)
                seqs.append(r.message.seq)
            return seqs

        per_task = await asyncio.gather(*(writer((store, second)[w % 2], w) for w in range(20)))
    finally:
        await second.close()
    seqs = [s for task in per_task for s in task]
    assert sorted(seqs) == list(range(1, 201))
    assert all(task == sorted(task) for task in per_task)  # each writer sees its own order
    history = await store.history(conv, 0, 500)
    assert [m.seq for m in history] == list(range(1, 201))
    [summary] = await store.user_convs(a.id)
    assert summary.last_seq == 200


async def test_closed_store_raises(backend: Backend) -> None:
    s = backend.make()
    with pytest.raises(StoreError):
        await s.get_user(UserId(uid()))
    await s.open()
    await s.close()
    with pytest.raises(StoreError):
        await s.get_user(UserId(uid()))


async def test_reopen_keeps_data(backend: Backend) -> None:
    s = backend.make()
    await s.open()
    u = await new_user(s)
    await s.close()
    s = backend.make()
    await s.open()
    try:
        assert await s.get_user(u.id) == u
    finally:
        await s.close()


# --- PostgreSQL only -------------------------------------------------------------------------

def test_schemas_have_the_same_migrations() -> None:
    assert len(PG_MIGRATIONS) == len(SQLITE_MIGRATIONS)


@pytest.fixture
async def empty_pg(pg_dsn: str) -> AsyncIterator[str]:
    """A database of its own, for tests that watch migrations happen."""
    dsn = await create_database()
    try:
        yield dsn
    finally:
        await drop_database(dsn)


async def test_pg_nodes_migrate_at_once(empty_pg: str) -> None:
    stores = [PostgresStore(empty_pg, min_size=1, max_size=2) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        conn = await asyncpg.connect(empty_pg)
        try:
            assert await conn.fetch("SELECT version FROM schema_version") == [
                (len(PG_MIGRATIONS),)]
        finally:
            await conn.close()
        u = await new_user(stores[0], ("t",), (uid("g:"),))
        assert await stores[3].get_user(u.id) == u
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_pg_refuses_newer_schema(empty_pg: str) -> None:
    s = PostgresStore(empty_pg, min_size=1, max_size=1)
    await s.open()
    await s.close()
    conn = await asyncpg.connect(empty_pg)
    try:
        await conn.execute("UPDATE schema_version SET version=$1", len(PG_MIGRATIONS) + 1)
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="newer"):
        await PostgresStore(empty_pg, min_size=1, max_size=1).open()


async def test_pg_unreachable_raises_store_error() -> None:
    s = PostgresStore("postgresql://postgres@127.0.0.1:1/nowhere", min_size=1, max_size=1)
    with pytest.raises(StoreError):
        await s.open()


async def test_pg_lost_connection_is_store_error_then_recovers(empty_pg: str) -> None:
    s = PostgresStore(empty_pg, min_size=1, max_size=2)
    await s.open()
    admin = await asyncpg.connect(empty_pg)
    try:
        conv, a, _ = await direct(s)
        # Hold the conversation row so the append waits inside the server, then kill its
        # backend (only backends of this test's own database).
        tx = admin.transaction()
        await tx.start()
        await admin.execute("SELECT 1 FROM conversations WHERE id=$1 FOR UPDATE", conv)
        append = asyncio.create_task(
            s.append_message(conv, uid("m"), a.id, "x", NOW, None, False))
        for _ in range(200):
            if await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE"
                                    " datname=current_database() AND wait_event_type='Lock'"):
                break
            await asyncio.sleep(0.01)
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname=current_database() AND pid<>pg_backend_pid()")
        with pytest.raises(StoreError) as err:
            await append
        assert not isinstance(err.value, DuplicateError)
        await tx.rollback()
        # The pool replaces the dead connection; the failed append took no seq.
        r = await s.append_message(conv, uid("m"), a.id, "y", NOW, None, False)
        assert r.message.seq == 1
    finally:
        await admin.close()
        await s.close()
