"""The Store contract for the issue-6 methods, on SQLite and PostgreSQL (same fixtures as
tests/test_store_contract.py)."""

from __future__ import annotations

import pytest

from chatd.store import (
    TOMBSTONE,
    AuditEntry,
    ConvId,
    Post,
    Report,
    SessionRow,
    Store,
    UserId,
    WordChange,
)
from tests.test_store_contract import NOW, backend, direct, new_user, pg_dsn, store, uid

__all__ = ["backend", "pg_dsn", "store"]


def post(author: UserId, body: str = "hello", ts: int = NOW, group: str | None = None,
         **kw: object) -> Post:
    return Post(uid("p"), author, body, ts, group, **kw)  # type: ignore[arg-type]


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


async def test_posts_and_feeds(store: Store) -> None:
    g = uid("g:")
    conv, a, b = await direct(store)
    c = await new_user(store)
    pa = post(a.id, "a1", NOW, g, city="杭州")
    pb1, pb2 = post(b.id, "b1", NOW + 1), post(b.id, "b2", NOW + 2, g)
    pc = post(c.id, "c1", NOW + 3, g)
    for p in (pa, pb1, pb2, pc):
        await store.create_post(p)
    got = await store.get_post(pa.id)
    assert got is not None and (got.city, got.group, got.author_nickname) == ("杭州", g, "nick")
    ids = lambda ps: [p.id for p in ps]  # noqa: E731
    assert ids(await store.feed(a.id, "group", g, None, 10, NOW)) == [pc.id, pb2.id, pa.id]
    assert ids(await store.feed(a.id, "peers", None, None, 10, NOW)) == [pb2.id, pb1.id, pa.id]
    assert ids(await store.feed(a.id, "mine", None, None, 10, NOW)) == [pa.id]
    page = await store.feed(a.id, "group", g, (pb2.ts, pb2.id), 10, NOW)
    assert ids(page) == [pa.id]
    await store.block(c.id, a.id, NOW)
    assert ids(await store.feed(a.id, "group", g, None, 10, NOW)) == [pb2.id, pa.id]
    assert ids(await store.feed(c.id, "group", g, None, 10, NOW)) == [pc.id, pb2.id]
    await store.set_banned(b.id, NOW + 1000)
    assert ids(await store.feed(a.id, "group", g, None, 10, NOW)) == [pa.id]
    await store.set_banned(b.id, 0)
    await store.leave_conv(conv, b.id, NOW)
    assert ids(await store.feed(a.id, "peers", None, None, 10, NOW)) == [pa.id]
    await store.clear_post_locations(a.id)
    got = await store.get_post(pa.id)
    assert got is not None and got.city is None
    assert ids(await store.posts_by(b.id)) == [pb2.id, pb1.id]
    assert await store.delete_post(pb1.id) and not await store.delete_post(pb1.id)


async def test_search_and_history(store: Store) -> None:
    tag = uid("tag")
    me = await new_user(store)
    hit = await new_user(store, (tag,))
    await store.update_profile(hit.id, "Zz搜索_%x", None, None, None)
    other = await new_user(store)
    await store.update_profile(other.id, "zz搜索_other", None, None, None)
    found = await store.search_users(me.id, "zz搜索_%", [], 0, 10, NOW)
    assert [u.id for u in found] == [hit.id]  # % and _ are literal; case-insensitive ASCII
    by_tag = await store.search_users(me.id, "nothing-like-it", [tag], 0, 10, NOW)
    assert [u.id for u in by_tag] == [hit.id]
    both = await store.search_users(me.id, "搜索_", [], 0, 10, NOW)
    assert [u.id for u in both] == [hit.id, other.id]
    assert [u.id for u in await store.search_users(me.id, "搜索_", [], 1, 1, NOW)] == [other.id]
    assert await store.search_users(hit.id, "", [tag], 0, 10, NOW) == []  # never yourself
    await store.block(other.id, me.id, NOW)
    assert [u.id for u in await store.search_users(me.id, "搜索_", [], 0, 10, NOW)] == [hit.id]
    word = uid("kw")
    p = post(hit.id, f"about {word.upper()}")
    await store.create_post(p)
    assert [x.id for x in await store.search_posts(me.id, word, 0, 10, NOW)] == [p.id]
    await store.block(me.id, hit.id, NOW)
    assert await store.search_posts(me.id, word, 0, 10, NOW) == []
    for i, q in enumerate(["q1", "q2", "q1", "q3"]):
        await store.add_search(me.id, q, NOW + i, keep=2)
    assert await store.search_history(me.id, 10) == [("q3", NOW + 3), ("q1", NOW + 2)]
    await store.clear_search_history(me.id)
    assert await store.search_history(me.id, 10) == []


async def test_reports_merge_and_resolve(store: Store) -> None:
    a, b, c = await new_user(store), await new_user(store), await new_user(store)

    def report(reporter: UserId, reason: str, note: str = "") -> Report:
        return Report(uid("r"), reporter, "user", b.id, b.id, reason, note, "", NOW, NOW)

    first = await store.add_report(report(a.id, "spam", "note"))
    again = await store.add_report(report(a.id, "fraud"))
    assert again.id == first.id and (again.count, again.reason, again.note) == (2, "fraud",
                                                                                 "note")
    await store.add_report(report(c.id, "spam"))
    assert await store.get_report(first.id) == again
    assert await store.get_report(uid("r")) is None
    open_ = [r for r in await store.open_reports(0, 500) if r.target == b.id]
    assert len(open_) == 2
    assert await store.resolve_reports("user", b.id, "ban", NOW + 1) == 2
    assert await store.resolve_reports("user", b.id, "ban", NOW + 1) == 0
    mine = await store.reports_by(a.id)
    assert [(r.state, r.resolution) for r in mine] == [("resolved", "ban")]
    reopened = await store.add_report(report(a.id, "spam"))
    assert (reopened.state, reopened.resolution, reopened.count) == ("open", None, 3)


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


@pytest.mark.parametrize("n", [3])
async def test_word_versions_are_increasing_under_concurrency(store: Store, n: int) -> None:
    import asyncio
    versions = await asyncio.gather(*(store.add_word_change(
        WordChange("add", f"w{i}", "default", "block", "m", NOW)) for i in range(n)))
    assert len(set(versions)) == n and await store.word_version() == max(versions)
