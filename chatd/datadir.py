"""Who may use a SQLite data directory.

SQLite in WAL mode is safe for several processes on ONE host, never across hosts (file
locks do not travel over network file systems). So:

- with the memory broker, a node takes the directory alone (exclusive ``flock``): a second
  node would not see the first one's users, so it is refused;
- with the Redis broker, nodes share it (shared ``flock``) on the same host only: each live
  node stamps ``host`` with its host name every few seconds, and a node on another host is
  refused while that stamp is fresh. Several hosts need ``store = "postgres"``.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path
from typing import IO, Final

__all__ = ["DataDirBusy", "DataDirClaim"]

STAMP_FRESH: Final = 60.0


class DataDirBusy(RuntimeError):
    """Another node uses the data directory in a way that cannot be shared."""


class DataDirClaim:
    def __init__(self, data_dir: Path, shared: bool) -> None:
        self.data_dir = data_dir
        self.shared = shared
        self._lock: IO[bytes] | None = None
        self.host = socket.gethostname()

    def acquire(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = (self.data_dir / "chatd.lock").open("ab")
        try:
            fcntl.flock(lock, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise DataDirBusy(
                f"another chatd node is using {self.data_dir}. Several nodes need "
                "broker = \"redis\" (and, on more than one host, store = \"postgres\")"
            ) from None
        stamp = self.data_dir / "host"
        try:
            other = stamp.read_text().strip()
            age = time.time() - stamp.stat().st_mtime
        except FileNotFoundError:
            other, age = self.host, 0.0
        if other != self.host and age < STAMP_FRESH:
            lock.close()
            raise DataDirBusy(
                f"{self.data_dir} is in use by a node on host {other!r}; SQLite cannot be "
                "shared between hosts: use store = \"postgres\"")
        self._lock = lock
        self.touch()

    def touch(self) -> None:
        """Refresh the host stamp (live nodes call this every few seconds)."""
        stamp = self.data_dir / "host"
        tmp = stamp.with_suffix(f".{os.getpid()}")
        tmp.write_text(self.host)
        tmp.replace(stamp)

    def release(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None
