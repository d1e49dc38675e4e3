"""Persistence: the :class:`Store` contract and its implementations (SQLite embedded default)."""

from __future__ import annotations

from chatd.store.base import (
    TOMBSTONE,
    AppendResult,
    AuditEntry,
    CodeTry,
    Consent,
    ConvId,
    ConvSummary,
    DuplicateError,
    Message,
    Post,
    Report,
    ReviewItem,
    SendContext,
    SendRefused,
    SessionRow,
    SmsCodeRow,
    Store,
    StoreError,
    User,
    UserId,
    WordChange,
)
from chatd.store.sqlite import SQLiteStore

__all__ = [
    "TOMBSTONE",
    "AppendResult",
    "AuditEntry",
    "CodeTry",
    "Consent",
    "ConvId",
    "ConvSummary",
    "DuplicateError",
    "Message",
    "Post",
    "Report",
    "ReviewItem",
    "SQLiteStore",
    "SendContext",
    "SendRefused",
    "SessionRow",
    "SmsCodeRow",
    "Store",
    "StoreError",
    "User",
    "UserId",
    "WordChange",
]
