"""Where media bytes live: the contract, and the directory implementation.

Contract of every :class:`MediaStorage`:

- keys are chosen by the caller, opaque, case-sensitive, ``/``-separated segments of
  ``[A-Za-z0-9_-]`` (at most :data:`MAX_KEY_LENGTH` characters); anything else raises
  :class:`InvalidMediaKey` before any I/O;
- ``put`` is atomic: a reader sees the old object or the whole new one, never part of one;
  a put that raises leaves the old object (if any) in place;
- ``get(key, start, end)`` returns ``(data[start:end], total size)`` with ``end`` exclusive
  and clamped to the size (``None``: to the end); ``start`` at or past the end gives ``b""``;
  an absent key raises :class:`MediaMissing`; a range never reads the whole object;
- ``delete`` is idempotent: absent keys are fine;
- ``start`` before first use, ``close`` at shutdown.

``content_type`` is stored where the backend can keep it (S3 does; a directory does not): the
caller keeps its own record of it. The S3 implementation is in :mod:`chatd.media.s3`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final, Protocol

from chatd.media.errors import InvalidMediaKey, MediaMissing

__all__ = ["MAX_KEY_LENGTH", "DirMediaStorage", "MediaStorage", "check_key", "check_range"]

MAX_KEY_LENGTH: Final = 200  # a directory entry must stay under 255 bytes
_KEY: Final = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")
_TMP_PREFIX: Final = ".tmp-"  # keys cannot start with ".": no temp file is ever a key


class MediaStorage(Protocol):
    async def start(self) -> None: ...
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...
    async def get(self, key: str, start: int = 0, end: int | None = None) -> tuple[bytes, int]: ...
    async def delete(self, keys: Iterable[str]) -> None: ...
    async def close(self) -> None: ...


def check_key(key: str) -> str:
    """``key`` if it is a valid storage key, else :class:`InvalidMediaKey`."""
    if len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise InvalidMediaKey(f"invalid media key {key[:40]!r}")
    return key


def check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"bad range [{start}, {end})")


class DirMediaStorage:
    """One file per key under ``root``, in a directory per first two characters of the key.

    ``ab12/thumb`` is stored as ``root/ab/ab12~thumb``: the ``/`` of a key becomes ``~`` so that
    ``ab12`` and ``ab12/thumb`` can both exist. A put writes a temp file in the same directory,
    fsyncs it, renames it over the old one and fsyncs the directory, so the object survives a
    crash once ``put`` returns. File work runs in a worker thread, never on the event loop.
    On a case-insensitive file system, keys differing only in case collide.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key.replace("/", "~")

    async def start(self) -> None:
        # Fail at start-up, not at the first upload, when the root cannot be made.
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        pass

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._put, self.path_of(key), data)

    async def get(self, key: str, start: int = 0, end: int | None = None) -> tuple[bytes, int]:
        check_range(start, end)
        return await asyncio.to_thread(self._get, key, self.path_of(key), start, end)

    async def delete(self, keys: Iterable[str]) -> None:
        paths = [self.path_of(key) for key in keys]
        if paths:
            await asyncio.to_thread(self._delete, paths)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)

    @staticmethod
    def _get(key: str, path: Path, start: int, end: int | None) -> tuple[bytes, int]:
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise MediaMissing(key) from None
        with f:
            size = os.fstat(f.fileno()).st_size
            stop = size if end is None else min(end, size)
            if start >= stop:
                return b"", size
            f.seek(start)
            return f.read(stop - start), size

    @staticmethod
    def _delete(paths: list[Path]) -> None:
        dirs = set()
        for path in paths:
            path.unlink(missing_ok=True)
            dirs.add(path.parent)
        for d in dirs:
            # Make the unlink durable too; shard directories stay (a put may be using one).
            with contextlib.suppress(FileNotFoundError):
                _fsync_dir(d)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
