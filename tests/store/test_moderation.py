"""Moderation: roles, bans, mutes, word-list versions, the audit log, the review queue."""

from __future__ import annotations

import asyncio

import pytest

from chatd.store import (
    AuditEntry,
    ConvId,
    Store,
    UserId,
    WordChange,
)
from tests.store.support import NOW, new_user, post, uid


async def test_roles_bans_mutes(store: Store) -> None:
    u = await new_user(store)
    assert await store.set_role(u.id, "moderator")
    assert await store.set_banned(u.id, NOW + 1)
    assert await store.set_muted(u.id, NOW + 2)
    got = await store.get_user(u.id)
    assert got is not None and (got.role, got.banned_until, got.muted_until) == (
        "moderator", NOW + 1, NOW + 2)
    assert not await store.set_role(UserId(uid()), "moderator")
    assert not await store.set_banned(UserId(uid()), 1)


async def test_word_changes_and_audit(store: Store) -> None:
    start = await store.word_version()
    v1 = await store.add_word_change(WordChange("add", "词一", "abuse", "block", "m1", NOW))
    v2 = await store.add_word_change(WordChange("allow_add", "词一典", "", "", "m1", NOW + 1))
    assert start < v1 < v2 and await store.word_version() == v2
    changes = await store.word_changes(start)
    assert [(c.op, c.word, c.version) for c in changes] == [("add", "词一", v1),
                                                          ("allow_add", "词一典", v2)]
    assert await store.word_changes(v2) == []
    target = uid("t")
    a1 = await store.add_audit(AuditEntry(NOW, "m1", "ban", target, "x"))
    a2 = await store.add_audit(AuditEntry(NOW + 5, "m1", "mute", target))
    log = await store.audit_log(None, 10, target)
    assert [(e.id, e.action) for e in log] == [(a2, "mute"), (a1, "ban")]
    assert [e.id for e in await store.audit_log(a2, 10, target)] == [a1]
    words = [e for e in await store.audit_log(None, 50) if e.target == f"v{v1}"]
    assert words[0].action == "words.add" and words[0].detail == "词一\tabuse\tblock"


async def test_review_queue_unflag_and_delete_message(store: Store) -> None:
    g = ConvId(uid("g:"))
    u = await new_user(store, ("t",), (g,))
    m = (await store.append_message(g, uid("m"), u.id, "flag me", NOW, None, True)).message
    p = post(u.id, "flag post", NOW + 1, flagged=True)
    await store.create_post(p)
    queue = await store.review_queue(0, 500)
    mine = [i for i in queue if i.author == u.id]
    assert [(i.kind, i.id, i.where, i.item) for i in mine] == [
        ("message", m.id, g, "m:" + m.id), ("post", p.id, None, "p:" + p.id)]
    assert await store.unflag("post", p.id) and not await store.unflag("post", p.id)
    assert await store.get_message(m.id) == m
    deleted = await store.delete_message(m.id)
    assert deleted is not None and (deleted.body, deleted.deleted, deleted.seq) == ("", True, 1)
    assert [i for i in await store.review_queue(0, 500) if i.author == u.id] == []
    assert (await store.history(g, 0, 10))[0].deleted
    assert await store.delete_message(uid("m")) is None


@pytest.mark.parametrize("n", [3])
async def test_word_versions_are_increasing_under_concurrency(store: Store, n: int) -> None:
    versions = await asyncio.gather(*(store.add_word_change(
        WordChange("add", f"w{i}", "default", "block", "m", NOW)) for i in range(n)))
    assert len(set(versions)) == n and await store.word_version() == max(versions)
