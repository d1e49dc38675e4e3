"""Privacy on PostgreSQL: consents, the queries of a data export, account deletion."""

from __future__ import annotations

from chatd.store.base import TOMBSTONE, Consent, Message, Post, SessionRow, UserId
from chatd.store.postgres.engine import Engine
from chatd.store.postgres.rows import MSG_COLS, POST_COLS, to_message, to_post
from chatd.store.sql import like_pattern

__all__ = ["Privacy"]


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
        rows = await self._fetch("SELECT token_hash, user_id, device, created_at, expires_at"
                                 " FROM sessions WHERE user_id=$1 ORDER BY created_at", user_id)
        return [SessionRow(bytes(r[0]), UserId(r[1]), r[2], r[3], r[4]) for r in rows]

    async def messages_by(self, user_id: UserId) -> list[Message]:
        rows = await self._fetch(f"{MSG_COLS} WHERE sender=$1 ORDER BY conv_id COLLATE \"C\", seq",
                                 user_id)
        return [to_message(r) for r in rows]

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
