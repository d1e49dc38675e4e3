"""The automaton protocol: one small interface, one file per engine.

An engine is built from a list of distinct non-empty patterns and reports matches as
``(pattern_index, start, end)`` in code points of the scanned string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

__all__ = ["Engine", "EngineName", "build_engine"]

EngineName = Literal["rs", "pyahocorasick"]


class Engine(Protocol):
    def any(self, text: str) -> bool:
        """True if at least one pattern occurs (the cheap common path)."""
        ...

    def scan(self, text: str) -> list[tuple[int, int, int]]:
        """Every occurrence, overlapping ones included."""
        ...


class _Empty:
    def any(self, text: str) -> bool:
        return False

    def scan(self, text: str) -> list[tuple[int, int, int]]:
        return []


def build_engine(name: EngineName, patterns: Sequence[str]) -> Engine:
    if not patterns:
        return _Empty()
    if name == "rs":
        from filters.engine_rs import RsEngine

        return RsEngine(patterns)
    if name == "pyahocorasick":
        from filters.engine_pyahocorasick import PyAhoCorasickEngine

        return PyAhoCorasickEngine(patterns)
    raise ValueError(f"unknown engine {name!r} (expected 'rs' or 'pyahocorasick')")
