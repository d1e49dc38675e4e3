"""Matching: N users enter the 1:1 queue at once; matches/s and the time to drain the queue.

    python -m bench.matching [--users 10000] [--json F]

Users are seeded in the store (registration is not what this measures), connect and
authenticate, then all send ``match.start`` within a few milliseconds. Every user shares two
interest tags with every other, so each pair is a "strong" match at once: the figure is the
queue and pairing machinery (policy, conversation creation, two ``match.found`` events per
pair), not how long the widening timers make an unlucky user wait.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import bench_extras

with bench_extras("python -m bench.matching", __name__ == "__main__"):
    from bench.common import placement, seeded_chatd
    from bench.engine import Plan
    from bench.harness import machine, raise_nofile, temp_dir
    from bench.load import run_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    raise_nofile()
    srv_cpus, gen_cpus, where = placement()
    print(f"machine: {machine()}\n{where}", flush=True)
    plan = Plan(urls=[], conns=args.users, offset=0, duration=0.1, window=0,
                match_timeout=args.timeout, cpus=gen_cpus)
    with temp_dir() as tmp:
        srv, plan = seeded_chatd(Path(tmp), plan, srv_cpus)
        with srv:
            s = run_load(Plan(**{**plan.__dict__, "urls": [srv.url]}), quiet=True)
    times = s["match_s"]
    users = 2 * (len(times) // 2)
    pairs = len(times) / 2
    drain = times[-1] if times else 0.0
    print(f"{args.users} users queued at once, {s['held']} connected "
          f"(connect+auth {s['connect_s']:.1f} s)")
    print(f"  matched users      {len(times)} of {s['conns']} ({s['unmatched']} left waiting)")
    print(f"  errors             {s['errors'] or 'none'}")
    for q in (0.5, 0.9, 0.99, 1.0):
        k = max(0, int(users * q) - 1)
        if times:
            print(f"  {q:>4.0%} matched by  {times[k]:.2f} s")
    print(f"  matches/s          {pairs / drain if drain else 0:,.0f} (pairs; time to drain "
          f"{drain:.2f} s)")
    if args.json:
        args.json.write_text(json.dumps({"users": args.users, "matched_users": len(times),
                                         "drain_s": drain, "pairs_per_s": pairs / drain
                                         if drain else 0.0}, indent=2))


if __name__ == "__main__":
    main()
