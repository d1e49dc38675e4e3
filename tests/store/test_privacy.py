"""Privacy: consents, the data of an export, account deletion."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from chatd.store import (
    TOMBSTONE,
    AuditEntry,
    ConvId,
    Report,
    SessionRow,
    Store,
    UserId,
)
from tests.conftest import t
from tests.store.support import NOW, Backend, direct, new_user, post, uid


async def test_consents_sessions_messages_by(store: Store) -> None:
    g = ConvId(uid("g:"))
    u = await new_user(store, ("t",), (g,))
    assert await store.get_consents(u.id) == []
    await store.set_consent(u.id, "location", True, NOW)
    await store.set_consent(u.id, "location", False, NOW + 1)
    await store.set_consent(u.id, "marketing", True, NOW + 2)
    got = [(c.name, c.value, c.updated_at) for c in await store.get_consents(u.id)]
    assert got == [("location", False, NOW + 1), ("marketing", True, NOW + 2)]
    await store.create_session(SessionRow(b"h" * 32, u.id, "phone", NOW, NOW + 10))
    assert [s.device for s in await store.user_sessions(u.id)] == ["phone"]
    m = (await store.append_message(g, uid("m"), u.id, "mine", NOW, None, False)).message
    assert await store.messages_by(u.id) == [m]


async def test_delete_account(store: Store) -> None:
    g = ConvId(uid("g:"))
    conv, a, b = await direct(store)
    await store.update_profile(a.id, None, None, ["t"], [g])
    await store.update_profile(b.id, None, None, ["t"], [g])
    token = uid("tok").encode()
    await store.create_session(SessionRow(token, a.id, "", NOW, NOW + 10))
    await store.add_sms_code(a.phone, "login", b"x", NOW, NOW + 10)
    m1 = (await store.append_message(conv, uid("m"), a.id, "secret", NOW, "cid1", True)).message
    await store.append_message(conv, uid("m"), b.id, "reply", NOW, None, False)
    await store.append_message(g, uid("m"), a.id, "group secret", NOW, "cid2", False)
    await store.create_post(post(a.id, "post secret"))
    await store.add_search(a.id, "q", NOW, 10)
    await store.set_consent(a.id, "marketing", True, NOW)
    await store.block(a.id, b.id, NOW)
    await store.block(b.id, a.id, NOW)
    await store.add_report(Report(uid("r"), a.id, "user", b.id, b.id, "spam", "", "", NOW, NOW))
    about = await store.add_report(Report(uid("r"), b.id, "message", m1.id, a.id, "spam", "",
                                          "secret", NOW, NOW))
    await store.add_audit(AuditEntry(NOW, "mod", "ban", a.id))
    assert await store.delete_account(a.id) == [token]
    assert await store.get_user(a.id) is None and await store.get_user_by_phone(a.phone) is None
    assert await store.latest_sms_code(a.phone, "login") is None
    history = await store.history(conv, 0, 10)
    assert [(m.seq, m.sender, m.body, m.deleted) for m in history] == [
        (1, TOMBSTONE, "", True), (2, b.id, "reply", False)]
    assert [m.body for m in await store.history(g, 0, 10)] == [""]
    assert await store.messages_by(a.id) == [] and await store.posts_by(a.id) == []
    assert await store.search_history(a.id, 10) == [] and await store.get_consents(a.id) == []
    assert await store.user_sessions(a.id) == [] and await store.reports_by(a.id) == []
    assert await store.blocked_by(b.id) == set() and await store.blocks_of(b.id) == set()
    ctx = await store.send_context(conv, b.id)
    assert ctx is not None and ctx.closed
    closed = await store.get_report(about.id)
    assert closed is not None and (closed.state, closed.resolution, closed.snapshot,
                                   closed.target_user) == ("resolved", "account_deleted", "",
                                                           TOMBSTONE)
    assert await store.audit_log(None, 10, a.id) == []
    assert not any(a.id in pair for pair in await store.recent_pairs([b.id], 0))
    assert await store.review_queue(0, 1000) == [i for i in await store.review_queue(0, 1000)
                                                 if i.author != a.id]
    assert await store.delete_account(a.id) == []
    # The phone can register again.
    await store.create_user(type(a)(**{**{f: getattr(a, f) for f in a.__slots__},  # type: ignore[attr-defined]
                                       "id": UserId(uid())}), [])


async def test_export_queries_left_directs_sms_codes_and_flags(store: Store) -> None:
    conv, a, b = await direct(store)
    await store.add_sms_code(a.phone, "login", b"secret hash", NOW, NOW + 300)
    await store.sms_code_failed((await store.latest_sms_code(a.phone, "login")).id)  # type: ignore[union-attr]
    flagged = (await store.append_message(conv, uid("m"), a.id, "flag me", NOW, None,
                                          True)).message
    plain = (await store.append_message(conv, uid("m"), a.id, "fine", NOW, None, False)).message
    assert await store.leave_conv(conv, a.id, NOW + 5)
    assert await store.user_convs(a.id) == []  # the app's list: only current conversations
    assert [(m.conv, m.kind, m.joined_at, m.left_at) for m in await store.memberships_of(a.id)] \
        == [(conv, "direct", NOW, NOW + 5)]
    codes = await store.sms_codes_of(a.id)
    assert [(c.purpose, c.created_at, c.expires_at, c.attempts, c.used) for c in codes] == [
        ("login", NOW, NOW + 300, 1, False)]
    assert [(m.id, m.flagged) for m in await store.messages_by(a.id)] == [
        (flagged.id, True), (plain.id, False)]
    assert await store.sms_codes_of(b.id) == []


async def test_rebind_erases_the_old_phones_codes(store: Store) -> None:
    a = await new_user(store)
    other = await new_user(store)
    await store.add_sms_code(a.phone, "login", b"x", NOW, NOW + 10)
    await store.add_sms_code(other.phone, "login", b"y", NOW, NOW + 10)
    await store.erase_sms_codes_of(a.id)
    assert await store.latest_sms_code(a.phone, "login") is None
    assert await store.sms_sends_since(a.phone, 0) == []
    assert await store.latest_sms_code(other.phone, "login") is not None
    # The deployment-wide cap still counts the erased code (an anonymous row).
    assert await store.sms_total_since(NOW) >= 2


async def test_purge_sms_codes(store: Store) -> None:
    a, b = await new_user(store), await new_user(store)
    await store.add_sms_code(a.phone, "login", b"old", NOW - 100, NOW - 50)
    await store.add_sms_code(b.phone, "login", b"expired", NOW, NOW + 10)
    await store.add_sms_code(b.phone, "delete", b"live", NOW, NOW + 1000)
    assert await store.purge_sms_codes(expired_before=NOW + 20, sent_before=NOW - 10) >= 2
    assert await store.latest_sms_code(a.phone, "login") is None
    expired = await store.latest_sms_code(b.phone, "login")
    live = await store.latest_sms_code(b.phone, "delete")
    assert expired is not None and expired.code_hash == b""
    assert live is not None and live.code_hash == b"live"
    assert await store.sms_sends_since(b.phone, NOW) == [NOW, NOW]


async def test_postgres_deletion_vacuums_the_dead_tuples(backend: Backend) -> None:
    """PostgreSQL keeps a deleted row as a dead tuple until VACUUM: after ``delete_account``
    the store vacuums the touched tables, so no tuple, live or dead, holds the data."""
    if backend.name != "postgres":
        pytest.skip("PostgreSQL only (SQLite: tests/test_privacy_e2e.py)")
    store = backend.make()
    await store.open()
    marker = uid("vacmark")
    try:
        conv, a, _ = await direct(store)
        await store.update_profile(a.id, marker, marker, None, None)
        await store.append_message(conv, uid("m"), a.id, marker, NOW, None, False)
        await store.create_post(post(a.id, marker))
        await store.add_search(a.id, marker, NOW, 10)
        assert await _pg_tuples_holding(backend, marker)
        await store.delete_account(a.id)
        deadline = time.monotonic() + t(10)
        for _ in range(1000):  # the VACUUM runs in the background: poll the pages
            left = await _pg_tuples_holding(backend, marker)
            if not left or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert left == []
    finally:
        await store.close()


async def _pg_tuples_holding(backend: Backend, marker: str) -> list[str]:
    """Tables with a heap tuple (live or dead) whose raw bytes contain ``marker``."""
    conn = await asyncpg.connect(backend.dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        found = []
        for table in ("users", "messages", "posts", "search_history"):
            n = await conn.fetchval(
                "SELECT count(*) FROM generate_series(0, pg_relation_size($1::text::regclass)"
                " / current_setting('block_size')::int - 1) AS blk,"
                " LATERAL heap_page_items(get_raw_page($1::text, blk::int)) AS t"
                " WHERE position($2::bytea in t.t_data) > 0", table, marker.encode())
            if n:
                found.append(table)
        return found
    finally:
        await conn.close()
