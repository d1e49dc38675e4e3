"""Account verification by a service chatd cannot be (the operator's face check).

With ``verification_url`` set, every new account starts ``pending`` and chatd POSTs
``{"user_id": ID}`` to the URL (never the phone or anything else about the person); the
verifier answers through the server API, ``verification.set {user, state}`` with ``verified``
or ``rejected``. The call is made off the registration's path: a verifier that is down slows
no registration. It is tried 3 times (after 1 s and 4 s) and then left to the operator
(the account stays ``pending``; the verifier can also pick pending accounts up itself).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from chatd.ids import UserId
from chatd.tasks import stop_task
from chatd.webhooks import WebhookError, Webhooks

__all__ = ["VERIFICATION_STATES", "Verifier"]

log = logging.getLogger("chatd.verification")

#: What ``verification.set`` may set (``""`` is an account that was never asked).
VERIFICATION_STATES: Final = ("pending", "verified", "rejected")


class Verifier:
    def __init__(self, url: str, webhooks: Webhooks, attempts: int = 3,
                 backoff: float = 1.0) -> None:
        self.url = url
        self._http = webhooks
        self.attempts = attempts
        self.backoff = backoff
        self._tasks: set[asyncio.Task[None]] = set()

    def requested(self, user_id: UserId) -> None:
        """A new account awaits its verdict: tell the verifier in the background."""
        task = asyncio.create_task(self._ask(user_id), name="chatd-verify")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ask(self, user_id: UserId) -> None:
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.backoff * 4 ** (attempt - 1))
            try:
                status = await self._http.post_json(self.url, {"user_id": user_id})
            except WebhookError as exc:
                why = str(exc)
            else:
                if 200 <= status < 300:
                    return
                why = f"HTTP {status}"
            log.warning("verifier call for user %s failed (%s), attempt %d of %d", user_id,
                        why, attempt + 1, self.attempts)
        log.error("verifier not reached for user %s; the account stays pending", user_id)

    async def close(self) -> None:
        for task in list(self._tasks):
            await stop_task(task)
        await self._http.close()
