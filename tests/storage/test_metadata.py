"""Metadata stripping of the stored copy, on real photos encoded with real EXIF, XMP, text chunks and GPS.

Every check parses the output independently (its own JPEG segment / PNG chunk / RIFF walkers below) and
compares decoded pixels with the original's, so "stripped" never means "re-encoded" where it must not.
"""

from __future__ import annotations

import contextlib
import functools
import io
import random
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps, PngImagePlugin, features

from feedlens.config import MetadataPolicy
from feedlens.images import ImageDecoder
from feedlens.storage.metadata import StoredCopy, stored_copy
from tests.conftest import encode

MAKE = 0x010F
MODEL = 0x0110
ORIENTATION = 0x0112
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
DATE_TIME_ORIGINAL = 0x9003
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret-xmp-marker</x:xmpmeta>'
COMMENT = b"secret-comment-marker"
IPTC = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0csecret-iptc\x00"


def _exif(orientation: int = 1, gps: bool = True) -> Image.Exif:
    """Camera-like EXIF: Make/Model, DateTimeOriginal in the Exif IFD, Orientation and a GPS IFD."""
    exif = Image.Exif()
    exif[MAKE] = "PhoneMaker"
    exif[MODEL] = "Model X"
    if orientation != 1:
        exif[ORIENTATION] = orientation
    exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = "2024:05:06 07:08:09"
    if gps:
        ifd = exif.get_ifd(GPS_IFD)
        ifd[1] = "N"  # GPSLatitudeRef
        ifd[2] = (52.0, 31.0, 12.0)  # GPSLatitude
        ifd[3] = "E"  # GPSLongitudeRef
        ifd[4] = (13.0, 24.0, 0.0)  # GPSLongitude
    return exif


@pytest.fixture(scope="module")
def photo(sample_dir: Path) -> Image.Image:
    """A real photo, not square, so a lost or doubled rotation shows in the size."""
    return Image.open(sample_dir / "china.jpg").convert("RGB")


# -- independent parsers ------------------------------------------------------------------------------------


def _jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of each segment before the first scan; asserts the structure is well formed."""
    assert data[:2] == b"\xff\xd8", "no SOI"
    segments: list[tuple[int, bytes]] = []
    pos = 2
    while True:
        assert data[pos] == 0xFF, f"no marker at {pos}"
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        assert length >= 2 and pos + 2 + length <= len(data), f"segment {marker:#x} overruns the file"
        segments.append((marker, data[pos + 4 : pos + 2 + length]))
        if marker == 0xDA:
            return segments
        pos += 2 + length


def _exif_blocks(data: bytes) -> Iterator[Image.Exif]:
    """Every 'Exif\\0\\0' TIFF structure anywhere in the bytes (also in later frames or trailing data)."""
    start = data.find(b"Exif\x00\x00")
    while start >= 0:
        exif = Image.Exif()
        exif.load(data[start + 6 :])
        yield exif
        start = data.find(b"Exif\x00\x00", start + 6)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of each chunk; asserts signature, lengths and every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: list[tuple[bytes, bytes]] = []
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC on {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8, "RIFF size does not match the file"
    chunks: list[tuple[bytes, bytes]] = []
    pos = 12
    while pos < len(data):
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        chunks.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    assert pos == len(data)
    return chunks


def _pixels(data: bytes) -> np.ndarray:
    """Decoded pixels as stored (no orientation applied)."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def _upright(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def _insert_after_soi(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    return jpeg[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _finishes(call: Callable[[], object], timeout_s: float = 5.0) -> bool:
    """Whether `call` returns or raises within the time (a daemon thread, so a hang cannot block the run)."""

    def swallow() -> None:
        # Only termination is checked here; raising is covered by the unreadable-EXIF tests below.
        with contextlib.suppress(Exception):
            call()

    worker = threading.Thread(target=swallow, daemon=True)
    worker.start()
    worker.join(timeout_s)
    return not worker.is_alive()


