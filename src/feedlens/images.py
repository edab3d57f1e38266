"""The one safe decoder for untrusted images.

Order matters: size limit on the bytes, then the format sniffed from content (never the file name), then
width x height read from the header, and only then pixels are decoded. JPEGs are decoded in draft
(DCT-scaled) mode straight to the smallest size that still covers what the analyzers need.
"""

from __future__ import annotations

import hashlib
import io
import re
import stat
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from feedlens.config import DecodeLimits
from feedlens.core.errors import ImageError, ImageErrorCode

# Pillow plugin name for each sniffed format; Image.open is restricted to that one plugin, so a file
# cannot smuggle itself to a different (riskier) parser.
_PIL_FORMATS: dict[str, tuple[str, ...]] = {
    "jpeg": ("JPEG",),
    "png": ("PNG",),
    "gif": ("GIF",),
    "webp": ("WEBP",),
    "bmp": ("BMP",),
    "tiff": ("TIFF",),
    "heif": ("HEIF",),
    "avif": ("AVIF", "HEIF"),
}
_BMP_DIB_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_HIGH_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """A decoded, upright RGB image plus facts about the original.

    `image` may be smaller than the original (draft decoding) but its shorter side is at least the
    `min_side` asked of the decoder, unless the original is smaller. `width`/`height` are the original's,
    after EXIF orientation.
    """

    image: Image.Image
    width: int
    height: int
    format: str
    sha256: str


