"""Push notifications, the pure part: what a notification says, when it may be sent, how long
to wait before a retry, and the request bodies of the vendors' own APIs.

Nothing here does I/O: the outbox worker (:mod:`chatd.push.outbox`) and the providers
(:mod:`chatd.push.webhook`) do, and the service (:mod:`chatd.services.push`) decides who is
told. Times are integer milliseconds since the epoch.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from chatd.store.base import NotifySettings, PushDevice

__all__ = ["VENDORS", "Notification", "NotifyOffline", "PushProvider", "PushRejected",
           "apns_request", "backoff_ms", "fcm_request", "quiet_until"]

#: Where a device's token comes from. ``webhook``: the operator's own gateway.
VENDORS: Final = ("apns", "fcm", "hms", "mi", "oppo", "vivo", "webhook")
PREVIEW_CHARS: Final = 80
_DAY_MIN: Final = 24 * 60


@dataclass(frozen=True, slots=True)
class Notification:
    title: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"title": self.title, "body": self.body, "data": self.data},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Notification:
        d = json.loads(text)
        return cls(str(d["title"]), str(d["body"]), dict(d.get("data") or {}))

    @classmethod
    def for_message(cls, nickname: str, body: str, previews: bool,
                    data: dict[str, Any]) -> Notification:
        """A chat message: the sender's nickname, and its text only if the user chose
        previews (a locked phone shows notifications to whoever holds it)."""
        shown = body[:PREVIEW_CHARS] if previews and body else "发来一条新消息"
        return cls(nickname or "新消息", shown, data)


#: Queue a push for a user with no connection (user, kind, dedup key, what it says); a
#: service that sends an event worth a notification holds one (set by the app).
NotifyOffline = Callable[[Any, str, str, Notification], Awaitable[None]]


class PushRejected(Exception):
    """A provider refused a notification. ``permanent``: the token is dead (uninstalled
    app, revoked token): forget it rather than retry."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class PushProvider(Protocol):
    async def send(self, device: PushDevice, note: Notification) -> None:
        """Deliver or raise :class:`PushRejected` (anything else counts as retryable)."""

    async def close(self) -> None: ...


def quiet_until(settings: NotifySettings, now: int) -> int | None:
    """When the user's quiet hours end, if ``now`` falls inside them; else None."""
    start, end = settings.quiet_start, settings.quiet_end
    if start < 0 or end < 0 or start == end:
        return None
    local_ms = now + settings.tz_offset * 60_000
    minute = (local_ms // 60_000) % _DAY_MIN
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    wait = (end - minute) % _DAY_MIN
    return (local_ms // 60_000 + wait) * 60_000 - settings.tz_offset * 60_000


def backoff_ms(attempts: int, base_ms: int = 2000, cap_ms: int = 600_000) -> int:
    """Wait before retry number ``attempts`` (1, 2, ...): doubling, capped."""
    return int(min(cap_ms, base_ms * 2 ** max(0, attempts - 1)))


def fcm_request(token: str, note: Notification) -> dict[str, Any]:
    """The body of FCM HTTP v1 ``projects/<id>/messages:send`` (data values are strings)."""
    return {"message": {"token": token,
                        "notification": {"title": note.title, "body": note.body},
                        "data": {k: str(v) for k, v in note.data.items()},
                        "android": {"priority": "high"}}}


def apns_request(note: Notification) -> dict[str, Any]:
    """The JSON payload of an APNs HTTP/2 request (the device token goes in the path)."""
    return {"aps": {"alert": {"title": note.title, "body": note.body}, "sound": "default"},
            **{k: v for k, v in note.data.items() if k != "aps"}}
