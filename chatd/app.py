"""The composition root: builds every part from a Config and runs validated requests.

``App.handle`` is what the server calls for each request; it returns what the op's method
returned (a reply map, ``None`` or an :class:`~chatd.services.ops.Outcome`) or raises
:class:`~chatd.errors.ChatError`. The ops themselves are declared by the services, next to
their methods. Nothing here imports ``websockets``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Final

from chatd.backends import (
    load_filter,
    make_backends,
    make_counters,
    make_media_storage,
    make_push_outbox,
    make_sms_provider,
    make_store,
    read_secret,
)
from chatd.catalog import Catalog
from chatd.config import Config
from chatd.datadir import DataDirClaim
from chatd.errors import RateLimited
from chatd.hub import Conn, Hub
from chatd.ids import ConvId
from chatd.metrics import Metrics
from chatd.node import Node
from chatd.protocol import OpTable, Request
from chatd.services.accounts import AccountService
from chatd.services.campaigns import CampaignService
from chatd.services.chat import ChatService
from chatd.services.contacts import ContactPresence
from chatd.services.feedback import FeedbackService
from chatd.services.matching import MatchService, match_config
from chatd.services.media import MediaService
from chatd.services.moderation import ModerationService
from chatd.services.ops import BoundOp, Call, Reply, bind_ops
from chatd.services.privacy import PrivacyService
from chatd.services.push import PushService
from chatd.services.serverapi import ServerApi
from chatd.services.sms import DevSmsProvider
from chatd.services.social import SocialService
from chatd.services.text import TextGate
from chatd.services.verification import Verifier
from chatd.services.wordlists import WordLists
from chatd.tasks import stop_task
from chatd.webhooks import Webhooks
from filters import LiveFilter

__all__ = ["App"]

log = logging.getLogger("chatd.app")

#: Limits per user, across the user's connections (and nodes, when the counters are Redis'):
#: op -> (the Config setting of its count, window in ms). Checked in :meth:`App.handle`.
USER_LIMITS: Final = {
    "msg.send": ("user_messages_per_minute", 60_000),
    "match.start": ("user_matches_per_minute", 60_000),
    "report": ("user_reports_per_hour", 3_600_000),
    "sms.send": ("user_sms_per_hour", 3_600_000),
    "search": ("user_searches_per_minute", 60_000),
}


class App:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.node_id = config.node_id or uuid.uuid4().hex[:12]
        self.metrics = Metrics()
        self.catalog = Catalog.load()
        self.store = make_store(config)
        self.store.health.on_commit = self.metrics.commit_seconds.observe
        self.store.health.on_failure = self.metrics.store_failures.inc
        # The files are the base; the store's moderator changes are applied at start().
        base_filter = load_filter(config)
        self.live_filter = LiveFilter(base_filter)
        text = TextGate(self.live_filter)
        self.sms = make_sms_provider(config)
        self.hub = Hub()
        self.broker, presence, queue = make_backends(config, self.node_id)
        self.node = Node(self.hub, self.broker, config.key_prefix, presence, self._catch_up,
                         presence_grace=config.presence_grace)
        self.counters = make_counters(config, self.broker)
        self.data_dir = DataDirClaim(config.data_dir, shared=not self.broker.local_only) \
            if config.store == "sqlite" else None
        self.verifier = Verifier(config.verification_url, Webhooks()) \
            if config.verification_url else None
        self.accounts = AccountService(config, self.store, self.node, self.sms, self.catalog,
                                       text, read_secret(config.data_dir),
                                       counters=self.counters, verifier=self.verifier)
        self.media = MediaService(config, self.store, make_media_storage(config), self.counters)
        self.chat = ChatService(config, self.store, self.node, text, self.catalog, self.media)
        self.matching = MatchService(match_config(config), self.store, self.node, queue)
        self.words = WordLists(self.store, self.live_filter, base_filter, self.node,
                               config.wordlist_poll_interval,
                               on_reload=lambda result: self.metrics.filter_reloads.labels(
                                   result).inc())
        self.node.on_sys = self.words.on_notice
        self.contacts = ContactPresence(self.store, self.node)
        self.node.on_presence = self.contacts.changed
        self.moderation = ModerationService(self.store, self.node, self.words, self.media)
        self.privacy = PrivacyService(self.store, self.node, self.accounts, self.matching,
                                      self.media, sms_purge_interval=config.sms_purge_interval)
        self.social = SocialService(config, self.store, text, self.catalog, self.media)
        self.push = PushService(self.store, self.node, make_push_outbox(config, self.store,
                                                                        presence),
                                config.push_delay)
        self.chat.on_stored = self.push.message_sent
        self.moderation.notify_offline = self.push.notify
        self.feedback = FeedbackService(self.store, self.node, self.media, self.counters)
        self.feedback.notify_offline = self.push.notify
        self.campaigns = CampaignService(self.store, self.sms, text,
                                         config.campaign_rate_per_second)
        #: The server API's methods (served by chatd.httpapi when keys are configured).
        self.api = ServerApi(self.store, self.node, self.moderation, self.campaigns,
                             self.counters, config.api_requests_per_minute,
                             config.max_message_chars)
        self._ops: dict[str, BoundOp] = bind_ops(self.accounts, self.chat, self.matching,
                                                 self.social, self.privacy, self.moderation,
                                                 self.push, self.media, self.feedback)
        #: The op table the protocol layer validates requests against.
        self.ops: OpTable = {name: bound.spec for name, bound in self._ops.items()}
        self._user_limits: dict[str, tuple[str, int, int]] = {
            name: (f"u:{name}:", getattr(config, setting), window)
            for name, (setting, window) in USER_LIMITS.items() if name in self._ops}
        self._stamp: asyncio.Task[None] | None = None
        self.draining = False

    async def start(self) -> None:
        if self.data_dir is not None:
            self.data_dir.acquire()
            self._stamp = asyncio.create_task(self._stamp_forever(), name="chatd-datadir")
        await self.store.open()
        await self.words.start()
        await self.node.start()
        await self.matching.start()
        await self.privacy.start()
        await self.push.start()
        await self.media.start()
        if isinstance(self.sms, DevSmsProvider):
            log.warning("the development SMS provider is active: codes are returned to clients "
                        "as dev_code and never sent; do not use it in production")

    async def close(self) -> None:
        await self.push.close()
        await self.media.close()
        # Campaigns first: a stopped one is marked interrupted while the store is open.
        await self.campaigns.close()
        if self.verifier is not None:
            await self.verifier.close()
        await self.privacy.close()
        await self.words.close()
        await self.matching.close()
        await self.chat.receipts.close()
        await self.node.close()
        await self.store.close()
        await self.sms.close()
        await stop_task(self._stamp)
        if self.data_dir is not None:
            self.data_dir.release()

    async def _stamp_forever(self) -> None:
        assert self.data_dir is not None
        while True:
            await asyncio.sleep(10)
            await asyncio.to_thread(self.data_dir.touch)

    def health(self) -> tuple[int, dict[str, Any]]:
        """``/healthz``: 503 while draining or while the store fails (no message can be
        stored: a load balancer should send clients elsewhere); 200 with ``degraded`` when only
        the broker fails (this node still serves its own users)."""
        store, broker = self.store.health, self.broker.healthy
        status = "draining" if self.draining else \
            "ok" if store.healthy and broker else "degraded"
        body: dict[str, Any] = {"status": status, "node": self.node_id,
                                "connections": self.hub.connections,
                                "broker": "ok" if broker else "degraded",
                                "store": "ok" if store.healthy else "degraded"}
        if store.fault is not None:
            body["store_error"] = store.fault
        return (503 if self.draining or not store.healthy else 200), body

    def scrape(self) -> bytes:
        """``/metrics``: the gauges read at scrape time, then every metric."""
        m = self.metrics
        m.deliveries.set(self.node.delivered)
        m.store_healthy.set(1 if self.store.health.healthy else 0)
        m.broker_healthy.set(1 if self.broker.healthy else 0)
        return m.render()

    async def _catch_up(self, conv: ConvId, after: int) -> list[dict[str, Any]]:
        return [m.wire() for m in await self.store.history(conv, after, 500)]

    async def handle(self, call: Call, request: Request) -> Reply:
        bound = self._ops[request.op]
        rule = self._user_limits.get(request.op)
        if rule is not None and call.user_id is not None:
            key, limit, window = rule
            # In memory, or from this node's lease of a Redis limit: no await, a dict lookup.
            wait = self.counters.hit_now(key + call.user_id, limit, window)
            if wait is None:
                wait = await self.counters.take(key + call.user_id, limit, window)
            if wait:
                raise RateLimited(wait, f"slow down: {request.op} limit of this account")
        if bound.spec.auth == "moderator":
            await self.moderation.require(call.user)
        return await bound.run(call, **request.args)

    async def disconnected(self, conn: Conn) -> None:
        user_id, token_hash = conn.user_id, conn.token_hash
        await self.node.detach(conn)
        # Disconnecting leaves the match queue once the user's last session here is gone.
        if user_id is not None and not self.hub.online(user_id):
            await self.matching.cancel(user_id)
        if token_hash is not None:
            await self.accounts.session_closed(token_hash)

