"""Fan-out: one sender into a group of online members, chatd against ``websockets.broadcast``.

    python -m bench.fanout [--members 1000] [--window 8] [--duration 8] [--json F]

Baseline: a bare ``websockets`` server that hands each frame to one ``broadcast()`` call over
every connection. chatd: the same frames as ``msg.send`` into the interest group ``g:<tag>``
all members belong to (filter, durable store, encode once, per-connection writer queues).
Target: chatd deliveries/s at least 70% of the baseline's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import bench_extras

with bench_extras("python -m bench.fanout", __name__ == "__main__"):
    from bench.common import Meter, placement, ratio_line, seeded_chatd
    from bench.engine import Plan
    from bench.harness import baseline_server, machine, temp_dir
    from bench.load import run_load
    from bench.report import table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    srv_cpus, gen_cpus, where = placement()
    print(f"machine: {machine()}\n{where}", flush=True)
    plan = Plan(urls=[], conns=args.members, offset=0, duration=args.duration, size=args.size,
                window=args.window, senders=1, group_share=1.0, group_size=args.members,
                cpus=gen_cpus)
    with baseline_server("broadcast", srv_cpus) as bare:
        meter = Meter(bare)
        base = run_load(Plan(**{**plan.__dict__, "urls": [bare.url], "mode": "broadcast"}),
                        hook=meter)
    print(table(base, f"websockets.broadcast to {args.members} connections"))
    print(f"  server CPU          {meter.cpu_share:.0%} of one core")
    with temp_dir() as tmp:
        srv, chat_plan = seeded_chatd(Path(tmp), plan, srv_cpus)
        with srv:
            chat_meter = Meter(srv)
            chat = run_load(Plan(**{**chat_plan.__dict__, "urls": [srv.url]}), hook=chat_meter)
    print(table(chat, f"chatd group of {args.members} online members, one sender"))
    print(f"  server CPU          {chat_meter.cpu_share:.0%} of one core (all threads)")
    print(ratio_line("chatd deliveries/s vs websockets.broadcast", chat["delivered_per_s"],
                     base["delivered_per_s"], 0.7))
    if args.json:
        args.json.write_text(json.dumps({
            "broadcast_deliveries_per_s": base["delivered_per_s"],
            "chatd_deliveries_per_s": chat["delivered_per_s"],
            "chatd_msgs_per_s": chat["sent_per_s"], "chatd_latency_ms": chat["latency_ms"],
            "broadcast_latency_ms": base["latency_ms"], "chatd_server_cpu": chat_meter.cpu_share,
            "broadcast_server_cpu": meter.cpu_share,
            "generator_cpu": [base["generator_cpu"], chat["generator_cpu"]]}, indent=2))


if __name__ == "__main__":
    main()
