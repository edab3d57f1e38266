"""`faces`: face boxes (NudeNet's face classes, plus a tiled second pass for small faces) and, for each face,
the FER mini-Xception 7-emotion distribution; an image-level emotion summary for sentiment analytics.

Detector choice (measured by benchmarks/face_detectors.py, see docs/analyzers.md): the shared NudeNet pass
(`body_regions`, free) finds faces down to ~25 px in its 320 px letterbox, i.e. ~1/8 of a big image's
height. Tiles of TILE px of the decoded image, each run through NudeNet at half scale, reach faces ~4x
smaller. OpenCV's Haar cascade reached small faces too, but with many more false positives, boxes that cut
off the chin (bad for redaction) and 3x the time, so it is not used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.analyzers.body_regions import MODEL_SIZE, decode_yolo, letterbox
from feedlens.core.results import Box
from feedlens.core.results.faces import EMOTIONS, Face, FacesResult
from feedlens.core.results.regions import FACE_CLASSES, BodyRegionsResult
from feedlens.runtime.sessions import InferenceSession, open_session

# FEEDLENS_FACES_MIN_SCORE (default 0.3) was chosen on benchmarks/face_detectors.py's recall /
# false-positive sweep: true faces mostly score >= 0.3 and false ones below.
# Tiles are TILE x TILE px of the decoded image (NudeNet then sees them at MODEL_SIZE / TILE = 1/2 scale);
# neighbours overlap by a quarter so any face up to TILE / 4 px lies whole inside some tile.
TILE = 2 * MODEL_SIZE
TILE_OVERLAP = 0.25
TILE_ABOVE = 1.25 * TILE  # tile only images whose longer side exceeds this: smaller ones gain little
EDGE_TOLERANCE = 0.01  # tile-relative: a detection this close to an inner tile edge is a cut-off face
SAME_FACE_IOU = 0.4
SAME_FACE_INSIDE = 0.6  # a box this much inside a kept one is the same face (part of it)
# Emotion crop: a square around the face box, grown by this fraction of its longer side per side. 0.2 gave
# sensible results on the sample faces (astronaut happy, Grace Hopper neutral); tighter crops made Grace
# Hopper angry/sad, because FER2013's training faces include the forehead and chin with a little context.
EMOTION_MARGIN = 0.2
EMOTION_SIZE = 64


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    score: float
    detector: str


@dataclass(slots=True)
class FacesBatch:
    """Everything `_forward` needs: tiles letterboxed for NudeNet, the first pass's faces, gray images."""

    tiles: np.ndarray  # (K, 3, 320, 320) float32 0..1, K tiles over all images (K may be 0)
    tile_sides: list[float]  # letterbox square side per tile, in the tile's pixels
    tile_boxes: list[tuple[int, int, int, int, int]]  # (image index, x0, y0, x1, y1) px per tile
    first_pass: list[list[Detection]]  # per image, from the shared body_regions stage
    grays: list[np.ndarray]  # per image, (H, W) uint8


def tile_grid(
    width: int, height: int, tile: int = TILE, overlap: float = TILE_OVERLAP
) -> list[tuple[int, int, int, int]]:
    """Pixel boxes (x0, y0, x1, y1) of square tiles covering the image with at least `overlap` between
    neighbours; empty when the image is small enough for the single full-image pass."""
    if max(width, height) <= TILE_ABOVE * tile / TILE:
        return []

    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        n = math.ceil((length - tile) / (tile * (1 - overlap))) + 1
        return [round(i * (length - tile) / (n - 1)) for i in range(n)]

    return [
        (x, y, min(width, x + tile), min(height, y + tile)) for y in starts(height) for x in starts(width)
    ]


def _inside(a: Box, b: Box) -> float:
    """Fraction of a's area that lies inside b."""
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    return ix * iy / a.area if a.area > 0 else 1.0


def merge(detections: Sequence[Detection]) -> list[Detection]:
    """Greedy suppression by score: a box overlapping a kept one (IoU, or mostly inside it, or containing
    it mostly) is the same face seen twice."""
    kept: list[Detection] = []
    for d in sorted(detections, key=lambda d: -d.score):
        if not any(
            d.box.iou(k.box) > SAME_FACE_IOU
            or _inside(d.box, k.box) > SAME_FACE_INSIDE
            or _inside(k.box, d.box) > SAME_FACE_INSIDE
            for k in kept
        ):
            kept.append(d)
    return kept


def tile_faces(
    raw: np.ndarray, side: float, tile: tuple[int, int, int, int], width: int, height: int, floor: float
) -> list[Detection]:
    """One tile's YOLO output (22, 2100) -> faces in image-normalised boxes, without faces cut by an inner
    tile edge (the overlap puts those whole in a neighbouring tile, or the full pass finds them)."""
    x0, y0, x1, y1 = tile
    tw, th = x1 - x0, y1 - y0
    inner = (x0 > 0, y0 > 0, x1 < width, y1 < height)  # left, top, right, bottom edges inside the image
    found = []
    for region in decode_yolo(raw, side, tw, th, floor):
        b = region.box
        if region.kind not in FACE_CLASSES:
            continue
        near = (
            b.x0 < EDGE_TOLERANCE,
            b.y0 < EDGE_TOLERANCE,
            b.x1 > 1 - EDGE_TOLERANCE,
            b.y1 > 1 - EDGE_TOLERANCE,
        )
        if any(i and n for i, n in zip(inner, near, strict=True)):
            continue
        box = Box.from_pixels(x0 + b.x0 * tw, y0 + b.y0 * th, x0 + b.x1 * tw, y0 + b.y1 * th, width, height)
        found.append(Detection(box, region.score, "nudenet-tile"))
    return found


