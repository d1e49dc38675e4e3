"""Status posts and feeds, search with history, and reports.

Visibility rule shared by feeds and search: a user who blocked the viewer, or whom the viewer
blocked, never appears (as a user or as a post author), nor does a currently banned user.
Other users are only ever shown as their public view: never a phone or a birthdate.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Final

from chatd.catalog import Catalog, group_conv_id
from chatd.config import Config
from chatd.errors import BadRequest, Forbidden, NotFound, TooLarge, muted
from chatd.ids import ConvId, UserId
from chatd.services.media import MAX_POST_IMAGES, MediaService
from chatd.services.moderation import MODERATOR, page, report_wire
from chatd.services.ops import BODY, BODY_OPT, I_OPT, LINE_OPT, S_OPT, Call, Field, S, op
from chatd.services.privacy import consents_of
from chatd.services.text import TextGate
from chatd.store import Post, Report, Store
from chatd.store.sql import searchable

__all__ = ["REPORT_REASONS", "SocialService"]

REPORT_REASONS: Final = ("spam", "harassment", "sexual", "violence", "fraud", "hate", "underage",
                         "illegal", "other")
REPORT_KINDS: Final = ("user", "message", "post")
FEED_SCOPES: Final = ("group", "peers", "mine")
MAX_CITY: Final = 40
MAX_QUERY: Final = 50
MAX_REPORT_TEXT: Final = 500
SEARCH_KINDS: Final = ("all", "users", "posts", "groups")


class SocialService:
    def __init__(self, config: Config, store: Store, text: TextGate, catalog: Catalog,
                 media: MediaService,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.config = config
        self.store = store
        self.text = text
        self.catalog = catalog
        self.media = media
        self._now = now_ms

    # --- posts ---------------------------------------------------------------------------

    @op("post.create", body=BODY, group=S_OPT, city=LINE_OPT,
        attachments=Field(list, items=str, required=False))
    async def create_post(self, call: Call, body: str, group: str | None = None,
                          city: str | None = None,
                          attachments: list[str] | None = None) -> dict[str, Any]:
        """Filter the text (block → ``filtered``, mask → stored masked, review → flagged);
        up to 9 uploaded photos go with it."""
        author = call.user
        post_id = uuid.uuid4().hex
        files = await self.media.claim(author, attachments, f"p:{post_id}", kinds=("image",),
                                       max_count=MAX_POST_IMAGES) if attachments else []
        if not body.strip() and not files:
            raise BadRequest("body must not be empty", field="body")
        if len(body) > self.config.max_post_chars:
            raise TooLarge(f"body is at most {self.config.max_post_chars} characters",
                           limit=self.config.max_post_chars)
        if group is not None and not await self.store.is_member(ConvId(group), author):
            raise Forbidden("post to the groups of your interests only")
        if city is not None:
            city = city.strip()
            if not 1 <= len(city) <= MAX_CITY:
                raise BadRequest(f"city must be 1 to {MAX_CITY} characters", field="city")
            if not (await consents_of(self.store, author))["location"]:
                raise Forbidden("turn location on (consent.set) to add a city",
                                reason="consent")
            city = self.text.publishable(city)
        user = await self.store.get_user(author)
        if user is None:
            raise Forbidden("this account no longer exists")
        now = self._now()
        if user.muted_until > now:
            raise muted(user.muted_until)
        checked = self.text.check(body)
        post = Post(post_id, author, checked.text, now, group, city, checked.flagged,
                    user.nickname, tuple(f.wire() for f in files))
        await self.store.create_post(post)
        await self.media.attach(files, author, f"p:{post_id}")
        return {"post": post.wire()}

    @op("post.delete", id=S)
    async def delete_post(self, call: Call, id: str) -> None:
        user_id, post_id = call.user, id
        post = await self.store.get_post(post_id)
        if post is None:
            raise NotFound("no such post")
        if post.author != user_id:
            me = await self.store.get_user(user_id)
            if me is None or me.role != MODERATOR:
                raise Forbidden("you can delete only your own posts")
        await self.media.erase_post(post_id)
        await self.store.delete_post(post_id)

    @op("feed", scope=S, group=S_OPT, before=S_OPT, limit=I_OPT)
    async def feed(self, call: Call, scope: str, group: str | None = None,
                   before: str | None = None, limit: int | None = None) -> dict[str, Any]:
        viewer = call.user
        if scope not in FEED_SCOPES:
            raise BadRequest(f"scope must be one of {', '.join(FEED_SCOPES)}", field="scope")
        if scope == "group" and (group is None or not group.startswith("g:")):
            raise BadRequest("a group feed needs 'group' (g:<tag>)", field="group")
        _, lim = page(0, limit, 20)
        cursor = _parse_cursor(before) if before is not None else None
        posts = await self.store.feed(viewer, scope, group, cursor, lim, self._now())  # type: ignore[arg-type]
        nxt = f"{posts[-1].ts}.{posts[-1].id}" if len(posts) == lim else None
        return {"posts": [p.wire() for p in posts], "next": nxt}

    # --- search --------------------------------------------------------------------------

    @op("search", q=S, kind=S_OPT, offset=I_OPT, limit=I_OPT)
    async def search(self, call: Call, q: str, kind: str | None = None,
                     offset: int | None = None, limit: int | None = None) -> dict[str, Any]:
        viewer = call.user
        q = q.strip()
        if not 1 <= len(q) <= MAX_QUERY:
            raise BadRequest(f"q must be 1 to {MAX_QUERY} characters", field="q")
        kind = kind or "all"
        if kind not in SEARCH_KINDS:
            raise BadRequest(f"kind must be one of {', '.join(SEARCH_KINDS)}", field="kind")
        off, lim = page(offset, limit, 20)
        now = self._now()
        if not searchable(q):  # punctuation alone means nothing: never a whole table
            return {**{k: [] for k in _kinds(kind)}, "next": None}
        folded = q.casefold()
        # Groups: a tag whose display name holds q (the catalog is small and public).
        # Users: only by a tag named exactly q (or its id): never by a fragment of an id.
        tags = [t for t in self.catalog if folded in t.name.casefold()
                or folded in t.en.casefold() or folded == t.id.casefold()]
        exact = [t.id for t in tags if folded in (t.name.casefold(), t.en.casefold(),
                                                  t.id.casefold())]
        result: dict[str, Any] = {}
        full = False
        if kind in ("all", "users"):
            users = await self.store.search_users(viewer, q, exact, off, lim, now)
            result["users"] = [u.public() for u in users]
            full |= len(users) == lim
        if kind in ("all", "posts"):
            posts = await self.store.search_posts(viewer, q, off, lim, now)
            result["posts"] = [p.wire() for p in posts]
            full |= len(posts) == lim
        if kind in ("all", "groups"):
            chunk = tags[off:off + lim]
            result["groups"] = [{"conv": group_conv_id(t.id), "tag": t.id, "name": t.name}
                                for t in chunk]
            full |= off + lim < len(tags)
        result["next"] = off + lim if full else None
        # The first page only: paging through results is not a new search.
        if off == 0 and (await consents_of(self.store, viewer))["search_history"]:
            await self.store.add_search(viewer, q, now, self.config.search_history_keep)
        return result

    @op("search.history", limit=I_OPT)
    async def history(self, call: Call, limit: int | None = None) -> dict[str, Any]:
        _, lim = page(0, limit, 50)
        rows = await self.store.search_history(call.user, lim)
        return {"history": [{"q": q, "ts": ts} for q, ts in rows]}

    @op("search.history.clear")
    async def clear_history(self, call: Call) -> None:
        await self.store.clear_search_history(call.user)

    # --- reports -------------------------------------------------------------------------

    @op("report", kind=S, target=S, reason=S, text=BODY_OPT)
    async def report(self, call: Call, kind: str, target: str, reason: str,
                     text: str | None = None) -> dict[str, Any]:
        """Store a report (never published, not filtered: moderators read it as written)."""
        reporter = call.user
        me = await self.store.get_user(reporter)
        if me is not None and me.muted_until > self._now():
            # Reports are text too (and a muted spammer's bulk reports flood the queue).
            raise muted(me.muted_until)
        if kind not in REPORT_KINDS:
            raise BadRequest(f"kind must be one of {', '.join(REPORT_KINDS)}", field="kind")
        if reason not in REPORT_REASONS:
            raise BadRequest(f"reason must be one of {', '.join(REPORT_REASONS)}",
                             field="reason")
        note = (text or "").strip()
        if len(note) > MAX_REPORT_TEXT:
            raise TooLarge(f"text is at most {MAX_REPORT_TEXT} characters",
                           limit=MAX_REPORT_TEXT)
        snapshot = ""
        if kind == "user":
            if await self.store.get_user(UserId(target)) is None:
                raise NotFound("no such user")
            about = UserId(target)
        elif kind == "message":
            msg = await self.store.get_message(target)
            # Only what the reporter could read: never confirm other conversations' ids.
            if msg is None or not await self.store.was_member(msg.conv, reporter):
                raise NotFound("no such message")
            about, snapshot = msg.sender, msg.body
        else:
            post = await self.store.get_post(target)
            if post is None:
                raise NotFound("no such post")
            about, snapshot = post.author, post.body
        if about == reporter:
            raise BadRequest("you cannot report yourself", field="target")
        now = self._now()
        stored = await self.store.add_report(Report(uuid.uuid4().hex, reporter, kind, target,  # type: ignore[arg-type]
                                                    about, reason, note, snapshot, now, now))
        return {"report": report_wire(stored, False)}

    @op("reports.mine")
    async def my_reports(self, call: Call) -> dict[str, Any]:
        mine = await self.store.reports_by(call.user)
        return {"reports": [report_wire(r, False) for r in mine]}


def _kinds(kind: str) -> tuple[str, ...]:
    return ("users", "posts", "groups") if kind == "all" else (kind,)


def _parse_cursor(raw: str) -> tuple[int, str]:
    ts, sep, pid = raw.partition(".")
    if not sep or not ts.isdigit():
        raise BadRequest("before must be a cursor from an earlier 'next'", field="before")
    return int(ts), pid
