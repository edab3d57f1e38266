"""Small valid images of every format the safe decoder accepts, made in code: the fuzzers' seed corpus.

Nothing here is a file in the repository; each seed is a few hundred bytes to a few KB, and together they
reach the decoder's branches (modes, alpha, 16-bit and float, palettes, animation, EXIF rotation, the JPEG
draft path, each TIFF compression).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

# libFuzzer dictionary entries: format signatures, chunk and box names, so mutations stay "image-like".
DICTIONARY = (
    b"\x89PNG\r\n\x1a\n", b"IHDR", b"IDAT", b"IEND", b"PLTE", b"tRNS", b"iCCP", b"eXIf", b"tEXt", b"zTXt",
    b"acTL", b"fcTL", b"fdAT", b"\xff\xd8\xff", b"\xff\xc0", b"\xff\xc2", b"\xff\xc4", b"\xff\xda",
    b"\xff\xdb", b"\xff\xe1", b"Exif\x00\x00", b"\xff\xd9", b"GIF89a", b"NETSCAPE2.0", b"\x21\xf9\x04",
    b"RIFF", b"WEBP", b"VP8 ", b"VP8L", b"VP8X", b"ANIM", b"ANMF", b"ALPH", b"BM", b"II*\x00", b"MM\x00*",
    b"ftyp", b"heic", b"mif1", b"avif", b"meta", b"iloc", b"ispe", b"ipma", b"mdat",
)  # fmt: skip


def gradient(width: int, height: int, channels: int = 3) -> np.ndarray:
    """A smooth uint8 test pattern, shape (height, width, channels)."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    planes = [x + 0 * y, y + 0 * x, (x + y) / 2, 255 - (x + y) / 2][:channels]
    return np.stack(planes, axis=-1).astype(np.uint8)


def _rgb(width: int = 40, height: int = 32) -> Image.Image:
    return Image.fromarray(gradient(width, height))


def _save(image: Image.Image | list[Image.Image], fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    if isinstance(image, list):
        image[0].save(out, format=fmt, save_all=True, append_images=image[1:], **params)
    else:
        image.save(out, format=fmt, **params)
    return out.getvalue()


def _exif_rotated() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return exif


def _png() -> dict[str, bytes]:
    rgba = Image.fromarray(gradient(40, 32, 4))
    palette = _rgb().convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    palette.info["transparency"] = 0
    sixteen = Image.fromarray(gradient(40, 32, 1)[..., 0].astype(np.uint16) * 257)
    return {
        "png-rgb": _save(_rgb(), "PNG"),
        "png-rgba": _save(rgba, "PNG"),
        "png-palette-trns": _save(palette, "PNG"),
        "png-gray16": _save(sixteen, "PNG"),
        "png-la": _save(rgba.convert("LA"), "PNG"),
        "png-exif-rot": _save(_rgb(), "PNG", exif=_exif_rotated()),
        "png-animated": _save([_rgb(), _rgb().rotate(180)], "PNG", duration=50),
    }


def _jpeg() -> dict[str, bytes]:
    big = _rgb(96, 72)  # min side 72: decoding at min_side 16 or 32 takes the DCT draft path
    return {
        "jpeg-baseline": _save(big, "JPEG", quality=40),
        "jpeg-progressive": _save(big, "JPEG", quality=40, progressive=True),
        "jpeg-gray": _save(big.convert("L"), "JPEG", quality=40),
        "jpeg-cmyk": _save(_rgb().convert("CMYK"), "JPEG", quality=40),
        "jpeg-exif-rot": _save(big, "JPEG", quality=40, exif=_exif_rotated()),
        "jpeg-444": _save(_rgb(), "JPEG", quality=40, subsampling=0),
    }


def _gif_webp() -> dict[str, bytes]:
    frames = [_rgb().convert("P"), _rgb().rotate(90).convert("P")]
    rgba = Image.fromarray(gradient(40, 32, 4))
    return {
        "gif": _save(_rgb().convert("P"), "GIF"),
        "gif-animated": _save(frames, "GIF", duration=40, loop=0, transparency=0),
        "webp-lossy": _save(_rgb(), "WEBP", quality=30),
        "webp-lossless-alpha": _save(rgba, "WEBP", lossless=True),
        "webp-animated": _save([_rgb(), _rgb().rotate(180)], "WEBP", duration=40, quality=20),
    }


def _bmp_tiff() -> dict[str, bytes]:
    small = _rgb(24, 20)
    floats = Image.fromarray(gradient(24, 20, 1)[..., 0].astype(np.float32) / 7.0)
    sixteen = Image.fromarray(gradient(24, 20, 1)[..., 0].astype(np.uint16) * 257)
    return {
        "bmp-rgb": _save(small, "BMP"),
        "bmp-palette": _save(small.convert("P"), "BMP"),
        "bmp-1bit": _save(small.convert("1"), "BMP"),
        "tiff-deflate": _save(small, "TIFF", compression="tiff_deflate"),
        "tiff-lzw": _save(small, "TIFF", compression="tiff_lzw"),
        "tiff-packbits-cmyk": _save(small.convert("CMYK"), "TIFF", compression="packbits"),
        "tiff-float": _save(floats, "TIFF"),
        "tiff-gray16-be": _save(sixteen, "TIFF"),
        "tiff-pages": _save([small, small.rotate(90)], "TIFF"),
        "tiff-exif-rot": _save(small, "TIFF", exif=_exif_rotated()),
    }


def _heif_avif() -> dict[str, bytes]:
    import pillow_heif  # registers the HEIF saver and opener (a pinned dependency)

    pillow_heif.register_heif_opener()
    return {
        "heif": _save(_rgb(32, 32), "HEIF", quality=20),
        "avif": _save(_rgb(32, 32), "AVIF", quality=20),
    }


GROUPS: tuple[Callable[[], dict[str, bytes]], ...] = (_png, _jpeg, _gif_webp, _bmp_tiff, _heif_avif)


def seed_images() -> dict[str, bytes]:
    """Name -> bytes of every seed (about 30, 80 B to 4 KB each)."""
    seeds: dict[str, bytes] = {}
    for group in GROUPS:
        seeds.update(group())
    return seeds


def write_corpus(folder: Path) -> list[Path]:
    """Write every seed into `folder` (created); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in seed_images().items():
        path = folder / f"seed-{name}"
        path.write_bytes(data)
        paths.append(path)
    return paths


def write_dictionary(path: Path) -> Path:
    """DICTIONARY in libFuzzer's `-dict=` format (one escaped string a line)."""
    lines = ['"' + "".join(f"\\x{b:02x}" for b in token) + '"' for token in DICTIONARY]
    path.write_text("\n".join(lines) + "\n")
    return path
