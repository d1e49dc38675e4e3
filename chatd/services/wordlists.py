"""The live word lists: the files are the base, the store holds the moderators' changes.

``live filter = base.with_changes(folded store changes)``. A change is validated, tried on
the current filter (off the event loop), stored (the store gives it the next version),
applied here, and announced on the node-wide ``sys`` channel; every node also polls the
store's version (``wordlist_poll_interval``, 1 s), so a change made by ``chatd admin`` on
the store, or during a broker outage, still lands everywhere within about a second.
A change that does not build never replaces the working filter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from chatd.errors import BadRequest
from chatd.node import Node
from chatd.store import Store, WordChange
from chatd.store.base import WordOp
from chatd.tasks import stop_task
from filters import Entry, LiveFilter, WordFilter, WordListError
from filters.wordlist import ACTIONS, check_entry

__all__ = ["Folded", "WordLists", "effective_filter", "export_text", "fold", "validate_change"]

log = logging.getLogger("chatd.words")


class Folded:
    """The net effect of a change log: the last change of each word wins."""

    def __init__(self) -> None:
        self.add: dict[str, Entry] = {}
        self.remove: set[str] = set()
        self.allow_add: set[str] = set()
        self.allow_remove: set[str] = set()

    def apply(self, c: WordChange) -> None:
        if c.op == "add":
            self.remove.discard(c.word)
            self.add[c.word] = Entry(c.word, c.category, c.action)  # type: ignore[arg-type]
        elif c.op == "remove":
            self.add.pop(c.word, None)
            self.remove.add(c.word)
        elif c.op == "allow_add":
            self.allow_remove.discard(c.word)
            self.allow_add.add(c.word)
        elif c.op == "allow_remove":
            self.allow_add.discard(c.word)
            self.allow_remove.add(c.word)


def fold(changes: Iterable[WordChange]) -> Folded:
    folded = Folded()
    for c in changes:
        folded.apply(c)
    return folded


def effective_filter(base: WordFilter, changes: Iterable[WordChange]) -> WordFilter:
    """The base with every change applied (CPU-bound: call it off the event loop)."""
    f = fold(changes)
    return base.with_changes(add=list(f.add.values()), remove=sorted(f.remove),
                             allow_add=sorted(f.allow_add), allow_remove=sorted(f.allow_remove))


def validate_change(op: str, word: str, category: str = "", action: str = "") -> WordChange:
    """A well-formed change (``actor``/``ts`` left blank) or BadRequest naming the field."""
    word = word.strip()
    if op not in ("add", "remove", "allow_add", "allow_remove"):
        raise BadRequest(f"unknown word-list change {op!r}")
    if op == "add":
        category = category or "default"
        action = action or "block"
        if action not in ACTIONS:
            raise BadRequest(f"action must be one of {', '.join(sorted(ACTIONS))}",
                             field="action")
    else:
        category, action = "", ""
    try:
        check_entry(Entry(word, category or "default", action or "block"))  # type: ignore[arg-type]
    except WordListError as exc:
        field = "category" if "category" in exc.reason else "word"
        raise BadRequest(exc.reason, field=field) from None
    if "\t" in word or "\n" in word or "\r" in word:
        raise BadRequest("a word may not hold tabs or line breaks", field="word")
    op_: WordOp = op  # type: ignore[assignment]
    return WordChange(op_, word, category, action, "", 0)


def export_text(f: WordFilter, title: str = "chatd effective word lists") -> str:
    """The filter's entries and allow words in the word-list file format (round-trips)."""
    lines = [f"# {title} (base files + moderators' changes)", f"# filter {f.version}"]
    groups: dict[tuple[str, str], list[str]] = {}
    for e in f.entries():
        groups.setdefault((e.category, e.action), []).append(e.word)
    for (category, action), words in sorted(groups.items()):
        lines += ["", f"@category {category}", f"@action {action}"]
        lines += [_escape(w) for w in sorted(words)]
    allow = sorted(f.allow_words())
    if allow:
        lines += ["", "@allow", *(_escape(w) for w in allow)]
    return "\n".join(lines) + "\n"


def _escape(word: str) -> str:
    return "\\" + word if word[:1] in ("#", "@", "\\") else word


class WordLists:
    """Keeps this node's :class:`LiveFilter` equal to base + the store's changes."""

    def __init__(self, store: Store, live: LiveFilter, base: WordFilter, node: Node,
                 poll: float = 1.0,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 on_reload: Callable[[str], None] | None = None) -> None:
        self.store = store
        self._on_reload = on_reload  # told "ok" or "failed" after each rebuild
        self.live = live
        self.base = base
        self.node = node
        self.poll = poll
        self.version = 0  # the store version the live filter holds
        self._failed = 0  # a version that did not build: not retried until a newer one
        self._now = now_ms
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._poll_forever(), name="chatd-words")

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def on_notice(self, body: Any) -> None:
        """A node-wide notice: a newer version means rebuild from the store."""
        if isinstance(body, dict) and isinstance(body.get("words"), int) \
                and body["words"] > self.version:
            await self.refresh()

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The store may be down for a while: keep serving the filter we have.
                log.warning("word-list poll failed: %s", type(exc).__name__)

    async def refresh(self) -> bool:
        """Rebuild from the store when its version moved; True when a new filter was swapped."""
        async with self._lock:
            version = await self.store.word_version()
            if version == self.version or version == self._failed:
                return False
            changes = await self.store.word_changes()
            version = max((c.version for c in changes), default=0)
            try:
                new = await asyncio.to_thread(effective_filter, self.base, changes)
            except Exception:
                log.exception("word-list version %d does not build; keeping version %d",
                              version, self.version)
                self._failed = version
                self._reloaded("failed")
                return False
            self.live.swap(new)
            self._reloaded("ok")
            log.info("word lists at version %d (%d entries, filter %s)", version, len(new),
                     new.version)
            self.version = version
            return True

    def _reloaded(self, result: str) -> None:
        if self._on_reload is not None:
            self._on_reload(result)

    async def change(self, actor: str, op: str, word: str, category: str = "",
                     action: str = "") -> int:
        """Validate, try, store and apply one change; returns the new store version."""
        change = validate_change(op, word, category, action)
        trial = fold([change])
        try:
            await asyncio.to_thread(
                self.live.current.with_changes, list(trial.add.values()), sorted(trial.remove),
                sorted(trial.allow_add), sorted(trial.allow_remove))
        except WordListError as exc:
            raise BadRequest(exc.reason, field="word") from None
        version = await self.store.add_word_change(WordChange(
            change.op, change.word, change.category, change.action, actor, self._now()))
        await self.refresh()
        await self.node.broadcast({"words": version})
        return version
