"""WebM/Opus voice clips (browsers' MediaRecorder), remuxed to Ogg/Opus: no sockets, no loop."""

from __future__ import annotations

import io
import itertools
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutagen.ogg import OggPage
from mutagen.oggopus import OggOpus

from chatd.media import MediaRejected, check_voice, webm
from chatd.media.webm import ogg_crc, opus_samples, read_webm, webm_to_ogg

DATA = Path(__file__).parent / "data" / "media"
UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"
SEGMENT, CLUSTER = b"\x18\x53\x80\x67", b"\x1f\x43\xb6\x75"
FFMPEG, FFPROBE = shutil.which("ffmpeg"), shutil.which("ffprobe")
# What the fixtures' ffmpeg (libopus) and Chromium wrote besides the sound: none may survive.
MARKERS = (b"secret title", b"my phone", b"Lavf", b"Lavc", b"libopus", b"Chrome", b"ENCODER")

# name, duration (the samples ffmpeg decodes from the WebM itself, / 48000), live-written
WEBM_FIXTURES = [
    ("tone-1s.webm", 1.0, False),
    ("tone-3s.webm", 3.0, False),
    ("tone-3s.live.webm", 3.0, True),  # ffmpeg to a pipe: Segment of unknown size
    ("chrome-2s.webm", 1.98, True),  # Chromium's MediaRecorder: Segment and Clusters too
]


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


# -- an independent Ogg reader ---------------------------------------------------------------

def crc_by_zlib(data: bytes) -> int:
    """Ogg's CRC another way: zlib's reflected CRC-32 over bit-reversed bytes, reversed back."""
    flip = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
    crc = zlib.crc32(data.translate(flip), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{crc:032b}"[::-1], 2)


def ogg_pages(data: bytes) -> list[tuple[int, int, int, int, list[int], bytes]]:
    """(flags, granule, serial, sequence, lacing values, body) of each page; CRCs checked."""
    pages, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 5] == b"OggS\0", pos
        flags, granule, serial, seq, crc, count = struct.unpack_from("<BqIIIB", data, pos + 5)
        lacing = list(data[pos + 27 : pos + 27 + count])
        end = pos + 27 + count + sum(lacing)
        page = data[pos:end]
        zeroed = page[:22] + b"\0\0\0\0" + page[26:]
        assert crc == crc_by_zlib(zeroed) == ogg_crc(zeroed), f"page {seq}: bad CRC"
        pages.append((flags, granule, serial, seq, lacing, page[27 + count :]))
        pos = end
    return pages


def ogg_packets(data: bytes) -> list[bytes]:
    packets, pending = [], b""
    for _f, _g, _s, _q, lacing, body in ogg_pages(data):
        pos = 0
        for value in lacing:
            pending += body[pos : pos + value]
            pos += value
            if value < 255:
                packets.append(pending)
                pending = b""
    assert pending == b""
    return packets


# -- fixtures ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, seconds, live", WEBM_FIXTURES)
def test_webm_is_accepted_as_ogg_opus_with_its_duration(name: str, seconds: float,
                                                         live: bool) -> None:
    src = fixture(name)
    assert src[:4] == webm.EBML_MAGIC
    if live:
        assert SEGMENT + UNKNOWN_SIZE in src
    if name.startswith("chrome"):
        assert CLUSTER + UNKNOWN_SIZE in src
    out = check_voice(src, max_seconds=60)
    assert out.content_type == "audio/ogg"
    assert out.seconds == pytest.approx(seconds, abs=0.05)
    parsed = OggOpus(io.BytesIO(out.data))
    assert parsed.info.length == pytest.approx(out.seconds, abs=1e-9)
    assert parsed.tags.vendor == "" and not parsed.tags
    for marker in MARKERS:
        assert marker not in out.data, marker
    assert check_voice(out.data, max_seconds=60) == out  # the Ogg path keeps it as it is
    assert check_voice(DATA / name, max_seconds=60) == out


