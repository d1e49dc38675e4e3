"""The engines: lifecycle, durability across reopen, migrations, PostgreSQL failures."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path

import asyncpg
import pytest

from chatd.store import AppendResult, DuplicateError, SendRefused, SQLiteStore, StoreError, UserId
from chatd.store.postgres import PostgresStore
from chatd.store.postgres.schema import MIGRATIONS as PG_MIGRATIONS
from chatd.store.sqlite.schema import MIGRATIONS as SQLITE_MIGRATIONS
from tests.pg import create_database, drop_database
from tests.store.support import NOW, Backend, direct, new_user, uid


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


def test_schemas_have_the_same_migrations() -> None:
    assert len(PG_MIGRATIONS) == len(SQLITE_MIGRATIONS)


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


# --- SQLite group commit ---------------------------------------------------------------------

async def _hold_worker(s: SQLiteStore) -> tuple[asyncio.Future[None], threading.Event]:
    """Occupy the worker thread with a job that waits for the returned event, so that jobs
    submitted meanwhile queue up and run as one batch once it is set."""
    started, release = threading.Event(), threading.Event()

    def job(c: sqlite3.Connection) -> None:
        started.set()
        release.wait(10)

    held = asyncio.ensure_future(s._run(job))
    assert await asyncio.to_thread(started.wait, 10)
    return held, release


async def test_sqlite_group_commit_shares_one_transaction(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "chatd.db")
    await s.open()
    try:
        conv, a, _ = await direct(s)
        held, release = await _hold_worker(s)
        commits = s.commits
        appends = [asyncio.ensure_future(s.append_message(conv, uid("m"), a.id, str(i), NOW,
                                                          None, False)) for i in range(20)]
        await asyncio.sleep(0.01)
        release.set()
        await held
        results = await asyncio.gather(*appends)
        assert [r.message.seq for r in results] == list(range(1, 21))
        assert s.commits == commits + 2  # the held job's batch, then all 20 appends in one
    finally:
        await s.close()


async def test_sqlite_failing_job_does_not_undo_its_batch(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "chatd.db")
    await s.open()
    try:
        conv, a, b = await direct(s)
        taken = (await s.append_message(conv, uid("m"), a.id, "first", NOW, None, False)).message
        stranger = await new_user(s)
        held, release = await _hold_worker(s)
        commits = s.commits
        jobs = [
            s.append_message(conv, uid("m"), a.id, "before", NOW, None, False),
            s.append_message(conv, taken.id, b.id, "duplicate id", NOW, None, False),
            s.send_message(conv, uid("m"), stranger.id, NOW, None, "not a member", False),
            s.send_message(conv, uid("m"), b.id, NOW, None, "after", False),
        ]
        futures = [asyncio.ensure_future(j) for j in jobs]
        await asyncio.sleep(0.01)
        release.set()
        await held
        before, duplicate, refused, after = await asyncio.gather(*futures,
                                                                 return_exceptions=True)
        assert isinstance(duplicate, DuplicateError)
        assert refused == SendRefused("not_member")
        assert isinstance(before, AppendResult) and isinstance(after, AppendResult)
        # The batch was replayed with a savepoint per job: only the failing one was undone.
        assert (before.message.seq, after.message.seq) == (2, 3)
        assert s.commits == commits + 2  # the held job's batch, then the four in one
        assert [m.body for m in await s.history(conv, 0, 10)] == ["first", "before", "after"]
    finally:
        await s.close()


# --- migrations from every earlier schema ----------------------------------------------------

def _sqlite_schema(path: Path) -> list[tuple[str, str, str]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT type, name, sql FROM sqlite_master"
                            " WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").fetchall()


@pytest.mark.parametrize("version", range(1, len(SQLITE_MIGRATIONS)))
async def test_sqlite_migrates_an_older_file(tmp_path: Path, version: int) -> None:
    """A data dir left at schema ``version`` keeps its rows and ends with the fresh schema."""
    fresh = SQLiteStore(tmp_path / "fresh.db")
    await fresh.open()
    await fresh.close()
    old = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(old, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE schema_version(version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version(version) VALUES (?)", (version,))
        for script in SQLITE_MIGRATIONS[:version]:
            conn.executescript(script)
        conn.execute("INSERT INTO users(id, phone, pw_hash, birthdate, gender, nickname,"
                     " created_at) VALUES ('old', '+8613900000000', 'h', '2000-01-01', 'f',"
                     " 'n', 1)")
    s = SQLiteStore(old)
    await s.open()
    try:
        got = await s.get_user(UserId("old"))
        assert got is not None and got.nickname == "n"
    finally:
        await s.close()
    assert _sqlite_schema(old) == _sqlite_schema(tmp_path / "fresh.db")
    with contextlib.closing(sqlite3.connect(old)) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (len(SQLITE_MIGRATIONS),)]


_PG_SCHEMA = ("SELECT table_name, column_name, data_type, is_nullable, column_default"
              " FROM information_schema.columns WHERE table_schema='public'"
              " ORDER BY table_name, column_name")
_PG_INDEXES = ("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname='public'"
               " ORDER BY indexname")


async def _pg_schema(dsn: str) -> tuple[list[object], list[object]]:
    conn = await asyncpg.connect(dsn)
    try:
        return ([tuple(r) for r in await conn.fetch(_PG_SCHEMA)],
                [tuple(r) for r in await conn.fetch(_PG_INDEXES)])
    finally:
        await conn.close()


async def test_pg_migrates_an_older_database(empty_pg: str) -> None:
    """A database left at each earlier schema keeps its rows and ends with the fresh schema."""
    s = PostgresStore(empty_pg, min_size=1, max_size=1)
    await s.open()
    await s.close()
    expected = await _pg_schema(empty_pg)
    for version in range(1, len(PG_MIGRATIONS)):
        dsn = await create_database()
        try:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute("CREATE TABLE schema_version(version INTEGER NOT NULL)")
                await conn.execute("INSERT INTO schema_version(version) VALUES ($1)", version)
                for script in PG_MIGRATIONS[:version]:
                    await conn.execute(script)
                await conn.execute("INSERT INTO users(id, phone, pw_hash, birthdate, gender,"
                                   " nickname, created_at) VALUES ('old', '+8613900000000',"
                                   " 'h', '2000-01-01', 'f', 'n', 1)")
            finally:
                await conn.close()
            s = PostgresStore(dsn, min_size=1, max_size=1)
            await s.open()
            try:
                got = await s.get_user(UserId("old"))
                assert got is not None and got.nickname == "n"
            finally:
                await s.close()
            assert await _pg_schema(dsn) == expected
        finally:
            await drop_database(dsn)


async def test_sqlite_checkpoints_off_the_commit_path(tmp_path: Path) -> None:
    """The writer's connection never checkpoints; the checkpointer thread copies the WAL
    into the main file while writes go on, and the WAL is gone after close."""
    path = tmp_path / "c.db"
    s = SQLiteStore(path)
    await s.open()
    try:
        assert s._conn is not None
        assert s._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        conv, a, _ = await direct(s)
        sent = [await s.append_message(conv, uid("m"), a.id, f"m{i}", NOW + i, None, False)
                for i in range(50)]
        assert all(isinstance(r, AppendResult) for r in sent)
        # The main file alone (immutable: no WAL read) holds them once a checkpoint ran.
        for _ in range(100):
            with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1",
                                                    uri=True)) as main_file:
                try:
                    (count,) = main_file.execute("SELECT COUNT(*) FROM messages").fetchone()
                except sqlite3.DatabaseError:  # the file caught mid-checkpoint
                    count = -1
            if count == 50:
                break
            await asyncio.sleep(0.05)
        assert count == 50 and s.checkpoints >= 1
    finally:
        await s.close()
    wal = path.with_name("c.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
