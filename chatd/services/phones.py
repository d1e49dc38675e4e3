"""Phone numbers: normalise to E.164 and mask for logs."""

from __future__ import annotations

import re
from typing import Final

from chatd.errors import BadRequest

__all__ = ["mask_phone", "normalize_phone"]

_MAINLAND: Final = re.compile(r"1[3-9]\d{9}")
_E164: Final = re.compile(r"\+[1-9]\d{6,14}")
_SEPARATORS: Final = re.compile(r"[\s\-()]")


def normalize_phone(raw: str) -> str:
    """A bare mainland mobile number (13812345678) is +86; otherwise E.164 (+<digits>)."""
    text = _SEPARATORS.sub("", raw)
    if _MAINLAND.fullmatch(text):
        return "+86" + text
    if text.startswith("0086"):
        text = "+" + text[2:]
    if _E164.fullmatch(text):
        if text.startswith("+86") and not _MAINLAND.fullmatch(text[3:]):
            raise BadRequest("not a mainland mobile number", field="phone")
        return text
    raise BadRequest("phone must be a mainland mobile number or E.164 (+<digits>)",
                     field="phone")


def mask_phone(phone: str) -> str:
    """Keep the country code and the last 4 digits: +86138****5678 -> '+86*******5678'."""
    if len(phone) <= 7:
        return "*" * len(phone)
    head = 3 if phone.startswith("+86") else 2
    return phone[:head] + "*" * (len(phone) - head - 4) + phone[-4:]
