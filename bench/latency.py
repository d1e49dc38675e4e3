"""Latency at half load: find chatd's maximum 1:1 rate (closed loop), then send at half of it
(open loop) ``--runs`` times and report delivery latency of each run. Targets: p99 under
5 ms on loopback, and no stall (the max) over 20 ms (a 60 s run: ``--duration 60 --runs 1``).

    python -m bench.latency [--conns 100] [--window 8] [--duration 8] [--runs 3] [--procs 1]
                            [--writer thread|process] [--json F] [--png F]

``--writer process``: chatd's SQLite store in its own process, pinned beside the generator.
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
    parser.add_argument("--runs", type=int, default=3, help="half-load runs, all printed")
    parser.add_argument("--procs", type=int, default=1, help="generator processes")
    parser.add_argument("--writer", choices=("thread", "process"), default="thread",
                        help="chatd's SQLite writer (process: beside the generator)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--png", type=Path)
    args = parser.parse_args()
    srv_cpus, gen_cpus, where = placement()
    print(f"machine: {machine()}\n{where}", flush=True)
    plan = Plan(urls=[], conns=args.conns, offset=0, duration=args.duration,
                window=args.window, cpus=gen_cpus)
    with temp_dir() as tmp:
        srv, plan = seeded_chatd(Path(tmp), plan, srv_cpus, "--sqlite-writer", args.writer)
        with srv:
            srv.pin_children(gen_cpus)
            plan.urls = [srv.url]
            peak = run_load(plan, args.procs)
            rate = peak["sent_per_s"] / 2
            runs = []
            for _ in range(args.runs):
                meter = Meter(srv)
                half = run_load(Plan(**{**plan.__dict__, "rate": rate}),
                                args.procs, hook=meter)
                runs.append((half, meter))
    print(table(peak, f"maximum (closed loop, window {args.window})"))
    print(f"half of it, open loop at {rate:,.0f} msg/s, {args.runs} run(s) of "
          f"{args.duration:g} s:")
    print("  run   msg/s acked   p50 ms   p99 ms   max ms  server CPU  complete  "
          "server CPU per message")
    for i, (half, meter) in enumerate(runs, 1):
        ms = half["latency_ms"]
        complete = half["delivered"] == half["expected"] and not half["errors"]
        by = meter.thread_us_per(half["acked"])
        split = ", ".join(f"{name} {us:.0f}" for name, us in by.items() if us >= 0.5)
        print(f"  {i:>3} {half['sent_per_s']:>13,.0f} {ms['p50']:>8.2f} {ms['p99']:>8.2f} "
              f"{ms['max']:>8.2f} {meter.cpu_share:>10.0%}  {'yes' if complete else 'NO':<8}  "
              f"{meter.us_per(half['acked']):.0f} µs ({split})"
              + ("  (generator saturated)" if half["generator_saturated"] else ""))
    worst_p99 = max(h["latency_ms"]["p99"] for h, _ in runs)
    worst_max = max(h["latency_ms"]["max"] for h, _ in runs)
    print(f"p99 delivery latency at half load, worst run: {worst_p99:.2f} ms "
          f"(target < 5 ms: {'met' if worst_p99 < 5 else 'MISSED'})")
    print(f"longest delivery, worst run: {worst_max:.2f} ms "
          f"(target: no stall over 20 ms: {'met' if worst_max <= 20 else 'MISSED'})")
    if args.png:
        chart(runs[-1][0], args.png, f"chatd 1:1 at {rate:,.0f} msg/s (half of the maximum)")
    if args.json:
        args.json.write_text(json.dumps({
            "max_per_s": peak["sent_per_s"], "rate": rate,
            "runs": [{"latency_ms": h["latency_ms"], "server_cpu": m.cpu_share,
                      "server_cpu_us_per_msg": m.us_per(h["acked"]),
                      "server_cpu_us_per_msg_by_thread": m.thread_us_per(h["acked"]),
                      "acked_per_s": h["sent_per_s"]} for h, m in runs]}, indent=2))


if __name__ == "__main__":
    main()
