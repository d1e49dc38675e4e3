"""Chat on SQLite: conversations and their members, messages, read marks, blocks."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

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
from chatd.store.sqlite.engine import Engine
from chatd.store.sqlite.rows import MSG_COLS, to_message

__all__ = ["Chat"]


class Chat(Engine):
    # --- conversations and messages -----------------------------------------------------

    async def create_direct(self, conv: ConvId, a: UserId, b: UserId, now: int) -> None:
        await self.create_directs([(conv, a, b)], now)

    async def create_directs(self, pairs: Sequence[tuple[ConvId, UserId, UserId]],
                             now: int) -> None:
        """Several 1:1 conversations in one transaction (a matching round)."""
        def job(c: sqlite3.Connection) -> None:
            c.executemany("INSERT INTO conversations(id, kind, pair, created_at) VALUES (?,?,?,?)",
                          [(conv, "direct", "|".join(sorted((a, b))), now)
                           for conv, a, b in pairs])
            c.executemany("INSERT INTO conv_members(conv_id, user_id, joined_at) VALUES (?,?,?)",
                          [(conv, u, now) for conv, a, b in pairs for u in (a, b)])
        await self._run(job)

    async def is_member(self, conv: ConvId, user_id: UserId) -> bool:
        return await self._run(lambda c: c.execute(
            "SELECT 1 FROM conv_members WHERE conv_id=? AND user_id=? AND left_at IS NULL",
            (conv, user_id)).fetchone() is not None)

    async def was_member(self, conv: ConvId, user_id: UserId) -> bool:
        return await self._run(lambda c: c.execute(
            "SELECT 1 FROM conv_members WHERE conv_id=? AND user_id=?",
            (conv, user_id)).fetchone() is not None)

    async def send_context(self, conv: ConvId, user_id: UserId) -> SendContext | None:
        return await self._run(lambda c: _send_context(c, conv, user_id))

    async def conv_members(self, conv: ConvId) -> list[UserId]:
        def job(c: sqlite3.Connection) -> list[UserId]:
            rows = c.execute("SELECT user_id FROM conv_members WHERE conv_id=? AND left_at IS NULL",
                             (conv,)).fetchall()
            return [UserId(r[0]) for r in rows]
        return await self._run(job)

    async def user_convs(self, user_id: UserId) -> list[ConvSummary]:
        def job(c: sqlite3.Connection) -> list[ConvSummary]:
            rows = c.execute(
                "SELECT cv.id, cv.kind, cv.last_seq, m.read_seq, cv.closed,"
                " (SELECT o.user_id FROM conv_members o WHERE o.conv_id=cv.id AND o.user_id<>:u"
                "  LIMIT 1),"
                # Group messages from users the reader blocked are not unread (one query).
                " CASE WHEN cv.kind='group' THEN (SELECT COUNT(*) FROM blocks b JOIN messages x"
                "  ON x.sender=b.blocked AND x.conv_id=cv.id AND x.seq>m.read_seq"
                "  WHERE b.blocker=:u) ELSE 0 END"
                " FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
                " WHERE m.user_id=:u AND m.left_at IS NULL ORDER BY cv.kind DESC, cv.id",
                {"u": user_id}).fetchall()
            return [ConvSummary(ConvId(r[0]), r[1], r[2], r[3],
                                UserId(r[5]) if r[1] == "direct" and r[5] else None, bool(r[4]),
                                max(0, r[2] - r[3] - r[6]))
                    for r in rows]
        return await self._run(job)

    async def leave_conv(self, conv: ConvId, user_id: UserId, now: int) -> bool:
        def job(c: sqlite3.Connection) -> bool:
            cur = c.execute("UPDATE conv_members SET left_at=? WHERE conv_id=? AND user_id=?"
                            " AND left_at IS NULL", (now, conv, user_id))
            if cur.rowcount:
                # A 1:1 conversation ends for both when one side leaves.
                c.execute("UPDATE conversations SET closed=1 WHERE id=? AND kind='direct'",
                          (conv,))
            return cur.rowcount == 1
        return await self._run(job)

    async def append_message(self, conv: ConvId, msg_id: str, sender: UserId, body: str, ts: int,
                             cid: str | None, flagged: bool) -> AppendResult:
        def job(c: sqlite3.Connection) -> AppendResult:
            first = _by_cid(c, sender, cid)
            if first is not None:
                return AppendResult(first, created=False)
            return _append(c, conv, msg_id, sender, body, ts, cid, flagged)
        return await self._run(job)

    async def send_message(self, conv: ConvId, msg_id: str, sender: UserId, ts: int,
                           cid: str | None, body: str,
                           flagged: bool) -> AppendResult | SendRefused:
        """One job: the retry check, the sender's right to send (a refusal is returned, not
        raised), then the insert."""
        def job(c: sqlite3.Connection) -> AppendResult | SendRefused:
            first = _by_cid(c, sender, cid)
            if first is not None:
                return AppendResult(first, created=False)
            refused = send_refusal(_send_context(c, conv, sender), ts)
            if refused is not None:
                return refused
            return _append(c, conv, msg_id, sender, body, ts, cid, flagged)
        return await self._run(job)

    async def history(self, conv: ConvId, after: int, limit: int,
                      viewer: UserId | None = None) -> list[Message]:
        """Up to ``limit`` messages with ``seq > after``, oldest first; with ``viewer``, none
        from users the viewer blocked (left out before the limit, so pages stay full)."""
        def job(c: sqlite3.Connection) -> list[Message]:
            hide = (" AND sender NOT IN (SELECT blocked FROM blocks WHERE blocker=:v)"
                    if viewer is not None else "")
            rows = c.execute(f"{MSG_COLS} WHERE conv_id=:c AND seq>:a{hide} ORDER BY seq"
                             " LIMIT :lim",
                             {"c": conv, "a": after, "v": viewer, "lim": limit}).fetchall()
            return [to_message(r) for r in rows]
        return await self._run(job)

    async def set_read(self, conv: ConvId, user_id: UserId, seq: int) -> int:
        def job(c: sqlite3.Connection) -> int:
            c.execute("UPDATE conv_members SET read_seq=MAX(read_seq, MIN(?, (SELECT last_seq FROM"
                      " conversations WHERE id=?))) WHERE conv_id=? AND user_id=?",
                      (seq, conv, conv, user_id))
            r = c.execute("SELECT read_seq FROM conv_members WHERE conv_id=? AND user_id=?",
                          (conv, user_id)).fetchone()
            return int(r[0]) if r else 0
        return await self._run(job)

    async def recent_pairs(self, users: Sequence[UserId],
                           since: int) -> set[tuple[UserId, UserId]]:
        """Pairs (a, b) among ``users`` or with them who got a 1:1 conversation since then."""
        def job(c: sqlite3.Connection) -> set[tuple[UserId, UserId]]:
            found: set[tuple[UserId, UserId]] = set()
            ids = list(users)
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                rows = c.execute(
                    "SELECT cv.pair FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
                    f" WHERE m.user_id IN ({marks}) AND cv.kind='direct' AND cv.created_at>=?",
                    (*chunk, since)).fetchall()
                for (pair,) in rows:
                    a, b = pair.split("|")
                    found.add((UserId(a), UserId(b)))
            return found
        return await self._run(job)

    # --- blocks --------------------------------------------------------------------------

    async def block(self, blocker: UserId, blocked: UserId, now: int) -> None:
        await self._run(lambda c: c.execute(
            "INSERT OR IGNORE INTO blocks(blocker, blocked, created_at) VALUES (?,?,?)",
            (blocker, blocked, now)))

    async def unblock(self, blocker: UserId, blocked: UserId) -> None:
        await self._run(lambda c: c.execute(
            "DELETE FROM blocks WHERE blocker=? AND blocked=?", (blocker, blocked)))

    async def blocked_by(self, user_id: UserId) -> set[UserId]:
        """Users that ``user_id`` blocked."""
        return await self._run(lambda c: {UserId(r[0]) for r in c.execute(
            "SELECT blocked FROM blocks WHERE blocker=?", (user_id,))})

    async def blocks_of(self, user_id: UserId) -> set[UserId]:
        """Users who blocked ``user_id``."""
        return await self._run(lambda c: {UserId(r[0]) for r in c.execute(
            "SELECT blocker FROM blocks WHERE blocked=?", (user_id,))})

    async def blocks_among(self, users: Sequence[UserId]) -> set[tuple[UserId, UserId]]:
        """Every block (blocker, blocked) with both sides in ``users``."""
        def job(c: sqlite3.Connection) -> set[tuple[UserId, UserId]]:
            ids, among = list(users), set(users)
            found: set[tuple[UserId, UserId]] = set()
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                rows = c.execute("SELECT blocker, blocked FROM blocks WHERE blocker IN"
                                 f" ({','.join('?' * len(chunk))})", chunk).fetchall()
                found.update((UserId(a), UserId(b)) for a, b in rows if b in among)
            return found
        return await self._run(job)

    async def presence_visible(self, viewer: UserId,
                               users: Sequence[UserId]) -> set[UserId]:
        """Those of ``users`` who share a current conversation (an open 1:1 or a group) with
        ``viewer``, with no block either way: one query."""
        def job(c: sqlite3.Connection) -> set[UserId]:
            ids = list(dict.fromkeys(users))[:500]
            if not ids:
                return set()
            marks = ",".join(f":o{i}" for i in range(len(ids)))
            params: dict[str, object] = {f"o{i}": u for i, u in enumerate(ids)}
            params["v"] = viewer
            rows = c.execute(
                "SELECT DISTINCT o.user_id FROM conv_members m"
                " JOIN conversations cv ON cv.id=m.conv_id AND cv.closed=0"
                " JOIN conv_members o ON o.conv_id=m.conv_id AND o.left_at IS NULL"
                f" AND o.user_id IN ({marks})"
                " WHERE m.user_id=:v AND m.left_at IS NULL"
                " AND o.user_id NOT IN (SELECT blocked FROM blocks WHERE blocker=:v)"
                " AND o.user_id NOT IN (SELECT blocker FROM blocks WHERE blocked=:v)",
                params).fetchall()
            return {UserId(r[0]) for r in rows}
        return await self._run(job)


_SEND_CONTEXT: Final = (
    "SELECT cv.kind, cv.closed,"
    " EXISTS(SELECT 1 FROM conv_members m WHERE m.conv_id=cv.id AND m.user_id=:u"
    "  AND m.left_at IS NULL),"
    " COALESCE((SELECT muted_until FROM users WHERE id=:u), 0), p.user_id,"
    " EXISTS(SELECT 1 FROM blocks b WHERE b.blocker=p.user_id AND b.blocked=:u)"
    " FROM conversations cv LEFT JOIN conv_members p"
    "  ON cv.kind='direct' AND p.conv_id=cv.id AND p.user_id<>:u"
    " WHERE cv.id=:c LIMIT 1")


def _send_context(c: sqlite3.Connection, conv: ConvId, user_id: UserId) -> SendContext | None:
    """Everything a send must know, in one statement (it runs once per message)."""
    r = c.execute(_SEND_CONTEXT, {"c": conv, "u": user_id}).fetchone()
    if r is None:
        return None
    peer = UserId(r[4]) if r[4] is not None else None
    return SendContext(r[0], bool(r[1]), bool(r[2]), peer, bool(r[5]), int(r[3]))


def _by_cid(c: sqlite3.Connection, sender: UserId, cid: str | None) -> Message | None:
    if cid is None:
        return None
    r = c.execute(f"{MSG_COLS} WHERE sender=? AND cid=?", (sender, cid)).fetchone()
    return to_message(r) if r else None


def _append(c: sqlite3.Connection, conv: ConvId, msg_id: str, sender: UserId, body: str,
            ts: int, cid: str | None, flagged: bool) -> AppendResult:
    # The seq is taken and the row inserted in one transaction: no gaps, no duplicates.
    row = c.execute("UPDATE conversations SET last_seq=last_seq+1 WHERE id=? RETURNING last_seq",
                    (conv,)).fetchone()
    if row is None:
        raise StoreError("no such conversation")
    seq = int(row[0])
    c.execute("INSERT INTO messages(conv_id, seq, id, sender, body, ts, cid, flagged)"
              " VALUES (?,?,?,?,?,?,?,?)", (conv, seq, msg_id, sender, body, ts, cid, int(flagged)))
    return AppendResult(Message(conv, msg_id, seq, sender, body, ts), created=True)

