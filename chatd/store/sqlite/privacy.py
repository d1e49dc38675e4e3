"""Privacy on SQLite: consents, the queries of a data export, account deletion."""

from __future__ import annotations

import sqlite3

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
from chatd.store.sql import like_pattern
from chatd.store.sqlite.engine import Engine
from chatd.store.sqlite.rows import POST_COLS, to_post

__all__ = ["Privacy"]

# Erasing a phone's SMS codes keeps each row, anonymous (no phone, no hash), until the purge:
# the deployment-wide hourly cap counts rows, and deleting them would let register-and-delete
# cycles send codes the cap never sees.
_ERASE_CODES = "UPDATE sms_codes SET phone='', code_hash=X'' WHERE phone=?"


class Privacy(Engine):
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
            rows = c.execute("SELECT token_hash, user_id, device, created_at, expires_at,"
                             " last_active FROM sessions WHERE user_id=? ORDER BY created_at",
                             (user_id,)).fetchall()
            return [SessionRow(bytes(r[0]), UserId(r[1]), r[2], r[3], r[4], r[5])
                    for r in rows]
        return await self._run(job)

    async def messages_by(self, user_id: UserId) -> list[Message]:
        """Every message the user sent, by conversation and seq, with its moderation state."""
        def job(c: sqlite3.Connection) -> list[Message]:
            rows = c.execute("SELECT conv_id, id, seq, sender, body, ts, deleted, flagged"
                             " FROM messages WHERE sender=? ORDER BY conv_id, seq",
                             (user_id,)).fetchall()
            return [Message(ConvId(r[0]), r[1], r[2], UserId(r[3]), r[4], r[5], bool(r[6]),
                            bool(r[7])) for r in rows]
        return await self._run(job)

    async def memberships_of(self, user_id: UserId) -> list[Membership]:
        """Every conversation the user is or was a member of (left 1:1s included)."""
        def job(c: sqlite3.Connection) -> list[Membership]:
            rows = c.execute("SELECT m.conv_id, cv.kind, m.joined_at, m.left_at, m.read_seq"
                             " FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
                             " WHERE m.user_id=? ORDER BY cv.kind DESC, m.conv_id",
                             (user_id,)).fetchall()
            return [Membership(ConvId(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
        return await self._run(job)

    async def sms_codes_of(self, user_id: UserId) -> list[SmsCodeRow]:
        """The SMS codes sent to the user's phone, oldest first (``code_hash`` is b"")."""
        def job(c: sqlite3.Connection) -> list[SmsCodeRow]:
            rows = c.execute("SELECT s.id, s.phone, s.purpose, s.created_at, s.expires_at,"
                             " s.attempts, s.used FROM sms_codes s JOIN users u"
                             " ON u.phone=s.phone WHERE u.id=? ORDER BY s.id",
                             (user_id,)).fetchall()
            return [SmsCodeRow(r[0], r[1], r[2], b"", r[3], r[4], r[5], bool(r[6]))
                    for r in rows]
        return await self._run(job)

    async def erase_sms_codes_of(self, user_id: UserId) -> None:
        """Erase the codes of the user's current phone (before a rebind to another)."""
        def job(c: sqlite3.Connection) -> None:
            c.execute("UPDATE sms_codes SET phone='', code_hash=X'' WHERE phone="
                      "(SELECT phone FROM users WHERE id=?)", (user_id,))
            self._erased()
        await self._run(job)

    async def purge_sms_codes(self, expired_before: int, sent_before: int) -> int:
        """Delete codes sent before ``sent_before`` (older than every SMS limit's window) and
        blank the hash of codes expired before ``expired_before``; the rows changed."""
        def job(c: sqlite3.Connection) -> int:
            n = c.execute("DELETE FROM sms_codes WHERE created_at<?", (sent_before,)).rowcount
            n += c.execute("UPDATE sms_codes SET code_hash=X'' WHERE expires_at<?"
                           " AND length(code_hash)>0", (expired_before,)).rowcount
            if n:
                self._erased()
            return n
        return await self._run(job)

    async def posts_by(self, user_id: UserId) -> list[Post]:
        def job(c: sqlite3.Connection) -> list[Post]:
            rows = c.execute(f"{POST_COLS} WHERE p.author=? ORDER BY p.ts DESC, p.id DESC",
                             (user_id,)).fetchall()
            return [to_post(r) for r in rows]
        return await self._run(job)

    async def delete_account(self, user_id: UserId) -> list[bytes]:
        """Erase the account in one transaction; return the ended sessions' token hashes.

        Deleted: the user row and, by cascade, interests, sessions, memberships, posts,
        search history, consents and reports made; blocks either way. The phone's SMS codes
        lose their phone and hash (anonymous rows the hourly SMS cap still counts, purged
        later). Once committed, the WAL is checkpointed (see :mod:`.engine`, erasure).
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
            c.execute(_ERASE_CODES, (r[0],))
            c.execute("UPDATE conversations SET closed=1 WHERE kind='direct' AND id IN"
                      " (SELECT conv_id FROM conv_members WHERE user_id=?)", (user_id,))
            c.execute("UPDATE conversations SET pair=REPLACE(pair, ?, ?) WHERE pair LIKE ?",
                      (user_id, TOMBSTONE, like_pattern(user_id)))
            c.execute("UPDATE messages SET body='', attachments='', sender=?, cid=NULL, deleted=1,"
                      " flagged=0 WHERE sender=?", (TOMBSTONE, user_id))
            c.execute("DELETE FROM blocks WHERE blocked=?", (user_id,))
            c.execute("UPDATE reports SET state='resolved', resolution='account_deleted',"
                      " snapshot='', target_user=?, target=CASE WHEN kind='user'"
                      " THEN ? || ':' || id ELSE target END WHERE target_user=?",
                      (TOMBSTONE, TOMBSTONE, user_id))
            c.execute("UPDATE audit_log SET target=? WHERE target=?", (TOMBSTONE, user_id))
            c.execute("UPDATE audit_log SET actor=? WHERE actor=?", (TOMBSTONE, user_id))
            c.execute("UPDATE word_changes SET actor=? WHERE actor=?", (TOMBSTONE, user_id))
            c.execute("DELETE FROM users WHERE id=?", (user_id,))
            self._erased()
            return hashes
        return await self._run(job)
