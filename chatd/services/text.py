"""The word filter as the services see it: one check per publish, before anything is stored."""

from __future__ import annotations

from dataclasses import dataclass

from chatd.errors import Filtered
from filters import LiveFilter

__all__ = ["Checked", "TextGate"]


@dataclass(frozen=True, slots=True)
class Checked:
    text: str  # what may be published: the original, or masked
    flagged: bool  # a `review` entry matched: publish, and queue for moderators
    category: str | None


class TextGate:
    """Applies the live filter's policy: block raises ``filtered``; mask rewrites; review flags."""

    def __init__(self, live: LiveFilter) -> None:
        self.live = live

    def check(self, text: str) -> Checked:
        verdict = self.live.current.check(text)
        if verdict.blocked:
            raise Filtered(verdict.category or "default")
        if not verdict.matches:
            return Checked(text, False, None)
        flagged = any(m.action == "review" for m in verdict.matches)
        # Only `mask` spans are hidden; `review` text is published as written.
        chars = list(text)
        for m in verdict.matches:
            if m.action == "mask":
                chars[m.start:m.end] = "*" * (m.end - m.start)
        return Checked("".join(chars), flagged, verdict.category)

    def publishable(self, text: str) -> str:
        return self.check(text).text