def sniff_format(head: bytes) -> str | None:
    """Identify an allowed format from the first bytes (>= 32 recommended); None if not allowed."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:2] == b"BM" and len(head) >= 18:
        # "BM" alone is too weak a signature; the DIB header size that follows must be a known one.
        (dib_size,) = struct.unpack_from("<I", head, 14)
        return "bmp" if dib_size in _BMP_DIB_HEADER_SIZES else None
    if head[4:8] == b"ftyp":
        brands = {head[i : i + 4] for i in range(8, min(len(head), 64) - 3, 4)}
        if brands & _AVIF_BRANDS:
            return "avif"
        if brands & _HEIF_BRANDS:
            return "heif"
    return None


def _describe_refused(head: bytes) -> str:
    text = head.lstrip()[:256].lower()
    if text.startswith(b"%pdf"):
        return "PDF documents are not accepted"
    if b"<svg" in text or text.startswith(b"<?xml"):
        return "SVG/XML images are not accepted"
    return "not a JPEG, PNG, WebP, GIF, BMP, TIFF, HEIF or AVIF image"


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparency is composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in _HIGH_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or (image.mode == "I" and 255 < values.max() <= 65535):
            scaled = values / 257.0  # 16-bit -> 8-bit, full range preserved
        elif image.mode == "F" or values.max() > 65535 or values.min() < 0:
            low, high = float(values.min()), float(values.max())
            scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        else:
            scaled = values
        gray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        background.alpha_composite(rgba)
        return background.convert("RGB")
    return image.convert("RGB")


# Python object reprs ("<_io.BytesIO object at 0x7f...>") that library messages carry: never shown
_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


def _classify_decode_failure(exc: BaseException) -> ImageError:
    text = _OBJECT_REPR.sub("the image", str(exc))
    lowered = text.lower()
    if "truncated" in lowered or "end of file" in lowered or "eof" in lowered.split():
        return ImageError(ImageErrorCode.TRUNCATED, f"image data ends early: {text}")
    return ImageError(ImageErrorCode.CORRUPT, f"image data is corrupt: {text or type(exc).__name__}")


class ImageDecoder:
    """Decodes untrusted bytes or files into `DecodedImage`, or raises `ImageError` with a stable code."""

    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits
        try:  # HEIF support is optional: the format is refused as unsupported if the plugin is absent.
            import pillow_heif

            pillow_heif.register_heif_opener()
        except ImportError:  # pragma: no cover - pillow-heif is a pinned dependency
            pass

    def read(self, source: bytes | Path) -> bytes:
        """Bytes of `source`, refusing files over the byte limit before reading them."""
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
        else:
            try:
                info = source.stat()  # follows links: a link to /dev/zero is judged by what it reaches
                if stat.S_ISDIR(info.st_mode):
                    raise ImageError(ImageErrorCode.UNREADABLE, f"{source} is a directory")
                if not stat.S_ISREG(info.st_mode):  # a pipe would hang, a device never end: not read at all
                    raise ImageError(ImageErrorCode.UNREADABLE, f"{source} is not a regular file")
                if info.st_size > self.limits.max_bytes:
                    raise self._too_large(info.st_size)
                with source.open("rb") as f:  # at most one byte past the limit, whatever the size said
                    data = f.read(self.limits.max_bytes + 1)
            except OSError as exc:
                raise ImageError(ImageErrorCode.UNREADABLE, f"cannot read {source}: {exc.strerror}") from exc
        if len(data) > self.limits.max_bytes:
            raise self._too_large(len(data))
        return data

    def _too_large(self, size: int) -> ImageError:
        return ImageError(
            ImageErrorCode.TOO_LARGE, f"{size} bytes exceeds the limit of {self.limits.max_bytes} bytes"
        )

    def decode(
        self, source: bytes | Path, min_side: int | None = None, sha256: str | None = None
    ) -> DecodedImage:
        """Decode `source`. `min_side`: the shorter side the caller needs; None decodes at full size.
        `sha256`: the digest of these bytes when the caller already has it (ingest hashes once)."""
        data = self.read(source)
        if not data:
            raise ImageError(ImageErrorCode.EMPTY, "the image is empty (0 bytes)")
        fmt = sniff_format(data[:64])
        if fmt is None:
            raise ImageError(ImageErrorCode.UNSUPPORTED_FORMAT, _describe_refused(data[:512]))
        digest = sha256 or hashlib.sha256(data).hexdigest()
        try:
            with warnings.catch_warnings():
                # Our own pixel limit runs first; Pillow's bomb warning would only duplicate it.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image, (width, height) = self._load(data, fmt, min_side)
        except ImageError:
            raise
        except Image.DecompressionBombError as exc:  # a size Pillow found past our header check (frames)
            limit = self.limits.max_pixels
            message = f"the image holds more pixels than the limit of {limit} allows"
            raise ImageError(ImageErrorCode.TOO_MANY_PIXELS, message) from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
            raise _classify_decode_failure(exc) from exc
        except (MemoryError, RecursionError) as exc:
            raise ImageError(ImageErrorCode.CORRUPT, "the image cannot be decoded safely") from exc
        except Exception as exc:  # codec plugins raise what they like (RuntimeError, TypeError ...)
            raise ImageError(
                ImageErrorCode.CORRUPT, f"image data is corrupt: the {fmt} decoder gave up"
            ) from exc
        return DecodedImage(image=image, width=width, height=height, format=fmt, sha256=digest)

    def check_header(self, head: bytes) -> None:
        """Refuse what the first bytes of an image already show (format, pixel count, smallest side, aspect
        ratio) before the rest is even read or base64-decoded. A head too short to tell passes: `decode`
        checks everything again."""
        if not head:
            raise ImageError(ImageErrorCode.EMPTY, "the image is empty (0 bytes)")
        fmt = sniff_format(head[:64])
        if fmt is None:
            raise ImageError(ImageErrorCode.UNSUPPORTED_FORMAT, _describe_refused(head[:512]))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                size = Image.open(io.BytesIO(head), formats=list(_PIL_FORMATS[fmt])).size
        except Image.DecompressionBombError as exc:
            limit = self.limits.max_pixels
            message = f"the image holds more pixels than the limit of {limit} allows"
            raise ImageError(ImageErrorCode.TOO_MANY_PIXELS, message) from exc
        except Exception:  # a partial file says nothing yet; decode() has the last word
            return
        self._check_size(*size)

    def _check_size(self, width: int, height: int) -> None:
        """The header's size against the configured limits (quoted as configured, never Pillow's own)."""
        if width * height > self.limits.max_pixels:
            raise ImageError(
                ImageErrorCode.TOO_MANY_PIXELS,
                f"{width}x{height} = {width * height} pixels exceeds the limit of {self.limits.max_pixels}",
            )
        if min(width, height) < self.limits.min_side:
            raise ImageError(
                ImageErrorCode.TOO_SMALL,
                f"{width}x{height} is below the minimum side of {self.limits.min_side} px",
            )
        if max(width, height) > self.limits.max_aspect_ratio * min(width, height):
            raise ImageError(
                ImageErrorCode.EXTREME_ASPECT_RATIO,
                f"{width}x{height} is longer than {self.limits.max_aspect_ratio:g} times its width or height",
            )

    def _load(self, data: bytes, fmt: str, min_side: int | None) -> tuple[Image.Image, tuple[int, int]]:
        """Decoded upright RGB image and the original's upright (width, height)."""
        image = Image.open(io.BytesIO(data), formats=list(_PIL_FORMATS[fmt]))
        width, height = image.size  # from the header; nothing decoded yet
        self._check_size(width, height)
        if fmt == "jpeg" and min_side is not None:
            scale = min_side / min(width, height)
            if scale < 1:
                # Pillow picks the largest DCT reduction (1/2, 1/4, 1/8) that stays >= the requested size.
                image.draft("RGB", (max(1, int(width * scale + 0.999)), max(1, int(height * scale + 0.999))))
        image.load()
        if image.size != (width, height) and image.size[0] * image.size[1] > width * height:
            # a decoder that grew the image past its header's size (a HEIF crop box): check it again, and
            # report the size it really has
            self._check_size(*image.size)
            width, height = image.size
        try:
            orientation = image.getexif().get(0x0112, 1)
            upright = ImageOps.exif_transpose(image) or image
        except (SyntaxError, ValueError, TypeError, KeyError, IndexError, struct.error):
            # unreadable EXIF (any format): keep pixels as stored rather than refuse the image
            orientation, upright = 1, image
        rgb = _to_rgb(upright)
        if min_side is not None:
            factor = min(rgb.size) // min_side
            if factor >= 2:  # cheap box reduce, still >= min_side; the analyzer does the exact resize
                rgb = rgb.reduce(factor)
        swapped = orientation in (5, 6, 7, 8)  # EXIF orientations that rotate by 90 degrees
        return rgb, ((height, width) if swapped else (width, height))
