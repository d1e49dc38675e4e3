"""Push: devices per session, notification settings, who a message may be pushed to, and the
outbox (bursts coalesced, dedup, leases, retries)."""

from __future__ import annotations

import asyncio
import secrets

from chatd.store import (
    ConvId,
    NotifySettings,
    PushDevice,
    PushJob,
    SessionRow,
    Store,
    User,
    UserId,
)
from tests.store.support import NOW, direct, new_user, uid


async def device(store: Store, user: User, vendor: str = "webhook") -> PushDevice:
    token_hash = secrets.token_bytes(32)
    await store.create_session(SessionRow(token_hash, user.id, "phone", NOW, NOW + 10**9))
    dev = PushDevice(token_hash, user.id, vendor, uid("tok"), NOW)
    await store.set_push_device(dev)
    return dev


def msg_job(user: UserId, conv: ConvId, seq: int, due: int = NOW) -> PushJob:
    return PushJob(user, "msg", f"msg:{user}:{conv}:{seq}", f'{{"seq": {seq}}}', NOW, due,
                   conv, seq)


async def test_devices_follow_their_session(store: Store) -> None:
    u = await new_user(store)
    dev = await device(store, u)
    assert await store.push_devices_of(u.id) == [dev]
    replaced = PushDevice(dev.token_hash, u.id, "hms", "new-token", NOW + 1)
    await store.set_push_device(replaced)  # one registration per session
    assert await store.push_devices_of(u.id) == [replaced]
    assert not await store.delete_push_device(dev.token_hash, "apns")
    assert await store.delete_push_device(dev.token_hash, "hms")
    assert await store.push_devices_of(u.id) == []
    other = await device(store, u)
    await store.delete_session(other.token_hash)  # logging out forgets the device
    assert await store.push_devices_of(u.id) == []
    third = await device(store, u, "fcm")
    assert await store.delete_push_token("fcm", third.token) == 1


async def test_settings_default_and_round_trip(store: Store) -> None:
    u = await new_user(store)
    assert await store.get_notify_settings(u.id) == NotifySettings()
    chosen = NotifySettings(enabled=True, previews=True, groups=True, quiet_start=1380,
                            quiet_end=420, tz_offset=-300)
    await store.set_notify_settings(u.id, chosen, NOW)
    assert await store.get_notify_settings(u.id) == chosen


async def test_push_targets(store: Store) -> None:
    conv, a, b = await direct(store)
    assert await store.push_targets(conv, a.id, NOW) == []  # b has no device
    await device(store, b)
    await device(store, a)
    assert await store.push_targets(conv, a.id, NOW) == [(b.id, NotifySettings())]
    await store.set_conv_mute(conv, b.id, NOW + 1000)
    assert await store.push_targets(conv, a.id, NOW) == []  # muted by b
    assert await store.push_targets(conv, a.id, NOW + 1000) == [(b.id, NotifySettings())]
    await store.block(b.id, a.id, NOW)
    assert await store.push_targets(conv, a.id, NOW + 1000) == []
    await store.unblock(b.id, a.id)
    await store.set_notify_settings(b.id, NotifySettings(enabled=False), NOW)
    assert await store.push_targets(conv, a.id, NOW + 1000) == []
    # Groups only for those who asked for group notifications.
    group = ConvId(uid("g:"))
    c, d = await new_user(store, ("x",), (group,)), await new_user(store, ("x",), (group,))
    await device(store, c)
    await device(store, d)
    wants = NotifySettings(groups=True)
    await store.set_notify_settings(d.id, wants, NOW)
    assert await store.push_targets(group, a.id, NOW) == [(d.id, wants)]


async def test_a_burst_is_one_job_and_dedup_drops_repeats(store: Store) -> None:
    conv, _, b = await direct(store)
    assert await store.enqueue_pushes([msg_job(b.id, conv, 1), msg_job(b.id, conv, 2)]) == 1
    assert await store.enqueue_pushes([msg_job(b.id, conv, 3)]) == 0
    other = PushJob(b.id, "match", f"match:{uid()}", "{}", NOW, NOW)
    assert await store.enqueue_pushes([other, other]) == 1
    await store.set_read(conv, b.id, 0)
    jobs = await store.claim_pushes(NOW, 30_000, 10)
    assert sorted(j.kind for j in jobs) == ["match", "msg"]
    [burst] = [j for j in jobs if j.kind == "msg"]
    assert burst.seq == 3 and burst.payload == '{"seq": 3}' and burst.conv == conv
    # Claimed: nobody else gets them until the lease ends.
    assert await store.claim_pushes(NOW + 29_999, 30_000, 10) == []
    # A message after the claim starts the next burst.
    assert await store.enqueue_pushes([msg_job(b.id, conv, 4)]) == 1
    await store.finish_push(burst.id, "sent", NOW, 1)
    again = await store.claim_pushes(NOW + 30_000, 30_000, 10)
    assert sorted((j.kind, j.seq) for j in again) == [("match", 0), ("msg", 4)]
    assert [j.attempts for j in again if j.kind == "match"] == [0]
    assert [j[0] for j in await store.push_jobs_of(b.id) if j[1] == "sent"] == ["msg"]


async def test_retry_and_read_mark(store: Store) -> None:
    conv, a, b = await direct(store)
    for i in range(3):
        await store.append_message(conv, uid("m"), a.id, str(i), NOW, None, False)
    await store.enqueue_pushes([msg_job(b.id, conv, 3)])
    await store.set_read(conv, b.id, 2)
    [job] = await store.claim_pushes(NOW, 1000, 10)
    assert job.read_seq == 2
    await store.finish_push(job.id, "pending", NOW + 5000, job.attempts + 1, "HTTP 503")
    assert await store.claim_pushes(NOW + 4999, 1000, 10) == []
    [retried] = await store.claim_pushes(NOW + 5000, 1000, 10)
    assert (retried.id, retried.attempts) == (job.id, 1)


async def test_concurrent_claims_never_share_a_job(store: Store) -> None:
    _, _, b = await direct(store)
    jobs = [PushJob(b.id, "notice", uid("n"), "{}", NOW, NOW) for _ in range(40)]
    await store.enqueue_pushes(jobs)
    claims = await asyncio.gather(*(store.claim_pushes(NOW, 60_000, 7) for _ in range(8)))
    ids = [j.id for claim in claims for j in claim]
    assert len(ids) == len(set(ids)) == 40
