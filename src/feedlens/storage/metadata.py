"""Strip metadata from the copy of an image that is stored, losslessly where the format allows.

JPEG and PNG are rewritten segment by segment / chunk by chunk, so pixels are byte-identical; WebP
chunks are dropped and its header flags fixed. TIFF, HEIF and AVIF carry metadata in ways that cannot be
cut out safely here, so they are re-encoded as lossless PNG. GIF and BMP carry no EXIF and are kept.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass

from PIL import Image, ImageOps

from feedlens.config import MetadataPolicy

GPS_IFD_TAG = 0x8825
ORIENTATION_TAG = 0x0112
_JPEG_EXIF = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"}
_WEBP_META_CHUNKS = {b"EXIF", b"XMP "}
_JPEG_MPF = b"MPF\x00"
# Entropy-coded data has 0xFF only before 0x00 (stuffing), RSTn or 0xFF (fill): anything else is a marker.
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_UNREADABLE_EXIF = (SyntaxError, ValueError, TypeError, KeyError, IndexError, struct.error, OSError)


@dataclass(frozen=True, slots=True)
class StoredCopy:
    data: bytes
    format: str  # may differ from the original's (TIFF/HEIF/AVIF -> png)


def _exif_payload(exif: Image.Exif) -> bytes:
    data = exif.tobytes()
    return data[len(_JPEG_EXIF) :] if data.startswith(_JPEG_EXIF) else data


def reduce_exif(exif_payload: bytes, policy: MetadataPolicy) -> bytes | None:
    """A TIFF-structured EXIF payload (no 'Exif\\0\\0' header) reduced by `policy`; None = drop it.

    NONE still keeps the Orientation tag: without it the stored copy would show (and re-analyse) sideways.
    """
    exif = Image.Exif()
    try:
        exif.load(exif_payload)
        if policy is MetadataPolicy.NO_GPS:
            if GPS_IFD_TAG in exif:
                del exif[GPS_IFD_TAG]
            return _exif_payload(exif)
        orientation = exif.get(ORIENTATION_TAG, 1)
    except _UNREADABLE_EXIF:
        return None  # the decoder accepts images with unreadable EXIF; what cannot be read is dropped whole
    if orientation == 1:
        return None
    only = Image.Exif()
    only[ORIENTATION_TAG] = orientation
    return _exif_payload(only)


def _jpeg(data: bytes, policy: MetadataPolicy) -> bytes:
    """Drop APPn segments (1 EXIF/XMP, 13 IPTC, 2 MPF) and comments, also between scans; keep JFIF/ICC/Adobe.

    Everything after the primary image's EOI is dropped: MPO frames and HDR gain maps carry their own EXIF.
    """
    out = bytearray(data[:2])
    pos = 2
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            break  # not a marker where one must be: leave the rest untouched
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI of the primary image
            return bytes(out + b"\xff\xd9")
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:  # markers without a length
            out += data[pos : pos + 2]
            pos += 2
            continue
        if pos + 4 > len(data):
            break
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segment = data[pos : pos + 2 + length]
        payload = segment[4:]
        if marker == 0xDA:  # scan header, then entropy-coded data up to the next real marker
            found = _JPEG_NEXT_MARKER.search(data, pos + 2 + length)
            end = found.start() if found else len(data)
            out += data[pos:end]
            pos = end
            continue
        if marker == 0xE1 and payload.startswith(_JPEG_EXIF):
            reduced = reduce_exif(payload[len(_JPEG_EXIF) :], policy)
            if reduced is not None and len(reduced) + len(_JPEG_EXIF) + 2 <= 0xFFFF:
                body = _JPEG_EXIF + reduced
                out += b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
        elif marker in (0xE1, 0xED, 0xFE) or (marker == 0xE2 and payload.startswith(_JPEG_MPF)):
            pass  # EXIF/XMP, IPTC/Photoshop, comment; MPF indexes the frames dropped after EOI
        else:
            out += segment
        pos += 2 + length
    out += data[pos:]
    return bytes(out)


def _png(data: bytes, policy: MetadataPolicy) -> bytes:
    out = bytearray(_PNG_SIGNATURE)
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos : pos + 12 + length]
        if kind == b"eXIf":
            body = reduce_exif(chunk[8:-4], policy)
            if body is not None:
                out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        elif kind not in _PNG_TEXT_CHUNKS:
            out += chunk
        pos += 12 + length
        if kind == b"IEND":
            break
    return bytes(out)


def _webp(data: bytes) -> bytes:
    """Drop EXIF and XMP chunks (both policies: WebP EXIF is rare; GPS-only surgery is not worth it)."""
    chunks = bytearray()
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunk = data[pos : pos + 8 + size + (size & 1)]
        if kind == b"VP8X":
            flags = chunk[8] & ~0x0C  # clear the EXIF (0x08) and XMP (0x04) bits
            chunk = chunk[:8] + bytes([flags]) + chunk[9:]
        if kind not in _WEBP_META_CHUNKS:
            chunks += chunk
        pos += 8 + size + (size & 1)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + bytes(chunks)


# Modes Pillow writes to PNG as they are; anything else is converted first.
PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})


def _reencode_png(data: bytes) -> bytes:
    """Lossless PNG of the upright image: orientation applied, since the tag is not carried over."""
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened)
        if image.mode not in PNG_MODES:  # CMYK, YCbCr, 32-bit float ... (TIFF): PNG cannot hold them
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        out = io.BytesIO()
        image.save(out, "PNG")  # Pillow writes no EXIF unless asked
        return out.getvalue()


def _orientation(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        return int(image.getexif().get(ORIENTATION_TAG, 1))


def stored_copy(data: bytes, fmt: str, policy: MetadataPolicy) -> StoredCopy:
    """What to keep of an original already accepted by the safe decoder (`fmt` is its sniffed format)."""
    if policy is MetadataPolicy.ALL:
        return StoredCopy(data, fmt)
    if fmt == "jpeg":
        return StoredCopy(_jpeg(data, policy), fmt)
    if fmt == "png":
        return StoredCopy(_png(data, policy), fmt)
    if fmt == "webp":
        # WebP EXIF is dropped whole; the rare rotated WebP is re-encoded upright instead.
        if _orientation(data) != 1:
            return StoredCopy(_reencode_png(data), "png")
        return StoredCopy(_webp(data), fmt)
    if fmt in ("tiff", "heif", "avif"):
        return StoredCopy(_reencode_png(data), "png")
    return StoredCopy(data, fmt)  # gif, bmp: no EXIF container
