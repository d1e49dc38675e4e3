"""Presence: which users are online, on any node. The contract and the memory implementation.

Contract: ``add``/``remove`` say that THIS node holds (or no longer holds) a session of the user;
``online`` answers for every node. An implementation shared between nodes must forget a node
that stopped refreshing (crashed) within its TTL. The Redis one is :mod:`chatd.presence.redis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chatd.ids import UserId

__all__ = ["MemoryPresence", "Presence"]


class Presence(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def add(self, user_id: UserId) -> None: ...
    async def remove(self, user_id: UserId) -> None: ...
    async def online(self, users: Sequence[UserId]) -> dict[UserId, bool]: ...


class MemoryPresence:
    """One node alone: online means a session on this node."""

    def __init__(self) -> None:
        self._users: set[UserId] = set()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._users.clear()

    async def add(self, user_id: UserId) -> None:
        self._users.add(user_id)

    async def remove(self, user_id: UserId) -> None:
        self._users.discard(user_id)

    async def online(self, users: Sequence[UserId]) -> dict[UserId, bool]:
        return {u: u in self._users for u in users}
