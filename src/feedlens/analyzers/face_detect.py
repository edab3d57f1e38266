"""Face candidates for the `faces` analyzer: BlazeFace (MediaPipe's full-range model, 256 px input) on the
whole image and, where it pays, on a few overlapping tiles; merged with NudeNet's face regions.

BlazeFace facts (docs/models.md "blazeface-onnx"): input (1, 256, 256, 3) RGB as x / 127.5 - 1; 896 anchors
(stride 16: 16x16 cells x 2, then stride 32: 8x8 cells x 6) at cell centres; per anchor a score logit and
16 regressors: centre offset (2), width, height, then six (x, y) points, all in input pixels.

Why tiles (benchmarks/faces_quality.py): BlazeFace finds faces down to ~12 px of its 256 px input, so a
whole 1000 px photo yields faces of ~50 px and more. A 2x2 grid of tiles 0.55 of the longer side each
reaches ~25 px faces for 4 more runs (~8-15 ms each); images whose longer side is under `TILE_ABOVE` gain
nothing (their tiles would be upscaled) and are not tiled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import cv2
import numpy as np

from feedlens.core.results import Box

BLAZE_SIZE = 256
BLAZE_MIN_SCORE = 0.5  # BlazeFace's own floor: lower ones were mostly look-alikes on the corpus
BLAZE_NMS_IOU = 0.3  # docs/models.md measured with 0.3; Human's 0.1 merges neighbours in group photos
TILE_FRACTION = 0.55  # tile side / longer image side: 2 tiles along each axis, overlapping by 0.1 of it
TILE_ABOVE = 600  # longer side (px, decoded) from which tiles reach faces the whole-image pass cannot
EDGE_TOLERANCE = 0.01  # tile-relative: a face this close to an inner tile edge is cut off; a neighbour has it
SAME_FACE_IOU = 0.4
SAME_FACE_INSIDE = 0.6  # a box this much inside a kept one is the same face (part of it)


@dataclass(frozen=True, slots=True)
class Detection:
    """One face candidate: normalised `box`, the detector's own `score`, which `detector` found it, and
    BlazeFace's six points (eyes, nose, mouth, ears; normalised x, y) when BlazeFace found it."""

    box: Box
    score: float
    detector: str
    points: tuple[tuple[float, float], ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class BlazeInput:
    """One region of an image ready for BlazeFace: `pixels` (256, 256, 3) float32 in -1..1, the region
    (x0, y0) px in the image, and `side`: the square the 256 px input stands for, in image pixels."""

    pixels: np.ndarray
    x0: int
    y0: int
    side: float
    inner: tuple[bool, bool, bool, bool]  # left, top, right, bottom edges lie inside the image (tiles)


@cache
def anchors() -> np.ndarray:
    """(896, 2) anchor centres (x, y) in input pixels, in the model's row order."""
    rows = []
    for stride, per_cell in ((16, 2), (32, 6)):
        cells = BLAZE_SIZE // stride
        for row in range(cells):
            for col in range(cells):
                rows += [(stride * (col + 0.5), stride * (row + 0.5))] * per_cell
    out = np.asarray(rows, dtype=np.float32)
    out.setflags(write=False)
    return out


def tile_grid(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Square tiles (x0, y0, x1, y1) px, `TILE_FRACTION` of the longer side, at most 2 along each axis: two
    such tiles cover an axis with an overlap of at least 0.1 of the longer side, wider than any face the
    whole-image pass misses. Empty when the image is too small for tiles to pay."""
    longer = max(width, height)
    if longer < TILE_ABOVE:
        return []
    side = max(BLAZE_SIZE, math.ceil(TILE_FRACTION * longer))

    def starts(length: int) -> list[int]:
        return [0] if length <= side else [0, length - side]

    return [
        (x, y, min(width, x + side), min(height, y + side)) for y in starts(height) for x in starts(width)
    ]


def blaze_input(pixels: np.ndarray, region: tuple[int, int, int, int] | None = None) -> BlazeInput:
    """(H, W, 3) uint8 RGB image -> `region` of it (default all) with its longer side shrunk to 256, padded
    right/bottom with black: resizing before padding keeps memory at the input's size whatever the shape."""
    height, width = pixels.shape[:2]
    x0, y0, x1, y1 = region or (0, 0, width, height)
    crop = pixels[y0:y1, x0:x1]
    side = float(max(x1 - x0, y1 - y0))
    scale = BLAZE_SIZE / side
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    # Area averaging when shrinking (no aliasing of small faces), cubic when enlarging; cv2 is ~5x faster
    # than PIL here.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    fitted = cv2.resize(crop, size, interpolation=interpolation).astype(np.float32)
    pixels = np.full((BLAZE_SIZE, BLAZE_SIZE, 3), -1.0, dtype=np.float32)
    pixels[: size[1], : size[0]] = fitted / 127.5 - 1.0
    inner = (x0 > 0, y0 > 0, x1 < width, y1 < height) if region else (False, False, False, False)
    return BlazeInput(pixels, x0, y0, side, inner)


def decode_blaze(
    outputs: Sequence[np.ndarray], where: BlazeInput, width: int, height: int, floor: float, name: str
) -> list[Detection]:
    """BlazeFace's four outputs for one input (scores (1, 512, 1), (1, 384, 1); regressors (1, 512, 16),
    (1, 384, 16), any order) -> NMS'd faces scored >= `floor` on the `width` x `height` image, without
    faces cut by an inner tile edge."""
    by_rows = sorted(
        outputs, key=lambda o: (o.shape[-1], -o.shape[1])
    )  # (512,1), (384,1), (512,16), (384,16)
    logits = np.concatenate([by_rows[0][0, :, 0], by_rows[1][0, :, 0]])
    regress = np.concatenate([by_rows[2][0], by_rows[3][0]])  # (896, 16)
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))
    keep = np.flatnonzero(scores >= floor)
    if not len(keep):
        return []
    centre = regress[keep, 0:2] + anchors()[keep]
    size = regress[keep, 2:4]
    corners = np.concatenate([centre - size / 2, size], axis=1)  # x, y, w, h in input px
    chosen = cv2.dnn.NMSBoxes(corners.tolist(), scores[keep].tolist(), floor, BLAZE_NMS_IOU)
    scale = where.side / BLAZE_SIZE
    found = []
    for k in np.asarray(chosen, dtype=int).reshape(-1):
        x, y, w, h = corners[k]
        if _cut_by_tile_edge((x, y, x + w, y + h), where):
            continue
        points = regress[keep[k], 4:16].reshape(6, 2) + anchors()[keep[k]]
        left, top = where.x0 + x * scale, where.y0 + y * scale
        box = Box.from_pixels(left, top, left + w * scale, top + h * scale, width, height)
        norm = tuple(
            (_unit((where.x0 + px * scale) / width), _unit((where.y0 + py * scale) / height))
            for px, py in points
        )
        found.append(Detection(box, round(float(scores[keep[k]]), 6), name, norm))
    return found


