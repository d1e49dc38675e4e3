"""Accounts: users and their interests, sessions, SMS codes."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from chatd.store import (
    ConvId,
    DuplicateError,
    SessionRow,
    Store,
    StoreError,
    UserId,
)
from tests.store.support import NOW, new_user, phone, uid, user


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


@pytest.mark.parametrize("purpose", ["register", "login", "reset", "rebind", "delete"])
async def test_sms_code_burnt_after_max_wrong_tries_arriving_at_once(store: Store,
                                                                     purpose: str) -> None:
    """Wrong tries sent at the same moment count one by one: after 5 the right code is
    refused (security review: guessing by concurrency)."""
    p = phone()
    await store.add_sms_code(p, purpose, b"right", NOW, NOW + 300_000)
    tries = await asyncio.gather(*(store.try_sms_code(p, purpose, b"wrong%d" % i, NOW, 5)
                                   for i in range(40)))
    assert tries.count("wrong") == 5 and tries.count("burnt") == 35
    assert await store.try_sms_code(p, purpose, b"right", NOW, 5) == "burnt"
    row = await store.latest_sms_code(p, purpose)
    assert row is not None and row.attempts == 5 and not row.used


async def test_try_sms_code_ok_once_and_refuses_expired_or_missing(store: Store) -> None:
    p = phone()
    assert await store.try_sms_code(p, "login", b"h", NOW, 5) == "burnt"
    await store.add_sms_code(p, "login", b"h", NOW, NOW + 1000)
    assert await store.try_sms_code(p, "login", b"x", NOW, 5) == "wrong"
    wins = await asyncio.gather(*(store.try_sms_code(p, "login", b"h", NOW, 5)
                                  for _ in range(10)))
    assert wins.count("ok") == 1 and wins.count("burnt") == 9
    await store.add_sms_code(p, "login", b"h2", NOW, NOW + 1000)
    assert await store.try_sms_code(p, "login", b"h2", NOW + 1000, 5) == "burnt"


async def test_live_sessions_last_active_and_delete_user_session(store: Store) -> None:
    u, v = await new_user(store), await new_user(store)
    old = SessionRow(secrets.token_bytes(32), u.id, "old", NOW, NOW + 1000, NOW)
    new = SessionRow(secrets.token_bytes(32), u.id, "new", NOW + 10, NOW + 1000, NOW + 10)
    gone = SessionRow(secrets.token_bytes(32), u.id, "expired", NOW, NOW + 5, NOW + 20)
    theirs = SessionRow(secrets.token_bytes(32), v.id, "v", NOW, NOW + 1000, NOW)
    for r in (old, new, gone, theirs):
        await store.create_session(r)
    assert await store.get_session(new.token_hash, NOW) == new
    # Unexpired only, most recently active first.
    assert await store.live_sessions(u.id, NOW + 5, 10) == [new, old]
    assert await store.live_sessions(u.id, NOW, 10) == [gone, new, old]
    assert await store.live_sessions(u.id, NOW + 5, 1) == [new]
    assert await store.live_sessions(UserId(uid()), NOW, 10) == []
    # Touching moves last_active forward only; an unknown session is no error.
    await store.touch_session(old.token_hash, NOW + 50)
    await store.touch_session(old.token_hash, NOW + 40)
    await store.touch_session(secrets.token_bytes(32), NOW + 50)
    got = await store.live_sessions(u.id, NOW + 5, 10)
    assert [(s.device, s.last_active) for s in got] == [("old", NOW + 50), ("new", NOW + 10)]
    assert all(type(s.token_hash) is bytes for s in got)
    # Deleting: only the owner's own session, once.
    assert not await store.delete_user_session(v.id, old.token_hash)
    assert await store.get_session(old.token_hash, NOW) is not None
    assert await store.delete_user_session(u.id, old.token_hash)
    assert not await store.delete_user_session(u.id, old.token_hash)
    assert await store.get_session(old.token_hash, NOW) is None
    assert await store.live_sessions(u.id, NOW + 5, 10) == [new]
    assert await store.live_sessions(v.id, NOW, 10) == [theirs]
