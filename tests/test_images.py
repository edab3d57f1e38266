"""The safe decoder on real and hostile inputs: every refusal has its stable code and nothing crashes."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from feedlens.config import DecodeLimits
from feedlens.core.errors import ImageError, ImageErrorCode
from feedlens.images import ImageDecoder, sniff_format
from tests.conftest import encode, gradient
from tests.support.images import png_claiming


def _code(decoder: ImageDecoder, data: bytes | Path, **kw: int) -> ImageErrorCode:
    with pytest.raises(ImageError) as info:
        decoder.decode(data, **kw)
    return info.value.image_code


@pytest.mark.parametrize(
    ("fmt", "name", "params"),
    [
        ("JPEG", "jpeg", {"quality": 90}),
        ("PNG", "png", {}),
        ("WEBP", "webp", {"quality": 90}),
        ("GIF", "gif", {}),
        ("BMP", "bmp", {}),
        ("TIFF", "tiff", {}),
        ("AVIF", "avif", {"quality": 90}),
        ("HEIF", "heif", {"quality": 90}),
    ],
)
def test_each_allowed_format_decodes(
    decoder: ImageDecoder, chelsea: Image.Image, fmt: str, name: str, params: dict[str, object]
) -> None:
    data = encode(chelsea, fmt, **params)
    decoded = decoder.decode(data)
    assert decoded.format == name
    assert (decoded.width, decoded.height) == chelsea.size
    assert decoded.image.mode == "RGB"
    diff = np.abs(np.asarray(decoded.image, np.float32) - np.asarray(chelsea, np.float32)).mean()
    assert diff < 12, f"{fmt} decoded far from the original (mean abs diff {diff:.1f})"


def test_sha256_is_of_the_original_bytes(decoder: ImageDecoder, chelsea: Image.Image) -> None:
    import hashlib

    data = encode(chelsea, "PNG")
    assert decoder.decode(data).sha256 == hashlib.sha256(data).hexdigest()


def test_zero_bytes(decoder: ImageDecoder) -> None:
    assert _code(decoder, b"") is ImageErrorCode.EMPTY


def test_random_bytes_named_jpg(decoder: ImageDecoder, tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert _code(decoder, path) is ImageErrorCode.UNSUPPORTED_FORMAT


def test_file_name_does_not_decide_the_format(
    decoder: ImageDecoder, chelsea: Image.Image, tmp_path: Path
) -> None:
    path = tmp_path / "really-a-png.jpg"
    path.write_bytes(encode(chelsea, "PNG"))
    assert decoder.decode(path).format == "png"


def test_truncated_jpeg(decoder: ImageDecoder, chelsea: Image.Image) -> None:
    data = encode(chelsea, "JPEG", quality=90)
    assert _code(decoder, data[: len(data) // 2]) is ImageErrorCode.TRUNCATED


def test_truncated_png(decoder: ImageDecoder, chelsea: Image.Image) -> None:
    data = encode(chelsea, "PNG")
    assert _code(decoder, data[: len(data) // 2]) in {ImageErrorCode.TRUNCATED, ImageErrorCode.CORRUPT}


def test_header_only_jpeg(decoder: ImageDecoder) -> None:
    assert _code(decoder, b"\xff\xd8\xff\xe0" + b"\x00" * 20) in {
        ImageErrorCode.CORRUPT,
        ImageErrorCode.TRUNCATED,
    }


def test_png_with_bad_checksum_is_corrupt(decoder: ImageDecoder) -> None:
    good = encode(gradient(64, 64), "PNG")
    broken = bytearray(good)
    broken[29] ^= 0xFF  # inside IHDR's CRC
    assert _code(decoder, bytes(broken)) in {ImageErrorCode.CORRUPT, ImageErrorCode.TRUNCATED}


def test_header_claiming_30000x30000_is_refused_before_decoding(decoder: ImageDecoder) -> None:
    data = png_claiming(30000, 30000)
    tracemalloc.start()
    start = time.perf_counter()
    code = _code(decoder, data)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert code is ImageErrorCode.TOO_MANY_PIXELS
    assert elapsed < 0.5  # decoding 900 MP would take seconds
    assert peak < 10 * 1024 * 1024  # and 2.7 GB; only the header was read


def test_svg_is_refused(decoder: ImageDecoder) -> None:
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    with pytest.raises(ImageError) as info:
        decoder.decode(svg)
    assert info.value.image_code is ImageErrorCode.UNSUPPORTED_FORMAT
    assert "SVG" in info.value.message


def test_pdf_is_refused(decoder: ImageDecoder) -> None:
    assert _code(decoder, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj") is ImageErrorCode.UNSUPPORTED_FORMAT


def test_bm_prefix_alone_is_not_a_bmp() -> None:
    assert sniff_format(b"BM" + b"\x00" * 40) is None


def test_cmyk_jpeg_becomes_rgb(decoder: ImageDecoder, chelsea: Image.Image) -> None:
    decoded = decoder.decode(encode(chelsea.convert("CMYK"), "JPEG", quality=95))
    assert decoded.image.mode == "RGB"
    diff = np.abs(np.asarray(decoded.image, np.float32) - np.asarray(chelsea, np.float32)).mean()
    assert diff < 15


def test_16_bit_png_keeps_its_tones(decoder: ImageDecoder) -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (64, 1))
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(__import__("io").BytesIO(data)).mode.startswith("I")
    rgb = np.asarray(decoder.decode(data).image)
    assert rgb.shape == (64, 256, 3)
    assert rgb[:, 0].max() <= 1 and rgb[:, -1].min() >= 254  # full range kept, not clipped to white
    assert 120 <= rgb.mean() <= 135


def test_rgba_is_composited_on_white(decoder: ImageDecoder) -> None:
    transparent = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    rgb = np.asarray(decoder.decode(encode(transparent, "PNG")).image)
    assert (rgb == 255).all()


def test_palette_with_transparency(decoder: ImageDecoder) -> None:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 16, 32))
    rgb = np.asarray(decoder.decode(encode(image, "PNG", transparency=0)).image)
    assert tuple(rgb[0, 0]) == (255, 0, 0) and tuple(rgb[0, 31]) == (255, 255, 255)


def test_animated_gif_uses_the_first_frame(decoder: ImageDecoder) -> None:
    frames = [Image.new("RGB", (40, 40), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    rgb = np.asarray(decoder.decode(data).image, np.int32)
    assert rgb[..., 0].mean() > 200 and rgb[..., 1].mean() < 50


def test_exif_rotation_is_applied(decoder: ImageDecoder, chelsea: Image.Image) -> None:
    stored = chelsea.transpose(Image.Transpose.ROTATE_90)  # as a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    decoded = decoder.decode(encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    assert (decoded.width, decoded.height) == chelsea.size
    assert decoded.image.size == chelsea.size
    diff = np.abs(np.asarray(decoded.image, np.float32) - np.asarray(chelsea, np.float32)).mean()
    assert diff < 8


def test_large_jpeg_is_draft_decoded_to_what_is_needed(decoder: ImageDecoder) -> None:
    data = encode(gradient(4000, 3000), "JPEG", quality=90)
    decoded = decoder.decode(data, min_side=256)
    assert (decoded.width, decoded.height) == (4000, 3000)  # the original's size is reported
    assert 256 <= min(decoded.image.size) < 512  # but only what the model needs was decoded
    assert decoded.image.size[0] / decoded.image.size[1] == pytest.approx(4 / 3, rel=0.01)


def test_large_png_is_reduced_to_what_is_needed(decoder: ImageDecoder) -> None:
    decoded = decoder.decode(encode(gradient(2000, 1500), "PNG"), min_side=256)
    assert 256 <= min(decoded.image.size) < 512


def test_too_small(decoder: ImageDecoder) -> None:
    assert _code(decoder, encode(Image.new("RGB", (1, 1)), "PNG")) is ImageErrorCode.TOO_SMALL
    assert _code(decoder, encode(Image.new("RGB", (5, 500)), "PNG")) is ImageErrorCode.TOO_SMALL


def test_too_large_by_bytes_is_refused_before_reading(chelsea: Image.Image, tmp_path: Path) -> None:
    small = ImageDecoder(DecodeLimits(max_bytes=1000))
    path = tmp_path / "big.png"
    path.write_bytes(encode(chelsea, "PNG"))
    assert _code(small, path) is ImageErrorCode.TOO_LARGE
    assert _code(small, path.read_bytes()) is ImageErrorCode.TOO_LARGE


def test_pixel_limit_is_configurable(chelsea: Image.Image) -> None:
    strict = ImageDecoder(DecodeLimits(max_pixels=100_000))
    assert _code(strict, encode(chelsea, "PNG")) is ImageErrorCode.TOO_MANY_PIXELS


def test_directory_and_missing_file_are_unreadable(decoder: ImageDecoder, tmp_path: Path) -> None:
    assert _code(decoder, tmp_path) is ImageErrorCode.UNREADABLE
    assert _code(decoder, tmp_path / "nope.jpg") is ImageErrorCode.UNREADABLE


def test_error_serialises_with_stable_code(decoder: ImageDecoder) -> None:
    with pytest.raises(ImageError) as info:
        decoder.decode(b"")
    assert info.value.to_dict() == {"code": "empty", "message": "the image is empty (0 bytes)"}


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPEG"])
def test_unreadable_exif_keeps_the_pixels(decoder: ImageDecoder, chelsea: Image.Image, fmt: str) -> None:
    data = encode(chelsea, fmt, exif=b"Exif\x00\x00garbage, not a TIFF structure")
    decoded = decoder.decode(data)
    assert (decoded.width, decoded.height) == chelsea.size
