"""Faults under load with real processes (bench.faults): nothing acknowledged is ever lost.

Each fault runs once, short (~10 s of load), on processes of its own: a private redis-server,
a private PostgreSQL cluster, a tmpfs. Everything is stopped and removed even on failure
(``bench.faults.run_fault`` owns an ExitStack). Two more tests pin bugs the faults found.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from websockets.exceptions import InvalidStatus

from bench.faults import PG_BIN, health, problems, run_fault, store_degraded_seen
from bench.harness import (
    PrivateRedis,
    ServerProc,
    chatd_server,
    read_json_lines,
    seed_accounts,
)
from chatd.client import Client
from tests.conftest import new_phone, t

DURATION = 10.0 * float(os.environ.get("CHATD_TEST_TIME_SCALE", "1"))
CONNS = 16


def _check(r: dict[str, Any]) -> None:
    # The load kept going and every acknowledged message is in history exactly once.
    assert r["acked_before_fault"] > 0
    assert r["lost_acked"] == 0, r
    assert r["duplicates"] == 0 and r["seq_gaps"] == 0 and r["conflicts"] == 0, r
    assert r["idem_mismatch"] == 0, r
    assert r["unseen"] == 0, r  # every member has every message (history fills live gaps)
    assert r["given_up"] == 0, r  # every send was acknowledged at last (same cid retried)
    # Recovered: every client had a send acknowledged after the fault ended.
    assert r["recovery_s"] is not None and r["recovery_s"] < t(10), r
    assert r["acked_after_fault"] > 0, r


def _storage_fault_told(r: dict[str, Any]) -> None:
    # Clients were told to retry (never "internal": that means a bug), /healthz said the store
    # was degraded (HTTP 503) while it was, and ok again by the end.
    assert r["errors_during_fault"].get("unavailable", 0) > 0, r
    assert r["errors_during_fault"].get("internal", 0) == 0, r
    assert store_degraded_seen(r), r
    assert all(v.endswith("/ok") for v in r["health_last"].values()), r
    assert not problems(r), r


def _quiet(_: str) -> None:
    pass


def test_redis_killed_and_restarted_under_load() -> None:
    r = run_fault("redis", DURATION, CONNS, log=_quiet)
    _check(r)
    # Degraded, not down: both nodes said so while Redis was gone, and sends still succeeded.
    assert any(k.startswith("during") and k.endswith("/degraded/ok")
               for k in r["health_seen"]), r
    assert r["acked_during_fault"] > 0, r
    assert set(r["health_last"].values()) == {"ok/ok/ok"}, r  # and healthy again by the end
    assert r["node_exit"] == [None, None]


@pytest.mark.skipif(os.geteuid() != 0 or not (PG_BIN / "initdb").exists()
                    or shutil.which("runuser") is None,
                    reason="needs root, runuser and PostgreSQL 15 binaries")
def test_postgres_restarted_under_load() -> None:
    r = run_fault("postgres", DURATION, CONNS, log=_quiet)
    _check(r)
    _storage_fault_told(r)
    assert r["node_exit"] == [None, None]


def test_sigkill_one_of_two_nodes_under_load() -> None:
    r = run_fault("sigkill", DURATION, CONNS, log=_quiet)
    _check(r)
    assert sum(r["errors_during_fault"].values()) > 0, r  # clients on the dead node noticed
    assert r["node_exit"][1] is None


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                    reason="needs root to mount a tmpfs")
def test_disk_full_under_load() -> None:
    r = run_fault("disk", DURATION, CONNS, log=_quiet)
    _check(r)
    _storage_fault_told(r)
    assert r["node_exit"] == [None]


# --- bugs the faults found -------------------------------------------------------------------


@pytest.fixture
def redis_node(tmp_path: Path) -> Iterator[tuple[PrivateRedis, ServerProc]]:
    private = PrivateRedis(tmp_path / "redis").start()
    node: ServerProc | None = None
    try:
        node = chatd_server(tmp_path / "data", None, "--broker", "redis", "--redis-url",
                            private.url, "--key-prefix", "bug:", "--max-conns-per-address",
                            "2", log=tmp_path / "node.log")
        yield private, node
    finally:
        if node is not None:
            node.stop()
        private.kill()


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def test_disconnect_while_redis_is_down_frees_the_connection(redis_node) -> None:
    """Bug: ``ChatServer._handle``'s ``finally`` awaits ``app.disconnected`` (which reaches
    ``RedisMatchQueue.remove`` -> ``HDEL``) before its bookkeeping; a Redis error there skips
    ``metrics.connections.dec()`` and the per-address count. Each client that disconnects
    while Redis is unreachable leaks a slot until the address is refused with HTTP 429."""
    private, node = redis_node

    async def scenario() -> None:
        users: list[Client] = []
        for _ in range(2):
            c = await Client.connect(node.url)
            await c.register(new_phone(), interests=["music.rock"])
            users.append(c)
        private.kill()
        for c in users:
            await c.close()
        await asyncio.sleep(1.0)
        private.start()
        await asyncio.sleep(1.0)
        try:  # the address holds no connection: this one must be let in
            c = await Client.connect(node.url)
        except InvalidStatus as exc:
            pytest.fail(f"connection slots leaked: {exc}")
        await c.close()
        await asyncio.sleep(0.5)
        assert _metric(node.port, "chatd_connections") == 0

    asyncio.run(scenario())


def test_broker_health_returns_to_ok_after_a_failed_publish(redis_node) -> None:
    """Bug: ``RedisBroker.publish`` sets ``_healthy = False`` on a failed publish and only the
    pub/sub reader sets it back, when *it* reconnects. A publish that fails on a stale pooled
    connection while the reader is fine (seen in every Redis restart under load) leaves
    /healthz at ``"broker": "degraded"`` for good, though publishing works again."""
    private, node = redis_node

    async def scenario() -> None:
        a = await Client.connect(node.url)
        await a.register(new_phone(), interests=["pet.cat"])
        await a.call("msg.send", conv="g:pet.cat", body="warm the publish pool")
        r = redis.Redis.from_url(private.url)
        killed = 0
        for client in r.client_list():  # the publisher's connection only, not the reader's
            if client.get("name", "").startswith("bug:") and client.get("cmd") == "publish":
                r.client_kill_filter(_id=client["id"])
                killed += 1
        r.close()
        assert killed >= 1
        try:
            for i in range(3):  # the first fails on the dead pooled connection, not the next
                await a.call("msg.send", conv="g:pet.cat", body=f"after {i}")
            deadline = time.monotonic() + t(5)
            while health(node.port).get("broker") != "ok":
                assert time.monotonic() < deadline, health(node.port)
                await asyncio.sleep(0.2)
        finally:
            await a.close()

    asyncio.run(scenario())


def test_redis_connections_stay_bounded_after_a_burst_of_disconnects(tmp_path: Path) -> None:
    """Bug (a leak bounded only by the burst): the nodes' redis-py clients have no
    ``max_connections``, so N sessions closing at once (a balancer restart, a network blip)
    open about N Redis connections per node, and they stay open: descriptors on the node,
    clients on Redis (``maxclients`` 10,000 by default)."""
    seed_accounts(tmp_path / "data", 60, [["music.rock"]], tmp_path / "acc.jsonl")
    tokens = [a["token"] for a in read_json_lines(tmp_path / "acc.jsonl")]
    with PrivateRedis(tmp_path / "redis") as private:
        node = chatd_server(tmp_path / "data", None, "--broker", "redis", "--redis-url",
                            private.url, "--key-prefix", "burst:", log=tmp_path / "node.log")
        try:
            def to_redis() -> int:
                return sum(1 for c in node.ps.net_connections("tcp")
                           if c.raddr and c.raddr.port == private.port)

            async def scenario() -> int:
                clients = []
                for token in tokens:
                    c = await Client.connect(node.url)
                    await c.auth(token)
                    clients.append(c)
                await asyncio.sleep(0.5)
                before = to_redis()
                await asyncio.gather(*(c.close() for c in clients))
                await asyncio.sleep(2.0)
                return before

            before = asyncio.run(scenario())
            after = to_redis()
            assert after <= max(before, 10) + 5, (before, after)
        finally:
            node.stop()
