"""The broker carries events between nodes. This module holds the contract and the memory one.

Contract: ``publish`` delivers the payload AT MOST ONCE to every node subscribed to the channel
at that moment, in publish order per channel from one publisher; nothing is stored. Durable
history plus the per-conversation ``seq`` make any gap recoverable (clients ask ``history``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["Broker", "Handler", "MemoryBroker"]

Handler = Callable[[str, bytes], Awaitable[None] | None]


class Broker(Protocol):
    async def start(self, handler: Handler) -> None: ...
    async def close(self) -> None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...
    async def publish(self, channel: str, payload: bytes) -> None: ...

    @property
    def healthy(self) -> bool: ...


class MemoryBroker:
    """One node alone: a publish is handed straight back to this node's handler."""

    def __init__(self) -> None:
        self._handler: Handler | None = None
        self._channels: set[str] = set()

    async def start(self, handler: Handler) -> None:
        self._handler = handler

    async def close(self) -> None:
        self._handler = None

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, payload: bytes) -> None:
        if self._handler is not None and channel in self._channels:
            result = self._handler(channel, payload)
            if result is not None:
                await result

    @property
    def healthy(self) -> bool:
        return True
