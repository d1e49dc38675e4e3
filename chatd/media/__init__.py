"""Photos, voice notes and avatars: pure checks and where the bytes are kept.

- :func:`check_image` / :func:`check_voice`: pure functions (no asyncio, no chatd I/O) that
  accept by content, refuse with :class:`MediaRejected` (``reason``: ``unsupported``,
  ``too_many_pixels``, ``too_long``, ``corrupt``) and return cleaned bytes without metadata
  (a WebM/Opus voice note comes back as Ogg/Opus: :mod:`chatd.media.webm` remuxes it).
- :class:`MediaStorage`: one contract, two implementations: :class:`DirMediaStorage` here and
  ``chatd.media.s3.S3MediaStorage`` (imported on its own, since it needs the ``s3`` extra).
"""

from __future__ import annotations

from chatd.media.errors import (
    InvalidMediaKey,
    MediaError,
    MediaMissing,
    MediaRejected,
    RejectReason,
)
from chatd.media.images import (
    AVATAR_SIDE,
    IMAGE_FORMATS,
    NEAR_DUPLICATE_DISTANCE,
    CheckedImage,
    check_image,
    phash_distance,
)
from chatd.media.storage import MAX_KEY_LENGTH, DirMediaStorage, MediaStorage, check_key
from chatd.media.voice import VOICE_TYPES, CheckedVoice, check_voice

__all__ = [
    "AVATAR_SIDE",
    "IMAGE_FORMATS",
    "MAX_KEY_LENGTH",
    "NEAR_DUPLICATE_DISTANCE",
    "VOICE_TYPES",
    "CheckedImage",
    "CheckedVoice",
    "DirMediaStorage",
    "InvalidMediaKey",
    "MediaError",
    "MediaMissing",
    "MediaRejected",
    "MediaStorage",
    "RejectReason",
    "check_image",
    "check_key",
    "check_voice",
    "phash_distance",
]
