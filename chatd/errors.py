"""Errors are data: every failure a client can see is a :class:`ChatError` with a stable code.

The tree (codes are the strings of PROTOCOL.md; details travel as extra reply fields)::

    ChatError
    ├── BadRequest        bad_request    malformed frame, unknown op, wrong or missing field
    ├── Unauthorized      unauthorized   the op needs an authenticated session
    ├── Forbidden         forbidden      authenticated, but not allowed (details: reason)
    ├── NotFound          not_found
    ├── Conflict          conflict       e.g. phone already registered
    ├── InvalidCode       invalid_code   SMS code wrong, expired or used
    ├── Underage          underage       birthdate under 18
    ├── Filtered          filtered       text failed the word filter (details: category)
    ├── RateLimited       rate_limited   (details: retry_after in ms)
    ├── TooLarge          too_large
    ├── Unavailable       unavailable    the store or the broker is failing for a moment:
    │                                    retry after ``retry_after`` ms (same ``cid``)
    └── Internal          internal       a bug; never carries the cause to the client

Close codes used by the server (RFC 6455 range, then the 4000-4999 private range):

    1000 normal, 1001 going away (shutdown), 1008 policy (origin), 1009 frame too large,
    1011 internal error
    3008 slow: the client did not read its queued events fast enough (centrifuge's code)
    4001 session revoked: password reset, ban, account deletion or logout elsewhere
    4002 idle: no frame within the idle timeout
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_IDLE",
    "CLOSE_INTERNAL",
    "CLOSE_NORMAL",
    "CLOSE_REVOKED",
    "CLOSE_SLOW",
    "CLOSE_TOO_LARGE",
    "BadRequest",
    "ChatError",
    "Conflict",
    "Filtered",
    "Forbidden",
    "Internal",
    "InvalidCode",
    "NotFound",
    "RateLimited",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "Underage",
    "muted",
]

CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_TOO_LARGE: Final = 1009
CLOSE_INTERNAL: Final = 1011
CLOSE_SLOW: Final = 3008
CLOSE_REVOKED: Final = 4001
CLOSE_IDLE: Final = 4002


class ChatError(Exception):
    """A failure the client is told about: ``code`` and ``msg`` go on the wire with ``details``."""

    code: ClassVar[str] = "internal"
    default_msg: ClassVar[str] = "internal error"

    def __init__(self, msg: str | None = None, **details: Any) -> None:
        self.msg = msg or self.default_msg
        self.details = details
        # The request id, when the failure is tied to a request the server could read.
        self.rid: int | None = None
        super().__init__(self.msg)

    def to_wire(self, rid: int | None = None) -> dict[str, Any]:
        reply: dict[str, Any] = {"t": "err"}
        rid = self.rid if rid is None else rid
        if rid is not None:
            reply["rid"] = rid
        reply["code"] = self.code
        reply["msg"] = self.msg
        reply.update(self.details)
        return reply


class BadRequest(ChatError):
    code = "bad_request"
    default_msg = "bad request"


class Unauthorized(ChatError):
    code = "unauthorized"
    default_msg = "this op needs an authenticated session"


class Forbidden(ChatError):
    code = "forbidden"
    default_msg = "not allowed"


def muted(until: int) -> Forbidden:
    """The refusal of anything a muted user would publish (``until``: when the mute ends)."""
    return Forbidden("you are muted", reason="muted", until=until)


class NotFound(ChatError):
    code = "not_found"
    default_msg = "not found"


class Conflict(ChatError):
    code = "conflict"
    default_msg = "conflict"


class InvalidCode(ChatError):
    code = "invalid_code"
    default_msg = "the code is wrong, expired or already used"


class Underage(ChatError):
    code = "underage"
    default_msg = "you must be at least 18 years old"


class Filtered(ChatError):
    code = "filtered"
    default_msg = "the text contains words that are not allowed"

    def __init__(self, category: str, msg: str | None = None) -> None:
        super().__init__(msg, category=category)


class RateLimited(ChatError):
    code = "rate_limited"
    default_msg = "too many requests"

    def __init__(self, retry_after_ms: int, msg: str | None = None) -> None:
        super().__init__(msg, retry_after=max(1, int(retry_after_ms)))


class Unavailable(ChatError):
    """Retryable: storage or routing is down for a moment (never a bug, never the input)."""

    code = "unavailable"
    default_msg = "temporarily unavailable; retry"

    def __init__(self, retry_after_ms: int = 1000, msg: str | None = None) -> None:
        super().__init__(msg, retry_after=max(1, int(retry_after_ms)))


class TooLarge(ChatError):
    code = "too_large"
    default_msg = "too large"


class Internal(ChatError):
    code = "internal"
    default_msg = "internal error"
