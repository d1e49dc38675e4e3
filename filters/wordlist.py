"""Word-list entries and the line-based file format (see docs/filters.md).

```
# comment
@category porn          directives apply to the lines after them
@action block           block | mask | review
word
word<TAB>category<TAB>action   per-line override
@allow                  the rest of the file is allow-list words
```
A file with no directive is a plain list: category ``default``, action ``block``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

__all__ = [
    "ACTIONS",
    "MAX_ENTRIES",
    "MAX_FILE_BYTES",
    "MAX_WORD_CHARS",
    "Action",
    "Entry",
    "WordListError",
    "iter_list_files",
    "load_paths",
    "parse_text",
]

Action = Literal["block", "mask", "review"]
# Strength order: the verdict takes the strongest action hit.
ACTIONS: dict[str, int] = {"review": 1, "mask": 2, "block": 3}
# Two forms of one key (法.轮.功 and 法轮功) merge to the stronger by this order instead:
# a word someone listed for human review keeps going to the reviewers rather than being
# quietly starred out by a mask listed in another form.
MERGE_ORDER: dict[str, int] = {"mask": 1, "review": 2, "block": 3}

MAX_WORD_CHARS = 64
MAX_ENTRIES = 2_000_000
MAX_FILE_BYTES = 64 * 1024 * 1024
_CATEGORY = re.compile(r"[a-z0-9_./-]{1,32}")


class WordListError(Exception):
    """A word-list file (or entry) that cannot be loaded; names the file and line."""

    def __init__(self, path: str | Path | None, line: int | None, message: str) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.reason = message
        where = f"{self.path or '<entries>'}:{line}" if line else (self.path or "<entries>")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One listed word with its policy."""

    word: str
    category: str = "default"
    action: Action = "block"


def check_entry(entry: Entry, path: str | Path | None = None, line: int | None = None) -> None:
    if not isinstance(entry.word, str) or not entry.word.strip():
        raise WordListError(path, line, "empty entry")
    if len(entry.word) > MAX_WORD_CHARS:
        raise WordListError(
            path, line, f"entry longer than {MAX_WORD_CHARS} characters: {entry.word[:20]!r}…"
        )
    if entry.action not in ACTIONS:
        raise WordListError(path, line, f"unknown action {entry.action!r} (block|mask|review)")
    if not _CATEGORY.fullmatch(entry.category):
        raise WordListError(
            path, line, f"bad category {entry.category!r} (1-32 of a-z 0-9 _ . / -)"
        )


def _unescape(word: str) -> str:
    # A leading backslash lets a word start with '#' or '@'.
    return word[1:] if word[:1] == "\\" else word


def parse_text(
    text: str, path: str | Path | None = None
) -> tuple[list[tuple[Entry, int]], list[tuple[str, int]]]:
    """Parse one file's text into (entries with line numbers, allow words with line numbers)."""
    entries: list[tuple[Entry, int]] = []
    allow: list[tuple[str, int]] = []
    category, action, in_allow = "default", "block", False
    if text.startswith("\ufeff"):
        text = text[1:]
    for no, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("@"):
            key, _, value = stripped[1:].partition(" ")
            value = value.strip()
            if key == "category" and value:
                category = value
                check_entry(Entry("x", category, "block"), path, no)
            elif key == "action" and value in ACTIONS:
                action = value
            elif key == "allow" and not value:
                in_allow = True
            else:
                raise WordListError(path, no, f"unknown or malformed directive {stripped!r}")
            continue
        if "\x00" in line:
            raise WordListError(path, no, "NUL byte: not a text word list")
        if in_allow:
            word = _unescape(stripped)
            check_entry(Entry(word), path, no)
            allow.append((word, no))
            continue
        if "\t" in line:
            fields = [f.strip() for f in line.split("\t")]
            if len(fields) != 3:
                raise WordListError(
                    path, no, f"expected word<TAB>category<TAB>action, got {len(fields)} fields"
                )
            entry = Entry(_unescape(fields[0]), fields[1], cast(Action, fields[2]))
        else:
            entry = Entry(_unescape(stripped), category, cast(Action, action))
        check_entry(entry, path, no)
        entries.append((entry, no))
        if len(entries) > MAX_ENTRIES:
            raise WordListError(path, no, f"more than {MAX_ENTRIES} entries")
    return entries, allow


def read_list_file(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise WordListError(path, None, f"file larger than {MAX_FILE_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise WordListError(path, None, f"cannot read: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise WordListError(path, line, "not valid UTF-8 (binary file?)") from exc


def iter_list_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files as given; folders expand to their ``*.txt`` files (sorted, not recursive),
    skipping LICENSE* and README* so a downloaded list folder loads as it is."""
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.glob("*.txt")):
                if not f.name.upper().startswith(("LICENSE", "README")):
                    yield f
        elif p.exists():
            yield p
        else:
            raise WordListError(p, None, "no such file or folder")


Located = tuple[str, Path, int]  # (word or entry, file, line) for error messages


def load_paths(
    paths: Iterable[str | Path],
) -> tuple[list[tuple[Entry, Path, int]], list[tuple[str, Path, int]]]:
    """Every entry and allow word of the given files and folders, with where it came from."""
    entries: list[tuple[Entry, Path, int]] = []
    allow: list[tuple[str, Path, int]] = []
    for f in iter_list_files(paths):
        es, al = parse_text(read_list_file(f), f)
        entries.extend((e, f, no) for e, no in es)
        allow.extend((w, f, no) for w, no in al)
        if len(entries) > MAX_ENTRIES:
            raise WordListError(f, None, f"more than {MAX_ENTRIES} entries in total")
    return entries, allow
