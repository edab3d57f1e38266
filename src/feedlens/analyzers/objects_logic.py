"""Pure logic of the `objects` analyzer (no model is touched here): centernet's input and output, class-wise
NMS, a detector's class names as everyday labels, crop boxes for the second look, the crop check's verdict
and the score calibration.

Crop check. Each reported box's crop is classified by EfficientNet-Lite0 and its 1000 ImageNet probabilities
are rolled up to everyday labels (`Vocabulary.imagenet_matrix`). `support` is what the crop gives the
detector's own label (a tabby counts for Cat); `rival` the best other COCO label that is neither above nor
below it. A confident rival related to the detector's label (they share an everyday parent: Cat and Dog are
both Pets) replaces it; an unrelated confident rival marks the box doubted; a crop that shows neither leaves
it unsure. Person is not checked (ImageNet has no class for it). The calibration (fitted by
benchmarks/objects_quality.py, data in data/objects/calibration.json) turns the detector score and this
evidence into the reported score.

A user's YOLO model (analyzers/yolo.py) has classes of its own: COCO names among them are named as for
centernet, others by the vocabulary, and a name it does not know is reported as is (`known` False). Its
crop check only reports (never relabels, `relabel=False`) and its score is its own: the calibration was
fitted on centernet's scores and says nothing about another detector's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from feedlens.core.results.geometry import Box
from feedlens.core.results.objects import CENTERNET, COCO_CLASSES, CropCheck, DetectedObject
from feedlens.core.vocabulary import Vocabulary, normalise

MODEL_SIZE = 512  # centernet's fixed input: the whole image resized to 512x512, aspect not kept
CANDIDATE_FLOOR = 0.1  # raw detector scores below this are never reported, whatever the crop says
CHECK_FLOOR = 0.15  # raw: boxes below it are not looked at (looking lower cost crops and gained nothing)
NMS_IOU = 0.45
SAME_OBJECT_IOU = 0.8  # boxes of different classes overlapping this much are one object seen twice
CROP_MARGIN = 0.1  # of the box's size on each side: the classifier sees a little context
MIN_CROP = 32  # px: crops smaller than this on either side are not checked (nothing to see at 224)
RELABEL_MIN = 0.6  # a related label the crop gives at least this replaces the detector's
DOUBT_MIN = 0.6  # the crop gives an unrelated COCO class at least this: doubted
AGREE_MIN = 0.2  # the crop gives the detector's label at least this: agreed
# Labels the crop check does not try to confirm: ImageNet has no class for a person as such, and crops of
# people roll up to their clothes and what they hold (on the fit part, crops of real people gave Person
# under 0.05 on average).
UNNAMED = frozenset({"person"})
COCO_NAMES = frozenset(normalise(name) for name in COCO_CLASSES)
CALIBRATION_FILE = Path(__file__).resolve().parents[1] / "data" / "objects" / "calibration.json"
EPS = 1e-4


def to_model_input(image: Image.Image) -> np.ndarray:
    """RGB image -> (512, 512, 3) float32 in 0..255, resized without keeping the aspect (as trained)."""
    resized = image.convert("RGB").resize((MODEL_SIZE, MODEL_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A detection after NMS: COCO class index, raw score, normalised (x0, y0, x1, y1)."""

    cls: int
    score: float
    box: tuple[float, float, float, float]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) and (M, 4) corner boxes -> (N, M) intersection over union."""
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: np.ndarray = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> list[int]:
    """Greedy NMS over (N, 4) corner boxes: indices kept, highest score first."""
    order = list(np.argsort(-scores, kind="stable"))
    overlaps = iou_matrix(boxes, boxes)
    kept: list[int] = []
    for i in order:
        if all(overlaps[i, k] <= iou for k in kept):
            kept.append(int(i))
    return kept


def decode(raw: np.ndarray, floor: float = CANDIDATE_FLOOR, iou: float = NMS_IOU) -> list[Candidate]:
    """One image's detections (100, 6) `x1, y1, x2, y2` (0..512 input px), score, class -> class-wise NMS'd
    candidates with normalised, clipped boxes, by descending score. Degenerate rows are dropped."""
    rows = np.asarray(raw, dtype=np.float64).reshape(-1, 6)
    rows = rows[np.isfinite(rows).all(axis=1)]
    boxes = np.clip(rows[:, :4] / MODEL_SIZE, 0.0, 1.0)
    classes = np.rint(rows[:, 5]).astype(int)
    keep = (
        (rows[:, 4] >= floor)
        & (rows[:, 4] <= 1.0)
        & (classes >= 0)
        & (classes < len(COCO_CLASSES))
        & (boxes[:, 2] > boxes[:, 0])
        & (boxes[:, 3] > boxes[:, 1])
    )
    boxes, scores, classes = boxes[keep], rows[keep, 4], classes[keep]
    found: list[Candidate] = []
    for cls in np.unique(classes):
        idx = np.flatnonzero(classes == cls)
        for k in nms(boxes[idx], scores[idx], iou):
            x0, y0, x1, y1 = (float(v) for v in boxes[idx[k]])
            found.append(Candidate(int(cls), float(scores[idx[k]]), (x0, y0, x1, y1)))
    return sorted(found, key=lambda c: -c.score)


def crop_region(
    box: tuple[float, float, float, float], width: int, height: int, margin: float = CROP_MARGIN
) -> tuple[int, int, int, int] | None:
    """Pixel crop (x0, y0, x1, y1) of a normalised box grown by `margin` per side, clipped to the image;
    None when it is under MIN_CROP px on a side (too small to check)."""
    x0, y0, x1, y1 = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    left, top = max(0, math.floor(x0 - dx)), max(0, math.floor(y0 - dy))
    right, bottom = min(width, math.ceil(x1 + dx)), min(height, math.ceil(y1 + dy))
    if right - left < MIN_CROP or bottom - top < MIN_CROP:
        return None
    return left, top, right, bottom


@dataclass(frozen=True, slots=True)
class DetectorClass:
    """One class of a detector: its own `name` and the everyday label id it is reported as (None: the
    vocabulary has no such label; it is reported under its own name)."""

    name: str
    label: str | None


def slug(name: str) -> str:
    """A class name as a label-id-like slug ("Hard hat" -> "hard_hat"; "" when nothing is left)."""
    return normalise(name).replace(" ", "_")


def title(name: str) -> str:
    """A class name for people: words capitalised, the rest kept ("hard_hat" -> "Hard Hat", "PPE" stays)."""
    return " ".join(w[:1].upper() + w[1:] for w in name.replace("_", " ").split())


def everyday_label(name: str, vocabulary: Vocabulary) -> str | None:
    """A detector's class name -> an everyday label id: a COCO-80 name as centernet's is named
    (coco.yaml: "potted plant" -> houseplant), else the label with that id, name or alias (plurals too);
    None when the vocabulary has none."""
    if normalise(name) in COCO_NAMES:
        return vocabulary.from_coco(name)[0]
    if slug(name) in vocabulary:
        return slug(name)
    found = vocabulary.find(name)
    return found[0] if found else None


def detector_classes(names: Sequence[str], vocabulary: Vocabulary) -> tuple[DetectorClass, ...]:
    """Each of a detector's class names (in its output order) with its everyday label."""
    return tuple(DetectorClass(name, everyday_label(name, vocabulary)) for name in names)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The crop check of one candidate: its (possibly new) class, the check, the crop's support for that
    class and its best unrelated rival (0 when not looked at), and a sentence for `evidence`."""

    cls: int
    check: CropCheck
    support: float = 0.0
    rival: float = 0.0
    evidence: str = ""


class CropJudge:
    """Reads a crop's ImageNet probabilities as everyday labels and judges the detector's class by them.

    `classes`: the detector's classes in output order (default centernet's COCO-80); `detector` names it
    in results; `relabel` False: a related confident rival only doubts the box (a user's model, whose
    classes the crop check was never fitted on). A class is judged by its first everyday label only
    (Tennis Racket by Racket: a tennis ball rolls up to Tennis, the racket's second label, and must not
    count for it); a class without a label cannot be checked."""

    def __init__(
        self,
        vocabulary: Vocabulary,
        classes: Sequence[DetectorClass] | None = None,
        detector: str = CENTERNET,
        relabel: bool = True,
    ) -> None:
        self.vocabulary = vocabulary
        self.classes = tuple(classes) if classes is not None else detector_classes(COCO_CLASSES, vocabulary)
        self.detector = detector
        self.relabel = relabel
        columns, membership = vocabulary.imagenet_matrix(vocabulary.imagenet_wnids)  # (1000, L)
        self.membership = membership.astype(np.float64)  # cast once, not per crop batch
        column = {label_id: j for j, label_id in enumerate(columns)}
        self._label = [c.label for c in self.classes]
        # the label's column; -1 when no ImageNet class reaches it (Giraffe, Ball), it is UNNAMED or none
        self._column = [
            column.get(label_id, -1) if label_id is not None and label_id not in UNNAMED else -1
            for label_id in self._label
        ]
        self._above = [frozenset(vocabulary.ancestors(i)) if i else frozenset() for i in self._label]
        self._kin = [
            frozenset({i, *vocabulary.ancestors(i), *vocabulary.descendants(i)}) if i else frozenset()
            for i in self._label
        ]

    def checkable(self, cls: int) -> bool:
        """Whether the classifier can name this class at all (it cannot name Giraffe or Person)."""
        return self._column[cls] >= 0

    def related(self, a: int, b: int) -> bool:
        """Two classes whose labels share an everyday parent (Cat and Dog: Pet; Car and Bus: Vehicle)."""
        return bool(self._above[a] & self._above[b])

    def label_id(self, cls: int) -> str | None:
        """The everyday label a class is reported as (its first: Tennis Racket -> Racket); None: none."""
        return self._label[cls]

    def name(self, cls: int) -> str:
        """What people read: the label's name, else the class's own name title-cased."""
        label_id = self._label[cls]
        return self.vocabulary.label(label_id).name if label_id else title(self.classes[cls].name)

    def rolled(self, probabilities: np.ndarray) -> np.ndarray:
        """(K, 1000) crop probabilities -> (K, L) everyday label scores (summed over each label's classes)."""
        out: np.ndarray = np.clip(np.asarray(probabilities, dtype=np.float64) @ self.membership, 0.0, 1.0)
        return out

    def support(self, cls: int, rolled: np.ndarray) -> float:
        return float(rolled[self._column[cls]]) if self.checkable(cls) else 0.0

    def best_rival(self, cls: int, rolled: np.ndarray) -> tuple[int, float]:
        """The checkable class, other than `cls` and its kin, the crop gives most, and that score."""
        best, score = -1, 0.0
        for other, j in enumerate(self._column):
            if j < 0 or other == cls or self._label[other] in self._kin[cls]:
                continue
            if rolled[j] > score:
                best, score = other, float(rolled[j])
        return best, score

    def judge(self, cls: int, rolled: np.ndarray) -> Verdict:
        """Verdict for a detection of `cls` whose crop rolls up to `rolled` (L,).

        A crop confidently showing something that is no COCO class (a cup of coffee reads as espresso) is
        not held against the box: on the fit part such boxes were right as often as unsure ones."""
        support = self.support(cls, rolled)
        rival, rival_score = self.best_rival(cls, rolled)
        if rival >= 0 and rival_score > support:
            evidence = f"crop looks like {self.name(rival)} ({rival_score:.2f}), not {self.name(cls)}"
            if self.relabel and rival_score >= RELABEL_MIN and self.related(cls, rival):
                return Verdict(rival, CropCheck.RELABELLED, rival_score, 0.0, evidence)
            if rival_score >= DOUBT_MIN:
                return Verdict(cls, CropCheck.DOUBTED, support, rival_score, evidence)
        if not self.checkable(cls):
            return Verdict(
                cls, CropCheck.UNCHECKED, 0.0, rival_score, f"crop check cannot name {self.name(cls)}"
            )
        if support >= AGREE_MIN:
            evidence = f"crop looks like {self.name(cls)} ({support:.2f})"
            return Verdict(cls, CropCheck.AGREED, support, rival_score, evidence)
        evidence = f"crop unclear ({self.name(cls)} {support:.2f})"
        return Verdict(cls, CropCheck.UNSURE, support, rival_score, evidence)


def features(score: float, verdict: Verdict) -> np.ndarray:
    """Calibration features (6,): logit(detector score); one-hot agreed, relabelled, doubted, unsure
    (unchecked is the reference); the crop's support for the (final) class when it looked."""
    logit = math.log(max(score, EPS) / max(1.0 - score, EPS))
    states = (CropCheck.AGREED, CropCheck.RELABELLED, CropCheck.DOUBTED, CropCheck.UNSURE)
    return np.array([logit, *(float(verdict.check is state) for state in states), verdict.support])


@dataclass(frozen=True, slots=True)
class ObjectCalibration:
    """p(right) = sigmoid(weights . features + bias); `min_score` is the fitted reporting floor."""

    weights: tuple[float, ...]
    bias: float
    min_score: float
    provenance: dict[str, Any]

    @classmethod
    def identity(cls) -> ObjectCalibration:
        """The detector's own score, unchanged (before any fit)."""
        return cls((1.0, 0.0, 0.0, 0.0, 0.0, 0.0), 0.0, 0.3, {})

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> ObjectCalibration:
        data = json.loads(path.read_text(encoding="utf-8"))
        weights = tuple(float(w) for w in data["weights"])
        if len(weights) != len(features(0.5, Verdict(0, CropCheck.UNCHECKED))):
            raise ValueError(f"{path}: {len(weights)} weights do not match the calibration features")
        return cls(weights, float(data["bias"]), float(data["min_score"]), dict(data.get("provenance", {})))

    def check_floor(self, min_score: float) -> float:
        """The lowest detector score that could still reach `min_score` under the most favourable crop
        verdict (support anywhere in 0..1): boxes below it are not worth a look."""
        w = self.weights
        lift = max(0.0, w[5])  # the support term at its best
        best = max(0.0, w[1] + lift, w[2] + lift, w[3] + lift, w[4] + lift)
        if w[0] <= 0:
            return 0.0
        target = math.log(max(min_score, EPS) / max(1.0 - min_score, EPS))
        z = (target - self.bias - best) / w[0]
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def score(self, x: np.ndarray) -> float:
        z = float(np.dot(self.weights, x)) + self.bias
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


@dataclass(frozen=True, slots=True)
class Sighting:
    """One image's detector candidates and, aligned with them, the crop's (1000,) ImageNet probabilities
    (None where the crop was not looked at: too small, under the check floor or over the budget)."""

    candidates: tuple[Candidate, ...]
    crops: tuple[np.ndarray | None, ...]


def judged(sighting: Sighting, judge: CropJudge) -> list[tuple[Candidate, Verdict]]:
    """Each candidate with its crop's verdict (unchecked where the crop was not looked at)."""
    out = []
    for candidate, crop in zip(sighting.candidates, sighting.crops, strict=True):
        if crop is None:
            verdict = Verdict(
                candidate.cls, CropCheck.UNCHECKED, evidence="crop not checked (small or over the limit)"
            )
        else:
            verdict = judge.judge(candidate.cls, judge.rolled(crop[None, :])[0])
        out.append((candidate, verdict))
    return out


def to_objects(
    pairs: Sequence[tuple[Candidate, Verdict]],
    judge: CropJudge,
    calibration: ObjectCalibration | None,
    min_score: float,
    max_objects: int,
    same_object_iou: float = SAME_OBJECT_IOU,
) -> tuple[DetectedObject, ...]:
    """Judged candidates (`judged`) -> objects: calibrated scores (`calibration` None: the detector's own),
    those at `min_score` or above, without duplicates (same class after relabelling at NMS_IOU, any
    classes at `same_object_iou`), best first."""
    scored: list[DetectedObject] = []
    for candidate, verdict in pairs:
        raw = candidate.score
        score = round(raw if calibration is None else calibration.score(features(raw, verdict)), 6)
        if score >= min_score:
            scored.append(detected(candidate, verdict, judge, score))
    scored.sort(key=lambda o: -o.score)
    kept: list[DetectedObject] = []
    for obj in scored:
        limit = [NMS_IOU if k.coco == obj.coco else same_object_iou for k in kept]
        if all(obj.box.iou(k.box) <= lim for k, lim in zip(kept, limit, strict=True)):
            kept.append(obj)
    return tuple(kept[:max_objects])


def detected(candidate: Candidate, verdict: Verdict, judge: CropJudge, score: float) -> DetectedObject:
    """One reported object: its class's everyday label, or (no such label) the class's own name."""
    vocabulary, label_id = judge.vocabulary, judge.label_id(verdict.cls)
    own = judge.classes[verdict.cls].name
    return DetectedObject(
        id=label_id or slug(own) or f"class_{verdict.cls}",
        name=judge.name(verdict.cls),
        coco=own,
        score=score,
        box=Box(*candidate.box),
        detector_score=round(candidate.score, 6),
        check=verdict.check,
        verified=verdict.check in (CropCheck.AGREED, CropCheck.RELABELLED),
        evidence=verdict.evidence,
        parents=vocabulary.ancestors(label_id) if label_id else (),
        detector=judge.detector,
        known=label_id is not None,
    )
