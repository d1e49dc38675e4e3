"""Command line: ``python -m filters check|lint --words PATH...`` (see docs/filters.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from filters.core import Verdict, WordFilter
from filters.engine import ENGINES
from filters.wordlist import WordListError

__all__ = ["main"]


def _verdict_json(text: str, v: Verdict) -> str:
    return json.dumps(
        {
            "text": text,
            "blocked": v.blocked,
            "action": v.action,
            "category": v.category,
            "masked": v.masked,
            "matches": [
                {"start": m.start, "end": m.end, "word": m.word, "category": m.category,
                 "action": m.action}
                for m in v.matches
            ],
        },
        ensure_ascii=False,
    )


def _verdict_line(v: Verdict) -> str:
    if not v.matches:
        return "ok\t" + v.masked
    words = ",".join(f"{m.word}:{m.category}:{m.action}@{m.start}-{m.end}" for m in v.matches)
    return f"{v.action}\t{v.masked}\t{words}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m filters")
    sub = ap.add_subparsers(dest="cmd", required=True)
    chk = sub.add_parser("check", help="one verdict per stdin line")
    chk.add_argument("--words", nargs="+", required=True, type=Path)
    chk.add_argument("--json", action="store_true")
    chk.add_argument("--engine", choices=ENGINES, default="native")
    lint = sub.add_parser("lint", help="clean corpus lines each entry would block")
    lint.add_argument("--words", nargs="+", required=True, type=Path)
    lint.add_argument("--corpus", required=True, type=Path)
    lint.add_argument("--all", action="store_true", help="also list entries with 0 hits")
    args = ap.parse_args(argv)
    try:
        f = WordFilter.from_paths(*args.words, engine=getattr(args, "engine", "native"))
    except WordListError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "check":
        for raw in sys.stdin:
            text = raw.rstrip("\n")
            v = f.check(text)
            print(_verdict_json(text, v) if args.json else _verdict_line(v), flush=False)
        return 0
    from filters.curate import corpus_hits

    lines = [x for x in args.corpus.read_text(encoding="utf-8").splitlines() if x.strip()]
    # "block" here means: would stop the line (block-action entries) or touch it (others).
    counts = corpus_hits(WordFilter.from_entries(f.entries(), f.allow_words()), lines)
    rows = sorted(f.entries(), key=lambda e: (-counts.get(e.word, 0), e.word))
    for e in rows:
        n = counts.get(e.word, 0)
        if n or args.all:
            print(f"{n}\t{e.word}\t{e.category}\t{e.action}")
    print(f"# {len(lines)} corpus lines, {len(rows)} entries", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
