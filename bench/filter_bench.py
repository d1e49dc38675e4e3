"""Per-message sensitive-word check throughput, against a baseline measured in the same run.

    python -m bench.filter_bench [--limit N] [--repeats R] [--raw PATH]

Rows: chatd WordFilter.check (full normalisation, both engines), plain pyahocorasick
``Automaton.iter`` on the raw text (the baseline), plain ahocorasick_rs, and a pure-Python
dict-of-dicts trie, on the default lists and on the 41k raw Tencent list.

``check`` decides blocked/action/category without mapping offsets; ``Verdict.matches`` and
``masked`` are computed when read. So there are two chatd rows per engine: "check" (what a
server pays when it only needs the decision, e.g. to reject a blocked message) and
"check + matches read" (every verdict's matches and masked text read: the full cost).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import ahocorasick
import ahocorasick_rs

from filters import Entry, WordFilter, default_wordlists_path
from filters.curate import block_rate, clean_corpus
from filters.normalize import table

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent
RAW = REPO.parent / "shared" / "data" / "wordlists" / "tencent_lingshi_raw.txt"


def _trie(words: Sequence[str]) -> Callable[[str], list[str]]:
    root: dict[str, dict] = {}  # type: ignore[type-arg]
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node["\0"] = {}

    def find(text: str) -> list[str]:
        out = []
        for i in range(len(text)):
            node = root
            for j in range(i, len(text)):
                node = node.get(text[j])  # type: ignore[assignment]
                if node is None:
                    break
                if "\0" in node:
                    out.append(text[i : j + 1])
        return out

    return find


def _pyac(words: Sequence[str]) -> Callable[[str], list[tuple[int, str]]]:
    a = ahocorasick.Automaton()
    for w in words:
        a.add_word(w, w)
    a.make_automaton()
    return lambda s: list(a.iter(s))


def _rate(fn: Callable[[str], object], corpus: Sequence[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        for s in corpus:
            fn(s)
        best = min(best, time.perf_counter() - t)
    return best


def _full(f: WordFilter, s: str) -> object:
    v = f.check(s)
    return v.matches, v.masked


def _run(title: str, words: list[str], f_rs: WordFilter, f_py: WordFilter,
         corpus: Sequence[str], repeats: int, trie: bool) -> None:
    chars = sum(map(len, corpus))
    rows: list[tuple[str, float]] = [("pyahocorasick iter, raw text (BASELINE)",
                                      _rate(_pyac(words), corpus, repeats))]
    rs = ahocorasick_rs.AhoCorasick(words)
    rows.append(("ahocorasick_rs, raw text",
                 _rate(lambda s: rs.find_matches_as_indexes(s, overlapping=True), corpus,
                       repeats)))
    if trie:
        rows.append(("pure-Python dict trie, raw text", _rate(_trie(words), corpus, repeats)))
    for name, f in (("rs", f_rs), ("pyahocorasick", f_py)):
        rows.append((f"chatd check, engine={name}", _rate(f.check, corpus, repeats)))
        rows.append((f"chatd check + matches read, engine={name}",
                     _rate(lambda s, f=f: _full(f, s), corpus, repeats)))
    base = rows[0][1]
    hit = sum(1 for s in corpus if f_rs.check(s).matches)
    print(f"\n== {title}: {len(words)} patterns, {len(corpus)} messages, {chars} chars,"
          f" {hit / len(corpus):.0%} of messages with a match")
    for name, dt in rows:
        print(f"  {name:50s} {len(corpus) / dt:10,.0f} msg/s {chars / dt / 1e6:7.2f} Mchar/s"
              f"  x{base / dt:5.2f}")


def _build(entries: list[Entry], engine: str) -> tuple[WordFilter, float, int]:
    gc.collect()
    tracemalloc.start()
    t = time.perf_counter()
    f = WordFilter.from_entries(entries, engine=engine)  # type: ignore[arg-type]
    dt = time.perf_counter() - t
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return f, dt, mem


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.filter_bench")
    ap.add_argument("--limit", type=int, default=0, help="use the first N messages (0: all)")
    ap.add_argument("--repeats", type=int, default=3, help="best of R runs")
    ap.add_argument("--raw", type=Path, default=RAW, help="the 41k raw list")
    args = ap.parse_args(argv)
    corpus = clean_corpus(include_news=False)
    if args.limit:
        corpus = corpus[: args.limit]
    t = time.perf_counter()
    table()
    print(f"translate table (once per process): {time.perf_counter() - t:.2f} s")

    t = time.perf_counter()
    f_rs = WordFilter.from_paths(default_wordlists_path())
    print(f"default lists: {len(f_rs)} entries, build {time.perf_counter() - t:.2f} s")
    f_py = WordFilter.from_entries(f_rs.entries(), f_rs.allow_words(), engine="pyahocorasick")
    print(f"default lists block rate: {block_rate(f_rs, corpus):.3%} on the reviews,"
          f" {block_rate(f_rs, clean_corpus(False, 'heldout')):.3%} on the held-out half")
    words = sorted({e.word for e in f_rs.entries()})
    _run("default lists", words, f_rs, f_py, corpus, args.repeats, trie=True)

    if not args.raw.exists():
        print(f"\n(raw list {args.raw} not found: skipping the 41k rows)")
        return 0
    seen: dict[str, None] = {}
    for line in args.raw.read_text(encoding="utf-8").splitlines():
        w = line.strip()
        if w and len(w) <= 64:
            seen.setdefault(w, None)
    raw = [Entry(w) for w in seen if any(ch.isalnum() for ch in w)]
    big_rs, dt_rs, mem_rs = _build(raw, "rs")
    big_py, dt_py, mem_py = _build(raw, "pyahocorasick")
    print(f"\nraw list: {len(raw)} entries -> {len(big_rs)} keys")
    print(f"  build rs {dt_rs:.2f} s, {mem_rs / 2**20:.1f} MiB traced (Python side;"
          " Rust automaton not traced)")
    print(f"  build pyahocorasick {dt_py:.2f} s, {mem_py / 2**20:.1f} MiB traced")
    _run("raw 41k list", [e.word for e in raw], big_rs, big_py, corpus, args.repeats,
         trie=False)

    print("\nsingle-entry change at 41k (with_changes vs full rebuild):")
    for name, f in (("rs", big_rs), ("pyahocorasick", big_py)):
        t = time.perf_counter()
        g = f.with_changes(add=[Entry("新加的词", "misc", "block")])
        add = time.perf_counter() - t
        t = time.perf_counter()
        g.with_changes(remove=["新加的词"])
        rem = time.perf_counter() - t
        t = time.perf_counter()
        WordFilter.from_entries([*f.entries(), Entry("新加的词")], engine=f.engine)
        full = time.perf_counter() - t
        assert g.check("新加的词").blocked
        print(f"  {name:14s} add {add * 1e3:7.1f} ms  remove {rem * 1e3:7.1f} ms"
              f"  full rebuild {full * 1e3:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
