"""The server API's methods: what the app's own backend may ask of chatd (Centrifugo's server
API is the model). The HTTP edge (:mod:`chatd.httpapi`) authenticates the key, and hands
validated arguments to :meth:`ServerApi.handle`; nothing here knows HTTP.

Methods are declared with the same ``@op`` as the WebSocket ops, in a table of their own
(:data:`API_METHODS`) that no WebSocket client can reach. Every call counts against its key's
limit (``api_requests_per_minute``, across nodes with the Redis counters); every call that
changes something is written to the audit log with the actor ``api:<key name>``, as a
moderator's action is.

``system`` events (``publish``, ``broadcast``) are not stored: they reach the sessions online
at that moment, at most once, like a ``typing`` event. What must survive belongs in the
app's own data or in a conversation message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from chatd.errors import BadRequest, NotFound, RateLimited, TooLarge
from chatd.ids import ConvId, UserId
from chatd.limits import Counters
from chatd.node import Node
from chatd.protocol import OpTable
from chatd.services.campaigns import CampaignService
from chatd.services.moderation import ModerationService
from chatd.services.ops import (
    B_OPT,
    BODY,
    BODY_OPT,
    I_OPT,
    S_OPT,
    STR_LIST,
    BoundOp,
    Field,
    Outcome,
    S,
    bind_ops,
    op,
    op_specs,
)
from chatd.services.phones import mask_phone
from chatd.services.verification import VERIFICATION_STATES
from chatd.store import AuditEntry, Store, User

__all__ = ["API_METHODS", "MAX_DATA_BYTES", "ApiCall", "ServerApi", "api_user_view"]

#: The encoded size ``data`` of a ``system`` event may have.
MAX_DATA_BYTES: Final = 4096
MINUTE_MS: Final = 60_000
DATA_OPT: Final = Field(dict, required=False)


@dataclass(frozen=True, slots=True)
class ApiCall:
    """Who is asking: the name of the API key (never its secret) and the peer address."""

    key: str
    address: str = ""

    @property
    def actor(self) -> str:
        return f"api:{self.key}"


def api_user_view(user: User, now: int) -> dict[str, Any]:
    """A user as the app's backend sees them: the public profile, the account's state, and
    the phone masked (the backend has its own record of it; a lookup must not leak it)."""
    view: dict[str, Any] = user.public()
    view.update(phone=mask_phone(user.phone), role=user.role, created_at=user.created_at,
                verification=user.verification, banned_until=user.banned_until,
                banned=user.banned_until > now, muted_until=user.muted_until,
                muted=user.muted_until > now)
    return view


class ServerApi:
    def __init__(self, store: Store, node: Node, moderation: ModerationService,
                 campaigns: CampaignService, counters: Counters, per_minute: int,
                 max_text: int,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.store = store
        self.node = node
        self.moderation = moderation
        self.campaigns = campaigns
        self.counters = counters
        self.per_minute = per_minute
        self.max_text = max_text
        self._now = now_ms
        self._methods: dict[str, BoundOp] = bind_ops(self)
        #: The table the edge validates a call's arguments against.
        self.methods: OpTable = {name: bound.spec for name, bound in self._methods.items()}

    async def handle(self, call: ApiCall, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Run one validated call (``args`` checked against :attr:`methods`)."""
        wait = await self.counters.hit(f"api:{call.key}", self.per_minute, MINUTE_MS)
        if wait:
            raise RateLimited(wait, f"this API key is over {self.per_minute} calls a minute")
        result = await self._methods[method].run(call, **args)
        assert not isinstance(result, Outcome)  # no API method changes a WebSocket session
        return result if result is not None else {}

    async def _audit(self, call: ApiCall, action: str, target: str, detail: str = "") -> None:
        await self.store.add_audit(AuditEntry(self._now(), call.actor, action, target, detail))

    async def _user(self, user: str) -> User:
        found = await self.store.get_user(UserId(user))
        if found is None:
            raise NotFound("no such user")
        return found

    def _event(self, text: str, data: dict[str, Any] | None) -> dict[str, Any]:
        text = text.strip()
        if not text:
            raise BadRequest("text must not be empty", field="text")
        if len(text) > self.max_text:
            raise TooLarge(f"text is at most {self.max_text} characters", limit=self.max_text)
        event: dict[str, Any] = {"t": "system", "text": text}
        if data is not None:
            if len(json.dumps(data, ensure_ascii=False).encode()) > MAX_DATA_BYTES:
                raise TooLarge(f"data is at most {MAX_DATA_BYTES} bytes as JSON",
                               limit=MAX_DATA_BYTES)
            event["data"] = data
        return event

    # --- messages to users ---------------------------------------------------------------

    @op("publish", auth="none", user=S_OPT, conv=S_OPT, text=BODY, data=DATA_OPT)
    async def publish(self, call: ApiCall, text: str, user: str | None = None,
                      conv: str | None = None,
                      data: dict[str, Any] | None = None) -> dict[str, Any]:
        """A ``system`` event to one user's sessions or to a conversation's members."""
        if (user is None) == (conv is None):
            raise BadRequest("give exactly one of 'user' and 'conv'")
        event = self._event(text, data)
        detail = f"chars={len(event['text'])}" + (" data" if data is not None else "")
        # Audited before it is sent: a store that fails refuses the call before anything
        # happened, so a retry cannot deliver twice.
        if user is not None:
            target = (await self._user(user)).id
            await self._audit(call, "api.publish", target, detail)
            await self.node.to_user(target, event)
            online = await self.node.presence.online([target])
            return {"online": bool(online.get(target))}
        assert conv is not None
        if not await self.store.conv_exists(ConvId(conv)):
            raise NotFound("no such conversation")
        await self._audit(call, "api.publish", conv, detail)
        await self.node.to_conv(ConvId(conv), {**event, "conv": conv})
        return {}

    @op("broadcast", auth="none", text=BODY, data=DATA_OPT)
    async def broadcast(self, call: ApiCall, text: str,
                        data: dict[str, Any] | None = None) -> dict[str, Any]:
        """A ``system`` event (``broadcast: true``) to every session online, on every node."""
        event = self._event(text, data)
        event["broadcast"] = True
        await self._audit(call, "api.broadcast", "*", event["text"][:200])
        await self.node.announce(event)
        return {}

    # --- sessions and sanctions ----------------------------------------------------------

    @op("disconnect", auth="none", user=S, revoke=B_OPT)
    async def disconnect(self, call: ApiCall, user: str,
                         revoke: bool = False) -> dict[str, Any]:
        """Close every connection of the user, on every node, with 4001. With ``revoke``
        the sessions end too (their tokens stop working); without, the app may ``auth``
        again with its token."""
        target = (await self._user(user)).id
        ended = await self.store.delete_user_sessions(target) if revoke else []
        await self._audit(call, "api.disconnect", target, f"revoke={int(revoke)}")
        await self.node.revoke(target)
        return {"sessions_revoked": len(ended)}

    @op("ban", auth="none", user=S, duration=I_OPT, note=BODY_OPT)
    async def ban(self, call: ApiCall, user: str, duration: int | None = None,
                  note: str = "") -> dict[str, Any]:
        return await self.moderation.ban_user(call.actor, UserId(user), duration, note)

    @op("mute", auth="none", user=S, duration=Field(int), note=BODY_OPT)
    async def mute(self, call: ApiCall, user: str, duration: int,
                   note: str = "") -> dict[str, Any]:
        return await self.moderation.mute_user(call.actor, UserId(user), duration, note)

    @op("unban", auth="none", user=S)
    async def unban(self, call: ApiCall, user: str) -> None:
        await self.moderation.unban_user(call.actor, UserId(user))

    # --- lookups -------------------------------------------------------------------------

    @op("user", auth="none", user=S)
    async def user(self, call: ApiCall, user: str) -> dict[str, Any]:
        found = await self._user(user)
        online = await self.node.presence.online([found.id])
        return {"user": api_user_view(found, self._now()), "online": bool(online.get(found.id))}

    @op("presence", auth="none", users=STR_LIST)
    async def presence(self, call: ApiCall, users: list[str]) -> dict[str, Any]:
        """Online on any node (within the presence grace); unknown ids answer false."""
        online = await self.node.presence.online([UserId(u) for u in dict.fromkeys(users)])
        return {"online": {u: bool(v) for u, v in online.items()}}

    # --- verification and campaigns ------------------------------------------------------

    @op("verification.set", auth="none", user=S, state=S)
    async def verification_set(self, call: ApiCall, user: str, state: str) -> dict[str, Any]:
        if state not in VERIFICATION_STATES:
            raise BadRequest(f"state must be one of {', '.join(VERIFICATION_STATES)}",
                             field="state")
        if not await self.store.set_verification(UserId(user), state):
            raise NotFound("no such user")
        await self._audit(call, f"verification.{state}", user)
        return {"verification": state, "verified": state == "verified"}

    @op("campaign.start", auth="none", text=BODY, id=S_OPT)
    async def campaign_start(self, call: ApiCall, text: str,
                             id: str | None = None) -> dict[str, Any]:
        """Start a marketing SMS campaign on this node; ``id`` makes a retry safe."""
        campaign, created = await self.campaigns.start(call.actor, text, id)
        if created:
            await self._audit(call, "campaign.start", campaign.id,
                              f"recipients={campaign.recipients}")
        return {"campaign": campaign.wire()}

    @op("campaign.get", auth="none", id=S)
    async def campaign_get(self, call: ApiCall, id: str) -> dict[str, Any]:
        return {"campaign": (await self.campaigns.get(id)).wire()}

    @op("campaign.cancel", auth="none", id=S)
    async def campaign_cancel(self, call: ApiCall, id: str) -> dict[str, Any]:
        campaign = await self.campaigns.cancel(id)
        await self._audit(call, "campaign.cancel", campaign.id, f"state={campaign.state}")
        return {"campaign": campaign.wire()}


#: Every method of the server API: name -> fields.
API_METHODS: Final[OpTable] = op_specs(ServerApi)
