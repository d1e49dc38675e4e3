"""Chat on PostgreSQL: conversations and their members, messages, read marks, blocks.

Safe for concurrent writers on different hosts:

- a message's ``seq`` is ``conversations.last_seq + 1``, taken by ``UPDATE ... RETURNING`` in
  the same statement that inserts the message: the conversation row lock serialises writers,
  so seqs have no gaps and no duplicates however many nodes append at once;
- a retried client id (``sender``, ``cid``) answers with the first message; two racing retries
  are settled by the partial unique index, the loser reading the winner's row.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from chatd.store.base import (
    MSG_COLS,
    UNREAD_CAP,
    AppendResult,
    ConvId,
    ConvSummary,
    Message,
    Quote,
    RecallRefused,
    SendContext,
    SendRefused,
    StoreError,
    UserId,
    message_row,
    quote_row,
    send_refusal,
)
from chatd.store.media import parse_attachments
from chatd.store.postgres.engine import Engine
from chatd.store.postgres.rows import rowcount

__all__ = ["Chat"]


class Chat(Engine):
    # --- conversations and messages -----------------------------------------------------

    async def create_direct(self, conv: ConvId, a: UserId, b: UserId, now: int) -> None:
        await self.create_directs([(conv, a, b)], now)

    async def create_directs(self, pairs: Sequence[tuple[ConvId, UserId, UserId]],
                             now: int) -> None:
        """Several 1:1 conversations in one transaction (a matching round)."""
        async with self._tx() as c:
            await c.executemany("INSERT INTO conversations(id, kind, pair, created_at)"
                                " VALUES ($1, 'direct', $2, $3)",
                                [(conv, "|".join(sorted((a, b))), now) for conv, a, b in pairs])
            await c.executemany("INSERT INTO conv_members(conv_id, user_id, joined_at)"
                                " VALUES ($1, $2, $3)",
                                [(conv, u, now) for conv, a, b in pairs for u in (a, b)])


    async def is_member(self, conv: ConvId, user_id: UserId) -> bool:
        """A current member (joined and not left)."""
        async with self._conn() as c:
            return bool(await c.fetchval(
                "SELECT EXISTS(SELECT 1 FROM conv_members WHERE conv_id=$1 AND user_id=$2"
                " AND left_at IS NULL)", conv, user_id))

    async def was_member(self, conv: ConvId, user_id: UserId) -> bool:
        """A current or former member."""
        async with self._conn() as c:
            return bool(await c.fetchval(
                "SELECT EXISTS(SELECT 1 FROM conv_members WHERE conv_id=$1 AND user_id=$2)",
                conv, user_id))

    async def send_context(self, conv: ConvId, user_id: UserId) -> SendContext | None:
        """None for an unknown conversation; one statement, so one round trip."""
        async with self._conn() as c:
            return await _send_context(c, conv, user_id)

    async def send_message(self, conv: ConvId, msg_id: str, sender: UserId, ts: int,
                           cid: str | None, body: str, flagged: bool,
                           reply_to: str | None = None,
                           attachments: str = "") -> AppendResult | SendRefused:
        """The retry check, then the sender's right to send (a refusal is returned, not
        raised), the reply target, then the insert."""
        return await self._insert_message(conv, msg_id, sender, body, ts, cid, flagged, True,
                                          reply_to, attachments)

    async def conv_members(self, conv: ConvId) -> list[UserId]:
        """Current members, in no particular order."""
        async with self._conn() as c:
            rows = await c.fetch("SELECT user_id FROM conv_members WHERE conv_id=$1"
                                 " AND left_at IS NULL", conv)
        return [UserId(r[0]) for r in rows]

    async def user_convs(self, user_id: UserId) -> list[ConvSummary]:
        """The user's current conversations with what a chat list shows, newest activity
        first (then by id, bytewise as SQLite): two statements."""
        async with self._conn() as c:
            rows = await c.fetch(_USER_CONVS, user_id, UNREAD_CAP)
            wanted = [(r[0], r[12]) for r in rows if r[12] is not None]
            lasts = {} if not wanted else {
                (r[0], int(r[2])): message_row(r) for r in await c.fetch(
                    f"{MSG_COLS} JOIN unnest($1::text[], $2::bigint[]) AS w(conv, seq)"
                    " ON m.conv_id=w.conv AND m.seq=w.seq",
                    [w[0] for w in wanted], [w[1] for w in wanted])}
        out = [ConvSummary(
            ConvId(r[0]), r[1], int(r[2]), int(r[3]),
            UserId(r[7]) if r[1] == "direct" and r[7] else None, bool(r[4]), int(r[13]),
            lasts.get((r[0], r[12])) if r[12] is not None else None,
            int(r[11] if r[11] is not None else r[6]), int(r[5]), r[8] or "", int(r[9] or 0),
            int(r[10] or 0), r[14] or "") for r in rows]
        out.sort(key=lambda s: (-s.active_at, s.id.encode()))
        return out

    async def conv_seqs(self, user_id: UserId) -> dict[ConvId, int]:
        rows = await self._fetch("SELECT cv.id, cv.last_seq FROM conv_members m"
                                 " JOIN conversations cv ON cv.id=m.conv_id"
                                 " WHERE m.user_id=$1 AND m.left_at IS NULL", user_id)
        return {ConvId(r[0]): int(r[1]) for r in rows}

    async def leave_conv(self, conv: ConvId, user_id: UserId, now: int) -> bool:
        """True when the user was a current member; leaving a 1:1 closes it for both."""
        async with self._tx() as c:
            left = await c.fetchval("UPDATE conv_members SET left_at=$3 WHERE conv_id=$1"
                                    " AND user_id=$2 AND left_at IS NULL RETURNING 1",
                                    conv, user_id, now)
            if left is not None:
                await c.execute("UPDATE conversations SET closed=TRUE WHERE id=$1"
                                " AND kind='direct'", conv)
            return left is not None

    async def append_message(self, conv: ConvId, msg_id: str, sender: UserId, body: str, ts: int,
                             cid: str | None, flagged: bool) -> AppendResult:
        """Store a message with the next seq of ``conv``.

        A (sender, cid) seen before returns the first message with ``created=False`` and
        takes no seq. StoreError for an unknown conversation, DuplicateError for a taken id.
        """
        result = await self._insert_message(conv, msg_id, sender, body, ts, cid, flagged)
        assert isinstance(result, AppendResult)  # no refusal rule was given
        return result

    async def _insert_message(self, conv: ConvId, msg_id: str, sender: UserId, body: str,
                              ts: int, cid: str | None, flagged: bool, check_rights: bool = False,
                              reply_to: str | None = None, attachments: str = ""
                              ) -> AppendResult | SendRefused:
        """``check_rights``: refuse what the sender may not send (see :func:`send_refusal`)."""
        started = time.perf_counter()
        async with self._conn() as c:
            retried = cid is not None
            if check_rights:
                r = await c.fetchrow(_RETRY_AND_CONTEXT, conv, sender, cid)
                retried = bool(r[0])
            first = await _by_cid(c, sender, cid) if retried else None
            if first is not None:
                return AppendResult(first, created=False)
            if check_rights:
                refused = send_refusal(_context_row(r, 1), ts)
                if refused is not None:
                    return refused
            quote = None
            if reply_to is not None:
                quote = await _quote(c, conv, reply_to)
                if quote is None:
                    return SendRefused("no_reply_target")
            # No BEGIN/COMMIT around it: at READ COMMITTED a transaction would not make the
            # reads above any more current, and the write is one statement (two round trips
            # of the five a send took).
            try:
                seq = await c.fetchval(_APPEND, conv, msg_id, sender, body, ts, cid, flagged,
                                       reply_to, attachments)
            except asyncpg.UniqueViolationError as exc:
                if cid is None or exc.constraint_name != "messages_sender_cid":
                    raise
                # A concurrent retry with the same client id committed first.
                first = await _by_cid(c, sender, cid)
                if first is None:
                    raise
                return AppendResult(first, created=False)
        if seq is None:
            raise StoreError("no such conversation")
        self._committed(started)
        return AppendResult(Message(conv, msg_id, int(seq), sender, body, ts, reply_to=reply_to,
                                    quote=quote, attachments=parse_attachments(attachments)),
                            created=True)

    async def history(self, conv: ConvId, after: int, limit: int,
                      viewer: UserId | None = None,
                      hide_blocked: bool = False) -> list[Message]:
        async with self._conn() as c:
            rows = await c.fetch(
                f"{MSG_COLS} WHERE m.conv_id=$1 AND m.seq>$2 AND ($4::text IS NULL OR ("
                " NOT EXISTS(SELECT 1 FROM message_hides h WHERE h.user_id=$4"
                "  AND h.conv_id=m.conv_id AND h.seq=m.seq)"
                " AND (NOT $5 OR m.sender NOT IN (SELECT blocked FROM blocks WHERE blocker=$4))))"
                " ORDER BY m.seq LIMIT $3", conv, after, limit, viewer, hide_blocked)
        return [message_row(r) for r in rows]

    async def set_read(self, conv: ConvId, user_id: UserId, seq: int) -> int:
        """Raise the read mark to ``min(seq, last_seq)``, never lower it; return the mark
        (0 when the user never was a member)."""
        async with self._conn() as c:
            mark = await c.fetchval(
                "UPDATE conv_members m SET read_seq=GREATEST(m.read_seq, LEAST($3, cv.last_seq))"
                " FROM conversations cv WHERE cv.id=m.conv_id AND m.conv_id=$1 AND m.user_id=$2"
                " RETURNING m.read_seq", conv, user_id, seq)
        self._committed()
        return int(mark) if mark is not None else 0

    async def mark_delivered(self, marks: Sequence[tuple[ConvId, UserId, int]]
                             ) -> list[tuple[ConvId, UserId, int]]:
        if not marks:
            return []
        async with self._conn() as c:
            rows = await c.fetch(
                "UPDATE conv_members m SET delivered_seq=LEAST(w.seq, cv.last_seq)"
                " FROM unnest($1::text[], $2::text[], $3::bigint[]) AS w(conv, usr, seq),"
                " conversations cv WHERE m.conv_id=w.conv AND m.user_id=w.usr AND cv.id=w.conv"
                " AND m.delivered_seq<LEAST(w.seq, cv.last_seq)"
                " RETURNING m.conv_id, m.user_id, m.delivered_seq",
                [m[0] for m in marks], [m[1] for m in marks], [m[2] for m in marks])
        self._committed()
        return [(ConvId(r[0]), UserId(r[1]), int(r[2])) for r in rows]

    async def recall_message(self, conv: ConvId, msg_id: str, sender: UserId, now: int,
                             window_ms: int) -> Message | RecallRefused:
        async with self._tx() as c:
            r = await c.fetchrow("SELECT sender, ts, recalled FROM messages WHERE id=$1"
                                 " AND conv_id=$2 FOR UPDATE", msg_id, conv)
            if r is None:
                return "not_found"
            if r[0] != sender:
                return "not_sender"
            if not r[2]:
                if now - int(r[1]) > window_ms:
                    return "too_late"
                await c.execute("UPDATE messages SET body='', attachments='', recalled=TRUE,"
                                " flagged=FALSE WHERE id=$1", msg_id)
            return message_row(await c.fetchrow(f"{MSG_COLS} WHERE m.id=$1", msg_id))

    async def hide_message(self, conv: ConvId, msg_id: str, user_id: UserId) -> Message | None:
        async with self._tx() as c:
            r = await c.fetchrow(f"{MSG_COLS} WHERE m.id=$1 AND m.conv_id=$2", msg_id, conv)
            if r is None:
                return None
            msg = message_row(r)
            await c.execute("INSERT INTO message_hides(user_id, conv_id, seq) VALUES ($1,$2,$3)"
                            " ON CONFLICT DO NOTHING", user_id, conv, msg.seq)
            return msg

    async def set_conv_mute(self, conv: ConvId, user_id: UserId, until: int) -> bool:
        return rowcount(await self._exec(
            "UPDATE conv_members SET mute_until=$3 WHERE conv_id=$1 AND user_id=$2"
            " AND left_at IS NULL", conv, user_id, until)) == 1

    async def recent_pairs(self, users: Sequence[UserId],
                           since: int) -> set[tuple[UserId, UserId]]:
        """Pairs (a, b), a < b, of every 1:1 created at or after ``since`` that one of
        ``users`` is or was in."""
        async with self._conn() as c:
            rows = await c.fetch(
                "SELECT DISTINCT cv.pair FROM conv_members m JOIN conversations cv"
                " ON cv.id=m.conv_id WHERE m.user_id=ANY($1::text[]) AND cv.kind='direct'"
                " AND cv.created_at>=$2", list(users), since)
        found: set[tuple[UserId, UserId]] = set()
        for (pair,) in rows:
            a, b = pair.split("|")
            found.add((UserId(a), UserId(b)))
        return found

    # --- blocks --------------------------------------------------------------------------

    async def block(self, blocker: UserId, blocked: UserId, now: int) -> None:
        """Idempotent: blocking twice keeps the first block."""
        await self._exec("INSERT INTO blocks(blocker, blocked, created_at) VALUES ($1,$2,$3)"
                          " ON CONFLICT DO NOTHING", blocker, blocked, now)

    async def unblock(self, blocker: UserId, blocked: UserId) -> None:
        await self._exec("DELETE FROM blocks WHERE blocker=$1 AND blocked=$2", blocker, blocked)

    async def blocked_by(self, user_id: UserId) -> set[UserId]:
        """Users that ``user_id`` blocked."""
        async with self._conn() as c:
            rows = await c.fetch("SELECT blocked FROM blocks WHERE blocker=$1", user_id)
        return {UserId(r[0]) for r in rows}

    async def blocks_of(self, user_id: UserId) -> set[UserId]:
        """Users who blocked ``user_id``."""
        async with self._conn() as c:
            rows = await c.fetch("SELECT blocker FROM blocks WHERE blocked=$1", user_id)
        return {UserId(r[0]) for r in rows}

    async def blocks_among(self, users: Sequence[UserId]) -> set[tuple[UserId, UserId]]:
        """Every block (blocker, blocked) with both sides in ``users``."""
        async with self._conn() as c:
            rows = await c.fetch("SELECT blocker, blocked FROM blocks WHERE"
                                 " blocker=ANY($1::text[]) AND blocked=ANY($1::text[])",
                                 list(users))
        return {(UserId(r[0]), UserId(r[1])) for r in rows}

    async def presence_visible(self, viewer: UserId,
                               users: Sequence[UserId]) -> set[UserId]:
        """Those of ``users`` who share a current conversation (an open 1:1 or a group) with
        ``viewer``, with no block either way: one query."""
        async with self._conn() as c:
            rows = await c.fetch(
                "SELECT DISTINCT o.user_id FROM conv_members m"
                " JOIN conversations cv ON cv.id=m.conv_id AND NOT cv.closed"
                " JOIN conv_members o ON o.conv_id=m.conv_id AND o.left_at IS NULL"
                " AND o.user_id=ANY($2::text[])"
                " WHERE m.user_id=$1 AND m.left_at IS NULL"
                " AND o.user_id NOT IN (SELECT blocked FROM blocks WHERE blocker=$1)"
                " AND o.user_id NOT IN (SELECT blocker FROM blocks WHERE blocked=$1)",
                viewer, list(users))
        return {UserId(r[0]) for r in rows}


_SEND_CONTEXT = (
    "SELECT cv.kind, cv.closed,"
    " EXISTS(SELECT 1 FROM conv_members m WHERE m.conv_id=cv.id AND m.user_id=$2"
    "  AND m.left_at IS NULL),"
    " p.user_id,"
    " EXISTS(SELECT 1 FROM blocks b WHERE b.blocker=p.user_id AND b.blocked=$2),"
    " COALESCE((SELECT u.muted_until FROM users u WHERE u.id=$2), 0)"
    " FROM conversations cv LEFT JOIN LATERAL ("
    "  SELECT o.user_id FROM conv_members o WHERE o.conv_id=cv.id AND o.user_id<>$2"
    "  ORDER BY o.user_id COLLATE \"C\" LIMIT 1) p ON cv.kind='direct'"
    " WHERE cv.id=$1")
# A send's retry check and its context in one round trip (a row even with no conversation).
_RETRY_AND_CONTEXT = (
    "SELECT EXISTS(SELECT 1 FROM messages WHERE sender=$2 AND cid=$3), x.*"
    f" FROM (VALUES (0)) v LEFT JOIN LATERAL ({_SEND_CONTEXT}) x ON true")


async def _send_context(c: Any, conv: ConvId, user_id: UserId) -> SendContext | None:
    return _context_row(await c.fetchrow(_SEND_CONTEXT, conv, user_id))


def _context_row(r: Any, at: int = 0) -> SendContext | None:
    if r is None or r[at] is None:  # (a NULL kind: the outer row of an unknown conversation)
        return None
    peer = UserId(r[at + 3]) if r[at + 3] is not None else None
    return SendContext(r[at], bool(r[at + 1]), bool(r[at + 2]), peer, bool(r[at + 4]),
                       int(r[at + 5]))


async def _by_cid(c: Any, sender: UserId, cid: str | None) -> Message | None:
    if cid is None:
        return None
    r = await c.fetchrow(f"{MSG_COLS} WHERE m.sender=$1 AND m.cid=$2", sender, cid)
    return message_row(r) if r is not None else None


async def _quote(c: Any, conv: ConvId, msg_id: str) -> Quote | None:
    r = await c.fetchrow("SELECT seq, sender, body, recalled, deleted FROM messages"
                         " WHERE id=$1 AND conv_id=$2", msg_id, conv)
    if r is None:
        return None
    return quote_row(msg_id, r)


# See the SQLite store: what a chat list row needs, in one statement.
_VISIBLE = (" AND NOT EXISTS(SELECT 1 FROM message_hides h WHERE h.user_id=$1"
            "  AND h.conv_id=x.conv_id AND h.seq=x.seq)")
_USER_CONVS = (
    "SELECT cv.id, cv.kind, cv.last_seq, m.read_seq, cv.closed, m.mute_until, m.joined_at,"
    " p.user_id, pu.nickname, p.read_seq, p.delivered_seq,"
    " (SELECT x.ts FROM messages x WHERE x.conv_id=cv.id AND x.seq=cv.last_seq),"
    " (SELECT x.seq FROM messages x WHERE x.conv_id=cv.id" + _VISIBLE +
    "  AND (cv.kind='direct' OR x.sender NOT IN (SELECT blocked FROM blocks WHERE blocker=$1))"
    "  ORDER BY x.seq DESC LIMIT 1),"
    " (SELECT COUNT(*) FROM messages x WHERE x.conv_id=cv.id"
    "  AND x.seq>GREATEST(m.read_seq, cv.last_seq-$2) AND x.sender<>$1 AND NOT x.recalled"
    "  AND NOT x.deleted AND x.sender NOT IN (SELECT blocked FROM blocks WHERE blocker=$1)"
    + _VISIBLE + "), pu.avatar"
    " FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
    " LEFT JOIN conv_members p ON cv.kind='direct' AND p.conv_id=cv.id AND p.user_id<>$1"
    " LEFT JOIN users pu ON pu.id=p.user_id"
    " WHERE m.user_id=$1 AND m.left_at IS NULL")


# The seq is taken and the message inserted in one statement: the UPDATE locks the
# conversation row until the insert commits, and a failed insert gives the seq back.
_APPEND = ("WITH s AS (UPDATE conversations SET last_seq=last_seq+1 WHERE id=$1"
           " RETURNING last_seq)"
           " INSERT INTO messages(conv_id, seq, id, sender, body, ts, cid, flagged, reply_to,"
           " attachments) SELECT $1, s.last_seq, $2, $3, $4, $5, $6, $7, $8, $9 FROM s"
           " RETURNING seq")
