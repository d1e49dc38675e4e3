"""The Store contract suite: every test that takes ``store`` or ``backend`` runs against every
implementation (SQLite, PostgreSQL). ``pg_dsn`` comes from tests/conftest.py (``tests.pg``)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from chatd.store import SQLiteStore, Store
from chatd.store.postgres import PostgresStore
from chatd.store.sqlite.process import ProcessSQLiteStore
from tests.pg import create_database, drop_database
from tests.store.support import Backend


@pytest.fixture(params=["sqlite", "sqlite-process", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param in ("sqlite", "sqlite-process"):
        path = tmp_path / "chatd.db"

        async def raw_sqlite(sql: str, args: tuple[object, ...]) -> None:
            with contextlib.closing(sqlite3.connect(path)) as conn, conn:
                conn.execute(sql.replace("$1", "?").replace("$2", "?"), args)

        if request.param == "sqlite-process":
            return Backend("sqlite-process", lambda: ProcessSQLiteStore(path), raw_sqlite)
        return Backend("sqlite", lambda: SQLiteStore(path), raw_sqlite)
    dsn: str = request.getfixturevalue("pg_dsn")

    async def raw_pg(sql: str, args: tuple[object, ...]) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    return Backend("postgres", lambda: PostgresStore(dsn, min_size=1, max_size=10), raw_pg,
                   dsn)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = backend.make()
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def empty_pg(pg_dsn: str) -> AsyncIterator[str]:
    """A database of its own, for tests that watch migrations happen."""
    dsn = await create_database()
    try:
        yield dsn
    finally:
        await drop_database(dsn)