# -- JPEG ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def camera_jpeg(photo: Image.Image) -> bytes:
    """Real photo as a phone would write it: EXIF (orientation 6, GPS), XMP, IPTC, a comment."""
    data = encode(photo, "JPEG", quality=90, exif=_exif(orientation=6).tobytes(), xmp=XMP, comment=COMMENT)
    data = _insert_after_soi(data, 0xED, IPTC)
    markers = [m for m, _ in _jpeg_segments(data)]
    assert markers.count(0xE1) == 2 and 0xFE in markers and 0xED in markers  # EXIF + XMP, COM, APP13
    return data


def test_jpeg_none_keeps_only_orientation(camera_jpeg: bytes) -> None:
    copy = stored_copy(camera_jpeg, "jpeg", MetadataPolicy.NONE)
    assert copy.format == "jpeg"
    out = copy.data
    segments = _jpeg_segments(out)
    app1 = [payload for marker, payload in segments if marker == 0xE1]
    assert len(app1) == 1 and app1[0].startswith(b"Exif\x00\x00")  # XMP APP1 gone
    assert not [m for m, _ in segments if m in (0xED, 0xFE)]  # IPTC and comment gone
    for marker in (b"secret-xmp-marker", COMMENT, b"secret-iptc", b"PhoneMaker", b"Model X", b"2024:05:06"):
        assert marker not in out
    (exif,) = _exif_blocks(out)
    assert dict(exif) == {ORIENTATION: 6}
    assert not exif.get_ifd(GPS_IFD) and not exif.get_ifd(EXIF_IFD)
    # Lossless: the entropy-coded data is untouched, so pixels are identical and still rotated by the tag.
    assert np.array_equal(_pixels(out), _pixels(camera_jpeg))
    assert np.array_equal(_upright(out), _upright(camera_jpeg))
    assert out[-2:] == b"\xff\xd9"
    with Image.open(io.BytesIO(out)) as image:
        assert image.format == "JPEG" and image.getexif()[ORIENTATION] == 6
        assert "comment" not in image.info and "xmp" not in image.info


def test_jpeg_no_gps_keeps_camera_fields(camera_jpeg: bytes) -> None:
    out = stored_copy(camera_jpeg, "jpeg", MetadataPolicy.NO_GPS).data
    (exif,) = _exif_blocks(out)
    assert exif[MAKE] == "PhoneMaker" and exif[MODEL] == "Model X" and exif[ORIENTATION] == 6
    assert exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] == "2024:05:06 07:08:09"
    assert GPS_IFD not in exif and not exif.get_ifd(GPS_IFD)
    assert b"secret-xmp-marker" not in out and COMMENT not in out  # XMP may hold GPS too: dropped
    assert np.array_equal(_pixels(out), _pixels(camera_jpeg))


def test_jpeg_upright_none_has_no_exif(photo: Image.Image) -> None:
    original = encode(photo, "JPEG", quality=90, exif=_exif(orientation=1).tobytes(), comment=COMMENT)
    out = stored_copy(original, "jpeg", MetadataPolicy.NONE).data
    assert not [m for m, _ in _jpeg_segments(out) if m in (0xE1, 0xFE)]
    assert b"Exif\x00\x00" not in out
    assert np.array_equal(_pixels(out), _pixels(original))


def test_jpeg_keeps_jfif_and_icc(photo: Image.Image) -> None:
    icc = b"\x00" * 128  # Pillow stores any bytes; only that APP2 survives matters here
    original = encode(photo, "JPEG", exif=_exif().tobytes(), icc_profile=icc)
    out = stored_copy(original, "jpeg", MetadataPolicy.NONE).data
    markers = [m for m, _ in _jpeg_segments(out)]
    assert markers[0] == 0xE0 and 0xE2 in markers  # JFIF first, ICC profile kept (colours stay right)


def test_all_keeps_bytes_identical(camera_jpeg: bytes, photo: Image.Image) -> None:
    png = encode(photo, "PNG", exif=_exif().tobytes())
    tiff = encode(photo, "TIFF", exif=_exif().tobytes())
    for data, fmt in ((camera_jpeg, "jpeg"), (png, "png"), (tiff, "tiff")):
        assert stored_copy(data, fmt, MetadataPolicy.ALL) == StoredCopy(data, fmt)


