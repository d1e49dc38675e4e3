"""One frozen, validated configuration object (uvicorn's ``config.py`` lesson).

Sources, weakest first: defaults < TOML file < ``CHATD_*`` environment < command-line flags.
This module never reads the environment itself; ``cli.py`` hands it the mappings.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, get_args, get_origin, get_type_hints
from urllib.parse import unquote

__all__ = ["MIN_SECRET_CHARS", "SETTINGS_HELP", "SETTINGS_METAVAR", "Config", "ConfigError",
           "RedisClusterUrl", "api_key_pairs", "default_text", "env_name", "load_config",
           "metavar", "parse_redis_cluster_url"]

Profile = Literal["development", "production"]
SmsProviderName = Literal["dev", "webhook"]
Toggle = Literal["auto", "on", "off"]
BrokerName = Literal["memory", "redis"]
StoreName = Literal["sqlite", "postgres"]
Durability = Literal["full", "normal"]
WriterName = Literal["thread", "process"]
MediaStoreName = Literal["dir", "s3"]


class ConfigError(ValueError):
    """A bad setting; the message names it."""


@dataclass(frozen=True)
class Config:
    # Network
    host: str = "127.0.0.1"
    port: int = 8765
    # Where the embedded store and the install secret live.
    data_dir: Path = Path("var")
    profile: Profile = "development"
    node_id: str = ""
    log_level: str = "INFO"
    # WebSocket transport
    max_frame_bytes: int = 65536
    compression: bool = False
    origins: tuple[str, ...] = ()
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    idle_timeout: float = 300.0
    outbound_queue_bytes: int = 1 << 20
    open_timeout: float = 10.0
    shutdown_grace: float = 0.0
    max_conns_per_address: int = 512
    trusted_proxies: tuple[str, ...] = ()
    # Per-connection limits
    rate_per_second: float = 20.0
    rate_burst: int = 40
    max_inflight: int = 16
    # Accounts
    sms_provider: SmsProviderName = "dev"
    sms_webhook_url: str = ""
    # The browser pages /app/ and /mod/: "auto" serves them in development only.
    web_pages: Toggle = "auto"
    sms_code_ttl: int = 300
    sms_resend_interval: int = 60
    sms_daily_limit: int = 10
    sms_code_attempts: int = 5
    sms_address_hourly: int = 20
    sms_global_hourly: int = 10_000
    login_failures_per_phone: int = 10
    login_failures_per_address: int = 50
    session_ttl_days: int = 30
    sms_purge_interval: float = 600.0
    # Per-user limits, across the user's connections (and nodes, with the Redis broker)
    user_messages_per_minute: int = 120
    user_matches_per_minute: int = 20
    user_reports_per_hour: int = 20
    user_sms_per_hour: int = 10
    user_searches_per_minute: int = 30
    # Text
    wordlists: tuple[str, ...] = ()
    max_message_chars: int = 2000
    recall_window: float = 120.0
    wordlist_poll_interval: float = 1.0
    # Posts and search
    max_post_chars: int = 2000
    search_history_keep: int = 100
    # Matching
    match_any_shared_after: float = 3.0
    match_hold_pool: int = 200
    match_random_after: float = 30.0
    match_recent_pair_hours: float = 24.0
    # Scale-out
    workers: int = 1
    reuse_port: bool = False
    broker: BrokerName = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    store: StoreName = "sqlite"
    sqlite_synchronous: Durability = "full"
    sqlite_writer: WriterName = "thread"
    postgres_dsn: str = "postgresql://127.0.0.1/chatd"
    postgres_pool_min: int = 2
    postgres_pool_max: int = 10
    key_prefix: str = "chatd:"
    presence_ttl: float = 15.0
    # Push notifications (off without a gateway URL)
    push_webhook_url: str = ""
    push_webhook_secret: str = field(default="", repr=False)
    push_delay: float = 1.5
    push_poll_interval: float = 0.5
    push_max_attempts: int = 8
    push_retry_base: float = 2.0
    presence_grace: float = 5.0
    # The server HTTP API for the app's backend (a listener of its own; off without keys)
    api_host: str = "127.0.0.1"
    api_port: int = 8766
    # ``name:secret`` pairs; kept out of the repr so that no log line can carry them.
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    api_requests_per_minute: int = 6000
    # Marketing SMS and the inbound-SMS webhook (on the API listener)
    campaign_rate_per_second: float = 10.0
    sms_inbound_secret: str = field(default="", repr=False)
    # Account verification by the operator's verifier (off when empty)
    verification_url: str = ""
    # Photos, voice clips and avatars (POST /upload and GET /media/<id> on the same port)
    media_store: MediaStoreName = "dir"
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    max_voice_bytes: int = 2 * 1024 * 1024
    max_voice_seconds: float = 60.0
    media_orphan_after: float = 86400.0
    media_review_new_days: float = 3.0
    media_link_seconds: float = 600.0
    s3_endpoint: str = ""
    s3_bucket: str = "chatd-media"
    s3_region: str = "us-east-1"
    s3_access_key: str = field(default="", repr=False)
    s3_secret_key: str = field(default="", repr=False)
    # Extra fields a service may read without a schema change.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def api_enabled(self) -> bool:
        """The API listener runs when it has something to authenticate with: API keys, or
        the inbound-SMS secret (its webhook lives there too)."""
        return bool(self.api_keys or self.sms_inbound_secret)

    @property
    def serve_web_pages(self) -> bool:
        return self.web_pages == "on" or (self.web_pages == "auto"
                                          and self.profile == "development")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "chatd.sqlite3"

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


SETTINGS_HELP: dict[str, str] = {
    "host": "address to listen on",
    "port": "TCP port (0 picks a free one)",
    "data_dir": "directory of the embedded SQLite store and the install secret",
    "profile": "development or production (production refuses the dev SMS provider)",
    "node_id": "this node's id (generated when empty)",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "max_frame_bytes": "largest accepted WebSocket frame; larger ones close with 1009",
    "compression": "permessage-deflate (off by default: memory, CPU, CRIME/BREACH)",
    "origins": "comma-separated Origin allow-list (empty: any; apps send none)",
    "ping_interval": "seconds between keepalive pings",
    "ping_timeout": "seconds to wait for a pong before closing",
    "idle_timeout": "seconds without a client frame before closing with 4002",
    "outbound_queue_bytes": "bytes queued for one slow client before closing it with 3008",
    "open_timeout": "seconds a client has to finish the opening handshake (slowloris)",
    "shutdown_grace": "seconds /healthz answers 503 before a stopping node closes its "
                      "connections (5-10 behind a load balancer)",
    "max_conns_per_address": "open connections per client address (HTTP 429 beyond)",
    "trusted_proxies": "comma-separated proxy addresses whose X-Forwarded-For is believed",
    "rate_per_second": "requests per second per connection (token bucket refill)",
    "rate_burst": "token bucket size per connection",
    "max_inflight": "requests queued per connection before rate_limited",
    "sms_provider": "dev (logs the code, development only) or webhook",
    "sms_webhook_url": "URL the webhook SMS provider POSTs to",
    "web_pages": "serve the /app/ and /mod/ pages: auto (development only), on or off",
    "sms_code_ttl": "seconds an SMS code stays valid",
    "sms_resend_interval": "seconds between two codes to one phone",
    "sms_daily_limit": "codes per phone per day",
    "sms_code_attempts": "wrong tries before a code is burnt",
    "sms_address_hourly": "codes one client address may request per hour",
    "sms_global_hourly": "codes the whole deployment sends per hour (SMS costs money)",
    "login_failures_per_phone": "failed logins per phone per 15 minutes before rate_limited",
    "login_failures_per_address": "failed logins per address per 15 minutes before rate_limited",
    "user_messages_per_minute": "msg.send per user per minute, all connections and nodes",
    "user_matches_per_minute": "match.start per user per minute, all connections and nodes",
    "user_reports_per_hour": "report per user per hour, all connections and nodes",
    "user_sms_per_hour": "sms.send per logged-in user per hour, all connections and nodes",
    "user_searches_per_minute": "search per user per minute (pages too), all connections and "
                                "nodes",
    "session_ttl_days": "days a session token stays valid",
    "sms_purge_interval": "seconds between two purges of expired SMS codes",
    "wordlists": "comma-separated word-list files or folders (empty: the shipped defaults)",
    "max_message_chars": "longest message body in characters",
    "recall_window": "seconds during which a sender may recall (撤回) a message",
    "wordlist_poll_interval": "seconds between two checks of the stored word-list version",
    "max_post_chars": "longest status post in characters",
    "search_history_keep": "queries kept per user in the search history",
    "match_any_shared_after": "seconds a newcomer holds out for a strong pair while the queue "
                              "is busy (otherwise any shared tag is enough at once)",
    "match_hold_pool": "users entering the match queue within match_any_shared_after seconds "
                       "that make it busy (0: always busy)",
    "match_random_after": "seconds of waiting before a random compatible partner is allowed",
    "match_recent_pair_hours": "hours during which two users who met are not matched again",
    "workers": "node processes sharing the port on this host (SO_REUSEPORT), each a node of "
               "its own: needs store postgres and broker redis",
    "reuse_port": "share the port with other processes (SO_REUSEPORT; set by --workers)",
    "broker": "memory (one node) or redis",
    "redis_url": "Redis URL for the redis broker: redis://HOST:PORT/DB (rediss:// for TLS, "
                 "unix://PATH), or redis+cluster://HOST:PORT[,HOST:PORT...] for a Redis "
                 "Cluster with sharded pub/sub (rediss+cluster:// for TLS; the hosts are seeds, "
                 "the cluster tells the rest)",
    "store": "sqlite (embedded) or postgres",
    "sqlite_synchronous": "full: an acknowledged message survives power loss; normal: it "
                          "survives a chatd crash, not a host crash (faster)",
    "sqlite_writer": "thread: SQL runs on a thread of the node's process; process: in a child "
                     "process, so the event loop's core runs no SQL (for a host with a core "
                     "to spare: it costs more CPU in all)",
    "postgres_dsn": "PostgreSQL DSN for the postgres store",
    "postgres_pool_min": "connections the postgres store keeps open",
    "postgres_pool_max": "most connections the postgres store opens",
    "key_prefix": "prefix of every Redis key and channel",
    "presence_ttl": "seconds after which a crashed node's users count as offline",
    "push_webhook_url": "URL of the push gateway notifications are POSTed to (empty: no push)",
    "push_webhook_secret": "HMAC-SHA256 key signing each push POST (needed with the URL)",
    "push_delay": "seconds a message waits before its push (a burst is one notification)",
    "push_poll_interval": "seconds between two looks at the push outbox",
    "push_max_attempts": "deliveries tried per notification before it is given up",
    "push_retry_base": "seconds before the first retry of a failed push (doubling, to 10 min)",
    "presence_grace": "seconds a user stays online after their last connection closed; "
                      "contacts hear 'offline' only if they are not back by then",
    "api_host": "address the server HTTP API listens on (keep it internal)",
    "api_port": "TCP port of the server HTTP API (0 picks a free one)",
    "api_keys": "comma-separated NAME:SECRET API keys (secrets of 16+ characters); the API "
                "listener is off without keys (prefer the file or the environment: flags show "
                "in ps)",
    "api_requests_per_minute": "server API requests per key per minute, all nodes together",
    "campaign_rate_per_second": "marketing SMS a campaign sends per second at most",
    "sms_inbound_secret": "HMAC-SHA256 key of the inbound-SMS webhook POST /sms/inbound on the "
                          "API listener (16+ characters; empty: the webhook is off)",
    "verification_url": "URL chatd POSTs {user_id} to after each registration; accounts are "
                        "then pending until verification.set (empty: no verification)",
    "media_store": "where photos and voice clips live: dir (under data_dir/media, one host) or "
                   "s3 (an S3-compatible object store shared by every node)",
    "max_image_bytes": "largest photo or avatar upload in bytes (a longer body is cut off)",
    "max_image_pixels": "largest photo in pixels (width x height, read from the header: "
                        "decompression bombs are refused before decoding)",
    "max_voice_bytes": "largest voice clip upload in bytes",
    "max_voice_seconds": "longest voice clip in seconds (read from the container)",
    "media_orphan_after": "seconds an upload may stay unattached before it is removed",
    "media_review_new_days": "photos of accounts younger than this many days (or with open "
                             "reports) go to the moderators' media queue",
    "media_link_seconds": "lifetime of a signed media link (media.link, for <img> tags)",
    "s3_endpoint": "URL of the S3-compatible endpoint (MinIO, AWS S3, Alibaba OSS)",
    "s3_bucket": "bucket of the media (created if missing)",
    "s3_region": "region of the S3 bucket",
    "s3_access_key": "S3 access key id (prefer the file or the environment)",
    "s3_secret_key": "S3 secret key (prefer the file or the environment)",
}


# The placeholder of each flag in ``chatd serve --help``; settings missing here get one from
# their type (see :func:`metavar`).
SETTINGS_METAVAR: dict[str, str] = {
    "host": "ADDRESS",
    "port": "PORT",
    "data_dir": "DIR",
    "node_id": "ID",
    "max_frame_bytes": "BYTES",
    "origins": "ORIGIN[,ORIGIN...]",
    "outbound_queue_bytes": "BYTES",
    "trusted_proxies": "ADDRESS[,ADDRESS...]",
    "rate_per_second": "N",
    "sms_webhook_url": "URL",
    "push_webhook_url": "URL",
    "push_webhook_secret": "SECRET",
    "sms_code_ttl": "SECONDS",
    "sms_resend_interval": "SECONDS",
    "session_ttl_days": "DAYS",
    "wordlists": "PATH[,PATH...]",
    "max_message_chars": "N",
    "recall_window": "SECONDS",
    "max_post_chars": "N",
    "match_recent_pair_hours": "HOURS",
    "redis_url": "URL",
    "postgres_dsn": "DSN",
    "key_prefix": "PREFIX",
    "api_host": "ADDRESS",
    "api_port": "PORT",
    "api_keys": "NAME:SECRET[,NAME:SECRET...]",
    "api_requests_per_minute": "N",
    "campaign_rate_per_second": "N",
    "sms_inbound_secret": "SECRET",
    "verification_url": "URL",
    "s3_endpoint": "URL",
    "s3_access_key": "KEY",
    "s3_secret_key": "SECRET",
}


def env_name(name: str) -> str:
    """The environment variable of a setting: ``port`` -> ``CHATD_PORT``."""
    return "CHATD_" + name.upper()


def default_text(name: str) -> str:
    """A setting's built-in default as an operator would write it (``(empty)`` for none)."""
    value = getattr(Config(), name)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        value = ",".join(value)
    text = str(value)
    return text if text else "(empty)"


