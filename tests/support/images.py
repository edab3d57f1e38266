"""Generated and damaged pictures several test modules send: a text meme, a JPEG cut in half, a PNG with
a broken checksum."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageDraw, ImageFont

from tests.conftest import encode
from tests.support.fonts import DEJAVU_BOLD


def meme(text: tuple[str, str] = ("WHEN THE CODE", "FINALLY WORKS")) -> bytes:
    """Black words on white, as memes and quote images are made (PNG, 800x600)."""
    image = Image.new("RGB", (800, 600), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(DEJAVU_BOLD, 48)
    draw.text((40, 200), text[0], fill="black", font=font)
    draw.text((40, 280), text[1], fill="black", font=font)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def truncated_jpeg(image: Image.Image) -> bytes:
    """The first half of the image's JPEG file: decoders stop early."""
    data = encode(image, "JPEG", quality=90)
    return data[: len(data) // 2]


def png_with_bad_crc(image: Image.Image) -> bytes:
    """The image as PNG with one byte of the header chunk's checksum flipped."""
    data = bytearray(encode(image, "PNG"))
    data[29] ^= 0xFF  # inside IHDR's CRC
    return bytes(data)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose header claims width x height (the pixel data is tiny)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
