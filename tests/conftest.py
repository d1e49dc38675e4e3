"""Shared fixtures: real servers on port 0, real data directories, one timing unit.

``CHATD_TEST_TIME_SCALE`` scales every timeout of the suite on a slow machine
(websockets' ``MS`` lesson).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from chatd.client import Client
from chatd.config import Config
from chatd.server import ChatServer
from tests.pg import pg_dsn  # noqa: F401  (a fixture for every test module)
from tests.redis_cluster import redis_cluster  # noqa: F401  (likewise)

REDIS_URL = "redis://127.0.0.1:6379/0"

SCALE = float(os.environ.get("CHATD_TEST_TIME_SCALE", "1"))
REPO = Path(__file__).resolve().parent.parent

# A small word list with every action, so tests do not depend on the curated defaults.
TEST_WORDS = """\
# test list
@category abuse
@action block
傻逼
@category ads
@action mask
加微信
@category politics
@action review
敏感话题
"""


def t(seconds: float) -> float:
    """A timeout of the suite, scaled."""
    return seconds * SCALE


@pytest.fixture
def wordlist(tmp_path: Path) -> Path:
    path = tmp_path / "words" / "test.txt"
    path.parent.mkdir()
    path.write_text(TEST_WORDS, encoding="utf-8")
    return path.parent


@pytest.fixture
def config(tmp_path: Path, wordlist: Path) -> Config:
    return Config(port=0, data_dir=tmp_path / "data", wordlists=(str(wordlist),),
                  rate_per_second=200.0, rate_burst=400, sms_resend_interval=0,
                  match_any_shared_after=1.0,
                  match_random_after=2.0, presence_grace=0.2)


@pytest.fixture
async def server(config: Config) -> AsyncIterator[ChatServer]:
    srv = ChatServer(config)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def url_of(srv: ChatServer) -> str:
    return f"ws://127.0.0.1:{srv.port}/ws"


@pytest.fixture
def url(server: ChatServer) -> str:
    return url_of(server)


_phones = iter(range(10_000_000))


def new_phone() -> str:
    """A fresh mainland mobile number per call (unique within the run)."""
    return f"139{os.getpid() % 10000:04d}{next(_phones):04d}"


async def registered(url: str, interests: list[str] | None = None, codec: Any = "msgpack",
                     **kwargs: Any) -> Client:
    c = await Client.connect(url, codec)
    await c.register(new_phone(), interests=interests or ["music.rock"], **kwargs)
    return c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class NodeProcess:
    """A real ``chatd serve`` process, for restart and SIGKILL tests."""

    def __init__(self, data_dir: Path, wordlist: Path, *extra: str) -> None:
        self.port = free_port()
        self.args = [sys.executable, "-m", "chatd", "serve", "--port", str(self.port),
                     "--data-dir", str(data_dir), "--wordlists", str(wordlist),
                     "--sms-resend-interval", "0", "--rate-per-second", "200", "--rate-burst",
                     "400", "--match-any-shared-after", "1", "--match-random-after", "2",
                     *extra]
        self.log = data_dir.parent / f"node-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> NodeProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + t(20)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("node did not start")

    def stop(self, sig: int | None = None) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
        return self.proc.wait(timeout=t(20))


@pytest.fixture
def node_process(tmp_path: Path, wordlist: Path) -> Iterator[Any]:
    nodes: list[NodeProcess] = []

    def make(*extra: str, data_dir: Path | None = None) -> NodeProcess:
        node = NodeProcess(data_dir or tmp_path / "data", wordlist, *extra)
        nodes.append(node)
        return node.start()

    yield make
    for node in nodes:
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test alone; its keys are removed afterwards."""
    p = f"chatd-test-{secrets.token_hex(4)}:"
    yield p
    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(match=p + "*"))
    if keys:
        r.delete(*keys)
    r.close()
