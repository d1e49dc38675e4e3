"""Media on PostgreSQL: photos, voice clips and avatars, image bans, media links, feedback,
shared by every node."""

from __future__ import annotations

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
from chatd.store.postgres.engine import Engine
from chatd.store.postgres.rows import rowcount

__all__ = ["Media"]

_INSERT = ("INSERT INTO media(id, owner, kind, content_type, bytes, created_at, width, height,"
           " seconds, thumb_type, phash, target, ref, review) VALUES"
           " ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)")


class Media(Engine):
    async def add_media(self, record: MediaRecord) -> None:
        await self._exec(_INSERT, *media_values(record))

    async def get_media(self, ids: Sequence[str]) -> dict[str, MediaRecord]:
        rows = await self._fetch(f"{MEDIA_COLS} WHERE id=ANY($1::text[])", list(ids))
        return {r[0]: media_row(r) for r in rows}

    async def attach_media(self, ids: Sequence[str], owner: UserId, target: str,
                           ref: str = "") -> None:
        await self._exec("UPDATE media SET target=$1, ref=$2 WHERE id=ANY($3::text[])"
                         " AND owner=$4", target, ref, list(ids), owner)

    async def _media_where(self, where: str, *args: object) -> list[MediaRecord]:
        return [media_row(r) for r in await self._fetch(f"{MEDIA_COLS} WHERE {where}", *args)]

    async def media_by_ref(self, ref: str) -> list[MediaRecord]:
        return await self._media_where("ref=$1 AND ref<>''", ref)

    async def media_by_target(self, target: str) -> list[MediaRecord]:
        return await self._media_where("target=$1 AND target<>''", target)

    async def media_of(self, owner: UserId) -> list[MediaRecord]:
        return await self._media_where("owner=$1 ORDER BY created_at, id", owner)

    async def orphan_media(self, before: int, limit: int) -> list[MediaRecord]:
        return await self._media_where("target='' AND created_at<$1 ORDER BY created_at"
                                       " LIMIT $2", before, limit)

    async def media_review_queue(self, offset: int, limit: int) -> list[MediaRecord]:
        return await self._media_where("review ORDER BY created_at, id LIMIT $1 OFFSET $2",
                                       limit, offset)

    async def delete_media(self, ids: Sequence[str]) -> None:
        await self._exec("DELETE FROM media WHERE id=ANY($1::text[])", list(ids))

    async def set_media_review(self, media_id: str, review: bool) -> bool:
        return rowcount(await self._exec("UPDATE media SET review=$1 WHERE id=$2", review,
                                         media_id)) == 1

    async def set_avatar(self, user_id: UserId, media_id: str) -> str:
        async with self._tx() as c:
            old = await c.fetchval("SELECT avatar FROM users WHERE id=$1 FOR UPDATE", user_id)
            await c.execute("UPDATE users SET avatar=$1 WHERE id=$2", media_id, user_id)
        return str(old or "")

    async def reported(self, user_id: UserId) -> bool:
        return bool(await self._fetch("SELECT 1 FROM reports WHERE target_user=$1"
                                      " AND state='open' LIMIT 1", user_id))

    async def add_image_ban(self, phash: int, actor: str, now: int) -> None:
        await self._exec("INSERT INTO image_bans(phash, actor, created_at) VALUES ($1,$2,$3)",
                         signed_phash(phash), actor, now)

    async def image_bans(self) -> list[int]:
        return [unsigned_phash(int(r[0]))
                for r in await self._fetch("SELECT phash FROM image_bans ORDER BY id")]

    async def add_media_link(self, token_hash: bytes, media_id: str, user_id: UserId,
                             expires_at: int) -> None:
        await self._exec("INSERT INTO media_links(token_hash, media_id, user_id, expires_at)"
                         " VALUES ($1,$2,$3,$4)", token_hash, media_id, user_id, expires_at)

    async def media_link(self, token_hash: bytes, now: int) -> tuple[str, UserId] | None:
        rows = await self._fetch("SELECT media_id, user_id FROM media_links"
                                 " WHERE token_hash=$1 AND expires_at>$2", token_hash, now)
        return (rows[0][0], UserId(rows[0][1])) if rows else None

    async def purge_media_links(self, now: int) -> int:
        return rowcount(await self._exec("DELETE FROM media_links WHERE expires_at<=$1", now))

    async def add_feedback(self, feedback: Feedback) -> None:
        f = feedback
        await self._exec("INSERT INTO feedback(id, user_id, body, attachments, created_at)"
                         " VALUES ($1,$2,$3,$4,$5)", f.id, f.user_id, f.body,
                         attachments_text(f.attachments), f.created_at)

    async def get_feedback(self, feedback_id: str) -> Feedback | None:
        found = await self._feedback_where("id=$1", feedback_id)
        return found[0] if found else None

    async def feedback_of(self, user_id: UserId) -> list[Feedback]:
        return await self._feedback_where("user_id=$1 ORDER BY created_at DESC, id", user_id)

    async def feedback_queue(self, offset: int, limit: int) -> list[Feedback]:
        return await self._feedback_where(
            "state='open' ORDER BY created_at, id LIMIT $1 OFFSET $2", limit, offset)

    async def _feedback_where(self, where: str, *args: object) -> list[Feedback]:
        return [feedback_row(r) for r in await self._fetch(f"{FEEDBACK_COLS} WHERE {where}",
                                                            *args)]

    async def reply_feedback(self, feedback_id: str, reply: str, actor: UserId,
                             now: int) -> Feedback | None:
        rows = await self._fetch(
            "UPDATE feedback SET state='answered', reply=$1, replied_by=$2, replied_at=$3"
            " WHERE id=$4 RETURNING id, user_id, body, created_at, attachments, state, reply,"
            " replied_by, replied_at", reply, actor, now, feedback_id)
        return feedback_row(rows[0]) if rows else None
