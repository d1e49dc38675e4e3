"""The social side on SQLite: posts and feeds, search and search history, reports."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from chatd.store.base import FeedScope, Post, Report, User, UserId
from chatd.store.media import attachments_text
from chatd.store.sql import MIN_FULLTEXT, fts_phrase, prefix_pattern, searchable
from chatd.store.sqlite.engine import Engine
from chatd.store.sqlite.rows import POST_COLS, REPORT_COLS, load_user, to_post, to_report

__all__ = ["Social"]

# Neither side blocked the other, and the author is not banned right now.
_VISIBLE: Final = (" AND {col} NOT IN (SELECT blocked FROM blocks WHERE blocker=:v)"
                   " AND {col} NOT IN (SELECT blocker FROM blocks WHERE blocked=:v)"
                   " AND u.banned_until<=:now")


class Social(Engine):
    # --- posts ---------------------------------------------------------------------------

    async def create_post(self, post: Post) -> None:
        await self._run(lambda c: c.execute(
            "INSERT INTO posts(id, author, grp, body, city, ts, flagged, attachments)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (post.id, post.author, post.group, post.body, post.city, post.ts,
             int(post.flagged), attachments_text(post.attachments))))

    async def get_post(self, post_id: str) -> Post | None:
        def job(c: sqlite3.Connection) -> Post | None:
            r = c.execute(f"{POST_COLS} WHERE p.id=?", (post_id,)).fetchone()
            return to_post(r) if r else None
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
                f"{POST_COLS} WHERE {where} AND {cursor}{_VISIBLE.format(col='p.author')}"
                " ORDER BY p.ts DESC, p.id DESC LIMIT :lim",
                {"v": viewer, "g": group, "ts": ts, "pid": pid, "now": now,
                 "lim": limit}).fetchall()
            return [to_post(r) for r in rows]
        return await self._run(job)

    async def clear_post_locations(self, user_id: UserId) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE posts SET city=NULL WHERE author=?", (user_id,)))

    # --- search --------------------------------------------------------------------------

    async def search_users(self, viewer: UserId, text: str, tags: Sequence[str], offset: int,
                           limit: int, now: int) -> list[User]:
        """Users whose nickname or bio holds ``text`` (the FTS5 trigram index, ranked by
        bm25, the nickname weighing double), or, for 1-2 characters, whose nickname is or
        starts with it (exact first); and users of any of ``tags`` after those. Never the
        viewer, a blocked or blocking user or a banned one; punctuation alone finds nobody.
        Ties by nickname, then id."""
        def job(c: sqlite3.Connection) -> list[User]:
            params: dict[str, Any] = {"v": viewer, "now": now, "lim": limit, "off": offset}
            parts = []
            if searchable(text) and len(text) >= MIN_FULLTEXT:
                params["m"] = fts_phrase(text)
                parts.append("SELECT d.ref AS id, f.score FROM (SELECT rowid AS rid, rank AS score"
                             " FROM users_fts WHERE users_fts MATCH :m"
                             " AND rank MATCH 'bm25(2.0, 1.0)') f"
                             " JOIN fts_docs d ON d.rid=f.rid")
            elif searchable(text):
                params.update(q=text, pre=prefix_pattern(text))
                parts.append("SELECT id, CASE WHEN nickname=:q COLLATE NOCASE THEN -2.0"
                             " ELSE -1.0 END AS score FROM users"
                             " WHERE nickname LIKE :pre ESCAPE '\\'")
            if tags:
                marks = ",".join(f":t{i}" for i in range(len(tags)))
                params.update({f"t{i}": t for i, t in enumerate(tags)})
                parts.append("SELECT user_id AS id, 0.0 AS score FROM user_interests"
                             f" WHERE tag IN ({marks})")
            if not parts:
                return []
            rows = c.execute(
                "SELECT u.id FROM (SELECT id, MIN(score) AS score FROM"
                f" ({' UNION ALL '.join(parts)}) GROUP BY id) h JOIN users u ON u.id=h.id"
                f" WHERE u.id<>:v{_VISIBLE.format(col='u.id')}"
                " ORDER BY h.score, u.nickname, u.id LIMIT :lim OFFSET :off", params).fetchall()
            users = [load_user(c, "id", r[0]) for r in rows]
            return [u for u in users if u is not None]
        return await self._run(job)

    async def search_posts(self, viewer: UserId, text: str, offset: int, limit: int,
                           now: int) -> list[Post]:
        """Posts whose body holds ``text`` (3 characters at least: the trigram index), ranked
        by bm25, then newest first; visibility as :meth:`search_users`."""
        if not searchable(text) or len(text) < MIN_FULLTEXT:
            return []

        def job(c: sqlite3.Connection) -> list[Post]:
            rows = c.execute(
                f"{POST_COLS} JOIN (SELECT d.ref AS id, f.score FROM (SELECT rowid AS rid,"
                " rank AS score FROM posts_fts WHERE posts_fts MATCH :m) f"
                " JOIN fts_docs d ON d.rid=f.rid) h"
                f" ON h.id=p.id WHERE 1=1{_VISIBLE.format(col='p.author')}"
                " ORDER BY h.score, p.ts DESC, p.id DESC LIMIT :lim OFFSET :off",
                {"v": viewer, "now": now, "m": fts_phrase(text), "lim": limit,
                 "off": offset}).fetchall()
            return [to_post(r) for r in rows]
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
            r = c.execute(f"{REPORT_COLS} WHERE reporter=? AND kind=? AND target=?",
                          (report.reporter, report.kind, report.target)).fetchone()
            return to_report(r)
        return await self._run(job)

    async def get_report(self, report_id: str) -> Report | None:
        def job(c: sqlite3.Connection) -> Report | None:
            r = c.execute(f"{REPORT_COLS} WHERE id=?", (report_id,)).fetchone()
            return to_report(r) if r else None
        return await self._run(job)

    async def reports_by(self, user_id: UserId) -> list[Report]:
        """Newest first."""
        def job(c: sqlite3.Connection) -> list[Report]:
            rows = c.execute(f"{REPORT_COLS} WHERE reporter=? ORDER BY created_at DESC, id",
                             (user_id,)).fetchall()
            return [to_report(r) for r in rows]
        return await self._run(job)

    async def open_reports(self, offset: int, limit: int) -> list[Report]:
        """Open reports, oldest change first."""
        def job(c: sqlite3.Connection) -> list[Report]:
            rows = c.execute(f"{REPORT_COLS} WHERE state='open' ORDER BY updated_at, id"
                             " LIMIT ? OFFSET ?", (limit, offset)).fetchall()
            return [to_report(r) for r in rows]
        return await self._run(job)

    async def resolve_reports(self, kind: str, target: str, resolution: str, ts: int) -> int:
        """Resolve every open report about one target; how many were open."""
        return len(await self.resolve_reports_for(kind, target, resolution, ts))

    async def resolve_reports_for(self, kind: str, target: str, resolution: str,
                                  ts: int) -> list[tuple[str, UserId]]:
        def job(c: sqlite3.Connection) -> list[tuple[str, UserId]]:
            rows = c.execute(
                "UPDATE reports SET state='resolved', resolution=?, updated_at=? WHERE kind=?"
                " AND target=? AND state='open' RETURNING id, reporter",
                (resolution, ts, kind, target)).fetchall()
            return sorted((r[0], UserId(r[1])) for r in rows)
        return await self._run(job)
