"""`pose`: people, their 17 body keypoints and what they are doing, from MoveNet MultiPose (up to 6 people).

Pre-processing keeps the aspect ratio: the longer side is scaled to `pose_side` (256 by default, chosen by
measurement, see docs/benchmarks.md "pose") and each side padded with black up to a multiple of 32, which
the model needs. Coordinates come back in 0..1 of the padded input and are mapped onto the image. People
scored under `pose_min_score` are dropped; keypoints are cleaned and read by `pose_rules`.

The converted graph fixes the batch dimension at 1 (its post-processing reshapes to batch 1: a batch of 2
fails inside the graph), so `_forward` runs the images of a batch one after another; each may have its own
padded size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.analyzers.pose_rules import activity_cues, clean
from feedlens.config import Settings
from feedlens.core.results import Box
from feedlens.core.results.pose import KEYPOINTS, Keypoint, PersonPose, PoseResult
from feedlens.runtime.sessions import InferenceSession, open_session
from feedlens.runtime.store import ModelStore

MODEL = "movenet-multipose-onnx"
STRIDE = 32  # the model's input sides must be multiples of this
DEFAULT_SIDE = 256  # longer side fed to the model: MoveNet's own size won on the corpus (docs/benchmarks.md)
BOX_COLUMNS = slice(51, 55)  # ymin, xmin, ymax, xmax
SCORE_COLUMN = 55


@dataclass(frozen=True, slots=True)
class ModelInput:
    """One image ready for the model: `pixels` int32 (1, H, W, 3) RGB 0..255, the image resized into its
    top-left `width` x `height` corner (H, W multiples of 32), black elsewhere."""

    pixels: np.ndarray
    width: int
    height: int


def fit(image: Image.Image, side: int) -> ModelInput:
    """Scale the longer side to `side` (aspect kept, at least 1 px a side) and pad to multiples of 32."""
    w, h = image.size
    scale = side / max(w, h)
    width, height = max(1, round(w * scale)), max(1, round(h * scale))
    resized = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    padded = np.zeros((1, -(-height // STRIDE) * STRIDE, -(-width // STRIDE) * STRIDE, 3), dtype=np.int32)
    padded[0, :height, :width] = np.asarray(resized)
    return ModelInput(padded, width, height)


def decode_person(
    row: np.ndarray, model_input: ModelInput, width: int, height: int, keypoint_floor: float
) -> PersonPose:
    """One output row (56,) -> a person on a `width` x `height` image.

    Model coordinates are fractions of the padded input; `gain` maps them to fractions of the image.
    """
    _, padded_h, padded_w, _ = model_input.pixels.shape
    gain_x, gain_y = padded_w / model_input.width, padded_h / model_input.height
    raw = row[:51].reshape(17, 3)  # y, x, score
    points = np.stack([raw[:, 1] * gain_x * width, raw[:, 0] * gain_y * height, raw[:, 2]], axis=1)
    points = clean(points, keypoint_floor)  # pixels: isotropic, so the rules' angles are real
    keypoints = tuple(
        Keypoint(
            name=name,
            x=round(float(np.clip(x / width, 0.0, 1.0)), 5),
            y=round(float(np.clip(y / height, 0.0, 1.0)), 5),
            score=round(float(np.clip(s, 0.0, 1.0)), 4),
        )
        for name, (x, y, s) in zip(KEYPOINTS, points, strict=True)
    )
    ys, xs = row[BOX_COLUMNS][0::2] * gain_y * height, row[BOX_COLUMNS][1::2] * gain_x * width
    box = Box.from_pixels(xs.min(), ys.min(), xs.max(), ys.max(), width, height)  # sorted: never inverted
    return PersonPose(
        box=box,
        score=round(float(np.clip(row[SCORE_COLUMN], 0.0, 1.0)), 4),
        keypoints=keypoints,
        activities=activity_cues(points, keypoint_floor),
    )


class PoseAnalyzer(Analyzer[list[ModelInput], PoseResult]):
    name = "pose"
    code_version = "pose-1"
    artifacts = (MODEL,)
    input_size = DEFAULT_SIDE  # the longer side fed to the model; the decoder's shorter side covers it
    result_type = PoseResult

    _session: InferenceSession

    def __init__(self, store: ModelStore, settings: Settings) -> None:
        super().__init__(store, settings)
        # plain attributes, so an evaluation can sweep them on one instance
        self.side: int = max(STRIDE, settings.pose_side)
        self.min_score: float = settings.pose_min_score
        self.keypoint_min_score: float = settings.pose_keypoint_min_score

    def decode_side(self) -> int:
        return max(self.input_size, self.side)

    def _load(self) -> None:
        self._session = open_session(self.store.path(MODEL), self.settings.threads_per_worker)

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> list[ModelInput]:
        """RGB images -> one `ModelInput` each (int32 (1, H, W, 3), H and W multiples of 32)."""
        return [fit(image, self.side) for image in images]

    def _forward(self, batch: list[ModelInput]) -> list[tuple[np.ndarray, ModelInput]]:
        """-> per image (6, 56): 6 people x (17 x (y, x, score), ymin, xmin, ymax, xmax, score), and its input
        (whose padding maps coordinates back)."""
        return [(self._session.run({"input": item.pixels})[0][0], item) for item in batch]

    def postprocess(
        self, outputs: list[tuple[np.ndarray, ModelInput]], images: Sequence[Image.Image], upstream: Upstream
    ) -> list[PoseResult]:
        results = []
        for (raw, model_input), image in zip(outputs, images, strict=True):
            people = [
                decode_person(row, model_input, *image.size, self.keypoint_min_score)
                for row in raw
                if row[SCORE_COLUMN] >= self.min_score
            ]
            results.append(PoseResult.of(people))
        return results
