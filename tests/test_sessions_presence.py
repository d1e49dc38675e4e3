"""Sessions (devices) and presence events for contacts, end to end: real servers over
loopback on SQLite and PostgreSQL, then two node processes sharing Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from chatd.client import Client
from chatd.config import Config
from tests.conftest import new_phone, registered, t

PASSWORD = "correct horse 1"
#: The presence grace of these tests (the default is 5 s).
GRACE = t(0.4)


@pytest.fixture(params=["sqlite", "postgres"])
def config(request: pytest.FixtureRequest, config: Config) -> Config:
    """The suite's test config with a short presence grace, on each store."""
    changed = config.replace(presence_grace=GRACE)
    if request.param == "postgres":
        changed = changed.replace(store="postgres",
                                  postgres_dsn=request.getfixturevalue("pg_dsn"))
    return changed


async def login(url: str, phone: str, device: str) -> Client:
    c = await Client.connect(url)
    reply = await c.call("login", phone=phone, password=PASSWORD, device=device)
    c.user, c.token = reply["user"], reply["token"]
    return c


async def resumed(url: str, token: str) -> Client:
    c = await Client.connect(url)
    await c.auth(token)
    return c


async def closed_with(c: Client, code: int = 4001) -> None:
    await asyncio.wait_for(c.ws.wait_closed(), t(5))
    assert c.ws.close_code == code


def presence_events(c: Client) -> list[dict[str, Any]]:
    """The presence events queued on ``c`` so far (other events are dropped)."""
    found = []
    while not c.events.empty():
        event = c.events.get_nowait()
        if event.get("t") == "presence":
            found.append(event)
    return found


async def matched(a: Client, b: Client) -> str:
    await a.call("match.start")
    await b.call("match.start")
    conv = (await a.next_event("match.found", timeout=t(10)))["conv"]
    assert (await b.next_event("match.found", timeout=t(10)))["conv"] == conv
    return str(conv)


# --- sessions ------------------------------------------------------------------------------

async def test_sessions_list_and_revoke_another_device(url: str) -> None:
    phone = new_phone()
    first = await Client.connect(url)
    await first.register(phone, password=PASSWORD)
    await asyncio.sleep(0.01)
    second = await login(url, phone, "laptop")
    assert first.token and second.token
    listed = (await second.call("sessions"))["sessions"]
    assert [s["device"] for s in listed] == ["laptop", ""]  # most recently active first
    assert [s["current"] for s in listed] == [True, False]
    for s in listed:
        assert set(s) == {"id", "device", "created", "last_active", "current"}
        assert re.fullmatch(r"[0-9a-f]{16}", s["id"]) and s["last_active"] >= s["created"] > 0
    mine = (await first.call("sessions"))["sessions"]
    assert [(s["id"], s["current"]) for s in mine] == [(listed[0]["id"], False),
                                                       (listed[1]["id"], True)]
    # Neither the token nor its stored hash is ever shown.
    text = json.dumps(listed)
    for token in (first.token, second.token):
        assert token not in text and hashlib.sha256(token.encode()).hexdigest() not in text
    # Another user cannot revoke (nor learn anything of) these sessions.
    other = await registered(url)
    for sid in (listed[1]["id"], "0" * 16, "nope"):
        reply = await other.request("session.revoke", id=sid)
        assert reply["code"] == "not_found", reply
    assert (await first.call("ping"))["t"] == "ok"
    # The owner revokes the first device: it closes with 4001, leaves the list, cannot resume.
    assert (await second.call("session.revoke", id=listed[1]["id"].upper()))["t"] == "ok"
    await closed_with(first)
    assert [s["device"] for s in (await second.call("sessions"))["sessions"]] == ["laptop"]
    assert (await second.request("session.revoke", id=listed[1]["id"]))["code"] == "not_found"
    async with await Client.connect(url) as again:
        assert (await again.request("auth", token=first.token))["code"] == "unauthorized"
    assert (await second.call("ping"))["t"] == "ok"  # the revoking session goes on
    for c in (second, other):
        await c.close()


