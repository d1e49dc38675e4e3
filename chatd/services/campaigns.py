"""Marketing SMS campaigns that honour consent, and the SMS replies that withdraw it.

A campaign goes, through the SMS provider, to the users whose ``marketing`` consent is on
(given no later than the campaign began) and who are not banned; someone who withdraws while
it runs is skipped from then on. Its text passes the word filter like any text (a ``block``
entry refuses the campaign, a ``mask`` entry is masked) and ends with the unsubscribe hint
(回T退订), added when missing. Sends start at most ``rate`` a second, evenly spaced, with a few
in flight so a slow gateway does not slow the campaign below its rate.

One campaign runs at a time in the whole deployment (the store refuses a second one), in the
process that started it (``chatd admin campaign send``, or a node asked by the server API);
its row in ``campaigns`` holds the recipient count, what was sent and failed, and the state.
The row is updated after each page of recipients (about a second of sending), which is also
when the sender notices a ``campaign.cancel`` made on any node. If the process stops, the
campaign ends ``interrupted``; if it crashes, the row stays ``running`` until an operator
cancels it. Twenty failed sends in a row end it ``failed`` (the gateway is down: stop paying
for nothing). Logs show user ids and masked phones only, never a text.

A reply of ``T``, ``TD`` or ``退订`` (trimmed, any case) from a phone turns the ``marketing``
consent of its account off (:meth:`CampaignService.withdraw`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from chatd.errors import BadRequest, ChatError, Conflict, NotFound, TooLarge
from chatd.protocol.text import text_problem
from chatd.services.phones import mask_phone, normalize_phone
from chatd.services.sms import SmsError, SmsProvider
from chatd.services.text import TextGate
from chatd.store import Campaign, CampaignBusy, Store, StoreError
from chatd.tasks import stop_task

__all__ = ["MAX_CAMPAIGN_CHARS", "UNSUBSCRIBE_HINT", "CampaignService", "Pacer",
           "is_unsubscribe", "with_unsubscribe_hint"]

log = logging.getLogger("chatd.campaigns")

UNSUBSCRIBE_HINT: Final = "回T退订"
_STOP_REPLIES: Final = frozenset({"t", "td", "退订"})
#: The longest campaign text, hint included (a long SMS is billed per 67 characters).
MAX_CAMPAIGN_CHARS: Final = 500
MAX_FAILURES_IN_A_ROW: Final = 20
_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# Store failures while a campaign runs: retried this many times, waiting 1, 2, 4... s.
_STORE_RETRIES: Final = 5
T = TypeVar("T")


def with_unsubscribe_hint(text: str) -> str:
    text = text.strip()
    return text if text.endswith(UNSUBSCRIBE_HINT) else f"{text} {UNSUBSCRIBE_HINT}"


def is_unsubscribe(reply: str) -> bool:
    """``T``, ``TD`` or ``退订``, trimmed, in any case."""
    return reply.strip().casefold() in _STOP_REPLIES


class Pacer:
    """At most ``rate`` starts a second, evenly spaced. A start that comes late resets the
    schedule instead of letting the next ones catch up in a burst."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate
        self._clock = clock
        self._next = 0.0

    async def wait(self) -> None:
        now = self._clock()
        self._next = max(self._next, now)
        delay = self._next - now
        self._next += self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class CampaignService:
    def __init__(self, store: Store, sms: SmsProvider, text: TextGate, rate_per_second: float,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.store = store
        self.sms = sms
        self.text = text
        self.rate = rate_per_second
        self._now = now_ms
        # About a second of sending per page: progress and cancels are seen that often.
        self.page = max(10, min(200, math.ceil(rate_per_second)))
        self.in_flight = max(1, min(16, math.ceil(rate_per_second)))
        self._running: dict[str, asyncio.Task[Campaign]] = {}

    # --- starting ------------------------------------------------------------------------

    def prepare(self, text: str) -> str:
        """The text as it will be sent, or the ChatError that refuses the campaign."""
        text = text.strip()
        if not text:
            raise BadRequest("the campaign text is empty", field="text")
        problem = text_problem(text, "body")
        if problem is not None:
            raise BadRequest(f"the campaign text {problem}", field="text")
        body = with_unsubscribe_hint(self.text.check(text).text)  # Filtered on `block`
        if len(body) > MAX_CAMPAIGN_CHARS:
            raise TooLarge(f"a campaign text is at most {MAX_CAMPAIGN_CHARS} characters, "
                           "the unsubscribe hint included", limit=MAX_CAMPAIGN_CHARS)
        return body

    async def create(self, actor: str, text: str,
                     campaign_id: str | None = None) -> tuple[Campaign, bool]:
        """Record a running campaign (sending nothing yet); False with the campaign when
        ``campaign_id`` was started before with the same text (a retried call)."""
        body = self.prepare(text)
        if campaign_id is not None and not _ID.fullmatch(campaign_id):
            raise BadRequest("id must be 1-64 of A-Z a-z 0-9 _ . : -", field="id")
        result = await self.store.start_campaign(
            Campaign(campaign_id or uuid.uuid4().hex, actor, body, self._now()))
        if isinstance(result, CampaignBusy):
            raise Conflict("another campaign is running; wait for it or cancel it",
                           running=result.running)
        campaign, created = result
        if not created and campaign.body != body:
            raise Conflict("a campaign with this id exists with another text")
        if created:
            log.info("campaign %s started by %s: %d recipients", campaign.id, actor,
                     campaign.recipients)
        return campaign, created

    async def start(self, actor: str, text: str,
                    campaign_id: str | None = None) -> tuple[Campaign, bool]:
        """:meth:`create`, then send the campaign in the background of this process."""
        campaign, created = await self.create(actor, text, campaign_id)
        if created:
            task = asyncio.create_task(self._background(campaign),
                                       name=f"chatd-campaign-{campaign.id}")
            self._running[campaign.id] = task
            task.add_done_callback(lambda _: self._running.pop(campaign.id, None))
        return campaign, created

    async def get(self, campaign_id: str) -> Campaign:
        campaign = await self.store.get_campaign(campaign_id)
        if campaign is None:
            raise NotFound("no such campaign")
        return campaign

    async def cancel(self, campaign_id: str) -> Campaign:
        """End a running campaign (on whichever node sends it: it stops within a page); one
        that ended already is returned as it is."""
        campaign = await self.store.end_campaign(campaign_id, "cancelled", self._now())
        if campaign is None:
            raise NotFound("no such campaign")
        return campaign

    async def close(self) -> None:
        """Stop the campaigns this process sends: each ends ``interrupted``."""
        for task in list(self._running.values()):
            await stop_task(task)

    # --- sending -------------------------------------------------------------------------

    async def run(self, campaign: Campaign,
                  progress: Callable[[int, int], None] | None = None) -> Campaign:
        """Send ``campaign`` to its audience at the bounded rate; the campaign as it ended.
        ``progress(sent, failed)`` is told after each page."""
        sent = failed = streak = 0
        after = ""
        pacer = Pacer(self.rate)
        slots = asyncio.Semaphore(self.in_flight)
        sends: list[asyncio.Task[bool]] = []
        try:
            while True:
                page = await self._retry(self.store.campaign_recipients, after, self.page,
                                         self._now(), campaign.created_at)
                if not page:
                    state = "done"
                    break
                for _, phone in page:
                    await pacer.wait()
                    await slots.acquire()
                    sends.append(asyncio.create_task(self._send(campaign, phone, slots)))
                for ok in await asyncio.gather(*sends):
                    sent, failed = sent + ok, failed + (not ok)
                    streak = 0 if ok else streak + 1
                sends.clear()
                after = page[-1][0]
                if progress is not None:
                    progress(sent, failed)
                if streak >= MAX_FAILURES_IN_A_ROW:
                    log.error("campaign %s: %d sends failed in a row; stopped", campaign.id,
                              streak)
                    state = "failed"
                    break
                current = await self._retry(self.store.campaign_progress, campaign.id, sent,
                                            failed)
                if current != "running":  # cancelled, on any node: its counts are stored
                    log.info("campaign %s %s elsewhere: %d sent, %d failed", campaign.id,
                             current, sent, failed)
                    return await self.get(campaign.id)
        except asyncio.CancelledError:
            for task in sends:
                task.cancel()
            try:
                await self._end(campaign, "interrupted", sent, failed)
            except StoreError as exc:
                log.error("campaign %s: not marked interrupted (%s)", campaign.id, exc)
            raise
        except (StoreError, ChatError) as exc:
            log.error("campaign %s: the store failed (%s); stopped", campaign.id, exc)
            return await self._end(campaign, "failed", sent, failed)
        return await self._end(campaign, state, sent, failed)

    async def _background(self, campaign: Campaign) -> Campaign:
        try:
            return await self.run(campaign)
        except Exception:  # a bug: end the campaign rather than leave it running
            log.exception("campaign %s failed", campaign.id)
            try:
                return await self._end(campaign, "failed", None, None)
            except Exception:
                log.exception("campaign %s: not marked failed", campaign.id)
                return campaign

    async def _send(self, campaign: Campaign, phone: str, slots: asyncio.Semaphore) -> bool:
        try:
            await self.sms.send_text(phone, campaign.body)
            return True
        except SmsError as exc:
            log.warning("campaign %s: SMS to %s failed: %s", campaign.id, mask_phone(phone),
                        exc)
            return False
        finally:
            slots.release()

    async def _end(self, campaign: Campaign, state: str, sent: int | None,
                   failed: int | None) -> Campaign:
        ended = await self.store.end_campaign(campaign.id, state, self._now(), sent, failed)
        ended = ended or campaign
        log.info("campaign %s ended %s: %d sent, %d failed of %d", campaign.id, ended.state,
                 ended.sent, ended.failed, ended.recipients)
        return ended

    async def _retry(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        """A store call of a running campaign: a database blip does not end it."""
        for attempt in range(_STORE_RETRIES):
            try:
                return await fn(*args)
            except StoreError as exc:
                log.warning("campaign: store call failed (%s); retrying", exc)
                await asyncio.sleep(2.0 ** attempt)
        return await fn(*args)

    # --- replies -------------------------------------------------------------------------

    async def withdraw(self, raw_phone: str, reply: str) -> bool:
        """An SMS reply from ``raw_phone``: a stop word turns the ``marketing`` consent of the
        phone's account off. False when it changed nothing (another text, no such account):
        the caller answers the same either way, so phones cannot be probed."""
        if not is_unsubscribe(reply):
            return False
        try:
            phone = normalize_phone(raw_phone)
        except BadRequest:
            return False
        user = await self.store.get_user_by_phone(phone)
        if user is None:
            return False
        await self.store.set_consent(user.id, "marketing", False, self._now())
        log.info("user %s withdrew marketing consent by an SMS reply", user.id)
        return True
