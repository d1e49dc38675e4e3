"""SQLite side of the issue-6 store methods (moderation, posts, search, reports, privacy).

A mixin of :class:`chatd.store.sqlite.SQLiteStore`: every method runs on the store's worker
thread through ``_run`` (group commit included). Semantics are the contract's
(:mod:`chatd.store.base`); the PostgreSQL twin is :mod:`chatd.store.pg_social`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar, cast

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

__all__ = ["SQLiteSocialMixin", "like_pattern"]

T = TypeVar("T")

_POST_COLS: Final = ("SELECT p.id, p.author, p.body, p.ts, p.grp, p.city, p.flagged, u.nickname"
                     " FROM posts p JOIN users u ON u.id=p.author")
_REPORT_COLS: Final = ("SELECT id, reporter, kind, target, target_user, reason, note, snapshot,"
                       " created_at, updated_at, count, state, resolution FROM reports")
# Neither side blocked the other, and the author is not banned right now.
_VISIBLE: Final = (" AND {col} NOT IN (SELECT blocked FROM blocks WHERE blocker=:v)"
                   " AND {col} NOT IN (SELECT blocker FROM blocks WHERE blocked=:v)"
                   " AND u.banned_until<=:now")


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with ``\\`` escaping the wildcards."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SQLiteSocialMixin:
    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # provided by SQLiteStore

    # --- moderation ----------------------------------------------------------------------

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
            r = c.execute("SELECT conv_id, id, seq, sender, body, ts, deleted FROM messages"
                          " WHERE id=?", (msg_id,)).fetchone()
            return _message(r) if r else None
        return await self._run(job)

    async def delete_message(self, msg_id: str) -> Message | None:
        """Blank the body (the seq stays); the message as it is now, None if unknown."""
        def job(c: sqlite3.Connection) -> Message | None:
            c.execute("UPDATE messages SET body='', deleted=1, flagged=0 WHERE id=?", (msg_id,))
            r = c.execute("SELECT conv_id, id, seq, sender, body, ts, deleted FROM messages"
                          " WHERE id=?", (msg_id,)).fetchone()
            return _message(r) if r else None
        return await self._run(job)

    # --- posts ---------------------------------------------------------------------------

    async def create_post(self, post: Post) -> None:
        await self._run(lambda c: c.execute(
            "INSERT INTO posts(id, author, grp, body, city, ts, flagged) VALUES (?,?,?,?,?,?,?)",
            (post.id, post.author, post.group, post.body, post.city, post.ts,
             int(post.flagged))))

    async def get_post(self, post_id: str) -> Post | None:
        def job(c: sqlite3.Connection) -> Post | None:
            r = c.execute(f"{_POST_COLS} WHERE p.id=?", (post_id,)).fetchone()
            return _post(r) if r else None
        return await self._run(job)

    async def delete_post(self, post_id: str) -> bool:
        return await self._run(lambda c: c.execute(
            "DELETE FROM posts WHERE id=?", (post_id,)).rowcount == 1)

    async def feed(self, viewer: UserId, scope: FeedScope, group: str | None,
                   before: tuple[int, str] | None, limit: int, now: int) -> list[Post]:
        """Newest first, strictly older than the ``(ts, id)`` cursor ``before``."""
        def job(c: sqlite3.Connection) -> list[Post]:
            if scope == "group":
                where = "p.grp=:g"
            elif scope == "mine":
                where = "p.author=:v"
            else:
                where = ("(p.author=:v OR p.author IN (SELECT o.user_id FROM conv_members m"
                         " JOIN conversations cv ON cv.id=m.conv_id AND cv.kind='direct'"
                         " AND cv.closed=0 JOIN conv_members o ON o.conv_id=m.conv_id"
                         " AND o.user_id<>m.user_id AND o.left_at IS NULL"
                         " WHERE m.user_id=:v AND m.left_at IS NULL))")
            ts, pid = before if before is not None else (2**62, "")
            cursor = "(p.ts<:ts OR (p.ts=:ts AND p.id<:pid))" if before else "p.ts<:ts"
            rows = c.execute(
                f"{_POST_COLS} WHERE {where} AND {cursor}{_VISIBLE.format(col='p.author')}"
                " ORDER BY p.ts DESC, p.id DESC LIMIT :lim",
                {"v": viewer, "g": group, "ts": ts, "pid": pid, "now": now,
                 "lim": limit}).fetchall()
            return [_post(r) for r in rows]
        return await self._run(job)

    async def clear_post_locations(self, user_id: UserId) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE posts SET city=NULL WHERE author=?", (user_id,)))

    # --- search --------------------------------------------------------------------------

    async def search_users(self, viewer: UserId, text: str, tags: Sequence[str], offset: int,
                           limit: int, now: int) -> list[User]:
        """By nickname (substring) or any of ``tags``; never the viewer, a blocked or blocking
        user or a banned one. Ordered by nickname, then id."""
        from chatd.store.sqlite import _load_user

        def job(c: sqlite3.Connection) -> list[User]:
            params: dict[str, Any] = {"v": viewer, "now": now, "pat": like_pattern(text),
                                      "lim": limit, "off": offset}
            conds = ["u.nickname LIKE :pat ESCAPE '\\'"] if text else []
            if tags:
                marks = ",".join(f":t{i}" for i in range(len(tags)))
                params.update({f"t{i}": t for i, t in enumerate(tags)})
                conds.append(f"u.id IN (SELECT user_id FROM user_interests WHERE tag IN ({marks}))")
            if not conds:
                return []
            rows = c.execute(
                f"SELECT u.id FROM users u WHERE u.id<>:v AND ({' OR '.join(conds)})"
                f"{_VISIBLE.format(col='u.id')} ORDER BY u.nickname, u.id"
                " LIMIT :lim OFFSET :off", params).fetchall()
            users = [_load_user(c, "id", r[0]) for r in rows]
            return [u for u in users if u is not None]
        return await self._run(job)

    async def search_posts(self, viewer: UserId, text: str, offset: int, limit: int,
                           now: int) -> list[Post]:
        def job(c: sqlite3.Connection) -> list[Post]:
            rows = c.execute(
                f"{_POST_COLS} WHERE p.body LIKE :pat ESCAPE '\\'"
                f"{_VISIBLE.format(col='p.author')} ORDER BY p.ts DESC, p.id DESC"
                " LIMIT :lim OFFSET :off",
                {"v": viewer, "now": now, "pat": like_pattern(text), "lim": limit,
                 "off": offset}).fetchall()
            return [_post(r) for r in rows]
        return await self._run(job)

    async def add_search(self, user_id: UserId, query: str, ts: int, keep: int) -> None:
        """Record a query (a repeat moves to the top); only the newest ``keep`` are kept."""
        def job(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM search_history WHERE user_id=? AND query=?", (user_id, query))
            c.execute("INSERT INTO search_history(user_id, query, ts) VALUES (?,?,?)",
                      (user_id, query, ts))
            c.execute("DELETE FROM search_history WHERE user_id=? AND id NOT IN (SELECT id FROM"
                      " search_history WHERE user_id=? ORDER BY id DESC LIMIT ?)",
                      (user_id, user_id, keep))
        await self._run(job)

    async def search_history(self, user_id: UserId, limit: int) -> list[tuple[str, int]]:
        """Newest first."""
        def job(c: sqlite3.Connection) -> list[tuple[str, int]]:
            rows = c.execute("SELECT query, ts FROM search_history WHERE user_id=?"
                             " ORDER BY id DESC LIMIT ?", (user_id, limit)).fetchall()
            return [(r[0], r[1]) for r in rows]
        return await self._run(job)

    async def clear_search_history(self, user_id: UserId) -> None:
        await self._run(lambda c: c.execute("DELETE FROM search_history WHERE user_id=?",
                                            (user_id,)))

    # --- reports -------------------------------------------------------------------------

    async def add_report(self, report: Report) -> Report:
        """Store a report; a repeat of (reporter, kind, target) merges into the first one:
        count + 1, latest reason (and note when given), reopened if it was resolved."""
        def job(c: sqlite3.Connection) -> Report:
            c.execute(
                "INSERT INTO reports(id, reporter, kind, target, target_user, reason, note,"
                " snapshot, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(reporter, kind, target) DO UPDATE SET count=count+1,"
                " reason=excluded.reason, note=CASE WHEN excluded.note<>'' THEN excluded.note"
                " ELSE note END, updated_at=excluded.updated_at, state='open', resolution=NULL",
                (report.id, report.reporter, report.kind, report.target, report.target_user,
                 report.reason, report.note, report.snapshot, report.created_at,
                 report.updated_at))
            r = c.execute(f"{_REPORT_COLS} WHERE reporter=? AND kind=? AND target=?",
                          (report.reporter, report.kind, report.target)).fetchone()
            return _report(r)
        return await self._run(job)

    async def get_report(self, report_id: str) -> Report | None:
        def job(c: sqlite3.Connection) -> Report | None:
            r = c.execute(f"{_REPORT_COLS} WHERE id=?", (report_id,)).fetchone()
            return _report(r) if r else None
        return await self._run(job)

    async def reports_by(self, user_id: UserId) -> list[Report]:
        """Newest first."""
        def job(c: sqlite3.Connection) -> list[Report]:
            rows = c.execute(f"{_REPORT_COLS} WHERE reporter=? ORDER BY created_at DESC, id",
                             (user_id,)).fetchall()
            return [_report(r) for r in rows]
        return await self._run(job)

    async def open_reports(self, offset: int, limit: int) -> list[Report]:
        """Open reports, oldest change first."""
        def job(c: sqlite3.Connection) -> list[Report]:
            rows = c.execute(f"{_REPORT_COLS} WHERE state='open' ORDER BY updated_at, id"
                             " LIMIT ? OFFSET ?", (limit, offset)).fetchall()
            return [_report(r) for r in rows]
        return await self._run(job)

    async def resolve_reports(self, kind: str, target: str, resolution: str, ts: int) -> int:
        """Resolve every open report about one target; how many were open."""
        return await self._run(lambda c: c.execute(
            "UPDATE reports SET state='resolved', resolution=?, updated_at=? WHERE kind=?"
            " AND target=? AND state='open'", (resolution, ts, kind, target)).rowcount)

    # --- privacy -------------------------------------------------------------------------

    async def get_consents(self, user_id: UserId) -> list[Consent]:
        """The consents the user set (the defaults live in the service), by name."""
        def job(c: sqlite3.Connection) -> list[Consent]:
            rows = c.execute("SELECT name, value, updated_at FROM consents WHERE user_id=?"
                             " ORDER BY name", (user_id,)).fetchall()
            return [Consent(r[0], bool(r[1]), r[2]) for r in rows]
        return await self._run(job)

    async def set_consent(self, user_id: UserId, name: str, value: bool, ts: int) -> None:
        await self._run(lambda c: c.execute(
            "INSERT INTO consents(user_id, name, value, updated_at) VALUES (?,?,?,?)"
            " ON CONFLICT(user_id, name) DO UPDATE SET value=excluded.value,"
            " updated_at=excluded.updated_at", (user_id, name, int(value), ts)))

    async def user_sessions(self, user_id: UserId) -> list[SessionRow]:
        def job(c: sqlite3.Connection) -> list[SessionRow]:
            rows = c.execute("SELECT token_hash, user_id, device, created_at, expires_at"
                             " FROM sessions WHERE user_id=? ORDER BY created_at",
                             (user_id,)).fetchall()
            return [SessionRow(bytes(r[0]), UserId(r[1]), r[2], r[3], r[4]) for r in rows]
        return await self._run(job)

    async def messages_by(self, user_id: UserId) -> list[Message]:
        """Every message the user sent, by conversation and seq."""
        def job(c: sqlite3.Connection) -> list[Message]:
            rows = c.execute("SELECT conv_id, id, seq, sender, body, ts, deleted FROM messages"
                             " WHERE sender=? ORDER BY conv_id, seq", (user_id,)).fetchall()
            return [_message(r) for r in rows]
        return await self._run(job)

    async def posts_by(self, user_id: UserId) -> list[Post]:
        def job(c: sqlite3.Connection) -> list[Post]:
            rows = c.execute(f"{_POST_COLS} WHERE p.author=? ORDER BY p.ts DESC, p.id DESC",
                             (user_id,)).fetchall()
            return [_post(r) for r in rows]
        return await self._run(job)

    async def delete_account(self, user_id: UserId) -> list[bytes]:
        """Erase the account in one transaction; return the ended sessions' token hashes.

        Deleted: the user row and, by cascade, interests, sessions, memberships, posts,
        search history, consents and reports made; blocks either way; SMS codes of the phone.
        Anonymised (so every conversation keeps gap-free seqs): messages sent, as body "" and
        sender :data:`TOMBSTONE`. 1:1 conversations with them are closed. Reports about them
        are resolved ``account_deleted`` with the snapshot erased; in audit rows and word
        changes their id becomes the tombstone.
        """
        def job(c: sqlite3.Connection) -> list[bytes]:
            r = c.execute("SELECT phone FROM users WHERE id=?", (user_id,)).fetchone()
            if r is None:
                return []
            hashes = [bytes(h[0]) for h in c.execute(
                "SELECT token_hash FROM sessions WHERE user_id=?", (user_id,))]
            c.execute("DELETE FROM sms_codes WHERE phone=?", (r[0],))
            c.execute("UPDATE conversations SET closed=1 WHERE kind='direct' AND id IN"
                      " (SELECT conv_id FROM conv_members WHERE user_id=?)", (user_id,))
            c.execute("UPDATE conversations SET pair=REPLACE(pair, ?, ?) WHERE pair LIKE ?",
                      (user_id, TOMBSTONE, like_pattern(user_id)))
            c.execute("UPDATE messages SET body='', sender=?, cid=NULL, deleted=1, flagged=0"
                      " WHERE sender=?", (TOMBSTONE, user_id))
            c.execute("DELETE FROM blocks WHERE blocked=?", (user_id,))
            c.execute("UPDATE reports SET state='resolved', resolution='account_deleted',"
                      " snapshot='', target_user=?, target=CASE WHEN kind='user'"
                      " THEN ? || ':' || id ELSE target END WHERE target_user=?",
                      (TOMBSTONE, TOMBSTONE, user_id))
            c.execute("UPDATE audit_log SET target=? WHERE target=?", (TOMBSTONE, user_id))
            c.execute("UPDATE audit_log SET actor=? WHERE actor=?", (TOMBSTONE, user_id))
            c.execute("UPDATE word_changes SET actor=? WHERE actor=?", (TOMBSTONE, user_id))
            c.execute("DELETE FROM users WHERE id=?", (user_id,))
            return hashes
        return await self._run(job)


def _post(r: Sequence[Any]) -> Post:
    return Post(r[0], UserId(r[1]), r[2], r[3], r[4], r[5], bool(r[6]), r[7])


def _report(r: Sequence[Any]) -> Report:
    return Report(r[0], UserId(r[1]), r[2], r[3], UserId(r[4]), r[5], r[6], r[7], r[8], r[9],
                  r[10], r[11], r[12])


def _message(r: Sequence[Any]) -> Message:
    return Message(ConvId(r[0]), r[1], r[2], UserId(r[3]), r[4], r[5], bool(r[6]))