def metavar(name: str) -> str:
    """The placeholder of a setting's flag: its choices, or what kind of value it takes."""
    if name in SETTINGS_METAVAR:
        return SETTINGS_METAVAR[name]
    if name == "log_level":
        return "{DEBUG,INFO,WARNING,ERROR}"
    hint = get_type_hints(Config)[name]
    choices = get_args(hint) if get_origin(hint) is Literal else ()
    if choices:
        return "{" + ",".join(str(c) for c in choices) + "}"
    default = getattr(Config(), name)
    if isinstance(default, bool):
        return "{true,false}"
    if isinstance(default, float):
        return "SECONDS"
    if isinstance(default, int):
        return "N"
    if isinstance(default, Path):
        return "PATH"
    return "TEXT"


def _validate(c: Config) -> None:
    def bad(name: str, why: str) -> ConfigError:
        return ConfigError(f"setting {name!r}: {why}")

    if not c.host:
        raise bad("host", "must not be empty")
    if not 0 <= c.port <= 65535:
        raise bad("port", f"{c.port} is not a TCP port (0-65535)")
    if c.max_frame_bytes < 1024:
        raise bad("max_frame_bytes", "must be at least 1024")
    for name in ("ping_interval", "ping_timeout", "idle_timeout", "rate_per_second",
                 "presence_ttl", "open_timeout", "sms_purge_interval"):
        if getattr(c, name) <= 0:
            raise bad(name, "must be positive")
    for name in ("rate_burst", "max_inflight", "outbound_queue_bytes", "sms_code_ttl",
                 "sms_daily_limit", "sms_code_attempts", "session_ttl_days", "max_message_chars",
                 "sms_address_hourly", "login_failures_per_phone", "max_conns_per_address",
                 "sms_global_hourly",
                 "login_failures_per_address", "max_post_chars", "search_history_keep",
                 "user_messages_per_minute", "user_matches_per_minute", "user_reports_per_hour",
                 "user_sms_per_hour", "user_searches_per_minute"):
        if getattr(c, name) < 1:
            raise bad(name, "must be at least 1")
    for name in ("shutdown_grace", "presence_grace", "match_hold_pool"):
        if getattr(c, name) < 0:
            raise bad(name, "must not be negative")
    if c.sms_resend_interval < 0:
        raise bad("sms_resend_interval", "must not be negative")
    if c.workers < 1:
        raise bad("workers", "must be at least 1")
    if c.workers > 1:
        if c.store != "postgres" or c.broker != "redis":
            raise bad("workers", "each worker is a node of its own, sharing users, messages "
                      "and word lists only through the database and the broker: use "
                      "store = \"postgres\" and broker = \"redis\" (the embedded SQLite "
                      "store and the memory broker belong to one process)")
        if c.port == 0:
            raise bad("workers", "workers share one port: give a port (not 0)")
    if c.recall_window < 0:
        raise bad("recall_window", "must not be negative (0: messages cannot be recalled)")
    if c.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise bad("log_level", f"{c.log_level!r} is not DEBUG, INFO, WARNING or ERROR")
    hints = get_type_hints(Config)
    for f in fields(Config):
        allowed = get_args(hints[f.name])
        choice = getattr(c, f.name)
        if f.name in ("profile", "sms_provider", "broker", "store", "web_pages",
                      "sqlite_synchronous", "sqlite_writer") \
                and choice not in allowed:
            raise bad(f.name, f"{getattr(c, f.name)!r} is not one of {', '.join(allowed)}")
    cluster = None
    if c.broker == "redis":
        try:
            cluster = parse_redis_cluster_url(c.redis_url)
        except ValueError as exc:
            raise bad("redis_url", str(exc)) from None
        if cluster is None and not c.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise bad("redis_url", "must be a redis://, rediss://, unix:// or redis+cluster:// "
                      "URL")
    if not c.key_prefix or any(ch.isspace() for ch in c.key_prefix):
        raise bad("key_prefix", "must be a non-empty prefix without spaces")
    if cluster is not None and ("{" in c.key_prefix or "}" in c.key_prefix):
        # A hash tag in the prefix would put every key and channel in one slot: one shard.
        raise bad("key_prefix", "must not contain { or } with a Redis Cluster (a hash tag "
                  "would put every key and channel on one shard)")
    if c.store == "postgres" and not c.postgres_dsn.startswith(("postgres://", "postgresql://")):
        raise bad("postgres_dsn", "must be a postgresql:// DSN")
    if not 1 <= c.postgres_pool_min <= c.postgres_pool_max:
        raise bad("postgres_pool_max", "needs 1 <= postgres_pool_min <= postgres_pool_max")
    if c.push_webhook_url:
        if not c.push_webhook_url.startswith(("http://", "https://")):
            raise bad("push_webhook_url", "needs an http(s) URL")
        if len(c.push_webhook_secret) < 16:
            raise bad("push_webhook_secret", "needs at least 16 characters with the URL")
    if c.push_delay < 0 or c.push_poll_interval <= 0 or c.push_max_attempts < 1 \
            or c.push_retry_base <= 0:
        raise bad("push_delay", "push_delay >= 0, push_poll_interval > 0, push_retry_base > 0"
                  " and push_max_attempts >= 1")
    if c.sms_provider == "webhook" and not c.sms_webhook_url.startswith(("http://", "https://")):
        raise bad("sms_webhook_url", "the webhook SMS provider needs an http(s) URL")
    _validate_api(c, bad)
    _validate_media(c, bad)
    if c.profile == "production" and c.sms_provider == "dev":
        raise bad("sms_provider", "the development SMS provider is refused in production; "
                  "set sms_provider = \"webhook\" and sms_webhook_url")


