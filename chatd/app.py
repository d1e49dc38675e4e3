"""The application: builds every part from a Config and dispatches validated requests to services.

``App.handle`` is what the server calls for each request; it returns the ``ok`` result map or
raises :class:`~chatd.errors.ChatError`. Nothing here imports ``websockets``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from chatd.api import moderation as moderation_api
from chatd.api import users as users_api
from chatd.broker import Broker, MemoryBroker
from chatd.catalog import Catalog
from chatd.config import Config
from chatd.datadir import DataDirClaim
from chatd.errors import CLOSE_REVOKED, BadRequest, ChatError, Forbidden
from chatd.hub import Conn, Hub
from chatd.matching import MatchConfig
from chatd.metrics import Metrics
from chatd.node import Node
from chatd.presence import MemoryPresence, Presence
from chatd.protocol import Request
from chatd.services.accounts import AccountService, LoginResult
from chatd.services.chat import ChatService
from chatd.services.matching import MatchQueue, MatchService, MemoryMatchQueue
from chatd.services.moderation import ModerationService
from chatd.services.phones import normalize_phone
from chatd.services.privacy import PrivacyService
from chatd.services.sms import DevSmsProvider, SmsProvider, WebhookSmsProvider
from chatd.services.social import SocialService
from chatd.services.text import TextGate
from chatd.services.wordlists import WordLists
from chatd.store import ConvId, SQLiteStore, Store, UserId
from chatd.tasks import stop_task
from filters import LiveFilter, WordFilter, default_wordlists_path

__all__ = ["App"]

log = logging.getLogger("chatd.app")

Handler = Callable[[Conn, Request], Awaitable[dict[str, Any] | None]]


class App:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.node_id = config.node_id or uuid.uuid4().hex[:12]
        self.metrics = Metrics()
        self.catalog = Catalog.load()
        self.store = make_store(config)
        # The files are the base; the store's moderator changes are applied at start().
        base_filter = load_filter(config)
        self.live_filter = LiveFilter(base_filter)
        self.text = TextGate(self.live_filter)
        self.sms = make_sms_provider(config)
        self.hub = Hub()
        self.broker, presence, queue = make_backends(config, self.node_id)
        self.node = Node(self.hub, self.broker, config.key_prefix, presence, self._catch_up)
        self.data_dir = DataDirClaim(config.data_dir, shared=not self.broker.local_only) \
            if config.store == "sqlite" else None
        self.accounts = AccountService(config, self.store, self.sms, self.catalog, self.text,
                                       read_secret(config.data_dir))
        self.chat = ChatService(config, self.store, self.node, self.text)
        self.matching = MatchService(MatchConfig(
            any_shared_after=config.match_any_shared_after,
            random_after=config.match_random_after,
            recent_pair_hours=config.match_recent_pair_hours), self.store, self.node, queue)
        self.words = WordLists(self.store, self.live_filter, base_filter, self.node,
                               config.wordlist_poll_interval)
        self.node.on_sys = self.words.on_notice
        self.moderation = ModerationService(self.store, self.node, self.words)
        self.privacy = PrivacyService(self.store)
        self.social = SocialService(config, self.store, self.text, self.catalog, self.privacy)
        self._stamp: asyncio.Task[None] | None = None
        self.draining = False
        self._handlers: dict[str, Handler] = {
            "ping": self._ping,
            "interests": self._interests,
            "sms.send": self._sms_send,
            "register": self._register,
            "login": self._login,
            "auth": self._auth,
            "password.reset": self._password_reset,
            "me": self._me,
            "logout": self._logout,
            "phone.rebind": self._phone_rebind,
            "profile.update": self._profile_update,
            "match.start": self._match_start,
            "match.cancel": self._match_cancel,
            "msg.send": self._msg_send,
            "history": self._history,
            "convs": self._convs,
            "conv.leave": self._conv_leave,
            "read": self._read,
            "typing": self._typing,
            "presence": self._presence,
            "block": self._block,
            "unblock": self._unblock,
        }
        self._handlers.update(users_api.handlers(self))
        self._handlers.update(moderation_api.handlers(self))

    async def start(self) -> None:
        if self.data_dir is not None:
            self.data_dir.acquire()
            self._stamp = asyncio.create_task(self._stamp_forever(), name="chatd-datadir")
        await self.store.open()
        await self.words.start()
        await self.node.start()
        await self.matching.start()
        if isinstance(self.sms, DevSmsProvider):
            log.warning("the development SMS provider is active: codes are returned to clients "
                        "as dev_code and never sent; do not use it in production")

    async def close(self) -> None:
        await self.words.close()
        await self.matching.close()
        await self.node.close()
        await self.store.close()
        await stop_task(self._stamp)
        if self.data_dir is not None:
            self.data_dir.release()

    async def _stamp_forever(self) -> None:
        assert self.data_dir is not None
        while True:
            await asyncio.sleep(10)
            await asyncio.to_thread(self.data_dir.touch)

    async def _catch_up(self, conv: ConvId, after: int) -> list[dict[str, Any]]:
        return [m.wire() for m in await self.store.history(conv, after, 500)]

    async def handle(self, conn: Conn, request: Request) -> dict[str, Any] | None:
        return await self._handlers[request.op](conn, request)

    async def disconnected(self, conn: Conn) -> None:
        await self.node.detach(conn)
        # Disconnecting leaves the match queue once the user's last session here is gone.
        if conn.user_id is not None and not self.hub.online(conn.user_id):
            await self.matching.cancel(conn.user_id)

    # --- accounts ------------------------------------------------------------------------

    async def _ping(self, conn: Conn, req: Request) -> dict[str, Any]:
        return {"ts": int(time.time() * 1000)}

    async def _interests(self, conn: Conn, req: Request) -> dict[str, Any]:
        return {"tags": self.catalog.as_wire()}

    async def _sms_send(self, conn: Conn, req: Request) -> dict[str, Any]:
        purpose = req.args["purpose"]
        if purpose in ("rebind", "delete") and conn.user_id is None:
            raise Forbidden("log in first")
        if purpose == "delete":
            # A deletion code goes only to the account's own phone.
            user = await self.store.get_user(_uid(conn))
            if user is None or normalize_phone(req.args["phone"]) != user.phone:
                raise Forbidden("a deletion code goes to your own phone only")
        return await self.accounts.send_code(req.args["phone"], req.args["purpose"],
                                             conn.address)

    async def _register(self, conn: Conn, req: Request) -> dict[str, Any]:
        self._not_twice(conn)
        result = await self.accounts.register(req.args, req.args.get("device", ""))
        return await self._logged_in(conn, result, with_token=True)

    async def _login(self, conn: Conn, req: Request) -> dict[str, Any]:
        self._not_twice(conn)
        result = await self.accounts.login(req.args, req.args.get("device", ""), conn.address)
        return await self._logged_in(conn, result, with_token=True)

    async def _auth(self, conn: Conn, req: Request) -> dict[str, Any]:
        self._not_twice(conn)
        result = await self.accounts.resume(req.args["token"])
        return await self._logged_in(conn, result, with_token=False)

    def _not_twice(self, conn: Conn) -> None:
        if conn.user_id is not None:
            raise BadRequest("this connection is authenticated already")

    async def _logged_in(self, conn: Conn, result: LoginResult,
                         with_token: bool) -> dict[str, Any]:
        user = result.user
        convs = {c.id: c.last_seq for c in await self.store.user_convs(user.id)}
        blocked = await self.store.blocked_by(user.id)
        conn.token_hash = result.token_hash
        await self.node.attach(conn, user.id, convs, blocked)
        reply: dict[str, Any] = {"user": _self_view(user)}
        if with_token:
            reply["token"] = result.token
        return reply

    async def _password_reset(self, conn: Conn, req: Request) -> None:
        user_id, ended = await self.accounts.reset_password(req.args)
        await self.node.revoke(user_id, ended)

    async def _me(self, conn: Conn, req: Request) -> dict[str, Any]:
        user = await self.store.get_user(_uid(conn))
        if user is None:
            raise Forbidden("this account no longer exists")
        return {"user": _self_view(user), "consents": await self.privacy.consents(user.id)}

    async def _logout(self, conn: Conn, req: Request) -> None:
        token_hash = conn.token_hash
        if token_hash is not None:
            await self.accounts.logout(token_hash)
            # Other connections on the same token end now; this one after its reply.
            conn.token_hash = None
            await self.node.revoke(_uid(conn), [token_hash])
            conn.close_after_reply = (CLOSE_REVOKED, "logged out")

    async def _phone_rebind(self, conn: Conn, req: Request) -> dict[str, Any]:
        user = await self.accounts.rebind_phone(_uid(conn), req.args)
        return {"user": _self_view(user)}

    async def _profile_update(self, conn: Conn, req: Request) -> dict[str, Any]:
        user_id = _uid(conn)
        before = await self.store.get_user(user_id)
        user = await self.accounts.update_profile(user_id, req.args)
        if before is not None and before.interests != user.interests:
            await self.chat.interests_changed(user_id, before.interests, user.interests)
        return {"user": _self_view(user)}

    # --- matching and chat ---------------------------------------------------------------

    async def _match_start(self, conn: Conn, req: Request) -> dict[str, Any]:
        await self.matching.start_waiting(_uid(conn), req.args.get("prefs"))
        return {"queued": True}

    async def _match_cancel(self, conn: Conn, req: Request) -> None:
        await self.matching.cancel(_uid(conn))

    async def _msg_send(self, conn: Conn, req: Request) -> dict[str, Any]:
        return await self.chat.send(_uid(conn), req.args["conv"], req.args["body"],
                                    req.args.get("cid"), origin=conn.cid)

    async def _history(self, conn: Conn, req: Request) -> dict[str, Any]:
        return await self.chat.history(_uid(conn), req.args["conv"], req.args.get("after", 0),
                                       req.args.get("limit", 50))

    async def _convs(self, conn: Conn, req: Request) -> dict[str, Any]:
        return await self.chat.conversations(_uid(conn))

    async def _conv_leave(self, conn: Conn, req: Request) -> None:
        await self.chat.leave(_uid(conn), req.args["conv"])

    async def _read(self, conn: Conn, req: Request) -> dict[str, Any]:
        return await self.chat.read(_uid(conn), req.args["conv"], req.args["seq"],
                                    origin=conn.cid)

    async def _typing(self, conn: Conn, req: Request) -> None:
        await self.chat.typing(_uid(conn), req.args["conv"], origin=conn.cid)

    async def _presence(self, conn: Conn, req: Request) -> dict[str, Any]:
        users = [UserId(u) for u in req.args["users"]]
        if len(users) > 100:
            raise BadRequest("ask about at most 100 users", field="users")
        online = await self.node.presence.online(users)
        return {"online": {u: online[u] for u in users}}

    async def _block(self, conn: Conn, req: Request) -> None:
        await self.chat.block(_uid(conn), UserId(req.args["user"]))

    async def _unblock(self, conn: Conn, req: Request) -> None:
        await self.chat.unblock(_uid(conn), UserId(req.args["user"]))


def _uid(conn: Conn) -> UserId:
    if conn.user_id is None:  # the session layer refuses unauthenticated ops first
        raise ChatError("no user on this connection")
    return conn.user_id


def _self_view(user: Any) -> dict[str, Any]:
    """The caller's own profile: the public view plus what only they may see."""
    view: dict[str, Any] = user.public()
    view.update(phone=user.phone, birthdate=user.birthdate, role=user.role)
    return view


