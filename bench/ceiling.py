"""Ceiling: chatd's routed 1:1 messages/s against a bare ``websockets`` echo server, one run.

    python -m bench.ceiling [--conns 100] [--window 8] [--duration 8] [--size 64] [--json F]

Same generator, same connections, same closed loop. The echo server answers each frame once;
chatd validates, filters, stores durably (SQLite, synchronous=FULL), acknowledges the sender
and delivers to the partner. Target: chatd at least 50% of the echo round trips/s.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import bench_extras

with bench_extras("python -m bench.ceiling", __name__ == "__main__"):
    from bench.common import Meter, placement, ratio_line, seeded_chatd
    from bench.engine import Plan
    from bench.harness import baseline_server, machine, temp_dir
    from bench.load import run_load
    from bench.report import table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    srv_cpus, gen_cpus, where = placement()
    print(f"machine: {machine()}\n{where}", flush=True)
    plan = Plan(urls=[], conns=args.conns, offset=0, duration=args.duration, size=args.size,
                window=args.window, cpus=gen_cpus)

    with baseline_server("echo", srv_cpus) as echo:
        meter = Meter(echo)
        base = run_load(Plan(**{**plan.__dict__, "urls": [echo.url], "mode": "echo"}),
                        args.procs, hook=meter)
    print(table(base, "echo baseline (bare websockets on uvloop)"))
    print(f"  server CPU          {meter.cpu_share:.0%} of one core")

    with temp_dir() as tmp:
        srv, chat_plan = seeded_chatd(Path(tmp), plan, srv_cpus)
        with srv:
            chat_meter = Meter(srv)
            chat = run_load(Plan(**{**chat_plan.__dict__, "urls": [srv.url]}), args.procs,
                            hook=chat_meter)
    print(table(chat, "chatd 1:1 chat (filter on, durable SQLite store)"))
    print(f"  server CPU          {chat_meter.cpu_share:.0%} of one core (all threads)")
    print(ratio_line("chatd routed msg/s vs echo round trips/s", chat["sent_per_s"],
                     base["sent_per_s"], 0.5))
    if args.json:
        args.json.write_text(json.dumps({
            "echo_per_s": base["sent_per_s"], "chatd_per_s": chat["sent_per_s"],
            "echo_server_cpu": meter.cpu_share, "chatd_server_cpu": chat_meter.cpu_share,
            "chatd_latency_ms": chat["latency_ms"], "echo_latency_ms": base["latency_ms"],
            "generator_cpu": [base["generator_cpu"], chat["generator_cpu"]]}, indent=2))


if __name__ == "__main__":
    main()
