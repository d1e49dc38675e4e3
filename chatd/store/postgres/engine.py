"""The PostgreSQL store: one database shared by several chatd nodes, through an asyncpg pool.

Semantics are those of :class:`chatd.store.sqlite.SQLiteStore` (the reference), made safe for
concurrent writers on different hosts:

- a message's ``seq`` is ``conversations.last_seq + 1``, taken by ``UPDATE ... RETURNING`` in
  the same statement that inserts the message: the conversation row lock serialises writers,
  so seqs have no gaps and no duplicates however many nodes append at once;
- a retried client id (``sender``, ``cid``) answers with the first message; two racing retries
  are settled by the partial unique index, the loser reading the winner's row;
- multi-statement writes run in one transaction; every acknowledged write is committed;
- migrations run under a transaction-scoped advisory lock, so nodes starting together apply
  each migration once.

Unique violations raise :class:`DuplicateError`; every other database or connection failure
raises :class:`StoreError`. This is the only module that imports ``asyncpg``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final

import asyncpg

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
from chatd.store.pg_schema import MIGRATIONS
from chatd.store.pg_social import PostgresSocialMixin

__all__ = ["PostgresStore"]

log = logging.getLogger("chatd.store")

# Errors that mean "the database could not do it": server errors, client/protocol errors,
# and socket failures (refused, reset, timed out: TimeoutError is an OSError).
_DB_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
# Key of the advisory lock that serialises migrations across nodes ("chatd" in ASCII, then 1).
_MIGRATION_LOCK: Final = 0x6368_6174_6400_0001

_USER_COLS: Final = ("SELECT u.id, u.phone, u.pw_hash, u.birthdate, u.gender, u.nickname, u.bio,"
                     " u.role, u.created_at, u.banned_until, u.muted_until,"
                     " ARRAY(SELECT i.tag FROM user_interests i WHERE i.user_id=u.id"
                     " ORDER BY i.pos) AS tags FROM users u")
_MSG_COLS: Final = "SELECT conv_id, id, seq, sender, body, ts, deleted FROM messages"


class PostgresStore(PostgresSocialMixin):
    """A :class:`chatd.store.base.Store` on PostgreSQL (tested against 15).

    ``open()`` creates the pool and migrates the schema; ``close()`` waits for borrowed
    connections and closes the pool. Calls on a store that is not open raise StoreError.
    """

    def __init__(self, dsn: str, min_size: int = 2, max_size: int = 10) -> None:
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self._pool: Any = None
        # Same counters as SQLiteStore (the store bench reads them). Without group commit
        # every write is its own transaction, so they grow together.
        self.commits = 0
        self.jobs_run = 0

    # --- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(self.dsn, min_size=self.min_size,
                                             max_size=self.max_size)
        except _DB_ERRORS as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
        try:
            async with pool.acquire() as c:
                await _migrate(c)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, _DB_ERRORS):
                raise StoreError(f"migration failed: {exc}") from exc
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        """A pooled connection; asyncpg errors leave as DuplicateError or StoreError."""
        pool = self._pool
        if pool is None:
            raise StoreError("store is closed")
        try:
            async with pool.acquire() as c:
                yield c
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateError(str(exc)) from exc
        except _DB_ERRORS as exc:
            raise StoreError(f"database error: {exc}") from exc

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        """A connection inside a transaction that commits when the block exits cleanly."""
        async with self._conn() as c, c.transaction():
            yield c
        self._committed()

    async def _write(self, sql: str, *args: object) -> None:
        """One statement, committed on its own."""
        async with self._conn() as c:
            await c.execute(sql, *args)
        self._committed()

    def _committed(self) -> None:
        self.commits += 1
        self.jobs_run += 1

    # --- users ---------------------------------------------------------------------------

    async def create_user(self, user: User, group_convs: Sequence[ConvId]) -> None:
        async with self._tx() as c:
            await c.execute(
                "INSERT INTO users(id, phone, pw_hash, birthdate, gender, nickname, bio, role,"
                " created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
                user.id, user.phone, user.pw_hash, user.birthdate, user.gender, user.nickname,
                user.bio, user.role, user.created_at)
            await _set_interests(c, user.id, user.interests, group_convs, user.created_at)

    async def get_user(self, user_id: UserId) -> User | None:
        async with self._conn() as c:
            return await _load_user(c, "id", user_id)

    async def get_user_by_phone(self, phone: str) -> User | None:
        async with self._conn() as c:
            return await _load_user(c, "phone", phone)

    async def set_password(self, user_id: UserId, pw_hash: str) -> None:
        await self._write("UPDATE users SET pw_hash=$2 WHERE id=$1", user_id, pw_hash)

    async def set_phone(self, user_id: UserId, phone: str) -> None:
        """DuplicateError when another user has ``phone``."""
        await self._write("UPDATE users SET phone=$2 WHERE id=$1", user_id, phone)

    async def update_profile(self, user_id: UserId, nickname: str | None, bio: str | None,
                             interests: Sequence[str] | None,
                             group_convs: Sequence[ConvId] | None) -> User:
        """None leaves a field as it is; interests change only with their group list."""
        async with self._tx() as c:
            await c.execute("UPDATE users SET nickname=COALESCE($2, nickname),"
                            " bio=COALESCE($3, bio) WHERE id=$1", user_id, nickname, bio)
            if interests is not None and group_convs is not None:
                await _set_interests(c, user_id, interests, group_convs, _now_ms())
            user = await _load_user(c, "id", user_id)
            if user is None:
                raise StoreError("no such user")
            return user

    # --- sessions ------------------------------------------------------------------------

    async def create_session(self, row: SessionRow) -> None:
        await self._write(
            "INSERT INTO sessions(token_hash, user_id, device, created_at, expires_at)"
            " VALUES ($1,$2,$3,$4,$5)",
            row.token_hash, row.user_id, row.device, row.created_at, row.expires_at)

    async def get_session(self, token_hash: bytes, now: int) -> SessionRow | None:
        """The session unless it expired (``expires_at <= now``)."""
        async with self._conn() as c:
            r = await c.fetchrow(
                "SELECT token_hash, user_id, device, created_at, expires_at FROM sessions"
                " WHERE token_hash=$1 AND expires_at>$2", token_hash, now)
        if r is None:
            return None
        return SessionRow(bytes(r[0]), UserId(r[1]), r[2], r[3], r[4])

    async def delete_session(self, token_hash: bytes) -> None:
        await self._write("DELETE FROM sessions WHERE token_hash=$1", token_hash)

    async def delete_user_sessions(self, user_id: UserId,
                                   keep: bytes | None = None) -> list[bytes]:
        """Delete every session of the user but ``keep``; return the deleted token hashes."""
        async with self._conn() as c:
            rows = await c.fetch("DELETE FROM sessions WHERE user_id=$1"
                                 " AND token_hash IS DISTINCT FROM $2 RETURNING token_hash",
                                 user_id, keep)
        self._committed()
        return [bytes(r[0]) for r in rows]

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
        await self._write("UPDATE sms_codes SET attempts=attempts+1 WHERE id=$1", code_id)

    async def sms_code_used(self, code_id: int) -> bool:
        """Mark a code used; False when it already was (a concurrent use won)."""
        async with self._conn() as c:
            done = await c.fetchval("UPDATE sms_codes SET used=TRUE WHERE id=$1 AND NOT used"
                                    " RETURNING id", code_id)
        self._committed()
        return done is not None

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

    async def get_users(self, user_ids: Sequence[UserId]) -> dict[UserId, User]:
        found = {}
        async with self._conn() as c:
            for user_id in user_ids:
                user = await _load_user(c, "id", user_id)
                if user is not None:
                    found[user.id] = user
        return found

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
                "  ORDER BY o.user_id COLLATE \"C\" LIMIT 1)"
                " FROM conv_members m JOIN conversations cv ON cv.id=m.conv_id"
                " WHERE m.user_id=$1 AND m.left_at IS NULL"
                " ORDER BY cv.kind DESC, cv.id COLLATE \"C\"", user_id)
        return [ConvSummary(ConvId(r[0]), r[1], r[2], r[3],
                            UserId(r[5]) if r[1] == "direct" and r[5] else None, bool(r[4]))
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
        self._committed()
        return AppendResult(Message(conv, msg_id, int(seq), sender, body, ts), created=True)

    async def history(self, conv: ConvId, after: int, limit: int) -> list[Message]:
        """Up to ``limit`` messages with ``seq > after``, oldest first."""
        async with self._conn() as c:
            rows = await c.fetch(f"{_MSG_COLS} WHERE conv_id=$1 AND seq>$2 ORDER BY seq"
                                 " LIMIT $3", conv, after, limit)
        return [_message(r) for r in rows]

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
        await self._write("INSERT INTO blocks(blocker, blocked, created_at) VALUES ($1,$2,$3)"
                          " ON CONFLICT DO NOTHING", blocker, blocked, now)

    async def unblock(self, blocker: UserId, blocked: UserId) -> None:
        await self._write("DELETE FROM blocks WHERE blocker=$1 AND blocked=$2", blocker, blocked)

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


# --- helpers --------------------------------------------------------------------------------

def _now_ms() -> int:
    return int(time.time() * 1000)


async def _migrate(c: Any) -> None:
    """Apply the pending migrations in one transaction, holding the migration lock."""
    async with c.transaction():
        # Taken before anything else: even CREATE TABLE IF NOT EXISTS races without it.
        await c.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await c.execute("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)")
        current = await c.fetchval("SELECT version FROM schema_version")
        if current is None:
            await c.execute("INSERT INTO schema_version(version) VALUES (0)")
            current = 0
        if current > len(MIGRATIONS):
            raise StoreError(f"database schema {current} is newer than this chatd "
                             f"({len(MIGRATIONS)}); upgrade chatd")
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            await c.execute(script)  # no arguments: the simple protocol runs every statement
            await c.execute("UPDATE schema_version SET version=$1", version)
            log.info("store migrated to schema %d", version)


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
    r = await c.fetchrow(f"{_MSG_COLS} WHERE sender=$1 AND cid=$2", sender, cid)
    return _message(r) if r is not None else None


# The seq is taken and the message inserted in one statement: the UPDATE locks the
# conversation row until the insert commits, and a failed insert gives the seq back.
_APPEND = ("WITH s AS (UPDATE conversations SET last_seq=last_seq+1 WHERE id=$1"
           " RETURNING last_seq)"
           " INSERT INTO messages(conv_id, seq, id, sender, body, ts, cid, flagged)"
           " SELECT $1, s.last_seq, $2, $3, $4, $5, $6, $7 FROM s RETURNING seq")


async def _load_user(c: Any, column: str, value: str) -> User | None:
    assert column in ("id", "phone")  # never user input: the column name is interpolated
    r = await c.fetchrow(f"{_USER_COLS} WHERE u.{column}=$1", value)
    if r is None:
        return None
    return _load_user_row(r)


def _load_user_row(r: Any) -> User:
    return User(UserId(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], tuple(r[11]),
                r[9], r[10])


def _message(r: Any) -> Message:
    return Message(ConvId(r[0]), r[1], r[2], UserId(r[3]), r[4], r[5], bool(r[6]))
