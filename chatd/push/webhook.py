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
import time

from chatd.push import Notification, PushRejected, apns_request, fcm_request
from chatd.store.base import PushDevice
from chatd.webhooks import WebhookError, Webhooks

__all__ = ["WebhookPushProvider", "sign"]


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


class WebhookPushProvider:
    def __init__(self, url: str, secret: bytes, webhooks: Webhooks | None = None) -> None:
        self.url = url
        self._secret = secret
        self._http = webhooks if webhooks is not None else Webhooks(timeout=10.0)

    def _signed(self, body: bytes) -> dict[str, str]:
        stamp = str(int(time.time() * 1000))
        return {"X-Chatd-Timestamp": stamp, "X-Chatd-Signature": sign(self._secret, stamp, body)}

    async def send(self, device: PushDevice, note: Notification) -> None:
        payload: dict[str, object] = {"vendor": device.vendor, "token": device.token,
                                      "user": device.user_id, "title": note.title,
                                      "body": note.body, "data": note.data}
        if device.vendor == "fcm":
            payload["fcm"] = fcm_request(device.token, note)
        elif device.vendor == "apns":
            payload["apns"] = apns_request(note)
        try:
            status = await self._http.post_json(self.url, payload, sign=self._signed)
        except WebhookError as exc:
            raise PushRejected(str(exc)) from exc
        if status in (404, 410):
            raise PushRejected(f"HTTP {status}", permanent=True)
        if not 200 <= status < 300:
            raise PushRejected(f"HTTP {status}")

    async def close(self) -> None:
        await self._http.close()
