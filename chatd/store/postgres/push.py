"""Push on PostgreSQL: devices, notification settings and the durable outbox, shared by every
node. A job is claimed with ``FOR UPDATE SKIP LOCKED``: nodes polling at once take different
jobs, and a node that dies holding one gives it back when its lease ends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from chatd.store.base import ConvId, NotifySettings, PushDevice, PushJob, UserId
from chatd.store.postgres.engine import Engine
from chatd.store.postgres.rows import rowcount

__all__ = ["Push"]

_SETTINGS: Final = "enabled, previews, groups, quiet_start, quiet_end, tz_offset"
_JOB: Final = "id, user_id, kind, dedup, payload, created_at, due_at, conv_id, seq, attempts"


def _settings(r: Sequence[Any] | None) -> NotifySettings:
    if r is None or r[0] is None:
        return NotifySettings()
    return NotifySettings(bool(r[0]), bool(r[1]), bool(r[2]), int(r[3]), int(r[4]), int(r[5]))


def _job(r: Any, marks: tuple[int, int] | None) -> PushJob:
    return PushJob(UserId(r[1]), r[2], r[3], r[4], int(r[5]), int(r[6]),
                   ConvId(r[7]) if r[7] is not None else None, int(r[8]), int(r[0]), int(r[9]),
                   *(marks or (0, 0)))


class Push(Engine):
    async def set_push_device(self, device: PushDevice) -> None:
        await self._exec(
            "INSERT INTO push_devices(token_hash, user_id, vendor, token, created_at)"
            " VALUES ($1,$2,$3,$4,$5) ON CONFLICT (token_hash) DO UPDATE SET"
            " vendor=EXCLUDED.vendor, token=EXCLUDED.token, created_at=EXCLUDED.created_at",
            device.token_hash, device.user_id, device.vendor, device.token, device.created_at)

    async def delete_push_device(self, token_hash: bytes, vendor: str | None = None) -> bool:
        return rowcount(await self._exec(
            "DELETE FROM push_devices WHERE token_hash=$1 AND ($2::text IS NULL OR vendor=$2)",
            token_hash, vendor)) > 0

    async def delete_push_token(self, vendor: str, token: str) -> int:
        return rowcount(await self._exec(
            "DELETE FROM push_devices WHERE vendor=$1 AND token=$2", vendor, token))

    async def push_devices_of(self, user_id: UserId) -> list[PushDevice]:
        rows = await self._fetch("SELECT token_hash, user_id, vendor, token, created_at"
                                 " FROM push_devices WHERE user_id=$1 ORDER BY created_at",
                                 user_id)
        return [PushDevice(bytes(r[0]), UserId(r[1]), r[2], r[3], int(r[4])) for r in rows]

    async def get_notify_settings(self, user_id: UserId) -> NotifySettings:
        rows = await self._fetch(f"SELECT {_SETTINGS} FROM notify_settings WHERE user_id=$1",
                                 user_id)
        return _settings(rows[0] if rows else None)

    async def set_notify_settings(self, user_id: UserId, settings: NotifySettings,
                                  now: int) -> None:
        s = settings
        await self._exec(
            f"INSERT INTO notify_settings(user_id, {_SETTINGS}, updated_at)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (user_id) DO UPDATE SET"
            " enabled=EXCLUDED.enabled, previews=EXCLUDED.previews, groups=EXCLUDED.groups,"
            " quiet_start=EXCLUDED.quiet_start, quiet_end=EXCLUDED.quiet_end,"
            " tz_offset=EXCLUDED.tz_offset, updated_at=EXCLUDED.updated_at",
            user_id, s.enabled, s.previews, s.groups, s.quiet_start, s.quiet_end, s.tz_offset,
            now)

    async def push_targets(self, conv: ConvId, sender: UserId,
                           now: int) -> list[tuple[UserId, NotifySettings]]:
        rows = await self._fetch(
            f"SELECT m.user_id, {', '.join('n.' + k for k in _SETTINGS.split(', '))}"
            " FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
            " LEFT JOIN notify_settings n ON n.user_id=m.user_id"
            " WHERE m.conv_id=$1 AND m.user_id<>$2 AND m.left_at IS NULL AND m.mute_until<=$3"
            " AND EXISTS(SELECT 1 FROM push_devices d WHERE d.user_id=m.user_id)"
            " AND NOT EXISTS(SELECT 1 FROM blocks b WHERE b.blocker=m.user_id AND b.blocked=$2)"
            " AND COALESCE(n.enabled, TRUE) AND (cv.kind='direct' OR COALESCE(n.groups, FALSE))",
            conv, sender, now)
        return [(UserId(r[0]), _settings(r[1:])) for r in rows]

    async def enqueue_pushes(self, jobs: Sequence[PushJob]) -> int:
        added = 0
        async with self._tx() as c:
            for j in jobs:
                if j.kind == "msg" and rowcount(await c.execute(
                        "UPDATE push_outbox SET seq=GREATEST(seq, $1), payload=$2"
                        " WHERE user_id=$3 AND conv_id=$4 AND kind='msg' AND state='pending'",
                        j.seq, j.payload, j.user_id, j.conv)):
                    continue  # the burst's notification is still waiting: it now says more
                added += rowcount(await c.execute(
                    "INSERT INTO push_outbox(user_id, dedup, kind, conv_id, seq, payload,"
                    " created_at, due_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
                    " ON CONFLICT (dedup) DO NOTHING", j.user_id, j.dedup, j.kind, j.conv,
                    j.seq, j.payload, j.created_at, j.due_at))
        return added

    async def claim_pushes(self, now: int, lease_ms: int, limit: int) -> list[PushJob]:
        async with self._tx() as c:
            rows = await c.fetch(
                "UPDATE push_outbox SET state='sending', due_at=$1 WHERE id IN (SELECT id"
                " FROM push_outbox WHERE state IN ('pending', 'sending') AND due_at<=$2"
                f" ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {_JOB}",
                now + lease_ms, now, limit)
            marks: dict[tuple[str, str], tuple[int, int]] = {}
            if rows:
                for m in await c.fetch(
                        "SELECT conv_id, user_id, read_seq, delivered_seq FROM conv_members m"
                        " JOIN unnest($1::text[], $2::text[]) AS w(conv, usr)"
                        " ON m.conv_id=w.conv AND m.user_id=w.usr",
                        [r[7] or "" for r in rows], [r[1] for r in rows]):
                    marks[m[0], m[1]] = (int(m[2]), int(m[3]))
        return [_job(r, marks.get((r[7], r[1]))) for r in rows]

    async def finish_push(self, job_id: int, state: str, due_at: int, attempts: int,
                          error: str = "") -> None:
        await self._exec("UPDATE push_outbox SET state=$2, due_at=$3, attempts=$4,"
                         " last_error=$5 WHERE id=$1", job_id, state, due_at, attempts,
                         error[:200])

    async def push_jobs_of(self, user_id: UserId) -> list[tuple[str, str, int]]:
        rows = await self._fetch("SELECT kind, state, created_at FROM push_outbox"
                                 " WHERE user_id=$1 ORDER BY id", user_id)
        return [(r[0], r[1], int(r[2])) for r in rows]
