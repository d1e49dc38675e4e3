"""Ceiling: chatd's routed 1:1 messages/s and server CPU per message against three baselines,
all measured in one run with the same generator, plan and core placement.

    python -m bench.ceiling [--conns 100] [--window 8] [--duration 8] [--size 64] [--procs 1]
                            [--only echo,relay,socketio,chatd,chatd-process]
                            [--store sqlite|postgres] [--json F]

Closed loop: 100 connections in 50 pairs, 8 messages in flight per sender, 64-character
bodies; the sender gets an ack, the partner the message. Server on the first core, generator
on the second. In this order (``bench.baseline`` for the first three):

- ``echo``: bare ``websockets`` on uvloop sends each frame back (one round trip per message);
- ``relay``: bare ``websockets`` on uvloop, chatd's protocol (msgpack) without storage or
  filter: ``msg.send`` is written to the partner as ``msg`` and acknowledged with ``ok``;
- ``socketio``: python-socketio 5 on aiohttp + uvloop, a room per pair: a ``msg`` event with
  an ack id is emitted to the partner and acknowledged with a socket.io ack (the generator
  speaks Engine.IO v4 / socket.io over a bare WebSocket, ``bench.wire.SioConn``);
- ``chatd``: validates, filters, stores durably (SQLite, synchronous=FULL), acknowledges the
  sender and delivers to the partner;
- ``chatd-process``: the same with the SQLite store in its own process
  (``--sqlite-writer process``), pinned beside the generator as another host's work would be:
  the server's core carries the event loop alone, the CPU per message counts both.

For each: the load table, the server's CPU share and its CPU per routed message (CPU seconds
of all the server's processes and threads between the start and the end of the chat phase,
over the messages acknowledged; for echo, per round trip). Then each chatd as a ratio to each
baseline: >= 1.5x python-socketio, >= 50% of the bare relay (stretch), >= 50% of echo, and
chatd's CPU per message against <= 45 us. ``--json F`` writes every figure.

``--store postgres`` runs chatd on a private PostgreSQL 15 cluster instead of its SQLite
file: the cluster is pinned beside the generator and its CPU is printed apart, so chatd's
own CPU per message is what a node costs with the store on another host (``chatd-process``
is left out: that store has no writer process).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench import INSTALL_HINT, bench_extras

with bench_extras("python -m bench.ceiling", __name__ == "__main__"):
    import psutil

    from bench.common import Meter, limit_line, placement, ratio_line, seeded_chatd
    from bench.engine import Plan
    from bench.faults import PrivatePostgres
    from bench.harness import baseline_server, machine, temp_dir, tree_cpu
    from bench.load import run_load
    from bench.report import table

__all__ = ["SERVERS", "Run", "main", "measure"]

SERVERS = ("echo", "relay", "socketio", "chatd", "chatd-process")
CHATDS = ("chatd", "chatd-process")
NAMES = {"echo": "echo", "relay": "bare relay", "socketio": "python-socketio",
         "chatd": "chatd", "chatd-process": "chatd-process"}
TITLES = {
    "echo": "echo baseline (bare websockets on uvloop: each frame sent back)",
    "relay": "bare relay baseline (websockets on uvloop, msgpack: forward + ack, no storage)",
    "socketio": "python-socketio baseline (AsyncServer on aiohttp + uvloop: emit to the "
                "partner + socket.io ack, no storage)",
    "chatd": "chatd 1:1 chat (filter on, durable SQLite store)",
    "chatd-process": "chatd 1:1 chat (filter on, durable SQLite store in its own process, "
                     "beside the generator)",
}
CPU_PER_MSG_TARGET_US = 45.0
# (baseline, target ratio of chatd's msg/s to it, label after the chatd's name)
RATIOS = (("socketio", 1.5, "routed msg/s vs python-socketio routed msg/s"),
          ("relay", 0.5, "routed msg/s vs bare relay routed msg/s (stretch)"),
          ("echo", 0.5, "routed msg/s vs echo round trips/s"))


class ClusterMeter:
    """A ``run_load`` hook: CPU seconds of a private PostgreSQL cluster (the postmaster and
    every backend) at each phase."""

    def __init__(self, pg: PrivatePostgres) -> None:
        pid = int((pg.data / "postmaster.pid").read_text().split()[0])
        self.postmaster = psutil.Process(pid)
        self.marks: dict[str, float] = {}

    def pin(self, cpus: list[int] | None) -> None:
        if cpus:
            for p in [self.postmaster, *self.postmaster.children()]:
                os.sched_setaffinity(p.pid, cpus)  # new backends inherit the postmaster's

    def __call__(self, phase: str) -> None:
        self.marks[phase] = tree_cpu(self.postmaster)

    def us_per(self, count: int) -> float:
        return (self.marks["done"] - self.marks["ready"]) / count * 1e6 if count else 0.0


@dataclass
class Run:
    name: str
    summary: dict[str, Any]
    meter: Meter
    store: ClusterMeter | None = None  # chatd on PostgreSQL: the cluster's CPU, apart

    @property
    def routed(self) -> int:
        """Messages routed: acknowledged to their sender (and delivered to the partner;
        for echo, round trips)."""
        return int(self.summary["acked"])

    @property
    def cpu_us_per_msg(self) -> float:
        return self.meter.us_per(self.routed)

    def figures(self) -> dict[str, Any]:
        s = self.summary
        return {"per_s": s["sent_per_s"], "delivered_per_s": s["delivered_per_s"],
                "sent": s["sent"], "routed": self.routed, "delivered": s["delivered"],
                "expected": s["expected"], "errors": s["errors"],
                "server_cpu": self.meter.cpu_share, "server_cpu_s": self.meter.cpu_s,
                "server_cpu_us_per_msg": self.cpu_us_per_msg,
                "server_cpu_us_per_msg_by_thread": self.meter.thread_us_per(self.routed),
                "postgres_cpu_us_per_msg": self.store.us_per(self.routed) if self.store
                else None,
                "latency_ms": s["latency_ms"],
                "generator_cpu": s["generator_cpu"],
                "generator_saturated": s["generator_saturated"]}


def baseline_plan(name: str, plan: Plan, url: str) -> Plan:
    """The plan that drives baseline ``name``: the relay takes chatd's mode (its tokens are
    made up: it takes any), the others their own."""
    if name == "relay":
        return replace(plan, urls=[url], mode="chatd", register=False,
                       accounts=[{"token": f"relay{i}"} for i in range(plan.conns)])
    return replace(plan, urls=[url], mode=name)


def measure(name: str, plan: Plan, cpus: list[int] | None, procs: int = 1,
            quiet: bool = False, store: str = "sqlite") -> Run:
    """Start server ``name`` (one of :data:`SERVERS`) on ``cpus``, run ``plan`` against it
    (chatd with ``store``; a PostgreSQL cluster or the SQLite store process goes on the
    generator's cores)."""
    if name in CHATDS:
        with temp_dir() as tmp, ExitStack() as stack:
            cluster, dsn = None, None
            if store == "postgres":
                pg = PrivatePostgres().init()
                stack.callback(pg.destroy)
                cluster, dsn = ClusterMeter(pg), pg.dsn()
                cluster.pin(plan.cpus)
            flags = ("--sqlite-writer", "process") if name == "chatd-process" else ()
            srv, chat_plan = seeded_chatd(Path(tmp), plan, cpus, *flags, dsn=dsn)
            with srv:
                srv.pin_children(plan.cpus)
                meter = Meter(srv)

                def hook(phase: str) -> None:
                    meter(phase)
                    if cluster is not None:
                        cluster(phase)

                s = run_load(replace(chat_plan, urls=[srv.url]), procs, quiet, hook=hook)
            return Run(name, s, meter, cluster)
    else:
        with baseline_server(name, cpus) as srv:
            meter = Meter(srv)
            s = run_load(baseline_plan(name, plan, srv.url), procs, quiet, hook=meter)
    return Run(name, s, meter)


def report(run: Run) -> str:
    unit = "round trip" if run.name == "echo" else "routed message"
    return "\n".join([
        table(run.summary, TITLES[run.name]),
        f"  server CPU          {run.meter.cpu_share:.0%} of one core "
        "(all its processes and threads)",
        f"  server CPU per msg  {run.cpu_us_per_msg:.1f} µs per {unit} "
        f"({run.meter.cpu_s:.2f} s over {run.routed:,})",
        "  by thread           " + ", ".join(
            f"{name} {us:.1f} µs" for name, us in sorted(
                run.meter.thread_us_per(run.routed).items(), key=lambda kv: -kv[1])
            if us >= 0.5),
        *([f"  PostgreSQL          {run.store.us_per(run.routed):.1f} µs per routed message "
           "(its own processes, beside the generator: another host's work)"]
          if run.store else [])])


def side_by_side(runs: dict[str, Run]) -> str:
    rows = [(NAMES[r.name], f"{r.summary['sent_per_s']:,.0f}", f"{r.meter.cpu_share:.0%}",
             f"{r.cpu_us_per_msg:.1f} µs", f"{r.summary['latency_ms']['p99']:.2f}")
            for r in runs.values()]
    head = ("server", "msg/s acked", "server CPU", "CPU per msg", "p99 ms")
    widths = [max(len(row[k]) for row in [head, *rows]) for k in range(len(head))]

    def line(row: tuple[str, ...]) -> str:
        return "  " + "  ".join(cell.ljust(w) if k == 0 else cell.rjust(w)
                                for k, (cell, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join(["side by side", line(head), *(line(r) for r in rows)])


def verdicts(runs: dict[str, Run]) -> list[str]:
    """Five lines for each chatd run: three ratios, CPU per message, the event loop's."""
    lines = []
    for name in (n for n in CHATDS if n in runs):
        chat = runs[name]
        lines += [ratio_line(f"{name} {label}", chat.summary["sent_per_s"],
                             runs[base].summary["sent_per_s"], target)
                  for base, target, label in RATIOS if base in runs]
        beside = ", ".join(f"{NAMES[n]} {runs[n].cpu_us_per_msg:.1f} µs"
                           for n in ("relay", "socketio") if n in runs)
        lines.append(limit_line(f"{name} server CPU per routed message", chat.cpu_us_per_msg,
                                CPU_PER_MSG_TARGET_US, "µs", beside))
        threads = chat.meter.thread_us_per(chat.routed)
        if "event loop" in threads:  # what the server's core carries with the writer elsewhere
            lines.append(limit_line(f"{name} event-loop thread CPU per routed message",
                                    threads["event loop"], CPU_PER_MSG_TARGET_US, "µs",
                                    ", ".join(f"{n} {us:.1f} µs" for n, us in threads.items()
                                              if n != "event loop" and us >= 0.5)))
    return lines


def _servers(arg: str) -> list[str]:
    names = [n.strip() for n in arg.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(SERVERS)}, not {arg!r}")
    return [n for n in SERVERS if n in names]  # always in the documented order


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--only", type=_servers, default=list(SERVERS),
                        help="comma-separated servers to run (default: "
                             f"{','.join(SERVERS)}; they always run in that order)")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite",
                        help="chatd's store (postgres: a private cluster, its CPU apart)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if "socketio" in args.only and importlib.util.find_spec("socketio") is None:
        parser.exit(2, f"{parser.prog}: error: module 'socketio' (python-socketio) is "
                       f"missing: install the bench extras with {INSTALL_HINT}, or leave "
                       "out socketio with --only\n")
    srv_cpus, gen_cpus, where = placement()
    print(f"machine: {machine()}\n{where}", flush=True)
    print(f"plan: {args.conns} conns in {args.conns // 2} pairs, closed loop, window "
          f"{args.window}, {args.size}-char bodies, {args.duration:g} s per server, "
          f"{args.procs} generator process(es)", flush=True)
    plan = Plan(urls=[], conns=args.conns, offset=0, duration=args.duration, size=args.size,
                window=args.window, cpus=gen_cpus)
    runs: dict[str, Run] = {}
    if args.store == "postgres" and "chatd-process" in args.only:
        args.only.remove("chatd-process")  # no writer process on PostgreSQL
    for name in args.only:
        runs[name] = measure(name, plan, srv_cpus, args.procs, store=args.store)
        print(report(runs[name]), flush=True)
    print(side_by_side(runs))
    for line in verdicts(runs):
        print(line)
    if args.json:
        ratios = {f"{name}_vs_{base}": runs[name].summary["sent_per_s"] / b
                  for name in CHATDS if name in runs for base, _, _ in RATIOS
                  if base in runs and (b := runs[base].summary["sent_per_s"])}
        args.json.write_text(json.dumps({
            "machine": machine(), "placement": where,
            "plan": {k: v for k, v in asdict(plan).items()
                     if k in ("conns", "window", "size", "duration", "cpus")},
            "procs": args.procs, "store": args.store,
            "servers": {name: run.figures() for name, run in runs.items()},
            "ratios": ratios,
            "targets": {"chatd_vs_socketio": 1.5, "chatd_vs_relay": 0.5, "chatd_vs_echo": 0.5,
                        "chatd_server_cpu_us_per_msg": CPU_PER_MSG_TARGET_US},
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
