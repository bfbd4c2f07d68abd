"""Draw boxes, names and emotions on a copy of the photo (never stored; sent back once)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.app.replies import FaceLine

MAX_SIDE = 1280
"""The annotated photo's longer side, pixels (chat apps shrink bigger photos anyway)."""
COLOURS = ("#22c55e", "#3b82f6", "#f97316", "#e11d48", "#a855f7", "#14b8a6")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType support: fixed-size bitmap font
        return ImageFont.load_default()


def annotate(rgb: np.ndarray, faces: Sequence[FaceLine], quality: int = 85) -> bytes:
    """JPEG bytes of the RGB (H, W, 3) photo with one labelled box per face (boxes in its pixels)."""
    image = Image.fromarray(rgb)
    scale = min(1.0, MAX_SIDE / max(image.size))
    if scale < 1.0:
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
        )
    draw = ImageDraw.Draw(image)
    line = max(2, round(max(image.size) / 300))
    font = _font(max(14, round(max(image.size) / 45)))
    for i, face in enumerate(faces):
        colour = COLOURS[i % len(COLOURS)]
        x1, y1, x2, y2 = (v * scale for v in face.box)
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=line)
        label = face.label()
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        height = bottom - top + 2 * line
        ty = y1 - height if y1 - height >= 0 else y2
        draw.rectangle((x1, ty, x1 + right - left + 2 * line, ty + height), fill=colour)
        draw.text((x1 + line, ty + line - top), label, fill="white", font=font)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
