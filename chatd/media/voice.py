"""Pure voice-note check: decide by content, read the duration from the container, strip tags.

Accepted (by content, never by name or declared type):

- AAC (``mp4a.40.*``: LC, HE) in MP4/M4A, only sound tracks -> ``audio/mp4``;
- Opus in Ogg, one logical stream -> ``audio/ogg``;
- Opus in WebM, one audio track (what Chrome's, Edge's and Firefox's MediaRecorder write) ->
  remuxed to Ogg Opus by :mod:`chatd.media.webm` (packets copied, never transcoded), then
  checked as an uploaded Ogg would be -> ``audio/ogg``.

Refused as ``unsupported``: MP3, WAV, FLAC, AMR, Vorbis or FLAC in Ogg, multiplexed or
chained Ogg, ALAC/Opus/AC-3 in MP4, an MP4 with a video or any non-sound track, fragmented
MP4 (Safari's MediaRecorder: no duration in its header), Matroska other than WebM, WebM with
Vorbis, a video track or several tracks.
``corrupt``: empty, truncated, boxes, pages or elements that do not add up, no duration.
``too_long``: the container's duration exceeds ``max_seconds`` (for WebM, the packets'
durations are added up before any Ogg is written).

The returned bytes carry no tags: in MP4 every box outside the ones playback needs is dropped
(``udta``, ``meta``, ``free``, ``uuid``, ... : iTunes tags, ``©xyz`` location, device and
software names) and chunk offsets are moved to match; in Ogg the OpusTags packet is replaced
by an empty one (no vendor string, no comments, no preserved padding data); of a WebM only the
OpusHead and the Opus packets are carried over (no Info, Tags, muxer or writer names).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from mutagen import MutagenError, mp4, ogg, oggopus

from chatd.media.errors import MediaRejected
from chatd.media.webm import EBML_MAGIC, webm_to_ogg

__all__ = ["VOICE_TYPES", "CheckedVoice", "check_voice"]

VOICE_TYPES: Final = ("audio/mp4", "audio/ogg")

# Boxes kept per parent (b"" is the file itself); anything else is metadata or padding.
_MP4_KEEP: Final = {
    b"": frozenset({b"ftyp", b"moov", b"mdat"}),
    b"moov": frozenset({b"mvhd", b"trak"}),
    b"trak": frozenset({b"tkhd", b"tref", b"edts", b"mdia"}),
}
_EMPTY_OPUS_TAGS: Final = b"OpusTags" + struct.pack("<II", 0, 0)  # no vendor, no comments
# mutagen's classes carry no annotations: used through Any, so strict mypy stays strict elsewhere.
OggPage: Final[Any] = ogg.OggPage
OggOpus: Final[Any] = oggopus.OggOpus
MP4: Final[Any] = mp4.MP4
_PARSE_ERRORS: Final = (MutagenError, struct.error, ValueError, IndexError, EOFError)


@dataclass(frozen=True, slots=True)
class CheckedVoice:
    data: bytes
    content_type: str
    seconds: float


def check_voice(data: bytes | Path, *, max_seconds: float) -> CheckedVoice:
    """Check and clean one voice note; raises :class:`MediaRejected`."""
    raw = data.read_bytes() if isinstance(data, Path) else bytes(data)
    if not raw:
        raise MediaRejected("corrupt", "empty")
    if raw[:4] == EBML_MAGIC:
        # Stored as Ogg: one Opus container for clients to play, and the Ogg checks below.
        raw = webm_to_ogg(raw, max_seconds=max_seconds)
    if raw[:4] == b"OggS":
        clean, seconds, content_type = *_check_ogg(raw), "audio/ogg"
    elif raw[4:8] == b"ftyp":
        clean, seconds, content_type = *_check_mp4(raw), "audio/mp4"
    else:
        raise MediaRejected("unsupported", "not MP4 or Ogg")
    if not seconds > 0:
        raise MediaRejected("corrupt", "no duration")
    if seconds > max_seconds:
        raise MediaRejected("too_long", f"{seconds:.1f} s")
    return CheckedVoice(data=clean, content_type=content_type, seconds=seconds)


# -- Ogg -------------------------------------------------------------------------------------

def _check_ogg(raw: bytes) -> tuple[bytes, float]:
    buf = io.BytesIO(raw)
    pages: list[Any] = []
    try:
        while True:
            try:
                pages.append(OggPage(buf))
            except EOFError:
                break
    except _PARSE_ERRORS as exc:
        raise MediaRejected("corrupt", f"ogg: {exc}") from None
    if not pages or not pages[0].packets:
        raise MediaRejected("corrupt", "ogg: no pages")
    if not pages[0].packets[0].startswith(b"OpusHead"):
        raise MediaRejected("unsupported", "ogg without opus")
    if len({p.serial for p in pages}) != 1:
        # A second logical stream could carry anything (pictures, text): not a voice note.
        raise MediaRejected("unsupported", "ogg with several streams")
    try:
        seconds = float(OggOpus(io.BytesIO(raw)).info.length)
    except _PARSE_ERRORS as exc:
        raise MediaRejected("corrupt", f"opus: {exc}") from None
    return _strip_opus_tags(raw, pages), seconds


def _strip_opus_tags(raw: bytes, pages: list[Any]) -> bytes:
    # RFC 7845: OpusHead alone on page 0, OpusTags on the next page(s), audio on fresh pages.
    if len(pages) < 2 or len(pages[0].packets) != 1 or not pages[0].complete:
        raise MediaRejected("corrupt", "opus: bad header pages")
    end = 1
    while not pages[end].complete:
        end += 1
        if end >= len(pages) or len(pages[end].packets) != 1:
            raise MediaRejected("corrupt", "opus: bad comment pages")
    if len(pages[1].packets) != 1 or not pages[1].packets[0].startswith(b"OpusTags"):
        raise MediaRejected("corrupt", "opus: no comment header")
    tags = OggPage()
    tags.serial, tags.sequence, tags.position = pages[1].serial, 1, 0
    tags.packets = [_EMPTY_OPUS_TAGS]
    tags_page: bytes = tags.write()
    head = raw[: pages[1].offset]
    rest = raw[pages[end + 1].offset :] if end + 1 < len(pages) else b""
    if end == 1:
        return head + tags_page + rest  # same page count: the rest keeps its numbers
    out = [head, tags_page]
    for page in pages[end + 1 :]:
        page.sequence -= end - 1
        out.append(page.write())
    return b"".join(out)


# -- MP4 -------------------------------------------------------------------------------------

def _check_mp4(raw: bytes) -> tuple[bytes, float]:
    removed: list[tuple[int, int]] = []
    clean = bytearray(_rebuild(raw, 0, len(raw), b"", removed))
    _move_offsets(clean, removed)
    try:
        parsed = MP4(io.BytesIO(bytes(clean)))
    except _PARSE_ERRORS as exc:
        raise MediaRejected("corrupt", f"mp4: {exc}") from None
    codec: str = parsed.info.codec
    if not codec.startswith("mp4a.40."):
        raise MediaRejected("unsupported", f"mp4 codec {codec or 'unknown'}")
    return bytes(clean), float(parsed.info.length)


def _boxes(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, box start, payload start, box end) of the boxes in ``data[start:end]``."""
    pos = start
    while pos < end:
        if end - pos < 8:
            raise MediaRejected("corrupt", "mp4: short box header")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise MediaRejected("corrupt", "mp4: short box header")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos  # "to the end of the file"
        if size < header or pos + size > end:
            raise MediaRejected("corrupt", f"mp4: box {kind!r} runs past its parent")
        yield kind, pos, pos + header, pos + size
        pos += size


