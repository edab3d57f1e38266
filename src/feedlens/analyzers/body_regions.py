"""`body_regions`: NudeNet 320n (YOLOv8n) run once per image, shared by `safety` and `faces`.

Internal stage: it is run when an analyzer depends on it and is not reported unless asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from feedlens.analyzers import yolo
from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.core.results import Box
from feedlens.core.results.regions import NUDENET_CLASSES, BodyRegionsResult, Region
from feedlens.runtime.sessions import InferenceSession, open_session

MODEL_SIZE = 320
SCORE_FLOOR = 0.2  # NudeNet's own floor; consumers apply their stricter thresholds
NMS_IOU = 0.45


def letterbox(image: Image.Image, size: int) -> tuple[np.ndarray, float]:
    """Shrink so the longer side is `size`, then pad right/bottom with black to size x size (NudeNet's
    training layout; analyzers/yolo.py resizes before padding, so memory stays at the model input's).

    Returns (HWC float32 in 0..1, side of the padded square in the image's pixels).
    """
    array, _ = yolo.letterbox(image, size, size)
    return array, float(max(image.size))


def decode_yolo(
    output: np.ndarray, side: float, width: int, height: int, floor: float = SCORE_FLOOR
) -> list[Region]:
    """One image's YOLOv8 output (4 + classes, anchors) -> class-aware NMS'd regions, normalised boxes."""
    scale = side / MODEL_SIZE
    rows = yolo.as_rows(output, 4 + len(NUDENET_CLASSES))
    regions = [
        Region(
            kind=NUDENET_CLASSES[found.cls],
            score=round(found.score, 6),
            box=Box.from_pixels(found.x0, found.y0, found.x1, found.y1, width, height),
        )
        for found in yolo.decode(rows, floor, NMS_IOU, (scale, scale))
    ]
    return sorted(regions, key=lambda r: -r.score)


class BodyRegionsAnalyzer(Analyzer[tuple[np.ndarray, list[float]], BodyRegionsResult]):
    name = "body_regions"
    code_version = "body_regions-1"
    artifacts = ("nudenet-320n-onnx",)
    batch_artifact = "nudenet-320n-onnx"
    batch_sample = (3, MODEL_SIZE, MODEL_SIZE)
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
