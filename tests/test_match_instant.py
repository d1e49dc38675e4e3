"""Issue 14: two new users with one identical tag and nobody else online are matched at once,
on one node and across two nodes (Redis broker and match queue, PostgreSQL): a quiet queue
holds nobody out for a strong pair."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatd.client import Client
from chatd.config import Config
from chatd.server import ChatServer
from tests.conftest import registered, t, url_of


@pytest.fixture
async def default_server(tmp_path: Path, wordlist: Path) -> AsyncIterator[ChatServer]:
    """A node on the default match_* settings (the suite's ``server`` shortens them)."""
    srv = ChatServer(Config(port=0, data_dir=tmp_path / "data", wordlists=(str(wordlist),),
                            sms_resend_interval=0))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def both_found(a: Client, b: Client, tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``match.start`` on both; both hear ``match.found`` within 2 s of the second one."""
    await a.call("match.start")
    await b.call("match.start")
    async with asyncio.timeout(t(2)):
        fa, fb = await asyncio.gather(a.next_event("match.found"), b.next_event("match.found"))
    assert fa["conv"] == fb["conv"] and fa["conv"].startswith("d:")
    assert fa["peer"]["id"] == b.user["id"] and fb["peer"]["id"] == a.user["id"]
    assert fa["shared"] == fb["shared"] == [tag]
    assert fa["level"] == fb["level"] == "shared"  # one common tag: below the strong bar
    return fa, fb


async def test_one_node_two_users_one_tag_matched_at_once(default_server: ChatServer) -> None:
    url = url_of(default_server)
    a = await registered(url, ["music.rock"], nickname="甲")
    b = await registered(url, ["music.rock"], nickname="乙")
    fa, _ = await both_found(a, b, "music.rock")
    sent = await a.call("msg.send", conv=fa["conv"], body="你好")
    assert (await b.next_event("msg", timeout=t(5)))["id"] == sent["id"]
    for c in (a, b):
        await c.close()


def test_two_nodes_two_users_one_tag_matched_at_once(node_process: Any, prefix: str,
                                                     pg_dsn: str, tmp_path: Path) -> None:
    # Each node its own data directory; the store is PostgreSQL, the queue is in Redis and
    # the node holding the matcher lease pairs the users of both. (The suite's node flags
    # shorten the widening timers; the queue stays quiet, so they play no part here.)
    nodes = [node_process("--broker", "redis", "--key-prefix", prefix, "--store", "postgres",
                          "--postgres-dsn", pg_dsn, "--node-id", f"mi{i}",
                          data_dir=tmp_path / f"d{i}") for i in range(2)]

    async def scenario() -> None:
        a = await registered(nodes[0].url, ["pet.cat"], nickname="甲")
        b = await registered(nodes[1].url, ["pet.cat"], nickname="乙")
        fa, _ = await both_found(a, b, "pet.cat")
        sent = await b.call("msg.send", conv=fa["conv"], body="跨节点")
        assert (await a.next_event("msg", timeout=t(5)))["id"] == sent["id"]
        for c in (a, b):
            await c.close()

    asyncio.run(scenario())


async def test_a_verified_only_seeker_waits_for_a_verified_partner(
        default_server: ChatServer) -> None:
    url = url_of(default_server)
    picky = await registered(url, ["music.rock"], nickname="甲")
    other = await registered(url, ["music.rock"], nickname="乙")
    await picky.call("match.start", prefs={"verified": True})
    await other.call("match.start")
    with pytest.raises(TimeoutError):
        await picky.next_event("match.found", timeout=t(1.5))  # 乙 is not verified
    await default_server.app.store.set_verification(other.user["id"], "verified")  # type: ignore[index]
    await other.call("match.start")  # asking again reads the account anew
    async with asyncio.timeout(t(2)):
        found = await picky.next_event("match.found")
    assert found["peer"]["id"] == other.user["id"]  # type: ignore[index]
    for c in (picky, other):
        await c.close()
