"""Reference logo features for the logo matcher: decoding, checks (typed errors), extraction over a small
pyramid of the reference, and a pickle-free serialisation for the database.

A `ReferenceLogo` holds one reference image's keypoints and descriptors, extracted once at registration
over a small pyramid of the reference (so logos far smaller in a photo than the reference still match),
over black and over white when it has transparent parts, and serialisable (`to_bytes`, .npz) for a
database. Matching is in `logo_matcher.py`.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from feedlens.core.errors import FeedlensError

FeatureKind = Literal["orb", "sift"]
DEFAULT_KIND: FeatureKind = "orb"
REF_SIDE = 400  # a reference's longer side (px) after cropping to its opaque pixels: its "frame"
REF_LEVELS = (1.0, 0.5, 0.25)  # reference pyramid, as scales of the frame
REF_LEVEL_MIN_SIDE = 80  # a level whose longer side would be smaller is skipped
PAD = 32  # px of background around each level: ORB finds no keypoint within edgeThreshold of a border
MASK_MARGIN = 4  # px: keypoints on a transparent logo's outline count as the logo's
MIN_LONG_SIDE, MIN_SHORT_SIDE = 64, 16  # of the opaque part of a reference image, px
MIN_REF_FEATURES = 24  # keypoints at the reference's full scale
MAX_REF_PIXELS = 40_000_000
ALPHA_OPAQUE = 128


class LogoError(FeedlensError):
    """A reference logo that cannot be used; `code` is stable (API and CLI)."""

    code = "logo_invalid"


class LogoUnreadableError(LogoError):
    code = "logo_unreadable"


class LogoTooLargeError(LogoError):
    code = "logo_too_large"


class LogoTooSmallError(LogoError):
    code = "logo_too_small"


class LogoNoFeaturesError(LogoError):
    code = "logo_no_features"


class LogoFeaturesError(LogoError):
    """Stored features that are corrupt or from another extractor version: re-extract from the image."""

    code = "logo_features_invalid"


@dataclass(frozen=True, slots=True)
class KindSpec:
    """Per-extractor settings. Distances: Hamming bits for ORB, L2 of RootSIFT for SIFT."""

    ref_features: int  # at the reference's full scale; half as many per further level
    query_features: int
    ratio: float  # Lowe's ratio test
    max_distance: float  # the nearest neighbour must also be at least this close


ORB = KindSpec(ref_features=500, query_features=2500, ratio=0.8, max_distance=70)
SIFT = KindSpec(ref_features=500, query_features=2000, ratio=0.8, max_distance=0.6)


def spec(kind: FeatureKind) -> KindSpec:
    return ORB if kind == "orb" else SIFT


def extractor(kind: FeatureKind, nfeatures: int) -> Any:
    """A fresh cv2 Feature2D (cheap; OpenCV algorithm objects are not documented as thread-safe)."""
    if kind == "orb":
        return cv2.ORB.create(nfeatures=nfeatures, scaleFactor=1.2, nlevels=8, fastThreshold=12)
    return cv2.SIFT.create(nfeatures=nfeatures)


def describe(
    kind: FeatureKind, gray: np.ndarray, nfeatures: int, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keypoints of a (H, W) uint8 image: xy (N, 2) float32 px, sizes (N,), angles (N,) float32 and
    descriptors (N, 32) uint8 for ORB or (N, 128) float32 RootSIFT (L2-normalised) for SIFT."""
    keypoints, desc = extractor(kind, nfeatures).detectAndCompute(gray, mask)
    dim, dtype = (32, np.uint8) if kind == "orb" else (128, np.float32)
    if desc is None or not keypoints:
        empty = np.zeros((0,), np.float32)
        return np.zeros((0, 2), np.float32), empty, empty, np.zeros((0, dim), dtype)
    xy = np.asarray(cv2.KeyPoint.convert(keypoints), np.float32).reshape(-1, 2)
    sizes = np.array([k.size for k in keypoints], np.float32)
    angles = np.array([k.angle for k in keypoints], np.float32)
    if kind == "sift":  # RootSIFT: Hellinger kernel, better matching for the same cost (Arandjelovic 2012)
        desc = np.sqrt(desc / np.maximum(desc.sum(axis=1, keepdims=True), 1e-7)).astype(np.float32)
    return xy, sizes, angles, np.ascontiguousarray(desc, dtype)


