"""Decode untrusted photo bytes into an RGB array, refusing bad input with a typed error.

Accepts JPEG, PNG, WebP and GIF only; an animated image uses its first frame. EXIF orientation is
applied; grey, palette, CMYK, 16-bit and alpha images become RGB (alpha over white).

Everything that makes decoding slow or big is refused from the header, before any Pillow plugin
runs (:func:`core.vision.headers.read_header`): the format (checked by its magic bytes, then only that
format's Pillow plugin may open it), the size (:data:`MAX_BYTES`), the pixel count
(:data:`MAX_PIXELS`), the aspect ratio (:data:`MAX_ASPECT`), and the structure Pillow and libjpeg walk
(JPEG scans and segments, PNG chunks). So a decompression bomb or a scan bomb costs nothing, and the
worst photo that passes decodes in about a second and under 450 MB; large ones are decoded two at a
time (:data:`LARGE_DECODES`), so concurrent uploads cannot add up to gigabytes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from core.app.i18n import N_
from core.errors import (
    BadAspectRatio,
    BadImage,
    FileTooLarge,
    ImageTooSmall,
    NotAnImage,
    TooManyPixels,
    TruncatedImage,
)
from core.vision.headers import MAX_SCANS, check_scans, read_header

log = logging.getLogger(__name__)

# Decoding runs in threads, where warnings.catch_warnings() is not safe (it swaps process-wide
# state). Pillow's decompression-bomb warning (at 89 MP) is moot under our own 40 MP limit, checked
# from the header and again after opening; its notes on damaged EXIF are no one's business but ours.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

MAX_BYTES = 20 * 1024 * 1024
"""Largest accepted file, bytes (20 MB, the Telegram bot download limit)."""
TOO_BIG = N_("That file is {size:.1f} MB; I can take photos up to {limit} MB.")
"""The refusal of a file over :data:`MAX_BYTES` (``size`` in MB, ``limit`` in MB)."""
MAX_PIXELS = 40_000_000
"""Largest accepted image, pixels (40 megapixels)."""
MIN_SIDE = 64
"""Smallest accepted width or height, pixels."""
BAND_ROWS = 256
"""Rows converted to RGB at a time (a few megabytes)."""
LARGE_PIXELS = 12_000_000
"""Images of more pixels than a 12 MP phone photo are decoded at most :data:`LARGE_DECODES` at a time."""
LARGE_DECODES = 2
"""Large images decoded at once in this process (each needs up to ~450 MB while decoding at 40 MP)."""
_large_decodes = threading.BoundedSemaphore(LARGE_DECODES)
MAX_ASPECT = 10.0
"""Longest accepted ratio of the longer side to the shorter. Photos are 1:1 to 1:2.4 (21:9), phone
panoramas 1:3 to 1:8; Telegram itself refuses photos beyond 1:20. Faces are found on a copy whose
longer side is 640 px: at 1:10 its shorter side is 64 px (:data:`MIN_SIDE`), room for a face."""

__all__ = [
    "MAX_ASPECT",
    "MAX_BYTES",
    "MAX_PIXELS",
    "MAX_SCANS",
    "MIN_SIDE",
    "decode_image",
    "read_image_file",
]


def decode_image(data: bytes, min_side: int = MIN_SIDE) -> np.ndarray:
    """Photo bytes -> RGB uint8 array of shape (H, W, 3), upright per EXIF.

    Raises :class:`~core.errors.BadImage` subclasses: ``FileTooLarge`` (> 20 MB), ``NotAnImage``
    (``UnsupportedFormat`` for images of other formats), ``TooManyPixels`` (> 40 MP),
    ``ImageTooSmall`` (< ``min_side`` px a side, default 64; face crops such as FER2013's 48x48
    images pass a smaller one), ``BadAspectRatio`` (beyond 1:10), ``TooComplex`` (too many JPEG scans
    or segments, PNG chunks), ``TruncatedImage`` (cut off or damaged).
    """
    if not data:
        raise NotAnImage(N_("That file is empty, not a photo."))
    if len(data) > MAX_BYTES:
        raise FileTooLarge(TOO_BIG, size=len(data) / 1e6, limit=MAX_BYTES // 2**20)
    header = read_header(data)
    check_size(header.width, header.height, min_side)
    check_scans(header)
    try:
        # Only the plugin of the format the magic bytes named may open it.
        img: Image.Image = Image.open(io.BytesIO(data), formats=[header.format])
        check_size(*img.size, min_side)  # a GIF frame larger than its screen grows the image
        large = img.width * img.height > LARGE_PIXELS
        with _large_decodes if large else contextlib.nullcontext():
            img.load()  # animated GIF/WebP/PNG: the first frame
            img = _upright(img)  # (the unturned copy is freed)
            rgb = _rgb_array(img)
            del img
    except Image.DecompressionBombError:
        raise TooManyPixels(
            N_("That image is bigger than it says; I can take up to {limit} megapixels."),
            limit=MAX_PIXELS // 1_000_000,
        ) from None
    except (BadImage, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - after the header checks, any failure is a damaged file
        # Pillow's plugins raise OSError, SyntaxError, ValueError, EOFError, struct.error, ...
        log.debug("decode failed: %r", exc)
        if "truncated" in str(exc).lower() or isinstance(exc, (OSError, EOFError, SyntaxError)):
            raise TruncatedImage(N_("That photo is cut off or damaged; please send it again.")) from None
        raise TruncatedImage(
            N_("That photo is damaged ({error}); please send it again."), error=exc.__class__.__name__
        ) from None
    return rgb


def check_size(width: int, height: int, min_side: int = MIN_SIDE) -> None:
    """Refuse an image of ``width`` x ``height`` pixels that is too big, too small or too thin."""
    if width * height > MAX_PIXELS:
        raise TooManyPixels(
            N_(
                "That image is {width}x{height} ({megapixels:.0f} megapixels); "
                "I can take up to {limit} megapixels."
            ),
            width=width,
            height=height,
            megapixels=width * height / 1e6,
            limit=MAX_PIXELS // 1_000_000,
        )
    if min(width, height) < min_side:
        raise ImageTooSmall(
            N_("That image is only {width}x{height} pixels; send a photo at least {min_side} px a side."),
            width=width,
            height=height,
            min_side=min_side,
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise BadAspectRatio(
            N_(
                "That image is {width}x{height} pixels, too long and thin to look for faces in; "
                "send a photo no longer than {ratio:.0f} times its width."
            ),
            width=width,
            height=height,
            ratio=MAX_ASPECT,
        )


def _upright(img: Image.Image) -> Image.Image:
    """``img`` turned upright per its EXIF orientation; as it is when its EXIF cannot be read."""
    try:
        return ImageOps.exif_transpose(img) or img
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - broken EXIF: the pixels are still a photo
        log.info("EXIF orientation ignored (%s)", exc.__class__.__name__)
        return img


def _rgb_array(img: Image.Image) -> np.ndarray:
    """The image as an RGB uint8 array, converted a band of rows at a time.

    Converting whole images costs several full-size copies (Pillow's ``tobytes`` alone holds two);
    by bands, the peak is the decoded image plus the array: about 280 MB for 40 megapixels instead
    of 500. Alpha goes over white; 16- and 32-bit grey is scaled to its own maximum."""
    width, height = img.size
    out = np.empty((height, width, 3), dtype=np.uint8)
    alpha = img.mode in ("RGBA", "LA", "PA", "RGBa") or (img.mode == "P" and "transparency" in img.info)
    deep = img.mode.startswith("I") or img.mode == "F"
    scale = 255.0 / max(1.0, float(img.getextrema()[1])) if deep else 1.0  # type: ignore[arg-type]
    for top in range(0, height, BAND_ROWS):
        band = img.crop((0, top, width, min(height, top + BAND_ROWS)))
        rows = out[top : top + band.height]
        if img.mode == "RGB":
            rows[:] = np.asarray(band)
        elif alpha:
            rgba = np.asarray(band.convert("RGBA"), dtype=np.uint16)
            a = rgba[..., 3:]
            rows[:] = (rgba[..., :3] * a + 255 * (255 - a) + 127) // 255
        elif deep:
            rows[:] = (np.asarray(band, dtype=np.float32) * scale).clip(0, 255).astype(np.uint8)[..., None]
        else:
            rows[:] = np.asarray(band.convert("RGB"))
    return out


def read_image_file(path: Path, min_side: int = MIN_SIDE) -> np.ndarray:
    """Read and decode a file; a missing file raises ``FileNotFoundError``, the rest as decode_image."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise FileTooLarge(TOO_BIG, size=size / 1e6, limit=MAX_BYTES // 2**20)
    with path.open("rb") as file:
        data = file.read(MAX_BYTES + 1)  # never more, whatever the file grew to since stat()
    return decode_image(data, min_side)