@pytest.mark.parametrize("policy", [MetadataPolicy.NONE, MetadataPolicy.NO_GPS])
def test_multi_picture_jpeg_keeps_no_gps(
    photo: Image.Image, decoder: ImageDecoder, policy: MetadataPolicy
) -> None:
    """MPO (multi-shot cameras, Ultra HDR gain maps) decodes as JPEG; its later frames carry EXIF too."""
    buf = io.BytesIO()
    photo.save(buf, "MPO", save_all=True, append_images=[photo.resize((160, 120))], exif=_exif().tobytes())
    original = buf.getvalue()
    assert decoder.decode(original).format == "jpeg"
    assert len(list(_exif_blocks(original))) == 2
    out = stored_copy(original, "jpeg", policy).data
    for exif in _exif_blocks(out):
        assert not exif.get_ifd(GPS_IFD)
        if policy is MetadataPolicy.NONE:
            assert MAKE not in exif
    assert np.array_equal(_pixels(out), _pixels(original))


def test_progressive_jpeg_metadata_between_scans_is_dropped(photo: Image.Image) -> None:
    """JPEG allows APPn and COM between the scans of a progressive image; libjpeg reads them there."""
    progressive = encode(photo, "JPEG", progressive=True)
    second_scan = progressive.index(b"\xff\xda", progressive.index(b"\xff\xda") + 2)
    exif_bytes = _exif().tobytes()
    inserted = b"\xff\xe1" + struct.pack(">H", len(exif_bytes) + 2) + exif_bytes
    inserted += b"\xff\xfe" + struct.pack(">H", len(COMMENT) + 2) + COMMENT
    original = progressive[:second_scan] + inserted + progressive[second_scan:]
    assert np.array_equal(_pixels(original), _pixels(progressive))  # a valid JPEG
    out = stored_copy(original, "jpeg", MetadataPolicy.NONE).data
    assert b"PhoneMaker" not in out and COMMENT not in out
    assert not any(exif.get_ifd(GPS_IFD) for exif in _exif_blocks(out))
    assert np.array_equal(_pixels(out), _pixels(original))


# -- odd and truncated JPEGs --------------------------------------------------------------------------------


def _odd_jpegs(valid: bytes) -> dict[str, bytes]:
    soi, rest = valid[:2], valid[2:]
    rng = random.Random(7)
    return {
        "empty": b"",
        "soi only": soi,
        "soi and ff": soi + b"\xff",
        "length past the end": soi + b"\xff\xe0\xff\xff" + b"JFIF\x00" * 3,
        "exif length past the end": soi + b"\xff\xe1\xff\xf0Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05",
        "length zero": soi + b"\xff\xe0\x00\x00" + rest,
        "length one": soi + b"\xff\xe2\x00\x01" + rest,
        "fill bytes": soi + b"\xff" * 200_000 + rest[1:],
        "many tiny segments": soi + b"\xff\xe3\x00\x02" * 100_000 + rest,
        "no scan": soi + b"\xff\xfe\x00\x05abc" * 1000,
        "random after soi": soi + bytes(rng.randrange(256) for _ in range(50_000)),
        "random markers": soi + b"".join(b"\xff" + bytes([rng.randrange(256)]) * 3 for _ in range(20_000)),
    }


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # "Corrupt EXIF data" on cut EXIF
def test_odd_jpegs_finish_in_bounded_time(camera_jpeg: bytes) -> None:
    cases = _odd_jpegs(camera_jpeg)
    header_end = camera_jpeg.index(b"\xff\xda") + 64
    cases.update({f"cut at {cut}": camera_jpeg[:cut] for cut in range(0, header_end, 7)})
    for name, data in cases.items():
        for policy in (MetadataPolicy.NONE, MetadataPolicy.NO_GPS):
            assert _finishes(functools.partial(stored_copy, data, "jpeg", policy)), f"{name}: did not finish"


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
def test_odd_jpegs_do_not_raise(camera_jpeg: bytes) -> None:
    """Odd segment lengths never raise; what is left unparsed is copied through."""
    for name, data in _odd_jpegs(camera_jpeg).items():
        for policy in (MetadataPolicy.NONE, MetadataPolicy.NO_GPS):
            out = stored_copy(data, "jpeg", policy).data
            assert out[:2] == data[:2], name