async def test_revoke_the_current_session_closes_it_after_the_reply(url: str) -> None:
    phone = new_phone()
    keep = await Client.connect(url)
    await keep.register(phone, password=PASSWORD)
    phone_app = await login(url, phone, "phone")
    assert phone_app.token
    twin = await resumed(url, phone_app.token)  # a second connection on the same session
    current = next(s for s in (await phone_app.call("sessions"))["sessions"] if s["current"])
    assert current["device"] == "phone"
    assert (await phone_app.call("session.revoke", id=current["id"]))["t"] == "ok"
    await closed_with(phone_app)
    await closed_with(twin)
    async with await Client.connect(url) as again:
        assert (await again.request("auth", token=phone_app.token))["code"] == "unauthorized"
    assert [s["current"] for s in (await keep.call("sessions"))["sessions"]] == [True]
    await keep.close()


async def test_last_active_moves_on_auth_and_on_close_not_per_request(url: str) -> None:
    a = await registered(url)
    assert a.token

    async def last_active() -> int:
        [s] = (await a.call("sessions"))["sessions"]
        return int(s["last_active"])

    created = await last_active()
    await asyncio.sleep(0.02)
    for _ in range(3):
        await a.call("ping")
    assert await last_active() == created  # requests do not write
    other = await resumed(url, a.token)
    on_auth = await last_active()
    assert on_auth > created
    await asyncio.sleep(0.02)
    await other.close()
    deadline = time.monotonic() + t(5)
    while await last_active() == on_auth:  # written once the server saw the close
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert await last_active() > on_auth
    await a.close()


# --- presence events -----------------------------------------------------------------------

async def test_presence_events_reach_contacts_only_after_the_grace(url: str) -> None:
    a = await registered(url, ["music.jazz", "pet.cat"], nickname="甲")
    b = await registered(url, ["music.jazz", "pet.cat"], nickname="乙")
    b_other = await resumed(url, b.token or "")  # b's second device hears it too
    await matched(a, b)
    d = await registered(url, ["music.jazz", "pet.cat"], nickname="丁")
    await matched(a, d)
    a_id, d_id = a.user["id"], d.user["id"]  # type: ignore[index]
    presence_events(a), presence_events(d)
    await a.call("block", user=d_id)
    # Contacts until now, both online: each now reads the other as offline.
    assert await d.next_event("presence") == {"t": "presence", "user": a_id, "online": False}
    assert await a.next_event("presence") == {"t": "presence", "user": d_id, "online": False}
    mate = await registered(url, ["music.jazz"], nickname="丙")  # a group co-member only
    token = a.token
    assert token
    for c in (a, b, b_other, d, mate):
        presence_events(c)  # what the setup left queued

    # a goes offline: b hears it once the grace is over, not before.
    started = time.monotonic()
    await a.close()
    gone = await b.next_event("presence", timeout=t(5))
    assert gone == {"t": "presence", "user": a_id, "online": False}
    assert time.monotonic() - started >= GRACE * 0.9
    assert (await b_other.next_event("presence", timeout=t(5)))["online"] is False
    assert not (await b.call("presence", users=[a_id]))["online"][a_id]

    # a comes back: b hears it at once.
    a = await resumed(url, token)
    back = await b.next_event("presence", timeout=t(5))
    assert back == {"t": "presence", "user": a_id, "online": True}
    assert (await b_other.next_event("presence", timeout=t(5)))["online"] is True

    # a reconnects within the grace: nothing at all.
    await a.close()
    await asyncio.sleep(GRACE / 4)
    a = await resumed(url, token)
    await asyncio.sleep(GRACE * 3)
    assert presence_events(b) == [] and presence_events(b_other) == []
    assert (await b.call("presence", users=[a_id]))["online"][a_id]

    # Neither the blocked user nor the group co-member ever heard anything of a.
    assert presence_events(d) == [] and presence_events(mate) == []
    # Nor does a hear of d (the block works both ways), while b is heard.
    await d.close()
    await b.close()
    await b_other.close()
    got = await a.next_event("presence", timeout=t(5))
    assert got == {"t": "presence", "user": b.user["id"], "online": False}  # type: ignore[index]
    await asyncio.sleep(GRACE * 2)
    assert presence_events(a) == []
    for c in (a, mate):
        await c.close()


