"""One contract suite for every MediaStorage: the directory one and S3 (a real moto server)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatd.media import DirMediaStorage, InvalidMediaKey, MediaMissing, MediaStorage
from chatd.media.s3 import S3MediaStorage
from tests.media_fixtures import fresh_s3_storage, s3_endpoint  # noqa: F401

BAD_KEYS = ["", "/abs", "a/../b", "..", "a/./b", "a//b", "a/", "a b", "a.jpg", "ä", "a\\b",
            "a\x00b", "x" * 201, "%2e%2e"]


@pytest.fixture(params=["dir", "s3", "s3-prefixed"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MediaStorage]:
    store: MediaStorage
    if request.param == "dir":
        store = DirMediaStorage(tmp_path / "media")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        store = fresh_s3_storage(endpoint, prefix="p/" if request.param == "s3-prefixed" else "")
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def test_put_get_and_overwrite(storage: MediaStorage) -> None:
    await storage.put("ab12cd/orig", b"hello world", "image/jpeg")
    assert await storage.get("ab12cd/orig") == (b"hello world", 11)
    await storage.put("ab12cd/orig", b"bye", "image/jpeg")
    assert await storage.get("ab12cd/orig") == (b"bye", 3)


async def test_a_key_and_its_children_live_side_by_side(storage: MediaStorage) -> None:
    await storage.put("ab12", b"parent", "image/jpeg")
    await storage.put("ab12/thumb", b"child", "image/jpeg")
    await storage.put("Ab12", b"other case", "image/jpeg")
    assert (await storage.get("ab12"))[0] == b"parent"
    assert (await storage.get("ab12/thumb"))[0] == b"child"
    assert (await storage.get("Ab12"))[0] == b"other case"


async def test_ranges(storage: MediaStorage) -> None:
    data = bytes(range(256)) * 4
    await storage.put("r1", data, "audio/ogg")
    assert await storage.get("r1", 0, 10) == (data[:10], 1024)
    assert await storage.get("r1", 1000) == (data[1000:], 1024)
    assert await storage.get("r1", 1000, 5000) == (data[1000:], 1024)  # end is clamped
    assert await storage.get("r1", 512, 513) == (data[512:513], 1024)
    assert await storage.get("r1", 7, 7) == (b"", 1024)
    assert await storage.get("r1", 1024) == (b"", 1024)
    assert await storage.get("r1", 5000, 6000) == (b"", 1024)
    for start, end in ((-1, None), (5, 4)):
        with pytest.raises(ValueError):
            await storage.get("r1", start, end)


async def test_empty_object(storage: MediaStorage) -> None:
    await storage.put("e1", b"", "image/png")
    assert await storage.get("e1") == (b"", 0)
    assert await storage.get("e1", 0, 10) == (b"", 0)
    assert await storage.get("e1", 3) == (b"", 0)


async def test_missing_and_delete(storage: MediaStorage) -> None:
    with pytest.raises(MediaMissing) as caught:
        await storage.get("nothing/here")
    assert caught.value.key == "nothing/here"
    with pytest.raises(MediaMissing):
        await storage.get("nothing/here", 5, 10)
    with pytest.raises(MediaMissing):
        await storage.get("nothing/here", 5, 5)
    await storage.put("d1", b"1", "image/jpeg")
    await storage.put("d1/thumb", b"2", "image/jpeg")
    await storage.put("d2", b"3", "image/jpeg")
    await storage.delete(["d1", "d1/thumb", "never-there"])
    await storage.delete(["d1"])  # twice is fine
    await storage.delete([])
    for key in ("d1", "d1/thumb"):
        with pytest.raises(MediaMissing):
            await storage.get(key)
    assert (await storage.get("d2"))[0] == b"3"


async def test_invalid_keys_are_refused_before_any_io(storage: MediaStorage) -> None:
    for key in BAD_KEYS:
        with pytest.raises(InvalidMediaKey):
            await storage.put(key, b"x", "image/jpeg")
        with pytest.raises(InvalidMediaKey):
            await storage.get(key)
        with pytest.raises(InvalidMediaKey):
            await storage.delete(["fine", key])
    await storage.put("A-z_0-9/x-y_z", b"ok", "image/jpeg")


async def test_large_object_round_trip(storage: MediaStorage) -> None:
    data = os.urandom(5 * 1024 * 1024)
    await storage.put("big0/orig", data, "image/jpeg")
    assert await storage.get("big0/orig") == (data, len(data))
    middle = len(data) // 2
    assert await storage.get("big0/orig", middle, middle + 65536) == (
        data[middle : middle + 65536], len(data))


async def test_concurrent_puts_of_one_key_leave_one_whole_object(storage: MediaStorage) -> None:
    blobs = [bytes([i]) * 200_000 for i in range(8)]
    await asyncio.gather(*(storage.put("race", blob, "image/jpeg") for blob in blobs))
    got, size = await storage.get("race")
    assert got in blobs and size == len(got)


# -- the directory implementation ------------------------------------------------------------

async def test_dir_layout_is_sharded_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = DirMediaStorage(tmp_path / "m")
    await store.start()
    await store.put("ab12/thumb", b"t", "image/jpeg")
    await store.put("cd34", b"o", "image/jpeg")
    files = sorted(p.relative_to(tmp_path / "m").as_posix()
                   for p in (tmp_path / "m").rglob("*") if p.is_file())
    assert files == ["ab/ab12~thumb", "cd/cd34"]


async def test_dir_put_that_fails_keeps_the_old_object(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = DirMediaStorage(tmp_path / "m")
    await store.put("ab12", b"old", "image/jpeg")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        await store.put("ab12", b"new", "image/jpeg")
    monkeypatch.undo()
    assert await store.get("ab12") == (b"old", 3)
    assert [p.name for p in (tmp_path / "m" / "ab").iterdir()] == ["ab12"]


async def test_dir_range_reads_do_not_read_the_whole_file(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store = DirMediaStorage(tmp_path / "m")
    await store.put("big1", b"\0" * 3_000_000, "audio/mp4")
    asked: list[int] = []
    real_open = Path.open

    def spying_open(self: Path, *args: object, **kwargs: object) -> object:
        f = real_open(self, *args, **kwargs)  # type: ignore[call-overload]
        real_read = f.read

        def read(n: int = -1) -> bytes:
            asked.append(n)
            return real_read(n)  # type: ignore[no-any-return]

        f.read = read
        return f

    monkeypatch.setattr(Path, "open", spying_open)
    assert await store.get("big1", 10, 20) == (b"\0" * 10, 3_000_000)
    assert asked == [10]


async def test_dir_start_makes_the_root(tmp_path: Path) -> None:
    store = DirMediaStorage(tmp_path / "a" / "b")
    await store.start()
    assert (tmp_path / "a" / "b").is_dir()


# -- S3 specifics ----------------------------------------------------------------------------

async def test_s3_keeps_the_content_type_and_the_prefix(s3_endpoint: str) -> None:  # noqa: F811
    store = fresh_s3_storage(s3_endpoint, prefix="media/")
    await store.start()
    try:
        await store.put("ab12/thumb", b"x", "image/png")
        head = await store._s3().head_object(Bucket=store.bucket, Key="media/ab12/thumb")
        assert head["ContentType"] == "image/png"
        second = S3MediaStorage(s3_endpoint, store.bucket, "k", "s")  # the bucket exists now
        await second.start()
        await second.close()
    finally:
        await store.close()
    assert "secret" not in repr(store) and "chatd-test-secret" not in repr(store)


async def test_s3_used_before_start_says_so(s3_endpoint: str) -> None:  # noqa: F811
    with pytest.raises(RuntimeError, match="before start"):
        await fresh_s3_storage(s3_endpoint).get("x")
