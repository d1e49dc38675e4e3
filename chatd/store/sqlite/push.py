"""Push on SQLite: devices (one per session), notification settings, the durable outbox."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from chatd.store.base import ConvId, NotifySettings, PushDevice, PushJob, UserId
from chatd.store.sqlite.engine import Engine

__all__ = ["Push"]

_SETTINGS: Final = "enabled, previews, groups, quiet_start, quiet_end, tz_offset"
_JOB: Final = "id, user_id, kind, dedup, payload, created_at, due_at, conv_id, seq, attempts"


def _settings(r: Sequence[Any] | None) -> NotifySettings:
    if r is None:
        return NotifySettings()
    return NotifySettings(bool(r[0]), bool(r[1]), bool(r[2]), int(r[3]), int(r[4]), int(r[5]))


def _job(r: Sequence[Any], marks: Sequence[Any] | None) -> PushJob:
    return PushJob(UserId(r[1]), r[2], r[3], r[4], int(r[5]), int(r[6]),
                   ConvId(r[7]) if r[7] is not None else None, int(r[8]), int(r[0]), int(r[9]),
                   int(marks[0]) if marks else 0, int(marks[1]) if marks else 0)


class Push(Engine):
    async def set_push_device(self, device: PushDevice) -> None:
        await self._run(lambda c: c.execute(
            "INSERT OR REPLACE INTO push_devices(token_hash, user_id, vendor, token, created_at)"
            " VALUES (?,?,?,?,?)", (device.token_hash, device.user_id, device.vendor,
                                    device.token, device.created_at)))

    async def delete_push_device(self, token_hash: bytes, vendor: str | None = None) -> bool:
        return await self._run(lambda c: c.execute(
            "DELETE FROM push_devices WHERE token_hash=? AND (? IS NULL OR vendor=?)",
            (token_hash, vendor, vendor)).rowcount > 0)

    async def delete_push_token(self, vendor: str, token: str) -> int:
        return await self._run(lambda c: c.execute(
            "DELETE FROM push_devices WHERE vendor=? AND token=?", (vendor, token)).rowcount)

    async def push_devices_of(self, user_id: UserId) -> list[PushDevice]:
        return await self._run(lambda c: [PushDevice(r[0], UserId(r[1]), r[2], r[3], r[4])
                                          for r in c.execute(
            "SELECT token_hash, user_id, vendor, token, created_at FROM push_devices"
            " WHERE user_id=? ORDER BY created_at", (user_id,))])

    async def get_notify_settings(self, user_id: UserId) -> NotifySettings:
        return await self._run(lambda c: _settings(c.execute(
            f"SELECT {_SETTINGS} FROM notify_settings WHERE user_id=?", (user_id,)).fetchone()))

    async def set_notify_settings(self, user_id: UserId, settings: NotifySettings,
                                  now: int) -> None:
        s = settings
        await self._run(lambda c: c.execute(
            f"INSERT OR REPLACE INTO notify_settings(user_id, {_SETTINGS}, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?)", (user_id, int(s.enabled), int(s.previews),
                                          int(s.groups), s.quiet_start, s.quiet_end,
                                          s.tz_offset, now)))

    async def push_targets(self, conv: ConvId, sender: UserId,
                           now: int) -> list[tuple[UserId, NotifySettings]]:
        def job(c: sqlite3.Connection) -> list[tuple[UserId, NotifySettings]]:
            rows = c.execute(
                f"SELECT m.user_id, {', '.join('n.' + k for k in _SETTINGS.split(', '))}"
                " FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
                " LEFT JOIN notify_settings n ON n.user_id=m.user_id"
                " WHERE m.conv_id=:c AND m.user_id<>:s AND m.left_at IS NULL"
                " AND m.mute_until<=:now"
                " AND EXISTS(SELECT 1 FROM push_devices d WHERE d.user_id=m.user_id)"
                " AND NOT EXISTS(SELECT 1 FROM blocks b WHERE b.blocker=m.user_id"
                "  AND b.blocked=:s)"
                " AND COALESCE(n.enabled, 1)=1"
                " AND (cv.kind='direct' OR COALESCE(n.groups, 0)=1)",
                {"c": conv, "s": sender, "now": now}).fetchall()
            return [(UserId(r[0]), _settings(r[1:]) if r[1] is not None else NotifySettings())
                    for r in rows]
        return await self._run(job)

    async def enqueue_pushes(self, jobs: Sequence[PushJob]) -> int:
        def job(c: sqlite3.Connection) -> int:
            added = 0
            for j in jobs:
                if j.kind == "msg" and c.execute(
                        "UPDATE push_outbox SET seq=MAX(seq, ?), payload=? WHERE user_id=?"
                        " AND conv_id=? AND kind='msg' AND state='pending'",
                        (j.seq, j.payload, j.user_id, j.conv)).rowcount:
                    continue  # the burst's notification is still waiting: it now says more
                added += c.execute(
                    "INSERT OR IGNORE INTO push_outbox(user_id, dedup, kind, conv_id, seq,"
                    " payload, created_at, due_at) VALUES (?,?,?,?,?,?,?,?)",
                    (j.user_id, j.dedup, j.kind, j.conv, j.seq, j.payload, j.created_at,
                     j.due_at)).rowcount
            return added
        return await self._run(job)

    async def claim_pushes(self, now: int, lease_ms: int, limit: int) -> list[PushJob]:
        def job(c: sqlite3.Connection) -> list[PushJob]:
            # One statement in the write transaction: two processes on one file never take
            # the same job (SQLite serialises writers).
            rows = c.execute(
                f"UPDATE push_outbox SET state='sending', due_at=? WHERE id IN (SELECT id"
                " FROM push_outbox WHERE state IN ('pending', 'sending') AND due_at<=?"
                f" ORDER BY due_at LIMIT ?) RETURNING {_JOB}",
                (now + lease_ms, now, limit)).fetchall()
            out = []
            for r in rows:
                marks = c.execute("SELECT read_seq, delivered_seq FROM conv_members WHERE"
                                  " conv_id=? AND user_id=?", (r[7], r[1])).fetchone() \
                    if r[7] else None
                out.append(_job(r, marks))
            return out
        return await self._run(job)

    async def finish_push(self, job_id: int, state: str, due_at: int, attempts: int,
                          error: str = "") -> None:
        await self._run(lambda c: c.execute(
            "UPDATE push_outbox SET state=?, due_at=?, attempts=?, last_error=? WHERE id=?",
            (state, due_at, attempts, error[:200], job_id)))

    async def push_jobs_of(self, user_id: UserId) -> list[tuple[str, str, int]]:
        return await self._run(lambda c: [(r[0], r[1], int(r[2])) for r in c.execute(
            "SELECT kind, state, created_at FROM push_outbox WHERE user_id=? ORDER BY id",
            (user_id,))])
