"""``chatd serve --workers N``: two real worker processes sharing one port (SO_REUSEPORT),
on Redis and PostgreSQL: users on each, chat, presence and a word-list edit between them, a
worker that dies is restarted, SIGTERM stops them all; the embedded store is refused."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

from chatd.client import Client, ClientError
from tests.conftest import REDIS_URL, new_phone, t


def node_of(port: int) -> str:
    """The node id that answers one fresh HTTP connection to the port."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        return str(json.loads(r.read())["node"])


def nodes_seen(port: int, tries: int = 40) -> set[str]:
    return {node_of(port) for _ in range(tries)}


def test_embedded_store_is_refused_with_workers() -> None:
    r = subprocess.run([sys.executable, "-m", "chatd", "serve", "--workers", "2", "--port",
                        "18999"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "workers" in r.stderr and "postgres" in r.stderr and "redis" in r.stderr


def test_two_workers_share_the_port(node_process: Any, prefix: str, pg_dsn: str) -> None:
    node = node_process("--workers", "2", "--broker", "redis", "--redis-url", REDIS_URL,
                        "--key-prefix", prefix, "--store", "postgres", "--postgres-dsn",
                        pg_dsn, "--node-id", "wk", "--presence-grace", "0.2",
                        "--wordlist-poll-interval", "0.2")
    deadline = time.monotonic() + t(20)
    while len(seen := nodes_seen(node.port)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # the second worker may still be starting
    assert seen == {"wk-w0", "wk-w1"}

    async def scenario() -> None:
        users = []
        for i in range(8):  # spread over both workers by the kernel
            c = await Client.connect(node.url)
            c.phone = new_phone()  # type: ignore[attr-defined]
            await c.register(c.phone, interests=["music.jazz", "book.scifi"],  # type: ignore[attr-defined]
                             nickname=f"u{i}")
            users.append(c)
        # Everyone hears everyone in the group, whichever worker holds them.
        sent = await users[0].call("msg.send", conv="g:music.jazz", body="大家好")
        for c in users[1:]:
            got = await c.next_event("msg", timeout=t(5))
            assert got["id"] == sent["id"]
        # A match and a 1:1 chat (the pair may well be on two workers).
        a, b = users[0], users[7]
        await a.call("match.start")
        await b.call("match.start")
        conv = (await a.next_event("match.found", timeout=t(10)))["conv"]
        await b.next_event("match.found", timeout=t(10))
        await a.call("msg.send", conv=conv, body="你好")
        assert (await b.next_event("msg", timeout=t(5)))["body"] == "你好"
        assert (await a.call("presence", users=[b.user["id"]]))["online"][b.user["id"]]  # type: ignore[index]
        # A moderator's word-list edit on one worker holds on every worker within a second.
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chatd", "admin", "--store", "postgres", "--postgres-dsn",
            pg_dsn, "words", "add", "工人违禁词", "--category", "abuse", "--action", "block")
        assert await proc.wait() == 0
        await asyncio.sleep(t(1.0))
        for c in users:
            try:
                await c.call("msg.send", conv="g:music.jazz", body="这是工人违禁词")
            except ClientError as exc:
                assert exc.reply["code"] == "filtered"
            else:
                raise AssertionError("the edit did not reach every worker")
        for c in users:
            await c.close()

    asyncio.run(scenario())

    # A worker that dies is replaced; SIGTERM ends every worker.
    assert node.proc is not None
    worker = subprocess.run(["pgrep", "-f", "--", "--node-id wk-w1"], capture_output=True,
                            text=True).stdout.split()
    assert worker
    subprocess.run(["kill", "-9", *worker], check=True)
    deadline = time.monotonic() + t(20)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            if nodes_seen(node.port, 20) == {"wk-w0", "wk-w1"}:
                break
        except OSError:
            continue
    assert nodes_seen(node.port) == {"wk-w0", "wk-w1"}
    assert node.stop(signal.SIGTERM) == 0
    left = subprocess.run(["pgrep", "-f", "--", "--node-id wk-w"], capture_output=True,
                          text=True).stdout.split()
    assert left == []


def test_workers_that_cannot_start_stop_the_supervisor(prefix: str, pg_dsn: str) -> None:
    with socket.socket() as taken:  # the port is held by someone without SO_REUSEPORT
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "chatd", "serve", "--workers", "2",
                            "--port", str(port), "--broker", "redis", "--redis-url", REDIS_URL,
                            "--key-prefix", prefix, "--store", "postgres", "--postgres-dsn",
                            pg_dsn], capture_output=True, text=True, timeout=t(60))
    assert r.returncode == 1
    assert "failed (exit" in r.stderr and "address already in use" in r.stderr.lower()