@pytest.mark.parametrize("name, seconds, live", WEBM_FIXTURES)
def test_ogg_pages_follow_rfc_7845(name: str, seconds: float, live: bool) -> None:
    opus = read_webm(fixture(name), max_seconds=60)
    data = webm_to_ogg(fixture(name), max_seconds=60)
    pages = ogg_pages(data)
    flags = [p[0] for p in pages]
    assert flags[0] == 0x02 and flags[-1] == 0x04 and set(flags[1:-1]) <= {0}
    assert len({p[2] for p in pages}) == 1
    assert [p[3] for p in pages] == list(range(len(pages)))
    assert all(len(p[4]) <= 255 for p in pages)
    assert pages[0][5] == opus.head and pages[0][1] == 0
    assert pages[1][5] == b"OpusTags" + bytes(8) and pages[1][1] == 0
    assert ogg_packets(data)[2:] == opus.packets
    # Granule positions: 48 kHz samples so far, pre-skip included; the last one end-trimmed.
    granules = [p[1] for p in pages[2:]]
    assert granules == sorted(granules) and granules[-1] == opus.pre_skip + round(seconds * 48000)
    assert all(b - a <= 48000 + 5760 for a, b in itertools.pairwise([0, *granules]))
    assert len(granules) >= int(seconds)  # a page about every second


def test_granules_count_pre_skip_and_the_end_trim() -> None:
    opus = read_webm(fixture("tone-1s.webm"), max_seconds=60)
    # libopus: 312 samples of pre-skip; ffmpeg's last BlockGroup pads 13.5 ms (648 samples).
    assert (opus.pre_skip, opus.end_trim, opus.samples) == (312, 648, 48960)
    assert sum(opus_samples(p) for p in opus.packets) == 48960
    assert ogg_pages(webm_to_ogg(fixture("tone-1s.webm"), max_seconds=60))[-1][1] == 48312
    chrome = read_webm(fixture("chrome-2s.webm"), max_seconds=60)
    assert (chrome.pre_skip, chrome.end_trim, chrome.samples) == (0, 0, 95040)
    assert {opus_samples(p) for p in chrome.packets} == {2880}  # Chrome sends 60 ms packets


@pytest.mark.skipif(FFMPEG is None or FFPROBE is None, reason="ffmpeg is not installed")
@pytest.mark.parametrize("name, seconds, live", WEBM_FIXTURES)
def test_ffmpeg_reads_the_same_duration_and_no_crc_error(name: str, seconds: float, live: bool,
                                                        tmp_path: Path) -> None:
    assert FFMPEG and FFPROBE
    out = check_voice(fixture(name), max_seconds=60)
    path = tmp_path / "clip.ogg"
    path.write_bytes(out.data)
    decoded = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-f", "s16le",
                              "-ac", "1", "-ar", "48000", "pipe:1"], capture_output=True,
                             check=True, timeout=60)
    assert decoded.stderr == b""  # ffmpeg says "CRC mismatch!" here
    # ffmpeg applies pre-skip and end trim: exactly the samples the granules promise.
    assert len(decoded.stdout) // 2 == round(out.seconds * 48000)
    probe = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "format=duration",
                            "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                           check=True, timeout=60)
    # ffprobe 5.1 adds the pre-skip (6.5 ms for libopus) to an Ogg Opus duration.
    assert float(probe.stdout) == pytest.approx(out.seconds, abs=0.02)


# -- refusals ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tone-3s.webm", "tone-3s.live.webm"])
def test_too_long_webm_is_refused_before_any_ogg_is_written(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webm, "_ogg_pages", lambda opus: pytest.fail("ogg written"))
    with pytest.raises(MediaRejected) as caught:
        check_voice(fixture(name), max_seconds=2.5)
    assert caught.value.reason == "too_long"
    read: list[int] = []

    def counted(packet: bytes) -> int:
        read.append(opus_samples(packet))
        return read[-1]

    monkeypatch.setattr(webm, "opus_samples", counted)
    with pytest.raises(MediaRejected) as caught:
        read_webm(fixture(name), max_seconds=1)
    assert caught.value.reason == "too_long"
    assert sum(read) <= 48000 + 312 + 960  # it stopped past the first second of three


@pytest.mark.parametrize("name, detail", [("tone-1s.vorbis.webm", "A_VORBIS"),
                                          ("video-1s.webm", "2 tracks")])
def test_vorbis_or_video_webm_is_unsupported(name: str, detail: str) -> None:
    with pytest.raises(MediaRejected) as caught:
        check_voice(fixture(name), max_seconds=60)
    assert caught.value.reason == "unsupported" and detail in caught.value.detail


