"""Pure WebM/Opus to Ogg/Opus remuxing: what browsers' ``MediaRecorder`` writes, kept as Ogg.

Chrome, Edge and Firefox record ``audio/webm;codecs=opus``. The Opus packets are copied as
they are (no decoding, no transcoding) into a new Ogg Opus stream (RFC 7845), so stored voice
clips stay in the two containers the rest of chatd knows.

The reader takes a minimal subset of EBML/Matroska (RFC 8794, RFC 9559):

- an EBML header with DocType ``webm`` (EBML read version 1, ids up to 4 bytes, sizes up to 8);
- one Segment, of known or **unknown size** (live recorders cannot seek back to write it);
- Tracks with exactly one TrackEntry: TrackType audio, CodecID ``A_OPUS``, no
  ContentEncodings; CodecPrivate is the OpusHead, else one is built from Channels,
  SamplingFrequency and CodecDelay;
- Clusters (known or unknown size: an unknown one ends at the next Segment-level element)
  holding SimpleBlocks or BlockGroups with one Block, all of that track, with any lacing
  (Xiph, EBML, fixed: each frame is one Opus packet). A BlockGroup's DiscardPadding on the
  last block trims the end (at most its last packet), as Ogg's final granule position does;
- everything else (SeekHead, Info, Cues, Tags, Chapters, Attachments, Void, CRC-32, cluster
  timestamps) is skipped by its size. No timestamp is used: Ogg positions come from the
  packets' own durations, so a gap in the recording is closed up, never filled.

Refused as ``unsupported``: another DocType (``matroska``), several or no tracks, a video or
non-Opus track, compressed or encrypted tracks, chained segments, more than
:data:`MAX_PACKETS` packets. ``corrupt``: an element running past its parent or the data, an
unknown size elsewhere than a Segment or Cluster, a block of another track, a bad OpusHead or
lacing, an empty or over-long Opus packet, blocks before Tracks, no audio. ``too_long``: the
packets add up to more than ``max_seconds`` (checked while reading, before any output).

The Ogg output: page 0 the OpusHead alone (BOS; cut to its defined length, so no trailing
bytes ride along), page 1 an OpusTags with an empty vendor and no comments (the muxer and
writer names are not carried over), then the audio in pages of about a second (at most 255
lacing values each), the last flagged EOS. A page's granule position is the number of 48 kHz
samples decoded once its last completed packet is, pre-skip included (RFC 7845 §4), each
packet's duration read from its TOC byte (RFC 6716 §3.1); -1 if no packet ends on the page;
the last page's stops short by the end trim. Page CRCs: :func:`ogg_crc`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from chatd.media.errors import MediaRejected

__all__ = ["EBML_MAGIC", "MAX_PACKETS", "WebmOpus", "ogg_crc", "opus_samples", "read_webm",
           "webm_to_ogg"]

EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
# 2.5 ms packets for over 8 minutes, 20 ms ones (what recorders send) for over an hour.
MAX_PACKETS: Final = 200_000

# Element ids (RFC 8794, RFC 9559), marker bits included as they are written.
_EBML, _DOC_TYPE, _EBML_READ_VERSION = 0x1A45DFA3, 0x4282, 0x42F7
_MAX_ID_LENGTH, _MAX_SIZE_LENGTH, _DOC_TYPE_READ_VERSION = 0x42F2, 0x42F3, 0x4285
_SEGMENT, _SEEK_HEAD, _INFO, _TRACKS, _CLUSTER = 0x18538067, 0x114D9B74, 0x1549A966, \
    0x1654AE6B, 0x1F43B675
_CUES, _TAGS, _CHAPTERS, _ATTACHMENTS = 0x1C53BB6B, 0x1254C367, 0x1043A770, 0x1941A469
_TRACK_ENTRY, _TRACK_NUMBER, _TRACK_TYPE, _CODEC_ID = 0xAE, 0xD7, 0x83, 0x86
_CODEC_PRIVATE, _CODEC_DELAY, _CONTENT_ENCODINGS = 0x63A2, 0x56AA, 0x6D80
_AUDIO, _SAMPLING_FREQUENCY, _CHANNELS = 0xE1, 0xB5, 0x9F
_SIMPLE_BLOCK, _BLOCK_GROUP, _BLOCK, _DISCARD_PADDING = 0xA3, 0xA0, 0xA1, 0x75A2
# What ends a Cluster of unknown size: the next element that can only be the Segment's child.
_SEGMENT_LEVEL: Final = frozenset({_EBML, _SEGMENT, _SEEK_HEAD, _INFO, _TRACKS, _CLUSTER, _CUES,
                                   _TAGS, _CHAPTERS, _ATTACHMENTS})
_AUDIO_TRACK = 2

_RATE: Final = 48_000  # Opus and Ogg Opus granule positions always count 48 kHz samples
_MAX_PACKET_SAMPLES: Final = 5_760  # 120 ms, the longest Opus packet (RFC 6716 §3.2.5)
_PAGE_SAMPLES: Final = _RATE  # a page about every second of audio
_EMPTY_OPUS_TAGS: Final = b"OpusTags" + struct.pack("<II", 0, 0)
# One logical stream that is never chained or multiplexed: a fixed serial keeps the output a
# function of the input (and the check idempotent).
_SERIAL: Final = 0x0000CAFE
_BOS, _EOS, _CONTINUED = 0x02, 0x04, 0x01


def _corrupt(detail: str) -> MediaRejected:
    return MediaRejected("corrupt", f"webm: {detail}")


def _unsupported(detail: str) -> MediaRejected:
    return MediaRejected("unsupported", f"webm: {detail}")


@dataclass(frozen=True, slots=True)
class WebmOpus:
    """The Opus stream of a WebM: its OpusHead and packets, and the end trim in samples."""

    head: bytes
    packets: list[bytes]
    samples: int  # all packets' samples at 48 kHz, pre-skip included
    end_trim: int  # samples the last packet decodes past the end (DiscardPadding)

    @property
    def pre_skip(self) -> int:
        return int.from_bytes(self.head[10:12], "little")

    @property
    def seconds(self) -> float:
        return (self.samples - self.end_trim - self.pre_skip) / _RATE


def webm_to_ogg(data: bytes, *, max_seconds: float) -> bytes:
    """The Ogg Opus stream of a WebM/Opus file; raises :class:`MediaRejected`."""
    opus = read_webm(data, max_seconds=max_seconds)
    if not opus.seconds > 0:
        raise _corrupt("no audio")
    if opus.seconds > max_seconds:
        raise MediaRejected("too_long", f"{opus.seconds:.1f} s")
    return b"".join(_ogg_pages(opus))


# -- EBML --------------------------------------------------------------------------------------

def _vint(d: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(value without its length marker, its length, the position after it)."""
    if pos >= end or d[pos] == 0:
        raise _corrupt("bad variable-length integer")
    length = 9 - d[pos].bit_length()
    if pos + length > end:
        raise _corrupt("truncated variable-length integer")
    value = int.from_bytes(d[pos : pos + length], "big") & ((1 << 7 * length) - 1)
    return value, length, pos + length


