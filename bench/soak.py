"""Soak: steady mixed load for a long time; memory, descriptors, errors and loss must stay flat.

    python -m bench.soak --minutes 30 [--rate 200 --conns 60] [--nodes 2] [--json out.json]

Starts one node (or two behind a private redis-server with ``--nodes 2``) on a temp data dir,
registers ``--conns`` users, matches them 1:1, puts them in interest groups and runs a steady
mixed load: 1:1 and group messages (a ``cid`` on each, retried with the same ``cid`` on
failure), history reads, reconnects (token ``auth``) and fresh password logins. Every ~10 s it
prints the server's RSS and open descriptors (psutil). At the end it reconciles every
acknowledged message against ``history`` and every member's view of its conversations, then
prints a verdict.

:class:`Fleet` is the load generator shared with ``bench.faults``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.exceptions import WebSocketException

from chatd.client import Client, ClientError

__all__ = ["Agent", "Fleet", "main", "soak"]

# ``internal`` is a bug, not retried: it counts as given up.
RETRYABLE = frozenset({"unavailable", "rate_limited"})
# A lost connection, a refused one, or no reply in time: the send may or may not be stored.
NET_ERRORS = (ConnectionError, OSError, TimeoutError, WebSocketException)
PASSWORD = "soak-password-1"


class Agent:
    """One simulated app user: a connection it re-opens when lost, and what it has seen."""

    def __init__(self, fleet: Fleet, index: int) -> None:
        self.fleet = fleet
        self.index = index
        self.phone = str(fleet.phone_base + index)
        self.rng = random.Random(index)
        self.url_i = index
        self.client: Client | None = None
        self.reader: asyncio.Task[None] | None = None
        self.token = ""
        self.user = ""
        self.group: str | None = None
        self.direct: str | None = None
        self.matched: asyncio.Future[str] | None = None
        # Per conversation: every seq up to contig seen, plus the ones seen above it.
        self.contig: dict[str, int] = {}
        self.above: dict[str, set[int]] = {}
        self.n = 0
        self.want_reconnect = False
        self.first_ok_after: float | None = None  # first ack after the fault ended

    @property
    def convs(self) -> list[str]:
        return [c for c in (self.group, self.direct) if c]

    # --- connection ----------------------------------------------------------------------

    def _url(self) -> str:
        return self.fleet.urls[self.url_i % len(self.fleet.urls)]

    async def register(self, tags: list[str]) -> None:
        c = await Client.connect(self._url())
        self._attach(c)
        sms = await c.call("sms.send", phone=self.phone, purpose="register")
        reply = await c.call("register", phone=self.phone, code=sms["dev_code"],
                             password=PASSWORD, birthdate="1995-05-05",
                             gender=("male", "female")[self.index % 2], interests=tags,
                             nickname=f"soak{self.index}")
        self.token, self.user = reply["token"], reply["user"]["id"]

    def _attach(self, c: Client) -> None:
        # The agent retries itself (same cid) and counts every error reply: no hidden retries.
        c.retry_attempts = 1
        self.client = c
        self.reader = asyncio.create_task(self._events(c))

    async def _events(self, c: Client) -> None:
        while True:
            event = await c.events.get()
            t = event.get("t")
            if t == "msg":
                self.fleet.delivered += 1
                self.see(event["conv"], int(event["seq"]))
            elif t == "match.found" and self.matched is not None and not self.matched.done():
                self.matched.set_result(event["conv"])

    async def drop(self) -> None:
        c, self.client = self.client, None
        if self.reader is not None:
            self.reader.cancel()
            self.reader = None
        if c is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.close(), 2)

    async def reconnect(self, login: bool = False) -> bool:
        """Open a new connection (the next node after a failure), resume the session, then
        catch up from ``history`` what was missed, as an app does. False when stopped."""
        await self.drop()
        backoff = 0.05
        while not self.fleet.expired():
            try:
                c = await Client.connect(self._url(), open_timeout=5)
            except NET_ERRORS:
                self.fleet.error("connect")
                self.url_i += 1
                await asyncio.sleep(backoff)
                backoff = min(1.0, backoff * 2)
                continue
            self._attach(c)
            try:
                if login:
                    reply = await c.call("login", phone=self.phone, password=PASSWORD)
                    self.token = reply["token"]
                    self.fleet.logins += 1
                else:
                    await c.call("auth", token=self.token)
                await self.catch_up()
            except ClientError as exc:
                self.fleet.error(f"resume:{exc.code}")
            except NET_ERRORS:
                self.fleet.error("resume:no_reply")
                self.url_i += 1
            else:
                self.fleet.reconnects += 1
                return True
            await self.drop()
            await asyncio.sleep(backoff)
            backoff = min(1.0, backoff * 2)
        return False

    async def catch_up(self, final: bool = False) -> None:
        assert self.client is not None
        for conv in self.convs:
            while True:
                page = (await self.client.call("history", conv=conv,
                                               after=self.contig.get(conv, 0),
                                               limit=200))["messages"]
                for m in page:
                    if self.see(conv, int(m["seq"])):
                        if final:
                            self.fleet.recovered_at_end += 1
                        else:
                            self.fleet.recovered += 1
                if len(page) < 200:
                    break

    def see(self, conv: str, seq: int) -> bool:
        """Record one seq of ``conv``; True when it was new."""
        low = self.contig.get(conv, 0)
        above = self.above.setdefault(conv, set())
        if seq <= low or seq in above:
            return False
        above.add(seq)
        while low + 1 in above:  # keep only the seqs above the gap-free prefix
            low += 1
            above.discard(low)
        self.contig[conv] = low
        return True

    # --- load ----------------------------------------------------------------------------

    async def run(self) -> None:
        f = self.fleet
        next_at = time.monotonic()
        while f.running:
            if self.want_reconnect:
                self.want_reconnect = False
                if not await self.reconnect(login=self.rng.random() < f.login_share):
                    return
            if self.rng.random() < f.history_share:
                await self.read_history()
            else:
                conv = self.group if self.direct is None or (
                    self.group is not None and self.rng.random() < f.group_share) \
                    else self.direct
                if conv is not None:
                    await self.send(conv)
            # Poisson arrivals on a schedule, so slow replies do not lower the offered rate.
            next_at = max(next_at + (self.rng.expovariate(1.0 / f.pause) if f.pause else 0),
                          time.monotonic() - 1.0)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def read_history(self) -> None:
        conv = self.rng.choice(self.convs)
        try:
            assert self.client is not None
            page = (await self.client.call(
                "history", conv=conv, after=max(0, self.contig.get(conv, 0) - 50),
                limit=50))["messages"]
        except ClientError as exc:
            self.fleet.error(f"history:{exc.code}")
            return
        except (*NET_ERRORS, AssertionError):
            self.fleet.error("history:no_reply")
            await self.reconnect()
            return
        seqs = [int(m["seq"]) for m in page]
        if seqs != sorted(set(seqs)):
            self.fleet.error("history:unordered")
        self.fleet.history_reads += 1

    async def send(self, conv: str) -> bool:
        """Send one message until acknowledged: every retry reuses its ``cid``, so a first
        attempt that was stored but not answered is not stored twice."""
        f = self.fleet
        self.n += 1
        cid = f"{self.index}.{self.n}"
        body = f"{cid} {f.pad}"
        f.sent += 1
        backoff = 0.02
        while True:
            c = self.client
            try:
                if c is None:
                    raise ConnectionError("not connected")
                reply = await c.request("msg.send", timeout=f.reply_timeout, conv=conv,
                                        body=body, cid=cid)
            except NET_ERRORS:
                f.error("no_reply")
                lost = c is None or c.ws.close_code is not None or self.client is None
                if lost and not await self.reconnect():
                    f.given_up += 1
                    return False
            else:
                if reply.get("t") == "ok":
                    self._acked(conv, cid, reply)
                    if self.rng.random() < f.idem_share:
                        await self._probe(conv, body, cid, reply)
                    return True
                code = str(reply.get("code"))
                f.error(code)
                if code not in RETRYABLE or f.expired():
                    f.given_up += 1
                    return False
                await asyncio.sleep(backoff)
                backoff = min(0.5, backoff * 2)
            f.retries += 1
            if f.expired():
                f.given_up += 1
                return False

    def _acked(self, conv: str, cid: str, reply: dict[str, Any]) -> None:
        f = self.fleet
        seq, mid = int(reply["seq"]), str(reply["id"])
        msgs = f.ledger.setdefault(conv, {})
        if msgs.get(seq, mid) != mid:
            f.conflicts += 1  # two acknowledged messages share a seq
        msgs[seq] = mid
        f.acked += 1
        self.see(conv, seq)  # the sending connection gets no event of its own message
        now = time.monotonic()
        if f.fault_end is not None and self.first_ok_after is None and now >= f.fault_end:
            self.first_ok_after = now

    async def _probe(self, conv: str, body: str, cid: str, first: dict[str, Any]) -> None:
        """Send an acknowledged message again with its cid: the first result must come back."""
        assert self.client is not None
        try:
            again = await self.client.request("msg.send", timeout=self.fleet.reply_timeout,
                                              conv=conv, body=body, cid=cid)
        except NET_ERRORS:
            return
        if again.get("t") != "ok":
            return
        self.fleet.idem_checks += 1
        if (again["id"], again["seq"]) != (first["id"], first["seq"]):
            self.fleet.idem_mismatch += 1


@dataclass
class Conv:
    """A conversation of the run and one member who can read its history."""
    id: str
    reader: Agent


class Fleet:
    """Dozens of :class:`Agent` s over one or more nodes, and the ledger of what was acked."""

    def __init__(self, urls: Sequence[str], conns: int, *, pause: float = 0.02,
                 group_size: int = 6, group_share: float = 0.3, history_share: float = 0.0,
                 login_share: float = 0.3, idem_share: float = 0.02, body: int = 48,
                 reply_timeout: float = 5.0, grace: float = 15.0,
                 phone_base: int = 13800000000) -> None:
        self.urls = list(urls)
        self.pause = pause
        self.group_size = group_size
        self.group_share = group_share
        self.history_share = history_share
        self.login_share = login_share
        self.idem_share = idem_share
        self.pad = "x" * body
        self.reply_timeout = reply_timeout
        self.grace = grace  # seconds a pending send may still retry after the load stops
        self.phone_base = phone_base
        self.agents = [Agent(self, i) for i in range(conns)]
        self.ledger: dict[str, dict[int, str]] = {}  # conv -> seq -> id of acked messages
        self.convs: dict[str, Conv] = {}
        self.errors: Counter[str] = Counter()
        self.error_times: list[tuple[float, str]] = []
        self.sent = self.acked = self.retries = self.given_up = self.conflicts = 0
        self.delivered = self.recovered = self.recovered_at_end = 0
        self.reconnects = self.logins = self.history_reads = 0
        self.idem_checks = self.idem_mismatch = 0
        self.matched = 0
        self.running = False
        self.stop_at: float | None = None
        self.fault_end: float | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def error(self, code: str) -> None:
        self.errors[code] += 1
        if len(self.error_times) < 200_000:
            self.error_times.append((time.monotonic(), code))

    def expired(self) -> bool:
        return self.stop_at is not None and time.monotonic() > self.stop_at + self.grace

    # --- phases --------------------------------------------------------------------------

    async def setup(self, match_timeout: float = 20.0) -> None:
        """Register every agent, put each in a group of ``group_size`` and match them 1:1."""
        probe = await Client.connect(self.urls[0])
        catalog = sorted(t["id"] for t in (await probe.call("interests"))["tags"])
        await probe.close()
        shared, groups = catalog[:2], catalog[2:]
        sem = asyncio.Semaphore(8)

        async def one(a: Agent) -> None:
            async with sem:
                tag = groups[(a.index // self.group_size) % len(groups)]
                await a.register([*shared, tag])
                a.group = f"g:{tag}"
                self.convs.setdefault(a.group, Conv(a.group, a))

        await asyncio.gather(*(one(a) for a in self.agents))
        loop = asyncio.get_running_loop()
        for a in self.agents:
            a.matched = loop.create_future()
        for a in self.agents:  # one at a time: pairs form as they arrive
            assert a.client is not None
            await a.client.call("match.start")
        await asyncio.wait([a.matched for a in self.agents if a.matched is not None],
                           timeout=match_timeout)
        for a in self.agents:
            if a.matched is not None and a.matched.done():
                a.direct = a.matched.result()
                self.convs.setdefault(a.direct, Conv(a.direct, a))
                self.matched += 1

    def start(self) -> None:
        self.running = True
        self._tasks = [asyncio.create_task(a.run()) for a in self.agents]

    async def stop(self) -> None:
        """Stop sending; pending sends keep retrying up to ``grace`` seconds."""
        self.running = False
        self.stop_at = time.monotonic()
        await asyncio.gather(*self._tasks)
        await asyncio.sleep(1.0)  # the last events are still on their way

    def mark_fault_end(self) -> None:
        self.fault_end = time.monotonic()
        for a in self.agents:
            a.first_ok_after = None

    def recovery_s(self) -> float | None:
        """From the end of the fault until every agent had a send acknowledged again."""
        if self.fault_end is None:
            return None
        oks = [a.first_ok_after for a in self.agents]
        if any(t is None for t in oks):
            return None
        return max(t for t in oks if t is not None) - self.fault_end

    async def close(self) -> None:
        await asyncio.gather(*(a.drop() for a in self.agents))

    # --- reconciliation ------------------------------------------------------------------

    async def _history(self, conv: Conv) -> list[dict[str, Any]]:
        """The whole history of ``conv``, from the first node that answers (one may be dead)."""
        agent = conv.reader
        for k in range(len(self.urls)):
            try:
                async with await Client.connect(
                        self.urls[(agent.url_i + k) % len(self.urls)], open_timeout=5) as c:
                    await c.call("auth", token=agent.token)
                    out: list[dict[str, Any]] = []
                    while True:
                        page = (await c.call("history", conv=conv.id, after=len(out) and
                                             int(out[-1]["seq"]), limit=200))["messages"]
                        out += page
                        if len(page) < 200:
                            return out
            except NET_ERRORS:
                continue
        raise ConnectionError("no node answers history")

    async def reconcile(self) -> dict[str, Any]:
        """Every acked message in ``history`` exactly once with its id and seq; seqs gap-free;
        every member has seen every message (live, or caught up after a reconnect or at the
        end as an app would on a seq gap)."""
        for a in self.agents:  # what an app does on a gap, after the load
            if a.client is not None:
                with contextlib.suppress(*NET_ERRORS, ClientError):
                    await a.catch_up(final=True)
        lost = duplicates = gaps = stored_unacked = stored = 0
        last: dict[str, int] = {}
        for conv in self.convs.values():
            hist = await self._history(conv)
            stored += len(hist)
            seqs = [int(m["seq"]) for m in hist]
            gaps += sum(1 for i, s in enumerate(seqs) if s != i + 1)
            ids = Counter(m["id"] for m in hist)
            cids = Counter(m["body"].split(" ", 1)[0] for m in hist)
            duplicates += sum(n - 1 for n in ids.values() if n > 1)
            duplicates += sum(n - 1 for n in cids.values() if n > 1)
            by_seq = {int(m["seq"]): m["id"] for m in hist}
            acked = self.ledger.get(conv.id, {})
            lost += sum(1 for seq, mid in acked.items() if by_seq.get(seq) != mid)
            stored_unacked += sum(1 for seq, mid in by_seq.items() if acked.get(seq) != mid)
            last[conv.id] = seqs[-1] if seqs else 0
        unseen = 0
        for a in self.agents:
            for cid in a.convs:
                top = last.get(cid, 0)
                seen_above = sum(1 for s in a.above.get(cid, ()) if s <= top)
                unseen += max(0, top - a.contig.get(cid, 0) - seen_above)
        return {"stored": stored, "lost_acked": lost, "duplicates": duplicates,
                "seq_gaps": gaps, "stored_unacked": stored_unacked, "unseen": unseen,
                "conflicts": self.conflicts}

    def counts(self) -> dict[str, Any]:
        return {"agents": len(self.agents), "matched": self.matched, "sent": self.sent,
                "acked": self.acked, "retries": self.retries, "given_up": self.given_up,
                "errors": dict(self.errors), "delivered": self.delivered,
                "recovered": self.recovered, "recovered_at_end": self.recovered_at_end,
                "reconnects": self.reconnects, "logins": self.logins,
                "history_reads": self.history_reads, "idem_checks": self.idem_checks,
                "idem_mismatch": self.idem_mismatch}


# --- the soak ------------------------------------------------------------------------------


def _sample(servers: list[Any]) -> list[tuple[int, int, int]]:
    """Per node: RSS, open descriptors, and the accepted client sockets among them."""
    return [(s.rss(), s.ps.num_fds(),
             sum(1 for c in s.ps.net_connections("tcp") if c.laddr and c.laddr.port == s.port
                 and c.status == "ESTABLISHED")) for s in servers]


async def _run_soak(urls: list[str], servers: list[Any], seconds: float, conns: int,
                    rate: float, every: float, reconnect_every: float) -> dict[str, Any]:
    base = _sample(servers)
    fleet = Fleet(urls, conns, pause=conns / rate, group_share=0.3, history_share=0.05)
    t_setup = time.monotonic()
    await fleet.setup()
    print(f"  {conns} users registered, {fleet.matched} matched 1:1 "
          f"({time.monotonic() - t_setup:.1f} s); load {rate:g} msg/s for {seconds:g} s",
          flush=True)
    samples: list[dict[str, Any]] = []
    fleet.start()
    t0 = time.monotonic()
    rng = random.Random(7)
    next_sample, next_reconnect, last_acked = t0, t0 + reconnect_every, 0
    while (now := time.monotonic()) - t0 < seconds:
        if now >= next_reconnect:
            rng.choice(fleet.agents).want_reconnect = True
            next_reconnect += reconnect_every
        if now >= next_sample:
            per = _sample(servers)
            rate_now = (fleet.acked - last_acked) / every if samples else 0.0
            last_acked = fleet.acked
            samples.append({"t": now - t0, "rss": [p[0] for p in per],
                            "fds": [p[1] for p in per], "clients": [p[2] for p in per],
                            "acked": fleet.acked, "errors": sum(fleet.errors.values())})
            print(f"  t={now - t0:6.0f}s rss=" + "/".join(f"{p[0] / 2**20:.1f}" for p in per)
                  + " MiB fds=" + "/".join(str(p[1]) for p in per)
                  + f" acked={fleet.acked} ({rate_now:.0f}/s) delivered={fleet.delivered}"
                  f" errors={sum(fleet.errors.values())} reconnects={fleet.reconnects}"
                  f" logins={fleet.logins}", flush=True)
            next_sample += every
        await asyncio.sleep(0.2)
    await fleet.stop()
    rec = await fleet.reconcile()
    await fleet.close()
    await asyncio.sleep(2.0)  # the server closes its side
    after = _sample(servers)
    return {"base": base, "samples": samples, "after": after, "reconcile": rec,
            "counts": fleet.counts(), "seconds": seconds}


def verdict(r: dict[str, Any], rss_tolerance: float = 0.10) -> dict[str, Any]:
    """Flat RSS over the second half, flat descriptors, no errors, nothing lost."""
    samples = r["samples"]
    half = [s for s in samples if s["t"] >= r["seconds"] / 2] or samples[-1:]
    out: dict[str, Any] = {"nodes": []}
    ok = True
    for k in range(len(r["base"])):
        rss_mid = half[0]["rss"][k]
        rss_end = statistics.median(s["rss"][k] for s in half[-3:])
        growth = (rss_end - rss_mid) / rss_mid
        fds = [s["fds"][k] for s in half]
        others = [s["fds"][k] - s["clients"][k] for s in half]  # files, Redis pools, listeners
        fd_base, fd_after, clients_after = r["base"][k][1], r["after"][k][1], r["after"][k][2]
        node = {"rss_base_mib": r["base"][k][0] / 2**20, "rss_mid_mib": rss_mid / 2**20,
                "rss_end_mib": rss_end / 2**20, "rss_growth": growth,
                "rss_after_mib": r["after"][k][0] / 2**20,
                "fds_base": fd_base, "fds_second_half": [min(fds), max(fds)],
                "fds_after": fd_after, "client_sockets_after": clients_after}
        node["rss_flat"] = growth <= rss_tolerance
        # A few reconnects may be in flight at any sample. Idle, no client socket is left and
        # the rest is no more than under load (Redis pools grow to their peak and stay).
        node["fds_flat"] = (max(fds) - min(fds) <= 10 and clients_after == 0
                            and fd_after - clients_after <= max(others) + 2)
        ok = ok and node["rss_flat"] and node["fds_flat"]
        out["nodes"].append(node)
    c, rec = r["counts"], r["reconcile"]
    errs_first = next((s["errors"] for s in samples if s["t"] >= r["seconds"] / 2), 0)
    errs_last = samples[-1]["errors"] if samples else 0
    out["errors"] = c["errors"]
    out["error_growth"] = errs_last - errs_first > errs_first
    out["lost"] = rec["lost_acked"] + rec["duplicates"] + rec["seq_gaps"] + rec["unseen"] \
        + rec["conflicts"] + c["idem_mismatch"]
    out["ok"] = ok and not c["errors"] and out["lost"] == 0 and c["given_up"] == 0
    return out


def soak(minutes: float, conns: int, rate: float, nodes: int, every: float = 10.0,
         reconnect_every: float = 2.0, json_out: Path | None = None) -> dict[str, Any]:
    from bench.harness import PrivateRedis, chatd_server, machine, raise_nofile, temp_dir

    raise_nofile()
    with temp_dir() as tmp:
        root = Path(tmp)
        redis: PrivateRedis | None = None
        servers: list[Any] = []
        try:
            extra: list[str] = []
            if nodes > 1:
                redis = PrivateRedis(root / "redis").start()
                extra = ["--broker", "redis", "--redis-url", redis.url, "--key-prefix", "soak:"]
            for i in range(nodes):
                servers.append(chatd_server(root / "data", None, *extra, "--node-id", f"n{i}",
                                            log=root / f"node{i}.log"))
            print(f"bench.soak: {nodes} node(s), {conns} conns, {rate:g} msg/s, "
                  f"{minutes:g} min; {machine()}", flush=True)
            result = asyncio.run(_run_soak([s.url for s in servers], servers, minutes * 60,
                                           conns, rate, every, reconnect_every))
            result["node_exit"] = [s.proc.poll() for s in servers]
        finally:
            for s in servers:
                s.stop()
            if redis is not None:
                redis.kill()
        logs = "".join((root / f"node{i}.log").read_text(errors="replace")
                       for i in range(len(servers)) if (root / f"node{i}.log").exists())
    result["log_errors"] = sum(1 for line in logs.splitlines() if " ERROR " in line)
    result["verdict"] = verdict(result)
    _print(result)
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2))
    return result


def _print(r: dict[str, Any]) -> None:
    c, rec, v = r["counts"], r["reconcile"], r["verdict"]
    print(f"load: sent={c['sent']} acked={c['acked']} retries={c['retries']} "
          f"given_up={c['given_up']} delivered_live={c['delivered']} "
          f"caught_up_after_reconnect={c['recovered']} gaps_at_end={c['recovered_at_end']} "
          f"reconnects={c['reconnects']} logins={c['logins']} "
          f"history_reads={c['history_reads']} idempotency_checks={c['idem_checks']}")
    print(f"reconcile: stored={rec['stored']} lost_acked={rec['lost_acked']} "
          f"duplicates={rec['duplicates']} seq_gaps={rec['seq_gaps']} "
          f"stored_unacked={rec['stored_unacked']} unseen_by_members={rec['unseen']} "
          f"idempotency_mismatch={c['idem_mismatch']}")
    for i, n in enumerate(v["nodes"]):
        print(f"node {i}: RSS base {n['rss_base_mib']:.1f} MiB, second half "
              f"{n['rss_mid_mib']:.1f} -> {n['rss_end_mib']:.1f} MiB "
              f"({n['rss_growth']:+.1%}, {'flat' if n['rss_flat'] else 'GROWING'}); "
              f"idle after {n['rss_after_mib']:.1f} MiB; fds base {n['fds_base']}, second half "
              f"{n['fds_second_half'][0]}..{n['fds_second_half'][1]}, after {n['fds_after']} "
              f"with {n['client_sockets_after']} client sockets "
              f"({'flat' if n['fds_flat'] else 'NOT FLAT'})")
    print(f"errors: {v['errors'] or 'none'}; server log ERROR lines: {r['log_errors']}; "
          f"lost: {v['lost']}")
    print("VERDICT: " + ("PASS" if v["ok"] else "FAIL"), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0, help="messages/s in total")
    parser.add_argument("--conns", type=int, default=60, help="users (connections)")
    parser.add_argument("--nodes", type=int, choices=[1, 2], default=1,
                        help="2: two nodes behind a private redis-server")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--reconnect-every", type=float, default=2.0,
                        help="seconds between two forced reconnects")
    parser.add_argument("--json", type=Path, help="write the samples and verdict as JSON")
    args = parser.parse_args(argv)
    r = soak(args.minutes, args.conns, args.rate, args.nodes, args.every,
             args.reconnect_every, args.json)
    return 0 if r["verdict"]["ok"] else 1


if __name__ == "__main__":
    from bench import bench_extras

    with bench_extras("python -m bench.soak", True):
        sys.exit(main())
