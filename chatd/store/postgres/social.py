"""PostgreSQL side of the issue-6 store methods (moderation, posts, search, reports, privacy).

A mixin of :class:`chatd.store.postgres.PostgresStore`, with the semantics of
:mod:`chatd.store.sqlite_social` (the reference). Word-list versions are taken under a
transaction-scoped advisory lock, so versions become visible in increasing order even with
several writers: a node that read version N has seen every change up to N.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Final

from chatd.store.base import (
    TOMBSTONE,
    AuditEntry,
    Consent,
    ConvId,
    FeedScope,
    Message,
    Post,
    Report,
    ReviewItem,
    SessionRow,
    User,
    UserId,
    WordChange,
)
from chatd.store.sql import like_pattern

__all__ = ["PostgresSocialMixin"]

# Advisory lock key serialising word-list versions ("chatd" in ASCII, then 2).
_WORDS_LOCK: Final = 0x6368_6174_6400_0002
_POST_COLS: Final = ("SELECT p.id, p.author, p.body, p.ts, p.grp, p.city, p.flagged, u.nickname"
                     " FROM posts p JOIN users u ON u.id=p.author")
_REPORT_COLS: Final = ("SELECT id, reporter, kind, target, target_user, reason, note, snapshot,"
                       " created_at, updated_at, count, state, resolution FROM reports")
_MSG: Final = "SELECT conv_id, id, seq, sender, body, ts, deleted FROM messages"


def _visible(col: str, viewer: str, now: str) -> str:
    """Neither side blocked the other, and the author is not banned right now."""
    return (f" AND {col} NOT IN (SELECT blocked FROM blocks WHERE blocker={viewer})"
            f" AND {col} NOT IN (SELECT blocker FROM blocks WHERE blocked={viewer})"
            f" AND u.banned_until<={now}")


class PostgresSocialMixin:
    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # provided by PostgresStore

    def _tx(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    def _committed(self) -> None:
        raise NotImplementedError

    async def _exec(self, sql: str, *args: object) -> str:
        """One statement, committed on its own; asyncpg's status string ("UPDATE 1")."""
        async with self._conn() as c:
            status: str = await c.execute(sql, *args)
        self._committed()
        return status

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        async with self._conn() as c:
            return list(await c.fetch(sql, *args))

    # --- moderation ----------------------------------------------------------------------

    async def set_role(self, user_id: UserId, role: str) -> bool:
        return _count(await self._exec("UPDATE users SET role=$2 WHERE id=$1", user_id,
                                       role)) == 1

    async def set_banned(self, user_id: UserId, until: int) -> bool:
        return _count(await self._exec("UPDATE users SET banned_until=$2 WHERE id=$1", user_id,
                                       until)) == 1

    async def set_muted(self, user_id: UserId, until: int) -> bool:
        return _count(await self._exec("UPDATE users SET muted_until=$2 WHERE id=$1", user_id,
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
        return _count(await self._exec(
            f"UPDATE {table} SET flagged=FALSE WHERE id=$1 AND flagged", item_id)) == 1

    async def get_message(self, msg_id: str) -> Message | None:
        rows = await self._fetch(f"{_MSG} WHERE id=$1", msg_id)
        return _message(rows[0]) if rows else None

    async def delete_message(self, msg_id: str) -> Message | None:
        async with self._conn() as c:
            r = await c.fetchrow("UPDATE messages SET body='', deleted=TRUE, flagged=FALSE"
                                 " WHERE id=$1 RETURNING conv_id, id, seq, sender, body, ts,"
                                 " deleted", msg_id)
        self._committed()
        return _message(r) if r is not None else None

    # --- posts ---------------------------------------------------------------------------

    async def create_post(self, post: Post) -> None:
        await self._exec("INSERT INTO posts(id, author, grp, body, city, ts, flagged)"
                         " VALUES ($1,$2,$3,$4,$5,$6,$7)", post.id, post.author, post.group,
                         post.body, post.city, post.ts, post.flagged)

    async def get_post(self, post_id: str) -> Post | None:
        rows = await self._fetch(f"{_POST_COLS} WHERE p.id=$1", post_id)
        return _post(rows[0]) if rows else None

    async def delete_post(self, post_id: str) -> bool:
        return _count(await self._exec("DELETE FROM posts WHERE id=$1", post_id)) == 1

    async def feed(self, viewer: UserId, scope: FeedScope, group: str | None,
                   before: tuple[int, str] | None, limit: int, now: int) -> list[Post]:
        if scope == "group":
            where = "p.grp=$2::text"
        elif scope == "mine":
            # $2 is typed even where unused: asyncpg must know every parameter's type.
            where = "($2::text IS NULL OR TRUE) AND p.author=$1"
        else:
            where = ("($2::text IS NULL OR TRUE) AND (p.author=$1 OR p.author IN"
                     " (SELECT o.user_id FROM conv_members m"
                     " JOIN conversations cv ON cv.id=m.conv_id AND cv.kind='direct'"
                     " AND NOT cv.closed JOIN conv_members o ON o.conv_id=m.conv_id"
                     " AND o.user_id<>m.user_id AND o.left_at IS NULL"
                     " WHERE m.user_id=$1 AND m.left_at IS NULL))")
        ts, pid = before if before is not None else (2**62, "")
        cursor = ("(p.ts<$3 OR (p.ts=$3 AND p.id COLLATE \"C\"<$4))" if before
                  else "(p.ts<$3 AND $4::text IS NOT NULL)")
        rows = await self._fetch(
            f"{_POST_COLS} WHERE {where} AND {cursor}{_visible('p.author', '$1', '$5')}"
            " ORDER BY p.ts DESC, p.id COLLATE \"C\" DESC LIMIT $6",
            viewer, group, ts, pid, now, limit)
        return [_post(r) for r in rows]

    async def clear_post_locations(self, user_id: UserId) -> None:
        await self._exec("UPDATE posts SET city=NULL WHERE author=$1", user_id)

    # --- search --------------------------------------------------------------------------

    async def search_users(self, viewer: UserId, text: str, tags: Sequence[str], offset: int,
                           limit: int, now: int) -> list[User]:
        from chatd.store.postgres import _USER_COLS, _load_user_row

        if not text and not tags:
            return []
        rows = await self._fetch(
            f"{_USER_COLS} WHERE u.id<>$1 AND (($2::text<>'' AND u.nickname ILIKE $3)"
            " OR u.id IN (SELECT user_id FROM user_interests WHERE tag=ANY($4::text[])))"
            f"{_visible('u.id', '$1', '$5')} ORDER BY u.nickname COLLATE \"C\", u.id"
            " COLLATE \"C\" LIMIT $6 OFFSET $7",
            viewer, text, like_pattern(text), list(tags), now, limit, offset)
        return [_load_user_row(r) for r in rows]

    async def search_posts(self, viewer: UserId, text: str, offset: int, limit: int,
                           now: int) -> list[Post]:
        rows = await self._fetch(
            f"{_POST_COLS} WHERE p.body ILIKE $2{_visible('p.author', '$1', '$3')}"
            " ORDER BY p.ts DESC, p.id COLLATE \"C\" DESC LIMIT $4 OFFSET $5",
            viewer, like_pattern(text), now, limit, offset)
        return [_post(r) for r in rows]

    async def add_search(self, user_id: UserId, query: str, ts: int, keep: int) -> None:
        async with self._tx() as c:
            await c.execute("DELETE FROM search_history WHERE user_id=$1 AND query=$2",
                            user_id, query)
            await c.execute("INSERT INTO search_history(user_id, query, ts) VALUES ($1,$2,$3)",
                            user_id, query, ts)
            await c.execute("DELETE FROM search_history WHERE user_id=$1 AND id NOT IN"
                            " (SELECT id FROM search_history WHERE user_id=$1"
                            " ORDER BY id DESC LIMIT $2)", user_id, keep)

    async def search_history(self, user_id: UserId, limit: int) -> list[tuple[str, int]]:
        rows = await self._fetch("SELECT query, ts FROM search_history WHERE user_id=$1"
                                 " ORDER BY id DESC LIMIT $2", user_id, limit)
        return [(r[0], int(r[1])) for r in rows]

    async def clear_search_history(self, user_id: UserId) -> None:
        await self._exec("DELETE FROM search_history WHERE user_id=$1", user_id)

    # --- reports -------------------------------------------------------------------------

    async def add_report(self, report: Report) -> Report:
        async with self._conn() as c:
            r = await c.fetchrow(
                "INSERT INTO reports AS r(id, reporter, kind, target, target_user, reason, note,"
                " snapshot, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
                " ON CONFLICT(reporter, kind, target) DO UPDATE SET count=r.count+1,"
                " reason=EXCLUDED.reason, note=CASE WHEN EXCLUDED.note<>'' THEN EXCLUDED.note"
                " ELSE r.note END, updated_at=EXCLUDED.updated_at, state='open',"
                " resolution=NULL RETURNING id, reporter, kind, target, target_user, reason,"
                " note, snapshot, created_at, updated_at, count, state, resolution",
                report.id, report.reporter, report.kind, report.target, report.target_user,
                report.reason, report.note, report.snapshot, report.created_at,
                report.updated_at)
        self._committed()
        return _report(r)

    async def get_report(self, report_id: str) -> Report | None:
        rows = await self._fetch(f"{_REPORT_COLS} WHERE id=$1", report_id)
        return _report(rows[0]) if rows else None

    async def reports_by(self, user_id: UserId) -> list[Report]:
        rows = await self._fetch(f"{_REPORT_COLS} WHERE reporter=$1"
                                 " ORDER BY created_at DESC, id COLLATE \"C\"", user_id)
        return [_report(r) for r in rows]

    async def open_reports(self, offset: int, limit: int) -> list[Report]:
        rows = await self._fetch(f"{_REPORT_COLS} WHERE state='open'"
                                 " ORDER BY updated_at, id COLLATE \"C\" LIMIT $1 OFFSET $2",
                                 limit, offset)
        return [_report(r) for r in rows]

    async def resolve_reports(self, kind: str, target: str, resolution: str, ts: int) -> int:
        return _count(await self._exec(
            "UPDATE reports SET state='resolved', resolution=$3, updated_at=$4 WHERE kind=$1"
            " AND target=$2 AND state='open'", kind, target, resolution, ts))

    # --- privacy -------------------------------------------------------------------------

    async def get_consents(self, user_id: UserId) -> list[Consent]:
        rows = await self._fetch("SELECT name, value, updated_at FROM consents WHERE user_id=$1"
                                 " ORDER BY name COLLATE \"C\"", user_id)
        return [Consent(r[0], bool(r[1]), int(r[2])) for r in rows]

    async def set_consent(self, user_id: UserId, name: str, value: bool, ts: int) -> None:
        await self._exec("INSERT INTO consents(user_id, name, value, updated_at)"
                         " VALUES ($1,$2,$3,$4) ON CONFLICT(user_id, name) DO UPDATE SET"
                         " value=EXCLUDED.value, updated_at=EXCLUDED.updated_at",
                         user_id, name, value, ts)

    async def user_sessions(self, user_id: UserId) -> list[SessionRow]:
        rows = await self._fetch("SELECT token_hash, user_id, device, created_at, expires_at"
                                 " FROM sessions WHERE user_id=$1 ORDER BY created_at", user_id)
        return [SessionRow(bytes(r[0]), UserId(r[1]), r[2], r[3], r[4]) for r in rows]

    async def messages_by(self, user_id: UserId) -> list[Message]:
        rows = await self._fetch(f"{_MSG} WHERE sender=$1 ORDER BY conv_id COLLATE \"C\", seq",
                                 user_id)
        return [_message(r) for r in rows]

    async def posts_by(self, user_id: UserId) -> list[Post]:
        rows = await self._fetch(f"{_POST_COLS} WHERE p.author=$1"
                                 " ORDER BY p.ts DESC, p.id COLLATE \"C\" DESC", user_id)
        return [_post(r) for r in rows]

    async def delete_account(self, user_id: UserId) -> list[bytes]:
        """As :meth:`chatd.store.sqlite_social.SQLiteSocialMixin.delete_account`."""
        async with self._tx() as c:
            phone = await c.fetchval("SELECT phone FROM users WHERE id=$1 FOR UPDATE", user_id)
            if phone is None:
                return []
            rows = await c.fetch("SELECT token_hash FROM sessions WHERE user_id=$1", user_id)
            await c.execute("DELETE FROM sms_codes WHERE phone=$1", phone)
            await c.execute("UPDATE conversations SET closed=TRUE WHERE kind='direct' AND id IN"
                            " (SELECT conv_id FROM conv_members WHERE user_id=$1)", user_id)
            await c.execute("UPDATE conversations SET pair=REPLACE(pair, $1, $2)"
                            " WHERE pair LIKE $3", user_id, TOMBSTONE, like_pattern(user_id))
            await c.execute("UPDATE messages SET body='', sender=$1, cid=NULL, deleted=TRUE,"
                            " flagged=FALSE WHERE sender=$2", TOMBSTONE, user_id)
            await c.execute("DELETE FROM blocks WHERE blocked=$1", user_id)
            await c.execute("UPDATE reports SET state='resolved', resolution='account_deleted',"
                            " snapshot='', target_user=$1, target=CASE WHEN kind='user'"
                            " THEN $1 || ':' || id ELSE target END WHERE target_user=$2",
                            TOMBSTONE, user_id)
            await c.execute("UPDATE audit_log SET target=$1 WHERE target=$2", TOMBSTONE, user_id)
            await c.execute("UPDATE audit_log SET actor=$1 WHERE actor=$2", TOMBSTONE, user_id)
            await c.execute("UPDATE word_changes SET actor=$1 WHERE actor=$2", TOMBSTONE,
                            user_id)
            await c.execute("DELETE FROM users WHERE id=$1", user_id)
        return [bytes(r[0]) for r in rows]


def _count(status: str) -> int:
    """Rows touched, from a status string such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])


def _post(r: Any) -> Post:
    return Post(r[0], UserId(r[1]), r[2], int(r[3]), r[4], r[5], bool(r[6]), r[7])


def _report(r: Any) -> Report:
    return Report(r[0], UserId(r[1]), r[2], r[3], UserId(r[4]), r[5], r[6], r[7], int(r[8]),
                  int(r[9]), int(r[10]), r[11], r[12])


def _message(r: Any) -> Message:
    return Message(ConvId(r[0]), r[1], int(r[2]), UserId(r[3]), r[4], int(r[5]), bool(r[6]))