@pytest.mark.parametrize("policy", [MetadataPolicy.NONE, MetadataPolicy.NO_GPS])
def test_unreadable_exif_is_dropped_not_raised(
    photo: Image.Image, decoder: ImageDecoder, policy: MetadataPolicy
) -> None:
    """The decoder accepts a JPEG whose EXIF is garbage (pixels are fine), so ingest must store it too."""
    original = _insert_after_soi(encode(photo, "JPEG"), 0xE1, b"Exif\x00\x00garbage, not a TIFF header")
    assert decoder.decode(original).width == photo.width  # accepted for analysis
    out = stored_copy(original, "jpeg", policy).data
    assert b"garbage" not in out
    assert np.array_equal(_pixels(out), _pixels(original))


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
def test_truncated_exif_does_not_raise(camera_jpeg: bytes, photo: Image.Image) -> None:
    png = encode(photo, "PNG", exif=_exif().tobytes())
    for data, fmt in ((camera_jpeg, "jpeg"), (png, "png")):
        start = data.index(b"MM\x00*") if fmt == "jpeg" else data.index(b"eXIf") + 4
        for cut in range(start - 2, start + 40):
            for policy in (MetadataPolicy.NONE, MetadataPolicy.NO_GPS):
                copy = stored_copy(data[:cut], fmt, policy)
                # the file stays what it was, and an EXIF block that cannot be read is not carried over
                signature = data[:2] if fmt == "jpeg" else data[:8]  # SOI; the PNG signature
                assert copy.format == fmt and copy.data.startswith(signature), (cut, policy)
                if policy is MetadataPolicy.NONE:
                    assert b"MM\x00*" not in copy.data and b"II*\x00" not in copy.data, cut


# -- PNG ----------------------------------------------------------------------------------------------------


def _tagged_png(image: Image.Image, orientation: int) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "secret-text")
    info.add_text("Comment", "secret-ztxt", zip=True)
    info.add_itxt("Description", "secret-itxt", lang="en", tkey="Beschreibung")
    data = encode(image, "PNG", pnginfo=info, exif=_exif(orientation).tobytes())
    stamp = b"\x07\xe8\x05\x06\x07\x08\x09"  # tIME 2024-05-06 07:08:09, which Pillow does not write
    time_chunk = struct.pack(">I", 7) + b"tIME" + stamp + struct.pack(">I", zlib.crc32(b"tIME" + stamp))
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + time_chunk + data[iend:]


