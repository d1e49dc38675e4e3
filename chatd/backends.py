"""The parts a Config names, built by name (uvicorn's lesson): store, broker, presence, match
queue, abuse counters, word filter, SMS provider, push outbox, media storage, and the install's
secret."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import cast

from chatd.broker import Broker, MemoryBroker
from chatd.config import Config
from chatd.limits import Counters, MemoryCounters
from chatd.media import DirMediaStorage, MediaStorage
from chatd.presence import MemoryPresence, Presence
from chatd.push.outbox import PushOutbox
from chatd.services.matching import MatchQueue, MemoryMatchQueue
from chatd.services.sms import DevSmsProvider, SmsProvider, WebhookSmsProvider
from chatd.store import SQLiteStore, Store
from filters import WordFilter, default_wordlists_path

__all__ = ["load_filter", "make_backends", "make_counters", "make_media_storage",
           "make_push_outbox", "make_sms_provider", "make_store", "read_secret"]


def make_store(config: Config) -> Store:
    if config.store == "postgres":
        from chatd.store.postgres import PostgresStore
        return PostgresStore(config.postgres_dsn, config.postgres_pool_min,
                             config.postgres_pool_max)
    if config.sqlite_writer == "process":
        from chatd.store.sqlite.process import ProcessSQLiteStore
        return cast(Store, ProcessSQLiteStore(config.db_path,
                                              synchronous=config.sqlite_synchronous))
    return SQLiteStore(config.db_path, synchronous=config.sqlite_synchronous)


def make_media_storage(config: Config) -> MediaStorage:
    """Files in a directory under ``data_dir`` (one host), or an S3-compatible bucket."""
    if config.media_store == "s3":
        from chatd.media.s3 import S3MediaStorage
        return S3MediaStorage(config.s3_endpoint, config.s3_bucket, config.s3_access_key,
                              config.s3_secret_key, region=config.s3_region)
    return DirMediaStorage(config.data_dir / "media")


def make_push_outbox(config: Config, store: Store, presence: Presence) -> PushOutbox | None:
    """The outbox worker, when a push gateway is configured (aiohttp loads only then)."""
    if not config.push_webhook_url:
        return None
    from chatd.push.webhook import WebhookPushProvider
    provider = WebhookPushProvider(config.push_webhook_url, config.push_webhook_secret.encode())
    return PushOutbox(store, provider, presence, config.push_poll_interval,
                      max_attempts=config.push_max_attempts,
                      retry_base_ms=int(config.push_retry_base * 1000))


def make_backends(config: Config, node_id: str) -> tuple[Broker, Presence, MatchQueue]:
    """The broker, presence and match queue the config names (uvicorn-style by name)."""
    if config.broker == "redis":
        from chatd.broker.redis import redis_broker
        from chatd.matching.redis import RedisMatchQueue
        from chatd.presence.redis import RedisPresence
        # Plain pub/sub on one Redis; sharded pub/sub on a redis+cluster:// URL. Either way
        # ``broker.client`` is the node's one bounded command client.
        broker = redis_broker(config.redis_url, config.key_prefix, node_id)
        return (broker,
                RedisPresence(broker.client, node_id, config.key_prefix, config.presence_ttl),
                RedisMatchQueue(broker.client, node_id, config.key_prefix))
    return MemoryBroker(), MemoryPresence(), MemoryMatchQueue()


def make_counters(config: Config, broker: Broker) -> Counters:
    """Abuse counters shared by the nodes: Redis' with the Redis broker (its client), else
    this process' own (a node alone: its limits live in memory)."""
    if config.broker == "redis":
        from chatd.limits.redis import RedisCounters
        client = getattr(broker, "client", None)
        assert client is not None, "a Redis broker owns the command client"
        return RedisCounters(client, config.key_prefix)
    return MemoryCounters()


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
