"""Conversations and messages: send, history, receipts, typing, leaving, blocking."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from chatd.catalog import group_conv_id
from chatd.config import Config
from chatd.errors import BadRequest, Forbidden, NotFound, TooLarge
from chatd.node import Node
from chatd.services.text import TextGate
from chatd.store import ConvId, SendContext, Store, UserId

__all__ = ["ChatService"]

MAX_CID: Final = 64
MAX_HISTORY: Final = 200


class ChatService:
    def __init__(self, config: Config, store: Store, node: Node, text: TextGate,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.config = config
        self.store = store
        self.node = node
        self.text = text
        self._now = now_ms
        # Message ids: a random per-process prefix and a counter (unique across nodes and
        # restarts, and much cheaper than uuid4 on the hot path).
        prefix = secrets.token_hex(8)
        counter = itertools.count(1)
        self._new_id: Callable[[], str] = lambda: f"{prefix}{next(counter):08x}"

    async def send(self, sender: UserId, conv_raw: str, body: str, cid: str | None,
                   origin: str | None = None) -> dict[str, Any]:
        conv = ConvId(conv_raw)
        if not body.strip():
            raise BadRequest("body must not be empty", field="body")
        if len(body) > self.config.max_message_chars:
            raise TooLarge(f"body is at most {self.config.max_message_chars} characters",
                           limit=self.config.max_message_chars)
        if cid is not None and not 1 <= len(cid) <= MAX_CID:
            raise BadRequest(f"cid must be 1 to {MAX_CID} characters", field="cid")
        now = self._now()

        def prepare(ctx: SendContext | None) -> tuple[str, bool]:
            # Runs inside the store's transaction: the checks and the insert are one job.
            if ctx is None or not ctx.member:
                raise Forbidden("you are not a member of this conversation")
            if ctx.muted_until > now:
                raise Forbidden("you are muted", reason="muted", until=ctx.muted_until)
            if ctx.closed:
                raise Forbidden("this conversation has ended", reason="closed")
            if ctx.peer_blocked_sender:
                raise Forbidden("you cannot message this user", reason="blocked")
            checked = self.text.check(body)  # raises `filtered`: nothing is stored
            return checked.text, checked.flagged

        result = await self.store.send_message(conv, self._new_id(), sender, now, cid, prepare)
        msg = result.message
        if result.created:
            await self.node.to_conv(conv, msg.wire(), sender, skip=origin)
        reply: dict[str, Any] = {"id": msg.id, "seq": msg.seq, "ts": msg.ts}
        if msg.body != body:
            reply["body"] = msg.body  # stored masked: the sender sees what others see
        return reply

    async def history(self, user: UserId, conv_raw: str, after: int,
                      limit: int) -> dict[str, Any]:
        conv = ConvId(conv_raw)
        if after < 0:
            raise BadRequest("after must not be negative", field="after")
        if not 1 <= limit <= MAX_HISTORY:
            raise BadRequest(f"limit must be 1 to {MAX_HISTORY}", field="limit")
        if not await self.store.was_member(conv, user):
            raise Forbidden("you are not a member of this conversation")
        messages = await self.store.history(conv, after, limit)
        return {"messages": [m.wire() for m in messages]}

    async def conversations(self, user: UserId) -> dict[str, Any]:
        convs = await self.store.user_convs(user)
        return {"convs": [{
            "conv": c.id, "kind": c.kind, "last_seq": c.last_seq, "read_seq": c.read_seq,
            "unread": max(0, c.last_seq - c.read_seq), "peer": c.peer, "closed": c.closed,
        } for c in convs]}

    async def leave(self, user: UserId, conv_raw: str) -> None:
        conv = ConvId(conv_raw)
        if conv.startswith("g:"):
            raise BadRequest("leave a group by removing the interest (profile.update)")
        if not await self.store.leave_conv(conv, user, self._now()):
            raise Forbidden("you are not a member of this conversation")
        await self.node.to_conv(conv, {"t": "conv.left", "conv": conv, "user": user})
        await self.node.left(user, conv)

    async def read(self, user: UserId, conv_raw: str, seq: int,
                   origin: str | None = None) -> dict[str, Any]:
        conv = ConvId(conv_raw)
        if seq < 0:
            raise BadRequest("seq must not be negative", field="seq")
        if not await self.store.is_member(conv, user):
            raise Forbidden("you are not a member of this conversation")
        read_seq = await self.store.set_read(conv, user, seq)
        await self.node.to_conv(conv, {"t": "read", "conv": conv, "user": user,
                                       "seq": read_seq}, user, skip=origin)
        return {"seq": read_seq}

    async def typing(self, user: UserId, conv_raw: str, origin: str | None = None) -> None:
        conv = ConvId(conv_raw)
        if not await self.store.is_member(conv, user):
            raise Forbidden("you are not a member of this conversation")
        await self.node.to_conv(conv, {"t": "typing", "conv": conv, "user": user}, user,
                                skip=origin)

    async def block(self, user: UserId, other: UserId) -> None:
        if other == user:
            raise BadRequest("you cannot block yourself", field="user")
        if await self.store.get_user(other) is None:
            raise NotFound("no such user")
        await self.store.block(user, other, self._now())
        await self.node.blocks_changed(user, await self.store.blocked_by(user))

    async def unblock(self, user: UserId, other: UserId) -> None:
        await self.store.unblock(user, other)
        await self.node.blocks_changed(user, await self.store.blocked_by(user))

    async def interests_changed(self, user: UserId, before: Sequence[str],
                                after: Sequence[str]) -> None:
        for tag in set(before) - set(after):
            await self.node.left(user, ConvId(group_conv_id(tag)))
        for tag in set(after) - set(before):
            await self.node.joined(user, ConvId(group_conv_id(tag)))
