"""Servers the benchmarks start for themselves: chatd nodes and bare baselines, on free loopback
ports with a temp data dir, pinned to chosen cores, measured with psutil, always stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "PrivateRedis",
    "ServerProc",
    "baseline_server",
    "chatd_server",
    "cores",
    "free_port",
    "machine",
    "raise_nofile",
    "read_json_lines",
    "seed_accounts",
    "temp_dir",
    "tree_cpu",
]

# Load runs must not be throttled by the per-connection limits meant for real clients.
LOAD_FLAGS: tuple[str, ...] = (
    "--rate-per-second", "1000000", "--rate-burst", "1000000", "--max-inflight", "1024",
    "--sms-resend-interval", "0", "--sms-daily-limit", "1000000", "--log-level", "WARNING",
    "--idle-timeout", "3600", "--outbound-queue-bytes", str(64 << 20),
    # One generator address opens thousands of connections and registrations.
    "--max-conns-per-address", "1000000", "--sms-address-hourly", "1000000",
    # Each generated user sends far more than a person types (per-user limits).
    "--user-messages-per-minute", "1000000", "--user-matches-per-minute", "1000000",
    "--user-reports-per-hour", "1000000", "--user-sms-per-hour", "1000000",
    "--user-searches-per-minute", "1000000",
)
PASSWORD = "bench-password-1"


def raise_nofile() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (10k connections need 10k descriptors)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return (f"{len(cores())} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def tree_cpu(root: psutil.Process) -> float:
    """CPU seconds of ``root`` with all its threads: its own, its live descendants' and those
    of the children they have reaped (counted by the parent)."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        procs = [root]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:  # gone between the listing and the read
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


