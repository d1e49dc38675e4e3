"""Group commit: durable message appends per second with and without batching, one run.

    python -m bench.store_bench [--writers 64] [--messages 4000]

Both runs use synchronous=FULL (every acknowledged message is on disk); the baseline commits
each message in its own transaction (max_batch=1), chatd's default drains the queue into one.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from chatd.store import ConvId, SQLiteStore, User, UserId


async def run(max_batch: int, writers: int, messages: int, root: Path) -> tuple[float, float]:
    store = SQLiteStore(root / f"b{max_batch}.sqlite3", max_batch=max_batch)
    await store.open()
    conv = ConvId("g:bench")
    await store.create_user(User(UserId("u"), "+8613800000000", "x", "1990-01-01", "male",
                                 "n", "", "user", 0, ("bench",)), [conv])
    per_writer = messages // writers

    async def writer(w: int) -> None:
        for i in range(per_writer):
            await store.append_message(conv, f"{w}-{i}", UserId("u"), "你好，世界" * 4,
                                       0, None, False)

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    elapsed = time.perf_counter() - start
    commits = store.commits
    await store.close()
    return per_writer * writers / elapsed, per_writer * writers / max(1, commits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--messages", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        base, base_per = asyncio.run(run(1, args.writers, args.messages // 4, Path(tmp)))
        group, group_per = asyncio.run(run(512, args.writers, args.messages, Path(tmp)))
    print(f"writers={args.writers} synchronous=FULL WAL")
    print(f"one transaction per message : {base:9.0f} msg/s ({base_per:.1f} msg/commit)")
    print(f"group commit (chatd default): {group:9.0f} msg/s ({group_per:.1f} msg/commit)")
    print(f"ratio group/baseline        : {group / base:9.2f}x")


if __name__ == "__main__":
    main()
