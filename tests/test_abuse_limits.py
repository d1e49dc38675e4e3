"""Findings of a security review, each replayed against a real server over loopback: SMS-code
guessing by concurrency, phone enumeration, failed-login limit races, per-user limits across
connections and nodes, and codes in logs."""

from __future__ import annotations

import asyncio
import logging
import re
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatd.catalog import group_conv_id
from chatd.client import Client
from chatd.config import Config
from chatd.server import ChatServer
from tests.conftest import new_phone, registered, t, url_of

REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "correct horse 1"


@pytest.fixture
async def server_with(config: Config) -> AsyncIterator[Any]:
    """Start a server with some settings changed; stopped after the test."""
    started: list[ChatServer] = []

    async def start(**changes: Any) -> str:
        srv = ChatServer(config.replace(**changes))
        await srv.start()
        started.append(srv)
        return url_of(srv)

    yield start
    for srv in started:
        await srv.stop()


async def connections(url: str, n: int) -> list[Client]:
    return list(await asyncio.gather(*(Client.connect(url) for _ in range(n))))


async def close_all(clients: list[Client]) -> None:
    await asyncio.gather(*(c.close() for c in clients))


def wrong_codes(right: str, n: int) -> list[str]:
    codes = [f"{i:06d}" for i in range(n + 1)]
    return [c for c in codes if c != right][:n]


# --- 1. SMS-code guessing by concurrency ---------------------------------------------------

async def test_wrong_reset_codes_at_the_same_moment_burn_the_code(url: str) -> None:
    await reset_race(url)


async def test_wrong_reset_codes_at_the_same_moment_on_postgres(server_with: Any,
                                                                 pg_dsn: str) -> None:
    await reset_race(await server_with(store="postgres", postgres_dsn=pg_dsn))


async def reset_race(url: str) -> None:
    phone = new_phone()
    owner = await Client.connect(url)
    await owner.register(phone, password=PASSWORD)
    await owner.close()
    async with await Client.connect(url) as c:
        code = str((await c.call("sms.send", phone=phone, purpose="reset"))["dev_code"])
    attackers = await connections(url, 45)
    try:
        # 44 wrong codes and the right one last, all sent at the same moment.
        guesses = [*wrong_codes(code, 44), code]
        replies = await asyncio.gather(*(
            a.request("password.reset", phone=phone, code=guess, password="attacker pass 1")
            for a, guess in zip(attackers, guesses, strict=True)))
        assert [r.get("code") for r in replies] == ["invalid_code"] * 45, replies[-1]
    finally:
        await close_all(attackers)
    async with await Client.connect(url) as c:
        assert await c.login(phone, PASSWORD)


async def test_wrong_register_codes_at_the_same_moment_burn_the_code(url: str) -> None:
    phone = new_phone()
    async with await Client.connect(url) as c:
        code = str((await c.call("sms.send", phone=phone, purpose="register"))["dev_code"])
    args = dict(phone=phone, password=PASSWORD, birthdate="1990-01-01", gender="female",
                interests=["music.rock"], nickname="n")
    attackers = await connections(url, 40)
    try:
        guesses = [*wrong_codes(code, 39), code]
        replies = await asyncio.gather(*(
            a.request("register", code=guess, **args)
            for a, guess in zip(attackers, guesses, strict=True)))
        assert [r.get("code") for r in replies] == ["invalid_code"] * 40, replies[-1]
    finally:
        await close_all(attackers)


# --- 2. Phone-number enumeration without an SMS ------------------------------------------

async def test_register_and_rebind_answer_alike_for_known_and_unknown_phones(url: str) -> None:
    known = new_phone()
    await registered_with(url, known)
    args = dict(password=PASSWORD, birthdate="1990-01-01", gender="female",
                interests=["music.rock"], nickname="n")
    def seen(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k != "rid"}

    replies = []
    async with await Client.connect(url) as c:
        for phone in (known, new_phone()):
            # A code was sent (someone's) and a wrong one is tried: no difference to see.
            await c.call("sms.send", phone=phone, purpose="register")
            replies.append(seen(await c.request("register", phone=phone, code="000000",
                                                **args)))
    assert replies[0] == replies[1] and replies[0]["code"] == "invalid_code", replies
    me = await registered(url)
    try:
        replies = [seen(await me.request("phone.rebind", phone=phone, code="000000"))
                   for phone in (known, new_phone())]
        assert replies[0] == replies[1] and replies[0]["code"] == "invalid_code", replies
    finally:
        await me.close()


