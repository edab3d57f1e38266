"""`body_regions`: NudeNet 320n (YOLOv8n) run once per image, shared by `safety` and `faces`.

Internal stage: it is run when an analyzer depends on it and is not reported unless asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.core.results import Box
from feedlens.core.results.regions import NUDENET_CLASSES, BodyRegionsResult, Region
from feedlens.runtime.sessions import InferenceSession, open_session

MODEL_SIZE = 320
SCORE_FLOOR = 0.2  # NudeNet's own floor; consumers apply their stricter thresholds
NMS_IOU = 0.45


def letterbox(image: Image.Image, size: int) -> tuple[np.ndarray, float]:
    """Shrink so the longer side is `size`, then pad right/bottom with black to size x size (NudeNet's
    training layout). Resizing before padding keeps memory at the model input's, whatever the shape: a
    16x50000 picture never becomes a 50000x50000 canvas.

    Returns (HWC float32 in 0..1, side of the padded square in the image's pixels).
    """
    side = max(image.size)
    scale = size / side
    fitted = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR
    )
    square = Image.new("RGB", (size, size))
    square.paste(fitted, (0, 0))
    return np.asarray(square, dtype=np.float32) / 255.0, float(side)


def decode_yolo(
    output: np.ndarray, side: float, width: int, height: int, floor: float = SCORE_FLOOR
) -> list[Region]:
    """One image's YOLOv8 output (4 + classes, anchors) -> class-aware NMS'd regions, normalised boxes."""
    rows = output.T  # (anchors, 4 + classes)
    scores = rows[:, 4:]
    classes = scores.argmax(axis=1)
    best = scores[np.arange(len(rows)), classes]
    keep = best >= floor
    if not keep.any():
        return []
    cx, cy, w, h = (rows[keep, k] * (side / MODEL_SIZE) for k in range(4))
    boxes = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
    kept = cv2.dnn.NMSBoxesBatched(
        boxes.tolist(), best[keep].tolist(), classes[keep].tolist(), floor, NMS_IOU
    )
    regions = []
    for k in np.asarray(kept, dtype=int).reshape(-1):
        x, y, bw, bh = boxes[k]
        regions.append(
            Region(
                kind=NUDENET_CLASSES[int(classes[keep][k])],
                score=round(float(best[keep][k]), 6),
                box=Box.from_pixels(x, y, x + bw, y + bh, width, height),
            )
        )
    return sorted(regions, key=lambda r: -r.score)


class BodyRegionsAnalyzer(Analyzer[tuple[np.ndarray, list[float]], BodyRegionsResult]):
    name = "body_regions"
    code_version = "body_regions-1"
    artifacts = ("nudenet-320n-onnx",)
    input_size = MODEL_SIZE
    result_type = BodyRegionsResult
    internal = True

    _session: InferenceSession

    def _load(self) -> None:
        path = self.store.path("nudenet-320n-onnx")
        self._session = open_session(path, self.settings.threads_per_worker)

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> tuple[np.ndarray, list[float]]:
        """RGB images -> ((N, 3, 320, 320) float32 in 0..1, padded square side per image)."""
        boxed = [letterbox(im, MODEL_SIZE) for im in images]
        batch = np.stack([b[0] for b in boxed]).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch), [b[1] for b in boxed]

    def _forward(self, batch: tuple[np.ndarray, list[float]]) -> tuple[np.ndarray, list[float]]:
        """-> ((N, 22, 2100) raw YOLO output, sides)."""
        return self._session.run({"images": batch[0]})[0], batch[1]

    def postprocess(
        self, outputs: tuple[np.ndarray, list[float]], images: Sequence[Image.Image], upstream: Upstream
    ) -> list[BodyRegionsResult]:
        raw, sides = outputs
        return [
            BodyRegionsResult(regions=tuple(decode_yolo(raw[i], sides[i], *im.size)))
            for i, im in enumerate(images)
        ]
