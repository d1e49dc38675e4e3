"""Photo uploads: uploads/s and server memory with many concurrent 2 MB photos, one run.

    python -m bench.uploads [--concurrency 100] [--size-mb 2] [--rounds 3] [--json F]

``--concurrency`` users (seeded straight in the store, each with a session) upload distinct
JPEG photos of about ``--size-mb`` at once, ``--rounds`` each, to ``POST /upload?kind=image``
on a chatd node (directory media store, server pinned to core 0, generator to core 1). chatd
streams each body to a spool file, decodes it, strips its metadata, re-encodes it, makes a
thumbnail and a perceptual hash, and stores both files. The baseline, in the same run, is an
aiohttp sink that only receives the bodies to a file (``bench.baseline sink``). Printed: uploads
per second, latency percentiles, the server's CPU per upload and its resident memory before,
at its peak and after (sampled every 20 ms): the growth is what 100 uploads in flight cost.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench import bench_extras

with bench_extras("python -m bench.uploads", __name__ == "__main__"):
    import aiohttp
    import numpy as np
    from PIL import Image

    from bench.common import placement
    from bench.harness import (
        ServerProc,
        baseline_server,
        chatd_server,
        machine,
        read_json_lines,
        seed_accounts,
        temp_dir,
    )


def photos(count: int, size_mb: float) -> list[bytes]:
    """Distinct noisy JPEGs of about ``size_mb`` (noise keeps them large, as phone photos
    are), with EXIF so that stripping has work to do."""
    rng = np.random.default_rng(7)
    exif = Image.Exif()
    exif[0x010F] = "BenchPhone"

    def jpeg(side: int) -> bytes:
        # Smooth gradients plus noise: compresses like a photo, not like pure noise.
        h, w = side, int(side * 4 / 3)
        base = np.add.outer(np.arange(h), np.arange(w)) * (255 / (h + w))
        noise = rng.normal(0, 24, (h, w, 3))
        pixels = np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=90, exif=exif.tobytes())
        return buf.getvalue()

    side = 1200
    side = int(side * (size_mb * 1e6 / len(jpeg(side))) ** 0.5)  # bytes grow with the area
    return [jpeg(side) for _ in range(count)]


class PeakRss:
    """The server's resident memory, sampled in a thread every 20 ms."""

    def __init__(self, srv: ServerProc) -> None:
        self.srv, self.peak, self._stop = srv, srv.rss(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.srv.rss())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def drive(port: int, tokens: list[str], bodies: list[bytes], rounds: int
                ) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=len(tokens))
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def user(i: int) -> None:
            for r in range(rounds):
                body = bodies[(i + r * len(tokens)) % len(bodies)]
                started = time.perf_counter()
                async with session.post(f"http://127.0.0.1:{port}/upload?kind=image",
                                        data=body,
                                        headers={"Authorization": f"Bearer {tokens[i]}"}) as rsp:
                    await rsp.read()
                    if rsp.status != 200:
                        errors[rsp.status] = errors.get(rsp.status, 0) + 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(user(i) for i in range(len(tokens))))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {"uploads": len(latencies), "seconds": elapsed,
            "per_s": len(latencies) / elapsed if elapsed else 0.0,
            "p50_s": statistics.median(latencies),
            "p99_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "errors": errors}


def measure(srv: ServerProc, tokens: list[str], bodies: list[bytes],
            rounds: int) -> dict[str, Any]:
    idle, cpu0 = srv.rss(), srv.cpu()
    with PeakRss(srv) as peak:
        result = asyncio.run(drive(srv.port, tokens, bodies, rounds))
    cpu = srv.cpu() - cpu0
    result.update(rss_idle=idle, rss_peak=peak.peak, rss_after=srv.rss(), cpu_s=cpu,
                  cpu_ms_per_upload=cpu / max(result["uploads"], 1) * 1000)
    return result


def report(name: str, r: dict[str, Any]) -> str:
    mib = 1 << 20
    return (f"{name}\n"
            f"  uploads             {r['uploads']} in {r['seconds']:.2f} s: "
            f"{r['per_s']:.1f} uploads/s (errors: {r['errors'] or 'none'})\n"
            f"  latency             p50 {r['p50_s'] * 1000:.0f} ms,"
            f" p99 {r['p99_s'] * 1000:.0f} ms\n"
            f"  server CPU          {r['cpu_ms_per_upload']:.1f} ms per upload\n"
            f"  server memory       idle {r['rss_idle'] / mib:.0f} MiB, peak "
            f"{r['rss_peak'] / mib:.0f} MiB (+{(r['rss_peak'] - r['rss_idle']) / mib:.0f} MiB), "
            f"after {r['rss_after'] / mib:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--size-mb", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    srv_cpus, _, where = placement()
    print(f"machine: {machine()}\n{where}", flush=True)
    bodies = photos(min(args.concurrency * args.rounds, 60), args.size_mb)
    avg = sum(map(len, bodies)) / len(bodies) / 1e6
    print(f"plan: {args.concurrency} concurrent uploads x {args.rounds} rounds, "
          f"{len(bodies)} distinct JPEGs of {avg:.2f} MB on average", flush=True)
    results: dict[str, Any] = {}
    with baseline_server("sink", srv_cpus) as sink:
        results["sink"] = measure(sink, ["-"] * args.concurrency, bodies, args.rounds)
    print(report("baseline: aiohttp sink (receive the body to a file, nothing else)",
                 results["sink"]))
    with temp_dir() as tmp:
        accounts = Path(tmp) / "accounts.jsonl"
        seed_accounts(Path(tmp) / "data", args.concurrency, [["music.jazz"]], accounts)
        tokens = [a["token"] for a in read_json_lines(accounts)]
        with chatd_server(Path(tmp) / "data", srv_cpus) as srv:
            results["chatd"] = measure(srv, tokens, bodies, args.rounds)
    print(report("chatd POST /upload?kind=image (check, strip, re-encode, thumbnail, phash,"
                 " store)", results["chatd"]))
    ratio = results["chatd"]["per_s"] / results["sink"]["per_s"]
    print(f"chatd uploads/s vs the sink's: {ratio:.0%} (chatd decodes and re-encodes every "
          f"photo; the sink only receives it)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
