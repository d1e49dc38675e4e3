"""Recall against disguised words, and false blocks on clean text held out from curation.

    python -m filters.evaluate [--source DIR] [--sample 400] [--variants 3] [--seed 15]

**Recall.** Two word sets, each disguised by every class below, embedded in a piece of a real
review (the held-out half) and checked:
- *held-out*: words of the public lists in ``--source`` whose normalised key is in none of the
  shipped lists (curation never kept them, so nothing here was tuned on them), each a run of
  letters/digits of 2-8 characters; the filter under test is built from these words alone;
- *listed*: block entries of the shipped lists, checked with the shipped filter (allow words
  included).
A variant counts as caught if the verdict is blocked by that very word (not by a neighbour).
Contexts where even the plain word is not caught (an allow word around it, an ASCII word
glued to a letter) are skipped, so each class measures the disguise alone.

**Clean text.** Block rate of the shipped lists on the held-out halves of the clean corpora
(filters.curate: lines never seen by the curation), next to plain matching of the same block
entries on the lowercased raw text (allow words suppressing what they contain, no other
normalisation): the difference is what normalisation adds. Also a few ordinary strings
(URLs, decimals, prices, 哈哈!!!) that must stay clean.
"""

from __future__ import annotations

import argparse
import random
import sys
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from filters.core import WordFilter, default_wordlists_path
from filters.normalize import normalize_word
from filters.wordlist import Entry

__all__ = ["CLASSES", "Result", "clean_rates", "heldout_words", "main", "pick", "recall"]

SOURCE = default_wordlists_path().parent.parent / "shared" / "data" / "wordlists"

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
EMOJI = ["😀", "🔥", "❤️", "👍", "🙏", "🌸", "😂", "⭐", "🐶", "✨"]
SPACES = [" ", "  ", "\u3000", "\t", " \u3000"]
# ASCII and CJK punctuation, sentence ends included (the ones a filter must not stop at).
SYMBOLS = list(".!?;,:*-_~#@&+=/\\|'\"`^%$()[]<>{}") + list(
    "。！？；，、：·…—～＊＃＠（）【】《》「」『』“”‘’﹏．"
)
ORDINARY = [
    "哈哈!!!", "哈哈哈哈。。。", "价格9.9元", "打3.5折", "评分6.4分", "1.99美元包邮", "v1.2.3版本",
    "https://www.example.com/a/b.html", "www.jd.com", "下午3:30见", "第1.1节", "100%好评",
    "真的!!!太棒了!!!", "好吧...", "电话138-0013-8000", "邮箱abc@163.com",
]


def _t2s_inverse() -> Callable[[str], str]:
    import opencc

    conv = opencc.OpenCC("s2t")
    convert: Callable[[str], str] = conv.convert
    return convert


_S2T: Callable[[str], str] | None = None


def _traditional(w: str, r: random.Random) -> str | None:
    global _S2T
    if _S2T is None:
        _S2T = _t2s_inverse()
    t = _S2T(w)
    return t if t != w else None


def _gaps(w: str, r: random.Random, fill: Callable[[], str], every: bool) -> str | None:
    if len(w) < 2:
        return None
    cut = list(range(1, len(w))) if every else [r.randrange(1, len(w))]
    out = []
    for i, ch in enumerate(w):
        if i in cut:
            out.append(fill())
        out.append(ch)
    return "".join(out)


def _case(w: str, r: random.Random) -> str | None:
    if not any("a" <= c.lower() <= "z" for c in w):
        return None
    for _ in range(10):
        v = "".join(c.upper() if r.random() < 0.5 else c.lower() for c in w)
        if v != w:
            return v
    return w.swapcase()


def _fullwidth(w: str, r: random.Random) -> str | None:
    if not any(c.isascii() and c.isalnum() for c in w):
        return None
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in w)


def _repeats(w: str, r: random.Random) -> str | None:
    idx = [i for i, c in enumerate(w) if not c.isascii()]
    if not idx:
        return None
    pick = set(r.sample(idx, r.randint(1, len(idx))))
    return "".join(c * r.randint(2, 4) if i in pick else c for i, c in enumerate(w))


def _several(r: random.Random) -> str:
    return "".join(r.choice(SYMBOLS) for _ in range(r.randint(2, 4)))


def _combined(w: str, r: random.Random) -> str | None:
    t = _traditional(w, r) or w
    return _gaps(t, r, lambda: r.choice([r.choice(SYMBOLS), r.choice(SPACES), r.choice(ZERO_WIDTH),
                                       r.choice(EMOJI)]), True)


