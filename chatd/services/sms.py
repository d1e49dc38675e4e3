"""SMS delivery behind one small interface; the development provider never leaves the machine."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from typing import Protocol

from chatd.services.phones import mask_phone

__all__ = ["DevSmsProvider", "SmsError", "SmsProvider", "WebhookSmsProvider"]

log = logging.getLogger("chatd.sms")


class SmsError(Exception):
    """The provider could not take the message."""


class SmsProvider(Protocol):
    #: True only for the development provider: the reply may then carry ``dev_code``.
    reveals_code: bool

    async def send_code(self, phone: str, code: str, purpose: str, ttl: int) -> None: ...


class DevSmsProvider:
    """Sends nothing; the code goes back in the reply (``dev_code``), never into the log."""

    reveals_code = True

    async def send_code(self, phone: str, code: str, purpose: str, ttl: int) -> None:
        # No part of the code is logged: two digits are a 100-fold head start.
        log.info("dev SMS to %s (%s): code returned as dev_code, valid %ds",
                 mask_phone(phone), purpose, ttl)


class WebhookSmsProvider:
    """POSTs ``{"phone", "code", "purpose", "ttl"}`` as JSON to a gateway URL you run."""

    reveals_code = False

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout

    async def send_code(self, phone: str, code: str, purpose: str, ttl: int) -> None:
        body = json.dumps({"phone": phone, "code": code, "purpose": purpose, "ttl": ttl}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})

        def post() -> int:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return int(resp.status)

        try:
            status = await asyncio.to_thread(post)
        except OSError as exc:
            raise SmsError(f"SMS webhook failed: {type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise SmsError(f"SMS webhook answered HTTP {status}")
        log.info("SMS to %s (%s) handed to the webhook", mask_phone(phone), purpose)
