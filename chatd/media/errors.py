"""What the media room raises.

The tree::

    MediaError
    ├── MediaRejected (also ValueError)   an upload we do not take; ``reason`` says why:
    │       unsupported       not an image or voice format we accept (judged by content)
    │       too_many_pixels   the header declares more pixels than allowed (decompression bomb)
    │       too_long          a voice note longer than allowed
    │       corrupt           empty, truncated or undecodable
    ├── MediaMissing (also LookupError)   storage has no object under that key
    └── InvalidMediaKey (also ValueError) a storage key outside ``[A-Za-z0-9_-]`` segments
"""

from __future__ import annotations

from typing import Literal

__all__ = ["InvalidMediaKey", "MediaError", "MediaMissing", "MediaRejected", "RejectReason"]

RejectReason = Literal["unsupported", "too_many_pixels", "too_long", "corrupt"]


class MediaError(Exception):
    """Base of every media failure."""


class MediaRejected(MediaError, ValueError):
    """The upload is refused; ``reason`` is the short machine code the client sees."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: RejectReason = reason
        # For logs only: never echo it to a client (it may quote decoder internals).
        self.detail = detail


class MediaMissing(MediaError, LookupError):
    """No object is stored under ``key``."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class InvalidMediaKey(MediaError, ValueError):
    """A key that could escape the storage root or is not url-safe."""
