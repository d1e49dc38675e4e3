"""意见反馈: users write to the operator (with photos as evidence), moderators answer.

Feedback is addressed to the moderators and never published, so its text is not word-filtered
(a user quoting the abuse they report must be able to). It is kept until the account is
deleted and is part of the data export.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Final

from chatd.errors import BadRequest, NotFound, RateLimited, TooLarge
from chatd.ids import UserId
from chatd.limits import Counters
from chatd.node import Node
from chatd.push import Notification, NotifyOffline
from chatd.services.media import MediaService
from chatd.services.ops import BODY, Call, Field, op
from chatd.store import AuditEntry, Store
from chatd.store.media import Feedback

__all__ = ["FeedbackService"]

MAX_FEEDBACK_CHARS: Final = 2000
MAX_FEEDBACK_IMAGES: Final = 4
FEEDBACK_PER_HOUR: Final = 10


class FeedbackService:
    def __init__(self, store: Store, node: Node, media: MediaService, counters: Counters,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.store = store
        self.node = node
        self.media = media
        self.counters = counters
        self._now = now_ms
        self.notify_offline: NotifyOffline | None = None

    @op("feedback", text=BODY, attachments=Field(list, items=str, required=False))
    async def send(self, call: Call, text: str, attachments: list[str] | None = None
                   ) -> dict[str, Any]:
        user = call.user
        _check_text(text, "describe the problem in text")
        wait = await self.counters.hit(f"u:feedback:{user}", FEEDBACK_PER_HOUR, 3_600_000)
        if wait:
            raise RateLimited(wait, "slow down: feedback of this account")
        feedback_id = uuid.uuid4().hex
        files = await self.media.claim(user, attachments, f"f:{feedback_id}", kinds=("image",),
                                       max_count=MAX_FEEDBACK_IMAGES) if attachments else []
        feedback = Feedback(feedback_id, user, text, self._now(),
                            tuple(f.wire() for f in files))
        await self.store.add_feedback(feedback)
        await self.media.attach(files, user, f"f:{feedback_id}")
        return {"feedback": feedback.wire()}

    @op("feedback.list")
    async def mine(self, call: Call) -> dict[str, Any]:
        return {"feedback": [f.wire() for f in await self.store.feedback_of(call.user)]}

    @op("mod.feedback.reply", auth="moderator", id=Field(str), text=BODY)
    async def reply(self, call: Call, id: str, text: str) -> dict[str, Any]:
        """Answer a feedback: the user hears of it live on every device, or by push."""
        _check_text(text, "the reply must not be empty")
        now = self._now()
        answered = await self.store.reply_feedback(id, text, call.user, now)
        if answered is None:
            raise NotFound("no such feedback")
        await self.store.add_audit(AuditEntry(now, call.user, "feedback.reply",
                                              answered.user_id, id))
        await self._tell(answered.user_id, {"t": "feedback.reply", "id": id, "reply": text,
                                            "ts": now})
        return {"feedback": answered.wire(True)}

    async def _tell(self, user: UserId, event: dict[str, Any]) -> None:
        await self.node.to_user(user, event)
        if self.notify_offline is not None:
            await self.notify_offline(user, "feedback", f"feedback:{event['id']}",
                                      Notification("意见反馈", "你的反馈有了回复",
                                                   {"kind": "feedback", "id": event["id"]}))


def _check_text(text: str, when_blank: str) -> None:
    if not text.strip():
        raise BadRequest(when_blank, field="text")
    if len(text) > MAX_FEEDBACK_CHARS:
        raise TooLarge(f"text is at most {MAX_FEEDBACK_CHARS} characters",
                       limit=MAX_FEEDBACK_CHARS)