Disguise = Callable[[str, random.Random], "str | None"]
CLASSES: dict[str, Disguise] = {
    "case": _case,
    "emoji": lambda w, r: _gaps(w, r, lambda: r.choice(EMOJI), False),
    "full-width": _fullwidth,
    "repeats": _repeats,
    "spaces": lambda w, r: _gaps(w, r, lambda: r.choice(SPACES), True),
    "traditional": _traditional,
    "zero-width": lambda w, r: _gaps(w, r, lambda: r.choice(ZERO_WIDTH), True),
    "one symbol": lambda w, r: _gaps(w, r, lambda: r.choice(SYMBOLS), False),
    "symbols between all": lambda w, r: _gaps(w, r, lambda: _several(r), True),
    "combined": _combined,
}


@dataclass
class Result:
    caught: int = 0
    total: int = 0
    skipped: int = 0
    misses: list[str] | None = None

    @property
    def recall(self) -> float:
        return self.caught / self.total if self.total else float("nan")


def _wordish(w: str) -> bool:
    # Letters/digits only (no URLs, no phrases with punctuation), not a bare number; ASCII-only
    # words need 3+ letters (two-letter ones are review-only in any sane list).
    if not (2 <= len(w) <= 8) or w.isdigit():
        return False
    if not all(unicodedata.category(c)[0] in "LN" for c in w):
        return False
    return not w.isascii() or (len(w) >= 3 and w.isalpha())


def heldout_words(source: Path, shipped: WordFilter, seed: int) -> list[str]:
    """The words of the public lists whose key no shipped entry or allow word has, in a
    seeded pseudo-random order."""
    keys = {normalize_word(e.word) for e in shipped.entries()}
    keys |= {normalize_word(w) for w in shipped.allow_words()}
    files = sorted(source.glob("*.txt")) + sorted((source / "konsheng").glob("*.txt"))
    seen: set[str] = set()
    out: list[str] = []
    for f in files:
        if f.name.upper().startswith(("LICENSE", "README")):
            continue
        for line in f.read_text(encoding="utf-8").splitlines():
            w = line.strip()
            k = normalize_word(w) if w else ""
            if _wordish(w) and len(k) >= 2 and k not in keys and k not in seen:
                seen.add(k)
                out.append(w)
    out.sort(key=lambda w: (zlib.crc32(f"{seed}:{w}".encode()), w))
    return out


def _contexts(lines: Sequence[str], r: random.Random) -> tuple[str, str]:
    line = r.choice(lines)
    cut = r.randrange(len(line) + 1)
    return line[max(0, cut - 12) : cut], line[cut : cut + 12]


def pick(pool: Sequence[str], n: int, seed: int) -> dict[str, list[str]]:
    """Per class, the first ``n`` words of ``pool`` the class applies to (case and full
    width need ASCII letters, traditional needs a character with a traditional form...)."""
    r = random.Random(seed)
    return {cls: [w for w in pool if fn(w, r) is not None][:n] for cls, fn in CLASSES.items()}


def recall(f: WordFilter, words: dict[str, list[str]], contexts: Sequence[str], variants: int,
           seed: int, others: dict[str, Callable[[str, str], bool]] | None = None,
           ) -> dict[str, dict[str, Result]]:
    """Per class: caught/total for ``f`` (key "chatd") and for each of ``others``
    (name → caught(text, word)), on the same variants in the same contexts."""
    r = random.Random(seed)
    names = ["chatd", *(others or {})]
    res = {c: {n: Result(misses=[]) for n in names} for c in CLASSES}
    for cls, fn in CLASSES.items():
        for w in words[cls]:
            for _ in range(variants):
                v = fn(w, r)
                if v is None:
                    continue
                for _try in range(5):
                    pre, post = _contexts(contexts, r)
                    if _caught(f, pre + w + post, w, len(pre), len(pre) + len(w)):
                        break
                else:
                    for n in names:
                        res[cls][n].skipped += 1
                    continue
                text = pre + v + post
                ok = _caught(f, text, w, len(pre), len(pre) + len(v))
                res[cls]["chatd"].total += 1
                res[cls]["chatd"].caught += ok
                misses = res[cls]["chatd"].misses
                if not ok and misses is not None and len(misses) < 5:
                    misses.append(v)
                for n, other in (others or {}).items():
                    res[cls][n].total += 1
                    res[cls][n].caught += other(text, w)
    return res


def _caught(f: WordFilter, text: str, word: str, a: int, b: int) -> bool:
    v = f.check(text)
    return v.blocked and any(m.word == word and m.start < b and a < m.end and
                             m.action == "block" for m in v.matches)


def _raw_matcher(f: WordFilter) -> Callable[[str], bool]:
    import ahocorasick_rs

    block = sorted({e.word.lower() for e in f.entries() if e.action == "block"})
    allow = sorted({w.lower() for w in f.allow_words()} - set(block))
    ac = ahocorasick_rs.AhoCorasick(block + allow)
    nb = len(block)

    def blocked(text: str) -> bool:
        hits = ac.find_matches_as_indexes(text.lower(), overlapping=True)
        spans = [(a, b) for i, a, b in hits if i >= nb]
        return any(i < nb and not any(x <= a and b <= y for x, y in spans) for i, a, b in hits)

    return blocked


