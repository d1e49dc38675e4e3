"""The pure media checks: images and voice notes, no sockets, no event loop."""

from __future__ import annotations

import io
import random
import struct
import time
import zlib
from pathlib import Path

import mutagen
import pillow_heif
import pytest
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from PIL import Image, ImageCms, ImageDraw, ImageFile, PngImagePlugin

from chatd.media import (
    AVATAR_SIDE,
    NEAR_DUPLICATE_DISTANCE,
    MediaRejected,
    check_image,
    check_voice,
    phash_distance,
)

MAX_PIXELS = 40_000_000
DATA = Path(__file__).parent / "data" / "media"
GPS_IFD = 0x8825
ORIENTATION = 0x0112


# -- picture makers ---------------------------------------------------------------------------

def picture(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A photo-like picture: a gradient, big shapes and some noise, different for each seed."""
    rnd = random.Random(seed)
    base = Image.linear_gradient("L").resize(size).rotate(rnd.randrange(360))
    im = Image.merge("RGB", (base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                             base.transpose(Image.Transpose.FLIP_TOP_BOTTOM)))
    draw = ImageDraw.Draw(im)
    w, h = size
    for _ in range(8):
        x, y = rnd.randrange(w), rnd.randrange(h)
        r = rnd.randrange(w // 10, w // 3)
        colour = tuple(rnd.randrange(256) for _ in range(3))
        shape = draw.ellipse if rnd.random() < 0.5 else draw.rectangle
        shape((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
    noise = Image.effect_noise(size, 20).convert("RGB")
    return Image.blend(im, noise, 0.1)


def encode(im: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of ``width x height`` zeros: kilobytes on disk, gigabytes decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    idat = b"".join(z.compress(row * 1000) for _ in range(height // 1000))
    idat += z.compress(row * (height % 1000)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 15 Pro"  # Model
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.5)
    gps[3], gps[4] = "E", (2.0, 17.0, 40.2)
    return exif


XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
       b'22-rdf-syntax-ns#"><rdf:Description exif:GPSLatitude="48,51.5N"/></rdf:RDF>'
       b"</x:xmpmeta>")


# -- images: metadata ------------------------------------------------------------------------

def test_exif_gps_xmp_icc_and_comments_are_gone() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = encode(picture(1), exif=exif_with_gps().tobytes(), xmp=XMP, icc_profile=icc,
                 comment=b"secret comment")
    assert Image.open(io.BytesIO(src)).getexif().get_ifd(GPS_IFD)  # the input has them
    assert b"Exif" in src and b"xmpmeta" in src and b"secret comment" in src

    out = check_image(src, max_pixels=MAX_PIXELS)
    for blob in (out.data, out.thumb):
        im = Image.open(io.BytesIO(blob))
        assert not im.getexif().get_ifd(GPS_IFD)
        assert not im.getexif()
        assert not set(im.info) & {"exif", "icc_profile", "xmp", "comment", "photoshop"}
        for marker in (b"Exif", b"xmpmeta", b"secret comment", b"PhoneMaker", b"ICC_PROFILE"):
            assert marker not in blob
    assert out.content_type == out.thumb_type == "image/jpeg"


def test_png_text_chunks_are_gone() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Location", "48.85N 2.29E")
    info.add_itxt("Comment", "secret")
    src = encode(picture(2), "PNG", pnginfo=info)
    out = check_image(src, max_pixels=MAX_PIXELS)
    assert b"48.85N" not in out.data and b"secret" not in out.data
    assert out.content_type == "image/jpeg"  # opaque: a photo


def test_exif_orientation_is_applied() -> None:
    im = Image.new("RGB", (200, 100), "white")
    im.paste((255, 0, 0), (0, 0, 40, 40))  # red in the stored top-left corner
    src = encode(im, exif=exif_with_gps(orientation=6).tobytes(), quality=95)
    out = check_image(src, max_pixels=MAX_PIXELS)
    assert (out.width, out.height) == (100, 200)
    shown = Image.open(io.BytesIO(out.data)).convert("RGB")
    assert shown.size == (100, 200)
    # Orientation 6 is "rotate 90° clockwise to show": the corner is now at the top right.
    r, g, b = shown.getpixel((90, 10))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60
    assert shown.getpixel((10, 10)) != shown.getpixel((90, 10))


# -- images: refusals ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def huge_png() -> bytes:
    return png_bomb(30_000, 30_000)


def test_a_decompression_bomb_is_refused_from_its_header(huge_png: bytes,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(huge_png) < 200_000  # 900 megapixels in ~110 KB

    def no_decoding(self: object) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    t0 = time.perf_counter()
    with pytest.raises(MediaRejected) as caught:
        check_image(huge_png, max_pixels=MAX_PIXELS)
    assert caught.value.reason == "too_many_pixels"
    assert time.perf_counter() - t0 < 1.0


def test_our_limit_holds_below_pillows_own_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = png_bomb(8000, 8000)  # 64 Mpx: under Pillow's 89 Mpx warning, over our 40
    assert Image.MAX_IMAGE_PIXELS and Image.MAX_IMAGE_PIXELS > 8000 * 8000
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded"))
    with pytest.raises(MediaRejected) as caught:
        check_image(bomb, max_pixels=MAX_PIXELS)
    assert caught.value.reason == "too_many_pixels"


def test_pillows_guard_counts_as_too_many_pixels_and_stays_as_it_was(huge_png: bytes) -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(MediaRejected) as caught:
        check_image(huge_png, max_pixels=10**12)  # ours allows it; Pillow's refuses
    assert caught.value.reason == "too_many_pixels"
    assert before == Image.MAX_IMAGE_PIXELS


def test_content_decides_not_the_name(tmp_path: Path) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_text("just some text, not a JPEG\n" * 20)
    with pytest.raises(MediaRejected) as caught:
        check_image(fake, max_pixels=MAX_PIXELS)
    assert caught.value.reason == "unsupported"
    # And a real PNG named .jpg is taken as the PNG it is.
    real = tmp_path / "drawing.jpg"
    real.write_bytes(encode(picture(3), "PNG"))
    assert check_image(real, max_pixels=MAX_PIXELS).content_type == "image/jpeg"


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO", "PPM"])
def test_formats_outside_the_list_are_unsupported(fmt: str) -> None:
    with pytest.raises(MediaRejected) as caught:
        check_image(encode(picture(4, (64, 48)), fmt), max_pixels=MAX_PIXELS)
    assert caught.value.reason == "unsupported"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_corrupt(fmt: str) -> None:
    src = encode(picture(5), fmt)
    with pytest.raises(MediaRejected) as caught:
        check_image(src[: len(src) // 2], max_pixels=MAX_PIXELS)
    assert caught.value.reason == "corrupt"


def test_empty_is_corrupt() -> None:
    with pytest.raises(MediaRejected) as caught:
        check_image(b"", max_pixels=MAX_PIXELS)
    assert caught.value.reason == "corrupt"


# -- images: what comes out ------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "HEIF"])
def test_accepted_formats(fmt: str) -> None:
    assert pillow_heif  # registered by chatd.media.images
    out = check_image(encode(picture(6, (300, 200)), fmt), max_pixels=MAX_PIXELS)
    assert out.content_type == "image/jpeg"
    assert (out.width, out.height) == (300, 200)
    assert Image.open(io.BytesIO(out.data)).format == "JPEG"


def test_an_animated_gif_becomes_its_first_frame() -> None:
    frames = [Image.new("RGB", (60, 40), c) for c in ("red", "blue", "green")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = check_image(buf.getvalue(), max_pixels=MAX_PIXELS)
    r, g, b = Image.open(io.BytesIO(out.data)).convert("RGB").getpixel((30, 20))  # type: ignore[misc]
    assert r > 200 and g < 50 and b < 50


def test_large_photos_are_scaled_and_thumbnailed() -> None:
    out = check_image(encode(picture(7, (4000, 1000))), max_pixels=MAX_PIXELS)
    assert (out.width, out.height) == (2560, 640)
    assert Image.open(io.BytesIO(out.data)).size == (2560, 640)
    thumb = Image.open(io.BytesIO(out.thumb))
    assert thumb.size == (320, 80) and thumb.format == "JPEG"
    small = check_image(encode(picture(7, (4000, 1000))), max_pixels=MAX_PIXELS,
                        max_side=1000, thumb_side=100)
    assert (small.width, small.height) == (1000, 250)
    assert Image.open(io.BytesIO(small.thumb)).size == (100, 25)


def test_real_transparency_stays_png_and_opaque_alpha_becomes_jpeg() -> None:
    im = picture(8, (400, 300)).convert("RGBA")
    im.paste((0, 0, 0, 0), (0, 0, 100, 100))
    out = check_image(encode(im, "PNG"), max_pixels=MAX_PIXELS)
    assert out.content_type == out.thumb_type == "image/png"
    decoded = Image.open(io.BytesIO(out.data))
    assert decoded.mode == "RGBA" and decoded.getpixel((10, 10))[3] == 0  # type: ignore[index]
    assert Image.open(io.BytesIO(out.thumb)).mode == "RGBA"

    opaque = check_image(encode(picture(8, (400, 300)).convert("RGBA"), "PNG"),
                         max_pixels=MAX_PIXELS)
    assert opaque.content_type == "image/jpeg"
    palette = picture(8, (400, 300)).convert("P")
    palette.info["transparency"] = 0
    assert check_image(encode(palette, "PNG"), max_pixels=MAX_PIXELS).content_type == "image/png"


def test_avatars_are_centre_squares_of_at_most_512() -> None:
    im = Image.new("RGB", (2000, 1000), "blue")
    im.paste((255, 0, 0), (500, 0, 1500, 1000))  # the centre square is red
    out = check_image(encode(im, "PNG"), max_pixels=MAX_PIXELS, square=True)
    assert (out.width, out.height) == (AVATAR_SIDE, AVATAR_SIDE)
    decoded = Image.open(io.BytesIO(out.data)).convert("RGB")
    for xy in ((2, 2), (509, 509), (256, 256)):
        r, _g, b = decoded.getpixel(xy)  # type: ignore[misc]
        assert r > 200 and b < 60, xy
    small = check_image(encode(Image.new("RGB", (300, 200), "red")), max_pixels=MAX_PIXELS,
                        square=True)
    assert (small.width, small.height) == (200, 200)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    im = Image.new("I;16", (64, 64), 32768)  # mid grey
    out = check_image(encode(im, "PNG"), max_pixels=MAX_PIXELS)
    r, _g, _b = Image.open(io.BytesIO(out.data)).convert("RGB").getpixel((32, 32))  # type: ignore[misc]
    assert 110 < r < 145


def test_inputs_as_bytes_file_and_path_agree(tmp_path: Path) -> None:
    src = encode(picture(9))
    path = tmp_path / "p"
    path.write_bytes(src)
    a = check_image(src, max_pixels=MAX_PIXELS)
    b = check_image(io.BytesIO(src), max_pixels=MAX_PIXELS)
    c = check_image(path, max_pixels=MAX_PIXELS)
    assert a == b == c


# -- images: near duplicates -----------------------------------------------------------------

def test_copies_are_near_duplicates_and_different_pictures_are_not() -> None:
    copies, others = [], []
    for seed in range(6):
        im = picture(100 + seed)
        original = check_image(encode(im, quality=95), max_pixels=MAX_PIXELS).phash
        half = im.resize((400, 300), Image.Resampling.BILINEAR)
        for variant in (encode(half), encode(im, quality=30), encode(im, "WEBP", quality=40),
                        encode(half, "PNG")):
            copies.append(phash_distance(original,
                                         check_image(variant, max_pixels=MAX_PIXELS).phash))
        other = check_image(encode(picture(200 + seed)), max_pixels=MAX_PIXELS).phash
        others.append(phash_distance(original, other))
    assert max(copies) <= NEAR_DUPLICATE_DISTANCE, copies
    assert min(others) > NEAR_DUPLICATE_DISTANCE, others
    print(f"copies {sorted(copies)}; unrelated {sorted(others)}")


def test_phash_distance() -> None:
    assert phash_distance(0, 0) == 0
    assert phash_distance(0, 2**64 - 1) == 64
    assert phash_distance(0b1011, 0b0001) == 2


# -- voice -----------------------------------------------------------------------------------

def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.mark.parametrize("name, content_type, seconds", [
    ("tone-1s.m4a", "audio/mp4", 1.064),
    ("tone-3s.m4a", "audio/mp4", 3.064),
    ("tone-1s.opus.ogg", "audio/ogg", 1.0),
    ("tone-3s.opus.ogg", "audio/ogg", 3.0),
])
def test_voice_accepted_with_its_duration_and_no_tags(name: str, content_type: str,
                                                      seconds: float) -> None:
    src = fixture(name)
    assert b"secret title" in src
    out = check_voice(src, max_seconds=60)
    assert out.content_type == content_type
    assert out.seconds == pytest.approx(seconds, abs=0.01)
    assert b"secret title" not in out.data and b"my phone" not in out.data
    parsed = mutagen.File(io.BytesIO(out.data))
    assert parsed is not None and not parsed.tags
    assert parsed.info.length == pytest.approx(seconds, abs=0.01)
    assert check_voice(out.data, max_seconds=60) == out  # cleaning is idempotent
    assert check_voice(DATA / name, max_seconds=60) == out


def test_opus_tags_lose_the_vendor_and_padding_too() -> None:
    out = check_voice(fixture("tone-1s.opus.ogg"), max_seconds=60)
    assert b"Lavc" not in out.data and b"libopus" not in out.data
    assert OggOpus(io.BytesIO(out.data)).tags.vendor == ""


def test_opus_comments_over_several_pages_are_dropped_and_pages_renumbered() -> None:
    buf = io.BytesIO(fixture("tone-3s.opus.ogg"))
    tagged = OggOpus(buf)
    tagged["metadata_block_picture"] = ["x" * 150_000]  # ~ three Ogg pages of comment
    tagged.save(buf)
    src = buf.getvalue()
    out = check_voice(src, max_seconds=60)
    assert len(out.data) < len(src) - 140_000
    assert out.seconds == pytest.approx(3.0)
    from mutagen.ogg import OggPage
    pages, stream = [], io.BytesIO(out.data)
    while stream.tell() < len(out.data):
        pages.append(OggPage(stream))
    assert [p.sequence for p in pages] == list(range(len(pages)))


def test_mp4_location_in_ilst_and_in_udta_is_dropped() -> None:
    buf = io.BytesIO(fixture("tone-1s.m4a"))
    tagged = MP4(buf)
    tagged["\xa9xyz"] = ["+48.8577+002.2950/"]  # where iPhones put the place
    tagged.save(buf)
    assert b"+48.8577" in buf.getvalue()
    assert b"+48.8577" not in check_voice(buf.getvalue(), max_seconds=60).data

    # The QuickTime way: a bare ©xyz box in moov/udta (moov is last here: no offsets move).
    src = fixture("tone-3s.m4a")
    moov = src.rindex(b"moov") - 4
    assert moov + struct.unpack_from(">I", src, moov)[0] == len(src)
    xyz = b"\xa9xyz" + struct.pack(">HH", 18, 0x15C7) + b"+48.8577+002.2950/"
    box = struct.pack(">I", 4 + len(xyz)) + xyz
    udta = struct.pack(">I", 8 + len(box)) + b"udta" + box
    body = src[moov + 8 :] + udta
    with_place = src[:moov] + struct.pack(">I", 8 + len(body)) + b"moov" + body
    assert MP4(io.BytesIO(with_place)).info.length == pytest.approx(3.064)
    out = check_voice(with_place, max_seconds=60)
    assert b"+48.8577" not in out.data and out.seconds == pytest.approx(3.064)


def test_mp4_chunk_offsets_follow_the_dropped_boxes() -> None:
    src = fixture("tone-1s.m4a")  # moov (with its tags) before mdat: dropping moves mdat
    out = check_voice(src, max_seconds=60).data
    assert len(out) < len(src)

    def chunks(data: bytes) -> list[int]:
        i = data.index(b"stco") + 4
        (count,) = struct.unpack_from(">I", data, i + 4)
        return list(struct.unpack_from(f">{count}I", data, i + 8))

    old, new = chunks(src), chunks(out)
    assert old != new and len(old) == len(new) > 0
    for a, b in zip(old, new, strict=True):
        assert src[a : a + 64] == out[b : b + 64]


def test_voice_too_long() -> None:
    for name in ("tone-3s.m4a", "tone-3s.opus.ogg"):
        with pytest.raises(MediaRejected) as caught:
            check_voice(fixture(name), max_seconds=2.5)
        assert caught.value.reason == "too_long"


@pytest.mark.parametrize("name", ["tone-1s.mp3", "tone-0.5s.wav", "tone-1s.vorbis.ogg",
                                  "video-1s.mp4"])
def test_other_audio_and_video_are_unsupported(name: str) -> None:
    with pytest.raises(MediaRejected) as caught:
        check_voice(fixture(name), max_seconds=60)
    assert caught.value.reason == "unsupported"


def test_text_named_like_voice_is_unsupported() -> None:
    with pytest.raises(MediaRejected) as caught:
        check_voice(b"hello, this is not a voice note", max_seconds=60)
    assert caught.value.reason == "unsupported"


@pytest.mark.parametrize("name", ["tone-1s.m4a", "tone-3s.m4a", "tone-1s.opus.ogg"])
def test_truncated_or_empty_voice_is_corrupt(name: str) -> None:
    src = fixture(name)
    for cut in (b"", src[:1], src[:12], src[: len(src) // 2], src[:-7]):
        with pytest.raises(MediaRejected) as caught:
            check_voice(cut, max_seconds=60)
        assert caught.value.reason in ("corrupt", "unsupported"), len(cut)
        if len(cut) > 12:
            assert caught.value.reason == "corrupt", len(cut)
