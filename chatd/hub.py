"""Local bookkeeping: which sessions of which users are on this node, and their conversations.

Plain synchronous code: no I/O, no awaits. The node asks it who to deliver to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from chatd.ids import ConvId, UserId
from chatd.protocol import Codec, Frame

__all__ = ["Conn", "Hub"]


class Conn(Protocol):
    """One authenticated connection as the hub sees it."""

    cid: str
    codec: Codec

    @property
    def user_id(self) -> UserId | None: ...
    @property
    def token_hash(self) -> bytes | None: ...

    def enqueue(self, frame: Frame) -> bool: ...
    def enqueue_shared(self, frame: Frame, wire: dict[str, bytes]) -> bool: ...
    def close_soon(self, code: int, reason: str) -> None: ...


class Hub:
    def __init__(self) -> None:
        self._by_user: dict[UserId, set[Conn]] = {}
        self._members: dict[ConvId, set[UserId]] = {}
        self._convs_of: dict[UserId, set[ConvId]] = {}
        # Users each local user blocked: their group messages are not delivered to the blocker.
        self._blocked: dict[UserId, set[UserId]] = {}

    def add(self, conn: Conn, user_id: UserId, convs: Iterable[ConvId],
            blocked: Iterable[UserId]) -> bool:
        """Register an authenticated connection; True when the user just came online here."""
        first = user_id not in self._by_user
        self._by_user.setdefault(user_id, set()).add(conn)
        if first:
            self._blocked[user_id] = set(blocked)
            for conv in convs:
                self.join(user_id, conv)
        return first

    def remove(self, conn: Conn) -> list[ConvId]:
        """Forget a connection; returns the conversations with no local member left."""
        user_id = conn.user_id
        if user_id is None or conn not in self._by_user.get(user_id, ()):
            return []
        conns = self._by_user[user_id]
        conns.discard(conn)
        if conns:
            return []
        del self._by_user[user_id]
        self._blocked.pop(user_id, None)
        emptied = []
        for conv in self._convs_of.pop(user_id, set()):
            members = self._members.get(conv)
            if members is not None:
                members.discard(user_id)
                if not members:
                    del self._members[conv]
                    emptied.append(conv)
        return emptied

    def join(self, user_id: UserId, conv: ConvId) -> bool:
        """Add a local online user to a conversation; True when it is the first local member."""
        if user_id not in self._by_user:
            return False
        members = self._members.setdefault(conv, set())
        first = not members
        members.add(user_id)
        self._convs_of.setdefault(user_id, set()).add(conv)
        return first

    def leave(self, user_id: UserId, conv: ConvId) -> bool:
        """Remove a user from a conversation; True when no local member is left."""
        self._convs_of.get(user_id, set()).discard(conv)
        members = self._members.get(conv)
        if members is None:
            return False
        members.discard(user_id)
        if not members:
            del self._members[conv]
            return True
        return False

    def set_blocked(self, user_id: UserId, blocked: Iterable[UserId]) -> None:
        if user_id in self._by_user:
            self._blocked[user_id] = set(blocked)

    def conns_of(self, user_id: UserId) -> set[Conn]:
        return self._by_user.get(user_id, set())

    def recipients(self, conv: ConvId, sender: UserId | None = None) -> Iterator[Conn]:
        """Every local connection of every local member, minus members who blocked the sender."""
        for user_id in self._members.get(conv, ()):
            if sender is not None and sender in self._blocked.get(user_id, ()):
                continue
            yield from self._by_user.get(user_id, ())

    def every_conn(self) -> Iterator[Conn]:
        """Every authenticated local connection."""
        for conns in self._by_user.values():
            yield from conns

    def has_conv(self, conv: ConvId) -> bool:
        return conv in self._members

    def online(self, user_id: UserId) -> bool:
        return user_id in self._by_user

    @property
    def connections(self) -> int:
        return sum(len(c) for c in self._by_user.values())
