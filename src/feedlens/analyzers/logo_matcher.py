"""Logo detection by local-feature matching against reference images: the engine of the `brands` analyzer.

A `ReferenceLogo` holds one reference image's keypoints and descriptors, extracted once at registration
(over a small pyramid of the reference, so logos far smaller in a photo than the reference still match)
and serialisable for a database. A `LogoIndex` stacks the descriptors of every reference of every brand
into ONE nearest-neighbour index (faiss; exact below FLAT_MAX descriptors, HNSW above), so a query image
costs one feature extraction and one k-NN search whatever the number of brands. Then, per image:

1. ratio test: a query descriptor's nearest reference descriptor must be clearly nearer than the nearest
   one that is *not the same physical point* (another reference, or a point of the same reference more than
   SAME_POINT_PX away: the pyramid levels repeat each point, which a plain 2-NN test would reject);
2. matches grouped by reference; each reference with enough of them is verified by a RANSAC homography
   (reference frame -> image), whose warped frame must be a plausible view: convex, not mirrored, bounded
   perspective and aspect distortion, not too small or large, inliers spread over the logo;
3. several instances: the found instance's inliers and every match inside its quadrilateral are removed,
   and RANSAC runs again on the rest (bounded);
4. overlapping detections (any brands) keep the best-scoring one.

ORB vs SIFT was chosen by benchmarks/brands_quality.py (docs/brands.md): see DEFAULT_KIND.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import cv2
import faiss
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
SAME_POINT_PX = 10.0  # in the reference frame: pyramid copies of one corner lie closer than this
FLAT_MAX = 40_000  # descriptors: exact search up to here, HNSW above (benchmarks/brands_quality.py)
ALPHA_OPAQUE = 128
ROTATION_BIN, SCALE_BIN = 30, 0.5  # pose voting bins: degrees, log2 of the scale change


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


ORB = KindSpec(ref_features=500, query_features=3000, ratio=0.8, max_distance=70)
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


def _renditions(rgba: np.ndarray) -> tuple[list[tuple[np.ndarray, int]], np.ndarray]:
    """Gray (H, W) uint8 versions of a logo to extract features from, each with the level of its
    surroundings (0 or 255), and the opaque mask (H, W) bool.

    A logo with transparent parts is seen on light and on dark things: ORB's and SIFT's descriptors flip
    with the contrast's sign, so it is rendered over black and over white. An opaque one is rendered once,
    surrounded by a level that contrasts with its edge."""
    alpha = rgba[..., 3:].astype(np.float32) / 255
    lum = cv2.cvtColor(np.ascontiguousarray(rgba[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    opaque = rgba[..., 3] >= ALPHA_OPAQUE
    if opaque.mean() < 0.98:
        backgrounds = [0, 255]
    else:
        edge = np.concatenate([lum[0], lum[-1], lum[:, 0], lum[:, -1]])
        backgrounds = [0 if edge.mean() > 127 else 255]
    out = [
        (np.clip(lum * alpha[..., 0] + bg * (1 - alpha[..., 0]) + 0.5, 0, 255).astype(np.uint8), bg)
        for bg in backgrounds
    ]
    return out, opaque


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
        renditions, opaque = _renditions(crop)
        scale = REF_SIDE / long_side
        frame = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        mask = cv2.resize(opaque.astype(np.uint8), frame, interpolation=cv2.INTER_NEAREST)
        mask = cv2.dilate(mask, np.ones((2 * MASK_MARGIN + 1,) * 2, np.uint8))
        parts, full_scale = [], 0
        for gray, background in renditions:
            gray = cv2.resize(gray, frame, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            for level, s in enumerate(REF_LEVELS):
                if REF_SIDE * s < REF_LEVEL_MIN_SIDE:
                    break
                size = (max(1, round(frame[0] * s)), max(1, round(frame[1] * s)))
                g = _pad(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), background)
                m = _pad(cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST), 0)
                xy, sizes, angles, desc = describe(
                    kind, g, max(40, spec(kind).ref_features >> level), m * 255
                )
                full_scale = max(full_scale, len(xy) if level == 0 else 0)
                parts.append(((xy - PAD) / s, sizes / s, angles, np.full(len(xy), level, np.uint8), desc))
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
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LogoFeaturesError(f"stored logo features are unreadable ({exc})") from None
        if version != cls.VERSION or kind not in ("orb", "sift"):
            raise LogoFeaturesError(f"stored logo features are {kind} v{version}, expected v{cls.VERSION}")
        n = len(fields[0])
        if fields[0].shape != (n, 2) or any(len(a) != n for a in fields):
            raise LogoFeaturesError("stored logo features have inconsistent shapes")
        return cls(kind, width, height, (fw, fh), *fields)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True, slots=True)
class LogoDetection:
    """One logo instance. `quad`: the reference frame's corners (top-left, top-right, bottom-right,
    bottom-left of the logo) in the image, as (x, y) fractions 0..1 of its width and height (clipped).
    `score` 0..1 (see `score`), `inliers`: distinct RANSAC inlier correspondences."""

    brand: str
    reference: str
    quad: tuple[tuple[float, float], ...]
    score: float
    inliers: int
    inlier_ratio: float  # distinct inliers / distinct matches of this reference inside the quad

    def bounds(self) -> tuple[float, float, float, float]:
        """Axis-aligned (x0, y0, x1, y1), normalised."""
        xs, ys = [p[0] for p in self.quad], [p[1] for p in self.quad]
        return min(xs), min(ys), max(xs), max(ys)


@dataclass(frozen=True, slots=True)
class MatchParams:
    """Verification thresholds (chosen on benchmarks/brands_quality.py, see docs/brands.md)."""

    k: int = 4  # neighbours searched: enough to get past a point's pyramid copies
    min_matches: int = 8  # ratio-test matches for a reference to be verified
    max_candidates: int = 12  # references verified per image, most matches first
    max_instances: int = 4  # instances per reference
    reproj_px: float = 5.0  # RANSAC inlier distance in query px (at about 1000 px)
    ransac_iters: int = 500
    min_inliers: int = 10  # distinct inliers
    min_inlier_ratio: float = 0.25  # of the distinct matches inside the quad
    min_spread: float = 0.05  # inliers' convex hull / frame area
    max_side_ratio: float = 3.0  # opposite sides of the quad (perspective)
    max_aspect_change: float = 3.0  # quad's aspect ratio vs the frame's
    min_sin: float = 0.3  # of every corner angle (about 17 degrees)
    min_side_px: float = 12.0
    nms_iou: float = 0.5


def score(inliers: int, inlier_ratio: float) -> float:
    """Confidence 0..1 from distinct inliers and inlier ratio (logistic, fit on benchmark composites)."""
    z = 1.4 * (math.log(max(inliers, 1)) - math.log(14)) + 4.0 * (inlier_ratio - 0.4)
    return 1 / (1 + math.exp(-z))


def _distinct(points: np.ndarray, cell: float) -> int:
    return len(np.unique(np.floor(points / cell).astype(np.int64), axis=0))


def _cross(quad: np.ndarray) -> np.ndarray:
    """z of (q[i+1] - q[i]) x (q[i+2] - q[i+1]) at each corner of a (4, 2) polygon."""
    e = np.roll(quad, -1, axis=0) - quad
    f = np.roll(e, -1, axis=0)
    return np.asarray(e[:, 0] * f[:, 1] - e[:, 1] * f[:, 0])


def inside(points: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """(N,) bool: points (N, 2) inside a convex clockwise-in-image quad (4, 2)."""
    e = np.roll(quad, -1, axis=0) - quad  # (4, 2)
    rel = points[:, None, :] - quad[None]  # (N, 4, 2)
    return np.asarray(np.all(e[None, :, 0] * rel[..., 1] - e[None, :, 1] * rel[..., 0] >= 0, axis=1))


def quad_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter, _ = cv2.intersectConvexConvex(a.astype(np.float32), b.astype(np.float32))
    union = cv2.contourArea(a.astype(np.float32)) + cv2.contourArea(b.astype(np.float32)) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _Found:
    ref: int
    quad: np.ndarray  # (4, 2) float64 query px
    inliers: int
    ratio: float

    @property
    def score(self) -> float:
        return score(self.inliers, self.ratio)


class LogoIndex:
    """One descriptor index over every reference of every brand; immutable (rebuild to change it).

    references: (brand, reference id, features), all of one kind.
    """

    def __init__(
        self, references: Iterable[tuple[str, str, ReferenceLogo]], params: MatchParams | None = None
    ) -> None:
        refs = [r for r in references if len(r[2])]
        kinds = {r[2].kind for r in refs}
        if len(kinds) > 1:
            raise ValueError(f"references of one kind only, got {sorted(kinds)}")
        self.kind: FeatureKind = refs[0][2].kind if refs else DEFAULT_KIND
        self.spec = spec(self.kind)
        self.params = params or MatchParams()
        self.brands = [brand for brand, _, _ in refs]
        self.ids = [ref_id for _, ref_id, _ in refs]
        names = {b: i for i, b in enumerate(dict.fromkeys(self.brands))}
        self.brand_of = np.array([names[b] for b in self.brands], np.int32)  # (R,) brand number
        self.frames = np.array([r.frame for _, _, r in refs], np.float64).reshape(-1, 2)  # (R, 2)
        owners = [np.full(len(r), i, np.int32) for i, (_, _, r) in enumerate(refs)]
        self.owner = np.concatenate(owners) if refs else np.zeros(0, np.int32)  # (D,) reference of each
        self.points = np.concatenate([r.points for _, _, r in refs]) if refs else np.zeros((0, 2), np.float32)
        self.sizes = np.concatenate([r.sizes for _, _, r in refs]) if refs else np.zeros(0, np.float32)
        self.angles = np.concatenate([r.angles for _, _, r in refs]) if refs else np.zeros(0, np.float32)
        self.size = len(self.owner)
        self._index: Any = self._build(np.concatenate([r.descriptors for _, _, r in refs])) if refs else None

    def _build(self, descriptors: np.ndarray) -> Any:
        index: Any
        if self.kind == "orb":
            bits = descriptors.shape[1] * 8
            index = faiss.IndexBinaryFlat(bits) if self.size <= FLAT_MAX else faiss.IndexBinaryHNSW(bits, 32)
        else:
            dim = descriptors.shape[1]
            index = faiss.IndexFlatL2(dim) if self.size <= FLAT_MAX else faiss.IndexHNSWFlat(dim, 32)
        if self.size > FLAT_MAX:
            index.hnsw.efSearch = 64
        index.add(np.ascontiguousarray(descriptors))
        return index

    def __len__(self) -> int:
        return len(self.brands)

    def detect(self, image: Image.Image | np.ndarray, max_side: int = 1000) -> list[LogoDetection]:
        """Logos in an image: PIL (any mode) or (H, W, 3) RGB / (H, W) gray uint8 array, matched with its
        longer side scaled down to `max_side` px. Best score first."""
        gray = _gray(image, max_side)
        if self._index is None:
            return []
        height, width = gray.shape
        found = self._find(gray)
        scale = np.array([width, height], np.float64)
        return [
            LogoDetection(
                self.brands[f.ref],
                self.ids[f.ref],
                tuple((float(x), float(y)) for x, y in np.clip(f.quad / scale, 0, 1).round(5)),
                round(f.score, 4),
                f.inliers,
                round(f.ratio, 4),
            )
            for f in found
        ]

    def _find(self, gray: np.ndarray) -> list[_Found]:
        xy, sizes, angles, desc = describe(self.kind, gray, self.spec.query_features)
        if len(desc) < self.params.min_matches:
            return []
        m = self._match(desc)
        counts = np.bincount(self.owner[m[:, 1]], minlength=len(self.brands))
        order = [int(r) for r in np.argsort(-counts, kind="stable")[: self.params.max_candidates]]
        found: list[_Found] = []
        for ref in order:
            if counts[ref] < self.params.min_matches:
                break
            q, d = m[self.owner[m[:, 1]] == ref].T
            rotation = angles[q] - self.angles[d]
            log_scale = np.log2(sizes[q] / self.sizes[d])
            found += self._verify(
                ref, self.points[d], xy[q].astype(np.float64), rotation, log_scale, gray.shape
            )
        return self._suppress(found)

    def _match(self, desc: np.ndarray) -> np.ndarray:
        """Ratio-tested matches of query descriptors (N, D): (M, 2) int64 (query index, index descriptor)."""
        k = min(self.params.k, self.size)
        dist, idx = self._index.search(np.ascontiguousarray(desc), k)  # (N, k) each; idx -1 = none
        dist = dist.astype(np.float64) if self.kind == "orb" else np.sqrt(np.maximum(dist, 0))
        valid = idx[:, 0] >= 0
        idx = np.where(idx >= 0, idx, idx[:, :1])
        owner, pts = self.owner[idx], self.points[idx]  # (N, k), (N, k, 2)
        brand = self.brand_of[owner]
        # Competitors: another brand's descriptors, or another point of the same reference. Other references
        # of the same brand are not (two photos of one pack share their features by design).
        far = np.linalg.norm(pts - pts[:, :1], axis=2) >= SAME_POINT_PX
        distinct = (brand != brand[:, :1]) | ((owner == owner[:, :1]) & far)
        has = distinct.any(axis=1)
        second = np.where(has, dist[np.arange(len(idx)), distinct.argmax(axis=1)], np.inf)
        keep = valid & (dist[:, 0] <= self.spec.ratio * second) & (dist[:, 0] <= self.spec.max_distance)
        return np.stack([np.flatnonzero(keep), idx[keep, 0]], axis=1).astype(np.int64)

    def _verify(
        self, ref: int, src: np.ndarray, dst: np.ndarray, rotation: np.ndarray, log_scale: np.ndarray,
        shape: tuple[int, int],
    ) -> list[_Found]:  # fmt: skip
        """Instances of reference `ref` from its M matches: src (M, 2) frame px -> dst (M, 2) query px, with
        each match's keypoint rotation (degrees) and log2 scale change (M,). RANSAC runs on the matches that
        agree with the most popular rotation and scale (Lowe's pose voting): fewer outliers, fewer iterations."""
        p = self.params
        fw, fh = self.frames[ref]
        corners = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float64)
        r_bin = np.floor((rotation % 360) / ROTATION_BIN).astype(np.int64)
        s_bin = np.floor(log_scale / SCALE_BIN).astype(np.int64)
        bins = 360 // ROTATION_BIN
        d_r = (r_bin[:, None] - r_bin[None]) % bins
        near = ((d_r <= 1) | (d_r >= bins - 1)) & (np.abs(s_bin[:, None] - s_bin[None]) <= 1)  # (M, M)
        active = np.ones(len(src), bool)
        found: list[_Found] = []
        for _ in range(p.max_instances + 1):
            votes = (near & active[None]).sum(axis=1) * active
            if votes.max() < p.min_matches or len(found) >= p.max_instances:
                break
            pose = np.flatnonzero(near[votes.argmax()] & active)
            h, mask = cv2.findHomography(
                src[pose], dst[pose], cv2.RANSAC, p.reproj_px, maxIters=p.ransac_iters
            )
            if h is None:
                active[pose] = False
                continue
            inl = pose[mask.ravel().astype(bool)]
            quad = _project(h, corners)
            support = min(_distinct(src[inl], 6.0), _distinct(dst[inl], 3.0))
            if quad is None or support < p.min_inliers or not self._plausible(quad, (fw, fh), shape):
                active[pose] = False
                continue
            hull = cv2.contourArea(cv2.convexHull(src[inl].astype(np.float32)))
            live = np.flatnonzero(active)
            region = live[inside(dst[live], quad)]
            ratio = support / max(1, _distinct(dst[np.union1d(region, inl)], 3.0))
            if hull >= p.min_spread * fw * fh and ratio >= p.min_inlier_ratio:
                found.append(_Found(ref, quad, support, ratio))
                active[region] = False
            active[inl] = False
        return found

    def _plausible(self, quad: np.ndarray, frame: tuple[float, float], shape: tuple[int, int]) -> bool:
        """A view of a flat logo: convex, same orientation as the frame, bounded distortion and size."""
        p = self.params
        sides = np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)  # top, right, bottom, left
        if sides.min() < p.min_side_px:
            return False
        sin = _cross(quad) / (sides * np.roll(sides, -1))
        if sin.min() < p.min_sin:  # also rejects mirrored, self-intersecting and concave quads
            return False
        if max(sides[0] / sides[2], sides[2] / sides[0], sides[1] / sides[3], sides[3] / sides[1]) > (
            p.max_side_ratio
        ):
            return False
        aspect = ((sides[0] + sides[2]) / (sides[1] + sides[3])) / (frame[0] / frame[1])
        area = cv2.contourArea(quad.astype(np.float32))
        return 1 / p.max_aspect_change <= aspect <= p.max_aspect_change and area <= 1.5 * shape[0] * shape[1]

    def _suppress(self, found: list[_Found]) -> list[_Found]:
        kept: list[_Found] = []
        for f in sorted(found, key=lambda f: -f.score):
            if all(quad_iou(f.quad, k.quad) <= self.params.nms_iou for k in kept):
                kept.append(f)
        return kept


def _project(h: np.ndarray, corners: np.ndarray) -> np.ndarray | None:
    """(4, 2) corners through homography h, or None when one falls behind the camera (w <= 0)."""
    w = np.c_[corners, np.ones(len(corners))] @ h.T
    if not np.all(np.isfinite(w)) or np.any(w[:, 2] <= 1e-9):
        return None
    return np.asarray(w[:, :2] / w[:, 2:])


def _pad(image: np.ndarray, value: int) -> np.ndarray:
    return cv2.copyMakeBorder(image, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=value)


def _gray(image: Image.Image | np.ndarray, max_side: int) -> np.ndarray:
    """(H, W) uint8 luminance, longer side at most max_side."""
    if isinstance(image, Image.Image):
        gray = np.asarray(image.convert("L"))
    elif image.ndim == 3:
        gray = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    else:
        gray = np.ascontiguousarray(image, np.uint8)
    scale = max_side / max(gray.shape)
    if scale < 1:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray
