"""SQLite rows to records, and the column lists the domain modules select them with."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from chatd.store.base import Post, Report, User, UserId
from chatd.store.media import parse_attachments

__all__ = ["POST_COLS", "REPORT_COLS", "load_user", "to_post",
           "to_report"]

POST_COLS: Final = ("SELECT p.id, p.author, p.body, p.ts, p.grp, p.city, p.flagged, u.nickname,"
                    " p.attachments FROM posts p JOIN users u ON u.id=p.author")
REPORT_COLS: Final = ("SELECT id, reporter, kind, target, target_user, reason, note, snapshot,"
                      " created_at, updated_at, count, state, resolution FROM reports")


def load_user(c: sqlite3.Connection, column: str, value: str) -> User | None:
    r = c.execute("SELECT id, phone, pw_hash, birthdate, gender, nickname, bio, role, created_at,"
                  f" banned_until, muted_until, verification, avatar FROM users WHERE {column}=?",
                  (value,)).fetchone()
    if r is None:
        return None
    tags = tuple(t[0] for t in c.execute(
        "SELECT tag FROM user_interests WHERE user_id=? ORDER BY pos", (r[0],)))
    return User(UserId(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], tags, r[9], r[10],
                r[11], r[12])



def to_post(r: Sequence[Any]) -> Post:
    return Post(r[0], UserId(r[1]), r[2], r[3], r[4], r[5], bool(r[6]), r[7],
                parse_attachments(r[8]))


def to_report(r: Sequence[Any]) -> Report:
    return Report(r[0], UserId(r[1]), r[2], r[3], UserId(r[4]), r[5], r[6], r[7], r[8], r[9],
                  r[10], r[11], r[12])
