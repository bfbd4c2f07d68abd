"""Image decoding: every refusal with a real bad file, and the conversions that must just work."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import FileTooLarge, ImageTooSmall, NotAnImage, TooManyPixels, TruncatedImage
from core.vision.imaging import MAX_BYTES, decode_image, read_image_file
from tests.conftest import data_path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (a decompression bomb's calling card)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    full = data_path("photos", "multiface.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full[: len(full) // 3])
    with pytest.raises(TruncatedImage, match="cut off or damaged"):
        read_image_file(cut)


def test_text_file_named_jpg_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "selfie.jpg"
    fake.write_text("this is not a photo\n" * 20)
    with pytest.raises(NotAnImage, match="not a photo"):
        read_image_file(fake)


def test_empty_file_is_refused() -> None:
    with pytest.raises(NotAnImage, match="empty"):
        decode_image(b"")


def test_one_pixel_png_is_refused(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1), "red").save(tiny)
    with pytest.raises(ImageTooSmall, match="1x1"):
        read_image_file(tiny)


def test_huge_png_header_is_refused_without_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(20000, 20000))
    with pytest.raises(TooManyPixels, match="20000x20000"):
        read_image_file(bomb)


def test_just_over_forty_megapixels_is_refused() -> None:
    with pytest.raises(TooManyPixels):
        decode_image(png_header_only(8000, 5001))


def test_file_over_twenty_megabytes_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"\0" * MAX_BYTES)
    with pytest.raises(FileTooLarge, match="20 MB"):
        read_image_file(big)
    with pytest.raises(FileTooLarge):
        decode_image(big.read_bytes())


def test_png_named_jpg_simply_works() -> None:
    path = data_path("faces", "celeb5", "ben_afflek", "httpwwwrumenewscomwpcontentuploadsbenafflekxpng.jpg")
    assert path.read_bytes()[:4] == b"\x89PNG"
    rgb = read_image_file(path)
    assert rgb.shape == (224, 300, 3) and rgb.dtype == np.uint8


def test_exif_orientation_is_applied() -> None:
    upright = np.zeros((100, 200, 3), np.uint8)
    upright[:, :100] = 255  # left half white
    img = Image.fromarray(upright).rotate(90, expand=True)  # stored turned anticlockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # viewer must turn the stored pixels 90 degrees clockwise
    rgb = decode_image(encode(img, "JPEG", exif=exif, quality=95))
    assert rgb.shape == (100, 200, 3)
    assert rgb[:, :90].mean() > 200 and rgb[:, 110:].mean() < 50


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "I;16"])
def test_other_colour_modes_become_rgb(mode: str) -> None:
    img = Image.new("RGB", (80, 80), (200, 100, 50)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    rgb = decode_image(encode(img, fmt))
    assert rgb.shape == (80, 80, 3) and rgb.dtype == np.uint8


def test_alpha_is_composited_over_white() -> None:
    img = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
    rgb = decode_image(encode(img, "PNG"))
    assert rgb.min() == 255


def test_animated_image_uses_first_frame() -> None:
    frames = [Image.new("RGB", (80, 80), c) for c in ("red", "blue", "green")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    rgb = decode_image(data)
    assert rgb.shape == (80, 80, 3)
    assert rgb[..., 0].mean() > 200 and rgb[..., 2].mean() < 50
    webp = encode(frames[1], "WEBP", save_all=True, append_images=[frames[0]], duration=50)
    assert decode_image(webp)[..., 2].mean() > 200
