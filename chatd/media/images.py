"""Pure image check: decide by content, refuse bombs before decoding, re-encode without metadata.

``check_image`` takes JPEG (and MPO, a JPEG with extra frames), PNG, WebP, HEIC/HEIF and GIF;
an animated GIF, PNG or WebP becomes a still of its first frame. Everything else is
``unsupported``: Pillow is only allowed to try those decoders (never EPS, PSD, TIFF, ...), so
the file name and the declared type play no part.

Guarantees of a returned :class:`CheckedImage`:

- the header's ``width * height`` was at most ``max_pixels`` before any pixel was decoded
  (Pillow's own ``MAX_IMAGE_PIXELS`` guard is left as it is and counts as ``too_many_pixels``);
- EXIF orientation is applied, then the pixels are written to a new image, so no EXIF, GPS,
  XMP, ICC profile, comment or text chunk survives; an ICC profile is applied (to sRGB) first;
- JPEG (quality 85) unless the image has real transparency, then PNG;
- the longer side is at most ``max_side``; ``square=True`` (avatars) crops the centre square,
  at most :data:`AVATAR_SIDE` px;
- ``thumb``: longer side at most ``thumb_side``, same type as ``data``;
- ``phash``: a 64-bit perceptual hash of the result; compare with :func:`phash_distance`.

No asyncio and no I/O besides reading a given path: callers run it in a worker thread.
Pillow's ``LOAD_TRUNCATED_IMAGES`` must stay False (its default) for truncation to be refused.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import imagehash
import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from chatd.media.errors import MediaRejected

__all__ = [
    "AVATAR_SIDE",
    "IMAGE_FORMATS",
    "NEAR_DUPLICATE_DISTANCE",
    "CheckedImage",
    "check_image",
    "phash_distance",
]

# Adds the HEIF decoder to Pillow's registry (additive; nothing else in Pillow changes).
pillow_heif.register_heif_opener()

#: Pillow format ids we let decode; "MPO" comes out of the JPEG opener for multi-frame JPEGs.
IMAGE_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "HEIF")
#: Largest side of an avatar.
AVATAR_SIDE: Final = 512
#: Two hashes at most this far apart are the same picture (resized, re-compressed).
#: Measured (tests/test_media_checks.py, 30 synthetic photos): a 50% copy or a quality-30
#: copy 0-2; 25% at quality 20, +20% brightness or a 5% crop up to 12; unrelated 18 and more.
NEAR_DUPLICATE_DISTANCE: Final = 10

JPEG_QUALITY: Final = 85
_SRGB: Final = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_GREY16: Final = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
# What hostile input makes Pillow's decoders raise; all of it is the file's fault.
_DECODE_ERRORS: Final = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError,
                         TypeError, struct.error, zlib.error)


@dataclass(frozen=True, slots=True)
class CheckedImage:
    data: bytes
    content_type: str
    width: int
    height: int
    thumb: bytes
    thumb_type: str
    phash: int


def phash_distance(a: int, b: int) -> int:
    """Hamming distance of two 64-bit hashes: 0 is identical, about 32 is unrelated."""
    return (a ^ b).bit_count()


def check_image(data: bytes | BinaryIO | Path, *, max_pixels: int, max_side: int = 2560,
                thumb_side: int = 320, square: bool = False) -> CheckedImage:
    """Check and clean one uploaded image; raises :class:`MediaRejected`."""
    source: BinaryIO | Path
    if isinstance(data, Path):
        if data.stat().st_size == 0:
            raise MediaRejected("corrupt", "empty")
        source = data
    elif isinstance(data, bytes | bytearray | memoryview):
        if not data:
            raise MediaRejected("corrupt", "empty")
        source = io.BytesIO(data)
    else:
        source = data
    target = min(max_side, AVATAR_SIDE) if square else max_side
    try:
        with Image.open(source, formats=IMAGE_FORMATS) as im:
            width, height = im.size  # from the header: nothing is decoded yet
            if width <= 0 or height <= 0:
                raise MediaRejected("corrupt", "empty canvas")
            if width * height > max_pixels:
                raise MediaRejected("too_many_pixels", f"{width}x{height}")
            _draft(im, target, square)
            im.load()
            img = _orient(im)
            img = _to_srgb(_wide_grey_to_8bit(img))
    except MediaRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaRejected("too_many_pixels", str(exc)) from None
    except UnidentifiedImageError:
        raise MediaRejected("unsupported", "not an image format we take") from None
    except _DECODE_ERRORS as exc:
        raise MediaRejected("corrupt", f"{type(exc).__name__}: {exc}") from None

    img, alpha = _flatten(img)
    if square:
        img = _centre_square(img)
    img = _bare(_fit(img, target))
    body, content_type = _encode(img, alpha)
    thumb_img = _fit(img, thumb_side)
    thumb, thumb_type = _encode(thumb_img, alpha)
    return CheckedImage(data=body, content_type=content_type, width=img.width,
                        height=img.height, thumb=thumb, thumb_type=thumb_type,
                        # From the thumbnail: phash shrinks to 32x32 anyway (5x faster).
                        phash=int(str(imagehash.phash(thumb_img)), 16))


def _draft(im: Image.Image, target: int, square: bool) -> None:
    # A big JPEG decodes straight from the DCT at 1/2..1/8 scale: less memory, less time.
    if im.format not in ("JPEG", "MPO"):
        return
    w, h = im.size
    scale = target / (min(w, h) if square else max(w, h))
    if scale < 1:
        im.draft(None, (math.ceil(w * scale), math.ceil(h * scale)))


def _orient(im: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im)
    except _DECODE_ERRORS:
        # An unreadable EXIF block costs the photo its orientation, not its upload.
        return im.copy()


def _wide_grey_to_8bit(img: Image.Image) -> Image.Image:
    # Pillow's convert("L") clips 16-bit grey at 255 (a white picture); scale instead.
    if img.mode in _GREY16:
        return img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    return img


def _to_srgb(img: Image.Image) -> Image.Image:
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        out = ImageCms.profileToProfile(img, source, _SRGB,
                                        outputMode="RGBA" if img.mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, *_DECODE_ERRORS):
        return img  # a broken profile: keep the pixels as they are
    return out if out is not None else img


def _flatten(img: Image.Image) -> tuple[Image.Image, bool]:
    """RGB, or RGBA when some pixel is not fully opaque."""
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        low, _high = rgba.getchannel("A").getextrema()
        if isinstance(low, int | float) and low < 255:
            return rgba, True
        return rgba.convert("RGB"), False
    return img.convert("RGB"), False


def _centre_square(img: Image.Image) -> Image.Image:
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side))


def _fit(img: Image.Image, limit: int) -> Image.Image:
    longer = max(img.size)
    if longer <= limit:
        return img
    size = (max(1, round(img.width * limit / longer)), max(1, round(img.height * limit / longer)))
    # reducing_gap: a box reduction first, then Lanczos on the last 2x; a quarter of the
    # time of Lanczos from full size (bench.uploads), the same to the eye.
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _bare(img: Image.Image) -> Image.Image:
    # A new image has empty ``info`` and no EXIF: savers cannot copy what is not there.
    out = Image.new(img.mode, img.size)
    out.paste(img)
    return out


def _encode(img: Image.Image, alpha: bool) -> tuple[bytes, str]:
    buf = io.BytesIO()
    if alpha:
        img.save(buf, "PNG")
        return buf.getvalue(), "image/png"
    # Baseline, not progressive: progressive encoding took 3x the CPU (200 ms vs 65 ms for a
    # 2 MB photo here) for 5% fewer bytes.
    img.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue(), "image/jpeg"
