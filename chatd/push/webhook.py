"""The ``webhook`` push provider: a signed POST to the operator's push gateway.

Chinese Android phones often have no FCM: an operator runs one gateway that speaks to APNs,
FCM, HMS, Mi, OPPO and vivo (or a service such as 个推/极光). chatd posts each notification as
JSON ``{vendor, token, user, title, body, data, fcm?, apns?}``, the last two in the vendors'
own request formats so the gateway can forward them as they are. The body is signed:
``X-Chatd-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with
``X-Chatd-Timestamp`` (ms), so the gateway can refuse forgeries and replays.

Answers: 2xx delivered; 404 or 410 the token is dead (forgotten, not retried); anything else,
or no answer, is retried with back-off by the outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import aiohttp

from chatd.push import Notification, PushRejected, apns_request, fcm_request
from chatd.store.base import PushDevice

__all__ = ["WebhookPushProvider", "sign"]


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


class WebhookPushProvider:
    def __init__(self, url: str, secret: bytes, timeout: float = 10.0) -> None:
        self.url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, device: PushDevice, note: Notification) -> None:
        payload: dict[str, object] = {"vendor": device.vendor, "token": device.token,
                                      "user": device.user_id, "title": note.title,
                                      "body": note.body, "data": note.data}
        if device.vendor == "fcm":
            payload["fcm"] = fcm_request(device.token, note)
        elif device.vendor == "apns":
            payload["apns"] = apns_request(note)
        body = json.dumps(payload, ensure_ascii=False).encode()
        stamp = str(int(time.time() * 1000))
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self.url, data=body, headers={
                    "Content-Type": "application/json", "X-Chatd-Timestamp": stamp,
                    "X-Chatd-Signature": sign(self._secret, stamp, body)}) as resp:
                if resp.status in (404, 410):
                    raise PushRejected(f"HTTP {resp.status}", permanent=True)
                if not 200 <= resp.status < 300:
                    raise PushRejected(f"HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PushRejected(type(exc).__name__) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
