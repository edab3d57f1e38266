"""Typed results every analyzer returns, and the per-image report that wraps them.

Each result type carries `SCHEMA` (name/version of its JSON form); bump the version whenever the
dictionary that `to_dict()` returns changes shape, so stored results can be told apart.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, Self


class AnalyzerResult(Protocol):
    SCHEMA: ClassVar[str]

    def to_dict(self) -> dict[str, Any]: ...


def _check_score(value: float, what: str) -> None:
    # Probabilities only: a NaN or an out-of-range score means a broken model or pre-processing.
    if not (math.isfinite(value) and -1e-6 <= value <= 1.0 + 1e-6):
        raise ValueError(f"{what} score must be in [0, 1], got {value!r}")


@dataclass(frozen=True, slots=True)
class Label:
    """One ImageNet-1k class: readable name, WordNet id (e.g. `n02123045`), softmax probability."""

    name: str
    wnid: str
    score: float

    def __post_init__(self) -> None:
        _check_score(self.score, f"label {self.name!r}")


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
        _check_score(self.score, f"concept {self.name!r}")


@dataclass(frozen=True, slots=True)
class LabelsResult:
    """Output of the `labels` analyzer: top-k classes and rolled-up concepts, both by score, descending."""

    SCHEMA: ClassVar[str] = "feedlens.labels/1"

    labels: tuple[Label, ...]
    concepts: tuple[Concept, ...]

    def __post_init__(self) -> None:
        for seq in (self.labels, self.concepts):
            scores = [item.score for item in seq]
            if scores != sorted(scores, reverse=True):
                raise ValueError("labels and concepts must be sorted by descending score")

    @classmethod
    def empty(cls) -> Self:
        return cls(labels=(), concepts=())

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **asdict(self)}

    def has_concept(self, name_or_wnid: str, min_score: float = 0.0) -> bool:
        return any(name_or_wnid in (c.name, c.wnid) and c.score >= min_score for c in self.concepts) or any(
            name_or_wnid in (lab.name, lab.wnid) and lab.score >= min_score for lab in self.labels
        )


@dataclass(slots=True)
class ImageReport:
    """What `feedlens analyze` emits per input: either `results` (by analyzer name) or `error`."""

    path: str
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    results: dict[str, AnalyzerResult] = field(default_factory=dict)
    error: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "format": self.format,
        }
        if self.error is not None:
            out["error"] = self.error
        else:
            out["results"] = {name: r.to_dict() for name, r in self.results.items()}
        return out
