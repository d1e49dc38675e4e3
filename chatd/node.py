"""The node: routes events to local sessions (hub) and to other nodes (broker).

Every event crosses the broker once per conversation or user, never once per recipient;
the receiving node encodes it once per codec and writes the same bytes to every local
recipient (centrifuge's prepared-message lesson). Channels are per conversation and per user,
subscribed while this node has a local member and dropped ``linger`` seconds after the last
one leaves, so no node decodes traffic it does not need and a flapping client costs nothing.

Delivery to online sessions is at least once: when the broker is unreachable, events are
delivered locally at once; after the broker reconnects, every local conversation is caught
up from the store past the last ``seq`` this node delivered. A ``msg`` whose seq this node
delivered already is dropped, so a session sees each message once in the common case. Two
messages of one conversation may arrive out of seq order (two senders, two publishes in
flight): clients order by ``seq`` and ask ``history`` when a gap stays open.

Presence: a user is online from their first session on any node until ``presence_grace``
seconds after their last session on every node left, so a client that reconnects at once
(a network change, a node restart behind a load balancer) never looks offline. The node tells
:attr:`Node.on_presence` when a user comes online (no node had them) and when, after the
grace, no node has them any more; a reconnect within the grace is no change. A crashed node
tells nothing: its users fall out of ``online`` within the presence TTL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Final

from chatd.broker import Broker, BrokerUnavailable, Message
from chatd.errors import CLOSE_REVOKED
from chatd.hub import Conn, Hub
from chatd.ids import ConvId, UserId
from chatd.presence import MemoryPresence, Presence
from chatd.protocol import Frame

__all__ = ["CatchUp", "DeliveredHook", "Node", "PresenceHandler", "SysHandler"]

log = logging.getLogger("chatd.node")

# Payload kinds on the broker.
_CONV: Final = "c"  # deliver an event to a conversation's local members
_USER: Final = "u"  # deliver an event to one user's local sessions
_JOIN: Final = "j"  # the user joined a conversation (subscribe, route future messages)
_LEAVE: Final = "l"  # the user left a conversation
_REVOKE: Final = "r"  # end sessions: all of the user's, or those with the given token hashes
_BLOCKS: Final = "b"  # the user's block list changed
_SYS: Final = "s"  # node-wide notice on ``{prefix}sys`` (e.g. a new word-list version)
_ALL: Final = "a"  # an event for every local session of every node (on ``{prefix}sys``)
#: A fan-out to every local session yields to the event loop after this many connections.
ANNOUNCE_CHUNK: Final = 2000

#: Reads the stored ``msg`` events of a conversation after a seq (the store's history).
CatchUp = Callable[[ConvId, int], Awaitable[list[dict[str, Any]]]]
#: Handles a node-wide notice (every node, the publishing one included).
SysHandler = Callable[[Any], Awaitable[None]]
#: Told that a 1:1 ``msg`` reached a connection of its recipient: (conv, recipient, author, seq).
DeliveredHook = Callable[[ConvId, UserId, UserId, int], None]
#: Told that a user came online (True) or went offline everywhere after the grace (False).
PresenceHandler = Callable[[UserId, bool], Awaitable[None]]


class SeqWindow:
    """The seqs of one conversation this node delivered: all up to ``contiguous``, plus
    ``ahead`` (delivered past a gap). Bounded: a gap older than ``limit`` seqs is given up."""

    __slots__ = ("ahead", "contiguous")
    limit: Final = 1024

    def __init__(self, contiguous: int) -> None:
        self.contiguous = contiguous
        self.ahead: set[int] = set()

    def first_time(self, seq: int) -> bool:
        """Record ``seq``; False when it was delivered before."""
        if seq <= self.contiguous or seq in self.ahead:
            return False
        self.ahead.add(seq)
        while self.contiguous + 1 in self.ahead:
            self.contiguous += 1
            self.ahead.remove(self.contiguous)
        if len(self.ahead) > self.limit:
            self.contiguous = min(self.ahead)
            self.ahead = {s for s in self.ahead if s > self.contiguous}
        return True


class Node:
    def __init__(self, hub: Hub, broker: Broker, prefix: str = "chatd:",
                 presence: Presence | None = None, catch_up: CatchUp | None = None,
                 linger: float = 2.0, presence_grace: float = 5.0) -> None:
        self.hub = hub
        self.broker = broker
        self.prefix = prefix
        self.presence: Presence = presence or MemoryPresence()
        self._catch_up = catch_up
        self.linger = linger
        self.delivered = 0  # frames queued to local connections
        self.local_fallbacks = 0  # events delivered locally because the broker was down
        self._seqs: dict[ConvId, SeqWindow] = {}
        self._dissolving: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_sys: SysHandler | None = None
        self.on_direct_delivered: DeliveredHook | None = None
        self.presence_grace = presence_grace
        self.on_presence: PresenceHandler | None = None
        # Users whose last local session left less than ``presence_grace`` seconds ago.
        self._leaving: dict[UserId, asyncio.TimerHandle] = {}

    async def start(self) -> None:
        await self.presence.start()
        await self.broker.start(self._on_message, self._on_reconnect)
        # The one channel every node holds: rare node-wide notices, never per-user traffic.
        await self.broker.subscribe(self._sys_channel())

    def _sys_channel(self) -> str:
        return f"{self.prefix}sys"

    async def broadcast(self, body: Any) -> None:
        """A notice to every node (this one too), at most once; :attr:`on_sys` receives it."""
        await self._publish(self._sys_channel(), _SYS, "", None, body)

    async def announce(self, event: dict[str, Any]) -> None:
        """``event`` to every authenticated session on every node, at most once: one publish
        in all, then each node encodes it once per codec for all its local sessions."""
        await self._publish(self._sys_channel(), _ALL, "", None, event)

    async def close(self) -> None:
        for handle in [*self._dissolving.values(), *self._leaving.values()]:
            handle.cancel()
        self._dissolving.clear()
        self._leaving.clear()  # a stopping node's users reconnect elsewhere: no offline notice
        for task in list(self._tasks):
            task.cancel()
        await self.presence.close()
        await self.broker.close()

    def _conv_channel(self, conv: ConvId) -> str:
        return f"{self.prefix}c:{conv}"

    def _user_channel(self, user_id: UserId) -> str:
        return f"{self.prefix}u:{user_id}"

    # --- subscriptions -------------------------------------------------------------------

    async def _subscribe(self, channel: str) -> None:
        handle = self._dissolving.pop(channel, None)
        if handle is not None:
            handle.cancel()
        await self.broker.subscribe(channel)

    def _unsubscribe_later(self, channel: str, still_needed: Callable[[], bool]) -> None:
        """Drop the channel ``linger`` seconds from now unless a member came back."""
        if channel in self._dissolving:
            return

        def fire() -> None:
            self._dissolving.pop(channel, None)
            if not still_needed():
                self._spawn(self.broker.unsubscribe(channel))

        self._dissolving[channel] = asyncio.get_running_loop().call_later(self.linger, fire)

    # --- local sessions ------------------------------------------------------------------

    async def attach(self, conn: Conn, user_id: UserId, convs: dict[ConvId, int],
                     blocked: set[UserId]) -> None:
        """``conn`` (already the user's) joins the local bookkeeping; ``convs`` maps each
        conversation of the user to its last stored seq."""
        for conv, last_seq in convs.items():
            if conv not in self._seqs:
                self._seqs[conv] = SeqWindow(last_seq)
        if self.hub.add(conn, user_id, convs, blocked):
            await self._subscribe(self._user_channel(user_id))
            for conv in convs:
                await self._subscribe(self._conv_channel(conv))
            leaving = self._leaving.pop(user_id, None)
            if leaving is not None:
                leaving.cancel()  # back within the grace: still online, nothing to tell
                came_online = False
            else:
                came_online = self.on_presence is not None \
                    and await self._online_anywhere(user_id) is False
            await self.presence.add(user_id)
            if came_online:
                self._spawn(self._tell(user_id, True))

    def release(self, conn: Conn) -> None:
        """``conn`` is closing: nothing fanned out from now on is for it, and it no longer
        makes its user online here (a push is due for what it misses). :meth:`detach`
        does the rest once the connection is gone."""
        for conv in self.hub.remove(conn):
            self._conv_gone(conv)

    async def detach(self, conn: Conn) -> None:
        user_id = conn.user_id
        self.release(conn)
        if user_id is not None and not self.hub.online(user_id):
            self._unsubscribe_later(self._user_channel(user_id),
                                    lambda: self.hub.online(user_id))
            if self.presence_grace <= 0:
                await self.presence.remove(user_id)
                self._spawn(self._tell_if_gone(user_id))
            elif user_id not in self._leaving:
                self._leaving[user_id] = asyncio.get_running_loop().call_later(
                    self.presence_grace, self._grace_over, user_id)

    # --- presence ------------------------------------------------------------------------

    def _grace_over(self, user_id: UserId) -> None:
        self._leaving.pop(user_id, None)
        if not self.hub.online(user_id):
            self._spawn(self._leave(user_id))

    async def _leave(self, user_id: UserId) -> None:
        """The grace after the user's last local session is over: leave presence."""
        if self.hub.online(user_id):
            return  # came back while this task waited to run
        await self.presence.remove(user_id)
        await self._tell_if_gone(user_id)

    async def _tell_if_gone(self, user_id: UserId) -> None:
        """Tell :attr:`on_presence` the user is offline, unless a node (this one included)
        has them again."""
        if self.on_presence is None or self.hub.online(user_id):
            return
        if await self._online_anywhere(user_id) is False and not self.hub.online(user_id):
            await self._tell(user_id, False)

    async def _online_anywhere(self, user_id: UserId) -> bool | None:
        """Whether any node has the user (None when presence cannot say: tell nothing)."""
        try:
            return bool((await self.presence.online([user_id])).get(user_id))
        except Exception as exc:  # e.g. Redis away: presence notices are best effort
            log.warning("presence of %s unknown (%s): no notice", user_id, type(exc).__name__)
            return None

    async def _tell(self, user_id: UserId, online: bool) -> None:
        handler = self.on_presence
        if handler is None:
            return
        try:
            await handler(user_id, online)
        except Exception:
            log.exception("presence notice of %s failed", user_id)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _conv_gone(self, conv: ConvId) -> None:
        self._seqs.pop(conv, None)
        self._unsubscribe_later(self._conv_channel(conv), lambda: self.hub.has_conv(conv))

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

    async def revoke(self, user_id: UserId, token_hashes: list[bytes] | None = None,
                     skip: str | None = None) -> None:
        """End the user's sessions on every node (all of them when no hashes are given),
        except the connection ``skip`` (the asking one: it closes after its reply)."""
        await self._publish(self._user_channel(user_id), _REVOKE, user_id, skip, token_hashes)

    async def _publish(self, channel: str, kind: str, target: str, sender: Any,
                       body: Any) -> None:
        # One delivery path: a node alone publishes through the memory broker exactly as
        # nodes publish through Redis, and receives its own events back the same way.
        try:
            await self.broker.publish(channel, (kind, target, sender, body))
        except BrokerUnavailable:
            # Local users keep being served; other nodes catch up after the reconnect.
            self.local_fallbacks += 1
            pending = self._on_message(channel, (kind, target, sender, body))
            if pending is not None:
                await pending

    # --- receiving -----------------------------------------------------------------------

    def _on_message(self, channel: str, message: Message) -> Awaitable[None] | None:
        """Deliveries (the hot path) are handled at once, without a coroutine; the rest of
        the kinds may wait on the broker and return an awaitable."""
        try:
            kind, target, sender, body = message
        except (TypeError, ValueError):
            log.warning("dropped an unreadable broker message on %s", channel)
            return None
        if kind == _CONV:
            sender_id, skip = sender
            self._deliver_conv(ConvId(target), body, sender_id, skip)
        elif kind == _USER:
            self._fan_out(self.hub.conns_of(UserId(target)), body)
        else:
            return self._dispatch(kind, target, sender, body)
        return None

    async def _dispatch(self, kind: str, target: str, sender: Any, body: Any) -> None:
        """The kinds other than deliveries (see :meth:`_on_message`)."""
        if kind == _JOIN:
            if self.hub.join(UserId(target), ConvId(body)):
                await self._subscribe(self._conv_channel(ConvId(body)))
        elif kind == _LEAVE:
            if self.hub.leave(UserId(target), ConvId(body)):
                self._conv_gone(ConvId(body))
        elif kind == _BLOCKS:
            self.hub.set_blocked(UserId(target), (UserId(u) for u in body))
        elif kind == _SYS:
            if self.on_sys is not None:
                await self.on_sys(body)
        elif kind == _ALL:
            await self._fan_out_all(body)
        elif kind == _REVOKE:
            hashes = None if body is None else {bytes(h) for h in body}
            for conn in list(self.hub.conns_of(UserId(target))):
                if conn.cid != sender and (hashes is None or conn.token_hash in hashes):
                    conn.close_soon(CLOSE_REVOKED, "session ended")

    def _deliver_conv(self, conv: ConvId, event: dict[str, Any], sender: UserId | None,
                      skip: str | None) -> None:
        if not self.hub.has_conv(conv):
            return
        is_msg = event.get("t") == "msg"
        if is_msg:
            window = self._seqs.get(conv)
            if window is None:
                window = self._seqs[conv] = SeqWindow(int(event["seq"]) - 1)
            if not window.first_time(int(event["seq"])):
                return  # delivered already (a catch-up overtook the broker)
        took = self._fan_out([c for c in self.hub.recipients(conv, sender) if c.cid != skip],
                             event)
        if is_msg and self.on_direct_delivered is not None and conv.startswith("d:"):
            author = event["from"]
            for conn in took:  # only a connection that queued the frame marks it delivered
                if conn.user_id is not None and conn.user_id != author:
                    self.on_direct_delivered(conv, conn.user_id, author, int(event["seq"]))
                    break

    def _fan_out(self, conns: Iterable[Conn], event: dict[str, Any]) -> list[Conn]:
        """Encode once per codec, serialise once per codec, write the same bytes to all;
        returns the connections that took the frame (not those closing or closed as slow)."""
        frames: dict[str, Frame] = {}
        wire: dict[str, bytes] = {}
        took = []
        for conn in list(conns):
            name = conn.codec.name
            frame = frames.get(name)
            if frame is None:
                frame = frames[name] = conn.codec.encode(event)
            if conn.enqueue_shared(frame, wire):
                took.append(conn)
        self.delivered += len(took)
        return took

    async def _fan_out_all(self, event: dict[str, Any]) -> None:
        """Every local session, in chunks, so a big node still serves its other traffic."""
        conns = list(self.hub.every_conn())
        for start in range(0, len(conns), ANNOUNCE_CHUNK):
            if start:
                await asyncio.sleep(0)
            self._fan_out(conns[start:start + ANNOUNCE_CHUNK], event)

    async def _on_reconnect(self) -> None:
        """The broker was away: deliver what local members missed, from the store."""
        if self._catch_up is None:
            return
        for conv, window in list(self._seqs.items()):
            try:
                missed = await self._catch_up(conv, window.contiguous)
            except Exception:
                log.exception("catch-up of %s failed", conv)
                continue
            for event in missed:
                self._deliver_conv(conv, event, UserId(event["from"]), None)
        log.info("caught up %d conversations after the broker reconnected", len(self._seqs))
