"""Faults under load, with real processes: nothing acknowledged may ever be lost.

    python -m bench.faults redis|postgres|sigkill|disk|all [--duration 30] [--conns 24]

Each fault starts its own processes on free ports and temp dirs (never the shared Redis or
PostgreSQL), runs a closed-loop :class:`bench.soak.Fleet` load across them (a ``cid`` on every
send, a failed send retried with the same ``cid``), injects the fault, ends it, keeps loading,
then reconciles every acknowledged message against ``history``:

- ``redis``: two nodes on a private redis-server; SIGKILL it for ~2 s, start it again.
- ``postgres``: two nodes on a private PostgreSQL 15 cluster (``initdb`` as ``postgres``);
  ``pg_ctl stop -m fast``, ~2 s down, start again.
- ``sigkill``: two nodes (private redis, one SQLite dir); SIGKILL one; its clients move over.
- ``disk``: one node whose SQLite dir is on a small tmpfs; fill it with a file until ENOSPC,
  hold, delete the file.

Printed per fault: sent, acked, errors by code, the health states the nodes reported
(``status/broker/store`` from ``/healthz``), lost-acked (must be 0), recovery time (from the
end of the fault until every client had a send acknowledged again). A storage fault
(``postgres``, ``disk``) also fails the verdict when ``/healthz`` showed only ``ok`` meanwhile,
or when clients got ``internal`` (a bug) instead of the retryable ``unavailable``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import bench_extras

with bench_extras("python -m bench.faults", __name__ == "__main__"):
    from bench.harness import PrivateRedis, ServerProc, chatd_server, free_port, raise_nofile
    from bench.soak import Fleet

__all__ = ["FAULTS", "PrivatePostgres", "Tmpfs", "main", "run_fault"]

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A PostgreSQL cluster of the caller alone: ``initdb`` as the ``postgres`` user into a
    temp dir, a free port, a socket dir of its own. Never the shared cluster."""

    def __init__(self) -> None:
        # Not under the caller's 0700 temp dir: the postgres user must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="chatd-pg-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.log = self.root / "pg.log"
        self.port = free_port()
        self.started = False

    def dsn(self, db: str = "chatd") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def _as_postgres(self, *argv: str, timeout: float = 60.0) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True,
                              timeout=timeout, cwd=self.root)
        if done.returncode:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.decode()[-1000:]}")

    def init(self) -> PrivatePostgres:
        self.sock.mkdir()
        shutil.chown(self.root, "postgres", "postgres")
        shutil.chown(self.sock, "postgres", "postgres")
        self.root.chmod(0o755)
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust",
                          "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()
        self._as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                          "-U", "postgres", "chatd")
        return self

    def start(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                          "-o", f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1",
                          "-w", "start")
        self.started = True

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                          "stop")
        self.started = False

    def destroy(self) -> None:
        if self.data.exists():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class Tmpfs:
    """A small tmpfs mounted on a fresh dir; unmounted (lazily if busy) and removed after."""

    def __init__(self, size: str = "8m") -> None:
        self.path = Path(tempfile.mkdtemp(prefix="chatd-tmpfs-"))
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                        str(self.path)], check=True, capture_output=True)
        self.filler = self.path / "filler"

    def fill(self) -> int:
        """Write a file until ENOSPC; bytes written. Unbuffered: a buffered file would
        raise ENOSPC again when closed."""
        written = 0
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for chunk in (1 << 20, 4096, 512):
                block = b"\0" * chunk
                while True:
                    try:
                        n = os.write(fd, block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
                    written += n
                    if n < chunk:
                        break
        finally:
            os.close(fd)
        return written

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def destroy(self) -> None:
        done = subprocess.run(["umount", str(self.path)], capture_output=True)
        if done.returncode:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
        with contextlib.suppress(OSError):
            self.path.rmdir()


STORAGE_FAULTS = ("postgres", "disk")


def health(port: int) -> dict[str, Any]:
    """The node's ``/healthz`` body (a 503 carries one too), or ``{"status": "down"}``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return dict(json.loads(r.read()))
    except urllib.error.HTTPError as exc:
        try:
            return {**json.loads(exc.read()), "http": exc.code}
        except ValueError:
            return {"status": f"http {exc.code}"}
    except (OSError, ValueError):
        return {"status": "down"}


def health_state(h: dict[str, Any]) -> str:
    return f"{h.get('status')}/{h.get('broker', '-')}/{h.get('store', '-')}"


class Fault:
    """What one fault starts, how it breaks and heals, and what it saw meanwhile."""

    name = ""
    nodes = 2

    def __init__(self, stack: ExitStack, root: Path) -> None:
        self.stack = stack
        self.root = root
        self.servers: list[ServerProc] = []
        self.seen: Counter[str] = Counter()  # health states polled, by phase
        self.phase = "during"
        self.last: dict[str, str] = {}  # the latest health state of each live node
        self.info: dict[str, Any] = {}
        self.duration = 30.0  # load seconds (set by run_fault before setup)

    def node(self, data_dir: Path, *extra: str) -> ServerProc:
        i = len(self.servers)
        srv = chatd_server(data_dir, None, *extra, "--node-id", f"{self.name}{i}",
                           log=self.root / f"node{i}.log")
        self.servers.append(srv)
        self.stack.callback(srv.stop)
        return srv

    def setup(self) -> None:
        raise NotImplementedError

    def begin(self) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError

    def broken(self, fleet: Fleet, since: float) -> bool:
        """True once the fault is visible (a fixed hold by default)."""
        return True

    def poll(self) -> None:
        for i, s in enumerate(self.servers):
            if s.proc.poll() is None:
                self.last[f"n{i}"] = health_state(health(s.port))
                self.seen[f"{self.phase} n{i}:{self.last[f'n{i}']}"] += 1


class RedisFault(Fault):
    name = "redis"

    def setup(self) -> None:
        self.redis = PrivateRedis(self.root / "redis").start()
        self.stack.callback(self.redis.kill)
        flags = ("--broker", "redis", "--redis-url", self.redis.url, "--key-prefix", "f:")
        for _ in range(2):
            self.node(self.root / "data", *flags)

    def begin(self) -> None:
        self.redis.kill()

    def end(self) -> None:
        self.redis.start()


class PostgresFault(Fault):
    name = "postgres"
    stop_mode = "fast"

    def setup(self) -> None:
        self.pg = PrivatePostgres()
        self.stack.callback(self.pg.destroy)
        self.pg.init()
        self.redis = PrivateRedis(self.root / "redis").start()
        self.stack.callback(self.redis.kill)
        for i in range(2):
            self.node(self.root / f"data{i}", "--broker", "redis", "--redis-url",
                      self.redis.url, "--key-prefix", "f:", "--store", "postgres",
                      "--postgres-dsn", self.pg.dsn())

    def begin(self) -> None:
        self.pg.stop(self.stop_mode)

    def end(self) -> None:
        self.pg.start()


class SigkillFault(Fault):
    name = "sigkill"

    def setup(self) -> None:
        self.redis = PrivateRedis(self.root / "redis").start()
        self.stack.callback(self.redis.kill)
        flags = ("--broker", "redis", "--redis-url", self.redis.url, "--key-prefix", "f:",
                 "--presence-ttl", "2")
        for _ in range(2):
            self.node(self.root / "data", *flags)

    def begin(self) -> None:
        victim = self.servers[0].proc
        victim.send_signal(signal.SIGKILL)
        victim.wait()

    def end(self) -> None:
        pass  # the node stays dead: its clients must carry on on the other one


class DiskFault(Fault):
    name = "disk"
    nodes = 1

    def setup(self) -> None:
        # 8 MiB holds ~10 s of this load (the WAL alone reaches 4 MiB); longer runs get more
        # room so that only the injected fault fills the disk.
        self.fs = Tmpfs("8m" if self.duration <= 15 else f"{int(self.duration)}m")
        self.stack.callback(self.fs.destroy)
        self.node(self.fs.path / "data")

    def begin(self) -> None:
        self.info["filled_bytes"] = self.fs.fill()

    def broken(self, fleet: Fleet, since: float) -> bool:
        # SQLite reuses its WAL file's space: the store fails only once the WAL must grow.
        return any(t >= since and code == "unavailable"
                   for t, code in fleet.error_times[-500:])

    def end(self) -> None:
        self.fs.free()


FAULTS: dict[str, type[Fault]] = {
    "redis": RedisFault, "postgres": PostgresFault, "sigkill": SigkillFault, "disk": DiskFault,
}


async def _drive(fault: Fault, duration: float, conns: int, hold: float,
                 log: Callable[[str], None]) -> dict[str, Any]:
    urls = [s.url for s in fault.servers]
    fleet = Fleet(urls, conns, pause=0.05, group_share=0.3, reply_timeout=3.0, grace=15.0)
    await fleet.setup()
    fleet.start()
    warm = max(2.0, duration * 0.25)
    await asyncio.sleep(warm)
    acked_before = fleet.acked
    polling = True

    async def poller() -> None:
        while polling:
            await asyncio.to_thread(fault.poll)
            await asyncio.sleep(0.2)

    poll_task = asyncio.create_task(poller())
    t_begin = time.monotonic()
    log(f"  t={warm:.1f}s {fault.name}: fault begins ({fleet.acked} acked so far)")
    await asyncio.to_thread(fault.begin)
    for _ in range(150):  # up to 15 s for the fault to show
        if fault.broken(fleet, t_begin):
            break
        await asyncio.sleep(0.1)
    fault.info["visible_after_s"] = round(time.monotonic() - t_begin, 2)
    await asyncio.sleep(hold)
    await asyncio.to_thread(fault.end)
    fleet.mark_fault_end()
    t_end = time.monotonic()
    log(f"  {fault.name}: fault ends after {t_end - t_begin:.1f} s")
    acked_end = fleet.acked
    rest = max(3.0, duration - warm - (t_end - t_begin))
    await asyncio.sleep(2.0)
    fault.phase = "after"  # from 2 s after the fault ended: health must be back to ok
    await asyncio.sleep(max(1.0, rest - 2.0))
    polling = False
    await poll_task
    await fleet.stop()
    recovery = fleet.recovery_s()
    rec = await fleet.reconcile()
    await fleet.close()
    until = t_end + (recovery if recovery is not None else rest)
    during = Counter(code for t, code in fleet.error_times if t_begin <= t <= until)
    return {
        "fault": fault.name, **fleet.counts(), **rec,
        "acked_before_fault": acked_before, "acked_during_fault": acked_end - acked_before,
        "acked_after_fault": fleet.acked - acked_end,
        "fault_s": round(t_end - t_begin, 2), "recovery_s": recovery,
        "errors_during_fault": dict(during), "health_seen": dict(fault.seen),
        "health_last": dict(fault.last), **fault.info,
    }


def run_fault(name: str, duration: float = 30.0, conns: int = 24, hold: float = 2.0,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run one fault end to end; everything started is stopped and removed, also on error."""
    raise_nofile()
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chatd-fault-")))
        fault = FAULTS[name](stack, root)
        fault.duration = duration
        fault.setup()
        result = asyncio.run(_drive(fault, duration, conns, hold, log))
        result["node_exit"] = [s.proc.poll() for s in fault.servers]
        result["log_errors"] = sum(
            1 for i in range(len(fault.servers)) if (root / f"node{i}.log").exists()
            for line in (root / f"node{i}.log").read_text(errors="replace").splitlines()
            if " ERROR " in line or "Traceback" in line)
    return result


def summary(r: dict[str, Any]) -> str:
    rec = "never" if r["recovery_s"] is None else f"{r['recovery_s']:.2f} s"
    return (f"{r['fault']}: sent={r['sent']} acked={r['acked']} (before/during/after fault "
            f"{r['acked_before_fault']}/{r['acked_during_fault']}/{r['acked_after_fault']}) "
            f"retries={r['retries']} given_up={r['given_up']}\n"
            f"  errors: {r['errors'] or 'none'}\n"
            f"  fault {r['fault_s']} s, errors during it: {r['errors_during_fault'] or 'none'}; "
            f"health seen: {r['health_seen']}\n"
            f"  lost_acked={r['lost_acked']} duplicates={r['duplicates']} "
            f"seq_gaps={r['seq_gaps']} conflicts={r['conflicts']} "
            f"idempotency_mismatch={r['idem_mismatch']} "
            f"stored_unacked={r['stored_unacked']} (of {r['stored']} stored) "
            f"unseen={r['unseen']} gaps_filled_from_history={r['recovered_at_end']}; "
            f"recovery {rec}\n"
            f"  verdict: {'; '.join(problems(r)) or 'ok'}")


def store_degraded_seen(r: dict[str, Any]) -> bool:
    """Some node said during the fault that its store was degraded."""
    # Keys read "during n0:status/broker/store".
    return any(k.startswith("during") and k.rsplit("/", 1)[-1] == "degraded"
               for k in r["health_seen"])


def problems(r: dict[str, Any]) -> list[str]:
    """What this fault's run got wrong (empty: it passed)."""
    bad = []
    if not (r["lost_acked"] == 0 and r["duplicates"] == 0 and r["seq_gaps"] == 0
            and r["conflicts"] == 0 and r["idem_mismatch"] == 0 and r["unseen"] == 0):
        bad.append("messages lost, doubled or out of order")
    if r["recovery_s"] is None:
        bad.append("never recovered")
    if r["fault"] in STORAGE_FAULTS:
        if not store_degraded_seen(r):
            bad.append("/healthz showed the store ok throughout a storage fault")
        if r["errors_during_fault"].get("internal", 0):
            bad.append("clients got internal (not unavailable) for a storage fault")
    return bad


def ok(r: dict[str, Any]) -> bool:
    return not problems(r)


@contextlib.contextmanager
def _cleanup_on_signals() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the ExitStacks stop processes and unmount."""
    def term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, term)
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fault", choices=[*FAULTS, "all"])
    parser.add_argument("--duration", type=float, default=30.0, help="load seconds per fault")
    parser.add_argument("--conns", type=int, default=24, help="clients")
    parser.add_argument("--hold", type=float, default=2.0,
                        help="seconds the fault lasts once visible")
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 and args.fault in ("all", "disk", "postgres"):
        print("disk needs mount and postgres needs runuser: run as root", file=sys.stderr)
        return 2
    names = list(FAULTS) if args.fault == "all" else [args.fault]
    results = []
    with _cleanup_on_signals():
        for name in names:
            r = run_fault(name, args.duration, args.conns, args.hold)
            print(summary(r), flush=True)
            results.append(r)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    bad = [r["fault"] for r in results if not ok(r)]
    print("VERDICT: " + ("PASS: nothing acknowledged was lost; storage faults showed in "
                         "/healthz and as unavailable" if not bad
                         else f"FAIL: {', '.join(bad)}"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
