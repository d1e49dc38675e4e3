"""Push notifications: devices register per session, users choose what they hear, and
messages that reach nobody's screen go to the durable outbox (:mod:`chatd.push.outbox`).

After each stored message the service (batched per loop pass, off the reply path) asks the
store which members may be told (a device, notifications on, the conversation not muted,
the sender not blocked; groups only for users who asked), leaves out those connected to this
node, and queues one job per member, due ``delay`` seconds later: a burst of messages is one
notification, and a member connected elsewhere is left out when the job runs (the message's
delivered mark; for group messages and other events, presence, read once the presence grace
is over). Without a provider configured, devices are still registered
and nothing is queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from chatd.errors import BadRequest
from chatd.ids import UserId
from chatd.node import Node
from chatd.push import VENDORS, Notification
from chatd.push.outbox import PushOutbox
from chatd.services.ops import B_OPT, I_OPT, Call, S, op
from chatd.store import Message, NotifySettings, PushDevice, PushJob, Store

__all__ = ["PushService"]

log = logging.getLogger("chatd.push")

MAX_TOKEN: Final = 4096


class PushService:
    def __init__(self, store: Store, node: Node, outbox: PushOutbox | None,
                 delay: float = 1.5,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.store = store
        self.node = node
        self.outbox = outbox
        self.delay_ms = int(delay * 1000)
        self._now = now_ms
        self._sent: list[Message] = []
        self._flushing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.outbox is not None:
            self.outbox.start()

    async def close(self) -> None:
        if self._flushing is not None:
            self._flushing.cancel()
        if self.outbox is not None:
            await self.outbox.close()

    # --- ops -----------------------------------------------------------------------------

    @op("push.register", vendor=S, token=S)
    async def register(self, call: Call, vendor: str, token: str) -> None:
        if vendor not in VENDORS:
            raise BadRequest(f"vendor must be one of {', '.join(VENDORS)}", field="vendor")
        if not 1 <= len(token) <= MAX_TOKEN:
            raise BadRequest(f"token must be 1 to {MAX_TOKEN} characters", field="token")
        assert call.token_hash is not None  # an authenticated call has a session
        await self.store.set_push_device(PushDevice(call.token_hash, call.user, vendor, token,
                                                    self._now()))

    @op("push.unregister", vendor=S)
    async def unregister(self, call: Call, vendor: str) -> None:
        assert call.token_hash is not None
        await self.store.delete_push_device(call.token_hash, vendor)  # idempotent

    @op("notify.settings", enabled=B_OPT, previews=B_OPT, groups=B_OPT, quiet_start=I_OPT,
        quiet_end=I_OPT, tz_offset=I_OPT)
    async def settings(self, call: Call, **changes: Any) -> dict[str, Any]:
        """Change the given settings (none: just read them); the reply holds them all."""
        current = await self.store.get_notify_settings(call.user)
        values = {k: v for k, v in changes.items() if v is not None}
        for name in ("quiet_start", "quiet_end"):
            if name in values and not -1 <= values[name] < 24 * 60:
                raise BadRequest(f"{name} is a minute of the day (0-1439), or -1 for none",
                                 field=name)
        if "tz_offset" in values and not -14 * 60 <= values["tz_offset"] <= 14 * 60:
            raise BadRequest("tz_offset is minutes east of UTC (-840 to 840)",
                             field="tz_offset")
        if values:
            current = NotifySettings(**{**_fields(current), **values})
            await self.store.set_notify_settings(call.user, current, self._now())
        return {"settings": _fields(current)}

    # --- what gets pushed ----------------------------------------------------------------

    def message_sent(self, msg: Message) -> None:
        """A message was stored: tell its members who are not here (batched)."""
        if self.outbox is None:
            return
        self._sent.append(msg)
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def notify(self, user_id: UserId, kind: str, dedup: str, note: Notification) -> None:
        """Queue a notification of anything but a message (a match, a moderator's notice, a
        report outcome) for a user not connected to this node; ``dedup`` makes a repeat
        of the same fact harmless."""
        if self.outbox is None or self.node.hub.online(user_id):
            return
        now = self._now()
        try:
            if await self.store.push_devices_of(user_id):
                await self.store.enqueue_pushes([PushJob(user_id, kind, dedup, note.to_json(),
                                                         now, now + self._presence_wait())])
        except Exception as exc:  # best effort: the event itself went out already
            log.warning("push of %s not queued: %s", kind, type(exc).__name__)

    async def _flush(self) -> None:
        try:
            while self._sent:
                await asyncio.sleep(0)  # let this loop pass add its messages
                batch, self._sent = self._sent, []
                try:
                    await self._queue(batch)
                except Exception as exc:
                    log.warning("pushes of %d messages not queued: %s", len(batch),
                                type(exc).__name__)
        finally:
            self._flushing = None

    async def _queue(self, batch: list[Message]) -> None:
        now = self._now()
        # Who may be told depends on the conversation and the sender only: one read each.
        targets = {key: await self.store.push_targets(*key, now)
                   for key in dict.fromkeys((m.conv, m.sender) for m in batch)}
        if not any(targets.values()):
            return
        senders = await self.store.get_users(sorted({m.sender for m in batch}))
        jobs = []
        for msg in batch:
            for user_id, settings in targets[msg.conv, msg.sender]:
                if self.node.hub.online(user_id):
                    continue  # connected here: it has the message already
                sender = senders.get(msg.sender)
                note = Notification.for_message(
                    sender.nickname if sender else "", msg.body, settings.previews,
                    {"kind": "msg", "conv": msg.conv, "seq": msg.seq, "from": msg.sender})
                # A 1:1 job is judged by the message's delivered mark; a group's by presence.
                due = now + (self.delay_ms if msg.conv.startswith("d:")
                             else self._presence_wait())
                jobs.append(PushJob(user_id, "msg", f"msg:{user_id}:{msg.conv}:{msg.seq}",
                                    note.to_json(), now, due, msg.conv, msg.seq))
        if jobs:
            await self.store.enqueue_pushes(jobs)

    def _presence_wait(self) -> int:
        """How long a job judged by presence waits: past the grace during which a user
        who just left still reads as online (else they would never be told)."""
        return self.delay_ms + int(self.node.presence_grace * 1000)


def _fields(s: NotifySettings) -> dict[str, Any]:
    return {"enabled": s.enabled, "previews": s.previews, "groups": s.groups,
            "quiet_start": s.quiet_start, "quiet_end": s.quiet_end, "tz_offset": s.tz_offset}
