"""The automaton protocol: one small interface, one file per engine.

An engine is built from a list of distinct non-empty patterns and reports matches as
``(pattern_index, start, end)`` in code points of the scanned string.

``native`` is the C extension's automaton (filters/_native.c). A filter built with it checks
messages in C end to end; where the extension is not built, ``native`` falls back to
ahocorasick_rs and the pure-Python path, with the same verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

__all__ = ["ENGINES", "Engine", "EngineName", "build_engine"]

EngineName = Literal["native", "rs", "pyahocorasick"]
ENGINES: tuple[EngineName, ...] = ("native", "rs", "pyahocorasick")


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
    if name == "native":
        from filters import native

        ext = native.module()
        if ext is not None:
            # Always a real automaton, even empty: the C matcher takes only its own type.
            engine: Engine = ext.Automaton(patterns)
            return engine
        name = "rs"
    if not patterns:
        return _Empty()
    if name == "rs":
        from filters.engine_rs import RsEngine

        return RsEngine(patterns)
    if name == "pyahocorasick":
        from filters.engine_pyahocorasick import PyAhoCorasickEngine

        return PyAhoCorasickEngine(patterns)
    raise ValueError(f"unknown engine {name!r} (expected 'native', 'rs' or 'pyahocorasick')")
