"""The node: routes events to local sessions (hub) and to other nodes (broker).

Every event crosses the broker once per conversation or user, never once per recipient;
the receiving node encodes it once per codec and writes the same bytes to every local
recipient (centrifuge's prepared-message lesson). Channels are per conversation and per user,
subscribed while this node has a local member, so no node decodes traffic it does not need.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import msgpack

from chatd.broker import Broker
from chatd.errors import CLOSE_REVOKED
from chatd.hub import Conn, Hub
from chatd.protocol import Frame
from chatd.store import ConvId, UserId

__all__ = ["Node"]

log = logging.getLogger("chatd.node")

# Payload kinds on the broker.
_CONV: Final = "c"  # deliver an event to a conversation's local members
_USER: Final = "u"  # deliver an event to one user's local sessions
_JOIN: Final = "j"  # the user joined a conversation (subscribe, route future messages)
_LEAVE: Final = "l"  # the user left a conversation
_REVOKE: Final = "r"  # end sessions: all of the user's, or those with the given token hashes
_BLOCKS: Final = "b"  # the user's block list changed


class Node:
    def __init__(self, hub: Hub, broker: Broker, prefix: str = "chatd:") -> None:
        self.hub = hub
        self.broker = broker
        self.prefix = prefix
        self.delivered = 0  # frames queued to local connections

    async def start(self) -> None:
        await self.broker.start(self._on_payload)

    async def close(self) -> None:
        await self.broker.close()

    def _conv_channel(self, conv: ConvId) -> str:
        return f"{self.prefix}c:{conv}"

    def _user_channel(self, user_id: UserId) -> str:
        return f"{self.prefix}u:{user_id}"

    # --- local sessions ------------------------------------------------------------------

    async def attach(self, conn: Conn, user_id: UserId, convs: list[ConvId],
                     blocked: set[UserId]) -> None:
        conn.user_id = user_id
        if self.hub.add(conn, user_id, convs, blocked):
            await self.broker.subscribe(self._user_channel(user_id))
            for conv in convs:
                await self.broker.subscribe(self._conv_channel(conv))

    async def detach(self, conn: Conn) -> None:
        user_id = conn.user_id
        emptied = self.hub.remove(conn)
        for conv in emptied:
            await self.broker.unsubscribe(self._conv_channel(conv))
        if user_id is not None and not self.hub.online(user_id):
            await self.broker.unsubscribe(self._user_channel(user_id))

    # --- publishing ----------------------------------------------------------------------

    async def to_conv(self, conv: ConvId, event: dict[str, Any], sender: UserId | None = None,
                      skip: str | None = None) -> None:
        """Deliver to the conversation's members (not those who blocked ``sender``), except
        the connection ``skip`` (the sending one: its reply already says what it sent)."""
        await self._publish(self._conv_channel(conv), _CONV, conv, [sender, skip], event)

    async def to_user(self, user_id: UserId, event: dict[str, Any]) -> None:
        await self._publish(self._user_channel(user_id), _USER, user_id, None, event)

    async def joined(self, user_id: UserId, conv: ConvId) -> None:
        await self._publish(self._user_channel(user_id), _JOIN, user_id, None, conv)

    async def left(self, user_id: UserId, conv: ConvId) -> None:
        await self._publish(self._user_channel(user_id), _LEAVE, user_id, None, conv)

    async def blocks_changed(self, user_id: UserId, blocked: set[UserId]) -> None:
        await self._publish(self._user_channel(user_id), _BLOCKS, user_id, None, sorted(blocked))

    async def revoke(self, user_id: UserId, token_hashes: list[bytes] | None = None) -> None:
        """End the user's sessions on every node (all of them when no hashes are given)."""
        await self._publish(self._user_channel(user_id), _REVOKE, user_id, None,
                            token_hashes)

    async def _publish(self, channel: str, kind: str, target: str, sender: Any,
                       body: Any) -> None:
        payload = msgpack.packb((kind, target, sender, body), use_bin_type=True)
        await self.broker.publish(channel, payload)

    # --- receiving -----------------------------------------------------------------------

    async def _on_payload(self, channel: str, payload: bytes) -> None:
        try:
            kind, target, sender, body = msgpack.unpackb(payload, raw=False)
        except Exception:
            log.warning("dropped an unreadable broker payload on %s", channel)
            return
        if kind == _CONV:
            sender_id, skip = sender
            self._fan_out((c for c in self.hub.recipients(ConvId(target), sender_id)
                           if c.cid != skip), body)
        elif kind == _USER:
            self._fan_out(self.hub.conns_of(UserId(target)), body)
        elif kind == _JOIN:
            if self.hub.join(UserId(target), ConvId(body)):
                await self.broker.subscribe(self._conv_channel(ConvId(body)))
        elif kind == _LEAVE:
            if self.hub.leave(UserId(target), ConvId(body)):
                await self.broker.unsubscribe(self._conv_channel(ConvId(body)))
        elif kind == _BLOCKS:
            self.hub.set_blocked(UserId(target), (UserId(u) for u in body))
        elif kind == _REVOKE:
            hashes = None if body is None else {bytes(h) for h in body}
            for conn in list(self.hub.conns_of(UserId(target))):
                if hashes is None or conn.token_hash in hashes:
                    conn.close_soon(CLOSE_REVOKED, "session ended")

    def _fan_out(self, conns: Any, event: dict[str, Any]) -> None:
        frames: dict[str, Frame] = {}
        for conn in list(conns):
            frame = frames.get(conn.codec.name)
            if frame is None:
                frame = frames[conn.codec.name] = conn.codec.encode(event)
            conn.enqueue(frame)
            self.delivered += 1
