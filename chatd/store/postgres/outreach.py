"""Outreach on PostgreSQL: marketing campaigns and their recipients, account verification,
and the lookups of the server API.

Starting a campaign takes a transaction-scoped advisory lock, so two nodes asked at the same
moment cannot both see "nothing running" and start one each.
"""

from __future__ import annotations

from typing import Any, Final

from chatd.store.base import Campaign, CampaignBusy, ConvId, UserId
from chatd.store.postgres.engine import Engine
from chatd.store.postgres.rows import rowcount

__all__ = ["Outreach"]

# Advisory lock key serialising campaign starts ("chatd" in ASCII, then 3).
_CAMPAIGN_LOCK: Final = 0x6368_6174_6400_0003
_CAMPAIGN_COLS: Final = ("SELECT id, actor, body, created_at, finished_at, recipients, sent,"
                         " failed, state FROM campaigns")
# As on SQLite: consent on since the campaign began or earlier, not banned; walked by the
# consents' primary key (user_id, name).
_AUDIENCE: Final = (" FROM consents c JOIN users u ON u.id=c.user_id WHERE c.name='marketing'"
                    " AND c.value AND c.updated_at<=$1 AND u.banned_until<=$2")


def _campaign(r: Any) -> Campaign:
    return Campaign(r[0], r[1], r[2], int(r[3]), None if r[4] is None else int(r[4]),
                    int(r[5]), int(r[6]), int(r[7]), r[8])


class Outreach(Engine):
    async def conv_exists(self, conv: ConvId) -> bool:
        return bool(await self._fetch("SELECT 1 FROM conversations WHERE id=$1", conv))

    async def set_verification(self, user_id: UserId, state: str) -> bool:
        return rowcount(await self._exec("UPDATE users SET verification=$2 WHERE id=$1",
                                         user_id, state)) == 1

    async def start_campaign(self, campaign: Campaign) -> tuple[Campaign, bool] | CampaignBusy:
        async with self._tx() as c:
            await c.execute("SELECT pg_advisory_xact_lock($1)", _CAMPAIGN_LOCK)
            r = await c.fetchrow(f"{_CAMPAIGN_COLS} WHERE id=$1", campaign.id)
            if r is not None:
                return _campaign(r), False
            running = await c.fetchval("SELECT id FROM campaigns WHERE state='running'"
                                       " LIMIT 1")
            if running is not None:
                return CampaignBusy(running)
            count = await c.fetchval("SELECT COUNT(*)" + _AUDIENCE, campaign.created_at,
                                     campaign.created_at)
            r = await c.fetchrow(
                "INSERT INTO campaigns(id, actor, body, created_at, recipients, state)"
                " VALUES ($1,$2,$3,$4,$5,'running') RETURNING id, actor, body, created_at,"
                " finished_at, recipients, sent, failed, state", campaign.id, campaign.actor,
                campaign.body, campaign.created_at, int(count))
            return _campaign(r), True

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        rows = await self._fetch(f"{_CAMPAIGN_COLS} WHERE id=$1", campaign_id)
        return _campaign(rows[0]) if rows else None

    async def campaign_recipients(self, after: str, limit: int, now: int,
                                  consented_before: int) -> list[tuple[UserId, str]]:
        rows = await self._fetch("SELECT c.user_id, u.phone" + _AUDIENCE
                                 + " AND c.user_id>$3 ORDER BY c.user_id LIMIT $4",
                                 consented_before, now, after, limit)
        return [(UserId(r[0]), r[1]) for r in rows]

    async def campaign_progress(self, campaign_id: str, sent: int, failed: int) -> str | None:
        async with self._conn() as c:
            state = await c.fetchval("UPDATE campaigns SET sent=$2, failed=$3 WHERE id=$1"
                                     " RETURNING state", campaign_id, sent, failed)
        self._committed()
        return None if state is None else str(state)

    async def end_campaign(self, campaign_id: str, state: str, ts: int, sent: int | None = None,
                           failed: int | None = None) -> Campaign | None:
        async with self._tx() as c:
            await c.execute("UPDATE campaigns SET state=$2, finished_at=$3,"
                            " sent=COALESCE($4, sent), failed=COALESCE($5, failed)"
                            " WHERE id=$1 AND state='running'", campaign_id, state, ts, sent,
                            failed)
            r = await c.fetchrow(f"{_CAMPAIGN_COLS} WHERE id=$1", campaign_id)
        return _campaign(r) if r is not None else None
