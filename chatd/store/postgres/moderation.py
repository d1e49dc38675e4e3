"""Moderation on PostgreSQL: roles, bans, mutes, word-list changes, the audit log, the
review queue and message removal.

Word-list versions are taken under a transaction-scoped advisory lock, so versions become
visible in increasing order even with several writers: a node that read version N has seen
every change up to N.
"""

from __future__ import annotations

from typing import Final

from chatd.store.base import (
    MSG_COLS,
    AuditEntry,
    Message,
    ReviewItem,
    UserId,
    WordChange,
    message_row,
)
from chatd.store.postgres.engine import Engine
from chatd.store.postgres.rows import rowcount

__all__ = ["Moderation"]

# Advisory lock key serialising word-list versions ("chatd" in ASCII, then 2).
_WORDS_LOCK: Final = 0x6368_6174_6400_0002


class Moderation(Engine):
    async def set_role(self, user_id: UserId, role: str) -> bool:
        return rowcount(await self._exec("UPDATE users SET role=$2 WHERE id=$1", user_id,
                                       role)) == 1

    async def set_banned(self, user_id: UserId, until: int) -> bool:
        return rowcount(await self._exec("UPDATE users SET banned_until=$2 WHERE id=$1", user_id,
                                       until)) == 1

    async def set_muted(self, user_id: UserId, until: int) -> bool:
        return rowcount(await self._exec("UPDATE users SET muted_until=$2 WHERE id=$1", user_id,
                                       until)) == 1

    async def add_word_change(self, change: WordChange) -> int:
        async with self._tx() as c:
            await c.execute("SELECT pg_advisory_xact_lock($1)", _WORDS_LOCK)
            version = int(await c.fetchval(
                "INSERT INTO word_changes(op, word, category, action, actor, ts)"
                " VALUES ($1,$2,$3,$4,$5,$6) RETURNING version", change.op, change.word,
                change.category, change.action, change.actor, change.ts))
            detail = f"{change.word}\t{change.category}\t{change.action}".rstrip("\t")
            await c.execute("INSERT INTO audit_log(ts, actor, action, target, detail)"
                            " VALUES ($1,$2,$3,$4,$5)", change.ts, change.actor,
                            f"words.{change.op}", f"v{version}", detail)
        return version

    async def word_changes(self, after: int = 0) -> list[WordChange]:
        rows = await self._fetch("SELECT op, word, category, action, actor, ts, version"
                                 " FROM word_changes WHERE version>$1 ORDER BY version", after)
        return [WordChange(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]

    async def word_version(self) -> int:
        async with self._conn() as c:
            return int(await c.fetchval("SELECT COALESCE(MAX(version), 0) FROM word_changes"))

    async def add_audit(self, entry: AuditEntry) -> int:
        async with self._conn() as c:
            new_id = await c.fetchval(
                "INSERT INTO audit_log(ts, actor, action, target, detail)"
                " VALUES ($1,$2,$3,$4,$5) RETURNING id", entry.ts, entry.actor, entry.action,
                entry.target, entry.detail)
        self._committed()
        return int(new_id)

    async def audit_log(self, before: int | None, limit: int,
                        target: str | None = None) -> list[AuditEntry]:
        rows = await self._fetch(
            "SELECT ts, actor, action, target, detail, id FROM audit_log WHERE id<$1"
            " AND ($2::text IS NULL OR target=$2) ORDER BY id DESC LIMIT $3",
            before if before is not None else 2**62, target, limit)
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def review_queue(self, offset: int, limit: int) -> list[ReviewItem]:
        rows = await self._fetch(
            "SELECT * FROM (SELECT 'message' AS k, id, sender, body, ts, conv_id FROM messages"
            " WHERE flagged UNION ALL SELECT 'post', id, author, body, ts, grp FROM posts"
            " WHERE flagged) q ORDER BY ts, id COLLATE \"C\" LIMIT $1 OFFSET $2",
            limit, offset)
        return [ReviewItem(r[0], r[1], UserId(r[2]), r[3], r[4], r[5]) for r in rows]

    async def unflag(self, kind: str, item_id: str) -> bool:
        table = {"message": "messages", "post": "posts"}[kind]
        return rowcount(await self._exec(
            f"UPDATE {table} SET flagged=FALSE WHERE id=$1 AND flagged", item_id)) == 1

    async def get_message(self, msg_id: str) -> Message | None:
        rows = await self._fetch(f"{MSG_COLS} WHERE m.id=$1", msg_id)
        return message_row(rows[0]) if rows else None

    async def delete_message(self, msg_id: str) -> Message | None:
        async with self._conn() as c:
            await c.execute("UPDATE messages SET body='', attachments='', deleted=TRUE,"
                            " flagged=FALSE WHERE id=$1", msg_id)
            r = await c.fetchrow(f"{MSG_COLS} WHERE m.id=$1", msg_id)
        self._committed()
        return message_row(r) if r is not None else None
