"""Simulated app clients against any chatd deployment.

    python -m bench.load --url ws://HOST:PORT/ws [--url ...] --conns 200 --duration 10 \\
        [--group-share 0.2 --group-size 10] [--size 64] [--rate 5000 | --window 4] \\
        [--accounts accounts.jsonl | --save-accounts accounts.jsonl] [--procs 2] \\
        [--json out.json] [--png out.png]

Each connection is one user: registered (or resumed from ``--accounts``), matched 1:1, and
member of one interest group of ``--group-size``. Messages go to the group with probability
``--group-share``, else to the 1:1 partner. Closed loop by default (``--window`` requests in
flight per sender); ``--rate`` makes it open loop (messages per second in total).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import bench_extras

with bench_extras("python -m bench.load", __name__ == "__main__"):
    from bench.engine import Plan, run_worker
    from bench.report import chart, merge, table, write_json

__all__ = ["main", "run_load"]


def _worker_main(plan: Plan, progress: Any, results: Any, barrier: Any) -> None:
    import uvloop

    from bench.harness import raise_nofile

    raise_nofile()
    if plan.cpus:
        os.sched_setaffinity(0, set(plan.cpus))
    try:
        results.put(uvloop.run(run_worker(plan, progress, barrier)))
    except BaseException as exc:
        results.put({"worker": plan.worker, "failed": f"{type(exc).__name__}: {exc}"})
        raise


def split(plan: Plan, procs: int) -> list[Plan]:
    """One plan per process: connections, senders, rate and accounts divided evenly."""
    plans = []
    for k in range(procs):
        lo, hi = plan.conns * k // procs, plan.conns * (k + 1) // procs
        senders = None if plan.senders is None else \
            plan.senders * (k + 1) // procs - plan.senders * k // procs
        plans.append(replace(
            plan, conns=hi - lo, offset=plan.offset + lo, worker=k, workers=procs,
            senders=senders, rate=None if plan.rate is None else plan.rate / procs,
            match_rate=None if plan.match_rate is None else plan.match_rate / procs,
            accounts=plan.accounts[lo:hi]))
    return plans


def run_load(plan: Plan, procs: int = 1, quiet: bool = False,
             hook: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the generator in ``procs`` processes; ``hook("ready")`` runs in this process once
    every connection is up (before the chat phase), ``hook("done")`` once it is over."""
    ctx = mp.get_context("spawn")
    progress, results = ctx.Queue(), ctx.Queue()
    barrier = ctx.Barrier(procs + 1)  # the parent joins, so ``hook("ready")`` runs first
    workers = [ctx.Process(target=_worker_main, args=(p, progress, results, barrier),
                           daemon=True) for p in split(plan, procs)]
    for w in workers:
        w.start()
    out: list[dict[str, Any]] = []
    try:
        _follow(progress, results, out, workers, barrier, plan, quiet, hook)
    finally:
        for w in workers:
            w.join(5)
            if w.is_alive():
                w.kill()
    failed = [r["failed"] for r in out if "failed" in r]
    if failed:
        raise RuntimeError("load generator failed: " + "; ".join(failed))
    summary = merge(out, plan.duration)
    summary["accounts"] = [a for r in sorted(out, key=lambda r: r["worker"])
                           for a in r["accounts"]]
    return summary


def _follow(progress: Any, results: Any, out: list[dict[str, Any]], workers: list[Any],
            barrier: Any, plan: Plan, quiet: bool, hook: Callable[[str], None] | None) -> None:
    procs = len(workers)
    ready = done = 0
    ticks: dict[int, tuple[Any, ...]] = {}
    last_print, last_sent, start = time.monotonic(), 0, 0.0
    while len(out) < procs:
        try:
            out.append(results.get(timeout=0.2))
            if "failed" in out[-1]:
                barrier.abort()
            continue
        except queue.Empty:
            pass
        if not any(w.is_alive() for w in workers) and results.empty():
            raise RuntimeError("load generator processes died")
        while True:
            try:
                msg = progress.get_nowait()
            except queue.Empty:
                break
            if msg[0] == "tick":
                ticks[msg[1]] = msg
            elif msg[0] == "ready":
                ready += 1
                if ready == procs:
                    if hook:
                        hook("ready")
                    if not quiet:
                        print(f"  all {procs} process(es) ready; chatting for "
                              f"{plan.duration:g} s", flush=True)
                    start = time.monotonic()
                    barrier.wait()
            elif msg[0] == "done":
                done += 1
                if done == procs:
                    if hook:
                        hook("done")
                    barrier.wait()
        now = time.monotonic()
        if not quiet and ticks and now - last_print >= 1.0 and done < procs:
            sent = sum(t[2] for t in ticks.values())
            rate = (sent - last_sent) / (now - last_print)
            print(f"  t={now - start:4.0f}s sent={sent} ({rate:,.0f}/s) "
                  f"delivered={sum(t[3] for t in ticks.values())} "
                  f"errors={sum(t[4] for t in ticks.values())} "
                  f"p99(1s)={max(t[6] for t in ticks.values()) / 1000:.2f}ms", flush=True)
            last_print, last_sent = now, sent


