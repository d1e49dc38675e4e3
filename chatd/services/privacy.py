"""Users' rights: consents, the export of everything held about a user, account deletion.

Consents and their defaults (privacy by default: only search history is on until changed):
``marketing`` (marketing SMS; off), ``location`` (a coarse city on posts; off),
``search_history`` (keep my queries; on). Turning ``location`` off also removes the city from
the user's existing posts; turning ``search_history`` off also erases the stored history:
the choice is honoured at once, for the past as well as the future.

SMS codes are purged every ``sms_purge_interval`` seconds by one tracked task (``start()``,
``close()``): an expired code loses its hash at once, a code row goes once it is older than
the longest window the SMS limits count (a day).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from chatd.errors import CLOSE_REVOKED, BadRequest, Forbidden
from chatd.ids import UserId
from chatd.node import Node
from chatd.services.ops import B_OPT, S_OPT, Call, End, Outcome, op
from chatd.store import Store
from chatd.tasks import stop_task

if TYPE_CHECKING:
    from chatd.services.accounts import AccountService
    from chatd.services.matching import MatchService


if TYPE_CHECKING:  # the media service imports accounts, which imports this module
    from chatd.services.media import MediaService

__all__ = ["CONSENT_DEFAULTS", "FrameLogFilter", "PrivacyService", "consents_of",
           "redact_frames"]

CONSENT_DEFAULTS: Final[dict[str, bool]] = {"marketing": False, "location": False,
                                            "search_history": True}
# Code rows are kept this long: the longest window an SMS limit counts (accounts.DAY_MS).
SMS_KEEP_MS: Final = 86_400_000

log = logging.getLogger("chatd.privacy")


class FrameLogFilter(logging.Filter):
    """Drops websockets' DEBUG lines that print data frames (``< TEXT '{...}'``): they hold
    message bodies, SMS codes, tokens and phones. Control frames (CLOSE, PING) still log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in ("< %s", "> %s") and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            return not str(args[0]).startswith(("TEXT", "BINARY", "CONT"))
        return True


def redact_frames(logger: logging.Logger) -> None:
    """Install :class:`FrameLogFilter` on ``logger`` once."""
    if not any(isinstance(f, FrameLogFilter) for f in logger.filters):
        logger.addFilter(FrameLogFilter())


async def consents_of(store: Store, user_id: UserId) -> dict[str, bool]:
    """The user's consents, the defaults filled in."""
    current = dict(CONSENT_DEFAULTS)
    current.update({c.name: c.value for c in await store.get_consents(user_id)
                    if c.name in current})
    return current