class RedisClusterUrl(NamedTuple):
    """A ``redis+cluster://`` URL taken apart: the seed nodes and how to reach them."""

    seeds: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool


_CLUSTER_SCHEMES: Final = {"redis+cluster": False, "rediss+cluster": True}


def parse_redis_cluster_url(url: str) -> RedisClusterUrl | None:
    """``redis+cluster://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT...]`` taken apart; None for
    any other URL (one plain Redis). Raises ValueError, naming the part, when malformed."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _CLUSTER_SCHEMES:
        return None
    userinfo, at, hosts = rest.rpartition("@")
    if hosts.endswith("/"):
        hosts = hosts[:-1]
    if "/" in hosts or "?" in hosts:
        raise ValueError("a cluster URL has no database or options (a cluster has only db 0)")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    seeds = []
    for item in hosts.split(","):
        host, colon, port = item.strip().rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"seed {item.strip()!r} is not HOST:PORT")
        seeds.append((host, int(port)))
    return RedisClusterUrl(tuple(seeds), username, password, _CLUSTER_SCHEMES[scheme.lower()])


#: Minimum length of an API key's secret and of the inbound-SMS secret (guessing is hopeless).
MIN_SECRET_CHARS: Final = 16
_KEY_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")
#: Settings whose value no message may quote.
_SECRET_SETTINGS: Final = frozenset({"api_keys", "sms_inbound_secret", "push_webhook_secret",
                                     "s3_secret_key"})


def _validate_media(c: Config, bad: Callable[[str, str], ConfigError]) -> None:
    for name in ("max_image_bytes", "max_image_pixels", "max_voice_bytes"):
        if getattr(c, name) < 1:
            raise bad(name, "must be at least 1")
    if c.max_voice_seconds <= 0 or c.media_orphan_after <= 0 or c.media_link_seconds <= 0 \
            or c.media_review_new_days < 0:
        raise bad("max_voice_seconds", "max_voice_seconds, media_orphan_after and "
                  "media_link_seconds must be > 0, media_review_new_days >= 0")
    if c.media_store == "s3":
        if not c.s3_endpoint.startswith(("http://", "https://")):
            raise bad("s3_endpoint", "the s3 media store needs an http(s) endpoint URL")
        if not c.s3_access_key or not c.s3_secret_key:
            raise bad("s3_access_key", "the s3 media store needs s3_access_key and "
                      "s3_secret_key")


def api_key_pairs(keys: tuple[str, ...]) -> list[tuple[str, str]]:
    """``api_keys`` as (name, secret) pairs (valid: the config checked them)."""
    return [(name, secret) for name, _, secret in (k.partition(":") for k in keys)]


def _validate_api(c: Config, bad: Callable[[str, str], ConfigError]) -> None:
    # No message quotes a key: a malformed item may be a secret pasted on its own.
    if not 0 <= c.api_port <= 65535:
        raise bad("api_port", f"{c.api_port} is not a TCP port (0-65535)")
    if c.api_port and c.api_port == c.port and c.api_host == c.host:
        raise bad("api_port", "must differ from port (the API has a listener of its own)")
    names: set[str] = set()
    secrets: set[str] = set()
    for i, item in enumerate(c.api_keys, start=1):
        name, sep, secret = item.partition(":")
        if not sep or not _KEY_NAME.fullmatch(name):
            raise bad("api_keys", f"item {i} is not NAME:SECRET (NAME: 1-32 of A-Z a-z 0-9 _ . -)")
        if len(secret) < MIN_SECRET_CHARS or secret != secret.strip():
            raise bad("api_keys", f"the secret of key {name!r} needs {MIN_SECRET_CHARS}+ "
                      "characters and no surrounding spaces")
        if name in names or secret in secrets:
            raise bad("api_keys", f"key {name!r} repeats a name or a secret")
        names.add(name)
        secrets.add(secret)
    if c.sms_inbound_secret and len(c.sms_inbound_secret) < MIN_SECRET_CHARS:
        raise bad("sms_inbound_secret", f"needs {MIN_SECRET_CHARS}+ characters")
    if c.api_requests_per_minute < 1:
        raise bad("api_requests_per_minute", "must be at least 1")
    if c.campaign_rate_per_second <= 0:
        raise bad("campaign_rate_per_second", "must be positive")
    if c.verification_url and not c.verification_url.startswith(("http://", "https://")):
        raise bad("verification_url", "must be an http(s) URL")


def _coerce(name: str, raw: Any, default: Any) -> Any:
    """Convert a TOML/env/flag value to the type of the setting's default."""
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{raw!r} is not a boolean")
        if isinstance(default, int):
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(f"{raw!r} is not an integer")
            return int(raw)
        if isinstance(default, float):
            if isinstance(raw, bool):
                raise ValueError(f"{raw!r} is not a number")
            return float(raw)
        if isinstance(default, Path):
            return Path(str(raw))
        if isinstance(default, tuple):
            items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
            return tuple(str(i).strip() for i in items if str(i).strip())
        if isinstance(default, str):
            if not isinstance(raw, str):
                raise ValueError(f"{raw!r} is not a string")
            return raw
    except ValueError as exc:
        if name in _SECRET_SETTINGS:  # the message would quote the value
            raise ConfigError(f"setting {name!r}: not a {type(default).__name__}") from None
        raise ConfigError(f"setting {name!r}: {exc}") from None
    raise ConfigError(f"setting {name!r} cannot be set here")


def load_config(
    toml_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Merge the sources (file < env < flags) into a validated :class:`Config`."""
    defaults = Config()
    known = {f.name: getattr(defaults, f.name) for f in fields(Config) if f.name != "extra"}
    values: dict[str, Any] = {}

    if toml_path is not None:
        try:
            data = tomllib.loads(Path(toml_path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"config file {toml_path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {toml_path}: {exc}") from None
        for key, raw in data.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ConfigError(f"config file {toml_path}: unknown setting {key!r}")
            values[name] = _coerce(name, raw, known[name])

    for key, raw in (env or {}).items():
        if not key.startswith("CHATD_"):
            continue
        name = key[len("CHATD_"):].lower()
        if name not in known:
            raise ConfigError(f"environment {key}: unknown setting {name!r}")
        values[name] = _coerce(name, raw, known[name])

    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        if name not in known:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = _coerce(name, raw, known[name])

    return Config(**values)
