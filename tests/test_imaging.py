"""Image decoding: every refusal with a real bad file, and the conversions that must just work."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import (
    BadAspectRatio,
    BadImage,
    FileTooLarge,
    ImageTooSmall,
    NotAnImage,
    TooComplex,
    TooManyPixels,
    TruncatedImage,
    UnsupportedFormat,
)
from core.vision.headers import MAX_SCANS, read_header
from core.vision.imaging import MAX_ASPECT, MAX_BYTES, decode_image, read_image_file
from tests import hostile
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


# Hostile files: each refused from its header, before any decoding, and fast -----------------------


def refused_fast(data: bytes, error: type[Exception], match: str | None = None) -> Exception:
    """``decode_image(data)`` raises ``error`` within a second (the attacks below cost minutes)."""
    started = time.perf_counter()
    with pytest.raises(error, match=match) as caught:
        decode_image(data)
    assert time.perf_counter() - started < 1.0
    return caught.value


def test_scan_bomb_is_refused_before_decoding() -> None:
    """3,000 scans of a 40 MP progressive JPEG: 60-155 s of libjpeg before; refused from the header now."""
    error = refused_fast(hostile.scan_bomb(3000), TooComplex, "more than 32 progressive JPEG scans")
    assert isinstance(error, BadImage) and error.code == "too_complex"
    refused_fast(hostile.small_scan_bomb(200), TooComplex, "scans")


def test_scans_times_pixels_are_bounded() -> None:
    """30 scans are fine on a small photo, too many on a large one (each scan re-walks every pixel)."""
    small = hostile.scan_bomb(MAX_SCANS, (800, 600))
    assert read_header(small).scans == MAX_SCANS == 32
    assert decode_image(small).shape == (600, 800, 3)
    big = hostile.scan_bomb(30, (6000, 4000))
    refused_fast(big, TooComplex, "30 progressive JPEG scans of 24 megapixels")
    assert read_header(hostile.scan_bomb(16, (8000, 5000))).scans == 16  # 16 scans at 40 MP: allowed


def test_ordinary_progressive_jpeg_decodes() -> None:
    data = data_path("photos", "multiface.jpg").read_bytes()
    header = read_header(data)
    assert header.format == "JPEG" and 2 <= header.scans <= 12
    assert decode_image(data).shape == (630, 1200, 3)
    libjpeg = encode(Image.new("RGB", (800, 600), "teal"), "JPEG", progressive=True)
    assert read_header(libjpeg).scans == 10


@pytest.mark.parametrize(
    "name",
    ["jpeg_fill_bytes.jpg", "jpeg_junk.jpg", "jpeg_many_segments.jpg", "png_many_chunks.png"],
)
def test_files_built_to_be_slow_for_pillows_python_parsers_are_refused(name: str) -> None:
    refused_fast(hostile.KINDS[name](), TooComplex, "unusual way")


def test_every_shared_photo_passes_the_header_checks() -> None:
    """No false alarms: every real photo of the shared data decodes (JPEG, PNG, any size and layout)."""
    root = data_path("faces").parent
    paths = [p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    paths = [p for p in paths if "fer2013" not in p.parts]
    assert len(paths) > 150
    for path in paths:
        assert read_image_file(path).ndim == 3, path


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("jpeg_huge_header.jpg", "65000x65000"),
        ("jpeg_41mp_header.jpg", "8200x5000"),
        ("gif_huge_screen.gif", "65535x65535"),
        ("webp_huge_canvas.webp", "16384x16384"),
        ("webp_lossless_huge.webp", "16384x16384"),
        ("png_zeros_12000.png", "12000x12000"),
    ],
)
def test_too_many_pixels_from_any_format_header(name: str, size: str) -> None:
    """JPEG, GIF and WebP bombs are refused as too large (they used to come back as "not an image")."""
    refused_fast(hostile.KINDS[name](), TooManyPixels, size)


def test_gif_frame_larger_than_its_screen_is_too_many_pixels() -> None:
    refused_fast(hostile.gif_frame_beyond_screen(), TooManyPixels, "bigger than it says")


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("thin_250x40000.jpg", "250x40000"),
        ("wide_40000x250.png", "40000x250"),
        ("strip_100x1001.png", "100x1001"),
    ],
)
def test_extreme_aspect_ratios_are_refused(name: str, shape: str) -> None:
    error = refused_fast(hostile.KINDS[name](), BadAspectRatio, shape)
    assert "too long and thin" in str(error)


def test_aspect_ratio_limit_is_one_to_ten() -> None:
    assert MAX_ASPECT == 10
    assert decode_image(encode(Image.new("RGB", (64, 640)), "PNG")).shape == (640, 64, 3)
    with pytest.raises(BadAspectRatio):
        decode_image(encode(Image.new("RGB", (64, 641)), "PNG"))


@pytest.mark.parametrize(
    ("name", "error", "match"),
    [
        ("tiff.tif", UnsupportedFormat, "TIFF"),
        ("bmp.bmp", UnsupportedFormat, "BMP"),
        ("ico.ico", UnsupportedFormat, "ICO"),
        ("ppm.ppm", UnsupportedFormat, "PNM"),
        ("eps.eps", UnsupportedFormat, "EPS"),
        ("pdf.pdf", UnsupportedFormat, "PDF"),
        ("jpeg2000.jp2", UnsupportedFormat, "JPEG 2000"),
        ("psd_header.psd", UnsupportedFormat, "PSD"),
        ("heic_header.heic", UnsupportedFormat, "HEIC"),
        ("svg.svg", UnsupportedFormat, "SVG"),
        ("tga.tga", NotAnImage, "not a photo"),
        ("pcx.pcx", NotAnImage, "not a photo"),
        ("sgi.sgi", NotAnImage, "not a photo"),
        ("jpeg_arithmetic.jpg", UnsupportedFormat, "arithmetic-coded"),
        ("jpeg_lossless.jpg", UnsupportedFormat, "lossless"),
        ("jpeg_12bit.jpg", UnsupportedFormat, "12-bit"),
    ],
)
def test_other_formats_never_reach_a_pillow_plugin(
    name: str, error: type[Exception], match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pillow reads all of these (EPS through Ghostscript); they are refused by their magic bytes."""
    data = hostile.KINDS[name]()

    def no_pillow(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow was asked to open a refused format")

    monkeypatch.setattr(Image, "open", no_pillow)
    refused_fast(data, error, match)
    assert issubclass(error, NotAnImage)


def test_pillow_opens_only_the_format_the_magic_bytes_name(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    real_open = Image.open

    def spy(fp: object, mode: str = "r", formats: object = None) -> Image.Image:
        seen.append(formats)
        return real_open(fp, mode, formats)  # type: ignore[arg-type]

    monkeypatch.setattr(Image, "open", spy)
    for fmt in ("JPEG", "PNG", "WEBP", "GIF"):
        decode_image(encode(Image.new("RGB", (80, 80), "red"), fmt))
    assert seen == [["JPEG"], ["PNG"], ["WEBP"], ["GIF"]]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("png_zero_size.png", ImageTooSmall),
        ("jpeg_zero_size.jpg", ImageTooSmall),
        ("gif_zero_size.gif", ImageTooSmall),
        ("truncated_header.jpg", TruncatedImage),
        ("truncated_jpeg.jpg", TruncatedImage),
        ("truncated_png.png", TruncatedImage),
        ("truncated_gif.gif", TruncatedImage),
        ("truncated_webp.webp", TruncatedImage),
        ("png_bomb_20000.png", TooManyPixels),
        ("png_text_bomb.png", TruncatedImage),
        ("empty.jpg", NotAnImage),
        ("zip.jpg", NotAnImage),
        ("random.webp", NotAnImage),
    ],
)
def test_bombs_truncation_and_zero_sizes_get_a_typed_error_fast(name: str, error: type[Exception]) -> None:
    refused_fast(hostile.KINDS[name](), error)