async def test_one_device_of_several_leaving_is_no_change(url: str) -> None:
    a = await registered(url, ["food.coffee", "book.scifi"])
    b = await registered(url, ["food.coffee", "book.scifi"])
    await matched(a, b)
    assert a.token
    laptop = await resumed(url, a.token)
    presence_events(b)
    await laptop.close()
    await asyncio.sleep(GRACE * 3)
    assert presence_events(b) == []
    await a.close()
    assert (await b.next_event("presence", timeout=t(5)))["online"] is False
    await b.close()


# --- two nodes: Redis broker and presence, one PostgreSQL ----------------------------------

def pg_cluster(node_process: Any, prefix: str, pg_dsn: str, tmp_path: Path) -> list[Any]:
    return [node_process("--broker", "redis", "--key-prefix", prefix, "--store", "postgres",
                         "--postgres-dsn", pg_dsn, "--node-id", f"s{i}", "--presence-ttl", "2",
                         "--presence-grace", str(GRACE), data_dir=tmp_path / f"d{i}")
            for i in range(2)]


def test_revoke_a_session_on_the_other_node(node_process: Any, prefix: str, pg_dsn: str,
                                            tmp_path: Path) -> None:
    n1, n2 = pg_cluster(node_process, prefix, pg_dsn, tmp_path)

    async def scenario() -> None:
        phone = new_phone()
        first = await Client.connect(n1.url)
        await first.register(phone, password=PASSWORD)
        second = await login(n2.url, phone, "tablet")
        twin = await resumed(n1.url, second.token or "")
        listed = (await second.call("sessions"))["sessions"]
        assert [(s["device"], s["current"]) for s in listed] == [("tablet", True), ("", False)]
        # Revoked on node 2, the session's connection on node 1 closes.
        await second.call("session.revoke", id=listed[1]["id"])
        await closed_with(first)
        async with await Client.connect(n1.url) as again:
            assert (await again.request("auth", token=first.token))["code"] == "unauthorized"
        # Revoking the current session ends its connections on both nodes.
        await second.call("session.revoke", id=listed[0]["id"])
        await closed_with(second)
        await closed_with(twin)

    asyncio.run(scenario())


def test_presence_events_across_nodes(node_process: Any, prefix: str, pg_dsn: str,
                                      tmp_path: Path) -> None:
    n1, n2 = pg_cluster(node_process, prefix, pg_dsn, tmp_path)

    async def scenario() -> None:
        a = await registered(n1.url, ["game.moba", "anime.anime"], nickname="甲")
        b = await registered(n2.url, ["game.moba", "anime.anime"], nickname="乙")
        b_on_n1 = await resumed(n1.url, b.token or "")
        await matched(a, b)
        a_id, token = a.user["id"], a.token  # type: ignore[index]
        assert token
        presence_events(b)
        presence_events(b_on_n1)
        # a leaves node 1: b hears it on both nodes after the grace.
        await a.close()
        for c in (b, b_on_n1):
            assert await c.next_event("presence", timeout=t(5)) == {
                "t": "presence", "user": a_id, "online": False}
        # a comes back on node 2.
        a = await resumed(n2.url, token)
        for c in (b, b_on_n1):
            assert (await c.next_event("presence", timeout=t(5)))["online"] is True
        # a moves from node 2 to node 1 within the grace: no node tells anything.
        await a.close()
        await asyncio.sleep(GRACE / 4)
        a = await resumed(n1.url, token)
        await asyncio.sleep(GRACE * 3)
        assert presence_events(b) == [] and presence_events(b_on_n1) == []
        assert (await b.call("presence", users=[a_id]))["online"][a_id]
        for c in (a, b, b_on_n1):
            await c.close()

    asyncio.run(scenario())
