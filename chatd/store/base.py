"""The storage contract: one :class:`Store` protocol, an implementation per database.

Every method is a coroutine; implementations must not block the event loop. Times are integer
milliseconds since the epoch. Writes that a method returns from are durably committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NewType, Protocol

__all__ = [
    "AppendResult",
    "ConvId",
    "ConvSummary",
    "DuplicateError",
    "Message",
    "SendContext",
    "SessionRow",
    "SmsCodeRow",
    "Store",
    "StoreError",
    "User",
    "UserId",
]

UserId = NewType("UserId", str)
ConvId = NewType("ConvId", str)
ConvKind = Literal["group", "direct"]


class StoreError(Exception):
    """The store could not do what was asked (disk full, database down, constraint)."""


class DuplicateError(StoreError):
    """A unique constraint refused the write (e.g. the phone is registered already)."""


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    phone: str
    pw_hash: str
    birthdate: str
    gender: str
    nickname: str
    bio: str
    role: str
    created_at: int
    interests: tuple[str, ...]
    banned_until: int = 0
    muted_until: int = 0

    def public(self) -> dict[str, object]:
        """What other users may see: never the phone or the birthdate."""
        return {"id": self.id, "nickname": self.nickname, "bio": self.bio,
                "gender": self.gender, "interests": list(self.interests)}


@dataclass(frozen=True, slots=True)
class SessionRow:
    token_hash: bytes
    user_id: UserId
    device: str
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class SmsCodeRow:
    id: int
    phone: str
    purpose: str
    code_hash: bytes
    created_at: int
    expires_at: int
    attempts: int
    used: bool


@dataclass(frozen=True, slots=True)
class Message:
    conv: ConvId
    id: str
    seq: int
    sender: UserId
    body: str
    ts: int

    def wire(self) -> dict[str, object]:
        return {"t": "msg", "conv": self.conv, "id": self.id, "seq": self.seq,
                "from": self.sender, "body": self.body, "ts": self.ts}


@dataclass(frozen=True, slots=True)
class AppendResult:
    message: Message
    # False when a retried client id found the first result instead of storing a new message.
    created: bool


@dataclass(frozen=True, slots=True)
class ConvSummary:
    id: ConvId
    kind: ConvKind
    last_seq: int
    read_seq: int
    peer: UserId | None
    closed: bool


@dataclass(frozen=True, slots=True)
class SendContext:
    """Everything ``msg.send`` must know, read in one round trip."""

    kind: ConvKind
    closed: bool
    member: bool
    # 1:1 only: the other member, and whether they blocked the sender.
    peer: UserId | None
    peer_blocked_sender: bool
    muted_until: int


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # Users
    async def create_user(self, user: User, group_convs: Sequence[ConvId]) -> None: ...
    async def get_user(self, user_id: UserId) -> User | None: ...
    async def get_user_by_phone(self, phone: str) -> User | None: ...
    async def set_password(self, user_id: UserId, pw_hash: str) -> None: ...
    async def set_phone(self, user_id: UserId, phone: str) -> None: ...
    async def update_profile(self, user_id: UserId, nickname: str | None, bio: str | None,
                             interests: Sequence[str] | None,
                             group_convs: Sequence[ConvId] | None) -> User: ...

    # Sessions
    async def create_session(self, row: SessionRow) -> None: ...
    async def get_session(self, token_hash: bytes, now: int) -> SessionRow | None: ...
    async def delete_session(self, token_hash: bytes) -> None: ...
    async def delete_user_sessions(self, user_id: UserId,
                                   keep: bytes | None = None) -> list[bytes]: ...

    # SMS codes
    async def add_sms_code(self, phone: str, purpose: str, code_hash: bytes, created_at: int,
                           expires_at: int) -> None: ...
    async def latest_sms_code(self, phone: str, purpose: str) -> SmsCodeRow | None: ...
    async def sms_sends_since(self, phone: str, since: int) -> list[int]: ...
    async def sms_code_failed(self, code_id: int) -> None: ...
    async def sms_code_used(self, code_id: int) -> bool: ...

    # Conversations and messages
    async def create_direct(self, conv: ConvId, a: UserId, b: UserId, now: int) -> None: ...
    async def is_member(self, conv: ConvId, user_id: UserId) -> bool: ...
    async def was_member(self, conv: ConvId, user_id: UserId) -> bool: ...
    async def send_context(self, conv: ConvId, user_id: UserId) -> SendContext | None: ...
    async def conv_members(self, conv: ConvId) -> list[UserId]: ...
    async def user_convs(self, user_id: UserId) -> list[ConvSummary]: ...
    async def leave_conv(self, conv: ConvId, user_id: UserId, now: int) -> bool: ...
    async def append_message(self, conv: ConvId, msg_id: str, sender: UserId, body: str, ts: int,
                             cid: str | None, flagged: bool) -> AppendResult: ...
    async def history(self, conv: ConvId, after: int, limit: int) -> list[Message]: ...
    async def set_read(self, conv: ConvId, user_id: UserId, seq: int) -> int: ...
    async def met_since(self, a: UserId, b: UserId, since: int) -> bool: ...
    async def recent_pairs(self, users: Sequence[UserId],
                           since: int) -> set[tuple[UserId, UserId]]: ...

    # Blocks
    async def block(self, blocker: UserId, blocked: UserId, now: int) -> None: ...
    async def unblock(self, blocker: UserId, blocked: UserId) -> None: ...
    async def blocked_by(self, user_id: UserId) -> set[UserId]: ...
    async def blocks_of(self, user_id: UserId) -> set[UserId]: ...
