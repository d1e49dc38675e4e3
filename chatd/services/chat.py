"""Conversations and messages: send, reply, recall, hide, history, the conversation list,
mutes, receipts, typing, leaving, blocking."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from typing import Any, Final

from chatd.catalog import Catalog
from chatd.config import Config
from chatd.errors import BadRequest, ChatError, Forbidden, NotFound, TooLarge, muted
from chatd.ids import ConvId, UserId
from chatd.node import Node
from chatd.services.media import MAX_MESSAGE_IMAGES, MediaService
from chatd.services.ops import BODY, I_OPT, S_OPT, STR_LIST, Call, Field, S, op
from chatd.services.receipts import DeliveryReceipts
from chatd.services.text import TextGate
from chatd.store import ConvSummary, Message, SendRefused, Store
from chatd.store.media import attachments_text

__all__ = ["ChatService"]

MAX_CID: Final = 64
MAX_HISTORY: Final = 200


class ChatService:
    def __init__(self, config: Config, store: Store, node: Node, text: TextGate,
                 catalog: Catalog, media: MediaService,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.config = config
        self.store = store
        self.node = node
        self.text = text
        self.catalog = catalog
        self.media = media
        self.receipts = DeliveryReceipts(store, node)
        node.on_direct_delivered = self.receipts.note
        self.on_stored: Callable[[Message], None] | None = None  # e.g. push notifications
        self._now = now_ms
        # Message ids: a random per-process prefix and a counter (unique across nodes and
        # restarts, and much cheaper than uuid4 on the hot path).
        prefix = secrets.token_hex(8)
        counter = itertools.count(1)
        self._new_id: Callable[[], str] = lambda: f"{prefix}{next(counter):08x}"

    @op("msg.send", conv=S, body=BODY, cid=S_OPT, reply_to=S_OPT,
        attachments=Field(list, items=str, required=False))
    async def send(self, call: Call, conv: str, body: str, cid: str | None = None,
                   reply_to: str | None = None,
                   attachments: list[str] | None = None) -> dict[str, Any]:
        sender = call.user
        files = await self.media.claim(sender, attachments, f"m:{conv}",
                                       kinds=("image", "voice"),
                                       max_count=MAX_MESSAGE_IMAGES) if attachments else []
        if not body.strip() and not files:
            raise BadRequest("body must not be empty", field="body")
        if len(body) > self.config.max_message_chars:
            raise TooLarge(f"body is at most {self.config.max_message_chars} characters",
                           limit=self.config.max_message_chars)
        if cid is not None and not 1 <= len(cid) <= MAX_CID:
            raise BadRequest(f"cid must be 1 to {MAX_CID} characters", field="cid")
        # The filter is pure: it decides before any store job (``filtered``: nothing stored).
        checked = self.text.check(body)
        result = await self.store.send_message(ConvId(conv), self._new_id(), sender,
                                               self._now(), cid, checked.text, checked.flagged,
                                               reply_to,
                                               attachments_text([f.wire() for f in files]))
        if isinstance(result, SendRefused):
            raise _refusal_error(result)
        msg = result.message
        if result.created:
            if files:
                await self.media.attach(files, sender, f"m:{conv}", msg.id)
            await self.node.to_conv(msg.conv, msg.wire(), sender, skip=call.conn_id)
            if self.on_stored is not None:
                self.on_stored(msg)
        reply: dict[str, Any] = {"id": msg.id, "seq": msg.seq, "ts": msg.ts}
        if msg.body != body:
            reply["body"] = msg.body  # stored masked: the sender sees what others see
        return reply

    @op("msg.recall", conv=S, id=S)
    async def recall(self, call: Call, conv: str, id: str) -> dict[str, Any]:
        window_ms = int(self.config.recall_window * 1000)
        result = await self.store.recall_message(ConvId(conv), id, call.user, self._now(),
                                                 window_ms)
        if result == "not_found":
            raise NotFound("no such message in this conversation")
        if result == "not_sender":
            raise Forbidden("you can only recall your own messages", reason="not_yours")
        if result == "too_late":
            raise Forbidden(f"messages can be recalled for {self.config.recall_window:g} s",
                            reason="too_late")
        assert isinstance(result, Message)
        await self.media.erase_message(result.id)  # its photos and voice go with the text
        # Every member's connections, the recalling one too (one code path for all views).
        await self.node.to_conv(result.conv, {"t": "msg.recalled", "conv": result.conv,
                                              "id": result.id, "seq": result.seq}, call.user)
        return {"id": result.id, "seq": result.seq}

    @op("msg.hide", conv=S, id=S)
    async def hide(self, call: Call, conv: str, id: str) -> dict[str, Any]:
        if not await self.store.was_member(ConvId(conv), call.user):
            raise Forbidden("you are not a member of this conversation")
        msg = await self.store.hide_message(ConvId(conv), id, call.user)
        if msg is None:
            raise NotFound("no such message in this conversation")
        # The caller's other devices drop it too; nobody else hears of it.
        await self.node.to_user(call.user, {"t": "msg.hidden", "conv": msg.conv, "id": msg.id,
                                            "seq": msg.seq})
        return {"id": msg.id, "seq": msg.seq}

    @op("history", conv=S, after=I_OPT, limit=I_OPT)
    async def history(self, call: Call, conv: str, after: int = 0,
                      limit: int = 50) -> dict[str, Any]:
        user = call.user
        if after < 0:
            raise BadRequest("after must not be negative", field="after")
        if not 1 <= limit <= MAX_HISTORY:
            raise BadRequest(f"limit must be 1 to {MAX_HISTORY}", field="limit")
        if not await self.store.was_member(ConvId(conv), user):
            raise Forbidden("you are not a member of this conversation")
        # In a group, messages from users you blocked are left out, as live delivery does
        # (in a 1:1 a blocked peer cannot send at all). Hidden ones are left out everywhere.
        group = conv.startswith("g:")
        messages = await self.store.history(ConvId(conv), after, limit, user, group)
        if not group:
            # Reading a 1:1 after being offline is receiving it: the peer gets `delivered`.
            theirs = [m for m in messages if m.sender != user]
            if theirs:
                self.receipts.note(ConvId(conv), user, theirs[-1].sender, theirs[-1].seq)
        return {"messages": [m.wire() for m in messages]}

    @op("convs")
    async def conversations(self, call: Call) -> dict[str, Any]:
        convs = await self.store.user_convs(call.user)
        now = self._now()
        peers = [c.peer for c in convs if c.peer is not None and not c.closed]
        online: dict[UserId, bool] = {}
        if peers:
            visible = await self.store.presence_visible(call.user, peers)
            if visible:
                online = await self.node.presence.online(sorted(visible))
        return {"convs": [self._summary(c, now, online) for c in convs]}

    def _summary(self, c: ConvSummary, now: int,
                 online: dict[UserId, bool]) -> dict[str, Any]:
        last = None
        if c.last is not None:
            last = c.last.wire()
            del last["t"]
        entry: dict[str, Any] = {
            "conv": c.id, "kind": c.kind, "last_seq": c.last_seq, "read_seq": c.read_seq,
            "unread": c.unread, "last": last, "active_at": c.active_at, "closed": c.closed,
            "muted_until": c.mute_until if c.mute_until > now else 0, "peer": None}
        if c.kind == "direct" and c.peer is not None:
            entry["peer"] = {"id": c.peer, "nickname": c.peer_nickname,
                             "online": bool(online.get(c.peer, False)),
                             "avatar": c.peer_avatar or None}
            entry["peer_read_seq"] = c.peer_read_seq
            entry["peer_delivered_seq"] = c.peer_delivered_seq
        else:
            tag = self.catalog.get(c.id[2:])
            entry["name"] = tag.name if tag is not None else c.id[2:]
        return entry

    @op("conv.mute", conv=S, until=Field(int))
    async def mute(self, call: Call, conv: str, until: int) -> dict[str, Any]:
        if until < 0:
            raise BadRequest("until must be a time in ms, or 0 to lift the mute", field="until")
        until = until if until > self._now() else 0
        if not await self.store.set_conv_mute(ConvId(conv), call.user, until):
            raise Forbidden("you are not a member of this conversation")
        await self.node.to_user(call.user, {"t": "conv.muted", "conv": conv, "until": until})
        return {"until": until}

    @op("conv.leave", conv=S)
    async def leave(self, call: Call, conv: str) -> None:
        user, conv = call.user, ConvId(conv)
        if conv.startswith("g:"):
            raise BadRequest("leave a group by removing the interest (profile.update)")
        if not await self.store.leave_conv(conv, user, self._now()):
            raise Forbidden("you are not a member of this conversation")
        await self.node.to_conv(conv, {"t": "conv.left", "conv": conv, "user": user})
        await self.node.left(user, conv)

    @op("read", conv=S, seq=Field(int))
    async def read(self, call: Call, conv: str, seq: int) -> dict[str, Any]:
        user, conv = call.user, ConvId(conv)
        if seq < 0:
            raise BadRequest("seq must not be negative", field="seq")
        if not await self.store.is_member(conv, user):
            raise Forbidden("you are not a member of this conversation")
        read_seq = await self.store.set_read(conv, user, seq)
        await self.node.to_conv(conv, {"t": "read", "conv": conv, "user": user,
                                       "seq": read_seq}, user, skip=call.conn_id)
        return {"seq": read_seq}

    @op("typing", conv=S)
    async def typing(self, call: Call, conv: str) -> None:
        user, conv = call.user, ConvId(conv)
        ctx = await self.store.send_context(conv, user)  # membership and mute, one query
        if ctx is None or not ctx.member:
            raise Forbidden("you are not a member of this conversation")
        if ctx.muted_until > self._now():
            raise muted(ctx.muted_until)
        await self.node.to_conv(conv, {"t": "typing", "conv": conv, "user": user}, user,
                                skip=call.conn_id)

    @op("presence", users=STR_LIST)
    async def presence(self, call: Call, users: list[str]) -> dict[str, Any]:
        """Online only for users who share a current conversation with the caller and no
        block either way; everyone else reads as offline (as a truly offline user does)."""
        asked = [UserId(u) for u in users]
        shown = await self._visible(call, asked)
        online = await self.node.presence.online(shown) if shown else {}
        return {"online": {u: bool(online.get(u, False)) for u in asked}}

    @op("profiles", users=STR_LIST)
    async def profiles(self, call: Call, users: list[str]) -> dict[str, Any]:
        """Public profiles (names for a group's members) of users who share a current
        conversation with the caller and no block either way; others are left out."""
        visible = await self._visible(call, [UserId(u) for u in users])
        found = await self.store.get_users(sorted(visible)) if visible else {}
        return {"users": {u: found[u].public() for u in sorted(found)}}

    async def _visible(self, call: Call, asked: list[UserId]) -> list[UserId]:
        """Those of ``asked`` (once each, in order) the caller may see: themselves, and users
        who share a current conversation with them and no block either way."""
        if len(asked) > 100:
            raise BadRequest("ask about at most 100 users", field="users")
        visible = await self.store.presence_visible(call.user, asked) | {call.user}
        return [u for u in dict.fromkeys(asked) if u in visible]

    @op("block", user=S)
    async def block(self, call: Call, user: str) -> None:
        user, other = call.user, UserId(user)
        if other == user:
            raise BadRequest("you cannot block yourself", field="user")
        if await self.store.get_user(other) is None:
            raise NotFound("no such user")
        was_contact = other in await self.store.contacts_of(user)
        await self.store.block(user, other, self._now())
        await self.node.blocks_changed(user, await self.store.blocked_by(user))
        if was_contact:  # a block either way hides presence: both now read the other offline
            await self._show_each_other(user, other, {})

    @op("unblock", user=S)
    async def unblock(self, call: Call, user: str) -> None:
        user, other = call.user, UserId(user)
        await self.store.unblock(user, other)
        await self.node.blocks_changed(user, await self.store.blocked_by(user))
        if other in await self.store.contacts_of(user):  # contacts again: show the truth
            await self._show_each_other(user, other,
                                        await self.node.presence.online([user, other]))

    async def _show_each_other(self, a: UserId, b: UserId, online: dict[UserId, bool]) -> None:
        """Each of two contacts gets the other's presence (absent from ``online``: offline)."""
        for viewer, shown in ((a, b), (b, a)):
            await self.node.to_user(viewer, {"t": "presence", "user": shown,
                                             "online": bool(online.get(shown))})


def _refusal_error(refused: SendRefused) -> ChatError:
    if refused.reason == "no_reply_target":
        return BadRequest("reply_to must name a message of this conversation",
                          field="reply_to")
    if refused.reason == "muted":
        return muted(refused.until)
    if refused.reason == "closed":
        return Forbidden("this conversation has ended", reason="closed")
    if refused.reason == "blocked":
        return Forbidden("you cannot message this user", reason="blocked")
    return Forbidden("you are not a member of this conversation")
