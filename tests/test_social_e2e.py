"""Status posts, feeds, search with history, and reports, end to end (blocks included)."""

from __future__ import annotations

from chatd.client import Client
from tests.conftest import registered
from tests.test_chat_e2e import matched


async def test_posts_feeds_and_blocks(url: str) -> None:
    a = await registered(url, ["music.rock"], nickname="阿甲")
    b = await registered(url, ["music.rock"], nickname="阿乙")
    c = await registered(url, ["music.rock"], nickname="阿丙")
    ids = {x: x.user["id"] for x in (a, b, c)}  # type: ignore[index]
    pa = (await a.call("post.create", body="甲的帖子", group="g:music.rock"))["post"]
    pb = (await b.call("post.create", body="乙的帖子 加微信", group="g:music.rock"))["post"]
    assert pa["author"] == {"id": ids[a], "nickname": "阿甲"} and pa["group"] == "g:music.rock"
    assert pb["body"] == "乙的帖子 ***"  # mask entries are stored masked
    assert (await c.request("post.create", body="傻逼"))["code"] == "filtered"
    assert (await c.request("post.create", body="x", group="g:pet.cat"))["code"] == "forbidden"
    feed = (await c.call("feed", scope="group", group="g:music.rock"))["posts"]
    assert [p["id"] for p in feed] == [pb["id"], pa["id"]]  # newest first
    # Paging by cursor.
    first = await c.call("feed", scope="group", group="g:music.rock", limit=1)
    assert [p["id"] for p in first["posts"]] == [pb["id"]] and first["next"]
    second = await c.call("feed", scope="group", group="g:music.rock", limit=1,
                          before=first["next"])
    assert [p["id"] for p in second["posts"]] == [pa["id"]]
    # A block hides posts both ways.
    await c.call("block", user=ids[a])
    pc = (await c.call("post.create", body="丙的帖子", group="g:music.rock"))["post"]
    seen_by_c = [p["id"] for p in (await c.call("feed", scope="group",
                                                group="g:music.rock"))["posts"]]
    assert pa["id"] not in seen_by_c and pb["id"] in seen_by_c
    seen_by_a = [p["id"] for p in (await a.call("feed", scope="group",
                                                group="g:music.rock"))["posts"]]
    assert pc["id"] not in seen_by_a and pb["id"] in seen_by_a
    mine = (await a.call("feed", scope="mine"))["posts"]
    assert [p["id"] for p in mine] == [pa["id"]]
    # Delete: own posts only.
    assert (await b.request("post.delete", id=pa["id"]))["code"] == "forbidden"
    await a.call("post.delete", id=pa["id"])
    assert (await a.request("post.delete", id=pa["id"]))["code"] == "not_found"
    for x in (a, b, c):
        await x.close()


async def test_peers_feed_and_location_consent(url: str) -> None:
    a, b, fa, _ = await matched(url, ["film.movie", "game.rpg"], ["film.movie", "game.rpg"])
    stranger = await registered(url, ["film.movie"])
    post = (await b.call("post.create", body="今天天气好"))["post"]
    await stranger.call("post.create", body="陌生人")
    peers = (await a.call("feed", scope="peers"))["posts"]
    assert [p["id"] for p in peers] == [post["id"]]
    refused = await a.request("post.create", body="在这里", city="杭州")
    assert (refused["code"], refused["reason"]) == ("forbidden", "consent")
    await a.call("consent.set", location=True)
    located = (await a.call("post.create", body="在这里", city="杭州"))["post"]
    assert located["city"] == "杭州"
    assert (await b.call("feed", scope="peers"))["posts"][0]["city"] == "杭州"
    await a.call("consent.set", location=False)  # honoured for past posts too
    assert "city" not in (await b.call("feed", scope="peers"))["posts"][0]
    await b.call("conv.leave", conv=fa["conv"])
    assert [p["id"] for p in (await a.call("feed", scope="peers"))["posts"]] == [located["id"]]
    for x in (a, b, stranger):
        await x.close()


