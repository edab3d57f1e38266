"""Results of the `labels` analyzer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Self

from feedlens.core.results.base import check_score, from_dict


@dataclass(frozen=True, slots=True)
class Label:
    """One ImageNet-1k class: readable name, WordNet id (e.g. `n02123045`), softmax probability."""

    name: str
    wnid: str
    score: float

    def __post_init__(self) -> None:
        check_score(self.score, f"label {self.name!r}")


@dataclass(frozen=True, slots=True)
class Concept:
    """A broader WordNet concept above the predicted classes (tabby -> cat -> ... -> animal).

    `score` is the roll-up: the summed probability of every ImageNet class below this concept,
    so it is itself a probability. `depth` is the shortest distance from WordNet's root `entity`.
    """

    name: str
    wnid: str
    score: float
    depth: int

    def __post_init__(self) -> None:
        check_score(self.score, f"concept {self.name!r}")


@dataclass(frozen=True, slots=True)
class LabelsResult:
    """Output of the `labels` analyzer: top-k classes and rolled-up concepts, both by score, descending."""

    SCHEMA: ClassVar[str] = "feedlens.labels/1"

    labels: tuple[Label, ...]
    concepts: tuple[Concept, ...]
    # The backbone's pooled features (1280,) and the full class distribution (1000,), for analyzers that
    # build on labels (embeddings); never serialised.
    features: Any = field(default=None, compare=False, repr=False)
    probabilities: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for seq in (self.labels, self.concepts):
            scores = [item.score for item in seq]
            if scores != sorted(scores, reverse=True):
                raise ValueError("labels and concepts must be sorted by descending score")

    @classmethod
    def empty(cls) -> Self:
        return cls(labels=(), concepts=())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result from its `to_dict()` form (stored analyses)."""
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.SCHEMA,
            "labels": [asdict(label) for label in self.labels],
            "concepts": [asdict(concept) for concept in self.concepts],
        }

    def has_concept(self, name_or_wnid: str, min_score: float = 0.0) -> bool:
        return any(name_or_wnid in (c.name, c.wnid) and c.score >= min_score for c in self.concepts) or any(
            name_or_wnid in (lab.name, lab.wnid) and lab.score >= min_score for lab in self.labels
        )
