"""Latency at half load: find chatd's maximum 1:1 rate (closed loop), then send at half of it
(open loop) and report delivery latency. Target: p99 under 5 ms on loopback.

    python -m bench.latency [--conns 100] [--window 8] [--duration 8] [--json F] [--png F]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import bench_extras

with bench_extras("python -m bench.latency", __name__ == "__main__"):
    from bench.common import Meter, placement, seeded_chatd
    from bench.engine import Plan
    from bench.harness import machine, temp_dir
    from bench.load import run_load
    from bench.report import chart, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--png", type=Path)
    args = parser.parse_args()
    srv_cpus, gen_cpus, where = placement()
    print(f"machine: {machine()}\n{where}", flush=True)
    plan = Plan(urls=[], conns=args.conns, offset=0, duration=args.duration,
                window=args.window, cpus=gen_cpus)
    with temp_dir() as tmp:
        srv, plan = seeded_chatd(Path(tmp), plan, srv_cpus)
        with srv:
            plan.urls = [srv.url]
            peak = run_load(plan)
            rate = peak["sent_per_s"] / 2
            meter = Meter(srv)
            half = run_load(Plan(**{**plan.__dict__, "rate": rate}), hook=meter)
    print(table(peak, f"maximum (closed loop, window {args.window})"))
    print(table(half, f"half of it: open loop at {rate:,.0f} msg/s"))
    print(f"  server CPU          {meter.cpu_share:.0%} of one core (all threads)")
    p99 = half["latency_ms"]["p99"]
    print(f"p99 delivery latency at half load: {p99:.2f} ms "
          f"(target < 5 ms: {'met' if p99 < 5 else 'MISSED'})")
    if args.png:
        chart(half, args.png, f"chatd 1:1 at {rate:,.0f} msg/s (half of the maximum)")
    if args.json:
        args.json.write_text(json.dumps({"max_per_s": peak["sent_per_s"], "rate": rate,
                                         "latency_ms": half["latency_ms"],
                                         "server_cpu": meter.cpu_share}, indent=2))


if __name__ == "__main__":
    main()
