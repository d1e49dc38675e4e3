"""Media storage in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, moto), with aiobotocore.

The contract is :class:`chatd.media.storage.MediaStorage`'s. S3 gives the atomic put by itself
(an object is visible whole or not at all); a range read is one GET with a ``Range`` header.
This is the only module that imports aiobotocore or botocore, and only in :meth:`start`, so
chatd runs without them (``pip install 'chatd[s3]'`` brings them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, Final

from chatd.media.errors import MediaMissing
from chatd.media.storage import check_key, check_range

__all__ = ["S3MediaStorage"]

_DELETE_BATCH: Final = 1000  # DeleteObjects takes at most 1000 keys
_MISSING: Final = frozenset({"NoSuchKey", "404", "NotFound"})


class S3MediaStorage:
    """Objects ``prefix + key`` in ``bucket``; the bucket is created on :meth:`start` if absent.

    Path-style addressing, so any endpoint works without bucket DNS names.
    """

    def __init__(self, endpoint_url: str, bucket: str, access_key: str, secret_key: str,
                 region: str = "us-east-1", prefix: str = "") -> None:
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.region = region
        self.prefix = prefix
        self._credentials = (access_key, secret_key)
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    def __repr__(self) -> str:  # never the secret
        return f"S3MediaStorage({self.endpoint_url!r}, {self.bucket!r}, prefix={self.prefix!r})"

    async def start(self) -> None:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        access_key, secret_key = self._credentials
        config = AioConfig(s3={"addressing_style": "path"}, signature_version="s3v4",
                           retries={"max_attempts": 3, "mode": "standard"})
        stack = contextlib.AsyncExitStack()
        self._client = await stack.enter_async_context(get_session().create_client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, config=config))
        self._stack = stack
        try:
            await self._ensure_bucket()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._s3().put_object(Bucket=self.bucket, Key=self._name(key), Body=data,
                                    ContentType=content_type)

    async def get(self, key: str, start: int = 0, end: int | None = None) -> tuple[bytes, int]:
        from botocore.exceptions import ClientError

        check_range(start, end)
        name = self._name(key)
        if end == start:  # no Range header means zero bytes
            return b"", await self._size(key, name)
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": name}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            resp = await self._s3().get_object(**args)
        except ClientError as exc:
            code = _code(exc)
            if code in _MISSING:
                raise MediaMissing(key) from None
            if code == "InvalidRange":  # start at or past the end
                return b"", await self._size(key, name)
            raise
        async with resp["Body"] as body:
            data: bytes = await body.read()
        content_range = resp.get("ContentRange")  # "bytes 0-9/1234"
        total = int(content_range.rpartition("/")[2]) if content_range else len(data)
        return data, total

    async def delete(self, keys: Iterable[str]) -> None:
        names = [self._name(key) for key in keys]
        for i in range(0, len(names), _DELETE_BATCH):
            batch = [{"Key": name} for name in names[i : i + _DELETE_BATCH]]
            resp = await self._s3().delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            errors = [e for e in resp.get("Errors", []) if e.get("Code") not in _MISSING]
            if errors:
                raise OSError(f"S3 delete failed for {len(errors)} keys: {errors[0]}")

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _s3(self) -> Any:
        if self._client is None:
            raise RuntimeError("S3MediaStorage used before start() or after close()")
        return self._client

    async def _size(self, key: str, name: str) -> int:
        from botocore.exceptions import ClientError

        try:
            head = await self._s3().head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise MediaMissing(key) from None
            raise
        return int(head["ContentLength"])

    async def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        s3 = self._s3()
        try:
            await s3.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        args: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":  # us-east-1 refuses its own name as a constraint
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            await s3.create_bucket(**args)
        except ClientError as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":  # a race with another node
                raise


def _code(exc: Exception) -> str:
    response: Any = getattr(exc, "response", {})
    return str(response.get("Error", {}).get("Code", ""))
