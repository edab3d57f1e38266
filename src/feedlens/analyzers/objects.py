"""`objects`: COCO-80 object boxes (centernet, MB3-CenterNet converted from TF.js) named in everyday words,
each given a second look by the ImageNet classifier (EfficientNet-Lite0) on its crop, and a calibrated score.

The detector's graph has a fixed batch of one, so `_forward` runs it image by image; pre-processing stays
batched. The crop check (analyzers/objects_logic.py) then runs the classifier once per batch over every crop
worth a look: boxes the detector scored at least CHECK_FLOOR (and high enough to reach the reporting floor
with a favourable crop), at most `objects_max_crops` per image, none under 32 px. Each crop costs one
EfficientNet-Lite0 pass; docs/benchmarks.md ("Objects") gives the measured cost and what the check gains.

With FEEDLENS_OBJECTS_YOLO__MODEL set, a user's YOLO export (analyzers/yolo.py) replaces centernet: images
are letterboxed for it and run in batches (or one by one when its graph fixes the batch), its classes are
named through the vocabulary (objects_logic.detector_classes), the crop check runs as configured but only
reports (it never relabels), and each object's score is the model's own: the calibration was fitted on
centernet's scores and does not apply to another detector. `version` names the model by its SHA-256.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.analyzers.everyday import fingerprint
from feedlens.analyzers.labels import BACKBONE, CROP, INPUT_MEAN, INPUT_STD, RESIZE
from feedlens.analyzers.objects_logic import (
    CALIBRATION_FILE,
    CHECK_FLOOR,
    MODEL_SIZE,
    Candidate,
    CropJudge,
    DetectorClass,
    ObjectCalibration,
    Sighting,
    crop_region,
    decode,
    detector_classes,
    judged,
    to_model_input,
    to_objects,
)
from feedlens.analyzers.yolo import Fit, YoloBox, YoloDetector, yolo_detector
from feedlens.core.imageops import center_crop, resize_shorter_side, softmax, to_nchw
from feedlens.core.results.objects import ObjectsResult
from feedlens.core.vocabulary import Vocabulary
from feedlens.runtime.sessions import InferenceSession, open_session

DETECTOR = "centernet-onnx"
CROP_CHUNK = 32  # crops per classifier call: bounds memory on a batch full of busy scenes


@functools.cache
def calibration_digest() -> str:
    return hashlib.sha256(CALIBRATION_FILE.read_bytes()).hexdigest()[:10]


@dataclass(frozen=True, slots=True)
class ObjectsBatch:
    """Detector inputs and the images they came from (for crops): centernet's (N, 512, 512, 3) float32
    RGB 0..255, or a YOLO model's (N, 3, H, W) float32 RGB 0..1 with each image's letterbox `fits`."""

    inputs: np.ndarray
    images: tuple[Image.Image, ...]
    fits: tuple[Fit, ...] = ()


def crop_input(image: Image.Image, region: tuple[int, int, int, int]) -> np.ndarray:
    """A pixel region -> (3, 224, 224) classifier input, preprocessed exactly like the labels analyzer."""
    crop = resize_shorter_side(image.crop(region).convert("RGB"), RESIZE, Image.Resampling.BILINEAR)
    return np.asarray(to_nchw([center_crop(crop, CROP)], INPUT_MEAN, INPUT_STD)[0])


def to_candidates(boxes: Sequence[YoloBox], width: int, height: int) -> list[Candidate]:
    """A YOLO model's boxes in image pixels -> candidates with normalised, clipped boxes, best first;
    boxes with nothing left inside the image are dropped."""
    found = []
    for b in boxes:
        x0, x1 = (min(max(float(v) / width, 0.0), 1.0) for v in (b.x0, b.x1))
        y0, y1 = (min(max(float(v) / height, 0.0), 1.0) for v in (b.y0, b.y1))
        if x1 > x0 and y1 > y0:
            found.append(Candidate(b.cls, b.score, (x0, y0, x1, y1)))
    return sorted(found, key=lambda c: -c.score)


class ObjectsAnalyzer(Analyzer[ObjectsBatch, ObjectsResult]):
    name = "objects"
    code_version = "objects-1"
    artifacts = (DETECTOR, BACKBONE)
    input_size = MODEL_SIZE
    result_type = ObjectsResult

    _detector: InferenceSession
    _yolo: YoloDetector | None
    _classifier: InferenceSession | None
    _vocabulary: Vocabulary
    _judge: CropJudge
    calibration: ObjectCalibration
    # Overrides for the benchmark: the raw score a box needs to be looked at (None: CHECK_FLOOR or what
    # the calibration needs to reach the floor, whichever is higher) and the crops per image (None: setting).
    check_floor: float | None = None
    max_crops: int | None = None

    def _user_detector(self) -> YoloDetector | None:
        """The configured YOLO model (shared per process); None: the embedded centernet."""
        yolo = self.settings.objects_yolo
        return yolo_detector(yolo, self.settings.threads_per_worker) if yolo.enabled else None

    @property
    def version(self) -> str:
        # the vocabulary names the objects and the calibration scores them: either changes every result
        yolo = self._user_detector()
        if yolo is None:
            return f"{super().version}+vocabulary@{fingerprint()}+calibration@{calibration_digest()}"
        backbone = f"{BACKBONE}@{self.store.manifest.get(BACKBONE).version}"  # the crop check's
        return f"{self.code_version}+{yolo.version}+{backbone}+vocabulary@{fingerprint()}"

    @property
    def min_score(self) -> float:
        chosen = self.settings.objects_min_score
        if chosen is None and self.settings.objects_yolo.enabled:
            return self.settings.objects_yolo.min_score
        return float(self.calibration.min_score if chosen is None else chosen)

    def decode_side(self) -> int:
        """Centernet's 512, or a YOLO model's longer input side when larger (loads the model to know)."""
        yolo = self._user_detector()
        if yolo is None:
            return self.input_size
        yolo.load()
        return max(self.input_size, *yolo.size)

    def _load(self) -> None:
        threads = self.settings.threads_per_worker
        self._yolo = self._user_detector()
        self._vocabulary = Vocabulary.load()
        if self._yolo is None:
            self._detector = open_session(self.store.path(DETECTOR), threads)
            self._judge = CropJudge(self._vocabulary)
        else:
            self._yolo.load()  # a model that does not fit fails here, naming the setting
            classes: tuple[DetectorClass, ...] = detector_classes(self._yolo.names, self._vocabulary)
            self._judge = CropJudge(self._vocabulary, classes, f"yolo:{self._yolo.name}", relabel=False)
        self._classifier = (
            open_session(self.store.path(BACKBONE), threads) if self.settings.objects_crop_check else None
        )
        self.calibration = ObjectCalibration.load()

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> ObjectsBatch:
        """RGB images -> centernet's (N, 512, 512, 3) float32 in 0..255, aspect not kept (as it was
        trained), or the YOLO model's letterboxed (N, 3, H, W) in 0..1."""
        if self._yolo is not None:
            prepared = [self._yolo.prepare(im) for im in images]
            inputs = np.stack([p[0] for p in prepared])
            return ObjectsBatch(inputs, tuple(images), tuple(p[1] for p in prepared))
        return ObjectsBatch(np.stack([to_model_input(im) for im in images]), tuple(images))

    def _forward(self, batch: ObjectsBatch) -> list[Sighting]:
        """Detector (centernet image by image: its graph is fixed at batch 1), then the classifier on every
        crop worth a look in the batch at once."""
        if self._yolo is not None:
            boxes = self._yolo.detect(batch.inputs, batch.fits, self.min_score)
            found = [to_candidates(b, *im.size) for b, im in zip(boxes, batch.images, strict=True)]
            return self._look(batch.images, found)
        name = self._detector.input_names[0]
        found = []
        for row in range(len(batch.inputs)):
            outputs = self._detector.run({name: batch.inputs[row : row + 1]})
            detections = next(o for o in outputs if o.ndim == 3 and o.shape[-1] == 6)  # (1, 100, 6)
            found.append(decode(detections[0]))
        return self._look(batch.images, found)

    def _look(self, images: Sequence[Image.Image], found: list[list[Candidate]]) -> list[Sighting]:
        """Classify the crops of the candidates that could be reported: (1000,) probabilities each."""
        floor = self.check_floor
        if floor is None and self._yolo is not None:
            floor = self.min_score  # its own score is reported: a box under the floor never is
        elif floor is None:
            floor = max(CHECK_FLOOR, self.calibration.check_floor(self.min_score))
        budget = self.settings.objects_max_crops if self.max_crops is None else self.max_crops
        if self._classifier is None:
            budget = 0
        wanted: list[tuple[int, int]] = []  # (image, candidate) per crop
        inputs: list[np.ndarray] = []
        for i, (image, candidates) in enumerate(zip(images, found, strict=True)):
            looked = 0
            for k, candidate in enumerate(candidates):
                region = crop_region(candidate.box, *image.size)
                if candidate.score < floor or looked >= budget or region is None:
                    continue
                wanted.append((i, k))
                inputs.append(crop_input(image, region))
                looked += 1
        probabilities = self._classify(np.stack(inputs)) if inputs else np.zeros((0, 1000))
        crops: list[list[np.ndarray | None]] = [[None] * len(c) for c in found]
        for (i, k), p in zip(wanted, probabilities, strict=True):
            crops[i][k] = p
        return [Sighting(tuple(c), tuple(p)) for c, p in zip(found, crops, strict=True)]

    def _classify(self, inputs: np.ndarray) -> np.ndarray:
        """(K, 3, 224, 224) -> (K, 1000) softmax probabilities."""
        assert self._classifier is not None
        parts = []
        for start in range(0, len(inputs), CROP_CHUNK):
            logits = self._classifier.run({"input": inputs[start : start + CROP_CHUNK]})[0]
            parts.append(softmax(logits.astype(np.float64)))
        return np.concatenate(parts)

    def postprocess(
        self, outputs: list[Sighting], images: Sequence[Image.Image], upstream: Upstream
    ) -> list[ObjectsResult]:
        return [
            ObjectsResult(
                objects=to_objects(
                    judged(sighting, self._judge),
                    self._judge,
                    self.calibration if self._yolo is None else None,  # a user's model: its own score
                    self.min_score,
                    self.settings.objects_max,
                ),
                vocabulary=self._vocabulary.version,
            )
            for sighting in outputs
        ]

    def sightings(self, images: Sequence[Image.Image]) -> list[Sighting]:
        """Candidates and crop probabilities without judging or calibrating them (for the benchmark)."""
        self.load()
        return self._forward(self.preprocess(images, {}))
