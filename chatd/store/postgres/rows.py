"""PostgreSQL rows to records, and the column lists the domain modules select them with."""

from __future__ import annotations

from typing import Any, Final

from chatd.store.base import Post, Report, User, UserId
from chatd.store.media import parse_attachments

__all__ = ["POST_COLS", "REPORT_COLS", "USER_COLS", "load_user", "rowcount",
           "to_post", "to_report", "to_user"]

USER_COLS: Final = ("SELECT u.id, u.phone, u.pw_hash, u.birthdate, u.gender, u.nickname, u.bio,"
                    " u.role, u.created_at, u.banned_until, u.muted_until, u.verification,"
                    " u.avatar, ARRAY(SELECT i.tag FROM user_interests i WHERE i.user_id=u.id"
                    " ORDER BY i.pos) AS tags FROM users u")
POST_COLS: Final = ("SELECT p.id, p.author, p.body, p.ts, p.grp, p.city, p.flagged, u.nickname,"
                    " p.attachments FROM posts p JOIN users u ON u.id=p.author")
REPORT_COLS: Final = ("SELECT id, reporter, kind, target, target_user, reason, note, snapshot,"
                      " created_at, updated_at, count, state, resolution FROM reports")


async def load_user(c: Any, column: str, value: str) -> User | None:
    assert column in ("id", "phone")  # never user input: the column name is interpolated
    r = await c.fetchrow(f"{USER_COLS} WHERE u.{column}=$1", value)
    if r is None:
        return None
    return to_user(r)


def to_user(r: Any) -> User:
    return User(UserId(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], tuple(r[13]),
                r[9], r[10], r[11], r[12])


def rowcount(status: str) -> int:
    """Rows touched, from a status string such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])


def to_post(r: Any) -> Post:
    return Post(r[0], UserId(r[1]), r[2], int(r[3]), r[4], r[5], bool(r[6]), r[7],
                parse_attachments(r[8]))


def to_report(r: Any) -> Report:
    return Report(r[0], UserId(r[1]), r[2], r[3], UserId(r[4]), r[5], r[6], r[7], int(r[8]),
                  int(r[9]), int(r[10]), r[11], r[12])

