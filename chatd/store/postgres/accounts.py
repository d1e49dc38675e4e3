"""Accounts on PostgreSQL: users and their interests, sessions, SMS codes, contacts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from chatd.store.base import CodeTry, ConvId, SessionRow, SmsCodeRow, StoreError, User, UserId
from chatd.store.postgres.engine import Engine, now_ms
from chatd.store.postgres.rows import load_user

__all__ = ["Accounts"]

_SESSION_COLS: Final = "token_hash, user_id, device, created_at, expires_at, last_active"


def _session(r: Any) -> SessionRow:
    return SessionRow(bytes(r[0]), UserId(r[1]), r[2], int(r[3]), int(r[4]), int(r[5]))


class Accounts(Engine):
    # --- users ---------------------------------------------------------------------------

    async def create_user(self, user: User, group_convs: Sequence[ConvId]) -> None:
        async with self._tx() as c:
            await c.execute(
                "INSERT INTO users(id, phone, pw_hash, birthdate, gender, nickname, bio, role,"
                " created_at, verification) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                user.id, user.phone, user.pw_hash, user.birthdate, user.gender, user.nickname,
                user.bio, user.role, user.created_at, user.verification)
            await _set_interests(c, user.id, user.interests, group_convs, user.created_at)

    async def get_user(self, user_id: UserId) -> User | None:
        async with self._conn() as c:
            return await load_user(c, "id", user_id)

    async def get_user_by_phone(self, phone: str) -> User | None:
        async with self._conn() as c:
            return await load_user(c, "phone", phone)

    async def set_password(self, user_id: UserId, pw_hash: str) -> None:
        await self._exec("UPDATE users SET pw_hash=$2 WHERE id=$1", user_id, pw_hash)

    async def set_phone(self, user_id: UserId, phone: str) -> None:
        """DuplicateError when another user has ``phone``."""
        await self._exec("UPDATE users SET phone=$2 WHERE id=$1", user_id, phone)

    async def update_profile(self, user_id: UserId, nickname: str | None, bio: str | None,
                             interests: Sequence[str] | None,
                             group_convs: Sequence[ConvId] | None) -> User:
        """None leaves a field as it is; interests change only with their group list."""
        async with self._tx() as c:
            await c.execute("UPDATE users SET nickname=COALESCE($2, nickname),"
                            " bio=COALESCE($3, bio) WHERE id=$1", user_id, nickname, bio)
            if interests is not None and group_convs is not None:
                await _set_interests(c, user_id, interests, group_convs, now_ms())
            user = await load_user(c, "id", user_id)
            if user is None:
                raise StoreError("no such user")
            return user
    async def get_users(self, user_ids: Sequence[UserId]) -> dict[UserId, User]:
        found = {}
        async with self._conn() as c:
            for user_id in user_ids:
                user = await load_user(c, "id", user_id)
                if user is not None:
                    found[user.id] = user
        return found

    # --- sessions ------------------------------------------------------------------------

    async def create_session(self, row: SessionRow) -> None:
        await self._exec(
            "INSERT INTO sessions(token_hash, user_id, device, created_at, expires_at,"
            " last_active) VALUES ($1,$2,$3,$4,$5,$6)",
            row.token_hash, row.user_id, row.device, row.created_at, row.expires_at,
            row.last_active)

    async def get_session(self, token_hash: bytes, now: int) -> SessionRow | None:
        """The session unless it expired (``expires_at <= now``)."""
        async with self._conn() as c:
            r = await c.fetchrow(f"SELECT {_SESSION_COLS} FROM sessions"
                                 " WHERE token_hash=$1 AND expires_at>$2", token_hash, now)
        return None if r is None else _session(r)

    async def live_sessions(self, user_id: UserId, now: int, limit: int) -> list[SessionRow]:
        rows = await self._fetch(f"SELECT {_SESSION_COLS} FROM sessions"
                                 " WHERE user_id=$1 AND expires_at>$2"
                                 " ORDER BY last_active DESC, created_at DESC, token_hash"
                                 " LIMIT $3", user_id, now, limit)
        return [_session(r) for r in rows]

    async def touch_session(self, token_hash: bytes, ts: int) -> None:
        await self._exec("UPDATE sessions SET last_active=$2"
                         " WHERE token_hash=$1 AND last_active<$2", token_hash, ts)

    async def delete_user_session(self, user_id: UserId, token_hash: bytes) -> bool:
        status = await self._exec("DELETE FROM sessions WHERE token_hash=$1 AND user_id=$2",
                                  token_hash, user_id)
        return status == "DELETE 1"

    async def delete_session(self, token_hash: bytes) -> None:
        await self._exec("DELETE FROM sessions WHERE token_hash=$1", token_hash)

    async def delete_user_sessions(self, user_id: UserId,
                                   keep: bytes | None = None) -> list[bytes]:
        """Delete every session of the user but ``keep``; return the deleted token hashes."""
        async with self._conn() as c:
            rows = await c.fetch("DELETE FROM sessions WHERE user_id=$1"
                                 " AND token_hash IS DISTINCT FROM $2 RETURNING token_hash",
                                 user_id, keep)
        self._committed()
        return [bytes(r[0]) for r in rows]

    # --- contacts ------------------------------------------------------------------------

    async def contacts_of(self, user_id: UserId) -> set[UserId]:
        """The other member of every open 1:1 of the user (both still members), unless
        either blocked the other: who hears of the user's presence. One query."""
        rows = await self._fetch(
            "SELECT DISTINCT o.user_id FROM conv_members m"
            " JOIN conversations cv ON cv.id=m.conv_id AND cv.kind='direct' AND NOT cv.closed"
            " JOIN conv_members o ON o.conv_id=m.conv_id AND o.user_id<>m.user_id"
            " AND o.left_at IS NULL"
            " WHERE m.user_id=$1 AND m.left_at IS NULL"
            " AND o.user_id NOT IN (SELECT blocked FROM blocks WHERE blocker=$1)"
            " AND o.user_id NOT IN (SELECT blocker FROM blocks WHERE blocked=$1)", user_id)
        return {UserId(r[0]) for r in rows}

    # --- SMS codes -----------------------------------------------------------------------

    async def add_sms_code(self, phone: str, purpose: str, code_hash: bytes, created_at: int,
                           expires_at: int) -> None:
        """Store a new code; older unused codes of the same phone and purpose become used."""
        async with self._tx() as c:
            await c.execute("UPDATE sms_codes SET used=TRUE WHERE phone=$1 AND purpose=$2"
                            " AND NOT used", phone, purpose)
            await c.execute("INSERT INTO sms_codes(phone, purpose, code_hash, created_at,"
                            " expires_at) VALUES ($1,$2,$3,$4,$5)",
                            phone, purpose, code_hash, created_at, expires_at)

    async def latest_sms_code(self, phone: str, purpose: str) -> SmsCodeRow | None:
        async with self._conn() as c:
            r = await c.fetchrow("SELECT id, phone, purpose, code_hash, created_at, expires_at,"
                                 " attempts, used FROM sms_codes WHERE phone=$1 AND purpose=$2"
                                 " ORDER BY id DESC LIMIT 1", phone, purpose)
        if r is None:
            return None
        return SmsCodeRow(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6], bool(r[7]))

    async def sms_sends_since(self, phone: str, since: int) -> list[int]:
        """Send times (``created_at >= since``) of every code to ``phone``, oldest first."""
        async with self._conn() as c:
            rows = await c.fetch("SELECT created_at FROM sms_codes WHERE phone=$1"
                                 " AND created_at>=$2 ORDER BY created_at", phone, since)
        return [int(r[0]) for r in rows]

    async def sms_total_since(self, since: int) -> int:
        """Codes sent to any phone since then (the deployment-wide SMS cap)."""
        async with self._conn() as c:
            return int(await c.fetchval("SELECT count(*) FROM sms_codes WHERE created_at>=$1",
                                        since))

    async def sms_code_failed(self, code_id: int) -> None:
        await self._exec("UPDATE sms_codes SET attempts=attempts+1 WHERE id=$1", code_id)

    async def sms_code_used(self, code_id: int) -> bool:
        """Mark a code used; False when it already was (a concurrent use won)."""
        async with self._conn() as c:
            done = await c.fetchval("UPDATE sms_codes SET used=TRUE WHERE id=$1 AND NOT used"
                                    " RETURNING id", code_id)
        self._committed()
        return done is not None

    async def try_sms_code(self, phone: str, purpose: str, code_hash: bytes, now: int,
                           max_attempts: int) -> CodeTry:
        # One conditional UPDATE: a concurrent try waits for the row lock, then re-checks
        # ``attempts`` and ``used`` on the row as the winner left it (READ COMMITTED).
        async with self._conn() as c:
            used = await c.fetchval(
                "UPDATE sms_codes SET attempts=attempts+(code_hash<>$3)::int,"
                " used=(code_hash=$3)"
                " WHERE id=(SELECT id FROM sms_codes WHERE phone=$1 AND purpose=$2"
                " ORDER BY id DESC LIMIT 1) AND NOT used AND expires_at>$4 AND attempts<$5"
                " RETURNING used", phone, purpose, code_hash, now, max_attempts)
        self._committed()
        if used is None:
            return "burnt"
        return "ok" if used else "wrong"


