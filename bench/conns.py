"""Connections: N authenticated idle connections on one node; memory per connection and the
time to open them all.

    python -m bench.conns [--conns 10000] [--json F]

Resident memory is the server process's RSS with the connections up, less its RSS when it
has just started and holds none (same process). Target: at most 30 KiB per connection.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench import bench_extras

with bench_extras("python -m bench.conns", __name__ == "__main__"):
    from bench.common import Meter, placement, seeded_chatd
    from bench.engine import Plan
    from bench.harness import machine, raise_nofile, temp_dir
    from bench.load import run_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conns", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=3.0, help="seconds to hold them")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    limit = raise_nofile()
    srv_cpus, gen_cpus, where = placement()
    print(f"machine: {machine()}\n{where}; open-file limit {limit}", flush=True)
    plan = Plan(urls=[], conns=args.conns, offset=0, duration=args.hold, senders=0,
                cpus=gen_cpus)
    with temp_dir() as tmp:
        srv, plan = seeded_chatd(Path(tmp), plan, srv_cpus)
        with srv:
            time.sleep(1.0)
            empty = srv.rss()
            meter = Meter(srv)
            s = run_load(Plan(**{**plan.__dict__, "urls": [srv.url]}), quiet=True, hook=meter)
            health = srv.health()
    full = meter.rss("ready")
    per = (full - empty) / max(1, s["held"])
    print(f"{s['held']} of {args.conns} connections authenticated and held "
          f"(server says {health.get('connections', '?')} at the end)")
    print(f"  errors               {s['errors'] or 'none'}")
    print(f"  time to connect all  {s['connect_s']:.1f} s ({s['held'] / s['connect_s']:,.0f}/s, "
          "handshake + auth)")
    print(f"  server RSS           {empty / 2**20:.1f} MiB empty, {full / 2**20:.1f} MiB held")
    verdict = "met" if per <= 30 * 1024 else "MISSED"
    print(f"  per connection       {per / 1024:.1f} KiB (target <= 30 KiB: {verdict})")
    if args.json:
        args.json.write_text(json.dumps({"conns": s["held"], "connect_s": s["connect_s"],
                                         "rss_empty": empty, "rss_full": full,
                                         "per_conn_bytes": per}, indent=2))


if __name__ == "__main__":
    main()
