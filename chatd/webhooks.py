"""Outbound webhooks: JSON POSTs to URLs the operator runs (SMS gateway, account verifier).

One ``aiohttp`` client session per :class:`Webhooks`, made on first use inside the running
loop and reused (connection pooling), closed by :meth:`Webhooks.close`. Nothing here logs a
body: they hold phones and texts. The services see only :meth:`Webhooks.post_json`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

__all__ = ["WebhookError", "Webhooks"]


class WebhookError(Exception):
    """The receiver could not be reached or did not answer in time."""


class Webhooks:
    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "chatd"})
        return self._session

    async def post_json(self, url: str, body: Mapping[str, Any],
                        headers: Mapping[str, str] | None = None,
                        sign: Callable[[bytes], Mapping[str, str]] | None = None) -> int:
        """POST ``body`` as JSON; the HTTP status. ``sign`` gives headers computed over the
        exact bytes sent (a signature). Raises :class:`WebhookError` when there is no answer
        (refused, reset, timed out); any status is an answer."""
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {}),
                       **(sign(data) if sign is not None else {})}
        try:
            async with self._client().post(url, data=data, headers=all_headers) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise WebhookError(type(exc).__name__) from None

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
