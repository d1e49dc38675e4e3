"""Matching: a burst of users entering the 1:1 queue at once, then a steady stream of arrivals.

    python -m bench.matching [--users 10000] [--rate 50 --seconds 20 --tags 56] \\
        [--only burst|steady] [--json F]

Users are seeded in the store (registration is not what this measures) and connect and
authenticate before any of them asks for a match; each run has a node of its own.

1. Burst: ``--users`` users send ``match.start`` within a few milliseconds. Every user shares
   two interest tags with every other, so each pair is a "strong" match at once: the figure
   is the queue and pairing machinery (policy, conversation creation, two ``match.found``
   events per pair), the time to drain the queue.
2. Steady: ``--rate`` users per second for ``--seconds`` (evenly spaced), each with 1-3 of
   the first ``--tags`` catalog tags drawn by a Zipf law (tag k with weight 1/k): the time
   from each user's own ``match.start`` to its ``match.found``, i.e. what the policy's
   widening makes people wait. A user still waiting ``--grace`` seconds after the last
   arrival counts as never matched in the quantiles.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from bench import bench_extras

with bench_extras("python -m bench.matching", __name__ == "__main__"):
    from bench.common import placement, seeded_chatd
    from bench.engine import Plan
    from bench.harness import machine, raise_nofile, temp_dir
    from bench.load import run_load


def _run(plan: Plan, srv_cpus: list[int] | None) -> dict[str, Any]:
    with temp_dir() as tmp:
        srv, plan = seeded_chatd(Path(tmp), plan, srv_cpus)
        with srv:
            return run_load(Plan(**{**plan.__dict__, "urls": [srv.url]}), quiet=True)


def _quantile(times: list[float], users: int, q: float) -> float:
    """The ``q`` quantile over ``users`` arrivals, those not matched counting as never."""
    k = max(0, math.ceil(users * q) - 1)
    return times[k] if k < len(times) else math.inf


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f} s" if math.isfinite(seconds) else "never (still waiting)"


def burst(users: int, timeout: float, srv_cpus: list[int] | None,
          gen_cpus: list[int] | None) -> dict[str, Any]:
    s = _run(Plan(urls=[], conns=users, offset=0, duration=0.1, window=0,
                  match_timeout=timeout, cpus=gen_cpus), srv_cpus)
    times = s["match_s"]
    pairs = len(times) / 2
    drain = times[-1] if times else 0.0
    print(f"burst: {users} users queued at once, {s['held']} connected "
          f"(connect+auth {s['connect_s']:.1f} s)")
    print(f"  matched users      {len(times)} of {s['conns']} ({s['unmatched']} left waiting)")
    print(f"  errors             {s['errors'] or 'none'}")
    for q in (0.5, 0.9, 0.99, 1.0):
        print(f"  {q:>4.0%} matched by  {_fmt(_quantile(times, s['conns'], q))}")
    print(f"  matches/s          {pairs / drain if drain else 0:,.0f} (pairs; time to drain "
          f"{drain:.2f} s)", flush=True)
    return {"users": users, "matched_users": len(times), "drain_s": drain,
            "pairs_per_s": pairs / drain if drain else 0.0}


def steady(rate: float, seconds: float, tags: int, grace: float,
           srv_cpus: list[int] | None, gen_cpus: list[int] | None) -> dict[str, Any]:
    users = max(2, round(rate * seconds))
    s = _run(Plan(urls=[], conns=users, offset=0, duration=0.1, window=0,
                  match_timeout=grace, match_rate=rate, zipf_tags=tags, cpus=gen_cpus),
             srv_cpus)
    times = s["match_s"]
    n = s["conns"]
    median, p90, p99 = (_quantile(times, n, q) for q in (0.5, 0.9, 0.99))
    print(f"steady: {users} users at {rate:g}/s over {seconds:g} s, 1-3 of {tags} tags each "
          f"(Zipf)")
    print(f"  matched users      {len(times)} of {n} ({s['unmatched']} still waiting "
          f"{grace:g} s after the last arrival)")
    print(f"  errors             {s['errors'] or 'none'}")
    print(f"  time to match      median {_fmt(median)}, p90 {_fmt(p90)}, p99 {_fmt(p99)}",
          flush=True)
    return {"rate": rate, "seconds": seconds, "tags": tags, "users": n,
            "matched_users": len(times), "median_s": median, "p90_s": p90, "p99_s": p99}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000, help="burst: users at once")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="burst: seconds to wait for the matches")
    parser.add_argument("--rate", type=float, default=50.0, help="steady: arrivals per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady: how long")
    parser.add_argument("--tags", type=int, default=56, help="steady: tags drawn from")
    parser.add_argument("--grace", type=float, default=5.0,
                        help="steady: seconds to wait after the last arrival")
    parser.add_argument("--only", choices=["burst", "steady"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    raise_nofile()
    srv_cpus, gen_cpus, where = placement()
    print(f"machine: {machine()}\n{where}", flush=True)
    out: dict[str, Any] = {}
    if args.only != "steady":
        out["burst"] = burst(args.users, args.timeout, srv_cpus, gen_cpus)
    if args.only != "burst":
        out["steady"] = steady(args.rate, args.seconds, args.tags, args.grace, srv_cpus,
                               gen_cpus)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