def _open_rgba(image: Image.Image | bytes) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of an image or encoded image bytes, upright per EXIF."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGBA"))
    try:
        with Image.open(io.BytesIO(image)) as opened:
            if opened.width * opened.height > MAX_REF_PIXELS:
                raise LogoTooLargeError(f"{opened.width}x{opened.height} px is more than {MAX_REF_PIXELS}")
            upright = ImageOps.exif_transpose(opened)
            return np.asarray(upright.convert("RGBA"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise LogoUnreadableError(f"not a readable image ({type(exc).__name__}: {exc})") from None


def _renditions(rgba: np.ndarray, frame: tuple[int, int]) -> tuple[list[tuple[np.ndarray, int]], np.ndarray]:
    """Gray (h, w) uint8 versions of an (H, W, 4) logo at the frame's size (w, h), each with the level of its
    surroundings (0 or 255), and the mask (h, w) uint8 of where keypoints count (opaque, dilated).

    A logo with transparent parts is seen on light and on dark things: ORB's and SIFT's descriptors flip
    with the contrast's sign, so it is rendered over black and over white. An opaque one is rendered once,
    surrounded by a level that contrasts with its edge."""
    alpha = rgba[..., 3].astype(np.float32) / 255
    lum = cv2.cvtColor(np.ascontiguousarray(rgba[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    opaque = (rgba[..., 3] >= ALPHA_OPAQUE).astype(np.uint8)
    if opaque.mean() < 0.98:
        backgrounds = [0, 255]
    else:
        edge = np.concatenate([lum[0], lum[-1], lum[:, 0], lum[:, -1]])
        backgrounds = [0 if edge.mean() > 127 else 255]
    shrink = frame[0] < rgba.shape[1]
    out = []
    for bg in backgrounds:
        gray = np.clip(lum * alpha + bg * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)
        out.append((cv2.resize(gray, frame, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC), bg))
    mask = cv2.resize(opaque, frame, interpolation=cv2.INTER_NEAREST)
    return out, cv2.dilate(mask, np.ones((2 * MASK_MARGIN + 1,) * 2, np.uint8))


def _pyramid(
    kind: FeatureKind, gray: np.ndarray, background: int, mask: np.ndarray
) -> list[tuple[np.ndarray, ...]]:
    """Features of each REF_LEVELS level of a rendition: (points, sizes, angles, levels, descriptors), points
    and sizes in frame px."""
    parts: list[tuple[np.ndarray, ...]] = []
    for level, s in enumerate(REF_LEVELS):
        if REF_SIDE * s < REF_LEVEL_MIN_SIDE:
            break
        size = (max(1, round(gray.shape[1] * s)), max(1, round(gray.shape[0] * s)))
        g = _pad(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), background)
        m = _pad(cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST), 0)
        xy, sizes, angles, desc = describe(kind, g, max(40, spec(kind).ref_features >> level), m * 255)
        parts.append(((xy - PAD) / s, sizes / s, angles, np.full(len(xy), level, np.uint8), desc))
    return parts


@dataclass(frozen=True, eq=False)
class ReferenceLogo:
    """Features of one reference image, in its frame: the opaque part scaled to REF_SIDE on its longer side.

    points (N, 2) float32 frame px; sizes, angles (N,) float32; levels (N,) uint8 pyramid level;
    descriptors (N, 32) uint8 (ORB) or (N, 128) float32 (RootSIFT). `width`, `height`: the uploaded image.
    """

    VERSION: ClassVar[int] = 1  # bump when extraction changes: stored features are then re-extracted

    kind: FeatureKind
    width: int
    height: int
    frame: tuple[int, int]  # (w, h) px
    points: np.ndarray
    sizes: np.ndarray
    angles: np.ndarray
    levels: np.ndarray
    descriptors: np.ndarray

    @classmethod
    def from_image(cls, image: Image.Image | bytes, kind: FeatureKind = DEFAULT_KIND) -> Self:
        """Extract features; raises LogoUnreadableError, LogoTooLargeError, LogoTooSmallError or
        LogoNoFeaturesError. Transparent pixels (alpha < 128) are not part of the logo."""
        rgba = _open_rgba(image)
        height, width = rgba.shape[:2]
        opaque = rgba[..., 3] >= ALPHA_OPAQUE
        if not opaque.any():
            raise LogoNoFeaturesError("the image is fully transparent")
        ys, xs = np.nonzero(opaque)
        crop = rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        long_side, short_side = max(crop.shape[:2]), min(crop.shape[:2])
        if long_side < MIN_LONG_SIDE or short_side < MIN_SHORT_SIDE:
            raise LogoTooSmallError(
                f"the logo is {crop.shape[1]}x{crop.shape[0]} px; at least {MIN_LONG_SIDE} px on its "
                f"longer side and {MIN_SHORT_SIDE} px on its shorter side are needed"
            )
        scale = REF_SIDE / long_side
        frame = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        renditions, mask = _renditions(crop, frame)
        parts = [part for gray, bg in renditions for part in _pyramid(kind, gray, bg, mask)]
        full_scale = max(int(np.sum(p[3] == 0)) for p in parts)  # keypoints at level 0, best rendition
        if full_scale < MIN_REF_FEATURES:
            raise LogoNoFeaturesError(
                f"only {full_scale} keypoints found (at least {MIN_REF_FEATURES} are needed): a logo needs "
                "corners and texture; plain shapes and flat colours cannot be matched"
            )
        points, sizes, angles, levels, descs = (np.concatenate(a) for a in zip(*parts, strict=True))
        return cls(kind, width, height, frame, points.astype(np.float32), sizes, angles, levels, descs)

    @classmethod
    def from_bytes(cls, data: bytes, kind: FeatureKind = DEFAULT_KIND) -> Self:
        """From an encoded image file (PNG, JPEG...): same as from_image."""
        return cls.from_image(bytes(data), kind)

    def to_bytes(self) -> bytes:
        """The features as an .npz archive (no pickle), for a database column."""
        out = io.BytesIO()
        np.savez(
            out,
            version=np.int32(self.VERSION),
            kind=np.str_(self.kind),
            size=np.array([self.width, self.height, *self.frame], np.int32),
            points=self.points,
            sizes=self.sizes,
            angles=self.angles,
            levels=self.levels,
            descriptors=self.descriptors,
        )
        return out.getvalue()

    @classmethod
    def from_bytes_features(cls, data: bytes) -> Self:
        """Inverse of to_bytes; raises LogoFeaturesError for a corrupt archive or another VERSION."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
            version, kind = int(arrays["version"]), str(arrays["kind"])
            width, height, fw, fh = (int(v) for v in arrays["size"])
            fields = [arrays[n] for n in ("points", "sizes", "angles", "levels", "descriptors")]
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise LogoFeaturesError(f"stored logo features are unreadable ({exc})") from None
        if version != cls.VERSION or kind not in ("orb", "sift"):
            raise LogoFeaturesError(f"stored logo features are {kind} v{version}, expected v{cls.VERSION}")
        n, dtype = len(fields[0]), np.uint8 if kind == "orb" else np.float32
        if fields[0].shape != (n, 2) or any(len(a) != n for a in fields) or fields[4].dtype != dtype:
            raise LogoFeaturesError("stored logo features have inconsistent shapes")
        return cls(kind, width, height, (fw, fh), *fields)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.points)


def _pad(image: np.ndarray, value: int) -> np.ndarray:
    return cv2.copyMakeBorder(image, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=value)