@pytest.mark.parametrize("name", [n for n, _s, _l in WEBM_FIXTURES])
def test_truncated_webm_is_corrupt(name: str) -> None:
    src = fixture(name)
    for cut in (8, 40, 200, len(src) // 3, len(src) // 2, len(src) - 7):
        with pytest.raises(MediaRejected) as caught:
            check_voice(src[:cut], max_seconds=60)
        assert caught.value.reason == "corrupt", cut


def test_random_bytes_after_the_magic() -> None:
    for tail in (b"", b"\0" * 64, bytes(range(256)), b"\xff" * 64):
        with pytest.raises(MediaRejected) as caught:
            check_voice(webm.EBML_MAGIC + tail, max_seconds=60)
        assert caught.value.reason == "corrupt"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["tone-1s.webm", "tone-3s.live.webm", "chrome-2s.webm"]),
       edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255),
                                st.sampled_from(["set", "insert", "delete", "cut"])),
                      min_size=1, max_size=6))
def test_mutated_webm_gives_a_clip_or_a_refusal_never_another_error(
        name: str, edits: list[tuple[float, int, str]]) -> None:
    data = bytearray(fixture(name))
    for where, byte, how in edits:
        i = min(int(where * len(data)), len(data) - 1)
        if how == "set":
            data[i] = byte
        elif how == "insert":
            data[i:i] = bytes([byte])
        elif how == "delete":
            del data[i]
        else:
            del data[max(i, 4):]
    try:
        out = check_voice(bytes(data), max_seconds=60)
    except MediaRejected:
        return
    assert out.content_type == "audio/ogg" and 0 < out.seconds <= 60
    ogg_pages(out.data)


