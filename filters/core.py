"""The compiled, immutable WordFilter: normalise → automaton scan → policy → Verdict.

Per message: ``str.translate`` with the shared table, run collapse, one overlapping
automaton scan per segment (two skeletons if the text has ASCII letters/digits), then the
policy (allow-list, doubled entries) on the skeleton-space hits. The decision needs no offset
map; ``Verdict.matches``/``masked`` map hits back to the original text only when read
(filters/verdict.py), because on hit-heavy lists that mapping dominated the cost.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from filters.engine import Engine, EngineName, build_engine
from filters.normalize import (
    Runs,
    collapse_runs,
    drop_ascii,
    normalize_word,
    run_lengths,
    table,
)
from filters.verdict import Hit, Match, Verdict, decide, is_ascii_alnum, materialize
from filters.wordlist import (
    ACTIONS,
    Entry,
    WordListError,
    check_entry,
    load_paths,
)

__all__ = ["LiveFilter", "Match", "Verdict", "WordFilter", "default_wordlists_path"]

_ASTRAL_NOISE = re.compile("[\U000e0000-\U000e0fff]+")
_ASCII_ALNUM = re.compile(r"[a-z0-9]")
# Any adjacent pair of one non-ASCII character: a cheap search that skips the (slower)
# collapsing substitution for the ~75% of messages without such a run.
_ANY_RUN = re.compile(r"([^\x00-\x7f])\1")

# with_changes keeps the big automaton and adds a small overlay one; past these sizes it
# compacts (one full rebuild) so the overlay scan and the stale keys stay cheap.
_MAX_OVERLAY = 2000
_MAX_STALE_FRACTION = 0.10


def default_wordlists_path() -> Path:
    """The curated lists shipped with the repository."""
    return Path(__file__).resolve().parent.parent / "wordlists"


class _Segment:
    """Automata over a fixed tuple of keys (never mutated).

    Keys containing an ASCII letter/digit and the other keys get separate automata: the
    first only ever match on the full skeleton, the second on the skeleton with ASCII
    letters/digits removed (傻a逼), so each skeleton is scanned only for keys it can hold.
    """

    __slots__ = ("asc", "asc_keys", "cjk", "cjk_keys", "keys", "keyset")

    def __init__(self, engine_name: EngineName, keys: Iterable[str]) -> None:
        self.keys = tuple(sorted(keys))
        self.keyset = frozenset(self.keys)
        self.asc_keys = tuple(k for k in self.keys if _ASCII_ALNUM.search(k))
        self.cjk_keys = tuple(k for k in self.keys if not _ASCII_ALNUM.search(k))
        self.asc: Engine = build_engine(engine_name, self.asc_keys)
        self.cjk: Engine = build_engine(engine_name, self.cjk_keys)


class WordFilter:
    """An immutable compiled filter. Build with ``from_paths`` / ``from_entries``."""

    __slots__ = ("_allow", "_engine_name", "_entries", "_runs", "_segments", "_version")

    def __init__(
        self,
        entries: dict[str, Entry],
        allow: dict[str, str],
        engine: EngineName,
        segments: tuple[_Segment, ...] | None = None,
        runs: dict[str, tuple[int, ...]] | None = None,
    ) -> None:
        # Private: callers use the classmethods. ``entries``/``allow`` map key → item.
        self._entries = entries
        self._allow = allow
        self._engine_name: EngineName = engine
        if segments is None:
            segments = (_Segment(engine, set(entries) | set(allow)),)
        self._segments = segments
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
        return WordFilter(ents, allow, self._engine_name, segments, runs)

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
        hits: list[Hit] = []
        if _ASCII_ALNUM.search(s) is None:
            eager = self._gather(s, False, 0, hits)  # no ASCII key can occur
        else:
            # Keys with ASCII match on the full skeleton, pure-CJK keys on the one with ASCII
            # letters/digits removed (傻a逼).
            eager = self._gather(s, True, 0, hits)
            self._gather(drop_ascii(s), False, 1, hits)
        if not hits:
            return Verdict.clean(text)
        if eager:
            return decide(materialize(text, hits, s), text)
        top = max(ACTIONS[h[3].action] for h in hits)
        first: Entry | None = None
        for h in hits:
            e = h[3]
            if ACTIONS[e.action] == top:
                if first is None:
                    first = e
                elif e.category != first.category:
                    # Equal strength, different categories: the first in the ORIGINAL text
                    # wins, which only the offsets can tell.
                    return decide(materialize(text, hits, s), text)
        assert first is not None
        return Verdict.lazy(
            first.action == "block", first.action, first.category, text, hits, s
        )

    def scan(self, text: str) -> tuple[Match, ...]:
        return self.check(text).matches

    def _gather(self, u: str, ascii_keys: bool, which: int, out: list[Hit]) -> bool:
        """Append the hits on skeleton ``u`` that survive the policy to ``out``.

        ``ascii_keys``: scan for the keys with (True) or without (False) ASCII letters/digits.
        Returns True if a survivor needs an original-text word boundary (its key starts or
        ends with an ASCII letter/digit): the caller materialises the verdict then.
        """
        c = collapse_runs(u) if _ANY_RUN.search(u) else u
        allow = self._allow
        ents = self._entries
        cands: list[Hit] = []
        allows: list[tuple[int, int]] = []
        for seg in self._segments:
            if ascii_keys:
                found, keys = seg.asc.scan(c), seg.asc_keys
            else:
                found, keys = seg.cjk.scan(c), seg.cjk_keys
            for idx, a, b in found:
                key = keys[idx]
                if key in allow:
                    allows.append((a, b))
                    continue
                e = ents.get(key)
                if e is not None:
                    cands.append((a, b, key, e, which))
        if not cands:
            return False
        runs: Runs | None = None
        eager = False
        for h in cands:
            a, b, key = h[0], h[1], h[2]
            # An allow word occurrence containing the hit suppresses it (按摩椅 ⊃ 按摩).
            if allows and any(x <= a and b <= y for x, y in allows):
                continue
            need = self._runs.get(key)
            if need is not None:
                if runs is None:
                    runs = Runs(u)
                if any(runs.run(a + i) < n for i, n in enumerate(need)):
                    continue  # 妈妈的 needs two 妈 in the text, 妈的 is not enough
            if ascii_keys and (is_ascii_alnum(key[0]) or is_ascii_alnum(key[-1])):
                eager = True
            out.append(h)
        return eager


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

