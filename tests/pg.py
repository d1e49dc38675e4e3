"""PostgreSQL for the test suite: make sure the server runs, give each run its own database.

``pg_dsn`` (session scope) creates ``chatd_test_<random hex>`` and drops it at the end, so a
run never sees data of an earlier one and never touches databases it did not create. A stopped
local server is started (``pg_ctlcluster``), not skipped. ``CHATD_TEST_PG_DSN`` points the
suite at another server (default: the ``postgres`` database on 127.0.0.1:5432, trust auth).
Import the fixture into a test module: ``from tests.pg import pg_dsn``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

__all__ = ["ADMIN_DSN", "create_database", "drop_database", "ensure_postgres", "pg_dsn",
           "with_database"]

ADMIN_DSN = os.environ.get("CHATD_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
T = TypeVar("T")


def with_database(dsn: str, name: str) -> str:
    """``dsn`` pointed at database ``name``."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _ready() -> bool:
    parts = urlsplit(ADMIN_DSN)
    try:
        done = subprocess.run(["pg_isready", "-h", parts.hostname or "127.0.0.1",
                               "-p", str(parts.port or 5432)], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def ensure_postgres(wait: float = 30.0) -> None:
    """Start the local cluster if it is down; fail (never skip) when it cannot be started."""
    if _ready():
        return
    conf = Path("/etc/postgresql")
    versions = sorted(conf.iterdir()) if conf.is_dir() else []
    if not versions:
        pytest.fail("PostgreSQL is not running and not installed here "
                    "(apt-get install postgresql)")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main",
                    "start"], capture_output=True, timeout=60, check=False)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if _ready():
            return
        time.sleep(0.2)
    pytest.fail("PostgreSQL did not start (pg_ctlcluster ... main start)")


async def create_database() -> str:
    """Create a fresh ``chatd_test_<hex>`` database; return its DSN."""
    name = f"chatd_test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(ADMIN_DSN, name)


async def drop_database(dsn: str) -> None:
    """Drop a database made by :func:`create_database` (and only such a one)."""
    name = urlsplit(dsn).path.lstrip("/")
    assert name.startswith("chatd_test_"), name
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _run(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    # On a thread of its own: asyncio.run here must not replace the test's event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(fn())).result()


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """DSN of a database created for this test session, dropped when it ends."""
    ensure_postgres()
    dsn = _run(create_database)
    try:
        yield dsn
    finally:
        _run(lambda: drop_database(dsn))
