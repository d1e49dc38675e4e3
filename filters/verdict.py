"""Match and Verdict, and the one place skeleton-space hits become original-text offsets.

The matcher decides ``blocked``/``action``/``category`` on the skeleton (no offset map);
``Verdict.matches`` and ``Verdict.masked`` are computed on first access, because mapping
offsets back to the original text is the most expensive step and a server that rejects a
blocked message never reads them. Hits whose key ends in an ASCII letter/digit need an
original-text word boundary to count at all, so those verdicts are materialised at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from filters.normalize import (
    TABLE_LIMIT,
    Skeleton,
    dot_chars,
    is_invisible,
    skeleton_map,
    table,
)
from filters.wordlist import ACTIONS, Action, Entry

__all__ = ["Hit", "Match", "Raw", "Verdict", "decide", "is_ascii_alnum", "mask", "materialize"]

# A surviving skeleton-space hit: (start, end) in the collapsed skeleton, key, entry, and
# which skeleton it was found on (0: the full one, 1: the one without ASCII letters/digits).
Hit = tuple[int, int, str, Entry, int]


@dataclass(frozen=True, slots=True)
class Match:
    """One hit; ``start``/``end`` index the ORIGINAL text (end exclusive)."""

    start: int
    end: int
    word: str
    category: str
    action: Action


# What the C matcher returns for a message with matches: ((start, end, entry), ...) sorted
# by (start, end, word) in the ORIGINAL text, and the index of the first of the strongest.
Raw = tuple[tuple[tuple[int, int, Entry], ...], int]


class Verdict:
    """``blocked`` iff a block-action match remains after the allow-list.

    ``action``/``category`` are those of the strongest match (block > mask > review; among
    equally strong ones, the first in the text), or None. ``matches`` is sorted by
    (start, end, word); ``masked`` is the original text with every matched span replaced by
    ``*`` per character. Both are computed when first read. Immutable.
    """

    __slots__ = (
        "_action", "_blocked", "_category", "_hits", "_masked", "_matches", "_raw", "_text",
    )

    def __init__(
        self,
        blocked: bool,
        action: Action | None,
        category: str | None,
        matches: tuple[Match, ...],
        masked: str,
    ) -> None:
        self._blocked = blocked
        self._action = action
        self._category = category
        self._matches: tuple[Match, ...] | None = matches
        self._masked: str | None = masked
        self._text = masked
        self._hits: Sequence[Hit] = ()
        self._raw: tuple[tuple[int, int, Entry], ...] = ()

    @classmethod
    def clean(cls, text: str) -> Verdict:
        v = cls.__new__(cls)
        v._blocked = False
        v._action = None
        v._category = None
        v._matches = ()
        v._masked = text
        v._text = text
        v._hits = ()
        v._raw = ()
        return v

    @classmethod
    def lazy(
        cls,
        blocked: bool,
        action: Action,
        category: str,
        text: str,
        hits: Sequence[Hit],
    ) -> Verdict:
        """A verdict whose skeleton-space hits are mapped to the original text when read."""
        v = cls.__new__(cls)
        v._blocked = blocked
        v._action = action
        v._category = category
        v._matches = None
        v._masked = None
        v._text = text
        v._hits = hits
        v._raw = ()
        return v

    @classmethod
    def found(cls, text: str, raw: Raw) -> Verdict:
        """The verdict of the C matcher's result (offsets mapped; ``Match`` objects lazy)."""
        matches, top = raw
        if not matches:
            return cls.clean(text)
        e = matches[top][2]
        v = cls.__new__(cls)
        v._blocked = e.action == "block"
        v._action = e.action
        v._category = e.category
        v._matches = None
        v._masked = None
        v._text = text
        v._hits = ()
        v._raw = matches
        return v

    @property
    def blocked(self) -> bool:
        return self._blocked

    @property
    def action(self) -> Action | None:
        return self._action

    @property
    def category(self) -> str | None:
        return self._category

    @property
    def matches(self) -> tuple[Match, ...]:
        if self._matches is None:
            if self._raw:
                self._matches = tuple(
                    Match(a, b, e.word, e.category, e.action) for a, b, e in self._raw
                )
                self._raw = ()
            else:
                self._matches = materialize(self._text, self._hits)
                self._hits = ()  # the matches replace them
        return self._matches

    @property
    def masked(self) -> str:
        if self._masked is None:
            if self._raw:
                self._masked = mask(self._text, [(a, b) for a, b, _ in self._raw])
            else:
                self._masked = mask(self._text, [(m.start, m.end) for m in self.matches])
        return self._masked

    @property
    def review(self) -> bool:
        if self._matches is None:  # hits and matches carry the same actions
            if self._raw:
                return any(e.action == "review" for _, _, e in self._raw)
            return any(h[3].action == "review" for h in self._hits)
        return any(m.action == "review" for m in self._matches)

    def _fields(self) -> tuple[object, ...]:
        return (self.blocked, self.action, self.category, self.matches, self.masked)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Verdict(blocked={self.blocked!r}, action={self.action!r}, "
            f"category={self.category!r}, matches={self.matches!r}, masked={self.masked!r})"
        )


