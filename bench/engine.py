"""One load-generator process: connect, log in, match, chat, count. Runs on uvloop.

Every latency is taken with one process's monotonic clock: the body carries the send time in
nanoseconds and the sender's index (``"<ns> <index> <padding>"``), and each process gets its
own interest tags, so its 1:1 partners and group members are all its own connections.

Modes: ``chatd`` (log in, match, chat: chatd, or ``bench.baseline relay``, which speaks that
part of the protocol), ``echo`` and ``broadcast`` (bare baselines that send frames back), and
``socketio`` (``bench.baseline socketio``: socket.io events with acks, see
:class:`bench.wire.SioConn`; connections ``2k`` and ``2k+1`` of a process are a pair).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.wire import Conn, ReplyError, connect, sio_connect

__all__ = ["Plan", "planned_tags", "run_worker", "zipf_tags"]

_ns = time.monotonic_ns
REGISTER_PASSWORD = "bench-password-1"


@dataclass
class Plan:
    urls: list[str]
    conns: int  # connections of this process
    offset: int  # global index of its first connection
    worker: int = 0
    workers: int = 1
    mode: str = "chatd"  # chatd | echo | broadcast | socketio (see the module docstring)
    duration: float = 10.0
    size: int = 64  # message body characters
    rate: float | None = None  # messages/s of this process (open loop); None: closed loop
    window: int = 1  # outstanding sends per sender (closed loop; cap in open loop)
    senders: int | None = None  # how many of its connections send (None: all)
    group_share: float = 0.0  # share of messages sent to interest groups
    group_size: int = 10
    accounts: list[dict[str, Any]] = field(default_factory=list)
    register: bool = True
    phone_base: int = 13900000000
    connect_concurrency: int = 256
    match_timeout: float = 30.0  # after the last match.start
    match_rate: float | None = None  # match.start per second, evenly spaced; None: all at once
    zipf_tags: int = 0  # > 0: 1-3 interests each from the first N tags, Zipf-distributed
    cpus: list[int] | None = None


def zipf_tags(catalog: list[str], n: int, g: int) -> list[str]:
    """1-3 distinct interests of user ``g`` (a global index: the seeder and every generator
    process agree) from the first ``n`` tags, tag ``k`` drawn with weight ``1 / (k + 1)``."""
    rng = random.Random(g)
    pool = catalog[:n]
    weights = [1.0 / (k + 1) for k in range(len(pool))]
    want = min(rng.randint(1, 3), len(pool))
    tags: set[str] = set()
    while len(tags) < want:
        tags.add(rng.choices(pool, weights)[0])
    return sorted(tags)


def planned_tags(catalog: list[str], p: Plan, i: int) -> tuple[list[str], str | None]:
    """Interests of connection ``i`` of a process: two tags shared by the whole process (every
    pair is a strong match at once) and its group's tag; no two processes share a tag.
    With ``zipf_tags``: Zipf-drawn tags (see :func:`zipf_tags`) and no group."""
    if p.zipf_tags:
        return zipf_tags(catalog, p.zipf_tags, p.offset + i), None
    match = p.group_share < 1.0
    groups = catalog[2 * p.workers + p.worker::p.workers] if p.group_share > 0 else []
    need = -(-p.conns // p.group_size) if groups else 0
    if len(groups) < need:
        raise SystemExit(f"{need} groups of {p.group_size} need more interest tags than the "
                         f"catalog has per process ({len(groups)}): raise --group-size")
    group = groups[i // p.group_size] if groups else None
    tags = (catalog[2 * p.worker: 2 * p.worker + 2] if match else []) + ([group] if group else [])
    return tags or catalog[:1], group


class Worker:
    def __init__(self, plan: Plan, progress: Any) -> None:
        self.plan = plan
        self.progress = progress
        self.conns: list[Conn] = []
        self.errors: Counter[str] = Counter()
        self.lat_us = array("q")  # delivery latency, microseconds
        self.at_ms = array("q")  # receipt time since the chat phase began, milliseconds
        self.sent = self.acked = self.delivered = self.expected = self.skipped = 0
        self.matched = self.unmatched = 0
        self.match_waits: list[float] = []  # each match.found: seconds since its match.start
        self.match_start = 0.0
        self.match_started: dict[str, float] = {}  # user -> own match.start (steady arrivals)
        self.running = False
        self.t0 = _ns()
        self.members: Counter[str] = Counter()  # group conv -> online members here
        self.match_waiters: dict[str, asyncio.Future[str]] = {}
        self.pad = ("lorem ipsum dolor sit amet " * (plan.size // 20 + 2))
        self.accounts_out: list[dict[str, Any]] = []
        self.rng = random.Random(plan.worker)

    # --- events (hot path) -----------------------------------------------------------------

    def on_event(self, conn: Conn, obj: dict[str, Any]) -> None:
        t = obj.get("t")
        if t == "msg" or t == "msg.send":
            now = _ns()
            ts, src, _ = obj["body"].split(" ", 2)
            if int(src) == conn.index:  # a baseline's copy of our own frame: the ack
                self._acked(conn, True)
                if self.plan.mode != "echo":
                    return
            self.delivered += 1
            self.lat_us.append((now - int(ts)) // 1000)
            self.at_ms.append((now - self.t0) // 1_000_000)
        elif t == "match.found":
            at = self.match_started.get(conn.user, self.match_start)
            self.match_waits.append(time.perf_counter() - at)
            fut = self.match_waiters.pop(conn.user, None)
            if fut is not None and not fut.done():
                fut.set_result(obj["conv"])

    def _acked(self, conn: Conn, ok: bool, conv: str | None = None) -> None:
        conn.outstanding -= 1
        if ok:
            self.acked += 1
            if self.plan.mode == "chatd" or self.plan.mode == "socketio":
                self.expected += 1 if conv == conn.direct else self.members[conv or ""] - 1
            elif self.plan.mode == "echo":
                self.expected += 1
            else:
                self.expected += len(self.conns) - 1
        if self.running and self.plan.rate is None:
            if ok:
                self._send(conn)
            else:  # back off instead of spinning on an error
                asyncio.get_running_loop().call_later(0.01, self._send, conn)

    def _send(self, conn: Conn) -> None:
        if not self.running or conn.closed.done():
            return
        conv = conn.group if conn.direct is None or (
            conn.group is not None and self.rng.random() < self.plan.group_share) \
            else conn.direct
        if conv is None:
            return
        body = f"{_ns()} {conn.index} "
        body += self.pad[:max(1, self.plan.size - len(body))]
        conn.outstanding += 1
        self.sent += 1
        if self.plan.mode == "socketio":  # conn is a SioConn
            conn.emit("msg", {"conv": conv, "body": body},
                      lambda ack: self._on_sio_ack(conn, conv, ack))
            return
        msg = {"t": "msg.send", "conv": conv, "body": body}
        if self.plan.mode == "chatd":
            conn.send(msg, lambda reply: self._on_reply(conn, conv, reply))
        else:  # baselines answer with a copy of the frame, handled in on_event
            conn.send(msg)

    def _on_reply(self, conn: Conn, conv: str, reply: dict[str, Any]) -> None:
        if reply.get("t") == "ok":
            self._acked(conn, True, conv)
        else:
            self.errors[str(reply.get("code"))] += 1
            self._acked(conn, False)

    def _on_sio_ack(self, conn: Conn, conv: str, ack: dict[str, Any]) -> None:
        if "id" in ack:
            self._acked(conn, True, conv)
        else:
            self.errors[str(ack.get("code") or ack.get("error"))] += 1
            self._acked(conn, False)

    # --- setup ---------------------------------------------------------------------------

    def _local_addr(self, g: int) -> tuple[str, int] | None:
        """On loopback, spread connections over 127.x.y.z source addresses (16 each): the
        server caps connections and SMS codes per client address, and each source address
        has its own ~28k ephemeral ports. Linux routes all of 127/8 to ``lo``."""
        if self.plan.mode != "chatd":
            return None
        host = urlsplit(self.plan.urls[g % len(self.plan.urls)]).hostname or ""
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return None
        except ValueError:
            return None
        a = g // 16
        return (f"127.{1 + (a // 62500) % 250}.{(a // 250) % 250 + 1}.{a % 250 + 1}", 0)

    async def _open(self, i: int, tags: list[str], sem: asyncio.Semaphore) -> None:
        g = self.plan.offset + i
        url = self.plan.urls[g % len(self.plan.urls)]
        async with sem:
            try:
                if self.plan.mode == "socketio":
                    conn = await self._sio_open(url, i, g)
                else:
                    conn = await connect(url, self.on_event, self._local_addr(g))
            except Exception as exc:
                self.errors[f"connect:{type(exc).__name__}"] += 1
                return
            conn.index = g
            if self.plan.mode == "chatd":
                try:
                    await self._login(conn, i, g, tags)
                except (ReplyError, TimeoutError, ConnectionError) as exc:
                    code = exc.code if isinstance(exc, ReplyError) else type(exc).__name__
                    self.errors[f"login:{code}"] += 1
                    conn.close()
                    return
            self.conns.append(conn)

    async def _sio_open(self, url: str, i: int, g: int) -> Conn:
        """Connections ``2k`` and ``2k+1`` of this process share a room (their conversation),
        named in the connect payload; an odd one out has none and does not send."""
        pair = f"d:{g - i % 2}" if (i ^ 1) < self.plan.conns else None
        conn = await sio_connect(url, self.on_event, {"user": f"u{g}", "pair": pair})
        conn.user, conn.direct = f"u{g}", pair
        return conn

    async def _login(self, conn: Conn, i: int, g: int, tags: list[str]) -> None:
        acct = self.plan.accounts[i] if i < len(self.plan.accounts) else None
        if acct is not None:
            reply = await conn.call("auth", token=acct["token"])
        else:
            if not self.plan.register:
                raise ReplyError({"code": "no_account", "msg": "accounts file too short"})
            phone = str(self.plan.phone_base + g)
            sms = await conn.call("sms.send", phone=phone, purpose="register")
            reply = await conn.call(
                "register", phone=phone, code=sms["dev_code"], password=REGISTER_PASSWORD,
                birthdate="1995-05-05", gender=("male", "female")[g % 2], interests=tags,
                nickname=f"bench{g}")
            acct = {"phone": phone, "password": REGISTER_PASSWORD, "token": reply["token"]}
        conn.user = str(reply["user"]["id"])
        acct = {**acct, "user": conn.user, "interests": tags}
        self.accounts_out.append(acct)
        if sorted(reply["user"].get("interests", [])) != sorted(tags):
            await conn.call("profile.update", interests=tags)

    async def setup(self) -> float:
        p = self.plan
        catalog: list[str] = []
        if p.mode == "chatd":
            probe = await connect(p.urls[0], self.on_event)
            catalog = sorted(t["id"] for t in (await probe.call("interests"))["tags"])
            probe.close()
        plan_tags = [planned_tags(catalog, p, i) if catalog else ([], None) for i in range(p.conns)]
        sem = asyncio.Semaphore(p.connect_concurrency)
        start = time.perf_counter()
        await asyncio.gather(*(self._open(i, plan_tags[i][0], sem) for i in range(p.conns)))
        elapsed = time.perf_counter() - start
        for conn in self.conns:
            if p.mode == "socketio":
                continue
            if p.mode != "chatd":  # baselines route nothing: any conversation name will do
                conn.direct = "bench"
                continue
            tag = plan_tags[conn.index - p.offset][1]
            conn.group = f"g:{tag}" if tag else None
            if conn.group:
                self.members[conn.group] += 1
        if p.mode == "chatd" and p.group_share < 1.0 and p.senders != 0:
            await self._match()
        return elapsed

    async def _match(self) -> None:
        loop = asyncio.get_running_loop()
        for conn in self.conns:
            self.match_waiters[conn.user] = loop.create_future()
        futs = {conn: self.match_waiters[conn.user] for conn in self.conns}
        self.match_start = time.perf_counter()
        if self.plan.match_rate:
            await self._arrive(self.plan.match_rate)
        else:
            await asyncio.gather(*(c.call("match.start") for c in self.conns),
                                 return_exceptions=True)
        done, _ = await asyncio.wait(futs.values(), timeout=self.plan.match_timeout)
        for conn, fut in futs.items():
            if fut in done:
                conn.direct = fut.result()
                self.matched += 1
            else:
                fut.cancel()
                self.match_waiters.pop(conn.user, None)
                self.unmatched += 1
                conn.send({"t": "match.cancel"})

    async def _arrive(self, rate: float) -> None:
        """A steady stream: connection ``k`` sends ``match.start`` at ``k / rate`` seconds."""
        def replied(reply: dict[str, Any]) -> None:
            if reply.get("t") != "ok":
                self.errors[f"match.start:{reply.get('code')}"] += 1

        for k, conn in enumerate(self.conns):
            delay = self.match_start + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            self.match_started[conn.user] = time.perf_counter()
            try:
                conn.send({"t": "match.start"}, replied)
            except ConnectionError:
                self.errors["match.start:closed"] += 1

    # --- the chat phase ----------------------------------------------------------------------

    async def chat(self) -> None:
        p = self.plan
        senders = self.conns[:p.senders] if p.senders is not None else self.conns
        self.t0 = _ns()
        self.running = True
        reporter = asyncio.create_task(self._report())
        if p.rate is None:
            for conn in senders:
                for _ in range(p.window):
                    self._send(conn)
            await asyncio.sleep(p.duration)
        elif senders:
            await self._open_loop(senders, p.rate, p.duration)
        else:
            await asyncio.sleep(p.duration)
        self.running = False
        await self._drain()
        reporter.cancel()

    async def _open_loop(self, senders: list[Conn], rate: float, duration: float) -> None:
        start = time.monotonic()
        scheduled, k, n = 0, 0, len(senders)
        while (now := time.monotonic()) - start < duration:
            due = int((now - start) * rate) - scheduled
            for _ in range(due):
                scheduled += 1
                for _ in range(n):  # next sender with a free slot
                    conn = senders[k % n]
                    k += 1
                    if conn.outstanding < self.plan.window:
                        self._send(conn)
                        break
                else:
                    self.skipped += 1
            # uvloop's timers have a 1 ms resolution: a shorter sleep returns at once, and
            # the generator would spin its core (and look saturated) instead of pacing.
            await asyncio.sleep(0.001)

    async def _drain(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.outstanding <= 0 or c.closed.done() for c in self.conns) \
                    and self.delivered >= self.expected:
                return
            await asyncio.sleep(0.01)

    async def _report(self) -> None:
        last = 0
        while True:
            await asyncio.sleep(1.0)
            recent = sorted(self.lat_us[last:])
            last = len(self.lat_us)
            p99 = recent[int(len(recent) * 0.99)] if recent else 0
            self.progress.put(("tick", self.plan.worker, self.sent, self.delivered,
                               sum(self.errors.values()), time.process_time(), p99))

    def result(self, connect_s: float, cpu: float, wall: float) -> dict[str, Any]:
        held = sum(1 for c in self.conns if not c.closed.done())
        return {
            "worker": self.plan.worker, "conns": len(self.conns), "held": held,
            "connect_s": connect_s, "sent": self.sent, "acked": self.acked,
            "delivered": self.delivered, "expected": self.expected, "skipped": self.skipped,
            "matched": self.matched,
            "match_s": sorted(self.match_waits),
            "unmatched": self.unmatched,
            "errors": dict(self.errors), "cpu_s": cpu, "wall_s": wall,
            "lat_us": self.lat_us.tobytes(), "at_ms": self.at_ms.tobytes(),
            "accounts": self.accounts_out,
        }


async def run_worker(plan: Plan, progress: Any, barrier: Any) -> dict[str, Any]:
    """Set up, wait for every process, chat for ``plan.duration``, return the counts."""
    w = Worker(plan, progress)
    connect_s = await w.setup()
    progress.put(("ready", plan.worker, len(w.conns)))
    if barrier is not None:
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await w.chat()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    progress.put(("done", plan.worker, len(w.conns)))
    if barrier is not None:  # hold the connections until every process has finished
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
    result = w.result(connect_s, cpu, wall)
    for conn in w.conns:
        conn.close()
    await asyncio.sleep(0.05)
    return result
