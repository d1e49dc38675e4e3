"""Cross-node delivery through Redis against same-node delivery, in one run.

    python -m bench.crossnode [--conns 100] [--window 4] [--duration 8] [--json F]

Two chatd nodes share a private Redis (started here, so its command counts are ours alone)
and one SQLite directory. Every sender and its recipient form a 2-member interest group; the
generator puts consecutive connections on alternate nodes, so in the cross-node run EVERY
delivery crosses Redis from one node to the other. The same-node run puts all connections
on one node of the same cluster (its messages still go through Redis and back). Then each is
repeated open loop at half its maximum rate for latency. Both nodes share the server core.
Targets (issue 16): cross-node throughput at least 80% of same-node; cross-node p99 under
10 ms at half load. Also printed: Redis commands per delivered message (a Lua script's inner
commands count too).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis

from bench import bench_extras

with bench_extras("python -m bench.crossnode", __name__ == "__main__"):
    from bench.common import placement, ratio_line, seeded_chatd
    from bench.engine import Plan
    from bench.harness import PrivateRedis, chatd_server, machine, temp_dir
    from bench.load import run_load
    from bench.report import table


def redis_calls(r: redis.Redis) -> int:
    stats: dict[str, Any] = r.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items()
               if k not in ("cmdstat_info", "cmdstat_config|resetstat", "cmdstat_config"))


def measure(plan: Plan, r: redis.Redis) -> tuple[dict[str, Any], dict[str, Any], float]:
    r.config_resetstat()
    peak = run_load(plan)
    per_delivery = redis_calls(r) / max(1, peak["delivered"])
    half = run_load(replace(plan, rate=peak["sent_per_s"] / 2))
    return peak, half, per_delivery


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    srv_cpus, gen_cpus, where = placement()
    print(f"machine: {machine()}\n{where}; both nodes on the server core", flush=True)
    with temp_dir() as tmp, PrivateRedis(Path(tmp) / "redis") as private:
        r = redis.Redis(port=private.port)
        flags = ("--broker", "redis", "--redis-url", private.url)
        plan = Plan(urls=[], conns=args.conns, offset=0, duration=args.duration,
                    window=args.window, group_share=1.0, group_size=2, cpus=gen_cpus)
        n1, plan = seeded_chatd(Path(tmp), plan, srv_cpus, *flags, "--node-id", "n1")
        with n1, chatd_server(Path(tmp) / "data", srv_cpus, *flags, "--node-id", "n2") as n2:
            same = measure(replace(plan, urls=[n1.url]), r)
            cross = measure(replace(plan, urls=[n1.url, n2.url]), r)
    for name, (peak, half, calls) in (("same-node", same), ("cross-node", cross)):
        print(table(peak, f"{name}: maximum (closed loop, window {args.window})"))
        print(table(half, f"{name}: half load (open loop)"))
        print(f"  redis commands per delivered message: {calls:.2f}")
    print(ratio_line("cross-node msg/s vs same-node", cross[0]["sent_per_s"],
                     same[0]["sent_per_s"], 0.8))
    p99 = cross[1]["latency_ms"]["p99"]
    print(f"cross-node p99 at half load: {p99:.2f} ms (target < 10 ms: "
          f"{'met' if p99 < 10 else 'MISSED'}); same-node p99 {same[1]['latency_ms']['p99']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({name: {"max_per_s": v[0]["sent_per_s"],
                                                "half_latency_ms": v[1]["latency_ms"],
                                                "redis_calls_per_delivery": v[2]}
                                         for name, v in (("same", same), ("cross", cross))},
                                        indent=2))


if __name__ == "__main__":
    main()
