"""The compiled, immutable WordFilter: normalise → automaton scan → policy → Verdict.

Two implementations of one contract, chosen by ``engine``:

- ``native`` (the default when the C extension is built): ``filters/_native.c`` walks the
  message once, normalising each character and stepping its own Aho-Corasick automata as it
  goes. A clean message (most of them) costs one pass and no allocation; only a message
  where something listed occurs is walked a second time to record offsets and apply the
  policy. The verdict comes back with original-text offsets already mapped.
- ``rs`` / ``pyahocorasick`` (and ``native`` without the extension): the pure-Python path
  below, the reference. ``skeleton`` (one ``str.translate``), then one overlapping scan per
  segment on the full skeleton (keys with ASCII letters/digits) and on the one without them
  (the others), then the policy on the skeleton-space hits. ``Verdict.matches``/``masked``
  map hits back to the original text only when read (filters/verdict.py).

Both read the same policy map (``_pol``: key → allow word, or entry with its strength,
doubled-character needs and ASCII edges), so they cannot drift apart on policy;
tests/filters/test_native.py checks they give equal verdicts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from filters import native
from filters.engine import Engine, EngineName, build_engine
from filters.normalize import (
    Runs,
    collapse_runs,
    drop_ascii,
    normalize_word,
    run_lengths,
    skeleton,
)
from filters.verdict import Hit, Match, Verdict, decide, is_ascii_alnum, materialize
from filters.wordlist import (
    ACTIONS,
    MERGE_ORDER,
    Entry,
    WordListError,
    check_entry,
    load_paths,
)

__all__ = ["LiveFilter", "Match", "Verdict", "WordFilter", "default_wordlists_path"]

_ASCII_ALNUM = re.compile(r"[a-z0-9]")
# Any adjacent pair of one non-ASCII character: a cheap search that skips the (slower)
# collapsing substitution for the ~75% of messages without such a run.
_ANY_RUN = re.compile(r"([^\x00-\x7f])\1")

# with_changes keeps the big automaton and adds a small overlay one; past these sizes it
# compacts (one full rebuild) so the overlay scan and the stale keys stay cheap.
_MAX_OVERLAY = 2000
_MAX_STALE_FRACTION = 0.10

# key → the allow word (str), or (entry, action strength, run lengths it needs or None,
# ASCII edges: 1 starts / 2 ends with an ASCII letter/digit, 4 / 8 with a digit; entry word).
# The C matcher reads the same tuples.
EntryPolicy = tuple[Entry, int, tuple[int, ...] | None, int, str]
PolicyItem = str | EntryPolicy


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


def _pol_item(key: str, ents: dict[str, Entry], allow: dict[str, str]) -> PolicyItem | None:
    w = allow.get(key)
    if w is not None:
        return w  # an allow word wins over an entry with the same key
    e = ents.get(key)
    if e is None:
        return None
    need: tuple[int, ...] | None = run_lengths(e.word)
    if need is not None and max(need) == 1:
        need = None
    edges = 0
    if is_ascii_alnum(key[0]):
        edges |= 5 if key[0] <= "9" else 1
    if is_ascii_alnum(key[-1]):
        edges |= 10 if key[-1] <= "9" else 2
    return (e, ACTIONS[e.action], need, edges, e.word)


def _policy(ents: dict[str, Entry], allow: dict[str, str]) -> dict[str, PolicyItem]:
    pol: dict[str, PolicyItem] = {}
    for key in ents.keys() | allow.keys():
        item = _pol_item(key, ents, allow)
        if item is not None:
            pol[key] = item
    return pol


class WordFilter:
    """An immutable compiled filter. Build with ``from_paths`` / ``from_entries``."""

    __slots__ = ("_allow", "_engine_name", "_entries", "_matcher", "_pol", "_segments",
                 "_version")

    def __init__(
        self,
        entries: dict[str, Entry],
        allow: dict[str, str],
        engine: EngineName,
        segments: tuple[_Segment, ...] | None = None,
        pol: dict[str, PolicyItem] | None = None,
    ) -> None:
        # Private: callers use the classmethods. ``entries``/``allow`` map key → item.
        self._entries = entries
        self._allow = allow
        self._engine_name: EngineName = engine
        if segments is None:
            segments = (_Segment(engine, set(entries) | set(allow)),)
        self._segments = segments
        self._pol = _policy(entries, allow) if pol is None else pol
        self._matcher: Any = None
        ext = native.module() if engine == "native" else None
        if ext is not None:
            self._matcher = ext.Matcher(tuple(g.asc for g in segments),
                                        tuple(g.cjk for g in segments), self._pol)
        self._version: str | None = None

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_entries(
        cls, entries: Iterable[Entry], allow: Iterable[str] = (), *,
        engine: EngineName = "native",
    ) -> WordFilter:
        """Build from entries; words normalising to the same key keep the strongest action."""
        ents: dict[str, Entry] = {}
        for e in entries:
            _add_entry(ents, e, None, None, merge=True)
        return cls(ents, _allow_map((w, None, None) for w in allow), engine)

    @classmethod
    def from_paths(cls, *paths: str | Path, engine: EngineName = "native") -> WordFilter:
        """Build from word-list files and/or folders of them (raises WordListError)."""
        located, allow = load_paths(paths)
        ents: dict[str, Entry] = {}
        for e, f, no in located:
            _add_entry(ents, e, f, no, merge=True)
        return cls(ents, _allow_map(allow), engine)

    @classmethod
    def default(cls, *, engine: EngineName = "native") -> WordFilter:
        return cls.from_paths(default_wordlists_path(), engine=engine)

    def with_changes(
        self,
        add: Iterable[Entry] = (),
        remove: Iterable[str] = (),
        allow_add: Iterable[str] = (),
        allow_remove: Iterable[str] = (),
    ) -> WordFilter:
        """A NEW filter with the changes applied; ``self`` is left untouched.

        An added word replaces its own entry (a moderator may lower its action); a word in
        another form of an existing key (法.轮.功 for 法轮功) merges with it to the strongest
        action, as lists do. ``remove`` drops the key whatever form names it. New keys go
        to a small overlay automaton, removed keys are simply dropped from the policy maps
        (the automaton may still find them; they are ignored). Past a size threshold the
        result is compacted into one automaton.
        """
        ents = dict(self._entries)
        allow = dict(self._allow)
        touched: set[str] = set()
        for w in remove:
            k = normalize_word(w)
            ents.pop(k, None)
            touched.add(k)
        for w in allow_remove:
            k = normalize_word(w)
            allow.pop(k, None)
            touched.add(k)
        new_keys: list[str] = []
        for e in add:
            # The same word replaces its entry (a moderator may lower it); another form of the
            # same key (法.轮.功 for 法轮功) merges to the strongest action like a list does.
            old = ents.get(normalize_word(e.word))
            merge = old is not None and old.word != e.word
            new_keys.append(_add_entry(ents, e, None, None, merge=merge))
        for k, w in _allow_map((w, None, None) for w in allow_add).items():
            allow[k] = w
            new_keys.append(k)
        touched.update(new_keys)
        # Copying the policy map and patching the touched keys keeps a one-word edit at a
        # few milliseconds on the default lists (rebuilding it is ~10x that).
        pol = dict(self._pol)
        for k in touched:
            item = _pol_item(k, ents, allow)
            if item is None:
                pol.pop(k, None)
            else:
                pol[k] = item
        base = self._segments[0]
        old_overlay = set(self._segments[1].keys) if len(self._segments) > 1 else set()
        overlay = old_overlay | {k for k in new_keys if k not in base.keyset}
        live = set(pol)
        overlay &= live
        stale = len(base.keyset - live)
        if len(overlay) > _MAX_OVERLAY or stale > _MAX_STALE_FRACTION * max(len(live), 1000):
            return WordFilter(ents, allow, self._engine_name, pol=pol)
        if overlay == old_overlay:
            segments = self._segments  # only policy changed: reuse the automata as they are
        elif overlay:
            segments = (base, _Segment(self._engine_name, overlay))
        else:
            segments = (base,)
        return WordFilter(ents, allow, self._engine_name, segments, pol)

    # ---- inspection -----------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def allow_words(self) -> list[str]:
        return list(self._allow.values())

    @property
    def engine(self) -> EngineName:
        return self._engine_name

    @property
    def accelerated(self) -> bool:
        """True if checks run in the C extension (engine ``native`` and the extension built)."""
        return self._matcher is not None

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
            f"engine={self._engine_name}, segments={len(self._segments)}, "
            f"accelerated={self.accelerated}>"
        )

    # ---- matching -------------------------------------------------------------------------
    def check(self, text: str) -> Verdict:
        """The verdict for one message. Never raises for any ``str``."""
        m = self._matcher
        if m is not None:
            found = m.check(text)
            return Verdict.clean(text) if found is None else Verdict.found(text, found)
        return self.check_pure(text)

    def check_pure(self, text: str) -> Verdict:
        """The pure-Python path (the reference the C extension is tested against)."""
        s = skeleton(text)
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
            return decide(materialize(text, hits), text)
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
                    return decide(materialize(text, hits), text)
        assert first is not None
        return Verdict.lazy(first.action == "block", first.action, first.category, text, hits)

    def scan(self, text: str) -> tuple[Match, ...]:
        return self.check(text).matches

    def _gather(self, u: str, ascii_keys: bool, which: int, out: list[Hit]) -> bool:
        """Append the hits on skeleton ``u`` that survive the policy to ``out``.

        ``ascii_keys``: scan for the keys with (True) or without (False) ASCII letters/digits.
        Returns True if a survivor needs an original-text word boundary (its key starts or
        ends with an ASCII letter/digit): the caller materialises the verdict then.
        """
        c = collapse_runs(u) if _ANY_RUN.search(u) else u
        pol = self._pol
        cands: list[tuple[Hit, EntryPolicy]] = []
        allows: list[tuple[int, int]] = []
        for seg in self._segments:
            if ascii_keys:
                found, keys = seg.asc.scan(c), seg.asc_keys
            else:
                found, keys = seg.cjk.scan(c), seg.cjk_keys
            for idx, a, b in found:
                key = keys[idx]
                p = pol.get(key)
                if p is None:
                    continue  # removed; the shared automaton still knows it
                if isinstance(p, str):
                    allows.append((a, b))
                else:
                    cands.append(((a, b, key, p[0], which), p))
        if not cands:
            return False
        runs: Runs | None = None
        eager = False
        for h, p in cands:
            a, b = h[0], h[1]
            # An allow word occurrence containing the hit suppresses it (按摩椅 ⊃ 按摩).
            if allows and any(x <= a and b <= y for x, y in allows):
                continue
            need = p[2]
            if need is not None:
                if runs is None:
                    runs = Runs(u)
                if any(runs.run(a + i) < n for i, n in enumerate(need)):
                    continue  # 妈妈的 needs two 妈 in the text, 妈的 is not enough
            if p[3]:
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
    if not merge or old is None or MERGE_ORDER[e.action] > MERGE_ORDER[old.action]:
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