def test_png_none_drops_text_and_exif(photo: Image.Image) -> None:
    original = _tagged_png(photo, orientation=1)
    kinds = {k for k, _ in _png_chunks(original)}
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"} <= kinds
    out = stored_copy(original, "png", MetadataPolicy.NONE).data
    kinds_out = [k for k, _ in _png_chunks(out)]
    assert not {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"} & set(kinds_out)
    assert b"secret" not in out and b"PhoneMaker" not in out
    assert np.array_equal(_pixels(out), _pixels(original))


def test_png_no_gps_keeps_exif_without_gps(photo: Image.Image) -> None:
    original = _tagged_png(photo, orientation=1)
    out = stored_copy(original, "png", MetadataPolicy.NO_GPS).data
    (body,) = [b for k, b in _png_chunks(out) if k == b"eXIf"]  # CRC checked by _png_chunks
    exif = Image.Exif()
    exif.load(body)
    assert exif[MAKE] == "PhoneMaker" and not exif.get_ifd(GPS_IFD)
    assert b"secret" not in out
    with Image.open(io.BytesIO(out)) as image:
        assert image.getexif()[MAKE] == "PhoneMaker"
    assert np.array_equal(_pixels(out), _pixels(original))


def test_png_rotated_keeps_only_orientation(photo: Image.Image) -> None:
    original = _tagged_png(photo, orientation=6)
    out = stored_copy(original, "png", MetadataPolicy.NONE).data
    (body,) = [b for k, b in _png_chunks(out) if k == b"eXIf"]
    exif = Image.Exif()
    exif.load(body)
    assert dict(exif) == {ORIENTATION: 6}
    assert np.array_equal(_upright(out), _upright(original))


def test_png_drops_data_after_iend(photo: Image.Image) -> None:
    original = encode(photo, "PNG") + b"PK\x03\x04 appended secret archive"
    out = stored_copy(original, "png", MetadataPolicy.NONE).data
    assert out.endswith(b"IEND\xaeB`\x82") and b"secret" not in out


# -- WebP ---------------------------------------------------------------------------------------------------


def test_webp_exif_and_xmp_dropped(photo: Image.Image) -> None:
    original = encode(photo, "WEBP", quality=80, exif=_exif().tobytes(), xmp=XMP)
    kinds = [k for k, _ in _riff_chunks(original)]
    assert kinds[0] == b"VP8X" and b"EXIF" in kinds and b"XMP " in kinds
    for policy in (MetadataPolicy.NONE, MetadataPolicy.NO_GPS):
        copy = stored_copy(original, "webp", policy)
        assert copy.format == "webp"
        chunks = _riff_chunks(copy.data)
        assert [k for k, _ in chunks if k in (b"EXIF", b"XMP ")] == []
        assert chunks[0][1][0] & 0x0C == 0  # VP8X no longer announces EXIF/XMP
        assert b"PhoneMaker" not in copy.data and b"secret" not in copy.data
        with Image.open(io.BytesIO(copy.data)) as image:
            assert not image.getexif() and "xmp" not in image.info
        assert np.array_equal(_pixels(copy.data), _pixels(original))  # same bitstream, same pixels


def test_webp_without_metadata_is_unchanged(photo: Image.Image) -> None:
    original = encode(photo, "WEBP", quality=80)
    assert stored_copy(original, "webp", MetadataPolicy.NONE) == StoredCopy(original, "webp")


def test_rotated_webp_becomes_upright_png(photo: Image.Image) -> None:
    original = encode(photo, "WEBP", lossless=True, method=0, exif=_exif(orientation=6).tobytes())
    copy = stored_copy(original, "webp", MetadataPolicy.NONE)
    assert copy.format == "png"
    assert not {b"eXIf", b"tEXt", b"iTXt", b"zTXt"} & {k for k, _ in _png_chunks(copy.data)}
    assert np.array_equal(_pixels(copy.data), _upright(original))
    assert _pixels(copy.data).shape[:2] == (photo.width, photo.height)


# -- re-encoded and untouched formats -----------------------------------------------------------------------


@pytest.mark.parametrize("orientation", [1, 6])
def test_tiff_becomes_lossless_upright_png(photo: Image.Image, orientation: int) -> None:
    original = encode(photo, "TIFF", exif=_exif(orientation).tobytes())
    assert b"PhoneMaker" in original
    copy = stored_copy(original, "tiff", MetadataPolicy.NO_GPS)
    assert copy.format == "png"
    assert not {b"eXIf", b"tEXt", b"iTXt", b"zTXt"} & {k for k, _ in _png_chunks(copy.data)}
    assert b"PhoneMaker" not in copy.data
    assert np.array_equal(_pixels(copy.data), _upright(original))
    expected = (photo.height, photo.width) if orientation == 1 else (photo.width, photo.height)
    assert _pixels(copy.data).shape[:2] == expected


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_avif_becomes_upright_png(photo: Image.Image) -> None:
    small = photo.resize((160, 107))
    original = encode(small, "AVIF", quality=90, exif=_exif(orientation=6).tobytes())
    copy = stored_copy(original, "avif", MetadataPolicy.NONE)
    assert copy.format == "png" and b"PhoneMaker" not in copy.data
    assert np.array_equal(_pixels(copy.data), _upright(original))
    assert _pixels(copy.data).shape[:2] == (160, 107)


@pytest.mark.parametrize("fmt", ["GIF", "BMP"])
def test_gif_and_bmp_are_kept(photo: Image.Image, fmt: str) -> None:
    original = encode(photo.resize((120, 80)), fmt)
    for policy in MetadataPolicy:
        assert stored_copy(original, fmt.lower(), policy) == StoredCopy(original, fmt.lower())
