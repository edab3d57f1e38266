"""Results of the `safety` analyzer: a levelled moderation taxonomy over NudeNet's body regions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self

from feedlens.core.results.base import check_score, from_dict
from feedlens.core.results.geometry import Box


class Verdict(StrEnum):
    SAFE = "safe"
    SUGGESTIVE = "suggestive"
    EXPLICIT = "explicit"


class Category(StrEnum):
    """Level-1 moderation categories, most severe first."""

    EXPLICIT_NUDITY = "explicit_nudity"
    SUGGESTIVE = "suggestive"


@dataclass(frozen=True, slots=True)
class SafetyRegion:
    """A region that counts for moderation: level-1 category, level-2 type, detector class, score, box,
    and `person`: the analyzers that put a person there ("objects", "pose", "faces"; analyzers/
    safety_evidence.py), empty when none did or none ran."""

    category: Category
    type: str
    detector_class: str
    score: float
    box: Box
    person: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_score(self.score, f"safety region {self.type}")


@dataclass(frozen=True, slots=True)
class SafetyResult:
    """`verdict` from the level-1 `scores` (max region score per category) and the configured thresholds.

    `person_checked`: faces, objects or poses were at hand to confirm a person at each region; then
    `regions` holds only the confirmed ones (they make the scores and the verdict) and `set_aside` the
    regions no source put a person at (a colour wheel's "exposed buttocks"), reported for review, never
    counted. Unchecked (none of those analyzers ran): every region counts, as the detector alone says.
    """

    SCHEMA: ClassVar[str] = "feedlens.safety/1"

    verdict: Verdict
    scores: dict[str, float]  # level-1 category -> 0..1
    regions: tuple[SafetyRegion, ...]
    set_aside: tuple[SafetyRegion, ...] = ()
    person_checked: bool = False

    def __post_init__(self) -> None:
        if set(self.scores) != {c.value for c in Category}:
            raise ValueError("safety scores must cover every level-1 category")
        for name, score in self.scores.items():
            check_score(score, name)

    @classmethod
    def empty(cls) -> Self:
        return cls(verdict=Verdict.SAFE, scores={c.value: 0.0 for c in Category}, regions=())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result from its `to_dict()` form (stored analyses)."""
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **asdict(self)}
