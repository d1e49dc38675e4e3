"""Per-code-point normalisation: the translate table and the offset-keeping skeleton.

The table maps every code point below ``TABLE_LIMIT`` to its *skeleton* form:
NFKC, then casefold, then OpenCC's traditional→simplified per character; noise characters
(format, control, combining marks, spaces, line breaks, punctuation, symbols, emoji parts) map
to ``""``. The one exception is a decimal point: a dot (``.``, ``．``, ``﹒``) standing right
between two characters that are digits (3.5, 1.99, v1.2: nothing else between) becomes ``.``
in the skeleton; every other dot is noise. So ``法.轮.功`` and ``出!售!炸!药`` lose their
separators, ``1-.9`` is ``19``, but a decimal never turns into another number (``6.4`` is not
``64``). Sentence
punctuation is noise like any other: evaders use ``.`` and ``!`` exactly because a filter that
stops at them lets ``法.轮.功`` through, and a listed word that really spans two sentences is
rare (the held-out block-rate figures in wordlists/README.md measure it).
The table is built once per process (about 0.3 s) and shared by every filter.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import re
import unicodedata
from functools import lru_cache

__all__ = [
    "DECIMAL",
    "TABLE_LIMIT",
    "Runs",
    "Skeleton",
    "collapse_runs",
    "decimal_points",
    "dot_chars",
    "drop_ascii",
    "is_invisible",
    "normalize_word",
    "run_lengths",
    "skeleton",
    "skeleton_map",
    "table",
]

# A list indexed by code point is about 2x faster in str.translate than a dict (no KeyError
# per unmapped character). Planes 0-2 cover CJK, emoji and the compatibility blocks.
TABLE_LIMIT = 0x30000

# What a decimal point becomes in the skeleton (the only punctuation a skeleton holds).
DECIMAL = "."

_NOISE_CATEGORIES = frozenset(
    {"Cc", "Cf", "Cs", "Mn", "Me", "Zs", "Zl", "Zp",
     "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So"}
)
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Mn", "Me", "Cs"})

# Tags and variation-selector supplement: invisible, beyond the table, deleted by regex.
_ASTRAL_NOISE = re.compile("[\U000e0000-\U000e0fff]+")
# Repeated non-ASCII characters collapse to one (傻傻傻逼 → 傻逼); ASCII runs are kept
# because ASCII words legitimately double letters (qq, google).
_RUNS = re.compile(r"([^\x00-\x7f])\1+")
# What the second skeleton drops: ASCII letters and digits, and the decimal points between.
_ASCII_ALNUM = re.compile(r"[a-z0-9.]+")


def _is_noise(ch: str) -> bool:
    return unicodedata.category(ch) in _NOISE_CATEGORIES


def is_invisible(ch: str) -> bool:
    """True for characters a reader does not see (used for ASCII word-boundary checks)."""
    o = ord(ch)
    return unicodedata.category(ch) in _INVISIBLE_CATEGORIES or 0xE0000 <= o <= 0xE0FFF


@lru_cache(maxsize=1)
def _t2s() -> dict[str, str]:
    """Traditional→simplified for single characters, from OpenCC's own t2s dictionaries."""
    import opencc

    letters = [
        chr(c) for c in range(0x2E80, TABLE_LIMIT)
        if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) == "Lo"
    ]
    # One call over newline-separated characters: phrases never span a newline, so every
    # character is converted on its own, and one call is ~100x faster than one per char.
    converted = opencc.OpenCC("t2s").convert("\n".join(letters)).split("\n")
    if len(converted) != len(letters):  # pragma: no cover - defensive, OpenCC kept lines
        return {}
    return {a: b for a, b in zip(letters, converted, strict=True) if a != b and len(b) == 1}


@lru_cache(maxsize=1)
def table() -> list[str]:
    """The shared translate table (index = code point, value = skeleton text)."""
    t2s = _t2s()
    out: list[str] = []
    for cp in range(TABLE_LIMIT):
        if 0xD800 <= cp < 0xE000:
            out.append("")  # lone surrogates: never reach an engine (Rust rejects them)
            continue
        ch = chr(cp)
        folded = unicodedata.normalize("NFKC", ch).casefold()
        res = "".join(t2s.get(x, x) for x in folded if not _is_noise(x))
        out.append(ch if res == ch else res)
    return out


@lru_cache(maxsize=1)
def dot_chars() -> frozenset[str]:
    """Characters that are a full stop and nothing else after NFKC (., ．, ﹒, ․)."""
    return frozenset(
        chr(c) for c in range(TABLE_LIMIT)
        if not 0xD800 <= c < 0xE000 and unicodedata.normalize("NFKC", chr(c)) == DECIMAL
    )


@lru_cache(maxsize=1)
def _decimal_re() -> tuple[tuple[str, ...], re.Pattern[str]]:
    t = table()
    digits = "".join(chr(c) for c, r in enumerate(t) if len(r) == 1 and "0" <= r <= "9")
    dots = "".join(sorted(dot_chars()))
    d, p = f"[{re.escape(digits)}]", f"[{re.escape(dots)}]"
    return tuple(dots), re.compile(f"(?<={d}){p}(?={d})")


def decimal_points(text: str) -> list[int]:
    """Indexes of the dots of ``text`` that the skeleton keeps (right between two digits)."""
    dots, decimal = _decimal_re()
    for d in dots:  # a few substring searches: far cheaper than the regex on dot-free text
        if d in text:
            return [m.start() for m in decimal.finditer(text)]
    return []