def _header(d: bytes, pos: int, end: int) -> tuple[int, int | None, int]:
    """(id, size or None when unknown, payload start) of the element at ``pos``."""
    if pos >= end or d[pos] < 0x10:
        raise _corrupt("bad element id")  # 5 bytes or more: past EBMLMaxIDLength 4
    length = 9 - d[pos].bit_length()
    if pos + length > end:
        raise _corrupt("truncated element id")
    eid = int.from_bytes(d[pos : pos + length], "big")
    size, size_length, body = _vint(d, pos + length, end)
    if size == (1 << 7 * size_length) - 1:
        return eid, None, body  # all ones: unknown size
    if size > end - body:
        raise _corrupt(f"element {eid:#x} runs past its parent")
    return eid, size, body


def _children(d: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(id, payload start, payload end) of the elements in ``d[start:end]``, all sized."""
    pos = start
    while pos < end:
        eid, size, body = _header(d, pos, end)
        if size is None:
            raise _corrupt(f"element {eid:#x} of unknown size")
        yield eid, body, body + size
        pos = body + size


def _uint(d: bytes, start: int, end: int) -> int:
    if end - start > 8:
        raise _corrupt("integer longer than 8 bytes")
    return int.from_bytes(d[start:end], "big")


def _text(d: bytes, start: int, end: int) -> str:
    return d[start:end].rstrip(b"\0").decode("latin-1")


# -- Matroska ----------------------------------------------------------------------------------

def read_webm(data: bytes, *, max_seconds: float) -> WebmOpus:
    """Read the one Opus track of a WebM; ``too_long`` as soon as it passes ``max_seconds``."""
    return _Reader(data, max_seconds).read()


class _Reader:
    def __init__(self, data: bytes, max_seconds: float) -> None:
        self.d = data
        self.max_seconds = max_seconds
        self.track = 0
        self.head = b""
        self.packets: list[bytes] = []
        self.samples = 0
        self.end_trim = 0

    def read(self) -> WebmOpus:
        d, end = self.d, len(self.d)
        eid, size, body = _header(d, 0, end)
        if eid != _EBML:
            raise _unsupported("no EBML header")
        if size is None:
            raise _corrupt("EBML header of unknown size")
        self._ebml_header(body, body + size)
        pos, segments = body + size, 0
        while pos < end:
            eid, size, body = _header(d, pos, end)
            if eid == _SEGMENT:
                segments += 1
                if segments > 1:
                    raise _unsupported("several segments")
                pos = self._segment(body, end if size is None else body + size)
            elif eid == _EBML:
                raise _unsupported("chained EBML documents")
            elif size is None:
                raise _corrupt(f"element {eid:#x} of unknown size")
            else:
                pos = body + size  # Void, CRC-32 or padding beside the Segment
        if not self.head:
            raise _corrupt("no tracks")
        if not self.packets:
            raise _corrupt("no audio")
        return WebmOpus(self.head, self.packets, self.samples, self.end_trim)

    def _ebml_header(self, start: int, end: int) -> None:
        doc_type, read_version, doc_read_version, id_length, size_length = "matroska", 1, 1, 4, 8
        for eid, a, b in _children(self.d, start, end):
            if eid == _DOC_TYPE:
                doc_type = _text(self.d, a, b)
            elif eid == _EBML_READ_VERSION:
                read_version = _uint(self.d, a, b)
            elif eid == _DOC_TYPE_READ_VERSION:
                doc_read_version = _uint(self.d, a, b)
            elif eid == _MAX_ID_LENGTH:
                id_length = _uint(self.d, a, b)
            elif eid == _MAX_SIZE_LENGTH:
                size_length = _uint(self.d, a, b)
        if doc_type != "webm":
            raise _unsupported(f"doctype {doc_type!r}")
        if read_version != 1 or doc_read_version > 4 or id_length > 4 or size_length > 8:
            raise _unsupported("EBML or WebM version")

    def _segment(self, start: int, end: int) -> int:
        d, pos = self.d, start
        while pos < end:
            eid, size, body = _header(d, pos, end)
            if eid in (_EBML, _SEGMENT):
                raise _unsupported("chained segments")
            if eid == _CLUSTER:
                pos = self._cluster(body, end if size is None else body + size, size is None)
            elif size is None:
                raise _corrupt(f"element {eid:#x} of unknown size")
            else:
                if eid == _TRACKS:
                    self._tracks(body, body + size)
                pos = body + size
        return end

    def _tracks(self, start: int, end: int) -> None:
        if self.head:
            raise _unsupported("several Tracks elements")
        entries = [(a, b) for eid, a, b in _children(self.d, start, end) if eid == _TRACK_ENTRY]
        if len(entries) != 1:
            raise _unsupported(f"{len(entries)} tracks")
        self._track(*entries[0])

    def _track(self, start: int, end: int) -> None:
        d = self.d
        number = kind = delay = 0
        codec, private, channels, rate = "", b"", 1, 8000.0
        for eid, a, b in _children(d, start, end):
            if eid == _TRACK_NUMBER:
                number = _uint(d, a, b)
            elif eid == _TRACK_TYPE:
                kind = _uint(d, a, b)
            elif eid == _CODEC_ID:
                codec = _text(d, a, b)
            elif eid == _CODEC_PRIVATE:
                private = d[a:b]
            elif eid == _CODEC_DELAY:
                delay = _uint(d, a, b)
            elif eid == _CONTENT_ENCODINGS:
                raise _unsupported("compressed or encrypted track")
            elif eid == _AUDIO:
                for sub, x, y in _children(d, a, b):
                    if sub == _CHANNELS:
                        channels = _uint(d, x, y)
                    elif sub == _SAMPLING_FREQUENCY:
                        if y - x not in (4, 8):
                            raise _corrupt("bad sampling frequency")
                        (rate,) = struct.unpack(">f" if y - x == 4 else ">d", d[x:y])
        if kind != _AUDIO_TRACK:
            raise _unsupported(f"track type {kind}")
        if codec != "A_OPUS":
            raise _unsupported(f"codec {codec!r}")
        if number == 0:
            raise _corrupt("no track number")
        self.track = number
        self.head = _opus_head(private) if private else _built_head(channels, rate, delay)

    def _cluster(self, start: int, end: int, unknown: bool) -> int:
        """Read one Cluster; return where it ends."""
        if not self.head:
            raise _corrupt("blocks before the tracks")
        d, pos = self.d, start
        while pos < end:
            eid, size, body = _header(d, pos, end)
            if unknown and eid in _SEGMENT_LEVEL:
                return pos
            if size is None:
                raise _corrupt(f"element {eid:#x} of unknown size")
            if eid == _SIMPLE_BLOCK:
                self._block(body, body + size, 0)
            elif eid == _BLOCK_GROUP:
                self._group(body, body + size)
            pos = body + size  # Timecode, PrevSize, Position, Void, CRC-32, ...
        return end

    def _group(self, start: int, end: int) -> None:
        block: tuple[int, int] | None = None
        discard_ns = 0
        for eid, a, b in _children(self.d, start, end):
            if eid == _BLOCK:
                if block is not None:
                    raise _corrupt("two blocks in a group")
                block = (a, b)
            elif eid == _DISCARD_PADDING:
                if b - a > 8:
                    raise _corrupt("integer longer than 8 bytes")
                discard_ns = int.from_bytes(self.d[a:b], "big", signed=True)
        if block is None:
            raise _corrupt("group without a block")
        self._block(*block, discard_ns)

    def _block(self, start: int, end: int, discard_ns: int) -> None:
        d = self.d
        track, _length, pos = _vint(d, start, end)
        if track != self.track:
            raise _corrupt(f"block of track {track}")
        if end - pos < 3:
            raise _corrupt("short block")
        lacing = (d[pos + 2] >> 1) & 3  # after the 16-bit relative timestamp: the flags
        samples = 0
        for a, b in _frames(d, pos + 3, end, lacing):
            if len(self.packets) >= MAX_PACKETS:
                raise _unsupported(f"more than {MAX_PACKETS} packets")
            packet = d[a:b]
            samples = opus_samples(packet)
            self.packets.append(packet)
            self.samples += samples
        # Only the last block's padding counts (each block resets it), at most its last packet:
        # then the final page's position never falls below the page before it (RFC 7845 §4.4).
        # A negative one (trim at the start) is the OpusHead's pre-skip's job.
        trim = (max(discard_ns, 0) * _RATE + 500_000_000) // 1_000_000_000
        self.end_trim = min(trim, samples)
        # Stop reading what cannot fit: if this block is the last, this trim is all that comes
        # off; a later last block adds at least as many samples as it can take off.
        least = self.samples - self.end_trim - int.from_bytes(self.head[10:12], "little")
        if least > self.max_seconds * _RATE:
            raise MediaRejected("too_long", f"over {self.max_seconds:g} s")


def _frames(d: bytes, pos: int, end: int, lacing: int) -> list[tuple[int, int]]:
    """(start, end) of each frame of a block's payload ``d[pos:end]``."""
    if lacing == 0:
        return [(pos, end)]
    if pos >= end:
        raise _corrupt("laced block without a frame count")
    count, pos = d[pos] + 1, pos + 1
    sizes: list[int] = []
    if lacing == 1:  # Xiph: each size as a run of 255s and a last byte below 255
        for _ in range(count - 1):
            size = 0
            while True:
                if pos >= end:
                    raise _corrupt("truncated Xiph lacing")
                byte, pos = d[pos], pos + 1
                size += byte
                if byte < 255:
                    break
            sizes.append(size)
    elif lacing == 3:  # EBML: the first size, then signed differences
        for i in range(count - 1):
            value, length, pos = _vint(d, pos, end)
            if i:
                value = sizes[-1] + value - ((1 << 7 * length - 1) - 1)
            sizes.append(value)
    else:  # fixed: equal frames
        if (end - pos) % count:
            raise _corrupt("fixed lacing does not divide the block")
        sizes = [(end - pos) // count] * (count - 1)
    last = end - pos - sum(sizes)
    if last < 0 or any(size < 0 for size in sizes):
        raise _corrupt("lace sizes run past the block")
    frames = []
    for size in [*sizes, last]:
        frames.append((pos, pos + size))
        pos += size
    return frames


# -- Opus --------------------------------------------------------------------------------------

# Frame sizes in 48 kHz samples by TOC config (RFC 6716 §3.1, table 2): SILK NB/MB/WB 10, 20,
# 40, 60 ms; Hybrid SWB/FB 10, 20 ms; CELT NB/WB/SWB/FB 2.5, 5, 10, 20 ms.
_FRAME_SAMPLES: Final = (*(480, 960, 1920, 2880) * 3, *(480, 960) * 2, *(120, 240, 480, 960) * 4)


def opus_samples(packet: bytes) -> int:
    """Duration of one Opus packet in 48 kHz samples, from its TOC byte (RFC 6716 §3.1)."""
    if not packet:
        raise _corrupt("empty opus packet")
    toc = packet[0]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code < 3:
        frames = 2
    else:  # code 3: the count byte says how many frames (M, its low six bits)
        if len(packet) < 2 or not packet[1] & 0x3F:
            raise _corrupt("opus packet without frames")
        frames = packet[1] & 0x3F
    samples = _FRAME_SAMPLES[toc >> 3] * frames
    if samples > _MAX_PACKET_SAMPLES:
        raise _corrupt("opus packet over 120 ms")
    return samples


def _opus_head(private: bytes) -> bytes:
    """The OpusHead of CodecPrivate, cut to its defined length (RFC 7845 §5.1)."""
    if len(private) < 19 or private[:8] != b"OpusHead" or private[8] >> 4:
        raise _corrupt("bad OpusHead")
    channels, family = private[9], private[18]
    length = 19 if family == 0 else 21 + channels
    if not channels or (family == 0 and channels > 2) or len(private) < length:
        raise _corrupt("bad OpusHead channels")
    return private[:length]


def _built_head(channels: int, rate: float, delay_ns: int) -> bytes:
    """An OpusHead for a track without CodecPrivate: mono or stereo, family 0."""
    if not 1 <= channels <= 2:
        raise _unsupported(f"{channels} channels without a channel mapping")
    pre_skip = min((delay_ns * _RATE + 500_000_000) // 1_000_000_000, 0xFFFF)
    input_rate = int(rate) if 0 < rate < 2**32 else 0  # informational only
    return struct.pack("<8sBBHIhB", b"OpusHead", 1, channels, pre_skip, input_rate, 0, 0)


# -- Ogg ---------------------------------------------------------------------------------------

def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = (r << 1) ^ 0x04C11DB7 if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def ogg_crc(data: bytes, crc: int = 0) -> int:
    """Ogg's CRC-32 (RFC 3533): polynomial 0x04C11DB7, not reflected, init 0, no final xor."""
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc >> 24) ^ byte] ^ ((crc & 0xFFFFFF) << 8)
    return crc


class _OggWriter:
    """Packets into pages: lacing values per RFC 3533, at most 255 segments a page."""

    def __init__(self) -> None:
        self.pages: list[bytes] = []
        self.segments = bytearray()
        self.body: list[bytes] = []
        self.continued = False  # the pending page starts inside a packet
        self.granule = -1  # no packet ends on the pending page yet

    def packet(self, packet: bytes, granule: int) -> None:
        """Add ``packet``; ``granule`` is the sample position once it is decoded."""
        for i in range(len(packet) // 255 + 1):  # n x 255, then the rest (maybe 0)
            if len(self.segments) == 255:
                self.flush(continues=i > 0)
            chunk = packet[i * 255 : (i + 1) * 255]
            self.segments.append(len(chunk))
            self.body.append(chunk)
        self.granule = granule

    def flush(self, flags: int = 0, continues: bool = False) -> None:
        if self.continued:
            flags |= _CONTINUED
        header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, self.granule, _SERIAL,
                             len(self.pages), 0, len(self.segments)) + self.segments
        body = b"".join(self.body)
        crc = ogg_crc(body, ogg_crc(header))
        self.pages.append(header[:22] + struct.pack("<I", crc) + header[26:] + body)
        self.segments, self.body, self.granule, self.continued = bytearray(), [], -1, continues


def _ogg_pages(opus: WebmOpus) -> list[bytes]:
    """RFC 7845: OpusHead alone (BOS), OpusTags alone, then the audio, the last page EOS."""
    out = _OggWriter()
    out.packet(opus.head, 0)
    out.flush(_BOS)
    out.packet(_EMPTY_OPUS_TAGS, 0)
    out.flush()
    # A granule position counts every sample decoded so far, pre-skip included (§4).
    position = page_samples = 0
    for packet in opus.packets:
        # The first audio page must reach past the pre-skip (its samples are not played).
        if page_samples >= _PAGE_SAMPLES and position >= opus.pre_skip:
            out.flush()
            page_samples = 0
        samples = opus_samples(packet)
        position += samples
        page_samples += samples
        out.packet(packet, position)
    # End trimming: the last page's position may stop short of its packets' end (§4.4).
    out.granule = position - opus.end_trim
    out.flush(_EOS)
    return out.pages