async def test_search_users_posts_groups_and_history(url: str) -> None:
    a = await registered(url, ["book.scifi"], nickname="搜索目标")
    b = await registered(url, ["book.scifi"], nickname="找人的")
    c = await registered(url, ["pet.dog"], nickname="拉黑者")
    await a.call("post.create", body="搜索目标的帖子")
    found = await b.call("search", q="搜索目标")
    assert [u["id"] for u in found["users"]] == [a.user["id"]]  # type: ignore[index]
    assert set(found["users"][0]) == {"id", "nickname", "bio", "gender", "interests",
                                     "verified", "avatar"}
    assert [p["body"] for p in found["posts"]] == ["搜索目标的帖子"]
    groups = (await b.call("search", q="科幻", kind="groups"))["groups"]
    assert {"conv": "g:book.scifi", "tag": "book.scifi"}.items() <= groups[0].items()
    by_tag = (await b.call("search", q="book.scifi", kind="users"))["users"]
    assert a.user["id"] in [u["id"] for u in by_tag]  # type: ignore[index]
    await c.call("block", user=a.user["id"])  # type: ignore[index]
    blocked = await c.call("search", q="搜索目标")
    assert blocked["users"] == [] and blocked["posts"] == []
    assert (await a.call("search", q="拉黑者"))["users"] == []
    # Paging.
    page1 = await b.call("search", q="book.scifi", kind="users", limit=1)
    assert len(page1["users"]) == 1 and page1["next"] == 1
    history = (await b.call("search.history"))["history"]
    assert [h["q"] for h in history] == ["book.scifi", "科幻", "搜索目标"]
    await b.call("search.history.clear")
    assert (await b.call("search.history"))["history"] == []
    await b.call("consent.set", search_history=False)
    await b.call("search", q="不记录")
    assert (await b.call("search.history"))["history"] == []
    assert (await b.request("search", q=" "))["code"] == "bad_request"
    for x in (a, b, c):
        await x.close()


async def test_reports_merge_and_are_never_published(url: str) -> None:
    a = await registered(url, ["music.rock"])
    b = await registered(url, ["music.rock"])
    sent = await b.call("msg.send", conv="g:music.rock", body="坏消息")
    r1 = (await a.call("report", kind="message", target=sent["id"], reason="spam",
                       text="刷屏"))["report"]
    r2 = (await a.call("report", kind="message", target=sent["id"], reason="fraud"))["report"]
    assert r1["id"] == r2["id"] and (r2["count"], r2["reason"], r2["text"]) == (2, "fraud",
                                                                                "刷屏")
    assert (await a.request("report", kind="message", target="nope",
                            reason="spam"))["code"] == "not_found"
    assert (await a.request("report", kind="user", target=a.user["id"],  # type: ignore[index]
                            reason="spam"))["code"] == "bad_request"
    assert (await a.request("report", kind="user", target=b.user["id"],  # type: ignore[index]
                            reason="because"))["field"] == "reason"
    mine = (await a.call("reports.mine"))["reports"]
    assert [(r["kind"], r["state"]) for r in mine] == [("message", "open")]
    assert (await b.call("reports.mine"))["reports"] == []
    assert b.events.empty() or all(e["t"] != "report" for e in list(b.events._queue))  # type: ignore[attr-defined]
    for x in (a, b):
        await x.close()


async def test_unknown_scope_and_cursor(url: str) -> None:
    a: Client = await registered(url)
    assert (await a.request("feed", scope="world"))["field"] == "scope"
    assert (await a.request("feed", scope="group"))["field"] == "group"
    assert (await a.request("feed", scope="mine", before="x"))["field"] == "before"
    await a.close()


async def test_search_finds_what_a_person_means_never_everyone(url: str) -> None:
    a = await registered(url, ["book.scifi"], nickname="星河旅人")
    await a.call("profile.update", bio="喜欢读科幻小说")
    b = await registered(url, ["book.scifi"], nickname="王五")
    seeker = await registered(url, ["pet.cat"], nickname="找人")
    # Punctuation, or a fragment of tag ids, lists nobody (every tag id holds a ".").
    for q in (".", "...", "%", "music.", "book.sci"):
        found = await seeker.call("search", q=q, kind="users", limit=200)
        assert found["users"] == [] and found["next"] is None, q
    assert (await seeker.call("search", q="."))["posts"] == []
    # Nickname and bio by the full-text index; a tag by its name.
    assert [u["id"] for u in (await seeker.call("search", q="星河旅", kind="users"))["users"]] \
        == [a.user["id"]]  # type: ignore[index]
    assert a.user["id"] in [u["id"] for u in (await seeker.call(  # type: ignore[index]
        "search", q="科幻小说", kind="users"))["users"]]
    by_tag = {u["id"] for u in (await seeker.call("search", q="科幻", kind="users"))["users"]}
    assert {a.user["id"], b.user["id"]} <= by_tag  # type: ignore[index]
    # 1-2 characters: nickname exact or prefix.
    assert [u["id"] for u in (await seeker.call("search", q="王五", kind="users"))["users"]] \
        == [b.user["id"]]  # type: ignore[index]
    for x in (a, b, seeker):
        await x.close()


async def test_search_is_rate_limited_per_user(url: str) -> None:
    a = await registered(url, ["pet.cat"])
    codes = [(await a.request("search", q=f"词{i}", kind="groups")).get("code", "ok")
             for i in range(31)]
    assert codes[:30] == ["ok"] * 30 and codes[30] == "rate_limited"
    await a.close()