def read_accounts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", action="append", required=True,
                        help="node URL; repeat for several nodes (round-robin)")
    parser.add_argument("--conns", type=int, default=100, help="connections (users)")
    parser.add_argument("--duration", type=float, default=10.0, help="chat seconds")
    parser.add_argument("--size", type=int, default=64, help="message body characters")
    parser.add_argument("--rate", type=float, default=None,
                        help="open loop: messages per second in total")
    parser.add_argument("--window", type=int, default=1,
                        help="closed loop: requests in flight per sender")
    parser.add_argument("--senders", type=int, default=None,
                        help="connections that send (default: all; 0: hold idle)")
    parser.add_argument("--group-share", type=float, default=0.0,
                        help="share of messages sent to interest groups (0..1)")
    parser.add_argument("--group-size", type=int, default=10, help="members per group")
    parser.add_argument("--accounts", type=Path, help="JSON-lines accounts file to reuse")
    parser.add_argument("--save-accounts", type=Path, help="write the accounts used here")
    parser.add_argument("--no-register", action="store_true",
                        help="fail instead of registering when --accounts runs short")
    parser.add_argument("--phone-base", type=int, default=13900000000,
                        help="first phone number of registered users")
    parser.add_argument("--procs", type=int, default=1, help="generator processes")
    parser.add_argument("--cpus", type=str, default=None,
                        help="pin the generator to these cores, e.g. 1 or 0,1")
    parser.add_argument("--mode", choices=["chatd", "echo", "broadcast", "socketio"],
                        default="chatd",
                        help="echo/broadcast/socketio: drive a bare baseline server "
                             "(bench.baseline; socketio: pairs of connections, socket.io "
                             "events and acks)")
    parser.add_argument("--json", type=Path, help="write the summary as JSON")
    parser.add_argument("--png", type=Path, help="write a latency chart (matplotlib)")
    args = parser.parse_args(argv)
    plan = Plan(
        urls=args.url, conns=args.conns, offset=0, mode=args.mode, duration=args.duration,
        size=args.size, rate=args.rate, window=args.window, senders=args.senders,
        group_share=args.group_share, group_size=args.group_size,
        accounts=read_accounts(args.accounts) if args.accounts else [],
        register=not args.no_register, phone_base=args.phone_base,
        cpus=[int(c) for c in args.cpus.split(",")] if args.cpus else None)
    loop = "closed loop, window " + str(args.window) if args.rate is None \
        else f"open loop, {args.rate:g} msg/s"
    print(f"bench.load: {args.conns} conns on {len(args.url)} node(s), {args.procs} process(es), "
          f"{loop}, {args.size}-char bodies, group share {args.group_share:g}", flush=True)
    summary = run_load(plan, args.procs)
    title = f"chatd load ({args.mode}): {args.conns} conns, {loop}, {args.duration:g} s"
    print(table(summary, title))
    if args.save_accounts:
        args.save_accounts.write_text("".join(json.dumps(a) + "\n" for a in summary["accounts"]))
    summary.pop("accounts")
    if args.json:
        write_json(summary, args.json, args=vars(args) | {"accounts": str(args.accounts),
                                                          "save_accounts": str(args.save_accounts),
                                                          "json": str(args.json),
                                                          "png": str(args.png)})
    if args.png:
        chart(summary, args.png, title)
    return 0 if not summary["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