async def registered_with(url: str, phone: str) -> Client:
    c = await Client.connect(url)
    await c.register(phone, password=PASSWORD)
    await c.close()
    return c


async def test_wrong_password_login_takes_as_long_for_an_unknown_phone(url: str) -> None:
    known = new_phone()
    await registered_with(url, known)

    async def timed(phone: str) -> float:
        async with await Client.connect(url) as c:
            start = time.perf_counter()
            r = await c.request("login", phone=phone, password="wrong password")
            elapsed = time.perf_counter() - start
            assert r["code"] == "unauthorized"
            return elapsed

    known_t, unknown_t = [], []
    for _ in range(5):
        known_t.append(await timed(known))
        unknown_t.append(await timed(new_phone()))
    k, u = statistics.median(known_t), statistics.median(unknown_t)
    assert max(k, u) < 3 * min(k, u), (known_t, unknown_t)


# --- 3. Failed-login limits: counted before the slow verify, and across nodes ------------

async def parallel_wrong_logins(urls: list[str], phone: str, n: int) -> list[str]:
    clients = [await Client.connect(urls[i % len(urls)]) for i in range(n)]
    try:
        replies = await asyncio.gather(*(
            c.request("login", phone=phone, password=f"wrong password {i}")
            for i, c in enumerate(clients)))
    finally:
        await close_all(clients)
    return [r["code"] for r in replies]


async def test_parallel_wrong_passwords_hit_the_failed_login_limit(url: str) -> None:
    phone = new_phone()
    await registered_with(url, phone)
    codes = await parallel_wrong_logins([url], phone, 20)
    assert codes.count("unauthorized") <= 10, codes
    assert set(codes) == {"unauthorized", "rate_limited"}, codes
    async with await Client.connect(url) as c:
        r = await c.request("login", phone=phone, password=PASSWORD)
        assert r["code"] == "rate_limited" and r["retry_after"] >= 1


def test_the_failed_login_limit_holds_across_two_nodes(node_process: Any, prefix: str) -> None:
    nodes = [node_process("--broker", "redis", "--redis-url", REDIS_URL, "--key-prefix", prefix,
                          "--node-id", f"n{i}") for i in range(2)]

    async def scenario() -> None:
        phone = new_phone()
        await registered_with(nodes[0].url, phone)
        codes = await parallel_wrong_logins([n.url for n in nodes], phone, 20)
        codes += await parallel_wrong_logins([n.url for n in nodes], phone, 4)
        assert codes.count("unauthorized") <= 10, codes
        assert codes.count("rate_limited") >= 14, codes

    asyncio.run(asyncio.wait_for(scenario(), t(60)))


# --- 4. Per-user limits across connections and nodes ------------------------------------

async def flood(clients: list[Client], each: int) -> list[str]:
    conv = group_conv_id("music.rock")

    async def one(c: Client) -> list[str]:
        replies = await asyncio.gather(*(c.request("msg.send", conv=conv, body=f"m{i}")
                                         for i in range(each)))
        return [r["t"] if r["t"] == "ok" else r["code"] for r in replies]

    return [code for codes in await asyncio.gather(*(one(c) for c in clients)) for code in codes]


async def test_eight_connections_on_one_token_share_the_per_user_limit(server_with: Any) -> None:
    url = await server_with(user_messages_per_minute=30)
    first = await registered(url)
    assert first.token
    others = await connections(url, 7)
    clients = [first, *others]
    try:
        for c in others:
            await c.auth(first.token)
        codes = await flood(clients, 10)
        assert codes.count("ok") == 30 and codes.count("rate_limited") == 50, codes
        r = await first.request("msg.send", conv=group_conv_id("music.rock"), body="again")
        assert r["code"] == "rate_limited" and 1 <= r["retry_after"] <= 60_000
    finally:
        await close_all(clients)


async def test_a_report_flood_is_refused(server_with: Any) -> None:
    url = await server_with(user_reports_per_hour=3)
    me, other = await registered(url), await registered(url)
    try:
        codes = []
        for _ in range(5):
            r = await me.request("report", kind="user", target=other.user["id"], reason="spam")
            codes.append(r["t"] if r["t"] == "ok" else r["code"])
        assert codes[3:] == ["rate_limited", "rate_limited"] and "rate_limited" not in codes[:3]
    finally:
        await close_all([me, other])


