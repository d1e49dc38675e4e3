"""Moderation on SQLite: roles, bans, mutes, word-list changes, the audit log, the review
queue and message removal."""

from __future__ import annotations

import sqlite3
from typing import Any, cast

from chatd.store.base import (
    MSG_COLS,
    AuditEntry,
    Message,
    ReviewItem,
    UserId,
    WordChange,
    message_row,
)
from chatd.store.sqlite.engine import Engine

__all__ = ["Moderation"]


class Moderation(Engine):
    async def set_role(self, user_id: UserId, role: str) -> bool:
        return await self._run(lambda c: c.execute(
            "UPDATE users SET role=? WHERE id=?", (role, user_id)).rowcount == 1)

    async def set_banned(self, user_id: UserId, until: int) -> bool:
        return await self._run(lambda c: c.execute(
            "UPDATE users SET banned_until=? WHERE id=?", (until, user_id)).rowcount == 1)

    async def set_muted(self, user_id: UserId, until: int) -> bool:
        return await self._run(lambda c: c.execute(
            "UPDATE users SET muted_until=? WHERE id=?", (until, user_id)).rowcount == 1)

    async def add_word_change(self, change: WordChange) -> int:
        """Append the change and its audit row in one transaction; return the new version."""
        def job(c: sqlite3.Connection) -> int:
            cur = c.execute("INSERT INTO word_changes(op, word, category, action, actor, ts)"
                            " VALUES (?,?,?,?,?,?)", (change.op, change.word, change.category,
                                                      change.action, change.actor, change.ts))
            version = int(cast(int, cur.lastrowid))
            detail = f"{change.word}\t{change.category}\t{change.action}".rstrip("\t")
            c.execute("INSERT INTO audit_log(ts, actor, action, target, detail)"
                      " VALUES (?,?,?,?,?)", (change.ts, change.actor, f"words.{change.op}",
                                              f"v{version}", detail))
            return version
        return await self._run(job)

    async def word_changes(self, after: int = 0) -> list[WordChange]:
        def job(c: sqlite3.Connection) -> list[WordChange]:
            rows = c.execute("SELECT op, word, category, action, actor, ts, version"
                             " FROM word_changes WHERE version>? ORDER BY version",
                             (after,)).fetchall()
            return [WordChange(*r) for r in rows]
        return await self._run(job)

    async def word_version(self) -> int:
        return await self._run(lambda c: int(c.execute(
            "SELECT COALESCE(MAX(version), 0) FROM word_changes").fetchone()[0]))

    async def add_audit(self, entry: AuditEntry) -> int:
        def job(c: sqlite3.Connection) -> int:
            cur = c.execute("INSERT INTO audit_log(ts, actor, action, target, detail)"
                            " VALUES (?,?,?,?,?)",
                            (entry.ts, entry.actor, entry.action, entry.target, entry.detail))
            return int(cast(int, cur.lastrowid))
        return await self._run(job)

    async def audit_log(self, before: int | None, limit: int,
                        target: str | None = None) -> list[AuditEntry]:
        """Newest first; ``before`` is an audit id (exclusive)."""
        def job(c: sqlite3.Connection) -> list[AuditEntry]:
            sql = ("SELECT ts, actor, action, target, detail, id FROM audit_log WHERE id<?"
                   + (" AND target=?" if target is not None else "") + " ORDER BY id DESC LIMIT ?")
            args: tuple[Any, ...] = (before if before is not None else 2**62,)
            args += (target,) if target is not None else ()
            return [AuditEntry(*r) for r in c.execute(sql, (*args, limit)).fetchall()]
        return await self._run(job)

    async def review_queue(self, offset: int, limit: int) -> list[ReviewItem]:
        """Flagged messages and posts, oldest first."""
        def job(c: sqlite3.Connection) -> list[ReviewItem]:
            rows = c.execute(
                "SELECT 'message', id, sender, body, ts, conv_id FROM messages WHERE flagged=1"
                " UNION ALL SELECT 'post', id, author, body, ts, grp FROM posts WHERE flagged=1"
                " ORDER BY 5, 2 LIMIT ? OFFSET ?", (limit, offset)).fetchall()
            return [ReviewItem(r[0], r[1], UserId(r[2]), r[3], r[4], r[5]) for r in rows]
        return await self._run(job)

    async def unflag(self, kind: str, item_id: str) -> bool:
        table = {"message": "messages", "post": "posts"}[kind]
        return await self._run(lambda c: c.execute(
            f"UPDATE {table} SET flagged=0 WHERE id=? AND flagged=1", (item_id,)).rowcount == 1)

    async def get_message(self, msg_id: str) -> Message | None:
        def job(c: sqlite3.Connection) -> Message | None:
            r = c.execute(f"{MSG_COLS} WHERE m.id=?", (msg_id,)).fetchone()
            return message_row(r) if r else None
        return await self._run(job)

    async def delete_message(self, msg_id: str) -> Message | None:
        """Blank the body (the seq stays); the message as it is now, None if unknown."""
        def job(c: sqlite3.Connection) -> Message | None:
            c.execute("UPDATE messages SET body='', attachments='', deleted=1, flagged=0"
                      " WHERE id=?", (msg_id,))
            r = c.execute(f"{MSG_COLS} WHERE m.id=?", (msg_id,)).fetchone()
            return message_row(r) if r else None
        return await self._run(job)
