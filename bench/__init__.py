"""Benchmarks, the load generator, soak and fault injection (they need the ``bench`` extras)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BENCH_EXTRAS", "INSTALL_HINT", "bench_extras"]

# The import names of the optional dependencies of ``[project.optional-dependencies] bench``.
BENCH_EXTRAS = frozenset({"picows", "psutil", "numpy", "matplotlib", "snownlp", "jieba",
                          "socketio"})
INSTALL_HINT = ".venv/bin/pip install -e '.[bench]' (or make dev)"


@contextmanager
def bench_extras(prog: str, is_main: bool) -> Iterator[None]:
    """Around a benchmark's imports: when run as a program (``is_main``) without the bench
    extras, one line that names the missing module and the install command, exit status 2.
    Imported as a library, the ``ModuleNotFoundError`` goes to the importer unchanged."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if not is_main or (exc.name or "").partition(".")[0] not in BENCH_EXTRAS:
            raise
        print(f"{prog}: error: module {exc.name!r} is missing: the bench extras are not "
              f"installed; install them with {INSTALL_HINT}", file=sys.stderr)
        raise SystemExit(2) from None