def decide(matches: tuple[Match, ...], text: str) -> Verdict:
    """The verdict of already materialised matches (sorted by start, end, word)."""
    if not matches:
        return Verdict.clean(text)
    top = max(matches, key=lambda m: ACTIONS[m.action])  # first of the strongest
    masked = mask(text, [(m.start, m.end) for m in matches])
    return Verdict(top.action == "block", top.action, top.category, matches, masked)


def is_ascii_alnum(ch: str) -> bool:
    return "a" <= ch <= "z" or "0" <= ch <= "9"


def _norm_char(ch: str) -> str:
    o = ord(ch)
    return table()[o] if o < TABLE_LIMIT else ch


def _skip_invisible_back(text: str, j: int) -> int:
    while j >= 0 and is_invisible(text[j]):
        j -= 1
    return j


def _skip_invisible(text: str, i: int) -> int:
    n = len(text)
    while i < n and is_invisible(text[i]):
        i += 1
    return i


def _boundary_before(text: str, i: int, digit: bool = False) -> bool:
    """Nothing that normalises to an ASCII letter/digit right before ``text[i]`` (invisible
    characters skipped); for a key starting with a digit, not ``<digit>.`` either (1.99)."""
    j = _skip_invisible_back(text, i - 1)
    if j < 0:
        return True
    rep = _norm_char(text[j])
    if rep and is_ascii_alnum(rep[-1]):
        return False
    if digit and text[j] in dot_chars():
        k = _skip_invisible_back(text, j - 1)
        if k >= 0:
            r = _norm_char(text[k])
            return not (r and "0" <= r[-1] <= "9")
    return True


def _boundary_after(text: str, i: int, digit: bool = False) -> bool:
    """The mirror of ``_boundary_before`` at the end of a match (``text[i]`` follows it)."""
    i = _skip_invisible(text, i)
    if i >= len(text):
        return True
    rep = _norm_char(text[i])
    if rep and is_ascii_alnum(rep[0]):
        return False
    if digit and text[i] in dot_chars():
        k = _skip_invisible(text, i + 1)
        if k < len(text):
            r = _norm_char(text[k])
            return not (r and "0" <= r[0] <= "9")
    return True


def materialize(text: str, hits: Sequence[Hit]) -> tuple[Match, ...]:
    """Map skeleton-space hits to original offsets; drop ASCII keys without a word boundary."""
    skeletons: dict[int, Skeleton] = {}
    found: dict[tuple[int, int, str], Match] = {}
    for a, b, key, e, which in hits:
        sk = skeletons.get(which)
        if sk is None:
            sk = skeletons[which] = skeleton_map(text, no_ascii=bool(which))
        start, end = sk.span(a, b)
        if is_ascii_alnum(key[0]) and not _boundary_before(text, start, key[0] <= "9"):
            continue
        if is_ascii_alnum(key[-1]) and not _boundary_after(text, end, key[-1] <= "9"):
            continue
        found[(start, end, key)] = Match(start, end, e.word, e.category, e.action)
    return tuple(sorted(found.values(), key=lambda m: (m.start, m.end, m.word)))


def mask(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for s, e in sorted(spans):
        if e <= pos:
            continue
        s = max(s, pos)
        out.append(text[pos:s])
        out.append("*" * (e - s))
        pos = e
    out.append(text[pos:])
    return "".join(out)