class PrivacyService:
    def __init__(self, store: Store, node: Node, accounts: AccountService,
                 matching: MatchService, media: MediaService,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 sms_purge_interval: float = 600.0) -> None:
        self.store = store
        self.node = node
        self.accounts = accounts
        self.matching = matching
        self.media = media
        self._now = now_ms
        self.sms_purge_interval = sms_purge_interval
        self._purge: asyncio.Task[None] | None = None

    @property
    def purging(self) -> bool:
        """True while the purge task runs."""
        return self._purge is not None and not self._purge.done()

    async def start(self) -> None:
        self._purge = asyncio.create_task(self._purge_forever(), name="chatd-sms-purge")

    async def close(self) -> None:
        task, self._purge = self._purge, None
        await stop_task(task)

    async def purge_sms_codes(self) -> int:
        now = self._now()
        return await self.store.purge_sms_codes(expired_before=now,
                                                sent_before=now - SMS_KEEP_MS)

    async def _purge_forever(self) -> None:
        while True:
            try:
                await self.purge_sms_codes()
            except Exception:  # the store is down: try again next time
                log.exception("SMS code purge failed")
            await asyncio.sleep(self.sms_purge_interval)

    @op("consent.set", marketing=B_OPT, location=B_OPT, search_history=B_OPT)
    async def set_consents(self, call: Call, **changes: bool) -> dict[str, Any]:
        user_id = call.user
        if not changes:
            raise BadRequest("give at least one of " + ", ".join(CONSENT_DEFAULTS))
        now = self._now()
        for name, value in changes.items():
            await self.store.set_consent(user_id, name, value, now)
            if name == "location" and not value:
                await self.store.clear_post_locations(user_id)
            if name == "search_history" and not value:
                await self.store.clear_search_history(user_id)
        return {"consents": await consents_of(self.store, user_id)}

    @op("account.export")
    async def export_op(self, call: Call) -> dict[str, Any]:
        return {"export": await self.export(call.user)}

    async def export(self, user_id: UserId) -> dict[str, Any]:
        """Every piece of personal data held about the user, as one document.

        Other users appear only as the ids the user's own records point at (a block, a
        report target, a conversation id): never their names, phones or texts.
        """
        user = await self.store.get_user(user_id)
        if user is None:
            raise Forbidden("this account no longer exists")
        stored = {c.name: c for c in await self.store.get_consents(user_id)}
        consents = {name: {"value": stored[name].value if name in stored else default,
                           "updated_at": stored[name].updated_at if name in stored else None}
                    for name, default in CONSENT_DEFAULTS.items()}
        sessions = [{"device": s.device, "created_at": s.created_at,
                     "expires_at": s.expires_at, "last_active": s.last_active}
                    for s in await self.store.user_sessions(user_id)]
        messages = [{"conv": m.conv, "id": m.id, "seq": m.seq, "body": m.body, "ts": m.ts,
                     "deleted": m.deleted, "flagged": m.flagged}
                    for m in await self.store.messages_by(user_id)]
        posts = [{"id": p.id, "body": p.body, "ts": p.ts, "group": p.group, "city": p.city,
                  "flagged": p.flagged} for p in await self.store.posts_by(user_id)]
        # Metadata only: the hash of a code never leaves the store.
        sms_codes = [{"purpose": s.purpose, "created_at": s.created_at,
                      "expires_at": s.expires_at, "used": s.used, "attempts": s.attempts}
                     for s in await self.store.sms_codes_of(user_id)]
        history = [{"q": q, "ts": ts}
                   for q, ts in await self.store.search_history(user_id, 10_000)]
        reports = [{"id": r.id, "kind": r.kind, "target": r.target, "reason": r.reason,
                    "text": r.note, "count": r.count, "state": r.state,
                    "resolution": r.resolution, "created_at": r.created_at,
                    "updated_at": r.updated_at} for r in await self.store.reports_by(user_id)]
        convs = [{"conv": m.conv, "kind": m.kind, "read_seq": m.read_seq,
                  "joined_at": m.joined_at, "left_at": m.left_at}
                 for m in await self.store.memberships_of(user_id)]
        sanctions = [{"action": e.action, "ts": e.ts, "detail": e.detail}
                     for e in await self.store.audit_log(None, 1000, user_id)]
        notify = await self.store.get_notify_settings(user_id)
        push = {"devices": [{"vendor": d.vendor, "token": d.token, "created_at": d.created_at}
                            for d in await self.store.push_devices_of(user_id)],
                "settings": dataclasses.asdict(notify),
                "notifications": [{"kind": k, "state": st, "created_at": at}
                                  for k, st, at in await self.store.push_jobs_of(user_id)]}
        return {
            "generated_at": self._now(),
            "profile": {"id": user.id, "phone": user.phone, "birthdate": user.birthdate,
                        "gender": user.gender, "nickname": user.nickname, "bio": user.bio,
                        "role": user.role, "created_at": user.created_at,
                        "banned_until": user.banned_until, "muted_until": user.muted_until,
                        "verification": user.verification},
            "interests": list(user.interests),
            "consents": consents,
            "sessions": sessions,
            "conversations": convs,
            "messages": messages,
            "posts": posts,
            "search_history": history,
            "reports": reports,
            "blocked_users": sorted(await self.store.blocked_by(user_id)),
            "moderation": sanctions,
            "sms_codes": sms_codes,
            "push": push,
            "media": await self.media.export(user_id),
            "feedback": [f.wire() for f in await self.store.feedback_of(user_id)],
        }

    @op("account.delete", password=S_OPT, code=S_OPT)
    async def delete(self, call: Call, password: str | None = None,
                     code: str | None = None) -> Outcome:
        """Erase the account (see ``Store.delete_account``) once the caller proved it holds it;
        every session of the user, on every node, ends."""
        user = await self.store.get_user(call.user)
        if user is None:
            raise Forbidden("this account no longer exists")
        await self.accounts.confirm(user, password, code)
        await self.media.erase_owner(user.id)  # the files first: their records point at them
        ended = await self.store.delete_account(user.id)
        await self.accounts.forget(user.phone)
        await self.matching.cancel(user.id)
        # The others end now; this one after its reply (its End effect).
        await self.node.revoke(user.id, ended, skip=call.conn_id)
        return Outcome(None, End(CLOSE_REVOKED, "account deleted"))
