"""Hostile photos, made on the fly (never committed): every kind of bad upload the bot must refuse
politely, or decode and analyse in bounded time and memory.

Each maker in :data:`KINDS` returns the bytes of one file; :func:`write_hostile` writes all of them,
plus seeded random mutations of real photos from the shared data, into a folder. The makers are
small and deterministic; the biggest file is a few megabytes and the slowest takes about a second.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from core.paths import default_data_dir

ROOT = Path(__file__).resolve().parents[1]
DATA = default_data_dir() or ROOT.parent / "shared" / "data"


# Helpers ----------------------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def gradient(width: int, height: int) -> Image.Image:
    """A smooth RGB picture (compresses well, decodes like a photo)."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb)


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(marker, start, end)`` of each segment of a JPEG; an SOS segment includes its entropy data."""
    out, pos = [(0xD8, 0, 2)], 2
    while pos < len(data):
        marker = data[pos + 1]
        if marker == 0xD9:
            out.append((marker, pos, pos + 2))
            break
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            while not (data[end] == 0xFF and data[end + 1] not in (0, *range(0xD0, 0xD8))):
                end += 1
        out.append((marker, pos, end))
        pos = end
    return out


def set_jpeg_frame(data: bytes, width: int | None = None, height: int | None = None, **byte: int) -> bytes:
    """The JPEG with its SOF segment's size (and ``marker=``/``precision=`` bytes) rewritten."""
    start = next(s[1] for s in jpeg_segments(data) if 0xC0 <= s[0] <= 0xC2)
    out = bytearray(data)
    if height is not None:
        out[start + 5 : start + 7] = height.to_bytes(2, "big")
    if width is not None:
        out[start + 7 : start + 9] = width.to_bytes(2, "big")
    if "marker" in byte:
        out[start + 1] = byte["marker"]
    if "precision" in byte:
        out[start + 4] = byte["precision"]
    return bytes(out)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_raw(
    width: int, height: int, rows: bytes, bit_depth: int = 8, colour: int = 2, extra: bytes = b""
) -> bytes:
    """A PNG from raw filtered scanlines (``rows`` includes each row's filter byte)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows, 9))
        + extra
        + png_chunk(b"IEND", b"")
    )


def png_16bit(channels: int, colour: int, size: int = 96) -> bytes:
    """A 16-bit PNG (grey, RGB or RGBA) with a gradient, as Pillow cannot write them."""
    ramp = np.linspace(0, 65535, size, dtype=np.float64)
    pixels = np.repeat(ramp[None, :, None], size, axis=0).repeat(channels, axis=2).astype(">u2")
    rows = b"".join(b"\0" + pixels[r].tobytes() for r in range(size))
    return png_raw(size, size, rows, 16, colour)


def lfw_faces() -> list[Path]:
    return sorted((DATA / "faces" / "lfw10").glob("*/*.jpg"))


# JPEG -------------------------------------------------------------------------------------------


def scan_bomb(scans: int = 3000, size: tuple[int, int] = (8000, 5000)) -> bytes:
    """A progressive JPEG of ``scans`` scans: libjpeg's 10, then its last (with its Huffman table) again.

    ~88 bytes a scan (264 KB for 3,000), and libjpeg re-walks all 40 MP's blocks for each one:
    about 20-40 ms a scan, a minute or more for the file, before any limit."""
    base = encode(
        Image.new("RGB", size, (120, 130, 140)), "JPEG", progressive=True, quality=90, subsampling=0
    )
    segs = jpeg_segments(base)
    base_scans = sum(1 for s in segs if s[0] == 0xDA)  # libjpeg writes 10
    last_table = max(i for i, s in enumerate(segs) if s[0] == 0xC4)
    body_end = segs[-1][1]
    repeated = base[segs[last_table][1] : body_end]
    return base[:body_end] + repeated * max(0, scans - base_scans) + b"\xff\xd9"


def small_scan_bomb(scans: int = 200) -> bytes:
    """200 scans of a small picture: cheap to decode, still far more scans than any encoder writes."""
    return scan_bomb(scans, (640, 480))


def photo_jpeg(**kwargs: object) -> bytes:
    return encode(gradient(320, 240), "JPEG", quality=85, **kwargs)


def jpeg_fill_bytes(count: int = 4_000_000) -> bytes:
    """Millions of 0xFF fill bytes before a marker (Pillow steps over them one by one in Python)."""
    data = photo_jpeg()
    return data[:2] + b"\xff" * count + data[2:]


def jpeg_junk(count: int = 4_000_000) -> bytes:
    """Millions of junk bytes between two header segments (Pillow skips them one by one)."""
    data = photo_jpeg()
    app0_end = jpeg_segments(data)[1][2]
    return data[:app0_end] + b"\x00" * count + data[app0_end:]


def jpeg_many_segments(count: int = 200_000) -> bytes:
    """200,000 empty comment segments before the frame (800 KB)."""
    data = photo_jpeg()
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


def jpeg_exif_bomb() -> bytes:
    """An EXIF block with thousands of entries, and an orientation of the wrong type."""
    entries = [struct.pack("<HHII", 0x0112, 3, 1, 99)]  # orientation 99: no such rotation
    entries += [struct.pack("<HHII", 0x9000 + (i % 4000), 7, 4, i) for i in range(5000)]
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + b"\0\0\0\0"
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd
    app1 = b"Exif\x00\x00" + tiff
    data = photo_jpeg()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def broken_exif_jpeg() -> bytes:
    """An EXIF block whose first directory points far past its end."""
    app1 = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 0x7FFFFFF0) + b"\0" * 16
    data = photo_jpeg()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


# PNG --------------------------------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (a decompression bomb's calling card)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def png_zeros(width: int, height: int, colour: int = 0) -> bytes:
    """A real PNG of zeros (grey, or ``colour=6`` RGBA: transparent black): a few kilobytes that
    inflate to ``width * height`` pixels."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    compressor = zlib.compressobj(9)
    row = b"\0" * (width * channels + 1)
    parts = [compressor.compress(row) for _ in range(height)] + [compressor.flush()]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def png_many_chunks(count: int = 300_000) -> bytes:
    """A small PNG followed by 300,000 empty private chunks (3.6 MB), each read in Python by Pillow."""
    data = encode(gradient(96, 96), "PNG")
    tiny = png_chunk(b"prVt", b"")
    return data[:-12] + tiny * count + data[-12:]