def test_the_per_user_limit_holds_across_two_nodes(node_process: Any, prefix: str) -> None:
    nodes = [node_process("--broker", "redis", "--redis-url", REDIS_URL, "--key-prefix", prefix,
                          "--node-id", f"n{i}", "--user-messages-per-minute", "30")
             for i in range(2)]

    async def scenario() -> None:
        first = await registered(nodes[0].url)
        assert first.token
        clients = [first]
        for i in range(7):
            c = await Client.connect(nodes[(i + 1) % 2].url)
            await c.auth(first.token)
            clients.append(c)
        try:
            codes = await flood(clients, 10)
            assert codes.count("ok") == 30 and codes.count("rate_limited") == 50, codes
        finally:
            await close_all(clients)

    asyncio.run(asyncio.wait_for(scenario(), t(60)))


# --- 5. No part of a code in a log ------------------------------------------------------

async def test_the_dev_sms_log_line_shows_no_digit_of_the_code(
        url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with await Client.connect(url) as c:
        codes = [str((await c.call("sms.send", phone=new_phone(), purpose="register"))
                     ["dev_code"]) for _ in range(3)]
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("chatd")]
    sms_lines = [line for line in lines if "dev SMS" in line]
    assert len(sms_lines) == 3
    for line, code in zip(sms_lines, codes, strict=True):
        assert code not in line and code[:2] + "*" not in line
        assert re.search(r"code\W*\d", line) is None, line


# --- the counters themselves ------------------------------------------------------------

async def test_redis_counters_count_at_once_in_total(prefix: str) -> None:
    from chatd.broker.redis import bounded_client
    from chatd.limits.redis import RedisCounters
    client = bounded_client(REDIS_URL)
    one, two = RedisCounters(client, prefix), RedisCounters(client, prefix)
    try:
        waits = await asyncio.gather(*((one if i % 2 else two).hit("k", 10, 60_000)
                                       for i in range(20)))
        assert waits.count(0) == 10 and all(0 < w <= 60_000 for w in waits if w)
        for _ in range(11):
            await one.forgive("k")
        assert await two.hit("k", 10, 60_000) == 0
        await one.reset("k")
        first, second = [await two.hit("k", 1, 60_000) for _ in range(2)]
        assert first == 0 and second > 0
    finally:
        await client.aclose()


async def test_redis_counter_leases_never_pass_the_limit_in_total(prefix: str) -> None:
    """Per-user op limits take a lease of limit/16 events from Redis and spend it on the node
    without a round trip; two nodes flooding one key still get exactly ``limit`` in total."""
    from chatd.broker.redis import bounded_client
    from chatd.limits.redis import RedisCounters
    client = bounded_client(REDIS_URL)
    nodes = [RedisCounters(client, prefix), RedisCounters(client, prefix)]

    async def hit(counters: RedisCounters) -> int:
        wait = counters.hit_now("u", 160, 60_000)  # as App.handle checks a per-user limit
        return await counters.take("u", 160, 60_000) if wait is None else wait

    try:
        assert await nodes[0].take("u", 160, 60_000) == 0  # a lease of 10: 1 now, 9 here
        assert [nodes[0].hit_now("u", 160, 60_000) for _ in range(10)] == [0] * 9 + [None]
        waits = await asyncio.gather(*(hit(nodes[i % 2]) for i in range(400)))
        assert waits.count(0) == 150 and all(0 < w <= 60_000 for w in waits if w)
        assert int(await client.get(prefix + "lim:u")) >= 160
    finally:
        await client.aclose()


async def test_redis_counters_count_on_the_node_while_redis_is_unreachable() -> None:
    from chatd.broker.redis import bounded_client
    from chatd.limits.redis import RedisCounters
    from tests.conftest import free_port
    client = bounded_client(f"redis://127.0.0.1:{free_port()}/0")
    counters = RedisCounters(client, "x:")
    try:
        waits = [await counters.hit("k", 3, 60_000) for _ in range(5)]
        assert waits[:3] == [0, 0, 0] and all(w > 0 for w in waits[3:])
        await counters.forgive("k")
        await counters.reset("k")
        assert await counters.hit("k", 3, 60_000) == 0
    finally:
        await client.aclose()
