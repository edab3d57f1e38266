"""Results of the `pose` analyzer: the people found, 17 body keypoints each, and activity cues.

Coordinates are normalised (0..1 of the upright image's width / height), like every box in feedlens.
Activity cues are rule-based readings of the keypoints (`feedlens.analyzers.pose_rules` says what each rule
looks at); a cue is absent, not zero, when the keypoints it needs were not visible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self

from feedlens.core.results.base import check_score, from_dict
from feedlens.core.results.geometry import Box

# MoveNet's (COCO's) keypoint order; left / right are the person's own.
KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)


class Activity(StrEnum):
    """What a person's body position says they are doing."""

    STANDING = "standing"
    SITTING = "sitting"
    LYING_DOWN = "lying_down"
    ARMS_RAISED = "arms_raised"
    RUNNING_JUMPING = "running_jumping"


def _check_unit(value: float, what: str) -> None:
    if not (math.isfinite(value) and -1e-6 <= value <= 1.0 + 1e-6):
        raise ValueError(f"{what} must be within [0, 1], got {value!r}")


@dataclass(frozen=True, slots=True)
class Keypoint:
    """One body point: `name` (one of `KEYPOINTS`), normalised `x`, `y`, and the model's `score`.

    A score of 0 marks a point the cleaning rules rejected as implausible (a knee above the shoulders of
    an upright person); low scores mean the point is probably hidden or outside the image.
    """

    name: str
    x: float
    y: float
    score: float

    def __post_init__(self) -> None:
        if self.name not in KEYPOINTS:
            raise ValueError(f"unknown keypoint {self.name!r}")
        _check_unit(self.x, f"keypoint {self.name} x")
        _check_unit(self.y, f"keypoint {self.name} y")
        check_score(self.score, f"keypoint {self.name}")


@dataclass(frozen=True, slots=True)
class PersonPose:
    """One person: normalised `box`, detection `score`, all 17 `keypoints` in `KEYPOINTS` order, and the
    `activities` whose keypoints were visible, each with a 0..1 score (0.5 and up: the cue holds)."""

    box: Box
    score: float
    keypoints: tuple[Keypoint, ...]
    activities: dict[str, float]

    def __post_init__(self) -> None:
        check_score(self.score, "person")
        names = tuple(k.name for k in self.keypoints)
        if names != KEYPOINTS:
            raise ValueError(f"keypoints must list exactly {KEYPOINTS} in that order, got {names}")
        known = set(Activity)
        for name, value in self.activities.items():
            if name not in known:
                raise ValueError(f"unknown activity {name!r}")
            check_score(value, f"activity {name}")

    def keypoint(self, name: str) -> Keypoint:
        return self.keypoints[KEYPOINTS.index(name)]

    def visible(self, min_score: float) -> tuple[Keypoint, ...]:
        """The keypoints scored at least `min_score`."""
        return tuple(k for k in self.keypoints if k.score >= min_score)

    def doing(self, threshold: float = 0.5) -> tuple[str, ...]:
        """The activities scored at least `threshold`, strongest first."""
        held = [(v, a) for a, v in self.activities.items() if v >= threshold]
        return tuple(a for _, a in sorted(held, reverse=True))


@dataclass(frozen=True, slots=True)
class PoseResult:
    """Output of the `pose` analyzer: people by descending score and their count.

    `to_dict()` adds `activities`, the strongest score of each cue over the people (derived, not stored).
    """

    SCHEMA: ClassVar[str] = "feedlens.pose/1"

    people: tuple[PersonPose, ...]
    count: int

    def __post_init__(self) -> None:
        if self.count != len(self.people):
            raise ValueError(f"count {self.count} does not match {len(self.people)} people")
        scores = [p.score for p in self.people]
        if scores != sorted(scores, reverse=True):
            raise ValueError("people must be sorted by descending score")

    @classmethod
    def empty(cls) -> Self:
        return cls(people=(), count=0)

    @classmethod
    def of(cls, people: Sequence[PersonPose]) -> Self:
        """Sort `people` by score and count them."""
        ordered = tuple(sorted(people, key=lambda p: -p.score))
        return cls(people=ordered, count=len(ordered))

    def activities(self) -> dict[str, float]:
        """Each cue's strongest score over the people, in `Activity` order; cues nobody showed are absent."""
        best: dict[str, float] = {}
        for activity in Activity:
            values = [p.activities[activity] for p in self.people if activity in p.activities]
            if values:
                best[activity.value] = max(values)
        return best

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result from its `to_dict()` form (stored analyses)."""
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **asdict(self), "activities": self.activities()}