def _rebuild(raw: bytes, start: int, end: int, parent: bytes,
             removed: list[tuple[int, int]]) -> bytes:
    keep = _MP4_KEEP[parent]
    out: list[bytes] = []
    for kind, box, payload, box_end in _boxes(raw, start, end):
        if kind == b"moof":
            # Fragmented (Safari's MediaRecorder): mutagen reads no duration from it.
            raise MediaRejected("unsupported", "fragmented mp4")
        if kind not in keep:
            removed.append((box, box_end))
        elif kind in _MP4_KEEP:
            if kind == b"trak":
                _require_sound(raw, payload, box_end)
            body = _rebuild(raw, payload, box_end, kind, removed)
            long = payload - box == 16
            size = len(body) + (16 if long else 8)
            head = struct.pack(">I4sQ", 1, kind, size) if long else struct.pack(">I4s", size, kind)
            out += (head, body)
        else:
            out.append(raw[box:box_end])
    return b"".join(out)


def _require_sound(raw: bytes, start: int, end: int) -> None:
    for hdlr, _end in _find(raw, start, end, (b"mdia", b"hdlr")):
        if raw[hdlr + 8 : hdlr + 12] == b"soun":
            return
    raise MediaRejected("unsupported", "mp4 with a track that is not sound")


def _find(data: bytes | bytearray, start: int, end: int,
          path: tuple[bytes, ...]) -> Iterator[tuple[int, int]]:
    """(payload start, end) of every box at ``path`` below ``data[start:end]``."""
    for kind, _box, payload, box_end in _boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                yield payload, box_end
            else:
                yield from _find(data, payload, box_end, path[1:])


def _move_offsets(data: bytearray, removed: list[tuple[int, int]]) -> None:
    """Shift the chunk offsets (stco, co64) by the bytes dropped before them."""
    if not removed:
        return
    removed.sort()

    def moved(offset: int) -> int:
        shift = 0
        for a, b in removed:
            if b <= offset:
                shift += b - a
            elif a <= offset:
                raise MediaRejected("corrupt", "mp4: media data inside a dropped box")
        return offset - shift

    stbl = (b"moov", b"trak", b"mdia", b"minf", b"stbl")
    for fmt, width, path in ((">I", 4, (*stbl, b"stco")), (">Q", 8, (*stbl, b"co64"))):
        for payload, end in _find(data, 0, len(data), path):
            (count,) = struct.unpack_from(">I", data, payload + 4)
            if payload + 8 + count * width > end:
                raise MediaRejected("corrupt", "mp4: chunk table runs past its box")
            for i in range(payload + 8, payload + 8 + count * width, width):
                (offset,) = struct.unpack_from(fmt, data, i)
                struct.pack_into(fmt, data, i, moved(offset))
