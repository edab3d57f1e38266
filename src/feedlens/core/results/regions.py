"""Results of the `body_regions` stage: NudeNet's detections, shared by `safety` and `faces`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Self

from feedlens.core.results.base import check_score, from_dict
from feedlens.core.results.geometry import Box

# NudeNet 3.x class order (the model's output channels 4..21).
NUDENET_CLASSES: tuple[str, ...] = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
FACE_CLASSES = frozenset({"FACE_FEMALE", "FACE_MALE"})


@dataclass(frozen=True, slots=True)
class Region:
    """One detected body region: NudeNet class name, confidence, normalised box."""

    kind: str
    score: float
    box: Box

    def __post_init__(self) -> None:
        if self.kind not in NUDENET_CLASSES:
            raise ValueError(f"unknown region kind {self.kind!r}")
        check_score(self.score, f"region {self.kind}")


@dataclass(frozen=True, slots=True)
class BodyRegionsResult:
    """All regions above the detector's floor threshold, by descending score."""

    SCHEMA: ClassVar[str] = "feedlens.body_regions/1"

    regions: tuple[Region, ...]

    @classmethod
    def empty(cls) -> Self:
        return cls(regions=())

    def faces(self, min_score: float = 0.0) -> tuple[Region, ...]:
        return tuple(r for r in self.regions if r.kind in FACE_CLASSES and r.score >= min_score)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result from its `to_dict()` form (stored analyses)."""
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **asdict(self)}
