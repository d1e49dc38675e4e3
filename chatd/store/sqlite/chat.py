"""Chat on SQLite: conversations and their members, messages, read marks, blocks."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

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
from chatd.store.sqlite.engine import Engine

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
        """The user's current conversations with what a chat list shows, newest activity
        first: one statement for the summaries, one lookup per last message."""
        def job(c: sqlite3.Connection) -> list[ConvSummary]:
            rows = c.execute(_USER_CONVS, {"u": user_id, "cap": UNREAD_CAP}).fetchall()
            out = []
            for r in rows:
                last = None
                if r[12] is not None:
                    row = c.execute(f"{MSG_COLS} WHERE m.conv_id=? AND m.seq=?",
                                    (r[0], r[12])).fetchone()
                    last = message_row(row) if row else None
                direct = r[1] == "direct"
                out.append(ConvSummary(
                    ConvId(r[0]), r[1], r[2], r[3], UserId(r[7]) if direct and r[7] else None,
                    bool(r[4]), int(r[13]), last, int(r[11] if r[11] is not None else r[6]),
                    int(r[5]), r[8] or "", int(r[9] or 0), int(r[10] or 0), r[14] or ""))
            out.sort(key=lambda s: (-s.active_at, s.id))
            return out
        return await self._run(job)

    async def conv_seqs(self, user_id: UserId) -> dict[ConvId, int]:
        return await self._run(lambda c: {ConvId(r[0]): int(r[1]) for r in c.execute(
            "SELECT cv.id, cv.last_seq FROM conv_members m JOIN conversations cv"
            " ON cv.id=m.conv_id WHERE m.user_id=? AND m.left_at IS NULL", (user_id,))})

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
                           cid: str | None, body: str, flagged: bool,
                           reply_to: str | None = None,
                           attachments: str = "") -> AppendResult | SendRefused:
        """One job: the retry check, the sender's right to send (a refusal is returned, not
        raised), the reply target, then the insert."""
        def job(c: sqlite3.Connection) -> AppendResult | SendRefused:
            first = _by_cid(c, sender, cid)
            if first is not None:
                return AppendResult(first, created=False)
            refused = send_refusal(_send_context(c, conv, sender), ts)
            if refused is not None:
                return refused
            quote = None
            if reply_to is not None:
                quote = _quote(c, conv, reply_to)
                if quote is None:
                    return SendRefused("no_reply_target")
            return _append(c, conv, msg_id, sender, body, ts, cid, flagged, quote, attachments)
        return await self._run(job)

    async def history(self, conv: ConvId, after: int, limit: int,
                      viewer: UserId | None = None,
                      hide_blocked: bool = False) -> list[Message]:
        def job(c: sqlite3.Connection) -> list[Message]:
            where = "m.conv_id=:c AND m.seq>:a"
            if viewer is not None:
                where += " AND NOT EXISTS(SELECT 1 FROM message_hides h WHERE h.user_id=:v" \
                         " AND h.conv_id=m.conv_id AND h.seq=m.seq)"
                if hide_blocked:
                    where += " AND m.sender NOT IN (SELECT blocked FROM blocks WHERE blocker=:v)"
            rows = c.execute(f"{MSG_COLS} WHERE {where} ORDER BY m.seq LIMIT :lim",
                             {"c": conv, "a": after, "v": viewer, "lim": limit}).fetchall()
            return [message_row(r) for r in rows]
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

    async def mark_delivered(self, marks: Sequence[tuple[ConvId, UserId, int]]
                             ) -> list[tuple[ConvId, UserId, int]]:
        def job(c: sqlite3.Connection) -> list[tuple[ConvId, UserId, int]]:
            raised = []
            for conv, user, seq in marks:
                r = c.execute("UPDATE conv_members SET delivered_seq=MIN(:s, (SELECT last_seq"
                              " FROM conversations WHERE id=:c)) WHERE conv_id=:c AND user_id=:u"
                              " AND delivered_seq<MIN(:s, (SELECT last_seq FROM conversations"
                              " WHERE id=:c)) RETURNING delivered_seq",
                              {"c": conv, "u": user, "s": seq}).fetchone()
                if r is not None:
                    raised.append((conv, user, int(r[0])))
            return raised
        return await self._run(job)

    async def recall_message(self, conv: ConvId, msg_id: str, sender: UserId, now: int,
                             window_ms: int) -> Message | RecallRefused:
        def job(c: sqlite3.Connection) -> Message | RecallRefused:
            r = c.execute("SELECT sender, ts, recalled FROM messages WHERE id=? AND conv_id=?",
                          (msg_id, conv)).fetchone()
            if r is None:
                return "not_found"
            if r[0] != sender:
                return "not_sender"
            if not r[2]:
                if now - r[1] > window_ms:
                    return "too_late"
                c.execute("UPDATE messages SET body='', attachments='', recalled=1, flagged=0"
                          " WHERE id=?", (msg_id,))
                self._erased()  # the text must leave the WAL too, not only the table
            return message_row(c.execute(f"{MSG_COLS} WHERE m.id=?", (msg_id,)).fetchone())
        return await self._run(job)

    async def hide_message(self, conv: ConvId, msg_id: str, user_id: UserId) -> Message | None:
        def job(c: sqlite3.Connection) -> Message | None:
            r = c.execute(f"{MSG_COLS} WHERE m.id=? AND m.conv_id=?", (msg_id, conv)).fetchone()
            if r is None:
                return None
            msg = message_row(r)
            c.execute("INSERT OR IGNORE INTO message_hides(user_id, conv_id, seq) VALUES (?,?,?)",
                      (user_id, conv, msg.seq))
            return msg
        return await self._run(job)

    async def set_conv_mute(self, conv: ConvId, user_id: UserId, until: int) -> bool:
        return await self._run(lambda c: c.execute(
            "UPDATE conv_members SET mute_until=? WHERE conv_id=? AND user_id=?"
            " AND left_at IS NULL", (until, conv, user_id)).rowcount == 1)

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


# Hidden messages and (in groups) messages of blocked users are not the reader's "last";
# unread leaves out the reader's own, blocked, hidden, recalled and removed messages and
# looks at the newest ``cap`` seqs only (an index range, however far behind the reader is).
_VISIBLE: Final = (
    " AND NOT EXISTS(SELECT 1 FROM message_hides h WHERE h.user_id=:u AND h.conv_id=x.conv_id"
    "  AND h.seq=x.seq)")
_USER_CONVS: Final = (
    "SELECT cv.id, cv.kind, cv.last_seq, m.read_seq, cv.closed, m.mute_until, m.joined_at,"
    " p.user_id, pu.nickname, p.read_seq, p.delivered_seq,"
    " (SELECT x.ts FROM messages x WHERE x.conv_id=cv.id AND x.seq=cv.last_seq),"
    " (SELECT x.seq FROM messages x WHERE x.conv_id=cv.id" + _VISIBLE +
    "  AND (cv.kind='direct' OR x.sender NOT IN (SELECT blocked FROM blocks WHERE blocker=:u))"
    "  ORDER BY x.seq DESC LIMIT 1),"
    " (SELECT COUNT(*) FROM messages x WHERE x.conv_id=cv.id"
    "  AND x.seq>MAX(m.read_seq, cv.last_seq-:cap) AND x.sender<>:u AND x.recalled=0"
    "  AND x.deleted=0 AND x.sender NOT IN (SELECT blocked FROM blocks WHERE blocker=:u)"
    + _VISIBLE + "), pu.avatar"
    " FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
    " LEFT JOIN conv_members p ON cv.kind='direct' AND p.conv_id=cv.id AND p.user_id<>:u"
    " LEFT JOIN users pu ON pu.id=p.user_id"
    " WHERE m.user_id=:u AND m.left_at IS NULL")

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
    r = c.execute(f"{MSG_COLS} WHERE m.sender=? AND m.cid=?", (sender, cid)).fetchone()
    return message_row(r) if r else None


def _quote(c: sqlite3.Connection, conv: ConvId, msg_id: str) -> Quote | None:
    r = c.execute("SELECT seq, sender, body, recalled, deleted FROM messages WHERE id=?"
                  " AND conv_id=?", (msg_id, conv)).fetchone()
    if r is None:
        return None
    return quote_row(msg_id, r)


def _append(c: sqlite3.Connection, conv: ConvId, msg_id: str, sender: UserId, body: str,
            ts: int, cid: str | None, flagged: bool, quote: Quote | None = None,
            attachments: str = "") -> AppendResult:
    # The seq is taken and the row inserted in one transaction: no gaps, no duplicates.
    row = c.execute("UPDATE conversations SET last_seq=last_seq+1 WHERE id=? RETURNING last_seq",
                    (conv,)).fetchone()
    if row is None:
        raise StoreError("no such conversation")
    seq = int(row[0])
    reply_to = quote.id if quote is not None else None
    c.execute("INSERT INTO messages(conv_id, seq, id, sender, body, ts, cid, flagged, reply_to,"
              " attachments) VALUES (?,?,?,?,?,?,?,?,?,?)",
              (conv, seq, msg_id, sender, body, ts, cid, int(flagged), reply_to, attachments))
    return AppendResult(Message(conv, msg_id, seq, sender, body, ts, reply_to=reply_to,
                                quote=quote, attachments=parse_attachments(attachments)),
                        created=True)