def _unit(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


def _cut_by_tile_edge(box: tuple[float, float, float, float], where: BlazeInput) -> bool:
    """A box (input px) touching an edge of the tile that lies inside the image."""
    x0, y0, x1, y1 = box
    margin = BLAZE_SIZE * EDGE_TOLERANCE
    near = (x0 < margin, y0 < margin, x1 > BLAZE_SIZE - margin, y1 > BLAZE_SIZE - margin)
    return any(i and n for i, n in zip(where.inner, near, strict=True))


def _inside(a: Box, b: Box) -> float:
    """Fraction of a's area that lies inside b."""
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    return ix * iy / a.area if a.area > 0 else 1.0


def same_face(a: Box, b: Box) -> bool:
    """Two boxes of one face: they overlap (IoU), or one lies mostly inside the other."""
    return a.iou(b) > SAME_FACE_IOU or _inside(a, b) > SAME_FACE_INSIDE or _inside(b, a) > SAME_FACE_INSIDE


def merge(detections: Sequence[Detection]) -> list[Detection]:
    """Greedy suppression by score within one detector's candidates: a box of a face already kept goes."""
    kept: list[Detection] = []
    for d in sorted(detections, key=lambda d: -d.score):
        if not any(same_face(d.box, k.box) for k in kept):
            kept.append(d)
    return kept


def combine(first: Sequence[Detection], *others: Sequence[Detection]) -> list[Detection]:
    """Candidates from detectors in priority order: a later detector only adds faces no earlier one has.
    Scores of different detectors are not comparable, so priority (not score) decides which box stays;
    a kept box borrows BlazeFace's points from the duplicate that had them."""
    kept = merge(first)
    for group in others:
        for d in merge(group):
            twin = next((i for i, k in enumerate(kept) if same_face(d.box, k.box)), None)
            if twin is None:
                kept.append(d)
            elif not kept[twin].points and d.points:
                k = kept[twin]
                kept[twin] = Detection(k.box, k.score, k.detector, d.points)
    return kept
