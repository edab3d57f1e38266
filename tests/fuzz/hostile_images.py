"""A corpus of hostile image files, generated in code (nothing is stored): decompression bombs of every
format, extreme aspect ratios, huge dimensions in tiny files, truncated and corrupt files, NUL bytes,
non-images, and the fuzzers' regression inputs. Used by benchmarks/hostile_input.py.

Sizes are chosen against the default limits (20 MB per file, 75 Mpx per image): every bomb is within
them, so it is decoded for real and its cost is what a caller can make the server spend.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

from PIL import Image

from tests.fuzz.regressions import CASES as REGRESSIONS
from tests.fuzz.seeds import gradient, seed_images

BOMB_SIDE = 8660  # 8660^2 = 74,995,600 px: just under the default 75 Mpx limit


def _save(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_zeros(width: int, height: int) -> bytes:
    """A valid grayscale PNG of zeros, compressed row by row (never held whole in memory)."""
    pack = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(pack.compress(row) for _ in range(height)) + pack.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def png_gradient(width: int, height: int) -> bytes:
    return _save(Image.fromarray(gradient(width, height)), "PNG")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG with the frame header's size rewritten (the data covers 64x64)."""
    data = bytearray(_save(Image.fromarray(gradient(64, 64)), "JPEG", quality=50))
    at = data.find(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(_save(Image.fromarray(gradient(32, 32)).convert("P"), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # logical screen
    at = data.find(b"\x2c")  # image descriptor: its size too
    data[at + 5 : at + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def bmp_claiming(width: int, height: int, rle: bool) -> bytes:
    """A BMP header of width x height followed by nothing (or by one RLE8 end-of-bitmap)."""
    pixels = b"\x00\x01" if rle else b""
    palette = b"\x00\x00\x00\x00" * 256
    header = struct.pack(
        "<IiiHHIIiiII", 40, width, height, 1, 8, 1 if rle else 0, len(pixels), 2835, 2835, 256, 0
    )
    offset = 14 + len(header) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + palette + pixels


def tiff_claiming(width: int, height: int) -> bytes:
    data = bytearray(_save(Image.fromarray(gradient(24, 20)), "TIFF"))
    entries = struct.unpack_from("<H", data, 8)[0]
    for i in range(entries):  # rewrite ImageWidth (256) and ImageLength (257)
        at = 10 + 12 * i
        (tag,) = struct.unpack_from("<H", data, at)
        if tag in (256, 257):
            struct.pack_into("<HHII", data, at, tag, 4, 1, width if tag == 256 else height)
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    """A VP8X WebP whose canvas is width x height around a 32x32 lossy frame."""
    frame = _save(Image.fromarray(gradient(32, 32)), "WEBP", quality=30)[12:]
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + frame
    return b"RIFF" + struct.pack("<I", len(body)) + body


def bombs() -> dict[str, bytes]:
    """Each format at (or near) the pixel limit, in files of a few bytes to 1 MB."""
    side = BOMB_SIDE
    return {
        "bomb-png-75mp": png_zeros(side, side),
        "bomb-jpeg-75mp": _save(Image.new("L", (side, side), 128), "JPEG", quality=50),
        "bomb-gif-64mp": _save(Image.new("P", (8000, 8000), 0), "GIF"),
        "bomb-webp-75mp": _save(
            Image.new("RGB", (side, side), (10, 20, 30)), "WEBP", lossless=True, method=0
        ),
        "bomb-tiff-75mp": _save(Image.new("L", (side, side), 0), "TIFF", compression="tiff_deflate"),
        "bomb-bmp-rle-75mp": bmp_claiming(side, side, rle=True),
        "bomb-heif-16mp": _heif((4096, 4096)),
        "bomb-avif-67mp": _save(Image.new("RGB", (8192, 8192), (10, 20, 30)), "AVIF", quality=0, speed=10),
    }


def _heif(size: tuple[int, int]) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return _save(Image.new("RGB", size, (10, 20, 30)), "HEIF", quality=0)


def shapes() -> dict[str, bytes]:
    """Extreme aspect ratios with real pixels, and huge dimensions claimed by tiny files."""
    return {
        "aspect-png-16x20000": png_gradient(16, 20000),
        "aspect-png-16x50000": png_gradient(16, 50000),
        "aspect-png-50000x16": png_gradient(50000, 16),
        "aspect-jpeg-16x50000": _save(Image.fromarray(gradient(16, 50000)), "JPEG", quality=50),
        "claims-png-100000x100000": png_claiming(100_000, 100_000),
        "claims-png-1x75000000": png_claiming(1, 75_000_000),
        "claims-jpeg-65535x65535": jpeg_claiming(65535, 65535),
        "claims-gif-65535x65535": gif_claiming(65535, 65535),
        "claims-bmp-60000x60000": bmp_claiming(60000, 60000, rle=False),
        "claims-bmp-negative-height": bmp_claiming(4000, -4000, rle=False),
        "claims-tiff-1000000x1000000": tiff_claiming(1_000_000, 1_000_000),
        "claims-webp-16384x16384": webp_claiming(16384, 16384),
    }


def damaged() -> dict[str, bytes]:
    """Every seed cut in half and with a run of bytes overwritten in the middle; the fuzzers' finds."""
    out: dict[str, bytes] = {}
    for name, data in seed_images().items():
        middle = len(data) // 2
        out[f"truncated-{name}"] = data[:middle]
        out[f"corrupt-{name}"] = data[:middle] + b"\xff\x00" * 8 + data[middle + 16 :]
    out.update({f"regression-{name}": make() for name, make in REGRESSIONS.items()})
    return out


def oddities() -> dict[str, bytes]:
    return {
        "empty": b"",
        "nul-4k": b"\x00" * 4096,
        "png-signature-then-nul": b"\x89PNG\r\n\x1a\n" + b"\x00" * 4096,
        "not-image-pdf": b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
        "not-image-svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"/>',
        "not-image-html": b"<!doctype html><script>alert(1)</script>",
        "not-image-zip": b"PK\x03\x04" + b"\x00" * 64,
        "oversize-21mb": b"\xff\xd8\xff\xe0" + b"\x00" * (21 * 1024 * 1024),
    }


GROUPS: tuple[Callable[[], dict[str, bytes]], ...] = (bombs, shapes, damaged, oddities)


def hostile_images() -> dict[str, bytes]:
    """Name -> bytes of every hostile file (about 100; 0 B to 21 MB)."""
    out: dict[str, bytes] = {"control-png": png_gradient(320, 240)}  # a good image, for comparison
    for group in GROUPS:
        out.update(group())
    return out