@pytest.mark.parametrize(
    "name",
    [
        "apng_2000_frames.png",
        "gif_5000_frames.gif",
        "webp_500_frames.webp",
        "gif_comment_bomb.gif",
        "png_16bit_grey.png",
        "png_16bit_rgb.png",
        "png_16bit_rgba.png",
        "cmyk.jpg",
        "palette_alpha.png",
        "grey_alpha.png",
        "jpeg_exif_bomb.jpg",
        "jpeg_broken_exif.jpg",
    ],
)
# core.vision.imaging silences PIL's UserWarnings process-wide at import; pytest resets the filters
# around each test, so the broken EXIF's "Corrupt EXIF data" warning is silenced here again.
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_odd_but_valid_files_decode_quickly(name: str) -> None:
    """Thousands of frames (only the first is decoded), 16-bit and CMYK pixels, broken EXIF: photos."""
    started = time.perf_counter()
    rgb = decode_image(hostile.KINDS[name]())
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8
    assert time.perf_counter() - started < 1.0


def test_16bit_grey_keeps_its_gradient() -> None:
    rgb = decode_image(hostile.png_16bit(1, 0))
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255 and rgb[0, 48, 0] in range(120, 136)


def test_decompression_bomb_within_the_limit_is_bounded() -> None:
    """35 KB of PNG that inflate to 36 MP: allowed (under 40 MP), decoded in bounded time and memory."""
    started = time.perf_counter()
    rgb = decode_image(hostile.png_zeros(6000, 6000))
    assert rgb.shape == (6000, 6000, 3) and time.perf_counter() - started < 5.0


def test_megabytes_of_entropy_coded_data_are_walked_quickly() -> None:
    """The scan count needs a walk to the end of the file: 20 MB of stuffed 0xFF00 bytes in one scan
    (the worst case for the marker search) take well under a second."""
    data = hostile.photo_jpeg()
    start = next(s for s in hostile.jpeg_segments(data) if s[0] == 0xDA)[1]
    scan_header = data[start : start + 2 + int.from_bytes(data[start + 2 : start + 4], "big")]
    stuffed = data[:start] + scan_header + b"\xff\x00" * 10_000_000 + b"\xff\xd9"
    started = time.perf_counter()
    assert read_header(stuffed).scans == 1
    assert time.perf_counter() - started < 2.0
