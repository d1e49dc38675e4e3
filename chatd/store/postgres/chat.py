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
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from chatd.store.base import (
    AppendResult,
    ConvId,
    ConvSummary,
    Message,
    SendContext,
    SendRefused,
    StoreError,
    UserId,
    send_refusal,
)
from chatd.store.postgres.engine import Engine
from chatd.store.postgres.rows import MSG_COLS, to_message

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
                           cid: str | None, body: str,
                           flagged: bool) -> AppendResult | SendRefused:
        """The retry check, then the sender's right to send (a refusal is returned, not
        raised) and the insert in one transaction."""
        async def refusal(c: Any) -> SendRefused | None:
            return send_refusal(await _send_context(c, conv, sender), ts)
        return await self._insert_message(conv, msg_id, sender, body, ts, cid, flagged, refusal)

    async def conv_members(self, conv: ConvId) -> list[UserId]:
        """Current members, in no particular order."""
        async with self._conn() as c:
            rows = await c.fetch("SELECT user_id FROM conv_members WHERE conv_id=$1"
                                 " AND left_at IS NULL", conv)
        return [UserId(r[0]) for r in rows]

    async def user_convs(self, user_id: UserId) -> list[ConvSummary]:
        """The user's current conversations: groups first, then by id (bytewise, as SQLite)."""
        async with self._conn() as c:
            rows = await c.fetch(
                "SELECT cv.id, cv.kind, cv.last_seq, m.read_seq, cv.closed,"
                " (SELECT o.user_id FROM conv_members o WHERE o.conv_id=cv.id AND o.user_id<>$1"
                "  ORDER BY o.user_id COLLATE \"C\" LIMIT 1),"
                # Group messages from users the reader blocked are not unread (one query).
                " CASE WHEN cv.kind='group' THEN (SELECT COUNT(*) FROM blocks b JOIN messages x"
                "  ON x.sender=b.blocked AND x.conv_id=cv.id AND x.seq>m.read_seq"
                "  WHERE b.blocker=$1) ELSE 0 END"
                " FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
                " WHERE m.user_id=$1 AND m.left_at IS NULL"
                " ORDER BY cv.kind DESC, cv.id COLLATE \"C\"", user_id)
        return [ConvSummary(ConvId(r[0]), r[1], r[2], r[3],
                            UserId(r[5]) if r[1] == "direct" and r[5] else None, bool(r[4]),
                            max(0, int(r[2]) - int(r[3]) - int(r[6])))
                for r in rows]

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
                              ts: int, cid: str | None, flagged: bool,
                              refusal: Callable[[Any], Awaitable[SendRefused | None]] | None
                              = None) -> AppendResult | SendRefused:
        started = time.perf_counter()
        async with self._conn() as c:
            first = await _by_cid(c, sender, cid)
            if first is not None:
                return AppendResult(first, created=False)
            try:
                async with c.transaction():
                    refused = None if refusal is None else await refusal(c)
                    if refused is not None:
                        return refused
                    seq = await c.fetchval(_APPEND, conv, msg_id, sender, body, ts, cid, flagged)
            except asyncpg.UniqueViolationError as exc:
                if cid is None or exc.constraint_name != "messages_cid":
                    raise
                # A concurrent retry with the same client id committed first.
                first = await _by_cid(c, sender, cid)
                if first is None:
                    raise
                return AppendResult(first, created=False)
        if seq is None:
            raise StoreError("no such conversation")
        self._committed(started)
        return AppendResult(Message(conv, msg_id, int(seq), sender, body, ts), created=True)

    async def history(self, conv: ConvId, after: int, limit: int,
                      viewer: UserId | None = None) -> list[Message]:
        """Up to ``limit`` messages with ``seq > after``, oldest first; with ``viewer``, none
        from users the viewer blocked (left out before the limit, so pages stay full)."""
        async with self._conn() as c:
            rows = await c.fetch(f"{MSG_COLS} WHERE conv_id=$1 AND seq>$2 AND ($4::text IS NULL"
                                 " OR sender NOT IN (SELECT blocked FROM blocks"
                                 " WHERE blocker=$4)) ORDER BY seq LIMIT $3",
                                 conv, after, limit, viewer)
        return [to_message(r) for r in rows]

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


async def _send_context(c: Any, conv: ConvId, user_id: UserId) -> SendContext | None:
    r = await c.fetchrow(
        "SELECT cv.kind, cv.closed,"
        " EXISTS(SELECT 1 FROM conv_members m WHERE m.conv_id=cv.id AND m.user_id=$2"
        "  AND m.left_at IS NULL),"
        " p.user_id,"
        " EXISTS(SELECT 1 FROM blocks b WHERE b.blocker=p.user_id AND b.blocked=$2),"
        " COALESCE((SELECT u.muted_until FROM users u WHERE u.id=$2), 0)"
        " FROM conversations cv LEFT JOIN LATERAL ("
        "  SELECT o.user_id FROM conv_members o WHERE o.conv_id=cv.id AND o.user_id<>$2"
        "  ORDER BY o.user_id COLLATE \"C\" LIMIT 1) p ON cv.kind='direct'"
        " WHERE cv.id=$1", conv, user_id)
    if r is None:
        return None
    peer = UserId(r[3]) if r[3] is not None else None
    return SendContext(r[0], bool(r[1]), bool(r[2]), peer, bool(r[4]), int(r[5]))


async def _by_cid(c: Any, sender: UserId, cid: str | None) -> Message | None:
    if cid is None:
        return None
    r = await c.fetchrow(f"{MSG_COLS} WHERE sender=$1 AND cid=$2", sender, cid)
    return to_message(r) if r is not None else None


# The seq is taken and the message inserted in one statement: the UPDATE locks the
# conversation row until the insert commits, and a failed insert gives the seq back.
_APPEND = ("WITH s AS (UPDATE conversations SET last_seq=last_seq+1 WHERE id=$1"
           " RETURNING last_seq)"
           " INSERT INTO messages(conv_id, seq, id, sender, body, ts, cid, flagged)"
           " SELECT $1, s.last_seq, $2, $3, $4, $5, $6, $7 FROM s RETURNING seq")
