"""Accounts on SQLite: users and their interests, sessions, SMS codes, contacts."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from chatd.store.base import CodeTry, ConvId, SessionRow, SmsCodeRow, StoreError, User, UserId
from chatd.store.sqlite.engine import Engine, now_ms
from chatd.store.sqlite.rows import load_user

__all__ = ["Accounts"]

_SESSION_COLS: Final = "token_hash, user_id, device, created_at, expires_at, last_active"


def _session(r: Sequence[Any]) -> SessionRow:
    return SessionRow(bytes(r[0]), UserId(r[1]), r[2], r[3], r[4], r[5])


class Accounts(Engine):
    # --- users ---------------------------------------------------------------------------

    async def create_user(self, user: User, group_convs: Sequence[ConvId]) -> None:
        def job(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO users(id, phone, pw_hash, birthdate, gender, nickname, bio, role,"
                " created_at, verification) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (user.id, user.phone, user.pw_hash, user.birthdate, user.gender, user.nickname,
                 user.bio, user.role, user.created_at, user.verification))
            _set_interests(c, user.id, user.interests, group_convs, user.created_at)
        await self._run(job)

    async def get_user(self, user_id: UserId) -> User | None:
        return await self._run(lambda c: load_user(c, "id", user_id))

    async def get_user_by_phone(self, phone: str) -> User | None:
        return await self._run(lambda c: load_user(c, "phone", phone))

    async def set_password(self, user_id: UserId, pw_hash: str) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE users SET pw_hash=? WHERE id=?", (pw_hash, user_id)))

    async def set_phone(self, user_id: UserId, phone: str) -> None:
        await self._run(lambda c: c.execute("UPDATE users SET phone=? WHERE id=?",
                                            (phone, user_id)))

    async def update_profile(self, user_id: UserId, nickname: str | None, bio: str | None,
                             interests: Sequence[str] | None,
                             group_convs: Sequence[ConvId] | None) -> User:
        def job(c: sqlite3.Connection) -> User:
            if nickname is not None:
                c.execute("UPDATE users SET nickname=? WHERE id=?", (nickname, user_id))
            if bio is not None:
                c.execute("UPDATE users SET bio=? WHERE id=?", (bio, user_id))
            if interests is not None and group_convs is not None:
                now = now_ms()
                _set_interests(c, user_id, interests, group_convs, now)
            user = load_user(c, "id", user_id)
            if user is None:
                raise StoreError("no such user")
            return user
        return await self._run(job)

    async def get_users(self, user_ids: Sequence[UserId]) -> dict[UserId, User]:
        def job(c: sqlite3.Connection) -> dict[UserId, User]:
            found = {}
            for user_id in user_ids:
                user = load_user(c, "id", user_id)
                if user is not None:
                    found[user.id] = user
            return found
        return await self._run(job)

    # --- sessions ------------------------------------------------------------------------

    async def create_session(self, row: SessionRow) -> None:
        await self._run(lambda c: c.execute(
            "INSERT INTO sessions(token_hash, user_id, device, created_at, expires_at,"
            " last_active) VALUES (?,?,?,?,?,?)",
            (row.token_hash, row.user_id, row.device, row.created_at, row.expires_at,
             row.last_active)))

    async def get_session(self, token_hash: bytes, now: int) -> SessionRow | None:
        def job(c: sqlite3.Connection) -> SessionRow | None:
            r = c.execute(f"SELECT {_SESSION_COLS} FROM sessions"
                          " WHERE token_hash=? AND expires_at>?", (token_hash, now)).fetchone()
            return _session(r) if r else None
        return await self._run(job)

    async def live_sessions(self, user_id: UserId, now: int, limit: int) -> list[SessionRow]:
        def job(c: sqlite3.Connection) -> list[SessionRow]:
            rows = c.execute(f"SELECT {_SESSION_COLS} FROM sessions"
                             " WHERE user_id=? AND expires_at>?"
                             " ORDER BY last_active DESC, created_at DESC, token_hash LIMIT ?",
                             (user_id, now, limit)).fetchall()
            return [_session(r) for r in rows]
        return await self._run(job)

    async def touch_session(self, token_hash: bytes, ts: int) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE sessions SET last_active=? WHERE token_hash=? AND last_active<?",
            (ts, token_hash, ts)))

    async def delete_user_session(self, user_id: UserId, token_hash: bytes) -> bool:
        def job(c: sqlite3.Connection) -> bool:
            cur = c.execute("DELETE FROM sessions WHERE token_hash=? AND user_id=?",
                            (token_hash, user_id))
            return cur.rowcount == 1
        return await self._run(job)

    async def delete_session(self, token_hash: bytes) -> None:
        await self._run(lambda c: c.execute("DELETE FROM sessions WHERE token_hash=?",
                                            (token_hash,)))

    async def delete_user_sessions(self, user_id: UserId,
                                   keep: bytes | None = None) -> list[bytes]:
        def job(c: sqlite3.Connection) -> list[bytes]:
            rows = c.execute("SELECT token_hash FROM sessions WHERE user_id=?",
                             (user_id,)).fetchall()
            gone = [bytes(r[0]) for r in rows if bytes(r[0]) != keep]
            c.executemany("DELETE FROM sessions WHERE token_hash=?", [(h,) for h in gone])
            return gone
        return await self._run(job)

    # --- contacts ------------------------------------------------------------------------

    async def contacts_of(self, user_id: UserId) -> set[UserId]:
        """The other member of every open 1:1 of the user (both still members), unless
        either blocked the other: who hears of the user's presence. One query."""
        return await self._run(lambda c: {UserId(r[0]) for r in c.execute(
            "SELECT DISTINCT o.user_id FROM conv_members m"
            " JOIN conversations cv ON cv.id=m.conv_id AND cv.kind='direct' AND cv.closed=0"
            " JOIN conv_members o ON o.conv_id=m.conv_id AND o.user_id<>m.user_id"
            " AND o.left_at IS NULL"
            " WHERE m.user_id=:u AND m.left_at IS NULL"
            " AND o.user_id NOT IN (SELECT blocked FROM blocks WHERE blocker=:u)"
            " AND o.user_id NOT IN (SELECT blocker FROM blocks WHERE blocked=:u)",
            {"u": user_id})})

    # --- SMS codes -----------------------------------------------------------------------

    async def add_sms_code(self, phone: str, purpose: str, code_hash: bytes, created_at: int,
                           expires_at: int) -> None:
        def job(c: sqlite3.Connection) -> None:
            # A new code replaces any older one of the same purpose.
            c.execute("UPDATE sms_codes SET used=1 WHERE phone=? AND purpose=? AND used=0",
                      (phone, purpose))
            c.execute("INSERT INTO sms_codes(phone, purpose, code_hash, created_at, expires_at)"
                      " VALUES (?,?,?,?,?)", (phone, purpose, code_hash, created_at, expires_at))
        await self._run(job)

    async def latest_sms_code(self, phone: str, purpose: str) -> SmsCodeRow | None:
        def job(c: sqlite3.Connection) -> SmsCodeRow | None:
            r = c.execute("SELECT id, phone, purpose, code_hash, created_at, expires_at, attempts,"
                          " used FROM sms_codes WHERE phone=? AND purpose=?"
                          " ORDER BY id DESC LIMIT 1", (phone, purpose)).fetchone()
            return SmsCodeRow(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6], bool(r[7])) \
                if r else None
        return await self._run(job)

    async def sms_sends_since(self, phone: str, since: int) -> list[int]:
        def job(c: sqlite3.Connection) -> list[int]:
            rows = c.execute("SELECT created_at FROM sms_codes WHERE phone=? AND created_at>=?"
                             " ORDER BY created_at", (phone, since)).fetchall()
            return [r[0] for r in rows]
        return await self._run(job)

    async def sms_total_since(self, since: int) -> int:
        """Codes sent to any phone since then (the deployment-wide SMS cap)."""
        return await self._run(lambda c: int(c.execute(
            "SELECT count(*) FROM sms_codes WHERE created_at>=?", (since,)).fetchone()[0]))

    async def sms_code_failed(self, code_id: int) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE sms_codes SET attempts=attempts+1 WHERE id=?", (code_id,)))

    async def sms_code_used(self, code_id: int) -> bool:
        """Mark a code used; False when it already was (a concurrent use won)."""
        def job(c: sqlite3.Connection) -> bool:
            cur = c.execute("UPDATE sms_codes SET used=1 WHERE id=? AND used=0", (code_id,))
            return cur.rowcount == 1
        return await self._run(job)

    async def try_sms_code(self, phone: str, purpose: str, code_hash: bytes, now: int,
                           max_attempts: int) -> CodeTry:
        # One conditional UPDATE: compared, counted and consumed in one statement, so no two
        # tries (in this process or another one on the same file) see the same attempt count.
        def job(c: sqlite3.Connection) -> CodeTry:
            r = c.execute(
                "UPDATE sms_codes SET attempts=attempts+(code_hash<>?), used=(code_hash=?)"
                " WHERE id=(SELECT id FROM sms_codes WHERE phone=? AND purpose=?"
                " ORDER BY id DESC LIMIT 1) AND used=0 AND expires_at>? AND attempts<?"
                " RETURNING used", (code_hash, code_hash, phone, purpose, now, max_attempts),
            ).fetchone()
            if r is None:
                return "burnt"
            return "ok" if r[0] else "wrong"
        return await self._run(job)


def _set_interests(c: sqlite3.Connection, user_id: str, tags: Sequence[str],
                   group_convs: Sequence[ConvId], now: int) -> None:
    c.execute("DELETE FROM user_interests WHERE user_id=?", (user_id,))
    c.executemany("INSERT INTO user_interests(user_id, tag, pos) VALUES (?,?,?)",
                  [(user_id, t, i) for i, t in enumerate(tags)])
    c.executemany("INSERT OR IGNORE INTO conversations(id, kind, created_at) VALUES (?,?,?)",
                  [(g, "group", now) for g in group_convs])
    wanted = set(group_convs)
    current = {r[0] for r in c.execute(
        "SELECT m.conv_id FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
        " WHERE m.user_id=? AND cv.kind='group' AND m.left_at IS NULL", (user_id,))}
    for conv in current - wanted:
        c.execute("DELETE FROM conv_members WHERE conv_id=? AND user_id=?", (conv, user_id))
    for conv in wanted - current:
        c.execute("INSERT OR REPLACE INTO conv_members(conv_id, user_id, joined_at, read_seq)"
                  " VALUES (?,?,?, (SELECT last_seq FROM conversations WHERE id=?))",
                  (conv, user_id, now, conv))
