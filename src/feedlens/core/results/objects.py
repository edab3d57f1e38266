"""Results of the `objects` analyzer: object boxes named in everyday words (COCO-80 from the embedded
centernet, or a user's YOLO model's own classes), each with what a second look at its crop (the ImageNet
classifier) said about it.

Schema 2 added `detector` and `known`; results stored as `feedlens.objects/1` (all from centernet, every
class in the vocabulary) read back with those defaults."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self

from feedlens.core.results.base import check_score, from_dict
from feedlens.core.results.geometry import Box

CENTERNET = "centernet"  # `detector` of the embedded model; a user's YOLO model is "yolo:<name>"
# The embedded detector's class order (centernet's output class index, docs/models.md).
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip


class CropCheck(StrEnum):
    """What the second look at an object's crop said."""

    AGREED = "agreed"  # the crop shows the detector's class (or a kind of it)
    RELABELLED = "relabelled"  # the crop confidently shows a related class instead (a "dog" that is a cat)
    DOUBTED = "doubted"  # the crop confidently shows something else: the score was lowered
    UNSURE = "unsure"  # looked, and the crop neither confirms nor contradicts
    UNCHECKED = "unchecked"  # not looked at: too small, over the per-image budget, or a class it cannot name


@dataclass(frozen=True, slots=True)
class DetectedObject:
    """One object: everyday label `id` and `name` (core/vocabulary.py) with its everyday `parents`
    (nearest first), the detector's own class name (`coco`, after any relabelling: a COCO-80 name for
    centernet, any name for a user's model), the `score` (centernet: calibrated, an object at 0.8 is right
    about 80% of the time on the labelled boxes, docs/benchmarks.md; a user's model: its own score), the
    detector's own `detector_score`, the normalised `box`, and the crop check: `check`, `verified` (the
    crop agreed or relabelled it) and `evidence` (a short sentence saying what the crop showed).

    `detector` names the model that found it ("centernet", or "yolo:<name>"). `known` is False when the
    detector's class is no label of the vocabulary: then `name` is the class name title-cased, `id` the
    class name as a slug, and there are no `parents`."""

    id: str
    name: str
    coco: str
    score: float
    box: Box
    detector_score: float
    check: CropCheck = CropCheck.UNCHECKED
    verified: bool = False
    evidence: str = ""
    parents: tuple[str, ...] = ()
    detector: str = CENTERNET
    known: bool = True

    def __post_init__(self) -> None:
        check_score(self.score, f"object {self.id!r}")
        check_score(self.detector_score, f"object {self.id!r} detector")
        if self.detector == CENTERNET and self.coco not in COCO_CLASSES:
            raise ValueError(f"unknown COCO class {self.coco!r}")
        if not self.id or not self.name or not self.coco.strip() or not self.detector:
            raise ValueError("an object needs a label id, a name, its detector and the detector's class")
        if not self.known and self.parents:
            raise ValueError(f"object {self.id!r} is not in the vocabulary, so it has no parents")
        if self.verified != (self.check in (CropCheck.AGREED, CropCheck.RELABELLED)):
            raise ValueError(f"verified={self.verified} contradicts check={self.check.value!r}")


@dataclass(frozen=True, slots=True)
class ObjectsResult:
    """Output of the `objects` analyzer: objects by descending score."""

    SCHEMA: ClassVar[str] = "feedlens.objects/2"
    # Earlier schemas whose stored form still reads back (the fields added since have defaults).
    OLDER: ClassVar[tuple[str, ...]] = ("feedlens.objects/1",)

    objects: tuple[DetectedObject, ...]
    vocabulary: str = ""  # version of the label vocabulary that named the objects

    def __post_init__(self) -> None:
        scores = [o.score for o in self.objects]
        if scores != sorted(scores, reverse=True):
            raise ValueError("objects must be sorted by descending score")

    @classmethod
    def empty(cls) -> Self:
        return cls(objects=())

    def count(self, label_id: str, min_score: float = 0.0) -> int:
        """Objects that are `label_id` or a kind of it (count("animal") counts cats and dogs)."""
        return sum(
            1 for o in self.objects if o.score >= min_score and (o.id == label_id or label_id in o.parents)
        )

    def counts(self, min_score: float = 0.0) -> dict[str, int]:
        """Label id -> number of objects with that label, most frequent first."""
        return dict(Counter(o.id for o in self.objects if o.score >= min_score).most_common())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result from its `to_dict()` form (stored analyses), also of the schemas in OLDER."""
        if data.get("schema") in cls.OLDER:
            data = {**data, "schema": cls.SCHEMA}
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.SCHEMA,
            "vocabulary": self.vocabulary,
            "objects": [{**asdict(o), "check": o.check.value} for o in self.objects],
        }
