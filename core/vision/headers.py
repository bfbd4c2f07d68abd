"""What a photo's header declares, read without Pillow: its format, size and (JPEG) scan count.

:func:`read_header` runs before any Pillow plugin sees the bytes, so that only the four formats we
accept reach a decoder, and so that everything that makes decoding slow or big is refused from the
header: the pixel count, the aspect ratio (checked by :mod:`core.vision.imaging`), and the structure
that Pillow walks in Python or libjpeg walks once per scan:

- JPEG: every segment is walked (entropy-coded data is skipped with one regular-expression search per
  scan, in C). A progressive JPEG is decoded once per *scan* over the whole image, so a file of a few
  hundred kilobytes with thousands of scans costs minutes; at most :data:`MAX_SCANS` scans are
  accepted, and at most :data:`MAX_SCAN_PIXELS` scans x pixels. Only baseline, extended and
  progressive Huffman 8-bit JPEGs are accepted (not lossless, arithmetic-coded or hierarchical ones).
  Before the first scan Pillow reads byte by byte, so junk or fill bytes there are bounded too.
- PNG: at most :data:`MAX_PNG_CHUNKS` chunks (Pillow reads each in Python).
- GIF and WebP: the declared size only (the canvas of an animated WebP is allocated before the first
  frame is decoded; a GIF frame larger than its screen is caught by the size check after opening).

Every function here is linear in the file size with small constants; a 20 MB file is walked in
milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.app.i18n import N_, Message
from core.errors import NotAnImage, TooComplex, TruncatedImage, UnsupportedFormat

ACCEPTED = ("JPEG", "PNG", "WEBP", "GIF")
"""Pillow format names that may be decoded; nothing else reaches a Pillow plugin."""
MAX_SCANS = 32
"""Most scans (SOS segments) in a JPEG. Baseline JPEGs have 1 (3 if not interleaved); libjpeg,
Pillow, GIMP and jpegtran write progressive JPEGs of 10 scans (6 for grey), Photoshop 3 to 5,
mozjpeg about 10 to 12. Each scan costs up to ~0.8 ms per megapixel to decode."""
MAX_SCAN_PIXELS = 640_000_000
"""Most scans x pixels in a JPEG: 16 scans at the 40 MP limit, 32 scans up to 20 MP (about half a
second of decoding at worst on one core)."""
MAX_JPEG_SEGMENTS = 512
"""Most JPEG segments (APPn, DQT, DHT, SOS, ...). Ordinary files have 10 to 40; an ICC profile can
take up to 255 APP2 segments."""
MAX_JPEG_GAP = 4096
"""Most junk or fill bytes between two segments before the first scan (Pillow reads them one at a
time in Python)."""
MAX_PNG_CHUNKS = 10_000
"""Most PNG chunks. Encoders write IDAT chunks of 8 to 64 KB, so a 20 MB PNG needs at most ~2,600."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_MARKER = re.compile(rb"\xff([\x01-\xfe])")
"""A marker: 0xFF and a code that is not 0x00 or 0xFF (fill bytes 0xFF before it are skipped; one
0xFF, not ``0xFF+``, so a long run of them costs no backtracking)."""
_JPEG_MARKER_AFTER_SCAN = re.compile(rb"\xff([\x01-\xcf\xd8-\xfe])")
"""The first marker after entropy-coded data: 0xFF00 is a stuffed byte and 0xFFD0-D7 restarts."""
_SOF_ACCEPTED = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive"}
_LOSSLESS, _HIERARCHICAL, _ARITHMETIC = N_("lossless"), N_("hierarchical"), N_("arithmetic-coded")
_SOF_OTHER = {
    0xC3: _LOSSLESS,
    0xC5: _HIERARCHICAL,
    0xC6: _HIERARCHICAL,
    0xC7: _HIERARCHICAL,
    0xC9: _ARITHMETIC,
    0xCA: _ARITHMETIC,
    0xCB: _ARITHMETIC,
    0xCD: _ARITHMETIC,
    0xCE: _ARITHMETIC,
    0xCF: _ARITHMETIC,
}
_OTHER_FORMATS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (0, b"BM", "BMP"),
    (0, b"\x00\x00\x01\x00", "ICO"),
    (0, b"%!PS", "PostScript (EPS)"),
    (0, b"\xc5\xd0\xd3\xc6", "PostScript (EPS)"),
    (0, b"%PDF", "PDF"),
    (0, b"8BPS", "Photoshop (PSD)"),
    (0, b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (0, b"\xff\x4f\xff\x51", "JPEG 2000"),
    (0, b"qoif", "QOI"),
    (0, b"DDS ", "DDS"),
    (0, b"icns", "ICNS"),
    (0, b"gimp xcf", "GIMP (XCF)"),
    (0, b"\x76\x2f\x31\x01", "OpenEXR"),
    (0, b"#?RADIANCE", "Radiance HDR"),
    (0, b"\xff\x0a", "JPEG XL"),
    (0, b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypheix", "HEIC"),
    (4, b"ftypmif1", "HEIF"),
    (4, b"ftypavif", "AVIF"),
)


@dataclass(frozen=True)
class Header:
    """What the header declares.

    Attributes:
        format: Pillow's format name, one of :data:`ACCEPTED`.
        width, height: pixels (before EXIF rotation).
        scans: JPEG scans (SOS segments); 1 for other formats.
    """

    format: str
    width: int
    height: int
    scans: int = 1

    @property
    def pixels(self) -> int:
        """width x height."""
        return self.width * self.height


def read_header(data: bytes) -> Header:
    """The header of a JPEG, PNG, GIF or WebP file.

    Raises :class:`~core.errors.UnsupportedFormat` (another image format, named), ``NotAnImage``
    (not an image), ``TruncatedImage`` (cut off before its size), ``TooComplex`` (built to be slow:
    see the module's limits).
    """
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg(data)
    if data[:8] == PNG_SIGNATURE:
        return _png(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _gif(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    raise _not_ours(data)


def _not_ours(data: bytes) -> NotAnImage:
    head = data[:32]
    for offset, magic, name in _OTHER_FORMATS:
        if head[offset : offset + len(magic)] == magic:
            return _unsupported(name)
    stripped = head.lstrip()
    if re.match(rb"P[1-7]\s", stripped):
        return _unsupported("PNM (PPM, PGM)")
    if stripped.startswith((b"<svg", b"<?xml")):
        return _unsupported("SVG")
    return NotAnImage(N_("That file is not a photo I can read (JPEG, PNG, WebP or GIF)."))


def _unsupported(name: str) -> UnsupportedFormat:
    return UnsupportedFormat(
        N_("That file is in {format} format; I can read JPEG, PNG, WebP and GIF photos."), format=name
    )


def check_scans(header: Header) -> None:
    """Refuse a JPEG whose scans x pixels exceed :data:`MAX_SCAN_PIXELS` (check its size first)."""
    if header.scans * header.pixels > MAX_SCAN_PIXELS:
        raise _too_complex(
            Message(
                N_(
                    "{scans} progressive JPEG scans of {megapixels:.0f} megapixels; "
                    "I decode up to {limit} million scan-pixels"
                ),
                scans=header.scans,
                megapixels=header.pixels / 1e6,
                limit=MAX_SCAN_PIXELS // 1_000_000,
            )
        )


def _too_complex(what: Message) -> TooComplex:
    return TooComplex(
        N_(
            "That image is built in an unusual way ({what}), so I won't decode it; "
            "please save it again as an ordinary JPEG or PNG."
        ),
        what=what,
    )


def _jpeg(data: bytes) -> Header:
    size = len(data)
    pos = 2
    segments = scans = 0
    frame: tuple[int, int, int, int] | None = None  # marker, precision, width, height
    while pos < size:
        if scans:  # after entropy-coded data, which may be megabytes long
            marker = _JPEG_MARKER_AFTER_SCAN.search(data, pos)
        else:  # segments follow each other, after at most MAX_JPEG_GAP junk or fill bytes
            marker = _JPEG_MARKER.search(data, pos, pos + MAX_JPEG_GAP + 2)
            if marker is None and size - pos > MAX_JPEG_GAP + 2:
                raise _too_complex(
                    Message(N_("over {count} junk or fill bytes between JPEG segments"), count=MAX_JPEG_GAP)
                )
        if marker is None:
            break  # the file ends: truncated, or trailing data; Pillow reports what matters
        code = marker[1][0]
        pos = marker.end()
        if code == 0xD9:  # end of image (an MPO's next picture or trailing data may follow)
            break
        if code == 0x01 or 0xD0 <= code <= 0xD8:  # standalone markers: no length
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise _too_complex(Message(N_("more than {count} JPEG segments"), count=MAX_JPEG_SEGMENTS))
        if pos + 2 > size:
            break
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2:
            raise TruncatedImage(
                N_("That photo is damaged (a JPEG segment of length 0); please send it again.")
            )
        body = data[pos + 2 : pos + length]
        pos += length
        if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC) and frame is None:
            if code not in _SOF_ACCEPTED:
                raise UnsupportedFormat(
                    N_("That JPEG is {kind}, which I can't read; please send an ordinary JPEG or PNG."),
                    kind=Message(_SOF_OTHER.get(code, N_("of a rare kind"))),
                )
            if len(body) < 6:
                break
            precision = body[0]
            if precision != 8:
                raise UnsupportedFormat(
                    N_(
                        "That JPEG has {bits}-bit samples, which I can't read; "
                        "please send an ordinary JPEG or PNG."
                    ),
                    bits=precision,
                )
            frame = (code, precision, int.from_bytes(body[3:5], "big"), int.from_bytes(body[1:3], "big"))
        elif code == 0xDA:
            if frame is None:
                raise NotAnImage(N_("That file is not a photo I can read (a JPEG scan before its size)."))
            scans += 1
            if scans > MAX_SCANS:
                raise _too_complex(Message(N_("more than {count} progressive JPEG scans"), count=MAX_SCANS))
    if frame is None:
        raise TruncatedImage(N_("That photo is cut off or damaged (no JPEG size); please send it again."))
    _, _, width, height = frame
    return Header("JPEG", width, height, max(scans, 1))


def _png(data: bytes) -> Header:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise TruncatedImage(N_("That photo is cut off or damaged (no PNG header); please send it again."))
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    pos, chunks = 8, 0
    while pos + 8 <= len(data):
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise _too_complex(Message(N_("more than {count} PNG chunks"), count=MAX_PNG_CHUNKS))
        length = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"IEND":
            break
        pos += 12 + length
    return Header("PNG", width, height)


def _gif(data: bytes) -> Header:
    flags = data[10] if len(data) > 10 else 0
    first_block = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # after the colour table
    if len(data) <= first_block:
        raise TruncatedImage(N_("That photo is cut off or damaged (no GIF header); please send it again."))
    if data[first_block] not in (0x21, 0x2C, 0x3B):  # extension, image, trailer
        raise NotAnImage(N_("That file is not a photo I can read (it starts like a GIF but is not one)."))
    return Header("GIF", int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little"))


def _webp(data: bytes) -> Header:
    kind, payload = data[12:16], data[20:40]
    if kind == b"VP8X" and len(payload) >= 10:
        width = 1 + int.from_bytes(payload[4:7], "little")
        height = 1 + int.from_bytes(payload[7:10], "little")
    elif kind == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
        bits = int.from_bytes(payload[1:5], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif kind == b"VP8 " and len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a":
        width = int.from_bytes(payload[6:8], "little") & 0x3FFF
        height = int.from_bytes(payload[8:10], "little") & 0x3FFF
    elif len(data) < 40:
        raise TruncatedImage(N_("That photo is cut off or damaged (no WebP header); please send it again."))
    else:
        raise NotAnImage(N_("That file is not a photo I can read (a WebP without a picture)."))
    return Header("WEBP", width, height)
