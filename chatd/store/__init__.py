"""Persistence: the :class:`Store` contract and its implementations (SQLite embedded default)."""

from __future__ import annotations

from chatd.store.base import (
    AppendResult,
    ConvId,
    ConvSummary,
    DuplicateError,
    Message,
    SendContext,
    SessionRow,
    SmsCodeRow,
    Store,
    StoreError,
    User,
    UserId,
)
from chatd.store.sqlite import SQLiteStore

__all__ = [
    "AppendResult",
    "ConvId",
    "ConvSummary",
    "DuplicateError",
    "Message",
    "SQLiteStore",
    "SendContext",
    "SessionRow",
    "SmsCodeRow",
    "Store",
    "StoreError",
    "User",
    "UserId",
]