def clean_rates(f: WordFilter) -> dict[str, tuple[int, float, float]]:
    """Held-out corpus → (lines, chatd block rate, plain-matching block rate)."""
    from filters.curate import clean_corpus, news_corpus

    raw = _raw_matcher(f)
    out = {}
    for name, lines in (("held-out reviews", clean_corpus(include_news=False, part="heldout")),
                        ("held-out People's Daily", news_corpus(part="heldout"))):
        n = max(len(lines), 1)
        out[name] = (len(lines), sum(f.check(x).blocked for x in lines) / n,
                     sum(map(raw, lines)) / n)
    return out


def _matcher_py(words: Sequence[str]) -> Callable[[str, str], bool] | None:
    try:
        import matcher_py
    except ImportError:
        return None
    b = matcher_py.SimpleMatcherBuilder()
    ids = {}
    for i, w in enumerate(words, 1):
        b.add_word(matcher_py.ProcessType.VARIANT_NORM_DELETE_NORMALIZE, i, w)
        ids[w] = i
    m = b.build()
    return lambda text, w: any(x.word_id == ids[w] for x in m.process(text))


def _table(title: str, res: dict[str, dict[str, Result]]) -> float:
    names = list(next(iter(res.values())))
    print(f"\n{title}")
    heads = "".join(f"{n:>16s}" for n in names)
    print(f"  {'class':22s}{heads}   cases  chatd misses (first)")
    worst = 1.0
    tot = {n: Result() for n in names}
    for cls, row in res.items():
        c = row["chatd"]
        worst = min(worst, c.recall) if c.total else worst
        for n in names:
            tot[n].caught += row[n].caught
            tot[n].total += row[n].total
        cells = "".join(f"{row[n].recall:16.1%}" for n in names)
        miss = " ".join(repr(m) for m in (c.misses or [])[:2])
        print(f"  {cls:22s}{cells}   {c.total:5d}  {miss}")
    print(f"  {'all classes':22s}" + "".join(f"{tot[n].recall:16.1%}" for n in names)
          + f"   {tot['chatd'].total:5d}")
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m filters.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, default=SOURCE, help="the raw public lists")
    ap.add_argument("--sample", type=int, default=400, help="words per set")
    ap.add_argument("--variants", type=int, default=3, help="variants per word and class")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 if a class is under 99%% or normalisation adds > 0.2 points")
    args = ap.parse_args(argv)
    from filters.curate import clean_corpus

    shipped = WordFilter.from_paths(default_wordlists_path())
    contexts = clean_corpus(include_news=False, part="heldout")
    print(f"shipped lists: {len(shipped)} entries ({shipped!r})")
    worst = 1.0
    if args.source.exists():
        chosen = pick(heldout_words(args.source, shipped, args.seed), args.sample, args.seed)
        words = sorted({w for ws in chosen.values() for w in ws})
        held = WordFilter.from_entries([Entry(w, "eval", "block") for w in words])
        mp = _matcher_py(words)
        res = recall(held, chosen, contexts, args.variants, args.seed,
                     {"matcher_py": mp} if mp else None)
        worst = min(worst, _table(
            f"held-out words: up to {args.sample} per class ({len(words)} in all) of the public"
            f" lists in {args.source}, in none of the shipped lists (e.g."
            f" {', '.join(chosen['case'][:3] + chosen['spaces'][:4])});"
            " the filter is built from them alone", res))
    else:
        print(f"({args.source} not found: no held-out words)")
    block = sorted(e.word for e in shipped.entries() if e.action == "block"
                   and 2 <= len(normalize_word(e.word)) <= 8)
    block.sort(key=lambda w: (zlib.crc32(f"{args.seed}:{w}".encode()), w))
    listed = pick(block, args.sample, args.seed)
    res = recall(shipped, listed, contexts, args.variants, args.seed + 1)
    worst = min(worst, _table(f"listed words: up to {args.sample} block entries per class of the"
                              " shipped lists, shipped filter", res))
    print("\nclean text (shipped lists; plain = the same block entries matched on the"
          " lowercased raw text, allow words applied)")
    worst_added = 0.0
    for name, (n, chatd, plain) in clean_rates(shipped).items():
        worst_added = max(worst_added, chatd - plain)
        print(f"  {name:26s} {n:6d} lines: chatd {chatd:.3%} blocked, plain {plain:.3%},"
              f" added by normalisation {100 * (chatd - plain):+.3f} points")
    bad = [t for t in ORDINARY if shipped.check(t).blocked]
    print(f"  ordinary strings blocked: {len(bad)} of {len(ORDINARY)} {bad if bad else ''}")
    if args.strict and (worst < 0.99 or worst_added > 0.002 or bad):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
