"""Small real images the chat-client tests upload: a plain JPEG, and what a photo bot sends back."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def jpeg(width: int = 640, height: int = 480, colour: str = "tan") -> bytes:
    """A real JPEG of one colour (no face in it), ``width`` x ``height`` pixels."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG")
    return out.getvalue()


def annotate(data: bytes) -> bytes:
    """What a photo bot does: draw a box on the photo and send it back as PNG."""
    with Image.open(io.BytesIO(data)) as image:
        canvas = image.convert("RGB")
    ImageDraw.Draw(canvas).rectangle((10, 10, 100, 100), outline="red", width=3)
    out = io.BytesIO()
    canvas.save(out, "PNG")
    return out.getvalue()
