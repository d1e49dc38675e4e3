"""Merge the processes' counts into one summary; print it as a table, write JSON and a PNG."""

from __future__ import annotations

import json
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SATURATED", "chart", "merge", "table", "write_json"]

SATURATED = 0.90  # a process busy this share of the wall time had no headroom left
QUANTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def merge(results: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    """One summary from the per-process results (latencies in milliseconds)."""
    lat = np.concatenate([np.frombuffer(r["lat_us"], dtype=array("q").typecode)
                          for r in results]) if results else np.array([], dtype=np.int64)
    at = np.concatenate([np.frombuffer(r["at_ms"], dtype=array("q").typecode)
                         for r in results]) if results else np.array([], dtype=np.int64)
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    total = {k: sum(r[k] for r in results)
             for k in ("conns", "held", "sent", "acked", "delivered", "expected", "skipped",
                       "matched", "unmatched")}
    cpu = [r["cpu_s"] / r["wall_s"] if r["wall_s"] else 0.0 for r in results]
    latency = {k: float(np.percentile(lat, q)) / 1000 for k, q in QUANTILES.items()} \
        if lat.size else {k: 0.0 for k in QUANTILES}
    latency["max"] = float(lat.max()) / 1000 if lat.size else 0.0
    latency["mean"] = float(lat.mean()) / 1000 if lat.size else 0.0
    return {
        **total,
        "errors": dict(errors),
        "duration_s": duration,
        "sent_per_s": total["acked"] / duration if duration else 0.0,
        "delivered_per_s": total["delivered"] / duration if duration else 0.0,
        "latency_ms": latency,
        "connect_s": max((r["connect_s"] for r in results), default=0.0),
        "generator_cpu": cpu,
        "generator_saturated": any(c >= SATURATED for c in cpu),
        "match_s": sorted(t for r in results for t in r.get("match_s", [])),
        "_lat_us": lat, "_at_ms": at,
    }


def table(s: dict[str, Any], title: str) -> str:
    lat = s["latency_ms"]
    errors = ", ".join(f"{k}={v}" for k, v in sorted(s["errors"].items())) or "none"
    cpu = ", ".join(f"{c:.0%}" for c in s["generator_cpu"])
    rows = [
        ("messages sent (acked)", f"{s['acked']} of {s['sent']} sent"),
        ("delivered", f"{s['delivered']} of {s['expected']} expected"),
        ("errors by code", errors),
        ("throughput", f"{s['sent_per_s']:,.0f} msg/s acked, "
                       f"{s['delivered_per_s']:,.0f} deliveries/s"),
        ("delivery latency ms", "  ".join(f"{k} {lat[k]:.2f}"
                                          for k in ("p50", "p90", "p99", "p999", "max"))),
        ("connections held", f"{s['held']} of {s['conns']} (connect+login {s['connect_s']:.1f} s)"),
        ("generator CPU", f"{cpu} of one core per process"),
    ]
    if s.get("unmatched"):
        rows.append(("left unmatched", f"{s['unmatched']} (they send to their group only)"))
    if s.get("skipped"):
        rows.append(("not sent (window full)", str(s["skipped"])))
    width = max(len(k) for k, _ in rows)
    lines = [title] + [f"  {k:<{width}}  {v}" for k, v in rows]
    if s["generator_saturated"]:
        lines.append("  WARNING: the load generator saturated a core: these figures are "
                     "the generator's limit, not the server's (use --procs)")
    return "\n".join(lines)


def write_json(s: dict[str, Any], path: Path, **extra: Any) -> None:
    data = {k: v for k, v in s.items() if not k.startswith("_")}
    path.write_text(json.dumps({**data, **extra}, indent=2) + "\n")


def chart(s: dict[str, Any], path: Path, title: str) -> None:
    """Latency over time (p50/p99/max per 250 ms) and the latency histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat, at = s["_lat_us"] / 1000, s["_at_ms"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    if lat.size:
        bucket = at // 250
        order = np.argsort(bucket, kind="stable")
        keys, starts = np.unique(bucket[order], return_index=True)
        groups = np.split(lat[order], starts[1:])
        x = keys * 0.25
        for q, label in ((50, "p50"), (99, "p99"), (100, "max")):
            ax1.plot(x, [np.percentile(g, q) for g in groups], label=label)
        ax1.set_yscale("log")
        ax2.hist(lat, bins=np.logspace(np.log10(max(lat.min(), 0.01)),
                                       np.log10(lat.max() + 0.01), 80))
        ax2.set_xscale("log")
        ax2.set_yscale("log")
    ax1.set(xlabel="time (s)", ylabel="delivery latency (ms)", title="latency over time")
    ax1.legend()
    ax2.set(xlabel="delivery latency (ms)", ylabel="messages", title="latency histogram")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
