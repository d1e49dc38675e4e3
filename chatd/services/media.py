"""Photos, voice clips and avatars: uploads, who may fetch a file, attachments, erasure.

A file is uploaded first (``POST /upload``, outside the WebSocket: frames stay small), checked
and re-encoded off the event loop (:mod:`chatd.media`), stored under its id, and recorded
unattached. A message, a post, the avatar or a feedback then names it by id; the service checks
that the caller owns it and records where it is used. Who may fetch a file follows from there
(:meth:`MediaService.can_view`). A recalled or removed message, a deleted post, a replaced
avatar and a deleted account erase their files from storage; an upload nobody attached is
removed after ``media_orphan_after``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from chatd.config import Config
from chatd.errors import (
    BadRequest,
    Filtered,
    Forbidden,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    muted,
)
from chatd.ids import ConvId, UserId
from chatd.limits import Counters
from chatd.media import (
    NEAR_DUPLICATE_DISTANCE,
    MediaMissing,
    MediaRejected,
    MediaStorage,
    check_image,
    check_voice,
    phash_distance,
)
from chatd.services.accounts import hash_token
from chatd.services.moderation import MODERATOR
from chatd.services.ops import Call, S, op
from chatd.store import AuditEntry, Store
from chatd.store.media import MEDIA_KINDS, MediaRecord
from chatd.tasks import stop_task

__all__ = ["MAX_POST_IMAGES", "MediaService", "Served"]

log = logging.getLogger("chatd.media")

MAX_MESSAGE_IMAGES: Final = 9
MAX_POST_IMAGES: Final = 9
UPLOADS_PER_MINUTE: Final = 30
#: Checks that run at once (each decodes a photo: tens of MB for a phone picture).
CHECK_WORKERS: Final = 2
_SWEEP_BATCH: Final = 200


@dataclass(frozen=True, slots=True)
class Served:
    """A file (or the asked-for part of it) and how to label it."""

    data: bytes
    total: int
    content_type: str


def object_key(media_id: str, thumb: bool = False) -> str:
    return f"{media_id}/{'t' if thumb else 'o'}"


class MediaService:
    def __init__(self, config: Config, store: Store, storage: MediaStorage, counters: Counters,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.config = config
        self.store = store
        self.storage = storage
        self.counters = counters
        self._now = now_ms
        self._checks = asyncio.Semaphore(CHECK_WORKERS)
        self._bans: tuple[float, list[int]] = (0.0, [])
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.storage.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="chatd-media-sweep")

    async def close(self) -> None:
        await stop_task(self._sweeper)
        await self.storage.close()

    # --- uploads -------------------------------------------------------------------------

    def max_bytes(self, kind: str) -> int:
        """The body size ``POST /upload?kind=`` accepts (the edge cuts off a longer one)."""
        if kind not in MEDIA_KINDS:
            raise BadRequest(f"kind must be one of {', '.join(MEDIA_KINDS)}", field="kind")
        return self.config.max_voice_bytes if kind == "voice" else self.config.max_image_bytes

    async def user_of_token(self, token: str) -> UserId:
        """The user of a session token (``Authorization: Bearer``), or ``unauthorized``."""
        row = await self.store.get_session(hash_token(token), self._now()) if token else None
        if row is None:
            raise Unauthorized("the token is unknown or expired; log in again")
        return row.user_id

    async def upload(self, user_id: UserId, kind: str, body: Path) -> MediaRecord:
        """Check, re-encode and store an uploaded file (the raw body in ``body``)."""
        self.max_bytes(kind)
        user = await self.store.get_user(user_id)
        now = self._now()
        if user is None:
            raise Forbidden("this account no longer exists")
        if user.banned_until > now:
            raise Forbidden("this account is banned", reason="banned", until=user.banned_until)
        if user.muted_until > now:
            raise muted(user.muted_until)
        wait = await self.counters.hit(f"u:upload:{user_id}", UPLOADS_PER_MINUTE, 60_000)
        if wait:
            raise RateLimited(wait, "slow down: uploads of this account")
        media_id = secrets.token_urlsafe(16)
        async with self._checks:
            try:
                record = await self._check_and_store(media_id, user_id, user.created_at, kind,
                                                     body, now)
            except MediaRejected as exc:
                raise _rejection(exc, kind, self.config) from None
        try:
            await self.store.add_media(record)
        except BaseException:  # failed or cancelled: no file without a record
            await self.storage.delete([object_key(media_id), object_key(media_id, True)])
            raise
        return record

    async def _check_and_store(self, media_id: str, user_id: UserId, created_at: int,
                               kind: str, body: Path, now: int) -> MediaRecord:
        storing = False
        try:
            if kind == "voice":
                voice = await asyncio.to_thread(check_voice, body,
                                                max_seconds=self.config.max_voice_seconds)
                storing = True
                await self.storage.put(object_key(media_id), voice.data, voice.content_type)
                return MediaRecord(media_id, user_id, kind, voice.content_type,
                                   len(voice.data), now, seconds=voice.seconds)
            image = await asyncio.to_thread(check_image, body,
                                            max_pixels=self.config.max_image_pixels,
                                            square=kind == "avatar")
            if await self._banned(image.phash):
                raise Filtered("image", "this picture is not allowed")
            review = await self._needs_review(user_id, created_at, now)
            storing = True
            await self.storage.put(object_key(media_id), image.data, image.content_type)
            await self.storage.put(object_key(media_id, True), image.thumb, image.thumb_type)
            return MediaRecord(media_id, user_id, kind, image.content_type, len(image.data),
                               now, image.width, image.height, thumb_type=image.thumb_type,
                               phash=image.phash, review=review)
        except BaseException:
            # Cancelled (the client went away) or failed half-way: no file without a record.
            if storing:
                await asyncio.shield(self.storage.delete([object_key(media_id),
                                                          object_key(media_id, True)]))
            raise

    async def _banned(self, phash: int) -> bool:
        read_at, bans = self._bans
        if time.monotonic() - read_at > 5.0:  # a ban on another node is seen within 5 s
            bans = await self.store.image_bans()
            self._bans = (time.monotonic(), bans)
        return any(phash_distance(phash, b) <= NEAR_DUPLICATE_DISTANCE for b in bans)

    async def _needs_review(self, user_id: UserId, created_at: int, now: int) -> bool:
        """Photos of new accounts and of reported users go to the moderators' queue."""
        return now - created_at < self.config.media_review_new_days * 86_400_000 \
            or await self.store.reported(user_id)

    # --- attachments ---------------------------------------------------------------------

    async def claim(self, owner: UserId, ids: Sequence[str], target: str, *,
                    kinds: tuple[str, ...], max_count: int) -> list[MediaRecord]:
        """The records of ``ids`` if ``owner`` may attach them to ``target``: their own,
        of these kinds, not used elsewhere (a retry naming the same target is fine)."""
        if len(ids) > max_count:
            raise BadRequest(f"at most {max_count} attachments", field="attachments")
        if len(set(ids)) != len(ids):
            raise BadRequest("an attachment is named twice", field="attachments")
        found = await self.store.get_media(ids)
        records = []
        for media_id in ids:
            record = found.get(media_id)
            if record is None or record.owner != owner:
                raise BadRequest("no such upload of yours", field="attachments", id=media_id)
            if record.kind not in kinds:
                raise BadRequest(f"attachments here must be: {', '.join(kinds)}",
                                 field="attachments", id=media_id)
            if record.target not in ("", target):
                raise BadRequest("this upload is used elsewhere already", field="attachments",
                                 id=media_id)
            records.append(record)
        if any(r.kind == "voice" for r in records) and len(records) > 1:
            raise BadRequest("a voice clip goes alone", field="attachments")
        return records

    async def attach(self, records: Sequence[MediaRecord], owner: UserId, target: str,
                     ref: str = "") -> None:
        if records:
            await self.store.attach_media([r.id for r in records], owner, target, ref)

    async def erase(self, records: Sequence[MediaRecord]) -> None:
        """Remove these files from storage, then their records (a crash in between leaves a
        record without a file: a 404, never a file without a record)."""
        if not records:
            return
        keys = [object_key(r.id, thumb) for r in records for thumb in (False, True)]
        await self.storage.delete(keys)
        await self.store.delete_media([r.id for r in records])

    async def erase_message(self, msg_id: str) -> None:
        await self.erase(await self.store.media_by_ref(msg_id))

    async def erase_post(self, post_id: str) -> None:
        await self.erase(await self.store.media_by_target(f"p:{post_id}"))

    async def erase_owner(self, owner: UserId) -> None:
        await self.erase(await self.store.media_of(owner))

    @op("profile.avatar", media=S)
    async def set_avatar(self, call: Call, media: str) -> dict[str, Any]:
        """Make an uploaded avatar (``kind=avatar``) the caller's, or clear it with ``""``."""
        user = call.user
        records = [] if not media else await self.claim(user, [media], "a", kinds=("avatar",),
                                                        max_count=1)
        await self.attach(records, user, "a")
        old = await self.store.set_avatar(user, media)
        if old and old != media:
            await self.erase(list((await self.store.get_media([old])).values()))
        return {"avatar": media or None}

    # --- fetching ------------------------------------------------------------------------

    async def can_view(self, viewer: UserId, record: MediaRecord) -> bool:
        if viewer == record.owner:
            return True
        user = await self.store.get_user(viewer)
        if user is None:
            return False
        if user.role == MODERATOR:
            return True
        if await self.store.blocks_among([viewer, record.owner]):
            return False  # blocked either way: as if it did not exist
        kind, _, where = record.target.partition(":")
        if kind == "m":
            return await self.store.was_member(ConvId(where), viewer)
        if kind == "p":  # posts are public (feeds and search show them to every user)
            return await self.store.get_post(where) is not None
        return kind == "a"  # avatars are public; feedback and unattached files are not

    async def fetch(self, viewer: UserId | None, media_id: str, thumb: bool,
                    start: int = 0, end: int | None = None, link: str = "") -> Served:
        """The file for ``viewer`` (or the holder of a media ``link``); ``not_found`` for
        anyone who may not see it, so that a stranger cannot tell it exists."""
        if link:
            granted = await self.store.media_link(hash_token(link), self._now())
            if granted is None or granted[0] != media_id:
                raise NotFound("no such file")
            viewer = granted[1]
        record = (await self.store.get_media([media_id])).get(media_id)
        if viewer is None or record is None or not await self.can_view(viewer, record):
            raise NotFound("no such file")
        if thumb and not record.thumb_type:
            raise NotFound("this file has no thumbnail")
        try:
            data, total = await self.storage.get(object_key(media_id, thumb), start, end)
        except MediaMissing:
            raise NotFound("no such file") from None
        return Served(data, total, record.thumb_type if thumb else record.content_type)

    @op("media.link", id=S)
    async def link(self, call: Call, id: str) -> dict[str, Any]:
        """A short-lived URL of a file the caller may see (for an ``<img>`` tag)."""
        record = (await self.store.get_media([id])).get(id)
        if record is None or not await self.can_view(call.user, record):
            raise NotFound("no such file")
        return self.link_wire(*await self.new_link(call.user, id,
                                                   self.config.media_link_seconds))

    async def new_link(self, user: UserId, media_id: str, seconds: float) -> tuple[str, int]:
        token = secrets.token_urlsafe(24)
        expires = self._now() + int(seconds * 1000)
        await self.store.add_media_link(hash_token(token), media_id, user, expires)
        return f"/media/{media_id}?link={token}", expires

    @staticmethod
    def link_wire(url: str, expires: int) -> dict[str, Any]:
        return {"url": url, "thumb": url.replace("?", "/thumb?", 1), "expires": expires}

    async def export(self, user_id: UserId) -> list[dict[str, Any]]:
        """The user's files, each with a signed link valid for a day (the data export)."""
        files = []
        for record in await self.store.media_of(user_id):
            url, expires = await self.new_link(user_id, record.id, 86_400)
            files.append({**record.wire(), "content_type": record.content_type,
                          "uploaded_at": record.created_at, "used_in": record.target or None,
                          "url": url, "expires": expires})
        return files

    # --- moderation ----------------------------------------------------------------------

    async def review_items(self, offset: int, limit: int) -> list[dict[str, Any]]:
        return [{**r.wire(), "item": f"i:{r.id}", "author": r.owner, "ts": r.created_at,
                 "used_in": r.target or None}
                for r in await self.store.media_review_queue(offset, limit)]

    @op("mod.media.resolve", auth="moderator", id=S, action=S)
    async def resolve(self, call: Call, id: str, action: str) -> dict[str, Any]:
        """``dismiss`` (the picture is fine), ``delete`` (erase it), ``ban`` (erase it and
        refuse it and its near-duplicates on upload from now on)."""
        if action not in ("dismiss", "delete", "ban"):
            raise BadRequest("action must be dismiss, delete or ban", field="action")
        record = (await self.store.get_media([id])).get(id)
        if record is None:
            raise NotFound("no such file")
        if action == "dismiss":
            await self.store.set_media_review(id, False)
        else:
            if action == "ban":
                if record.phash is None:
                    raise BadRequest("only pictures can be banned", field="id")
                await self.store.add_image_ban(record.phash, call.user, self._now())
                self._bans = (0.0, [])
            await self.erase([record])
        await self.store.add_audit(AuditEntry(self._now(), call.user, f"media.{action}",
                                              record.owner, id))
        return {"id": id, "action": action}

    async def _sweep_forever(self) -> None:
        interval = min(300.0, self.config.media_orphan_after / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception as exc:  # the store or the bucket failing for a while
                log.warning("sweeping unattached uploads failed: %s", exc)

    async def sweep(self) -> int:
        """Remove uploads nobody attached within ``media_orphan_after``, and expired links."""
        now = self._now()
        before = now - int(self.config.media_orphan_after * 1000)
        removed = 0
        while batch := await self.store.orphan_media(before, _SWEEP_BATCH):
            await self.erase(batch)
            removed += len(batch)
            if len(batch) < _SWEEP_BATCH:
                break
        await self.store.purge_media_links(now)
        if removed:
            log.info("removed %d unattached uploads", removed)
        return removed


def _rejection(exc: MediaRejected, kind: str, config: Config) -> Exception:
    reason = exc.reason
    if reason == "too_many_pixels":
        return TooLarge(f"pictures are at most {config.max_image_pixels} pixels",
                        limit=config.max_image_pixels, reason=reason)
    if reason == "too_long":
        return TooLarge(f"voice clips are at most {config.max_voice_seconds:g} s",
                        limit=config.max_voice_seconds, reason=reason)
    what = "a voice clip (AAC/M4A, Opus/Ogg or Opus/WebM)" if kind == "voice" else \
        "a picture (JPEG, PNG, WebP or HEIC)"
    return BadRequest(f"the file is not {what} we can read", reason=reason)
