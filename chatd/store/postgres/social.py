"""The social side on PostgreSQL: posts and feeds, search and search history, reports."""

from __future__ import annotations

from collections.abc import Sequence

from chatd.store.base import FeedScope, Post, Report, User, UserId
from chatd.store.media import attachments_text
from chatd.store.postgres.engine import Engine
from chatd.store.postgres.rows import (
    POST_COLS,
    REPORT_COLS,
    USER_COLS,
    rowcount,
    to_post,
    to_report,
    to_user,
)
from chatd.store.sql import MIN_FULLTEXT, like_pattern, prefix_pattern, searchable

__all__ = ["Social"]


def _visible(col: str, viewer: str, now: str) -> str:
    """Neither side blocked the other, and the author is not banned right now."""
    return (f" AND {col} NOT IN (SELECT blocked FROM blocks WHERE blocker={viewer})"
            f" AND {col} NOT IN (SELECT blocker FROM blocks WHERE blocked={viewer})"
            f" AND u.banned_until<={now}")


class Social(Engine):
    # --- posts ---------------------------------------------------------------------------

    async def create_post(self, post: Post) -> None:
        await self._exec("INSERT INTO posts(id, author, grp, body, city, ts, flagged,"
                         " attachments) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)", post.id, post.author,
                         post.group, post.body, post.city, post.ts, post.flagged,
                         attachments_text(post.attachments))

    async def get_post(self, post_id: str) -> Post | None:
        rows = await self._fetch(f"{POST_COLS} WHERE p.id=$1", post_id)
        return to_post(rows[0]) if rows else None

    async def delete_post(self, post_id: str) -> bool:
        return rowcount(await self._exec("DELETE FROM posts WHERE id=$1", post_id)) == 1

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
            f"{POST_COLS} WHERE {where} AND {cursor}{_visible('p.author', '$1', '$5')}"
            " ORDER BY p.ts DESC, p.id COLLATE \"C\" DESC LIMIT $6",
            viewer, group, ts, pid, now, limit)
        return [to_post(r) for r in rows]

    async def clear_post_locations(self, user_id: UserId) -> None:
        await self._exec("UPDATE posts SET city=NULL WHERE author=$1", user_id)

    # --- search --------------------------------------------------------------------------

    async def search_users(self, viewer: UserId, text: str, tags: Sequence[str], offset: int,
                           limit: int, now: int) -> list[User]:
        """As SQLite's: the pg_trgm GIN indexes answer ``ILIKE`` of 3+ characters, ranked by
        word similarity (the nickname weighing double); 1-2 characters: a nickname prefix."""
        parts = []
        if searchable(text) and len(text) >= MIN_FULLTEXT:
            parts.append("SELECT id, -GREATEST(2 * word_similarity($2, nickname),"
                         " word_similarity($2, bio))::float8 AS score FROM users"
                         " WHERE nickname ILIKE $3 OR bio ILIKE $3")
            pattern = like_pattern(text)
        elif searchable(text):
            parts.append("SELECT id, (CASE WHEN lower(nickname)=lower($2) THEN -2 ELSE -1"
                         " END)::float8 AS score FROM users WHERE lower(nickname) LIKE $3")
            pattern = prefix_pattern(text).lower()
        else:
            pattern = ""
        if tags:
            parts.append("SELECT user_id AS id, 0::float8 AS score FROM user_interests"
                         " WHERE tag=ANY($4::text[])")
        if not parts:
            return []
        rows = await self._fetch(
            f"WITH h AS (SELECT id, MIN(score) AS score FROM ({' UNION ALL '.join(parts)}) x"
            f" GROUP BY id) {USER_COLS} JOIN h ON h.id=u.id WHERE u.id<>$1"
            # Every parameter is typed even where unused: asyncpg must know their types.
            " AND ($2::text IS NOT NULL AND $3::text IS NOT NULL AND $4::text[] IS NOT NULL)"
            f"{_visible('u.id', '$1', '$5')} ORDER BY h.score, u.nickname COLLATE \"C\","
            " u.id COLLATE \"C\" LIMIT $6 OFFSET $7",
            viewer, text, pattern, list(tags), now, limit, offset)
        return [to_user(r) for r in rows]

    async def search_posts(self, viewer: UserId, text: str, offset: int, limit: int,
                           now: int) -> list[Post]:
        """As SQLite's: 3 characters at least, ranked by word similarity, then newest."""
        if not searchable(text) or len(text) < MIN_FULLTEXT:
            return []
        rows = await self._fetch(
            f"{POST_COLS} WHERE p.body ILIKE $2{_visible('p.author', '$1', '$3')}"
            " ORDER BY word_similarity($6, p.body) DESC, p.ts DESC, p.id COLLATE \"C\" DESC"
            " LIMIT $4 OFFSET $5",
            viewer, like_pattern(text), now, limit, offset, text)
        return [to_post(r) for r in rows]

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
        return to_report(r)

    async def get_report(self, report_id: str) -> Report | None:
        rows = await self._fetch(f"{REPORT_COLS} WHERE id=$1", report_id)
        return to_report(rows[0]) if rows else None

    async def reports_by(self, user_id: UserId) -> list[Report]:
        rows = await self._fetch(f"{REPORT_COLS} WHERE reporter=$1"
                                 " ORDER BY created_at DESC, id COLLATE \"C\"", user_id)
        return [to_report(r) for r in rows]

    async def open_reports(self, offset: int, limit: int) -> list[Report]:
        rows = await self._fetch(f"{REPORT_COLS} WHERE state='open'"
                                 " ORDER BY updated_at, id COLLATE \"C\" LIMIT $1 OFFSET $2",
                                 limit, offset)
        return [to_report(r) for r in rows]

    async def resolve_reports(self, kind: str, target: str, resolution: str, ts: int) -> int:
        return len(await self.resolve_reports_for(kind, target, resolution, ts))

    async def resolve_reports_for(self, kind: str, target: str, resolution: str,
                                  ts: int) -> list[tuple[str, UserId]]:
        async with self._conn() as c:
            rows = await c.fetch(
                "UPDATE reports SET state='resolved', resolution=$3, updated_at=$4"
                " WHERE kind=$1 AND target=$2 AND state='open' RETURNING id, reporter",
                kind, target, resolution, ts)
        self._committed()
        return sorted((r[0], UserId(r[1])) for r in rows)