def skeleton(text: str) -> str:
    """The skeleton before runs are collapsed (what `check` translates every message to)."""
    t = table()
    points = decimal_points(text)
    if points:
        pieces = []
        start = 0
        for p in points:
            pieces.append(text[start:p].translate(t))
            start = p + 1
        pieces.append(text[start:].translate(t))
        s = DECIMAL.join(pieces)
    else:
        s = text.translate(t)
    if _ASTRAL_NOISE.search(s):
        s = _ASTRAL_NOISE.sub("", s)
    return s


# A C-level callable: a template like r"\1" runs Python code for every match.
_GROUP1 = operator.itemgetter(1)


def collapse_runs(s: str) -> str:
    return _RUNS.sub(_GROUP1, s)


def drop_ascii(s: str) -> str:
    """The second skeleton: ``s`` (a skeleton) without ASCII letters, digits and dots."""
    return _ASCII_ALNUM.sub("", s)


def normalize_word(word: str) -> str:
    """The automaton key of a list entry: skeleton with runs collapsed."""
    return collapse_runs(skeleton(word))


def run_lengths(word: str) -> tuple[int, ...]:
    """Run length of each key character of ``word`` (used to honour doubled entries)."""
    s = skeleton(word)
    runs: list[int] = []
    prev = ""
    for ch in s:
        if ch == prev and ord(ch) > 0x7F:
            runs[-1] += 1
        else:
            runs.append(1)
        prev = ch
    return tuple(runs)


class Runs:
    """Where a collapsed skeleton had runs: (collapsed position, uncollapsed start, length).

    Built from the uncollapsed string, so the matcher can check doubled entries (妈妈的) in
    skeleton space without an offset map; the few runs make each lookup a bisect.
    """

    __slots__ = ("_rc", "_rl", "_ru")

    def __init__(self, uncollapsed: str) -> None:
        rc: list[int] = []
        ru: list[int] = []
        rl: list[int] = []
        removed = 0
        for m in _RUNS.finditer(uncollapsed):
            a, b = m.span()
            rc.append(a - removed)
            ru.append(a)
            rl.append(b - a)
            removed += b - a - 1
        self._rc = rc
        self._ru = ru
        self._rl = rl

    def __bool__(self) -> bool:
        return bool(self._rc)

    def uncollapse(self, k: int) -> tuple[int, int]:
        """(uncollapsed position, run length) of collapsed position ``k``."""
        j = bisect.bisect_right(self._rc, k) - 1
        if j < 0:
            return k, 1
        if self._rc[j] == k:
            return self._ru[j], self._rl[j]
        return k + self._ru[j] + self._rl[j] - self._rc[j] - 1, 1

    def run(self, k: int) -> int:
        return self.uncollapse(k)[1]


class Skeleton:
    """A collapsed skeleton that can map its positions back to the original text.

    ``idx[u]`` is the original index of uncollapsed skeleton character ``u``; ``runs``
    turns collapsed positions into uncollapsed ones.
    """

    __slots__ = ("_idx", "runs", "text")

    def __init__(self, text: str, idx: list[int], runs: Runs) -> None:
        self.text = text
        self._idx = idx
        self.runs = runs

    def span(self, a: int, b: int) -> tuple[int, int]:
        """Original [start, end) of skeleton characters [a, b), whole runs included."""
        ua, _ = self.runs.uncollapse(a)
        ub, lb = self.runs.uncollapse(b - 1)
        return self._idx[ua], self._idx[ub + lb - 1] + 1

    def run(self, k: int) -> int:
        return self.runs.run(k)


@lru_cache(maxsize=1)
def _len_table() -> list[str]:
    # Code point → chr(len of its skeleton text): one more str.translate gives the length of
    # every character's output at C speed (the offset map is built from these lengths).
    return [chr(len(r)) for r in table()]


_BEYOND_TABLE = re.compile("[^\x00-\x7f]")
# ASCII letters/digits/dots → NUL, anything else unchanged: a keep-mask for the second skeleton.
_ALNUM_TO_NUL = {ord(c): "\x00" for c in "abcdefghijklmnopqrstuvwxyz0123456789."}


def _beyond_len(m: re.Match[str]) -> str:
    # Characters past the table are left as they are, except tags/variation selectors.
    return "\x00" if 0xE0000 <= ord(m.group()) <= 0xE0FFF else "\x01"


def skeleton_map(text: str, *, no_ascii: bool = False) -> Skeleton:
    """Rebuild the skeleton keeping offsets (only when a caller wants original offsets).

    Must produce exactly ``collapse_runs(skeleton(text))`` (or its ``drop_ascii`` variant).
    All bulk work is C-level (translate, compress, repeat), because hit-heavy lists come
    here for most messages whose matches are read.
    """
    s = skeleton(text)
    lens = text.translate(_len_table())
    if not lens.isascii():
        lens = _BEYOND_TABLE.sub(_beyond_len, lens)
    counts = bytearray(lens.encode("ascii"))
    for p in decimal_points(text):
        counts[p] = 1
    if len(s) == len(counts) - counts.count(0):
        idx = list(itertools.compress(range(len(counts)), counts))
    else:
        # Some character expanded (ﬁ → fi): repeat its index once per output character.
        idx = list(itertools.chain.from_iterable(map(itertools.repeat, range(len(counts)),
                                                     counts)))
    if no_ascii and _ASCII_ALNUM.search(s):
        idx = list(itertools.compress(idx, map(ord, s.translate(_ALNUM_TO_NUL))))
        s = _ASCII_ALNUM.sub("", s)
    runs = Runs(s)
    return Skeleton(collapse_runs(s) if runs else s, idx, runs)
