"""Moderators: word lists, the review and report queues, warnings, mutes and bans.

Every op is declared ``auth="moderator"``: the dispatcher refuses it with ``forbidden``
(``reason: not_moderator``) unless the caller's role is ``moderator`` right now (read from the
store on each call, so a revoked role takes effect at once). Every action that changes
something is written to the audit log (who, what, to whom, when). The sanctions are also
taken by the server API (:meth:`ModerationService.ban_user` and its siblings), with the actor
``api:<key name>``.

When a resolution closes reports, each reporter hears of it (:meth:`_tell_reporters`, the one
place that tells them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from chatd.errors import BadRequest, Forbidden, NotFound
from chatd.ids import ConvId, UserId
from chatd.node import Node
from chatd.push import Notification, NotifyOffline
from chatd.services.ops import BODY_OPT, I_OPT, S_OPT, Call, Field, S, op
from chatd.services.wordlists import WordLists
from chatd.store import AuditEntry, Report, ReviewItem, Store, User

if TYPE_CHECKING:  # the media service reads the moderator role from here
    from chatd.services.media import MediaService

__all__ = ["FOREVER", "RESOLUTIONS", "ModerationService", "report_wire"]

MODERATOR: Final = "moderator"
#: ``banned_until`` of a permanent ban (year 9999).
FOREVER: Final = 253_402_300_799_000
RESOLUTIONS: Final = ("dismiss", "delete", "warn", "mute", "ban")
MAX_PAGE: Final = 200
MAX_NOTE: Final = 500


def report_wire(r: Report, for_moderator: bool) -> dict[str, Any]:
    """A report as its reporter sees it; moderators also see whom and what it is about."""
    wire: dict[str, Any] = {"id": r.id, "kind": r.kind, "target": r.target, "reason": r.reason,
                            "text": r.note, "count": r.count, "state": r.state,
                            "resolution": r.resolution, "created_at": r.created_at,
                            "updated_at": r.updated_at}
    if for_moderator:
        wire.update(item="r:" + r.id, reporter=r.reporter, user=r.target_user,
                    snapshot=r.snapshot)
    return wire


def _review_wire(i: ReviewItem) -> dict[str, Any]:
    return {"item": i.item, "kind": i.kind, "id": i.id, "author": i.author, "body": i.body,
            "ts": i.ts, "where": i.where}


def page(offset: int | None, limit: int | None, default: int = 50) -> tuple[int, int]:
    offset = 0 if offset is None else offset
    limit = default if limit is None else limit
    if offset < 0:
        raise BadRequest("offset must not be negative", field="offset")
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be 1 to {MAX_PAGE}", field="limit")
    return offset, limit


class ModerationService:
    def __init__(self, store: Store, node: Node, words: WordLists, media: MediaService,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.store = store
        self.node = node
        self.words = words
        self.media = media
        self._now = now_ms
        self.notify_offline: NotifyOffline | None = None  # push for users not connected

    async def require(self, actor: UserId) -> User:
        """The actor, if a moderator (the dispatcher runs this before every ``mod.*`` op)."""
        user = await self.store.get_user(actor)
        if user is None or user.role != MODERATOR:
            raise Forbidden("moderators only", reason="not_moderator")
        return user

    async def _audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        await self.store.add_audit(AuditEntry(self._now(), actor, action, target, detail))

    # --- word lists ----------------------------------------------------------------------

    @op("mod.words.add", auth="moderator", word=S, category=S_OPT, action=S_OPT)
    async def words_add(self, call: Call, word: str, category: str = "",
                        action: str = "") -> dict[str, Any]:
        return await self._word_change(call, "add", word, category, action)

    @op("mod.words.remove", auth="moderator", word=S)
    async def words_remove(self, call: Call, word: str) -> dict[str, Any]:
        return await self._word_change(call, "remove", word)

    @op("mod.allow.add", auth="moderator", word=S)
    async def allow_add(self, call: Call, word: str) -> dict[str, Any]:
        return await self._word_change(call, "allow_add", word)

    @op("mod.allow.remove", auth="moderator", word=S)
    async def allow_remove(self, call: Call, word: str) -> dict[str, Any]:
        return await self._word_change(call, "allow_remove", word)

    async def _word_change(self, call: Call, change: str, word: str, category: str = "",
                           action: str = "") -> dict[str, Any]:
        version = await self.words.change(call.user, change, word, category, action)
        return {"version": version, "filter": self.words.live.current.version}

    @op("mod.words.list", auth="moderator", q=S_OPT, offset=I_OPT, limit=I_OPT)
    async def word_list(self, call: Call, q: str = "", offset: int | None = None,
                        limit: int | None = None) -> dict[str, Any]:
        off, lim = page(offset, limit, 100)
        f = self.words.live.current
        q = q.strip().casefold()
        entries = sorted((e for e in f.entries() if q in e.word.casefold()),
                         key=lambda e: (e.word, e.category))
        allow = sorted(w for w in f.allow_words() if q in w.casefold())
        chunk = entries[off:off + lim]
        return {"entries": [{"word": e.word, "category": e.category, "action": e.action}
                            for e in chunk],
                "allow": allow[off:off + lim], "total": len(entries),
                "total_allow": len(allow),
                "next": off + lim if off + lim < max(len(entries), len(allow)) else None,
                **self.version_info()}

    def version_info(self) -> dict[str, Any]:
        f = self.words.live.current
        return {"version": self.words.version, "filter": f.version, "size": len(f),
                "allow_size": len(f.allow_words())}

    @op("mod.words.version", auth="moderator")
    async def word_version(self, call: Call) -> dict[str, Any]:
        return self.version_info()

    @op("mod.words.check", auth="moderator", text=S)
    async def dry_run(self, call: Call, text: str) -> dict[str, Any]:
        v = self.words.live.current.check(text)
        return {"blocked": v.blocked, "action": v.action, "category": v.category,
                "masked": v.masked,
                "matches": [{"start": m.start, "end": m.end, "word": m.word,
                             "category": m.category, "action": m.action} for m in v.matches]}

    # --- queues --------------------------------------------------------------------------

    @op("mod.queue", auth="moderator", queue=S, offset=I_OPT, limit=I_OPT)
    async def queue(self, call: Call, queue: str, offset: int | None = None,
                    limit: int | None = None) -> dict[str, Any]:
        which = queue
        off, lim = page(offset, limit)
        if which == "review":
            items = [_review_wire(i) for i in await self.store.review_queue(off, lim)]
        elif which == "reports":
            items = [report_wire(r, True) for r in await self.store.open_reports(off, lim)]
        elif which == "media":
            items = await self.media.review_items(off, lim)
        elif which == "feedback":
            items = [f.wire(True) for f in await self.store.feedback_queue(off, lim)]
        else:
            raise BadRequest("queue must be review, reports, media or feedback", field="queue")
        return {"items": items, "next": off + lim if len(items) == lim else None}

    @op("mod.resolve", auth="moderator", item=S, action=S, duration=I_OPT, note=BODY_OPT)
    async def resolve(self, call: Call, item: str, action: str, duration: int | None = None,
                      note: str = "") -> dict[str, Any]:
        """Resolve a queue item (``m:<id>``, ``p:<id>`` or ``r:<id>``) with an action."""
        actor = call.user
        if action not in RESOLUTIONS:
            raise BadRequest(f"action must be one of {', '.join(RESOLUTIONS)}", field="action")
        note = _note(note)
        kind, _, ident = item.partition(":")
        if kind == "r":
            report = await self.store.get_report(ident)
            if report is None:
                raise NotFound("no such report")
            content_kind, content_id, author = report.kind, report.target, report.target_user
        elif kind in ("m", "p"):
            content_kind = "message" if kind == "m" else "post"
            content_id = ident
            author = await self._author(content_kind, ident)
        else:
            raise BadRequest("item must be m:<id>, p:<id> or r:<id>", field="item")
        result: dict[str, Any] = {}
        if action == "delete":
            if content_kind == "user":
                raise BadRequest("a report about a user has no content to delete",
                                 field="action")
            await self._delete_content(content_kind, content_id)
        elif action == "dismiss":
            if content_kind != "user":
                await self.store.unflag(content_kind, content_id)
        else:
            if content_kind != "user":
                await self.store.unflag(content_kind, content_id)
            result = await self._sanction(call, author, action, duration, note)
        resolved = await self.store.resolve_reports_for(content_kind, content_id, action,
                                                        self._now())
        await self._audit(actor, f"resolve.{action}", author, f"{item} {note}".strip())
        await self._tell_reporters(resolved, content_kind, content_id, action)
        return {"resolved": len(resolved), **result}

    async def _tell_reporters(self, resolved: list[tuple[str, UserId]], kind: str,
                              target: str, resolution: str) -> None:
        """Each reporter's own report was resolved: tell their sessions (every node), and
        push to those with none. The single place that tells reporters."""
        for report_id, reporter in resolved:
            await self.node.to_user(reporter, {"t": "report.resolved", "id": report_id,
                                               "kind": kind, "target": target,
                                               "resolution": resolution})
            if self.notify_offline is not None:
                await self.notify_offline(reporter, "report", f"report:{report_id}:{resolution}",
                                          Notification("举报处理结果", "你的举报已有处理结果",
                                                       {"kind": "report", "id": report_id}))

    async def _author(self, kind: str, ident: str) -> UserId:
        if kind == "message":
            msg = await self.store.get_message(ident)
            if msg is None:
                raise NotFound("no such message")
            return msg.sender
        post = await self.store.get_post(ident)
        if post is None:
            raise NotFound("no such post")
        return post.author

    async def _delete_content(self, kind: str, ident: str) -> None:
        if kind == "message":
            msg = await self.store.delete_message(ident)
            if msg is None:
                raise NotFound("no such message")
            await self.media.erase_message(msg.id)
            await self.node.to_conv(ConvId(msg.conv), {"t": "msg.deleted", "conv": msg.conv,
                                                       "id": msg.id, "seq": msg.seq})
        else:
            await self.media.erase_post(ident)
            await self.store.delete_post(ident)  # already gone is fine: the outcome holds

    async def _sanction(self, call: Call, user_id: UserId, action: str,
                        duration: int | None, note: str) -> dict[str, Any]:
        if action == "warn":
            await self.warn(call, user_id, note, audit=False)
            return {}
        if action == "mute":
            return await self.mute_user(call.user, user_id, duration, note, audit=False)
        return await self.ban_user(call.user, user_id, duration, note, audit=False)

    # --- sanctions -----------------------------------------------------------------------

    async def _notice(self, user_id: UserId, event: dict[str, Any]) -> None:
        """A moderator's notice: to the user's sessions, and a push when they have none."""
        await self.node.to_user(user_id, event)
        if self.notify_offline is not None:
            await self.notify_offline(user_id, "notice", f"notice:{event['kind']}:{self._now()}",
                                      Notification("系统通知", "你收到一条管理员通知",
                                                   {"kind": "notice"}))

    async def _target(self, user_id: UserId) -> User:
        user = await self.store.get_user(user_id)
        if user is None:
            raise NotFound("no such user")
        if user.role == MODERATOR:
            raise Forbidden("moderators cannot be sanctioned here; revoke the role first",
                            reason="moderator")
        return user

    @op("mod.warn", auth="moderator", user=S, note=BODY_OPT)
    async def warn(self, call: Call, user: str, note: str = "", audit: bool = True) -> None:
        user_id = UserId(user)
        await self._target(user_id)
        note = _note(note)
        await self._notice(user_id, {"t": "mod.notice", "kind": "warn", "reason": note})
        if audit:
            await self._audit(call.user, "warn", user_id, note)

    @op("mod.mute", auth="moderator", user=S, duration=Field(int), note=BODY_OPT)
    async def mute(self, call: Call, user: str, duration: int | None,
                   note: str = "") -> dict[str, Any]:
        return await self.mute_user(call.user, UserId(user), duration, note)

    async def mute_user(self, actor: str, user_id: UserId, duration: int | None,
                        note: str = "", audit: bool = True) -> dict[str, Any]:
        """Mute for ``duration`` seconds (required; 0 lifts the mute)."""
        note = _note(note)
        await self._target(user_id)
        if duration is None or duration < 0:
            raise BadRequest("duration (seconds, 0 to lift) is required", field="duration")
        until = self._now() + duration * 1000 if duration else 0
        await self.store.set_muted(user_id, until)
        await self._notice(user_id, {"t": "mod.notice", "kind": "mute", "until": until,
                                     "reason": note})
        if audit:
            await self._audit(actor, "mute", user_id, f"until={until} {note}".strip())
        return {"until": until}

    @op("mod.ban", auth="moderator", user=S, duration=I_OPT, note=BODY_OPT)
    async def ban(self, call: Call, user: str, duration: int | None = None,
                  note: str = "") -> dict[str, Any]:
        return await self.ban_user(call.user, UserId(user), duration, note)

    async def ban_user(self, actor: str, user_id: UserId, duration: int | None = None,
                       note: str = "", audit: bool = True) -> dict[str, Any]:
        """Ban for ``duration`` seconds (none: for good). Every session ends on every node."""
        note = _note(note)
        await self._target(user_id)
        if duration is not None and duration <= 0:
            raise BadRequest("duration must be positive (omit it for a permanent ban)",
                             field="duration")
        until = self._now() + duration * 1000 if duration else FOREVER
        await self.store.set_banned(user_id, until)
        await self.store.delete_user_sessions(user_id)
        await self.node.revoke(user_id)
        if audit:
            await self._audit(actor, "ban", user_id, f"until={until} {note}".strip())
        return {"until": until}

    @op("mod.unban", auth="moderator", user=S)
    async def unban(self, call: Call, user: str) -> None:
        await self.unban_user(call.user, UserId(user))

    async def unban_user(self, actor: str, user_id: UserId) -> None:
        if not await self.store.set_banned(user_id, 0):
            raise NotFound("no such user")
        await self._audit(actor, "unban", user_id)

    @op("mod.audit", auth="moderator", before=I_OPT, limit=I_OPT, target=S_OPT)
    async def audit(self, call: Call, before: int | None = None, limit: int | None = None,
                    target: str | None = None) -> dict[str, Any]:
        _, lim = page(0, limit)
        entries = await self.store.audit_log(before, lim, target)
        return {"entries": [e.wire() for e in entries],
                "next": entries[-1].id if len(entries) == lim else None}


def _note(note: str | None) -> str:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise BadRequest(f"note is at most {MAX_NOTE} characters", field="note")
    return note
