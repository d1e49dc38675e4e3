"""What the benchmarks share: core placement, seeded chatd nodes, server CPU and memory meters."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.engine import Plan, planned_tags
from bench.harness import ServerProc, chatd_server, cores, read_json_lines, seed_accounts

__all__ = ["Meter", "limit_line", "placement", "ratio_line", "seeded_chatd"]


def placement() -> tuple[list[int] | None, list[int] | None, str]:
    """Server on the first core, generator on the second: they never share a core."""
    cpus = cores()
    if len(cpus) < 2:
        return None, None, "1 core: server and generator share it"
    return [cpus[0]], [cpus[1]], f"server pinned to core {cpus[0]}, generator to core {cpus[1]}"


def catalog_ids() -> list[str]:
    from chatd.catalog import Catalog

    return sorted(t["id"] for t in Catalog.load().as_wire())


def seeded_chatd(tmp: Path, plan: Plan, cpus: list[int] | None, *flags: str,
                 dsn: str | None = None) -> tuple[ServerProc, Plan]:
    """A chatd node whose store already holds ``plan.conns`` users (with the interests the
    generator will want) and their session tokens; returns it and the plan with accounts.
    ``dsn``: the node's store is that PostgreSQL database, not its own SQLite file."""
    catalog = catalog_ids()
    tags = [planned_tags(catalog, plan, i)[0] for i in range(plan.conns)]
    accounts = tmp / "accounts.jsonl"
    seed_accounts(tmp / "data", plan.conns, tags, accounts, dsn=dsn)
    if dsn is not None:
        flags = (*flags, "--store", "postgres", "--postgres-dsn", dsn)
    srv = chatd_server(tmp / "data", cpus, *flags)
    return srv, replace(plan, accounts=read_json_lines(accounts), register=False)


class Meter:
    """A ``run_load`` hook: server CPU seconds (all its threads and processes, see
    :meth:`ServerProc.cpu`) and RSS between ``ready`` and ``done``."""

    def __init__(self, srv: ServerProc) -> None:
        self.srv = srv
        self.marks: dict[str, tuple[float, float, int]] = {}
        self.threads: dict[str, dict[str, float]] = {}

    def __call__(self, phase: str) -> None:
        self.marks[phase] = (time.perf_counter(), self.srv.cpu(), self.srv.rss())
        self.threads[phase] = self.srv.thread_cpu()

    def thread_us_per(self, count: int) -> dict[str, float]:
        """Server CPU microseconds per one of ``count``: the main process's event-loop
        thread and its other threads (see :meth:`ServerProc.thread_cpu`)."""
        start, end = self.threads["ready"], self.threads["done"]
        return {name: (cpu - start.get(name, 0.0)) / count * 1e6 if count else 0.0
                for name, cpu in end.items() if cpu - start.get(name, 0.0) > 0.0}

    @property
    def cpu_share(self) -> float:
        (t0, c0, _), (t1, c1, _) = self.marks["ready"], self.marks["done"]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0

    @property
    def cpu_s(self) -> float:
        """Server CPU seconds between ``ready`` and ``done``."""
        return self.marks["done"][1] - self.marks["ready"][1]

    def us_per(self, count: int) -> float:
        """Server CPU microseconds per one of ``count`` (say, messages routed in the run)."""
        return self.cpu_s / count * 1e6 if count else 0.0

    def rss(self, phase: str) -> int:
        return self.marks[phase][2]

    def as_dict(self) -> dict[str, Any]:
        return {"server_cpu": self.cpu_share}


def ratio_line(name: str, value: float, base: float, target: float) -> str:
    ratio = value / base if base else 0.0
    verdict = "met" if ratio >= target else "MISSED"
    return f"{name}: {ratio:.0%} of the baseline (target >= {target:.0%}: {verdict})"


def limit_line(name: str, value: float, limit: float, unit: str, beside: str = "") -> str:
    """A figure that must stay at or under ``limit`` (``beside``: the baselines' figures)."""
    verdict = "met" if value <= limit else "MISSED"
    more = f"; {beside}" if beside else ""
    return f"{name}: {value:.1f} {unit} (target <= {limit:g} {unit}: {verdict}{more})"
