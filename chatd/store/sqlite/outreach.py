"""Outreach on SQLite: marketing campaigns and their recipients, account verification, and
the lookups of the server API."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from chatd.store.base import Campaign, CampaignBusy, ConvId, UserId
from chatd.store.sqlite.engine import Engine

__all__ = ["Outreach"]

_CAMPAIGN_COLS: Final = ("SELECT id, actor, body, created_at, finished_at, recipients, sent,"
                         " failed, state FROM campaigns")
# The audience of a campaign: marketing consent on (given no later than the campaign began),
# not banned. Walked by the consents' primary key (user_id, name), a page at a time.
_AUDIENCE: Final = (" FROM consents c JOIN users u ON u.id=c.user_id WHERE c.name='marketing'"
                    " AND c.value=1 AND c.updated_at<=? AND u.banned_until<=?")


def _campaign(r: Sequence[Any]) -> Campaign:
    return Campaign(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])


class Outreach(Engine):
    async def conv_exists(self, conv: ConvId) -> bool:
        return await self._run(lambda c: c.execute(
            "SELECT 1 FROM conversations WHERE id=?", (conv,)).fetchone() is not None)

    async def set_verification(self, user_id: UserId, state: str) -> bool:
        return await self._run(lambda c: c.execute(
            "UPDATE users SET verification=? WHERE id=?", (state, user_id)).rowcount == 1)

    async def start_campaign(self, campaign: Campaign) -> tuple[Campaign, bool] | CampaignBusy:
        def job(c: sqlite3.Connection) -> tuple[Campaign, bool] | CampaignBusy:
            # One job, so one transaction: no other writer slips in between the checks.
            r = c.execute(f"{_CAMPAIGN_COLS} WHERE id=?", (campaign.id,)).fetchone()
            if r is not None:
                return _campaign(r), False
            running = c.execute("SELECT id FROM campaigns WHERE state='running'"
                                " LIMIT 1").fetchone()
            if running is not None:
                return CampaignBusy(running[0])
            count = int(c.execute("SELECT COUNT(*)" + _AUDIENCE,
                                  (campaign.created_at, campaign.created_at)).fetchone()[0])
            c.execute("INSERT INTO campaigns(id, actor, body, created_at, recipients, state)"
                      " VALUES (?,?,?,?,?,'running')", (campaign.id, campaign.actor,
                                                        campaign.body, campaign.created_at,
                                                        count))
            r = c.execute(f"{_CAMPAIGN_COLS} WHERE id=?", (campaign.id,)).fetchone()
            return _campaign(r), True
        return await self._run(job)

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        def job(c: sqlite3.Connection) -> Campaign | None:
            r = c.execute(f"{_CAMPAIGN_COLS} WHERE id=?", (campaign_id,)).fetchone()
            return _campaign(r) if r is not None else None
        return await self._run(job)

    async def campaign_recipients(self, after: str, limit: int, now: int,
                                  consented_before: int) -> list[tuple[UserId, str]]:
        def job(c: sqlite3.Connection) -> list[tuple[UserId, str]]:
            rows = c.execute("SELECT c.user_id, u.phone" + _AUDIENCE
                             + " AND c.user_id>? ORDER BY c.user_id LIMIT ?",
                             (consented_before, now, after, limit)).fetchall()
            return [(UserId(r[0]), r[1]) for r in rows]
        return await self._run(job)

    async def campaign_progress(self, campaign_id: str, sent: int, failed: int) -> str | None:
        def job(c: sqlite3.Connection) -> str | None:
            c.execute("UPDATE campaigns SET sent=?, failed=? WHERE id=?",
                      (sent, failed, campaign_id))
            r = c.execute("SELECT state FROM campaigns WHERE id=?", (campaign_id,)).fetchone()
            return str(r[0]) if r is not None else None
        return await self._run(job)

    async def end_campaign(self, campaign_id: str, state: str, ts: int, sent: int | None = None,
                           failed: int | None = None) -> Campaign | None:
        def job(c: sqlite3.Connection) -> Campaign | None:
            c.execute("UPDATE campaigns SET state=?, finished_at=?, sent=COALESCE(?, sent),"
                      " failed=COALESCE(?, failed) WHERE id=? AND state='running'",
                      (state, ts, sent, failed, campaign_id))
            r = c.execute(f"{_CAMPAIGN_COLS} WHERE id=?", (campaign_id,)).fetchone()
            return _campaign(r) if r is not None else None
        return await self._run(job)
