"""Social: posts and feeds, search and search history, reports."""

from __future__ import annotations

from chatd.store import (
    Report,
    Store,
    UserId,
)
from tests.store.support import NOW, direct, new_user, post, uid


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
