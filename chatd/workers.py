"""``chatd serve --workers N``: N node processes on one host sharing the port.

Each worker is ``chatd serve`` itself, started again with the same arguments plus
``--workers 1 --reuse-port true --node-id <base>-w<i>``: the kernel spreads new connections
over the processes listening on the port (SO_REUSEPORT), and the workers share everything
else as any nodes do, through Redis and PostgreSQL (the config refuses anything else). The
supervisor starts them, restarts one that dies, and on SIGTERM/SIGINT passes the signal on
and waits for every worker's graceful shutdown. A worker that fails at once with an error
of its own (a port in use, a database down: exit status > 0) stops the lot, as does one that
dies again and again: restarting would only loop.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from types import FrameType

from chatd.config import Config

__all__ = ["supervise"]

#: A worker that ends with an error sooner than this after its start failed to start.
START_GRACE = 5.0
RESTART_DELAY = 1.0
#: More restarts than this within a minute: a crash loop.
MAX_RESTARTS = 5


def supervise(config: Config, argv: Sequence[str]) -> int:
    base = config.node_id or uuid.uuid4().hex[:8]

    def spawn(i: int) -> tuple[subprocess.Popen[bytes], float]:
        args = [sys.executable, "-m", "chatd", *argv, "--workers", "1", "--reuse-port", "true",
                "--node-id", f"{base}-w{i}"]
        return subprocess.Popen(args), time.monotonic()

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc, _ in workers:
            if proc.poll() is None:
                proc.send_signal(signum)

    workers = [spawn(i) for i in range(config.workers)]
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    print(f"chatd: {config.workers} workers on port {config.port} (node ids {base}-w0..)",
          file=sys.stderr, flush=True)
    failed = 0
    restarts: list[float] = []
    while not stopping or any(p.poll() is None for p, _ in workers):
        time.sleep(0.2)
        for i, (proc, started) in enumerate(workers):
            code = proc.poll()
            if code is None or stopping:
                continue
            now = time.monotonic()
            restarts = [at for at in restarts if now - at < 60.0]
            if (code > 0 and now - started < START_GRACE) or len(restarts) >= MAX_RESTARTS:
                print(f"chatd: error: worker {i} failed (exit {code}); stopping",
                      file=sys.stderr, flush=True)
                failed = 1
                stop(signal.SIGTERM, None)
                break
            restarts.append(now)
            print(f"chatd: worker {i} exited ({code}); restarting it", file=sys.stderr,
                  flush=True)
            time.sleep(RESTART_DELAY)
            workers[i] = spawn(i)
    return failed
