"""The broker carries events between nodes: the contract, and the memory one (one node alone).

Contract: ``publish`` delivers the message AT MOST ONCE to every node subscribed to the channel
at that moment, in publish order per channel from one publisher; nothing is stored. Durable
history plus the per-conversation ``seq`` make any gap recoverable: after a broker outage
the node calls the ``on_reconnect`` hook so it can catch up from the store.
``publish`` raises :class:`BrokerUnavailable` when it cannot reach the broker; the node then
delivers locally, so one node keeps serving its own users.
The Redis implementation is in :mod:`chatd.broker.redis`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

__all__ = ["Broker", "BrokerUnavailable", "Handler", "MemoryBroker", "Message", "ReconnectHook"]

#: What crosses the broker: plain data msgpack can carry (maps, lists, str, bytes, ints).
#: How it travels is the broker's business: the memory broker hands the same object back
#: (receivers must not change it), the Redis one sends it as MessagePack.
Message = Any
Handler = Callable[[str, Message], Awaitable[None] | None]
ReconnectHook = Callable[[], Awaitable[None]]


class BrokerUnavailable(Exception):
    """The broker cannot be reached right now."""


class Broker(Protocol):
    #: True when a publish reaches only this node (no other node can exist).
    local_only: bool

    async def start(self, handler: Handler, on_reconnect: ReconnectHook | None = None) -> None: ...
    async def close(self) -> None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...
    async def publish(self, channel: str, message: Message) -> None: ...

    @property
    def healthy(self) -> bool: ...


class MemoryBroker:
    """One node alone: a publish is handed straight back to this node's handler."""

    local_only = True

    def __init__(self) -> None:
        self._handler: Handler | None = None
        self._channels: set[str] = set()

    async def start(self, handler: Handler, on_reconnect: ReconnectHook | None = None) -> None:
        self._handler = handler

    async def close(self) -> None:
        self._handler = None

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, message: Message) -> None:
        if self._handler is not None and channel in self._channels:
            result = self._handler(channel, message)
            if result is not None:
                await result

    @property
    def healthy(self) -> bool:
        return True
