"""A real local Redis Cluster for the test suite: three masters on free ports, no replicas.

``redis_cluster`` (session scope) starts three ``redis-server --cluster-enabled yes`` processes
in a temporary directory, joins them with ``redis-cli --cluster create``, waits until every
node reports ``cluster_state:ok`` and stops them when the session ends. It never touches the
Redis on 6379. A test may stop one master and start it again on the same port with the same
cluster config file (:meth:`LocalCluster.kill` / :meth:`LocalCluster.start_node`); it must
leave the cluster ok (:meth:`LocalCluster.wait_ok`), and a slot it moves
(:meth:`LocalCluster.move_slot`) back where it was. Missing binaries fail the run (CI installs
redis-server and redis-tools), they never skip it.
Import the fixture into a test module: ``from tests.redis_cluster import redis_cluster``.
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

__all__ = ["LocalCluster", "redis_cluster"]

# Short enough that a stopped master is flagged FAIL within a test, long enough not to flap
# on a busy 2-core machine.
NODE_TIMEOUT_MS = 2000


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_cluster_port(taken: set[int]) -> int:
    # The cluster bus listens on port + 10000: both must be free, and below 65536.
    for _ in range(1000):
        port = random.randint(20000, 45000)
        if port not in taken and _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class LocalCluster:
    """Three cluster masters on 127.0.0.1, each in its own directory under ``root``."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        self.ports: list[int] = []
        for _ in range(size):
            self.ports.append(_free_cluster_port(set(self.ports)))
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """The chatd ``redis_url`` of this cluster (every master a seed)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def start_node(self, port: int, timeout: float = 10.0) -> None:
        """Start (or restart) the master on ``port``; its nodes.conf keeps its id and slots."""
        work = self.root / str(port)
        work.mkdir(parents=True, exist_ok=True)
        log = (work / "redis.log").open("ab")
        self.procs[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
             # One shard down must not stop the others (no replicas here to fail over to).
             "--cluster-require-full-coverage", "no",
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[port].poll() is not None:
                raise RuntimeError(f"redis-server on {port} exited: "
                                   f"{(work / 'redis.log').read_text()[-2000:]}")
            try:
                with self.client(port) as r:
                    if r.ping():
                        return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on {port} did not answer")

    def kill(self, port: int, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[port]
        if proc.poll() is None:
            proc.send_signal(sig)
        proc.wait(timeout=20)

    def create(self) -> None:
        for port in self.ports:
            self.start_node(port)
        done = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout}{done.stderr}")
        self.wait_ok()

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every master says ``cluster_state:ok`` and sees every other one connected."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if all(self._ok(p) for p in self.ports):
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the local Redis Cluster did not become ok")
            time.sleep(0.1)

    def _ok(self, port: int) -> bool:
        with self.client(port) as r:
            if r.execute_command("CLUSTER", "INFO").find(b"cluster_state:ok") < 0:
                return False
            nodes = r.execute_command("CLUSTER", "NODES").decode()
        lines = [line.split() for line in nodes.splitlines() if line.strip()]
        return len(lines) == len(self.ports) and all(
            "fail" not in f[2] and f[7] == "connected" for f in lines)

    def flagged_failed(self, port: int) -> bool:
        """Whether the other masters agree the master on ``port`` failed (FAIL, not PFAIL)."""
        for other in self.ports:
            if other == port:
                continue
            with self.client(other) as r:
                nodes = r.execute_command("CLUSTER", "NODES").decode()
            for line in nodes.splitlines():
                f = line.split()
                if f and f[1].startswith(f"127.0.0.1:{port}@"):
                    return "fail" in f[2].split(",")
        return False

    def move_slot(self, slot: int, source: int, target: int) -> None:
        """Move one hash slot, and its keys, from master ``source`` to master ``target``
        (the resharding steps of the cluster spec: IMPORTING, MIGRATING, MIGRATE, NODE)."""
        with self.client(source) as src, self.client(target) as dst:
            src_id = src.execute_command("CLUSTER", "MYID").decode()
            dst_id = dst.execute_command("CLUSTER", "MYID").decode()
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
            for port in [target, source, *(p for p in self.ports if p not in (source, target))]:
                with self.client(port) as r:
                    r.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)

    def owner(self, name: str) -> int:
        """The port of the master that owns the slot of a key or shard channel."""
        slot = key_slot(name.encode())
        with self.client(self.ports[0]) as r:
            for start, end, master, *_ in r.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        raise LookupError(f"slot {slot} is not covered")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs.values():
            proc.wait(timeout=20)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """Three local cluster masters for this session (stopped, their files removed, after)."""
    missing = [b for b in ("redis-server", "redis-cli") if shutil.which(b) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed (apt-get install redis-server)")
    root = Path(tempfile.mkdtemp(prefix="chatd-redis-cluster-"))
    cluster = LocalCluster(root)
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
