"""Privacy on PostgreSQL: consents, the queries of a data export, account deletion."""

from __future__ import annotations

from typing import Final

from chatd.store.base import (
    TOMBSTONE,
    Consent,
    ConvId,
    Membership,
    Message,
    Post,
    SessionRow,
    SmsCodeRow,
    UserId,
)
from chatd.store.postgres.engine import Engine
from chatd.store.postgres.rows import POST_COLS, rowcount, to_post
from chatd.store.sql import like_pattern

__all__ = ["Privacy"]

# As on SQLite: erased codes stay as anonymous rows (the hourly SMS cap counts them).
_ERASE_CODES: Final = "UPDATE sms_codes SET phone='', code_hash=''::bytea WHERE phone=$1"
# Every table an account deletion deletes from or rewrites: vacuumed after it.
_ERASED_TABLES: Final = ("audit_log", "blocks", "consents", "conv_members", "conversations",
                         "messages", "posts", "reports", "search_history", "sessions",
                         "sms_codes", "user_interests", "users", "word_changes")


class Privacy(Engine):
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
        rows = await self._fetch("SELECT token_hash, user_id, device, created_at, expires_at,"
                                 " last_active FROM sessions WHERE user_id=$1"
                                 " ORDER BY created_at", user_id)
        return [SessionRow(bytes(r[0]), UserId(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    async def messages_by(self, user_id: UserId) -> list[Message]:
        rows = await self._fetch("SELECT conv_id, id, seq, sender, body, ts, deleted, flagged"
                                 " FROM messages WHERE sender=$1"
                                 " ORDER BY conv_id COLLATE \"C\", seq", user_id)
        return [Message(ConvId(r[0]), r[1], int(r[2]), UserId(r[3]), r[4], int(r[5]),
                        bool(r[6]), bool(r[7])) for r in rows]

    async def memberships_of(self, user_id: UserId) -> list[Membership]:
        rows = await self._fetch("SELECT m.conv_id, cv.kind, m.joined_at, m.left_at, m.read_seq"
                                 " FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
                                 " WHERE m.user_id=$1"
                                 " ORDER BY cv.kind COLLATE \"C\" DESC, m.conv_id COLLATE \"C\"",
                                 user_id)
        return [Membership(ConvId(r[0]), r[1], int(r[2]),
                           None if r[3] is None else int(r[3]), int(r[4])) for r in rows]

    async def sms_codes_of(self, user_id: UserId) -> list[SmsCodeRow]:
        rows = await self._fetch("SELECT s.id, s.phone, s.purpose, s.created_at, s.expires_at,"
                                 " s.attempts, s.used FROM sms_codes s JOIN users u"
                                 " ON u.phone=s.phone WHERE u.id=$1 ORDER BY s.id", user_id)
        return [SmsCodeRow(int(r[0]), r[1], r[2], b"", int(r[3]), int(r[4]), int(r[5]),
                           bool(r[6])) for r in rows]

    async def erase_sms_codes_of(self, user_id: UserId) -> None:
        await self._exec("UPDATE sms_codes SET phone='', code_hash=''::bytea WHERE phone="
                         "(SELECT phone FROM users WHERE id=$1)", user_id)
        self._vacuum_soon(["sms_codes"])

    async def purge_sms_codes(self, expired_before: int, sent_before: int) -> int:
        async with self._tx() as c:
            n = rowcount(await c.execute("DELETE FROM sms_codes WHERE created_at<$1",
                                         sent_before))
            n += rowcount(await c.execute("UPDATE sms_codes SET code_hash=''::bytea"
                                          " WHERE expires_at<$1 AND length(code_hash)>0",
                                          expired_before))
        if n:
            self._vacuum_soon(["sms_codes"])
        return n

    async def posts_by(self, user_id: UserId) -> list[Post]:
        rows = await self._fetch(f"{POST_COLS} WHERE p.author=$1"
                                 " ORDER BY p.ts DESC, p.id COLLATE \"C\" DESC", user_id)
        return [to_post(r) for r in rows]

    async def delete_account(self, user_id: UserId) -> list[bytes]:
        """As :meth:`chatd.store.sqlite.privacy.Privacy.delete_account`."""
        async with self._tx() as c:
            phone = await c.fetchval("SELECT phone FROM users WHERE id=$1 FOR UPDATE", user_id)
            if phone is None:
                return []
            rows = await c.fetch("SELECT token_hash FROM sessions WHERE user_id=$1", user_id)
            await c.execute(_ERASE_CODES, phone)
            await c.execute("UPDATE conversations SET closed=TRUE WHERE kind='direct' AND id IN"
                            " (SELECT conv_id FROM conv_members WHERE user_id=$1)", user_id)
            await c.execute("UPDATE conversations SET pair=REPLACE(pair, $1, $2)"
                            " WHERE pair LIKE $3", user_id, TOMBSTONE, like_pattern(user_id))
            await c.execute("UPDATE messages SET body='', attachments='', sender=$1, cid=NULL,"
                            " deleted=TRUE, flagged=FALSE WHERE sender=$2", TOMBSTONE, user_id)
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
        self._vacuum_soon(_ERASED_TABLES)
        return [bytes(r[0]) for r in rows]
