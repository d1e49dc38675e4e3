"""The embedded SQLite store: WAL, foreign keys, versioned migrations, group commit.

All SQL runs on one worker thread that owns the connection, so the event loop never blocks.
The worker drains every job queued while it was busy and runs them in ONE transaction: under
load many messages share one fsync, which is what keeps durability from capping throughput.
If a job raises, the batch is replayed with a savepoint per job, so one failing job does not
undo the others. A job's future resolves only after its transaction committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from chatd.store.base import (
    AppendResult,
    ConvId,
    ConvSummary,
    DuplicateError,
    Message,
    SendContext,
    SendRefused,
    SessionRow,
    SmsCodeRow,
    StoreError,
    User,
    UserId,
    send_refusal,
)
from chatd.store.schema import MIGRATIONS
from chatd.store.sqlite_social import SQLiteSocialMixin

__all__ = ["SQLiteStore"]

log = logging.getLogger("chatd.store")
T = TypeVar("T")
Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
_STOP: Final = object()


class SQLiteStore(SQLiteSocialMixin):
    def __init__(self, path: Path, max_batch: int = 512, synchronous: str = "full") -> None:
        self.path = path
        # "full": a commit is on disk before its future resolves (acknowledged means durable,
        # power loss included). "normal" (WAL): it survives a crash of chatd, not of the host.
        if synchronous not in ("full", "normal"):
            raise ValueError("synchronous must be 'full' or 'normal'")
        self.synchronous = synchronous
        # Jobs per transaction; 1 turns group commit off (the bench's baseline).
        self.max_batch = max_batch
        self._jobs: queue.SimpleQueue[Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self.commits = 0  # transactions committed (group-commit measurement)
        self.jobs_run = 0

    # --- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()

        def start() -> None:
            try:
                self._conn = self._connect()
            except BaseException as exc:
                loop.call_soon_threadsafe(_settle, ready, None, exc)
                return
            loop.call_soon_threadsafe(_settle, ready, None, None)
            self._worker()

        self._thread = threading.Thread(target=start, name="chatd-sqlite", daemon=True)
        self._thread.start()
        await ready

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        _migrate(conn)
        return conn

    async def close(self) -> None:
        if self._thread is None:
            return
        self._jobs.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    # --- the worker ----------------------------------------------------------------------

    def _worker(self) -> None:
        conn = self._conn
        assert conn is not None
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is _STOP:
                break
            batch: list[Job] = [first]  # type: ignore[list-item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                batch.append(nxt)  # type: ignore[arg-type]
            self._run_batch(conn, batch)
        conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Job]) -> None:
        try:
            # Fast path: the whole batch in one transaction, no savepoints. Jobs are functions
            # of the database alone, so if one raises, the batch is rolled back and replayed
            # with a savepoint per job (refusals such as `forbidden` are rare).
            try:
                results = self._transaction(conn, batch, isolate=False)
            except _JobFailed:
                results = self._transaction(conn, batch, isolate=True)
            self.commits += 1
            self.jobs_run += len(batch)
        except sqlite3.Error as exc:
            log.error("transaction failed: %s", exc)
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            failure = StoreError(f"database error: {exc}")
            results = [(None, failure) for _ in batch]
        # One wake-up of each event loop per batch, not one per job.
        by_loop: dict[asyncio.AbstractEventLoop, tuple[list[Any], list[Any]]] = {}
        for (_, loop, fut), result in zip(batch, results, strict=True):
            futures, outcomes = by_loop.setdefault(loop, ([], []))
            futures.append(fut)
            outcomes.append(result)
        for loop, (futures, outcomes) in by_loop.items():
            loop.call_soon_threadsafe(_settle_all, futures, outcomes)

    def _transaction(self, conn: sqlite3.Connection, batch: list[Job],
                     isolate: bool) -> list[tuple[Any, BaseException | None]]:
        results: list[tuple[Any, BaseException | None]] = []
        conn.execute("BEGIN IMMEDIATE")
        for fn, _, _ in batch:
            if isolate:
                conn.execute("SAVEPOINT job")
            try:
                value = fn(conn)
            except Exception as exc:
                if not isolate:
                    conn.execute("ROLLBACK")
                    raise _JobFailed from exc
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                results.append((None, _translate(exc)))
            else:
                if isolate:
                    conn.execute("RELEASE job")
                results.append((value, None))
        conn.execute("COMMIT")
        return results

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._thread is None:
            raise StoreError("store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, loop, fut))
        return await fut

    # --- users ---------------------------------------------------------------------------

    async def create_user(self, user: User, group_convs: Sequence[ConvId]) -> None:
        def job(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO users(id, phone, pw_hash, birthdate, gender, nickname, bio, role,"
                " created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (user.id, user.phone, user.pw_hash, user.birthdate, user.gender, user.nickname,
                 user.bio, user.role, user.created_at))
            _set_interests(c, user.id, user.interests, group_convs, user.created_at)
        await self._run(job)

    async def get_user(self, user_id: UserId) -> User | None:
        return await self._run(lambda c: _load_user(c, "id", user_id))

    async def get_user_by_phone(self, phone: str) -> User | None:
        return await self._run(lambda c: _load_user(c, "phone", phone))

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
                now = _now_ms()
                _set_interests(c, user_id, interests, group_convs, now)
            user = _load_user(c, "id", user_id)
            if user is None:
                raise StoreError("no such user")
            return user
        return await self._run(job)

    # --- sessions ------------------------------------------------------------------------

    async def create_session(self, row: SessionRow) -> None:
        await self._run(lambda c: c.execute(
            "INSERT INTO sessions(token_hash, user_id, device, created_at, expires_at)"
            " VALUES (?,?,?,?,?)",
            (row.token_hash, row.user_id, row.device, row.created_at, row.expires_at)))

    async def get_session(self, token_hash: bytes, now: int) -> SessionRow | None:
        def job(c: sqlite3.Connection) -> SessionRow | None:
            r = c.execute("SELECT token_hash, user_id, device, created_at, expires_at FROM sessions"
                          " WHERE token_hash=? AND expires_at>?", (token_hash, now)).fetchone()
            return SessionRow(r[0], UserId(r[1]), r[2], r[3], r[4]) if r else None
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

    async def get_users(self, user_ids: Sequence[UserId]) -> dict[UserId, User]:
        def job(c: sqlite3.Connection) -> dict[UserId, User]:
            found = {}
            for user_id in user_ids:
                user = _load_user(c, "id", user_id)
                if user is not None:
                    found[user.id] = user
            return found
        return await self._run(job)

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
                " (SELECT o.user_id FROM conv_members o WHERE o.conv_id=cv.id AND o.user_id<>?"
                "  LIMIT 1)"
                " FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
                " WHERE m.user_id=? AND m.left_at IS NULL ORDER BY cv.kind DESC, cv.id",
                (user_id, user_id)).fetchall()
            return [ConvSummary(ConvId(r[0]), r[1], r[2], r[3],
                                UserId(r[5]) if r[1] == "direct" and r[5] else None, bool(r[4]))
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

    async def history(self, conv: ConvId, after: int, limit: int) -> list[Message]:
        def job(c: sqlite3.Connection) -> list[Message]:
            rows = c.execute("SELECT conv_id, id, seq, sender, body, ts, deleted FROM messages"
                             " WHERE conv_id=? AND seq>? ORDER BY seq LIMIT ?",
                             (conv, after, limit)).fetchall()
            return [_message(r) for r in rows]
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


# --- helpers --------------------------------------------------------------------------------

class _JobFailed(Exception):
    """A job raised in the fast path: replay the batch with savepoints."""


def _settle(fut: asyncio.Future[Any], value: Any, err: BaseException | None) -> None:
    if fut.done():
        return
    if err is not None:
        fut.set_exception(err)
    else:
        fut.set_result(value)


def _settle_all(futures: list[asyncio.Future[Any]],
                results: list[tuple[Any, BaseException | None]]) -> None:
    for fut, (value, err) in zip(futures, results, strict=True):
        _settle(fut, value, err)


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
        return DuplicateError(str(exc))
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"database error: {exc}")
    return exc


def _now_ms() -> int:
    import time
    return int(time.time() * 1000)


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    current = row[0] if row else 0
    if row is None:
        conn.execute("INSERT INTO schema_version(version) VALUES (0)")
    if current > len(MIGRATIONS):
        raise StoreError(f"database schema {current} is newer than this chatd "
                         f"({len(MIGRATIONS)}); upgrade chatd")
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        conn.execute("BEGIN IMMEDIATE")
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("UPDATE schema_version SET version=?", (version,))
        conn.execute("COMMIT")
        log.info("store migrated to schema %d", version)


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
    r = c.execute("SELECT conv_id, id, seq, sender, body, ts, deleted FROM messages"
                  " WHERE sender=? AND cid=?", (sender, cid)).fetchone()
    return _message(r) if r else None


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


def _load_user(c: sqlite3.Connection, column: str, value: str) -> User | None:
    r = c.execute("SELECT id, phone, pw_hash, birthdate, gender, nickname, bio, role, created_at,"
                  f" banned_until, muted_until FROM users WHERE {column}=?", (value,)).fetchone()
    if r is None:
        return None
    tags = tuple(t[0] for t in c.execute(
        "SELECT tag FROM user_interests WHERE user_id=? ORDER BY pos", (r[0],)))
    return User(UserId(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], tags, r[9], r[10])


def _message(r: Sequence[Any]) -> Message:
    return Message(ConvId(r[0]), r[1], r[2], UserId(r[3]), r[4], r[5],
                   bool(r[6]) if len(r) > 6 else False)
