"""SQL text helpers that both databases share (no driver imports here)."""

from __future__ import annotations

__all__ = ["like_pattern"]


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with ``\\`` escaping the wildcards."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
