"""Privacy: consents, the data of an export, account deletion."""

from __future__ import annotations

from chatd.store import (
    TOMBSTONE,
    AuditEntry,
    ConvId,
    Report,
    SessionRow,
    Store,
    UserId,
)
from tests.store.support import NOW, direct, new_user, post, uid


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
