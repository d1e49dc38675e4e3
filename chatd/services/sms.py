"""SMS delivery behind one small interface; the development provider never leaves the machine.

Two kinds of message: a verification code (:meth:`SmsProvider.send_code`) and a plain text
(:meth:`SmsProvider.send_text`, marketing campaigns). No provider logs a full phone, a code
or a text.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from chatd.services.phones import mask_phone
from chatd.webhooks import WebhookError, Webhooks

__all__ = ["DevSmsProvider", "SmsError", "SmsProvider", "WebhookSmsProvider"]

log = logging.getLogger("chatd.sms")


class SmsError(Exception):
    """The provider could not take the message."""


class SmsProvider(Protocol):
    #: True only for the development provider: the reply may then carry ``dev_code``.
    reveals_code: bool

    async def send_code(self, phone: str, code: str, purpose: str, ttl: int) -> None: ...

    async def send_text(self, phone: str, text: str) -> None:
        """Send ``text`` as it is (the caller filtered it and added what the law asks)."""

    async def close(self) -> None: ...


class DevSmsProvider:
    """Sends nothing; the code goes back in the reply (``dev_code``), never into the log."""

    reveals_code = True

    async def send_code(self, phone: str, code: str, purpose: str, ttl: int) -> None:
        # No part of the code is logged: two digits are a 100-fold head start.
        log.info("dev SMS to %s (%s): code returned as dev_code, valid %ds",
                 mask_phone(phone), purpose, ttl)

    async def send_text(self, phone: str, text: str) -> None:
        # Kept nowhere: the text is the operator's, the phone a user's.
        log.info("dev SMS to %s: a text of %d characters, not sent", mask_phone(phone),
                 len(text))

    async def close(self) -> None:
        return None


class WebhookSmsProvider:
    """POSTs JSON to a gateway URL you run: ``{"phone", "code", "purpose", "ttl"}`` for a
    code, ``{"phone", "text", "purpose": "marketing"}`` for a text. A 2xx answer means taken."""

    reveals_code = False

    def __init__(self, url: str, timeout: float = 5.0,
                 webhooks: Webhooks | None = None) -> None:
        self.url = url
        self._http = webhooks if webhooks is not None else Webhooks(timeout)

    async def send_code(self, phone: str, code: str, purpose: str, ttl: int) -> None:
        await self._post({"phone": phone, "code": code, "purpose": purpose, "ttl": ttl})
        log.info("SMS to %s (%s) handed to the webhook", mask_phone(phone), purpose)

    async def send_text(self, phone: str, text: str) -> None:
        await self._post({"phone": phone, "text": text, "purpose": "marketing"})

    async def _post(self, body: dict[str, Any]) -> None:
        try:
            status = await self._http.post_json(self.url, body)
        except WebhookError as exc:
            raise SmsError(f"SMS webhook failed: {exc}") from None
        if not 200 <= status < 300:
            raise SmsError(f"SMS webhook answered HTTP {status}")

    async def close(self) -> None:
        await self._http.close()