class ServerProc:
    """One server subprocess, pinned to ``cpus`` and with the file limit raised."""

    def __init__(self, argv: Sequence[str], port: int, cpus: Sequence[int] | None,
                 env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.port = port
        self.log = log
        self.url = f"ws://127.0.0.1:{port}/ws"
        cpu_set = set(cpus) if cpus else None

        def setup() -> None:
            raise_nofile()
            if cpu_set:
                os.sched_setaffinity(0, cpu_set)

        # A server that logs much (faults, soaks) must write to a file: nobody reads the
        # pipe while it runs, and a full pipe would block its event loop.
        err: Any = log.open("ab") if log is not None else subprocess.PIPE
        try:
            self.proc = subprocess.Popen(list(argv), preexec_fn=setup,
                                         env={**os.environ, **(env or {})},
                                         stdout=subprocess.DEVNULL, stderr=err)
        finally:
            if log is not None:
                err.close()
        self.ps = psutil.Process(self.proc.pid)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                if self.log is not None:
                    err = self.log.read_text(errors="replace")
                raise RuntimeError(f"server exited with {self.proc.returncode}: {err[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("server did not start listening")

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def cpu(self) -> float:
        """CPU seconds of the server with all its threads and processes."""
        return tree_cpu(self.ps)

    def thread_cpu(self) -> dict[str, float]:
        """CPU seconds of the server's own process: ``event loop`` (the main thread) and
        ``other threads`` (for chatd, the SQLite writer and checkpointer; Python does not name
        OS threads), and of its ``child processes`` (chatd's store process)."""
        tick = os.sysconf("SC_CLK_TCK")
        by_name: dict[str, float] = {}
        task_dir = Path(f"/proc/{self.proc.pid}/task")
        for task in task_dir.iterdir() if task_dir.exists() else ():
            try:
                stat = (task / "stat").read_text()
            except OSError:  # the thread ended between the listing and the read
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            seconds = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            key = "event loop" if task.name == str(self.proc.pid) else "other threads"
            by_name[key] = by_name.get(key, 0.0) + seconds
        children = self.children()
        if children:
            by_name["child processes"] = sum(tree_cpu(c) for c in children)
        return by_name

    def children(self) -> list[psutil.Process]:
        try:
            return list(self.ps.children())
        except psutil.Error:
            return []

    def pin_children(self, cpus: Sequence[int] | None) -> None:
        """Move the server's child processes (chatd's store process) to ``cpus``: beside
        the generator, as another host's work would be."""
        for child in self.children() if cpus else ():
            # Affinity is a thread's: move each thread the child has started already.
            for task in Path(f"/proc/{child.pid}/task").glob("*"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), set(cpus or ()))

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as r:
            result: dict[str, Any] = json.loads(r.read())
            return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ServerProc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def chatd_server(data_dir: Path, cpus: Sequence[int] | None, *extra: str,
                 log: Path | None = None) -> ServerProc:
    """A node with LOAD_FLAGS; its stderr goes to ``log`` when given."""
    port = free_port()
    argv = [sys.executable, "-m", "chatd", "serve", "--port", str(port),
            "--data-dir", str(data_dir), *LOAD_FLAGS, *extra]
    srv = ServerProc(argv, port, cpus, log=log)
    try:
        srv.wait_ready()
    except BaseException:
        srv.stop()
        raise
    return srv


def baseline_server(kind: str, cpus: Sequence[int] | None) -> ServerProc:
    """A bare server on uvloop (``bench.baseline``): echo, broadcast, relay or socketio
    (its ``url`` is then the socket.io endpoint, WebSocket transport)."""
    port = free_port()
    srv = ServerProc([sys.executable, "-m", "bench.baseline", kind, "--port", str(port)],
                     port, cpus)
    if kind == "socketio":
        srv.url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    try:
        srv.wait_ready()
    except BaseException:
        srv.stop()
        raise
    return srv


class PrivateRedis:
    """A redis-server of the caller alone on a free port (no persistence), so it can be
    killed and restarted without touching a shared one."""

    def __init__(self, work_dir: Path) -> None:
        self.port = free_port()
        self.work_dir = work_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.work_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError("private redis-server did not start")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    stop = kill

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def seed_accounts(data_dir: Path, n: int, interests: Sequence[Sequence[str]],
                  out: Path, phone_base: int = 13900000000, dsn: str | None = None) -> None:
    """Create ``n`` users with sessions straight in a (stopped) node's SQLite store and write
    the accounts file ``bench.load --accounts`` reads (``dsn``: a PostgreSQL store instead).
    Registration through the protocol costs one argon2 hash (~0.13 s of server CPU here) and
    one SMS code per user; benchmarks that measure chat, connections or matching skip it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = asyncio.run(_seed(data_dir, n, interests, phone_base, dsn))
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))


async def _seed(data_dir: Path, n: int, interests: Sequence[Sequence[str]],
                phone_base: int, dsn: str | None) -> list[dict[str, Any]]:
    import argon2

    from chatd.catalog import group_conv_id
    from chatd.services.accounts import hash_token
    from chatd.store import ConvId, SessionRow, SQLiteStore, Store, User, UserId
    from chatd.store.postgres import PostgresStore

    store: Store = SQLiteStore(data_dir / "chatd.sqlite3") if dsn is None \
        else PostgresStore(dsn)
    await store.open()
    pw_hash = argon2.PasswordHasher().hash(PASSWORD)  # one hash, shared: login works too
    now = int(time.time() * 1000)
    rows: list[tuple[int, dict[str, Any]]] = []

    async def one(i: int) -> None:
        tags = tuple(interests[i % len(interests)])
        uid = UserId(secrets.token_hex(16))
        phone = str(phone_base + i)
        user = User(uid, "+86" + phone, pw_hash, "1995-05-05", ("male", "female")[i % 2],
                    f"bench{i}", "", "user", now, tags)
        await store.create_user(user, [ConvId(group_conv_id(t)) for t in tags])
        token = secrets.token_urlsafe(32)
        await store.create_session(SessionRow(hash_token(token), uid, "bench", now,
                                              now + 30 * 86_400_000))
        rows.append((i, {"phone": phone, "password": PASSWORD, "token": token, "user": uid,
                         "interests": list(tags)}))

    try:
        for start in range(0, n, 500):  # bounded concurrency: the store batches commits
            await asyncio.gather(*(one(i) for i in range(start, min(n, start + 500))))
    finally:
        await store.close()
    return [r for _, r in sorted(rows, key=lambda r: r[0])]


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="chatd-bench-")
