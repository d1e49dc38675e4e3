"""Media on SQLite: photos, voice clips and avatars, image bans, media links, feedback."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from chatd.store.base import UserId
from chatd.store.media import (
    FEEDBACK_COLS,
    MEDIA_COLS,
    Feedback,
    MediaRecord,
    attachments_text,
    feedback_row,
    media_row,
    media_values,
    signed_phash,
    unsigned_phash,
)
from chatd.store.sqlite.engine import Engine

__all__ = ["Media"]

_INSERT = ("INSERT INTO media(id, owner, kind, content_type, bytes, created_at, width, height,"
           " seconds, thumb_type, phash, target, ref, review) VALUES"
           " (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")


class Media(Engine):
    async def add_media(self, record: MediaRecord) -> None:
        await self._run(lambda c: c.execute(_INSERT, media_values(record)))

    async def get_media(self, ids: Sequence[str]) -> dict[str, MediaRecord]:
        def job(c: sqlite3.Connection) -> dict[str, MediaRecord]:
            found = {}
            for media_id in dict.fromkeys(ids):
                r = c.execute(f"{MEDIA_COLS} WHERE id=?", (media_id,)).fetchone()
                if r is not None:
                    found[media_id] = media_row(r)
            return found
        return await self._run(job)

    async def attach_media(self, ids: Sequence[str], owner: UserId, target: str,
                           ref: str = "") -> None:
        await self._run(lambda c: c.executemany(
            "UPDATE media SET target=?, ref=? WHERE id=? AND owner=?",
            [(target, ref, media_id, owner) for media_id in ids]))

    async def _media_where(self, where: str, *args: object) -> list[MediaRecord]:
        return await self._run(lambda c: [media_row(r) for r in c.execute(
            f"{MEDIA_COLS} WHERE {where}", args).fetchall()])

    async def media_by_ref(self, ref: str) -> list[MediaRecord]:
        return await self._media_where("ref=? AND ref<>''", ref)

    async def media_by_target(self, target: str) -> list[MediaRecord]:
        return await self._media_where("target=? AND target<>''", target)

    async def media_of(self, owner: UserId) -> list[MediaRecord]:
        return await self._media_where("owner=? ORDER BY created_at, id", owner)

    async def orphan_media(self, before: int, limit: int) -> list[MediaRecord]:
        return await self._media_where("target='' AND created_at<? ORDER BY created_at LIMIT ?",
                                       before, limit)

    async def media_review_queue(self, offset: int, limit: int) -> list[MediaRecord]:
        return await self._media_where("review=1 ORDER BY created_at, id LIMIT ? OFFSET ?",
                                       limit, offset)

    async def delete_media(self, ids: Sequence[str]) -> None:
        await self._run(lambda c: c.executemany("DELETE FROM media WHERE id=?",
                                                [(i,) for i in ids]))

    async def set_media_review(self, media_id: str, review: bool) -> bool:
        return await self._run(lambda c: c.execute(
            "UPDATE media SET review=? WHERE id=?", (int(review), media_id)).rowcount == 1)

    async def set_avatar(self, user_id: UserId, media_id: str) -> str:
        def job(c: sqlite3.Connection) -> str:
            r = c.execute("SELECT avatar FROM users WHERE id=?", (user_id,)).fetchone()
            c.execute("UPDATE users SET avatar=? WHERE id=?", (media_id, user_id))
            return str(r[0]) if r else ""
        return await self._run(job)

    async def reported(self, user_id: UserId) -> bool:
        return await self._run(lambda c: c.execute(
            "SELECT 1 FROM reports WHERE target_user=? AND state='open' LIMIT 1",
            (user_id,)).fetchone() is not None)

    async def add_image_ban(self, phash: int, actor: str, now: int) -> None:
        await self._run(lambda c: c.execute(
            "INSERT INTO image_bans(phash, actor, created_at) VALUES (?,?,?)",
            (signed_phash(phash), actor, now)))

    async def image_bans(self) -> list[int]:
        return await self._run(lambda c: [unsigned_phash(int(r[0])) for r in c.execute(
            "SELECT phash FROM image_bans ORDER BY id").fetchall()])

    async def add_media_link(self, token_hash: bytes, media_id: str, user_id: UserId,
                             expires_at: int) -> None:
        await self._run(lambda c: c.execute(
            "INSERT INTO media_links(token_hash, media_id, user_id, expires_at)"
            " VALUES (?,?,?,?)", (token_hash, media_id, user_id, expires_at)))

    async def media_link(self, token_hash: bytes, now: int) -> tuple[str, UserId] | None:
        def job(c: sqlite3.Connection) -> tuple[str, UserId] | None:
            r = c.execute("SELECT media_id, user_id FROM media_links WHERE token_hash=?"
                          " AND expires_at>?", (token_hash, now)).fetchone()
            return (r[0], UserId(r[1])) if r else None
        return await self._run(job)

    async def purge_media_links(self, now: int) -> int:
        return await self._run(lambda c: c.execute(
            "DELETE FROM media_links WHERE expires_at<=?", (now,)).rowcount)

    async def add_feedback(self, feedback: Feedback) -> None:
        f = feedback
        await self._run(lambda c: c.execute(
            "INSERT INTO feedback(id, user_id, body, attachments, created_at) VALUES (?,?,?,?,?)",
            (f.id, f.user_id, f.body, attachments_text(f.attachments), f.created_at)))

    async def get_feedback(self, feedback_id: str) -> Feedback | None:
        found = await self._feedback_where("id=?", feedback_id)
        return found[0] if found else None

    async def feedback_of(self, user_id: UserId) -> list[Feedback]:
        return await self._feedback_where("user_id=? ORDER BY created_at DESC, id", user_id)

    async def feedback_queue(self, offset: int, limit: int) -> list[Feedback]:
        return await self._feedback_where(
            "state='open' ORDER BY created_at, id LIMIT ? OFFSET ?", limit, offset)

    async def _feedback_where(self, where: str, *args: object) -> list[Feedback]:
        return await self._run(lambda c: [feedback_row(r) for r in c.execute(
            f"{FEEDBACK_COLS} WHERE {where}", args).fetchall()])

    async def reply_feedback(self, feedback_id: str, reply: str, actor: UserId,
                             now: int) -> Feedback | None:
        def job(c: sqlite3.Connection) -> Feedback | None:
            c.execute("UPDATE feedback SET state='answered', reply=?, replied_by=?,"
                      " replied_at=? WHERE id=?", (reply, actor, now, feedback_id))
            r = c.execute(f"{FEEDBACK_COLS} WHERE id=?", (feedback_id,)).fetchone()
            return feedback_row(r) if r else None
        return await self._run(job)
