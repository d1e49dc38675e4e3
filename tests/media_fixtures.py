"""A real S3 for the test suite: moto's standalone server on 127.0.0.1 and a free port.

``s3_endpoint`` (session scope) starts one ``ThreadedMotoServer`` in this process and gives its
URL; :func:`fresh_s3_storage` makes an :class:`S3MediaStorage` on a bucket no other test uses
(``start()`` creates it). Import the fixture into a test module, as ``tests.pg`` does::

    from tests.media_fixtures import fresh_s3_storage, s3_endpoint  # noqa: F401

    async def test_x(s3_endpoint: str) -> None:
        storage = fresh_s3_storage(s3_endpoint)
        await storage.start()
        try: ...
        finally: await storage.close()
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from chatd.media.s3 import S3MediaStorage

__all__ = ["S3_ACCESS_KEY", "S3_SECRET_KEY", "fresh_s3_storage", "s3_endpoint"]

# moto takes any credentials; fixed ones keep botocore away from the environment's.
S3_ACCESS_KEY = "chatd-test"
S3_SECRET_KEY = "chatd-test-secret"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def fresh_s3_storage(endpoint: str, prefix: str = "") -> S3MediaStorage:
    """A storage on a new bucket (created by ``start()``), not started yet."""
    return S3MediaStorage(endpoint, f"chatd-test-{secrets.token_hex(6)}", S3_ACCESS_KEY,
                          S3_SECRET_KEY, prefix=prefix)
