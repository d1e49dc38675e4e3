"""The SQLite store in its own process (``sqlite_writer = "process"``), end to end: a node
chats on it, a killed store process answers ``unavailable`` and comes back with nothing
acknowledged lost, and the store process ignores signals and ends with its node.
(The Store contract suite runs against it too: ``tests/store``, backend ``sqlite-process``.)"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from typing import Any

import psutil

from chatd.client import Client
from chatd.config import Config
from chatd.server import ChatServer
from chatd.store.sqlite.process import ProcessSQLiteStore
from tests.conftest import registered, t, url_of


def store_pid(srv: ChatServer) -> int:
    store = srv.app.store
    assert isinstance(store, ProcessSQLiteStore) and store._proc is not None
    return store._proc.pid


async def test_a_node_on_the_store_process_chats_and_ends_it(config: Config) -> None:
    srv = ChatServer(dataclasses.replace(config, sqlite_writer="process"))
    await srv.start()
    child = psutil.Process(store_pid(srv))
    assert child.ppid() == os.getpid()  # the SQL runs there, not on a thread of ours
    try:
        a = await registered(url_of(srv), ["pet.cat"])
        b = await registered(url_of(srv), ["pet.cat"])
        sent = [await a.call("msg.send", conv="g:pet.cat", body=f"m{i}") for i in range(20)]
        assert [m["seq"] for m in sent] == list(range(1, 21))
        got = [await b.next_event("msg") for _ in range(20)]
        assert [m["id"] for m in got] == [m["id"] for m in sent]
        history = (await b.call("history", conv="g:pet.cat", limit=50))["messages"]
        assert [m["id"] for m in history] == [m["id"] for m in sent]
        status, health = srv.app.health()
        assert status == 200 and health["store"] == "ok"
        for c in (a, b):
            await c.close()
    finally:
        await srv.stop()
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    # What it acknowledged is in the file: a node on the thread writer reads it back.
    again = ChatServer(config)
    await again.start()
    try:
        c = await registered(url_of(again), ["pet.cat"])
        history = (await c.call("history", conv="g:pet.cat", limit=50))["messages"]
        assert [m["id"] for m in history] == [m["id"] for m in sent]
        await c.close()
    finally:
        await again.stop()


async def test_a_killed_store_process_answers_unavailable_then_comes_back(
        config: Config) -> None:
    srv = ChatServer(dataclasses.replace(config, sqlite_writer="process"))
    await srv.start()
    try:
        a = await registered(url_of(srv), ["pet.cat"])
        acked = [await a.call("msg.send", conv="g:pet.cat", body="before", cid="b0")]
        first = store_pid(srv)
        os.kill(first, signal.SIGKILL)
        a.retry_attempts = 1  # every reply as it comes
        seen: dict[str, Any] = {}
        for i in range(50):
            reply = await a.request("msg.send", conv="g:pet.cat", body="during", cid=f"d{i}")
            if reply["t"] == "ok":
                acked.append(reply)
                break
            seen.setdefault(reply["code"], srv.app.health())
            await asyncio.sleep(0.1)
        # Retryable, never "internal"; the node said its store was down meanwhile.
        assert set(seen) == {"unavailable"}, seen
        status, health = seen["unavailable"]
        assert status == 503 and health["store"] == "degraded"
        assert "store process" in health["store_error"]
        assert store_pid(srv) != first
        a.retry_attempts = 5
        acked.append(await a.call("msg.send", conv="g:pet.cat", body="after", cid="a0"))
        status, health = srv.app.health()
        assert status == 200 and health["store"] == "ok"
        history = (await a.call("history", conv="g:pet.cat", limit=50))["messages"]
        assert [m["id"] for m in history] == [m["id"] for m in acked]
        await a.close()
    finally:
        await srv.stop()


def test_the_store_process_ignores_signals_and_ends_with_its_node(node_process: Any) -> None:
    node = node_process("--sqlite-writer", "process")
    children = psutil.Process(node.proc.pid).children()
    assert len(children) == 1
    child = children[0]
    for sig in (signal.SIGTERM, signal.SIGINT):  # as a terminal or a service manager sends
        child.send_signal(sig)

    async def chat() -> list[str]:
        c = await Client.connect(node.url)
        await c.register("13900001111", interests=["pet.cat"])
        ids = [(await c.call("msg.send", conv="g:pet.cat", body=f"m{i}"))["id"]
               for i in range(5)]
        await c.close()
        return ids

    ids = asyncio.run(chat())
    assert child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    assert node.stop(signal.SIGTERM) == 0
    child.wait(timeout=t(10))  # gone with its node, not before it

    async def history() -> list[str]:
        c = await Client.connect(node.url)
        await c.login("13900001111", password="correct horse 1")
        found = (await c.call("history", conv="g:pet.cat", limit=10))["messages"]
        await c.close()
        return [m["id"] for m in found]

    node.start()
    assert asyncio.run(history()) == ids