def emotion_crop(gray: np.ndarray, box: Box, margin: float = EMOTION_MARGIN) -> np.ndarray:
    """(H, W) uint8 image + face box -> (64, 64) uint8 square crop around the face, grown by `margin`;
    parts beyond the image border repeat the edge pixels."""
    height, width = gray.shape
    x0, y0, x1, y1 = box.x0 * width, box.y0 * height, box.x1 * width, box.y1 * height
    side = max(x1 - x0, y1 - y0, 1.0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    size = max(1, round(side))
    pad = max(0, -left, -top, left + size - width, top + size - height)
    padded = np.pad(gray, pad, mode="edge") if pad else gray
    crop = padded[top + pad : top + pad + size, left + pad : left + pad + size]
    interpolation = cv2.INTER_AREA if size > EMOTION_SIZE else cv2.INTER_LINEAR
    return cv2.resize(crop, (EMOTION_SIZE, EMOTION_SIZE), interpolation=interpolation)


def to_fer_input(crops: Sequence[np.ndarray]) -> np.ndarray:
    """(64, 64) uint8 crops -> (N, 64, 64, 1) float32 as (x / 255 - 0.5) * 2, the FER model's input."""
    if not crops:
        return np.zeros((0, EMOTION_SIZE, EMOTION_SIZE, 1), dtype=np.float32)
    batch = np.stack(crops).astype(np.float32)[..., None]
    return (batch / 255.0 - 0.5) * 2.0


class FacesAnalyzer(Analyzer[FacesBatch, FacesResult]):
    name = "faces"
    code_version = "faces-1"
    artifacts = ("nudenet-320n-onnx", "fer-emotion-tflite")
    input_size = MODEL_SIZE
    result_type = FacesResult
    depends_on = ("body_regions",)

    def decode_side(self) -> int:
        # Tiles need resolution: at 640 a 12 MP JPEG decodes to 1000x750 (DCT scaling 1/4) and NudeNet's
        # tiles reach ~24 px faces there (~1/30 of the height); at 320 the decoder's 1/8 copy leaves tiles
        # nothing to gain. Measured decode cost: 40 ms instead of 32 ms per 12 MP JPEG.
        return TILE if self.settings.faces_tiling else MODEL_SIZE

    _detector: InferenceSession
    _emotions: InferenceSession

    def _load(self) -> None:
        threads = self.settings.threads_per_worker
        self._detector = open_session(self.store.path("nudenet-320n-onnx"), threads)
        self._emotions = open_session(self.store.path("fer-emotion-tflite"), threads)

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> FacesBatch:
        """RGB images -> tiles for the second NudeNet pass, first-pass faces, gray copies to crop."""
        tiles: list[np.ndarray] = []
        sides: list[float] = []
        boxes: list[tuple[int, int, int, int, int]] = []
        first: list[list[Detection]] = []
        for i, (image, found) in enumerate(zip(images, upstream["body_regions"], strict=True)):
            assert isinstance(found, BodyRegionsResult)
            first.append(
                [Detection(r.box, r.score, "nudenet") for r in found.faces(self.settings.faces_min_score)]
            )
            grid = tile_grid(*image.size) if self.settings.faces_tiling else []
            for x0, y0, x1, y1 in grid:
                array, side = letterbox(image.crop((x0, y0, x1, y1)), MODEL_SIZE)
                tiles.append(array.transpose(2, 0, 1))
                sides.append(side)
                boxes.append((i, x0, y0, x1, y1))
        batch = np.stack(tiles) if tiles else np.zeros((0, 3, MODEL_SIZE, MODEL_SIZE), dtype=np.float32)
        grays = [np.asarray(im.convert("L")) for im in images]
        return FacesBatch(np.ascontiguousarray(batch), sides, boxes, first, grays)

    def _forward(self, batch: FacesBatch) -> tuple[list[list[Detection]], np.ndarray]:
        """Tiles -> NudeNet -> merged faces per image; face crops -> FER -> (F, 7) probabilities, F faces
        over all images in order."""
        found = [list(d) for d in batch.first_pass]
        if len(batch.tiles):
            raw = self._detector.run({"images": batch.tiles})[0]  # (K, 22, 2100)
            for k, (i, *tile) in enumerate(batch.tile_boxes):
                height, width = batch.grays[i].shape
                x0, y0, x1, y1 = tile
                found[i].extend(
                    tile_faces(
                        raw[k],
                        batch.tile_sides[k],
                        (x0, y0, x1, y1),
                        width,
                        height,
                        self.settings.faces_min_score,
                    )
                )
        faces = [merge(d) for d in found]
        crops = [emotion_crop(batch.grays[i], d.box) for i, ds in enumerate(faces) for d in ds]
        probs = self._emotions.run({"x": to_fer_input(crops)})[0] if crops else np.zeros((0, len(EMOTIONS)))
        return faces, probs

    def postprocess(
        self,
        outputs: tuple[list[list[Detection]], np.ndarray],
        images: Sequence[Image.Image],
        upstream: Upstream,
    ) -> list[FacesResult]:
        faces, probs = outputs
        results = []
        row = 0
        for detections in faces:
            out = []
            for d in detections:
                p = probs[row].astype(np.float64)
                p = p / p.sum()  # the quantized model's softmax sums to 1 only within ~1e-6
                row += 1
                emotions = {e: round(float(v), 6) for e, v in zip(EMOTIONS, p, strict=True)}
                out.append(
                    Face(
                        box=d.box,
                        confidence=round(d.score, 6),
                        detector=d.detector,
                        emotions=emotions,
                        dominant_emotion=max(EMOTIONS, key=lambda e: emotions[e]),
                    )
                )
            results.append(FacesResult.of(out))
        return results