async def _set_interests(c: Any, user_id: str, tags: Sequence[str],
                         group_convs: Sequence[ConvId], now: int) -> None:
    """Replace the user's interests and sync group memberships with ``group_convs``.

    Missing groups are created; a new (or returning) member starts at the group's last seq.
    """
    await c.execute("DELETE FROM user_interests WHERE user_id=$1", user_id)
    await c.execute("INSERT INTO user_interests(user_id, tag, pos)"
                    " SELECT $1, t.tag, t.n - 1 FROM unnest($2::text[]) WITH ORDINALITY"
                    " AS t(tag, n)", user_id, list(tags))
    # Sorted, so two transactions creating the same groups lock them in the same order
    # (no deadlock between users registering at once).
    wanted = sorted(set(group_convs))
    await c.execute("INSERT INTO conversations(id, kind, created_at)"
                    " SELECT g, 'group', $2 FROM unnest($1::text[]) AS g"
                    " ON CONFLICT (id) DO NOTHING", wanted, now)
    rows = await c.fetch(
        "SELECT m.conv_id FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
        " WHERE m.user_id=$1 AND cv.kind='group' AND m.left_at IS NULL", user_id)
    current = {r[0] for r in rows}
    gone = sorted(current - set(wanted))
    new = [g for g in wanted if g not in current]
    if gone:
        await c.execute("DELETE FROM conv_members WHERE user_id=$1 AND conv_id=ANY($2::text[])",
                        user_id, gone)
    if new:
        # A former member (left_at set) rejoins as if new, like SQLite's INSERT OR REPLACE.
        await c.execute(
            "INSERT INTO conv_members(conv_id, user_id, joined_at, read_seq)"
            " SELECT cv.id, $2, $3, cv.last_seq FROM conversations cv"
            " WHERE cv.id=ANY($1::text[]) ORDER BY cv.id"
            " ON CONFLICT (conv_id, user_id) DO UPDATE SET joined_at=EXCLUDED.joined_at,"
            " left_at=NULL, read_seq=EXCLUDED.read_seq", new, user_id, now)