def png_text_bomb() -> bytes:
    """A compressed text chunk that inflates to 100 MB."""
    text = b"Comment\0\0" + zlib.compress(b"\0" * 100_000_000, 9)
    data = encode(gradient(96, 96), "PNG")
    return data[:33] + png_chunk(b"zTXt", text) + data[33:]


def apng_many_frames(frames: int = 2000) -> bytes:
    images = [Image.new("RGB", (64, 64), (i % 256, 80, 160)) for i in range(frames)]
    return encode(images[0], "PNG", save_all=True, append_images=images[1:], duration=20)


# GIF and WebP -----------------------------------------------------------------------------------


def gif_screen(width: int, height: int) -> bytes:
    data = bytearray(encode(gradient(96, 96).convert("P"), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def gif_frame_beyond_screen() -> bytes:
    """A 96x96 screen whose first frame claims 30000x30000 pixels (Pillow grows the image to fit)."""
    data = bytearray(encode(gradient(96, 96).convert("P"), "GIF"))
    at = data.index(b"\x2c\x00\x00\x00\x00")  # image descriptor at (0, 0)
    data[at + 5 : at + 9] = struct.pack("<HH", 30000, 30000)
    return bytes(data)


def gif_many_frames(frames: int = 5000) -> bytes:
    images = [Image.new("P", (64, 64), i % 200) for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], optimize=False, duration=20)


def gif_comment_bomb(size: int = 8_000_000) -> bytes:
    """8 MB of comment sub-blocks before the first frame."""
    data = encode(gradient(96, 96).convert("P"), "GIF")
    blocks = (b"\xff" + b"c" * 255) * (size // 256)
    comment = b"\x21\xfe" + blocks + b"\x00"
    at = data.index(b"\x2c\x00\x00\x00\x00")
    return data[:at] + comment + data[at:]


def webp_canvas(width: int, height: int) -> bytes:
    """An extended (VP8X) WebP whose canvas is patched to ``width`` x ``height``."""
    img = gradient(96, 96).convert("RGBA")
    img.putalpha(200)  # translucent: the file needs the extended (VP8X) layout
    data = bytearray(encode(img, "WEBP", quality=80))
    assert data[12:16] == b"VP8X", data[12:16]
    data[24:27] = (width - 1).to_bytes(3, "little")
    data[27:30] = (height - 1).to_bytes(3, "little")
    return bytes(data)


def webp_lossless_header(width: int, height: int) -> bytes:
    data = bytearray(encode(gradient(96, 96), "WEBP", lossless=True))
    assert data[12:16] == b"VP8L", data[12:16]
    bits = int.from_bytes(data[21:25], "little") & ~((1 << 28) - 1)
    data[21:25] = (bits | (width - 1) | ((height - 1) << 14)).to_bytes(4, "little")
    return bytes(data)


def webp_many_frames(frames: int = 500) -> bytes:
    images = [Image.new("RGB", (64, 64), (i % 256, 40, 90)) for i in range(frames)]
    return encode(images[0], "WEBP", save_all=True, append_images=images[1:], duration=20)


# Other formats and shapes -----------------------------------------------------------------------


def other_format(fmt: str, **kwargs: object) -> Callable[[], bytes]:
    def make() -> bytes:
        img = gradient(96, 96)
        if fmt in ("EPS", "PDF", "TGA", "SGI", "PCX", "PPM", "BMP", "TIFF", "ICO", "JPEG2000"):
            return encode(img, fmt, **kwargs)
        raise ValueError(fmt)

    return make


def thin_jpeg(width: int = 250, height: int = 40000) -> bytes:
    """A real 250x40000 strip (10 MP): face detection on its 4x640 copy crashed MTCNN."""
    return encode(gradient(width, height), "JPEG", quality=70)


def face_tile(per_side: int = 25, cell: int = 40) -> bytes:
    """``per_side`` squared real faces (625 by default) tiled into one 1000x1000 JPEG."""
    paths = lfw_faces()
    faces = [
        cv2.resize(np.asarray(Image.open(p).convert("RGB"))[55:195, 60:190], (cell, cell), cv2.INTER_AREA)
        for p in paths
    ]
    rows = [
        np.concatenate([faces[(r * per_side + c) % len(faces)] for c in range(per_side)], axis=1)
        for r in range(per_side)
    ]
    return encode(Image.fromarray(np.concatenate(rows, axis=0)), "JPEG", quality=90)


def multiface() -> bytes:
    return (DATA / "photos" / "multiface.jpg").read_bytes()


KINDS: dict[str, Callable[[], bytes]] = {
    # Scans and structure (attack 1).
    "scan_bomb_3000.jpg": scan_bomb,
    "scan_bomb_small_200.jpg": small_scan_bomb,
    "jpeg_fill_bytes.jpg": jpeg_fill_bytes,
    "jpeg_junk.jpg": jpeg_junk,
    "jpeg_many_segments.jpg": jpeg_many_segments,
    "jpeg_arithmetic.jpg": lambda: set_jpeg_frame(photo_jpeg(), marker=0xC9),
    "jpeg_lossless.jpg": lambda: set_jpeg_frame(photo_jpeg(), marker=0xC3),
    "jpeg_12bit.jpg": lambda: set_jpeg_frame(photo_jpeg(), precision=12),
    "jpeg_exif_bomb.jpg": jpeg_exif_bomb,
    "jpeg_broken_exif.jpg": broken_exif_jpeg,
    # Many faces (attack 2).
    "face_tile_625.jpg": face_tile,
    # Shapes (attack 3).
    "thin_250x40000.jpg": thin_jpeg,
    "wide_40000x250.png": lambda: encode(gradient(40000, 250), "PNG"),
    "strip_64x5000.jpg": lambda: thin_jpeg(64, 5000),
    "strip_100x1001.png": lambda: encode(gradient(100, 1001), "PNG"),
    # Formats (attack 4).
    "tiff.tif": other_format("TIFF"),
    "bmp.bmp": other_format("BMP"),
    "ico.ico": other_format("ICO"),
    "ppm.ppm": other_format("PPM"),
    "tga.tga": other_format("TGA"),
    "eps.eps": other_format("EPS"),
    "pdf.pdf": other_format("PDF"),
    "pcx.pcx": other_format("PCX"),
    "sgi.sgi": other_format("SGI"),
    "jpeg2000.jp2": other_format("JPEG2000"),
    "psd_header.psd": lambda: (
        b"8BPS\x00\x01" + b"\x00" * 6 + b"\x00\x03" + struct.pack(">II", 96, 96) + b"\x00" * 64
    ),
    "heic_header.heic": lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
    "svg.svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="9999" height="9999"/>',
    "jpeg_huge_header.jpg": lambda: set_jpeg_frame(photo_jpeg(), 65000, 65000),
    "jpeg_41mp_header.jpg": lambda: set_jpeg_frame(photo_jpeg(), 8200, 5000),
    "gif_huge_screen.gif": lambda: gif_screen(65535, 65535),
    "gif_frame_beyond_screen.gif": gif_frame_beyond_screen,
    "webp_huge_canvas.webp": lambda: webp_canvas(16384, 16384),
    "webp_lossless_huge.webp": lambda: webp_lossless_header(16384, 16384),
    # Bombs, truncation, animation, zero size, odd modes (attack 6).
    "png_bomb_20000.png": lambda: png_header_only(20000, 20000),
    "png_zeros_12000.png": lambda: png_zeros(12000, 12000),
    "png_zeros_6000.png": lambda: png_zeros(6000, 6000),
    # At the limits: the most expensive files that are still accepted.
    "limit_rgba_40mp.png": lambda: png_zeros(8000, 5000, colour=6),
    "limit_progressive_16_scans_40mp.jpg": lambda: scan_bomb(16, (8000, 5000)),
    "png_many_chunks.png": png_many_chunks,
    "png_text_bomb.png": png_text_bomb,
    "png_zero_size.png": lambda: png_header_only(0, 0),
    "jpeg_zero_size.jpg": lambda: set_jpeg_frame(photo_jpeg(), 0, 0),
    "gif_zero_size.gif": lambda: gif_screen(0, 0),
    "png_16bit_grey.png": lambda: png_16bit(1, 0),
    "png_16bit_rgb.png": lambda: png_16bit(3, 2),
    "png_16bit_rgba.png": lambda: png_16bit(4, 6),
    "cmyk.jpg": lambda: encode(gradient(96, 96).convert("CMYK"), "JPEG"),
    "palette_alpha.png": lambda: encode(gradient(96, 96).convert("P"), "PNG", transparency=3),
    "grey_alpha.png": lambda: encode(gradient(96, 96).convert("LA"), "PNG"),
    "truncated_jpeg.jpg": lambda: multiface()[: len(multiface()) // 3],
    "truncated_header.jpg": lambda: photo_jpeg()[:40],
    "truncated_png.png": lambda: encode(gradient(300, 300), "PNG")[:500],
    "truncated_gif.gif": lambda: encode(gradient(300, 300).convert("P"), "GIF")[:300],
    "truncated_webp.webp": lambda: encode(gradient(300, 300), "WEBP")[:200],
    "apng_2000_frames.png": apng_many_frames,
    "gif_5000_frames.gif": gif_many_frames,
    "gif_comment_bomb.gif": gif_comment_bomb,
    "webp_500_frames.webp": webp_many_frames,
    # Not images at all.
    "empty.jpg": lambda: b"",
    "text.jpg": lambda: b"this is not a photo\n" * 50,
    "html.png": lambda: b"<!doctype html><html><body>hi</body></html>",
    "zip.jpg": lambda: b"PK\x03\x04" + bytes(range(256)) * 4,
    "random.webp": lambda: random.Random(7).randbytes(5000),
}
"""File name -> maker. The name's extension is what a careless (or hostile) sender would claim."""


# Mutations of real photos -----------------------------------------------------------------------


def mutation_sources() -> list[tuple[str, bytes]]:
    """Real photos from the shared data in every accepted format (JPEG baseline and progressive, PNG,
    GIF, WebP), to mutate."""
    lfw = lfw_faces()
    face = Image.open(lfw[0]).convert("RGB")
    return [
        ("lfw.jpg", lfw[0].read_bytes()),
        ("lfw2.jpg", lfw[37].read_bytes()),
        ("multiface.jpg", multiface()),  # progressive
        ("face.png", encode(face, "PNG")),
        ("face.gif", encode(face.convert("P"), "GIF")),
        ("face.webp", encode(face, "WEBP", quality=85)),
        ("face_lossless.webp", encode(face, "WEBP", lossless=True)),
    ]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One or more random edits: flipped bytes, overwritten or repeated runs, cuts, inserted noise."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["flip", "overwrite", "cut", "repeat", "delete", "insert", "header"])
        at = rng.randrange(len(out))
        if kind == "flip":
            for _ in range(rng.randint(1, 50)):
                out[rng.randrange(len(out))] = rng.randrange(256)
        elif kind == "overwrite":
            run = rng.randint(1, 2000)
            out[at : at + run] = rng.randbytes(min(run, len(out) - at))
        elif kind == "cut":
            out = out[: max(8, at)]
        elif kind == "repeat":
            run = rng.randint(1, 5000)
            out[at:at] = out[at : at + run] * rng.randint(2, 20)
        elif kind == "delete":
            del out[at : at + rng.randint(1, 5000)]
        elif kind == "insert":
            out[at:at] = rng.randbytes(rng.randint(1, 500))
        else:  # somewhere in the first 64 bytes, where sizes and lengths live
            out[rng.randrange(min(64, len(out)))] = rng.choice([0, 0xFF, rng.randrange(256)])
    return bytes(out)


def write_hostile(folder: Path, seed: int = 20261201, mutations: int = 28) -> list[Path]:
    """Every kind in :data:`KINDS` and ``mutations`` seeded mutations of real photos, written to
    ``folder``; returns the paths in a fixed order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in KINDS.items():
        path = folder / name
        path.write_bytes(make())
        paths.append(path)
    rng = random.Random(seed)
    sources = mutation_sources()
    for number in range(mutations):
        name, data = sources[number % len(sources)]
        path = folder / f"mutant_{number:02d}_{name}"
        path.write_bytes(mutate(data, rng))
        paths.append(path)
    return paths
