"""The SQLite writer's cost per message by commit size: CPU per ``send_message`` and WAL
pages written per commit, chatd's schema against the one before migration 8 (an index by
sender and another by (sender, cid)), both measured in this run, rounds interleaved.

    python -m bench.commit_cost [--batches 4,16,80,400] [--messages 16000]

100 users in 50 direct conversations, each sending in turn (the load of ``bench.ceiling``),
after 40,000 messages (a store in use: each sender's index entries lie on many pages);
the jobs run on this thread as the store process runs them (``chatd.store.sqlite.process``):
one transaction per batch, synchronous=FULL. Pages are WAL frames (automatic checkpoints
are off in chatd: the checkpointer thread copies them later), CPU is this thread's time per
message, the best of five chunks (these machines are noisy).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from chatd.store import ConvId, User, UserId
from chatd.store.sqlite.process import _Inline

# The indexes chatd had before migration 8 (the baseline).
_BEFORE = ("DROP INDEX messages_sender_cid",
           "CREATE UNIQUE INDEX messages_cid ON messages(sender, cid) WHERE cid IS NOT NULL",
           "CREATE INDEX messages_sender ON messages(sender)")
PAIRS = 50
WARM = 40_000  # messages in the store before the measured ones


class Writer:
    """One store file and its jobs, stepped inline."""

    def __init__(self, path: Path, before: bool) -> None:
        self.store = _Inline(path, 512, "full")
        self.store.open()
        assert self.store.conn is not None
        self.conn: sqlite3.Connection = self.store.conn
        self.store.store._stop_checkpointer()  # WAL frames counted, not copied meanwhile
        for sql in _BEFORE if before else ():
            self.conn.execute(sql)
        self.wal = path.with_name(path.name + "-wal")
        for i in range(2 * PAIRS):
            self.call("create_user", User(UserId(f"u{i}"), f"+86138{i:08d}", "x",
                                          "1990-01-01", "male", "n", "", "user", 0, ()), [])
        self.pairs = [(ConvId(f"d:{i}"), UserId(f"u{2 * i}"), UserId(f"u{2 * i + 1}"))
                      for i in range(PAIRS)]
        self.call("create_directs", self.pairs, 0)
        self.ids = itertools.count(1)

    def call(self, name: str, *args: object) -> None:
        self.store.start(0, name, args, {})
        self.store.run()
        self.store.replies.clear()

    def send(self, batch: int) -> tuple[float, int]:
        """One commit of ``batch`` sends: (CPU seconds, WAL frames written)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for j in range(batch):
            conv, a, b = self.pairs[j % PAIRS]
            k = next(self.ids)
            self.store.start(k, "send_message", (conv, f"m{k:012d}", a if j // PAIRS % 2 == 0
                                                 else b, k, f"c{k}", "x" * 64, False), {})
        cpu = time.thread_time()
        self.store.run()
        cpu = time.thread_time() - cpu
        self.store.replies.clear()
        return cpu, os.path.getsize(self.wal) // (4096 + 24)

    def close(self) -> None:
        self.store.close()


def measure(batch: int, messages: int, root: Path,
            warm: int = WARM) -> dict[str, tuple[float, float]]:
    """{schema: (CPU µs per message, WAL pages per commit)} for commits of ``batch``, after
    ``warm`` messages."""
    writers = {"chatd": Writer(root / f"now{batch}.db", before=False),
               "before": Writer(root / f"before{batch}.db", before=True)}
    rounds = max(5, messages // batch)
    chunk = max(1, rounds // 5)
    best = {name: float("inf") for name in writers}
    pages = {name: 0 for name in writers}
    for _ in range(warm // 500):  # a store in use: each sender's index entries on many pages
        for w in writers.values():
            w.send(500)
    for c in range(0, rounds, chunk):
        spent = dict.fromkeys(writers, 0.0)
        for _ in range(min(chunk, rounds - c)):
            for name, w in writers.items():
                cpu, frames = w.send(batch)
                spent[name] += cpu
                pages[name] += frames
        for name in writers:
            best[name] = min(best[name], spent[name] / (min(chunk, rounds - c) * batch))
    for w in writers.values():
        w.close()
    return {name: (best[name] * 1e6, pages[name] / rounds) for name in writers}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.commit_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="4,16,80,400")
    parser.add_argument("--messages", type=int, default=16000,
                        help="messages per batch size and schema")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    print(f"{2 * PAIRS} senders in {PAIRS} conversations, synchronous=FULL, "
          f"{args.messages} messages per batch size and schema")
    print("  batch   CPU µs/msg (before)   WAL pages/commit (before)   pages ratio")
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        for batch in batches:
            got = measure(batch, args.messages, Path(tmp))
            (cpu, pages), (cpu0, pages0) = got["chatd"], got["before"]
            print(f"  {batch:>5}   {cpu:7.1f} ({cpu0:7.1f})      {pages:9.1f} ({pages0:9.1f})"
                  f"        {pages / pages0:6.0%}")


if __name__ == "__main__":
    main()