@given(tail=st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_random_bytes_after_the_magic_are_refused(tail: bytes) -> None:
    with pytest.raises(MediaRejected):
        check_voice(webm.EBML_MAGIC + tail, max_seconds=60)


# -- built by hand: lacing, a missing OpusHead, what is refused -------------------------------

def el(eid: int, *body: bytes, unknown: bool = False) -> bytes:
    payload = b"".join(body)
    size = UNKNOWN_SIZE if unknown else (1 << 56 | len(payload)).to_bytes(8, "big")
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + size + payload


def uint(eid: int, value: int) -> bytes:
    return el(eid, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def vint(value: int, length: int) -> bytes:
    return (1 << 7 * length | value).to_bytes(length, "big")


HEAD = struct.pack("<8sBBHIhB", b"OpusHead", 1, 1, 312, 48000, 0, 0)


def block(packets: list[bytes], lacing: str = "none") -> bytes:
    """A block's payload: track 1, timestamp 0, then the frames laced as asked."""
    flags = {"none": 0, "xiph": 2, "fixed": 4, "ebml": 6}[lacing]
    head = vint(1, 1) + b"\0\0" + bytes([0x80 | flags])
    if lacing == "none":
        (only,) = packets
        return head + only
    sizes = b""
    if lacing == "xiph":
        for p in packets[:-1]:
            sizes += b"\xff" * (len(p) // 255) + bytes([len(p) % 255])
    elif lacing == "ebml":
        sizes = vint(len(packets[0]), 4) if len(packets) > 1 else b""
        for a, b in itertools.pairwise(packets[:-1]):
            sizes += vint(len(b) - len(a) + (1 << 27) - 1, 4)
    return head + bytes([len(packets) - 1]) + sizes + b"".join(packets)


def make_webm(blocks: list[bytes], *, doc_type: bytes = b"webm", track: bytes | None = None,
              unknown: bool = True, discard_ns: int = 0, tracks: int = 1) -> bytes:
    entry = track if track is not None else el(0xAE, uint(0xD7, 1), uint(0x83, 2),
                                               el(0x86, b"A_OPUS"), el(0x63A2, HEAD))
    cluster = [uint(0xE7, 0), *(el(0xA3, b) for b in blocks[:-1])]
    last = el(0xA1, blocks[-1])
    cluster.append(el(0xA0, last, el(0x75A2, discard_ns.to_bytes(4, "big", signed=True)))
                   if discard_ns else el(0xA3, blocks[-1]))
    return (el(0x1A45DFA3, uint(0x42F7, 1), el(0x4282, doc_type), uint(0x4285, 2))
            + el(0x18538067, el(0x1549A966, uint(0x2AD7B1, 1_000_000), el(0x4D80, b"Chrome")),
                 el(0x1654AE6B, *[entry] * tracks), el(0x1F43B675, *cluster, unknown=unknown),
                 el(0xEC, bytes(16)), unknown=unknown))


def packet(size: int, toc: int = 0xF8) -> bytes:  # 0xF8: CELT FB 20 ms, one frame
    return bytes([toc]) + bytes(i % 251 for i in range(size - 1))


PACKETS = [packet(n) for n in (60, 254, 255, 256, 510, 700, 61, 61, 61, 61, 90, 80)]


@pytest.mark.parametrize("lacing", ["xiph", "ebml", "fixed"])
def test_laced_blocks_give_the_same_ogg_as_one_packet_per_block(lacing: str) -> None:
    plain = make_webm([block([p]) for p in PACKETS])
    if lacing == "fixed":  # equal sizes only: the four 61-byte packets
        groups = [[p] for p in PACKETS[:6]] + [PACKETS[6:10]] + [[p] for p in PACKETS[10:]]
    else:
        groups = [PACKETS[:3], PACKETS[3:4], PACKETS[4:9], PACKETS[9:]]
    laced = make_webm([block(g, lacing if len(g) > 1 else "none") for g in groups])
    assert laced != plain
    assert webm_to_ogg(laced, max_seconds=60) == webm_to_ogg(plain, max_seconds=60)
    assert read_webm(laced, max_seconds=60).packets == PACKETS


def test_packets_of_255_multiples_and_over_a_page_are_laced_per_rfc_3533() -> None:
    big = [packet(255), packet(510), packet(140_000), packet(65_025), packet(1)]
    data = webm_to_ogg(make_webm([block([p]) for p in big]), max_seconds=60)
    assert ogg_packets(data)[2:] == big
    pages = ogg_pages(data)
    assert any(p[0] & 1 for p in pages)  # a continued page
    # Each page's granule: after the last packet that ends on it, -1 if none does.
    done, expected = 0, []
    for _f, _g, _s, _q, lacing, _b in pages[2:]:
        ends = sum(v < 255 for v in lacing)
        done += ends
        expected.append(960 * done if ends else -1)
    assert [p[1] for p in pages[2:]] == expected and -1 in expected
    seq = [p[3] for p in pages]
    assert seq == list(range(len(pages)))
    stream = io.BytesIO(data)
    mutagen_pages = [OggPage(stream) for _ in pages]
    assert OggPage.to_packets(mutagen_pages)[2:] == big


def test_discard_padding_trims_the_end_but_never_more_than_the_last_packet() -> None:
    blocks = [block([p]) for p in PACKETS]
    assert check_voice(make_webm(blocks), max_seconds=60).seconds == (12 * 960 - 312) / 48000
    trimmed = make_webm(blocks, discard_ns=10_000_000)  # 10 ms = 480 samples
    assert check_voice(trimmed, max_seconds=60).seconds == (12 * 960 - 312 - 480) / 48000
    too_much = make_webm(blocks, discard_ns=900_000_000)
    assert check_voice(too_much, max_seconds=60).seconds == (11 * 960 - 312) / 48000


def test_a_track_without_codec_private_gets_a_built_opus_head() -> None:
    track = el(0xAE, uint(0xD7, 1), uint(0x83, 2), el(0x86, b"A_OPUS"),
               uint(0x56AA, 6_500_000), el(0xE1, uint(0x9F, 2), el(0xB5, struct.pack(">f", 48e3))))
    opus = read_webm(make_webm([block([p]) for p in PACKETS], track=track), max_seconds=60)
    assert opus.head == struct.pack("<8sBBHIhB", b"OpusHead", 1, 2, 312, 48000, 0, 0)


def test_trailing_bytes_of_the_opus_head_are_not_carried_over() -> None:
    track = el(0xAE, uint(0xD7, 1), uint(0x83, 2), el(0x86, b"A_OPUS"),
               el(0x63A2, HEAD + b"my phone"))
    out = check_voice(make_webm([block([p]) for p in PACKETS], track=track), max_seconds=60)
    assert b"my phone" not in out.data


@pytest.mark.parametrize("unknown", [True, False])
def test_known_and_unknown_sizes_read_alike(unknown: bool) -> None:
    blocks = [block([p]) for p in PACKETS]
    assert (webm_to_ogg(make_webm(blocks, unknown=unknown), max_seconds=60)
            == webm_to_ogg(make_webm(blocks, unknown=not unknown), max_seconds=60))


def _refusal(data: bytes) -> tuple[str, str]:
    with pytest.raises(MediaRejected) as caught:
        check_voice(data, max_seconds=60)
    return caught.value.reason, caught.value.detail


def test_what_the_reader_refuses() -> None:
    blocks = [block([p]) for p in PACKETS]
    assert _refusal(make_webm(blocks, doc_type=b"matroska"))[0] == "unsupported"
    assert _refusal(make_webm(blocks, tracks=2))[0] == "unsupported"
    video = el(0xAE, uint(0xD7, 1), uint(0x83, 1), el(0x86, b"V_VP8"))
    assert _refusal(make_webm(blocks, track=video))[0] == "unsupported"
    encrypted = el(0xAE, uint(0xD7, 1), uint(0x83, 2), el(0x86, b"A_OPUS"), el(0x6D80))
    assert _refusal(make_webm(blocks, track=encrypted))[0] == "unsupported"
    chained = make_webm(blocks) + make_webm(blocks)
    assert _refusal(chained)[0] == "unsupported"
    # corrupt: another track's block, a bad OpusHead, bad packets, bad lacing
    other = vint(2, 1) + block([PACKETS[0]])[1:]
    assert _refusal(make_webm([*blocks, other]))[0] == "corrupt"
    bad_head = el(0xAE, uint(0xD7, 1), uint(0x83, 2), el(0x86, b"A_OPUS"), el(0x63A2, b"Opus"))
    assert _refusal(make_webm(blocks, track=bad_head))[0] == "corrupt"
    assert _refusal(make_webm([*blocks, block([b""])]))[0] == "corrupt"
    assert _refusal(make_webm([*blocks, block([b"\x1b" + b"\x03" + b"x" * 9])]))[0] == "corrupt"
    uneven = block([PACKETS[0], PACKETS[6]], "fixed")  # 121 bytes in two
    assert _refusal(make_webm([*blocks, uneven]))[0] == "corrupt"
    overrun = block(PACKETS[:2], "xiph")[:5] + b"\xff\xff\xff\xff\x10" + PACKETS[1]
    assert _refusal(make_webm([*blocks, overrun]))[0] == "corrupt"


def test_more_than_max_packets_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webm, "MAX_PACKETS", 10)
    assert _refusal(make_webm([block([p]) for p in PACKETS]))[0] == "unsupported"


# -- the pieces -------------------------------------------------------------------------------

@pytest.mark.parametrize("toc, rest, samples", [
    (0 << 3, b"", 480), (1 << 3, b"", 960), (2 << 3, b"", 1920), (3 << 3, b"", 2880),  # SILK NB
    (11 << 3, b"", 2880),  # SILK WB 60 ms
    (12 << 3, b"", 480), (13 << 3, b"", 960), (15 << 3, b"", 960),  # Hybrid
    (16 << 3, b"", 120), (17 << 3, b"", 240), (18 << 3, b"", 480), (31 << 3, b"", 960),  # CELT
    (31 << 3 | 1, b"", 1920), (31 << 3 | 2, b"", 1920),  # two frames, equal or not
    (31 << 3 | 3, b"\x03", 2880), (16 << 3 | 3, b"\x30", 5760),  # code 3: M frames
    (31 << 3 | 3, b"\x83", 2880),  # VBR and padding flags do not count
    (3 << 3 | 1, b"", 5760),  # 2 x 60 ms: the longest packet
])
def test_opus_packet_durations_from_the_toc(toc: int, rest: bytes, samples: int) -> None:
    assert opus_samples(bytes([toc]) + rest + b"\0" * 4) == samples


@pytest.mark.parametrize("bad", [b"", bytes([31 << 3 | 3]), bytes([31 << 3 | 3, 0]),
                                 bytes([3 << 3 | 3, 3]), bytes([16 << 3 | 3, 49])])
def test_opus_packets_without_frames_or_over_120_ms_are_corrupt(bad: bytes) -> None:
    with pytest.raises(MediaRejected) as caught:
        opus_samples(bad)
    assert caught.value.reason == "corrupt"


def test_ogg_crc() -> None:
    assert ogg_crc(b"") == 0
    assert ogg_crc(b"123456789") == 0x89A1897F  # CRC-32/CKSUM's check value without its xor
    data = fixture("tone-1s.opus.ogg")
    assert ogg_crc(data) == crc_by_zlib(data)
    assert ogg_crc(data[100:], ogg_crc(data[:100])) == ogg_crc(data)
    ogg_pages(data)  # the pages ffmpeg wrote pass the same check
