"""Decode untrusted photo bytes into an RGB array, refusing bad input with a typed error.

Accepts JPEG, PNG, WebP (and whatever else Pillow reads); an animated image uses its first frame.
EXIF orientation is applied; grey, palette, CMYK and alpha images become RGB (alpha over white).
Limits are checked from the header before any pixel is decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import FileTooLarge, ImageTooSmall, NotAnImage, TooManyPixels, TruncatedImage

MAX_BYTES = 20 * 1024 * 1024
"""Largest accepted file, bytes (20 MB, the Telegram bot download limit)."""
MAX_PIXELS = 40_000_000
"""Largest accepted image, pixels (40 megapixels)."""
MIN_SIDE = 64
"""Smallest accepted width or height, pixels."""


def decode_image(data: bytes, min_side: int = MIN_SIDE) -> np.ndarray:
    """Photo bytes -> RGB uint8 array of shape (H, W, 3), upright per EXIF.

    Raises :class:`~core.errors.BadImage` subclasses: ``FileTooLarge`` (> 20 MB), ``NotAnImage``,
    ``TooManyPixels`` (> 40 MP), ``ImageTooSmall`` (< ``min_side`` px a side, default 64; face crops
    such as FER2013's 48x48 images pass a smaller one), ``TruncatedImage``.
    """
    if not data:
        raise NotAnImage("That file is empty, not a photo.")
    if len(data) > MAX_BYTES:
        raise FileTooLarge(
            f"That file is {len(data) / 1e6:.1f} MB; I can take photos up to {MAX_BYTES // 2**20} MB."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return _raise_pixels_or_not_image(data)
    except (OSError, ValueError, SyntaxError) as exc:
        raise NotAnImage(f"I could not read that as a photo ({exc.__class__.__name__}).") from None
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise TooManyPixels(
            f"That image is {width}x{height} ({width * height / 1e6:.0f} megapixels); "
            f"I can take up to {MAX_PIXELS // 1_000_000} megapixels."
        )
    if min(width, height) < min_side:
        raise ImageTooSmall(
            f"That image is only {width}x{height} pixels; send a photo at least {min_side} px a side."
        )
    try:
        img.seek(0)  # animated GIF/WebP/PNG: first frame
        img.load()
        img = ImageOps.exif_transpose(img) or img
        rgb = _to_rgb(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise TruncatedImage(
            "That photo is cut off or damaged; please send it again."
            if "truncated" in str(exc).lower() or isinstance(exc, OSError)
            else f"That photo is damaged ({exc.__class__.__name__}); please send it again."
        ) from None
    return np.asarray(rgb, dtype=np.uint8)


def _raise_pixels_or_not_image(data: bytes) -> np.ndarray:
    """Pillow refused the header: a bomb if its declared size is huge, else not an image."""
    header_size = _png_size(data)
    if header_size and header_size[0] * header_size[1] > MAX_PIXELS:
        w, h = header_size
        raise TooManyPixels(
            f"That image is {w}x{h} ({w * h / 1e6:.0f} megapixels); "
            f"I can take up to {MAX_PIXELS // 1_000_000} megapixels."
        )
    raise NotAnImage("That file is not a photo I can read (JPEG, PNG or WebP).")


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "I;16" or img.mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 / max(1.0, float(arr.max()))
        return Image.fromarray((arr * scale).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def read_image_file(path: Path, min_side: int = MIN_SIDE) -> np.ndarray:
    """Read and decode a file; a missing file raises ``FileNotFoundError``, the rest as decode_image."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise FileTooLarge(
            f"That file is {size / 1e6:.1f} MB; I can take photos up to {MAX_BYTES // 2**20} MB."
        )
    return decode_image(path.read_bytes(), min_side)
