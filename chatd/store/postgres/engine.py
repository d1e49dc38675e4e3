"""The PostgreSQL engine: the asyncpg pool, transactions, error translation, migrations.

One database is shared by several chatd nodes. Multi-statement writes run in one
transaction; every acknowledged write is committed. Migrations run under a
transaction-scoped advisory lock, so nodes starting together apply each migration once.
Unique violations raise :class:`DuplicateError`; every other database or connection failure
raises :class:`StoreError`.

Erasure: a deleted or updated row stays in its table as a dead tuple (readable in the data
files, not through SQL) until VACUUM removes it. A write that erases personal data calls
:meth:`Engine._vacuum_soon` with the tables it touched: one background task (tracked; awaited
up to 5 s, then cancelled, by ``close()``) runs ``VACUUM`` of them outside any transaction,
off the request path, coalescing the erasures that come meanwhile.

The domain modules (accounts, chat, social, moderation, privacy) subclass :class:`Engine`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

import asyncpg

from chatd.store.base import DuplicateError, StoreError, StoreHealth, StoreUnavailable
from chatd.store.postgres.schema import MIGRATIONS

__all__ = ["Engine", "now_ms"]

log = logging.getLogger("chatd.store")

# Errors that mean "the database could not do it": server errors, client/protocol errors,
# and socket failures (refused, reset, timed out: TimeoutError is an OSError).
_DB_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError,
                     asyncpg.InternalClientError, OSError)
# Of those, the ones that say the server cannot be reached or written now (down, shutting
# down, starting up, out of disk or connections), not that a statement was wrong.
# InternalClientError: a connection the server dropped mid-operation ("cannot switch to
# state 15; another operation is in progress"), seen during a fast shutdown.
_UNAVAILABLE: Final = (OSError, TimeoutError, asyncpg.InterfaceError,
                       asyncpg.InternalClientError, asyncpg.PostgresConnectionError,
                       asyncpg.OperatorInterventionError, asyncpg.InsufficientResourcesError)
# Key of the advisory lock that serialises migrations across nodes ("chatd" in ASCII, then 1).
_MIGRATION_LOCK: Final = 0x6368_6174_6400_0001


class Engine:
    """The pool, its connections and transactions; no SQL of any domain.

    ``open()`` creates the pool and migrates the schema; ``close()`` waits for borrowed
    connections and closes the pool. Calls on a store that is not open raise StoreError.
    """

    def __init__(self, dsn: str, min_size: int = 2, max_size: int = 10) -> None:
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self._pool: Any = None
        # Same counters as SQLiteStore (the store bench reads them). Without group commit
        # every write is its own transaction, so they grow together.
        self.commits = 0
        self.health = StoreHealth()
        self.jobs_run = 0
        self._vacuum_due: set[str] = set()
        self._vacuum: asyncio.Task[None] | None = None
        self.vacuums = 0

    # --- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(self.dsn, min_size=self.min_size,
                                             max_size=self.max_size)
        except _DB_ERRORS as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
        try:
            async with pool.acquire() as c:
                await _migrate(c)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, _DB_ERRORS):
                raise StoreError(f"migration failed: {exc}") from exc
            raise
        self._pool = pool

    async def close(self) -> None:
        task, self._vacuum = self._vacuum, None
        if task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        """A pooled connection; asyncpg errors leave as DuplicateError or StoreError."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("store is closed")
        try:
            async with pool.acquire() as c:
                yield c
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateError(str(exc)) from exc
        except _UNAVAILABLE as exc:
            failure = StoreUnavailable(f"database unavailable: {exc}")
            self.health.failed(failure)
            raise failure from exc
        except _DB_ERRORS as exc:
            raise StoreError(f"database error: {exc}") from exc

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        """A connection inside a transaction that commits when the block exits cleanly."""
        started = time.perf_counter()
        async with self._conn() as c, c.transaction():
            yield c
        self._committed(started)


    async def _exec(self, sql: str, *args: object) -> str:
        """One statement, committed on its own; asyncpg's status string ("UPDATE 1")."""
        started = time.perf_counter()
        async with self._conn() as c:
            status: str = await c.execute(sql, *args)
        self._committed(started)
        return status

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        async with self._conn() as c:
            return list(await c.fetch(sql, *args))

    def _vacuum_soon(self, tables: Iterable[str]) -> None:
        """VACUUM ``tables`` in the background once the current erasures committed."""
        self._vacuum_due.update(tables)
        if self._vacuum is None or self._vacuum.done():
            self._vacuum = asyncio.get_running_loop().create_task(self._vacuum_loop(),
                                                                  name="chatd-pg-vacuum")

    async def _vacuum_loop(self) -> None:
        while self._vacuum_due and self._pool is not None:
            tables, self._vacuum_due = sorted(self._vacuum_due), set()
            try:
                async with self._conn() as c:  # no transaction: VACUUM cannot run in one
                    await c.execute("VACUUM " + ", ".join(tables))
                self.vacuums += 1
            except StoreError as exc:
                log.error("VACUUM after an erasure failed (autovacuum will do it): %s", exc)
                return

    def _committed(self, started: float | None = None) -> None:
        """A write committed (``started``: when its transaction began, for the latency)."""
        self.commits += 1
        self.jobs_run += 1
        self.health.committed(None if started is None else time.perf_counter() - started)


def now_ms() -> int:
    return int(time.time() * 1000)


async def _migrate(c: Any) -> None:
    """Apply the pending migrations in one transaction, holding the migration lock."""
    async with c.transaction():
        # Taken before anything else: even CREATE TABLE IF NOT EXISTS races without it.
        await c.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await c.execute("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)")
        current = await c.fetchval("SELECT version FROM schema_version")
        if current is None:
            await c.execute("INSERT INTO schema_version(version) VALUES (0)")
            current = 0
        if current > len(MIGRATIONS):
            raise StoreError(f"database schema {current} is newer than this chatd "
                             f"({len(MIGRATIONS)}); upgrade chatd")
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            await c.execute(script)  # no arguments: the simple protocol runs every statement
            await c.execute("UPDATE schema_version SET version=$1", version)
            log.info("store migrated to schema %d", version)
