"""The compiled, immutable WordFilter: normalise → automaton scan → policy.

Fast path (no hit, the common case): a few C-level calls: ``str.translate`` with the shared
table, two cheap regex searches, one automaton scan per segment. Only when a scan finds
something is the skeleton rebuilt in Python with an offset map back to the original text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from filters.engine import Engine, EngineName, build_engine
from filters.normalize import (
    TABLE_LIMIT,
    Skeleton,
    collapse_runs,
    is_invisible,
    normalize_word,
    run_lengths,
    skeleton_map,
    table,
)
from filters.wordlist import (
    ACTIONS,
    Action,
    Entry,
    WordListError,
    check_entry,
    load_paths,
)

__all__ = ["LiveFilter", "Match", "Verdict", "WordFilter", "default_wordlists_path"]

_ASTRAL_NOISE = re.compile("[\U000e0000-\U000e0fff]+")
_ASCII_ALNUM = re.compile(r"[a-z0-9]")
_ASCII_ALNUM_RUN = re.compile(r"[a-z0-9]+")

# with_changes keeps the big automaton and adds a small overlay one; past these sizes it
# compacts (one full rebuild) so the overlay scan and the stale keys stay cheap.
_MAX_OVERLAY = 2000
_MAX_STALE_FRACTION = 0.10


def default_wordlists_path() -> Path:
    """The curated lists shipped with the repository."""
    return Path(__file__).resolve().parent.parent / "wordlists"


@dataclass(frozen=True, slots=True)
class Match:
    """One hit; ``start``/``end`` index the ORIGINAL text (end exclusive)."""

    start: int
    end: int
    word: str
    category: str
    action: Action


@dataclass(frozen=True, slots=True)
class Verdict:
    """``blocked`` iff a block-action match remains after the allow-list.

    ``action``/``category`` are those of the strongest match (block > mask > review), or None.
    ``masked`` is the original text with every matched span replaced by ``*`` per character.
    """

    blocked: bool
    action: Action | None
    category: str | None
    matches: tuple[Match, ...]
    masked: str

    @property
    def review(self) -> bool:
        return any(m.action == "review" for m in self.matches)


def _is_ascii_alnum(ch: str) -> bool:
    return "a" <= ch <= "z" or "0" <= ch <= "9"


def _norm_char(ch: str) -> str:
    o = ord(ch)
    return table()[o] if o < TABLE_LIMIT else ch


def _boundary_before(text: str, i: int) -> bool:
    j = i - 1
    while j >= 0 and is_invisible(text[j]):
        j -= 1
    if j < 0:
        return True
    rep = _norm_char(text[j])
    return not (rep and _is_ascii_alnum(rep[-1]))


def _boundary_after(text: str, i: int) -> bool:
    n = len(text)
    while i < n and is_invisible(text[i]):
        i += 1
    if i >= n:
        return True
    rep = _norm_char(text[i])
    return not (rep and _is_ascii_alnum(rep[0]))


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
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


def _interior_regex(chars: frozenset[str]) -> re.Pattern[str] | None:
    # A run of a character that sits INSIDE some key is the only run that can hide a
    # match from the uncollapsed scan; runs of first/last characters still contain the key.
    if not chars:
        return None
    return re.compile("([" + "".join(re.escape(c) for c in sorted(chars)) + r"])\1")


def _interior_chars(keys: Iterable[str]) -> frozenset[str]:
    return frozenset(c for k in keys for c in k[1:-1] if ord(c) > 0x7F)


class _Segment:
    """One automaton over a fixed tuple of keys (never mutated)."""

    __slots__ = ("engine", "keys", "keyset")

    def __init__(self, engine_name: EngineName, keys: Iterable[str]) -> None:
        self.keys = tuple(sorted(keys))
        self.keyset = frozenset(self.keys)
        self.engine: Engine = build_engine(engine_name, self.keys)


class WordFilter:
    """An immutable compiled filter. Build with ``from_paths`` / ``from_entries``."""

    __slots__ = (
        "_allow", "_engine_name", "_entries", "_interior", "_interior_chars",
        "_runs", "_segments", "_version",
    )

    def __init__(
        self,
        entries: dict[str, Entry],
        allow: dict[str, str],
        engine: EngineName,
        segments: tuple[_Segment, ...] | None = None,
        interior: frozenset[str] | None = None,
        runs: dict[str, tuple[int, ...]] | None = None,
    ) -> None:
        # Private: callers use the classmethods. ``entries``/``allow`` map key → item.
        self._entries = entries
        self._allow = allow
        self._engine_name: EngineName = engine
        if segments is None:
            segments = (_Segment(engine, set(entries) | set(allow)),)
        self._segments = segments
        if interior is None:
            interior = _interior_chars(k for s in segments for k in s.keys)
        self._interior_chars = interior
        self._interior = _interior_regex(interior)
        if runs is None:
            runs = {}
            for key, e in entries.items():
                r = run_lengths(e.word)
                if max(r) > 1:
                    runs[key] = r
        self._runs = runs
        self._version: str | None = None

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_entries(
        cls, entries: Iterable[Entry], allow: Iterable[str] = (), *, engine: EngineName = "rs"
    ) -> WordFilter:
        """Build from entries; words normalising to the same key keep the strongest action."""
        ents: dict[str, Entry] = {}
        for e in entries:
            _add_entry(ents, e, None, None, merge=True)
        return cls(ents, _allow_map((w, None, None) for w in allow), engine)

    @classmethod
    def from_paths(cls, *paths: str | Path, engine: EngineName = "rs") -> WordFilter:
        """Build from word-list files and/or folders of them (raises WordListError)."""
        located, allow = load_paths(paths)
        ents: dict[str, Entry] = {}
        for e, f, no in located:
            _add_entry(ents, e, f, no, merge=True)
        return cls(ents, _allow_map(allow), engine)

    @classmethod
    def default(cls, *, engine: EngineName = "rs") -> WordFilter:
        return cls.from_paths(default_wordlists_path(), engine=engine)

    def with_changes(
        self,
        add: Iterable[Entry] = (),
        remove: Iterable[str] = (),
        allow_add: Iterable[str] = (),
        allow_remove: Iterable[str] = (),
    ) -> WordFilter:
        """A NEW filter with the changes applied; ``self`` is left untouched.

        New keys go to a small overlay automaton, removed keys are simply dropped from the
        policy maps (the automaton may still find them; they are ignored). Past a size
        threshold the result is compacted into one automaton.
        """
        ents = dict(self._entries)
        allow = dict(self._allow)
        for w in remove:
            ents.pop(normalize_word(w), None)
        for w in allow_remove:
            allow.pop(normalize_word(w), None)
        runs = dict(self._runs)
        new_keys: list[str] = []
        for e in add:
            key = _add_entry(ents, e, None, None, merge=False)
            new_keys.append(key)
            r = run_lengths(e.word)
            if max(r) > 1:
                runs[key] = r
            else:
                runs.pop(key, None)
        for k, w in _allow_map((w, None, None) for w in allow_add).items():
            allow[k] = w
            new_keys.append(k)
        runs = {k: v for k, v in runs.items() if k in ents}
        base = self._segments[0]
        overlay = set(self._segments[1].keys) if len(self._segments) > 1 else set()
        overlay.update(k for k in new_keys if k not in base.keyset)
        live = set(ents) | set(allow)
        overlay &= live
        stale = len(base.keyset - live)
        if len(overlay) > _MAX_OVERLAY or stale > _MAX_STALE_FRACTION * max(len(live), 1000):
            return WordFilter(ents, allow, self._engine_name, runs=runs)
        if overlay == (set(self._segments[1].keys) if len(self._segments) > 1 else set()):
            segments = self._segments  # only policy changed: reuse the automata as they are
        elif overlay:
            segments = (base, _Segment(self._engine_name, overlay))
        else:
            segments = (base,)
        interior = self._interior_chars | _interior_chars(new_keys)
        return WordFilter(ents, allow, self._engine_name, segments, interior, runs)

    # ---- inspection -----------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def allow_words(self) -> list[str]:
        return list(self._allow.values())

    @property
    def engine(self) -> EngineName:
        return self._engine_name

    @property
    def version(self) -> str:
        """A content hash of the entries and allow words (same content → same version)."""
        if self._version is None:
            h = hashlib.sha256()
            for key in sorted(self._entries):
                e = self._entries[key]
                line = f"e\t{key}\t{e.word}\t{e.category}\t{e.action}\n"
                h.update(line.encode("utf-8", "surrogatepass"))
            for key in sorted(self._allow):
                h.update(f"a\t{key}\t{self._allow[key]}\n".encode("utf-8", "surrogatepass"))
            self._version = h.hexdigest()[:16]
        return self._version

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"<WordFilter {len(self)} entries, {len(self._allow)} allow, "
            f"engine={self._engine_name}, segments={len(self._segments)}>"
        )

    # ---- matching -------------------------------------------------------------------------
    def check(self, text: str) -> Verdict:
        """The verdict for one message. Never raises for any ``str``."""
        s = text.translate(table())
        if _ASTRAL_NOISE.search(s):
            s = _ASTRAL_NOISE.sub("", s)
        interior = self._interior
        if interior is not None and interior.search(s):
            s = collapse_runs(s)
        for seg in self._segments:
            if seg.engine.any(s):
                return self._check_slow(text)
        if _ASCII_ALNUM.search(s):
            # ASCII letters/digits between CJK characters are noise for CJK keys.
            s = _ASCII_ALNUM_RUN.sub("", s)
            if interior is not None and interior.search(s):
                s = collapse_runs(s)
            for seg in self._segments:
                if seg.engine.any(s):
                    return self._check_slow(text)
        return Verdict(False, None, None, (), text)

    def scan(self, text: str) -> tuple[Match, ...]:
        return self.check(text).matches

    def _check_slow(self, text: str) -> Verdict:
        sk = skeleton_map(text)
        found: dict[tuple[int, int, str], Match] = {}
        if _ASCII_ALNUM.search(sk.text):
            # Keys with ASCII match on the full skeleton, pure-CJK keys on the ASCII-free one.
            self._collect(text, sk, True, found)
            self._collect(text, skeleton_map(text, no_ascii=True), False, found)
        else:
            self._collect(text, sk, None, found)
        if not found:
            return Verdict(False, None, None, (), text)
        matches = tuple(sorted(found.values(), key=lambda m: (m.start, m.end, m.word)))
        top = max(matches, key=lambda m: ACTIONS[m.action])
        masked = _mask(text, [(m.start, m.end) for m in matches])
        return Verdict(top.action == "block", top.action, top.category, matches, masked)

    def _collect(
        self,
        text: str,
        sk: Skeleton,
        want_ascii: bool | None,
        found: dict[tuple[int, int, str], Match],
    ) -> None:
        hits: list[tuple[int, int, str, Entry]] = []
        allows: list[tuple[int, int]] = []
        for seg in self._segments:
            keys = seg.keys
            for idx, a, b in seg.engine.scan(sk.text):
                key = keys[idx]
                if want_ascii is not None and (
                    _ASCII_ALNUM.search(key) is not None
                ) != want_ascii:
                    continue
                if key in self._allow:
                    allows.append((a, b))
                    continue
                e = self._entries.get(key)
                if e is not None:
                    hits.append((a, b, key, e))
        for a, b, key, e in hits:
            if any(x <= a and b <= y for x, y in allows):
                continue
            runs = self._runs.get(key)
            if runs is not None and any(sk.run(a + i) < r for i, r in enumerate(runs)):
                continue
            start, end = sk.span(a, b)
            if _is_ascii_alnum(key[0]) and not _boundary_before(text, start):
                continue
            if _is_ascii_alnum(key[-1]) and not _boundary_after(text, end):
                continue
            found[(start, end, key)] = Match(start, end, e.word, e.category, e.action)


def _add_entry(
    ents: dict[str, Entry], e: Entry, path: Path | None, line: int | None, *, merge: bool
) -> str:
    check_entry(e, path, line)
    key = normalize_word(e.word)
    if not key:
        raise WordListError(path, line, f"entry {e.word!r} is empty after normalisation")
    old = ents.get(key)
    if not merge or old is None or ACTIONS[e.action] > ACTIONS[old.action]:
        ents[key] = e
    return key


def _allow_map(items: Iterable[tuple[str, Path | None, int | None]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for w, path, line in items:
        check_entry(Entry(w), path, line)
        key = normalize_word(w)
        if not key:
            raise WordListError(path, line, f"allow word {w!r} is empty after normalisation")
        out[key] = w
    return out


class LiveFilter:
    """Holds the serving filter. Reload = compile a new one off-thread, then ``swap``.

    Rebinding one attribute is atomic, so readers see the old or the new filter, never a
    mix; a list that fails to load raises before ``swap`` and the old filter keeps serving.
    """

    __slots__ = ("_current",)

    def __init__(self, initial: WordFilter) -> None:
        self._current = initial

    @property
    def current(self) -> WordFilter:
        return self._current

    def swap(self, new: WordFilter) -> WordFilter:
        """Install ``new``; returns the previous filter."""
        if not isinstance(new, WordFilter):
            raise TypeError("LiveFilter.swap expects a WordFilter")
        old, self._current = self._current, new
        return old

    def reload(self, *paths: str | Path) -> WordFilter:
        """Build from ``paths`` (same engine) and swap; on WordListError nothing changes."""
        new = WordFilter.from_paths(*paths, engine=self._current.engine)
        self.swap(new)
        return new

    def check(self, text: str) -> Verdict:
        return self._current.check(text)

