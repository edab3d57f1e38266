"""Logo detection by local-feature matching against reference images: the engine of the `brands` analyzer.

A `ReferenceLogo` holds one reference image's keypoints and descriptors, extracted once at registration
over a small pyramid of the reference (so logos far smaller in a photo than the reference still match),
over black and over white when it has transparent parts, and serialisable (`to_bytes`, .npz) for a
database. A `LogoIndex` stacks the descriptors of every reference of every brand into ONE
nearest-neighbour index (faiss: exact below FLAT_MAX descriptors, HNSW above), so a query image costs one
feature extraction and one k-NN search whatever the number of brands. Then, per image:

1. ratio test: a query descriptor's nearest reference descriptor must be clearly nearer than its nearest
   competitor: another brand's descriptor, or another point (more than SAME_POINT_PX away) of the same
   reference. The pyramid levels and renditions repeat each point, which a plain 2-NN test would reject;
   another reference of the same brand is no competitor;
2. matches grouped by reference; each reference with enough of them (most first, bounded) is verified:
   pose voting on the keypoints' rotation and scale changes picks a consistent subset, RANSAC fits a
   homography (reference frame -> image) to it, and the warped frame must be a plausible view of a flat
   logo: convex, not mirrored, bounded perspective and aspect change, not tiny, inliers spread over it;
3. several instances: the found instance's inliers and every match inside its quadrilateral are removed
   and the next pose is tried (bounded);
4. overlapping detections (of any brands) keep the best-scoring one.

ORB, not SIFT (DEFAULT_KIND), by benchmarks/brands_quality.py (docs/brands.md): on 1 MP composites SIFT
found more logos (recall +4 to +12 points) but took 5x as long (about 140 ms per image, over the 50 ms
budget on its own); `kind="sift"` remains available. Limits: colour is not used (a logo whose luminance
matches its surroundings is invisible), and a logo with a transparent background pasted on a busy photo
is rarely found (the descriptors around its edges are mostly background): register such logos also as
seen on their usual backgrounds (a pack, a sign), as further references of the brand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from feedlens.analyzers.logo_features import (
    DEFAULT_KIND,
    FeatureKind,
    LogoError,
    LogoFeaturesError,
    LogoNoFeaturesError,
    LogoTooLargeError,
    LogoTooSmallError,
    LogoUnreadableError,
    ReferenceLogo,
    describe,
    spec,
)

__all__ = [
    "LogoDetection",
    "LogoError",
    "LogoFeaturesError",
    "LogoIndex",
    "LogoNoFeaturesError",
    "LogoTooLargeError",
    "LogoTooSmallError",
    "LogoUnreadableError",
    "MatchParams",
    "ReferenceLogo",
]

SAME_POINT_PX = 10.0  # in the reference frame: pyramid copies of one corner lie closer than this
FLAT_MAX = 40_000  # descriptors: exact search up to here, HNSW above (benchmarks/brands_quality.py)
HNSW_M, HNSW_EF = 32, 32  # graph degree and search breadth
SCORE_SLOPE, SCORE_INTERCEPT = 1.46, -2.83  # see `score`
ROTATION_BIN, SCALE_BIN = 30, 0.5  # pose voting bins: degrees, log2 of the scale change


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


def score(inliers: int) -> float:
    """Probability 0..1 that a detection is right, from its distinct inliers: a logistic regression of
    right / wrong on (log inliers, inlier ratio) over the detections, with relaxed thresholds, of 12- and
    100-brand indexes on held-out composites (benchmarks/brands_quality.py --fit) gave
    z = 1.46 log(inliers) - 0.12 inlier_ratio - 2.73: the ratio carries no information once a detection has
    passed verification (right and wrong ones both have ratios near 0.9; wrong ones are mostly look-alikes),
    so it only gates (MatchParams.min_inlier_ratio) and its mean effect is folded into the intercept.
    10 inliers -> 0.63, 20 -> 0.82, 50 -> 0.95."""
    z = SCORE_SLOPE * math.log(max(inliers, 1)) + SCORE_INTERCEPT
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
        return score(self.inliers)


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
        import faiss  # only once a brand with logos exists

        index: Any
        if self.kind == "orb":
            bits = descriptors.shape[1] * 8
            index = (
                faiss.IndexBinaryFlat(bits) if self.size <= FLAT_MAX else faiss.IndexBinaryHNSW(bits, HNSW_M)
            )
        else:
            dim = descriptors.shape[1]
            index = faiss.IndexFlatL2(dim) if self.size <= FLAT_MAX else faiss.IndexHNSWFlat(dim, HNSW_M)
        if self.size > FLAT_MAX:
            index.hnsw.efSearch = HNSW_EF
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
        self,
        ref: int,
        src: np.ndarray,
        dst: np.ndarray,
        rotation: np.ndarray,
        log_scale: np.ndarray,
        shape: tuple[int, int],
    ) -> list[_Found]:
        """Instances of reference `ref` from its M matches: src (M, 2) frame px -> dst (M, 2) query px, with
        each match's keypoint rotation (degrees) and log2 scale change (M,). RANSAC runs on the matches
        that agree with the most popular rotation and scale (Lowe's pose voting): fewer outliers, so fewer
        iterations."""
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
