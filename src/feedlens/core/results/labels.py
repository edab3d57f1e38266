"""Results of the `labels` analyzer: everyday labels (what users see), the classifier's raw classes (detail)
and WordNet roll-up scores by id (what taxonomies' `concepts` match; never shown as words)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Self

from feedlens.core.results.base import check_score, from_dict


@dataclass(frozen=True, slots=True)
class Label:
    """One everyday label (core/vocabulary.py): stable `id`, display `name`, calibrated `score` (a label at
    0.8 is right about 80% of the time on the labelled sets, docs/analyzers.md), its everyday `parents`
    (vocabulary ids, nearest first), a Rekognition-style `category`, which analyzers found it (`sources`:
    classifier, faces, objects, pose) and, for countable things found one by one, `count`."""

    id: str
    name: str
    score: float
    parents: tuple[str, ...] = ()
    category: str = ""
    sources: tuple[str, ...] = ()
    count: int | None = None

    def __post_init__(self) -> None:
        check_score(self.score, f"label {self.id!r}")


@dataclass(frozen=True, slots=True)
class ImageNetClass:
    """One of the classifier's 1000 ImageNet classes: its ImageNet name, WordNet id and probability.
    A detail for the curious and for debugging; users see `labels`."""

    name: str
    wnid: str
    score: float

    def __post_init__(self) -> None:
        check_score(self.score, f"class {self.name!r}")


@dataclass(frozen=True, slots=True)
class LabelsResult:
    """Output of the `labels` analyzer.

    `labels` are in display order: the most specific confident label first and its parents after it (never
    ahead of it), then other confident labels the same way, then labels under the confidence line by score.
    `classes` are the classifier's top ImageNet classes by probability; `wordnet` maps WordNet ids (classes
    and the concepts above them) to rolled-up probabilities, the machinery taxonomies match on.
    """

    SCHEMA: ClassVar[str] = "feedlens.labels/2"

    labels: tuple[Label, ...]
    classes: tuple[ImageNetClass, ...] = ()
    wordnet: dict[str, float] = field(default_factory=dict)
    vocabulary: str = ""  # version of the label vocabulary that named `labels`
    # The backbone's pooled features (D,) and the full class distribution (1000,), for analyzers that
    # build on labels (embeddings); never serialised.
    features: Any = field(default=None, compare=False, repr=False)
    probabilities: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        ids = [label.id for label in self.labels]
        if len(set(ids)) != len(ids):
            raise ValueError("each label appears once")
        scores = [c.score for c in self.classes]
        if scores != sorted(scores, reverse=True):
            raise ValueError("classes must be sorted by descending score")
        for wnid, score in self.wordnet.items():
            check_score(score, f"WordNet {wnid}")

    @classmethod
    def empty(cls) -> Self:
        return cls(labels=())

    @property
    def headline(self) -> Label | None:
        """The label that leads (the most specific confident one), if any."""
        return self.labels[0] if self.labels else None

    def label(self, label_id: str) -> Label | None:
        return next((label for label in self.labels if label.id == label_id), None)

    def names(self, n: int | None = None, min_score: float = 0.0) -> list[str]:
        """Display names in display order: the first `n`, at least `min_score`."""
        shown = [label.name for label in self.labels if label.score >= min_score]
        return shown[:n] if n is not None else shown

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result from its `to_dict()` form (stored analyses)."""
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.SCHEMA,
            "vocabulary": self.vocabulary,
            "labels": [
                {**asdict(label), "parents": list(label.parents), "sources": list(label.sources)}
                for label in self.labels
            ],
            "classes": [asdict(c) for c in self.classes],
            "wordnet": dict(self.wordnet),
        }
