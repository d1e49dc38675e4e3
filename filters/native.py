"""The optional C extension (``filters/_native.c``, built by ``pip install``) and its setup.

The extension is a faster implementation of the pure-Python path in filters/core.py, never a
different one: same normalisation, same automaton semantics, same policy, same verdicts
(tests/filters/test_native.py compares them on random and adversarial text). Without a C
compiler at install time it is simply absent and every filter runs the pure-Python path.
"""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType

from filters.normalize import TABLE_LIMIT, dot_chars, is_invisible, table

__all__ = ["available", "module"]

_ext: ModuleType | None
try:
    from filters import _native as _ext
except ImportError:  # pragma: no cover - depends on the install
    _ext = None


def available() -> bool:
    """True if the C extension was built and can be imported."""
    return _ext is not None


@lru_cache(maxsize=1)
def module() -> ModuleType | None:
    """The extension with the shared translate table loaded into it (None if not built)."""
    if _ext is None:
        return None
    if _ext.TABLE_LIMIT != TABLE_LIMIT:  # pragma: no cover - a stale build
        return None
    _ext.set_table(table(), _flags())
    return _ext


def _flags() -> bytes:
    # 1: invisible (the word-boundary check skips these, verdict._boundary_before/_after);
    # 2: a dot (kept as a decimal point right between two digits, normalize.decimal_points).
    dots = dot_chars()
    return bytes(is_invisible(ch) | (2 if ch in dots else 0)
                 for ch in map(chr, range(TABLE_LIMIT)))
