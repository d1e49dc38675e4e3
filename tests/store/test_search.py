"""Full-text search (FTS5 trigram | pg_trgm): ranked, short queries, visibility, sync with
writes, and rows written before the index existed."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import asyncpg

from chatd.store import SQLiteStore, Store, UserId
from chatd.store.postgres import PostgresStore
from chatd.store.postgres.schema import MIGRATIONS as PG_MIGRATIONS
from chatd.store.sqlite.schema import MIGRATIONS as SQLITE_MIGRATIONS
from tests.pg import create_database, drop_database
from tests.store.support import NOW, Backend, new_user, post, uid


async def test_users_by_nickname_and_bio_ranked(store: Store) -> None:
    word = uid("星空")  # unique per run: other tests' users never match
    me = await new_user(store)
    by_bio = await new_user(store)
    await store.update_profile(by_bio.id, "小王", f"我喜欢{word}和猫", None, None)
    by_nick = await new_user(store)
    await store.update_profile(by_nick.id, f"{word}人", None, None, None)
    found = await store.search_users(me.id, word, [], 0, 10, NOW)
    assert [u.id for u in found] == [by_nick.id, by_bio.id]  # the nickname ranks first
    assert [u.id for u in await store.search_users(me.id, word, [], 1, 10, NOW)] == [by_bio.id]
    # The index follows writes: a renamed user is found by the new name only.
    await store.update_profile(by_nick.id, "别名", None, None, None)
    assert [u.id for u in await store.search_users(me.id, word, [], 0, 10, NOW)] == [by_bio.id]


async def test_search_never_lists_a_whole_table(store: Store, backend: Backend) -> None:
    me = await new_user(store)
    for _ in range(3):
        await new_user(store)
    for q in (".", "...", "%", "_", "***", " "):
        assert await store.search_users(me.id, q, [], 0, 50, NOW) == [], q
        assert await store.search_posts(me.id, q, 0, 50, NOW) == [], q


async def test_short_queries_match_nickname_prefix(store: Store) -> None:
    me = await new_user(store)
    name = uid("")[-6:]  # a run-unique stem
    exact, longer, inside = [await new_user(store) for _ in range(3)]
    await store.update_profile(exact.id, f"王{name}"[:2], None, None, None)
    two = f"王{name}"[:2]
    await store.update_profile(longer.id, f"{two}小明", None, None, None)
    await store.update_profile(inside.id, f"老{two}", f"{two}", None, None)
    found = await store.search_users(me.id, two, [], 0, 50, NOW)
    ids = [u.id for u in found]
    assert ids[:2] == [exact.id, longer.id] and inside.id not in ids  # exact, then prefix
    # Posts need 3 characters (the trigram limit).
    await store.create_post(post(longer.id, f"{two}{two}"))
    assert await store.search_posts(me.id, two, 0, 50, NOW) == []


async def test_posts_ranked_visible_and_deleted(store: Store, backend: Backend) -> None:
    word = uid("火锅")
    me, author, banned = [await new_user(store) for _ in range(3)]
    p1 = post(author.id, f"今天吃{word}", NOW)
    p2 = post(author.id, f"{word}!{word}! 又是{word}", NOW + 1)
    p3 = post(banned.id, f"{word} too", NOW + 2)
    for p in (p1, p2, p3):
        await store.create_post(p)
    await store.set_banned(banned.id, NOW + 10_000)
    found = {p.id for p in await store.search_posts(me.id, word, 0, 10, NOW)}
    assert found == {p1.id, p2.id}
    assert await store.delete_post(p1.id)
    assert [p.id for p in await store.search_posts(me.id, word, 0, 10, NOW)] == [p2.id]
    await store.block(author.id, me.id, NOW)
    assert await store.search_posts(me.id, word, 0, 10, NOW) == []
    await store.unblock(author.id, me.id)
    await store.delete_account(author.id)
    assert await store.search_posts(me.id, word, 0, 10, NOW) == []
    assert await store.search_users(me.id, "", [], 0, 10, NOW) == []


async def test_sqlite_index_covers_rows_written_before_it(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(old, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE schema_version(version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version(version) VALUES (3)")
        for script in SQLITE_MIGRATIONS[:3]:
            conn.executescript(script)
        conn.execute("INSERT INTO users(id, phone, pw_hash, birthdate, gender, nickname, bio,"
                     " created_at) VALUES ('old', '+8613900000000', 'h', '2000-01-01', 'f',"
                     " '老用户甲', '', 1), ('me', '+8613900000001', 'h', '2000-01-01', 'f',"
                     " 'me', '', 1)")
        conn.execute("INSERT INTO posts(id, author, body, ts) VALUES ('p', 'old', '旧帖子内容', 1)")
    s = SQLiteStore(old)
    await s.open()
    try:
        assert [u.id for u in await s.search_users(UserId("me"), "老用户甲", [], 0, 5, NOW)] == \
            ["old"]
        assert [p.id for p in await s.search_posts(UserId("me"), "旧帖子", 0, 5, NOW)] == ["p"]
    finally:
        await s.close()


async def test_pg_index_covers_rows_written_before_it(pg_dsn: str) -> None:
    dsn = await create_database()
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE schema_version(version INTEGER NOT NULL)")
            await conn.execute("INSERT INTO schema_version(version) VALUES (3)")
            for script in PG_MIGRATIONS[:3]:
                await conn.execute(script)
            await conn.execute(
                "INSERT INTO users(id, phone, pw_hash, birthdate, gender, nickname, created_at)"
                " VALUES ('old', '+8613900000000', 'h', '2000-01-01', 'f', '老用户甲', 1),"
                " ('me', '+8613900000001', 'h', '2000-01-01', 'f', 'me', 1)")
        finally:
            await conn.close()
        s = PostgresStore(dsn, min_size=1, max_size=1)
        await s.open()
        try:
            found = await s.search_users(UserId("me"), "老用户甲", [], 0, 5, NOW)
            assert [u.id for u in found] == ["old"]
        finally:
            await s.close()
    finally:
        await drop_database(dsn)
