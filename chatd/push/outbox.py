"""The outbox worker: every node polls the shared outbox and sends what is due.

A job is claimed with a lease (the store guarantees one claimer at a time), then, at the
moment of sending, checked once more: a user who is online again, or who read the
conversation on another device, gets nothing; quiet hours move the job to their end. A
failed delivery is retried with back-off until ``max_attempts``; a dead token is forgotten.
Jobs live in the store, so a restart loses nothing: a job a dead node held comes back when
its lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from chatd.presence import Presence
from chatd.push import Notification, PushProvider, PushRejected, backoff_ms, quiet_until
from chatd.store import Store
from chatd.store.base import PushJob

__all__ = ["PushOutbox"]

log = logging.getLogger("chatd.push")


class PushOutbox:
    def __init__(self, store: Store, provider: PushProvider, presence: Presence,
                 poll_interval: float = 0.5, lease_ms: int = 30_000, max_attempts: int = 8,
                 retry_base_ms: int = 2000, batch: int = 100,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.store = store
        self.provider = provider
        self.presence = presence
        self.poll_interval = poll_interval
        self.lease_ms = lease_ms
        self.max_attempts = max_attempts
        self.retry_base_ms = retry_base_ms
        self.batch = batch
        self._now = now_ms
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chatd-push-outbox")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.provider.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                while await self.run_once() == self.batch:
                    pass  # a full batch: more may be due
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store or presence is away: next tick
                log.warning("push outbox round failed: %s", type(exc).__name__)

    async def run_once(self) -> int:
        jobs = await self.store.claim_pushes(self._now(), self.lease_ms, self.batch)
        if jobs:
            online = await self.presence.online(sorted({j.user_id for j in jobs}))
            await asyncio.gather(*(self._deliver(j, online.get(j.user_id, False))
                                   for j in jobs))
        return len(jobs)

    async def _deliver(self, job: PushJob, online: bool) -> None:
        now = self._now()
        if self._seen(job, online):
            await self.store.finish_push(job.id, "dropped", now, job.attempts)
            return
        settings = await self.store.get_notify_settings(job.user_id)
        if not settings.enabled:
            await self.store.finish_push(job.id, "dropped", now, job.attempts)
            return
        later = quiet_until(settings, now)
        if later is not None:
            await self.store.finish_push(job.id, "pending", later, job.attempts)
            return
        devices = await self.store.push_devices_of(job.user_id)
        if not devices:
            await self.store.finish_push(job.id, "dropped", now, job.attempts)
            return
        note = Notification.from_json(job.payload)
        delivered, errors = 0, []
        for device in devices:
            try:
                await self.provider.send(device, note)
                delivered += 1
            except PushRejected as exc:
                if exc.permanent:
                    await self.store.delete_push_token(device.vendor, device.token)
                else:
                    errors.append(str(exc))
            except Exception as exc:
                errors.append(type(exc).__name__)
        attempts = job.attempts + 1
        if delivered or not errors:
            await self.store.finish_push(job.id, "sent" if delivered else "dropped", now, attempts)
        elif attempts >= self.max_attempts:
            log.warning("push job %d failed %d times (%s): given up", job.id, attempts,
                        errors[-1])
            await self.store.finish_push(job.id, "failed", now, attempts, errors[-1])
        else:
            retry_at = now + backoff_ms(attempts, self.retry_base_ms)
            await self.store.finish_push(job.id, "pending", retry_at, attempts, errors[-1])

    @staticmethod
    def _seen(job: PushJob, online: bool) -> bool:
        """Whether the user has what the job would tell: a 1:1 message that reached one of
        their devices (its delivered mark), a message they read elsewhere; otherwise
        presence (which counts a user as online for the grace after they left)."""
        if job.kind == "msg" and job.read_seq >= job.seq:
            return True
        if job.kind == "msg" and job.conv is not None and job.conv.startswith("d:"):
            return job.delivered_seq >= job.seq
        return online
