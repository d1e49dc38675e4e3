"""Records of photos, voice clips and avatars (``media``), image bans, signed media links and
feedback, shared by every store; :class:`MediaRecords` is their part of the store contract.

A media row says where its file is used (``target``): ``""`` while unattached (the sweeper
removes it after ``media_orphan_after``), ``m:<conv>`` in a message of that conversation (``ref``
is the message id), ``p:<post id>`` in a post, ``a`` as its owner's avatar, ``f:<feedback
id>`` as evidence of a feedback. Who may fetch it follows from the target.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from chatd.ids import UserId

__all__ = [
    "FEEDBACK_COLS",
    "MEDIA_COLS",
    "MEDIA_KINDS",
    "Feedback",
    "MediaKind",
    "MediaRecord",
    "MediaRecords",
    "attachments_text",
    "feedback_row",
    "media_row",
    "media_values",
    "parse_attachments",
    "signed_phash",
    "unsigned_phash",
]

MediaKind = Literal["image", "voice", "avatar"]
MEDIA_KINDS: Final = ("image", "voice", "avatar")


def signed_phash(value: int) -> int:
    """A 64-bit hash as the signed integer both databases store."""
    return value - (1 << 64) if value >= 1 << 63 else value


def unsigned_phash(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


@dataclass(frozen=True, slots=True)
class MediaRecord:
    id: str
    owner: UserId
    kind: str
    content_type: str
    bytes: int
    created_at: int
    width: int = 0
    height: int = 0
    seconds: float = 0.0
    thumb_type: str = ""  # "" when there is no thumbnail (voice)
    phash: int | None = None  # images: the perceptual hash (unsigned 64 bits)
    target: str = ""
    ref: str = ""
    review: bool = False

    def wire(self) -> dict[str, Any]:
        """What a message, a post or an upload's answer says of the file."""
        wire: dict[str, Any] = {"id": self.id, "kind": self.kind, "bytes": self.bytes}
        if self.kind == "voice":
            wire["seconds"] = round(self.seconds, 2)
        else:
            wire["width"], wire["height"] = self.width, self.height
        return wire


def attachments_text(wires: Sequence[dict[str, Any]]) -> str:
    """The ``attachments`` column: the wire form of each file (:meth:`MediaRecord.wire`), in
    order ("" for none)."""
    return json.dumps(list(wires), separators=(",", ":")) if wires else ""


def parse_attachments(raw: str | None) -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(raw)) if raw else ()


@dataclass(frozen=True, slots=True)
class Feedback:
    """意见反馈: a user's text (and evidence photos) for the moderators, and their reply."""

    id: str
    user_id: UserId
    body: str
    created_at: int
    attachments: tuple[dict[str, Any], ...] = ()
    state: str = "open"  # open | answered
    reply: str = ""
    replied_by: str = ""
    replied_at: int = 0

    def wire(self, for_moderator: bool = False) -> dict[str, Any]:
        wire: dict[str, Any] = {"id": self.id, "text": self.body, "ts": self.created_at,
                                "attachments": list(self.attachments), "state": self.state,
                                "reply": self.reply, "replied_at": self.replied_at}
        if for_moderator:
            wire["user"] = self.user_id
            wire["replied_by"] = self.replied_by
        return wire


#: The columns every read of ``media`` selects, in :func:`media_row`'s order (both dialects).
MEDIA_COLS: Final = ("SELECT id, owner, kind, content_type, bytes, created_at, width, height,"
                     " seconds, thumb_type, phash, target, ref, review FROM media")
FEEDBACK_COLS: Final = ("SELECT id, user_id, body, created_at, attachments, state, reply,"
                        " replied_by, replied_at FROM feedback")


def media_row(r: Sequence[Any]) -> MediaRecord:
    return MediaRecord(r[0], UserId(r[1]), r[2], r[3], int(r[4]), int(r[5]), int(r[6]),
                       int(r[7]), float(r[8]), r[9],
                       unsigned_phash(int(r[10])) if r[10] is not None else None, r[11], r[12],
                       bool(r[13]))


def media_values(m: MediaRecord) -> tuple[Any, ...]:
    """The values of an INSERT of ``m`` in :data:`MEDIA_COLS` order."""
    return (m.id, m.owner, m.kind, m.content_type, m.bytes, m.created_at, m.width, m.height,
            m.seconds, m.thumb_type, signed_phash(m.phash) if m.phash is not None else None,
            m.target, m.ref, m.review)


def feedback_row(r: Sequence[Any]) -> Feedback:
    return Feedback(r[0], UserId(r[1]), r[2], int(r[3]), parse_attachments(r[4]), r[5], r[6],
                    r[7], int(r[8]))


class MediaRecords(Protocol):
    async def add_media(self, record: MediaRecord) -> None: ...
    async def get_media(self, ids: Sequence[str]) -> dict[str, MediaRecord]: ...
    async def attach_media(self, ids: Sequence[str], owner: UserId, target: str,
                           ref: str = "") -> None:
        """Point these files of ``owner`` at ``target`` (the caller checked them)."""
    async def media_by_ref(self, ref: str) -> list[MediaRecord]: ...
    async def media_by_target(self, target: str) -> list[MediaRecord]: ...
    async def media_of(self, owner: UserId) -> list[MediaRecord]: ...
    async def delete_media(self, ids: Sequence[str]) -> None: ...
    async def orphan_media(self, before: int, limit: int) -> list[MediaRecord]:
        """Unattached files uploaded before ``before``, oldest first."""
    async def media_review_queue(self, offset: int, limit: int) -> list[MediaRecord]: ...
    async def set_media_review(self, media_id: str, review: bool) -> bool: ...
    async def set_avatar(self, user_id: UserId, media_id: str) -> str:
        """Make ``media_id`` (or "" for none) the avatar; returns the previous one."""
    async def reported(self, user_id: UserId) -> bool:
        """Whether an open report names the user (their photos then go to review)."""
    async def add_image_ban(self, phash: int, actor: str, now: int) -> None: ...
    async def image_bans(self) -> list[int]: ...
    async def add_media_link(self, token_hash: bytes, media_id: str, user_id: UserId,
                             expires_at: int) -> None: ...
    async def media_link(self, token_hash: bytes, now: int) -> tuple[str, UserId] | None:
        """(media id, the user it was handed to) of a link that has not expired."""
    async def purge_media_links(self, now: int) -> int: ...
    async def add_feedback(self, feedback: Feedback) -> None: ...
    async def get_feedback(self, feedback_id: str) -> Feedback | None: ...
    async def feedback_of(self, user_id: UserId) -> list[Feedback]: ...
    async def feedback_queue(self, offset: int, limit: int) -> list[Feedback]: ...
    async def reply_feedback(self, feedback_id: str, reply: str, actor: UserId,
                             now: int) -> Feedback | None: ...
