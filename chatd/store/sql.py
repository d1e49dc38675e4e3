"""SQL text helpers that both databases share (no driver imports here)."""

from __future__ import annotations

from typing import Final

__all__ = ["MIN_FULLTEXT", "fts_phrase", "like_pattern", "prefix_pattern", "searchable"]

#: Trigram indexes find substrings of at least this many characters.
MIN_FULLTEXT: Final = 3


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with ``\\`` escaping the wildcards."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def prefix_pattern(text: str) -> str:
    """A LIKE pattern matching what starts with ``text`` (``\\`` escapes the wildcards)."""
    return like_pattern(text)[1:]


def searchable(text: str) -> bool:
    """A query a person means: at least one letter or digit (never punctuation alone)."""
    return any(ch.isalnum() for ch in text)


def fts_phrase(text: str) -> str:
    """``text`` as one FTS5 phrase: matched as written, never parsed as query syntax."""
    return '"' + text.replace('"', '""') + '"'