def make_store(config: Config) -> Store:
    if config.store == "postgres":
        from chatd.store.postgres import PostgresStore
        return PostgresStore(config.postgres_dsn, config.postgres_pool_min,
                             config.postgres_pool_max)
    return SQLiteStore(config.db_path, synchronous=config.sqlite_synchronous)


def make_backends(config: Config, node_id: str) -> tuple[Broker, Presence, MatchQueue]:
    """The broker, presence and match queue the config names (uvicorn-style by name)."""
    if config.broker == "redis":
        from chatd.broker.redis import RedisBroker
        from chatd.matching.redis import RedisMatchQueue
        from chatd.presence.redis import RedisPresence
        broker = RedisBroker(config.redis_url, config.key_prefix, node_id)
        return (broker,
                RedisPresence(broker.client, node_id, config.key_prefix, config.presence_ttl),
                RedisMatchQueue(broker.client, node_id, config.key_prefix))
    return MemoryBroker(), MemoryPresence(), MemoryMatchQueue()


def load_filter(config: Config) -> WordFilter:
    paths = [Path(p) for p in config.wordlists] or [default_wordlists_path()]
    return WordFilter.from_paths(*paths)


def make_sms_provider(config: Config) -> SmsProvider:
    if config.sms_provider == "webhook":
        return WebhookSmsProvider(config.sms_webhook_url)
    return DevSmsProvider()


def read_secret(data_dir: Path) -> bytes:
    """The install's HMAC key for SMS codes: made once, kept beside the database (mode 0600)."""
    path = data_dir / "secret.key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        secret = secrets.token_bytes(32)
        path.touch(mode=0o600)
        path.write_text(secret.hex())
        return secret


