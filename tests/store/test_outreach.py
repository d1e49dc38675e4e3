"""Outreach: campaigns and their audience, verification, report outcomes, lookups."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from chatd.store import Campaign, CampaignBusy, ConvId, Report, Store, UserId
from tests.store.support import NOW, direct, new_user, uid

# Older than every other consent the suite stores (the PostgreSQL database is shared by the
# session): an audience counted at T0 is this test's alone.
T0 = 1_500_000_000_000


async def test_campaign_audience_counts_and_states(store: Store) -> None:
    users = [await new_user(store) for _ in range(4)]
    yes, late, no, banned = users
    for u in (yes, banned):
        await store.set_consent(u.id, "marketing", True, T0 - 10)
    await store.set_consent(no.id, "marketing", False, T0 - 10)
    await store.set_consent(late.id, "marketing", True, T0 + 10)  # after the campaign began
    await store.set_consent(no.id, "location", True, T0 - 10)
    await store.set_banned(banned.id, T0 + 86_400_000)
    started = await store.start_campaign(Campaign(uid("c"), "cli", "hi 回T退订", T0))
    assert not isinstance(started, CampaignBusy)
    campaign, created = started
    assert created and (campaign.state, campaign.recipients, campaign.sent) == ("running", 1, 0)
    assert await store.campaign_recipients("", 10, T0, T0) == [(yes.id, yes.phone)]
    assert await store.campaign_recipients(yes.id, 10, T0, T0) == []
    # A retried start returns the first; another campaign waits for this one.
    assert await store.start_campaign(replace(campaign, created_at=T0 + 5)) == (campaign, False)
    busy = await store.start_campaign(Campaign(uid("c"), "cli", "other", T0))
    assert busy == CampaignBusy(campaign.id)
    assert await store.campaign_progress(campaign.id, 1, 0) == "running"
    assert await store.campaign_progress(uid("c"), 1, 0) is None
    ended = await store.end_campaign(campaign.id, "done", T0 + 100, 1, 0)
    assert ended is not None and (ended.state, ended.finished_at, ended.sent) == ("done",
                                                                                 T0 + 100, 1)
    # Ended is ended: a late cancel changes nothing; the sender's last counts still count.
    again = await store.end_campaign(campaign.id, "cancelled", T0 + 200)
    assert again == ended == await store.get_campaign(campaign.id)
    assert await store.campaign_progress(campaign.id, 2, 1) == "done"
    last = await store.get_campaign(campaign.id)
    assert last is not None and (last.state, last.sent, last.failed) == ("done", 2, 1)
    assert await store.end_campaign(uid("c"), "cancelled", T0) is None
    assert await store.get_campaign(uid("c")) is None


async def test_recipients_are_paged_by_user_id(store: Store) -> None:
    users = [await new_user(store) for _ in range(5)]
    for u in users:
        await store.set_consent(u.id, "marketing", True, T0 + 1000)
    mine = {u.id for u in users}
    seen: list[UserId] = []
    after = ""
    while True:
        page = await store.campaign_recipients(after, 2, T0, T0 + 1000)
        if not page:
            break
        assert len(page) <= 2
        seen += [uid_ for uid_, _ in page]
        after = page[-1][0]
    assert mine <= set(seen) and len(seen) == len(set(seen)) and seen == sorted(seen)


async def test_only_one_of_concurrent_starts_wins(store: Store) -> None:
    tries = [Campaign(uid("c"), "cli", "hi", T0) for _ in range(4)]
    results = await asyncio.gather(*(store.start_campaign(c) for c in tries))
    started = [r for r in results if not isinstance(r, CampaignBusy)]
    assert len(started) == 1
    winner = started[0][0]
    assert all(r == CampaignBusy(winner.id) for r in results if isinstance(r, CampaignBusy))
    await store.end_campaign(winner.id, "cancelled", T0 + 1)


async def test_verification_and_conv_exists(store: Store) -> None:
    u = await new_user(store)
    assert (u.verification, u.verified) == ("", False)
    assert u.public()["verified"] is False
    assert await store.set_verification(u.id, "pending")
    assert (await store.get_user(u.id)).verification == "pending"  # type: ignore[union-attr]
    assert await store.set_verification(u.id, "verified")
    fresh = await store.get_user(u.id)
    assert fresh is not None and fresh.verified and fresh.public()["verified"] is True
    assert not await store.set_verification(UserId(uid()), "verified")
    pending = replace(await new_user(store), id=UserId(uid()), phone=u.phone + "9",
                      verification="pending")
    await store.create_user(pending, [])
    assert (await store.get_user(pending.id)).verification == "pending"  # type: ignore[union-attr]
    conv, _, _ = await direct(store)
    assert await store.conv_exists(conv)
    assert not await store.conv_exists(ConvId(uid("d:")))


async def test_resolving_reports_names_each_reporter(store: Store) -> None:
    a, b, target = await new_user(store), await new_user(store), await new_user(store)
    ra = await store.add_report(Report(uid("r"), a.id, "user", target.id, target.id, "spam",
                                       "", "", NOW, NOW))
    rb = await store.add_report(Report(uid("r"), b.id, "user", target.id, target.id, "spam",
                                       "", "", NOW, NOW))
    resolved = await store.resolve_reports_for("user", target.id, "warn", NOW + 1)
    assert resolved == sorted([(ra.id, a.id), (rb.id, b.id)])
    assert await store.resolve_reports_for("user", target.id, "warn", NOW + 2) == []
