"""pyahocorasick engine (C): the client's named engine, kept fully supported."""

from __future__ import annotations

from collections.abc import Sequence

import ahocorasick

__all__ = ["PyAhoCorasickEngine"]


class PyAhoCorasickEngine:
    __slots__ = ("_ac",)

    def __init__(self, patterns: Sequence[str]) -> None:
        ac = ahocorasick.Automaton()
        for i, p in enumerate(patterns):
            ac.add_word(p, (i, len(p)))
        ac.make_automaton()
        self._ac = ac

    def any(self, text: str) -> bool:
        for _ in self._ac.iter(text):
            return True
        return False

    def scan(self, text: str) -> list[tuple[int, int, int]]:
        return [(i, end + 1 - n, end + 1) for end, (i, n) in self._ac.iter(text)]
