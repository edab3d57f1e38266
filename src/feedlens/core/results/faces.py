"""Results of the `faces` analyzer: face boxes, per-face emotions, landmarks, head angles, crop quality and
landmark-read attributes (smile, eyes open, mouth open), and an image-level emotion summary.

Everything past `dominant_emotion` is optional: None means "not measured" (results stored before
`feedlens.faces/2`, or a face whose landmarks could not be read), never a guess. Attributes no offline model
here can read (eyeglasses, sunglasses, age, beard, ...) have no field at all; nothing says who a person is
or their gender. Coordinates are normalised like every box; left / right are the person's own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Self

from feedlens.core.results.base import check_score, from_dict
from feedlens.core.results.geometry import Box

# The landmark names a face may carry (docs/analyzers.md "faces" lists each one's Face Mesh index). The
# pupils come from the iris model and are absent without it.
LANDMARK_NAMES: tuple[str, ...] = (
    "right_eye", "left_eye", "right_pupil", "left_pupil",
    "right_eye_outer", "right_eye_inner", "right_eye_top", "right_eye_bottom",
    "left_eye_inner", "left_eye_outer", "left_eye_top", "left_eye_bottom",
    "right_eyebrow_outer", "right_eyebrow_top", "right_eyebrow_inner",
    "left_eyebrow_inner", "left_eyebrow_top", "left_eyebrow_outer",
    "between_eyes", "nose_tip", "nose_bottom", "nose_right", "nose_left",
    "mouth_right", "mouth_left", "mouth_center", "upper_lip", "lower_lip",
    "forehead", "chin", "right_cheek", "left_cheek", "right_face_side", "left_face_side",
    "right_jaw", "left_jaw",
)  # fmt: skip

# The FER mini-Xception model's output order (FER2013 classes).
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class Sentiment(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


# Emotion -> sentiment group. Surprise has no fixed valence (a surprise party, a shock), so it is neutral
# rather than guessed; happy is the only positive FER2013 class.
SENTIMENT_OF: Mapping[str, Sentiment] = MappingProxyType(
    {
        "happy": Sentiment.POSITIVE,
        "surprise": Sentiment.NEUTRAL,
        "neutral": Sentiment.NEUTRAL,
        "angry": Sentiment.NEGATIVE,
        "disgust": Sentiment.NEGATIVE,
        "fear": Sentiment.NEGATIVE,
        "sad": Sentiment.NEGATIVE,
    }
)
_SUM_TOLERANCE = 1e-3  # rounding each of 7 probabilities to 6 decimals moves the sum by < 4e-6


def _check_distribution(emotions: Mapping[str, float], what: str) -> str:
    """Validate a 7-emotion distribution and return its dominant emotion."""
    if tuple(emotions) != EMOTIONS:
        raise ValueError(f"{what} must list exactly {EMOTIONS} in that order, got {tuple(emotions)}")
    for name, p in emotions.items():
        check_score(p, f"{what} {name}")
    total = sum(emotions.values())
    if not math.isclose(total, 1.0, abs_tol=_SUM_TOLERANCE):
        raise ValueError(f"{what} must sum to 1, got {total}")
    return max(EMOTIONS, key=lambda e: emotions[e])


def _check_unit(value: float, what: str) -> None:
    if not (math.isfinite(value) and -1e-6 <= value <= 1.0 + 1e-6):
        raise ValueError(f"{what} must be within [0, 1], got {value!r}")


@dataclass(frozen=True, slots=True)
class Point:
    """A landmark, normalised to the image (clipped to it: a point of a face cut by the border lies on
    the border)."""

    x: float
    y: float

    def __post_init__(self) -> None:
        _check_unit(self.x, "landmark x")
        _check_unit(self.y, "landmark y")


@dataclass(frozen=True, slots=True)
class HeadPose:
    """Head angles in degrees, read from the 3-D landmarks. `roll`: positive when the face is turned
    clockwise as displayed; `yaw`: positive when the face turns toward the image's right (the person's
    own left); `pitch`: positive when the face tilts up."""

    roll: float
    yaw: float
    pitch: float

    def __post_init__(self) -> None:
        for name in ("roll", "yaw", "pitch"):
            value = getattr(self, name)
            if not (math.isfinite(value) and -180.0 <= value <= 180.0):
                raise ValueError(f"{name} must be within [-180, 180] degrees, got {value!r}")


@dataclass(frozen=True, slots=True)
class FaceQuality:
    """How usable the face crop is, each 0..1: `brightness` (mean luma) and `sharpness` (fine detail
    relative to contrast, measured with the face scaled to 64 px: small or blurred faces score low)."""

    brightness: float
    sharpness: float

    def __post_init__(self) -> None:
        _check_unit(self.brightness, "brightness")
        _check_unit(self.sharpness, "sharpness")


@dataclass(frozen=True, slots=True)
class Attribute:
    """A yes/no reading of the face: `value`, and `confidence` that the value is right (0.5..1)."""

    value: bool
    confidence: float

    def __post_init__(self) -> None:
        check_score(self.confidence, "attribute")
        if self.confidence < 0.5 - 1e-6:
            raise ValueError(f"attribute confidence must be at least 0.5, got {self.confidence!r}")

    @classmethod
    def of(cls, probability: float) -> Self:
        """From P(yes): yes when at least 0.5, confident as far as it is from 0.5."""
        yes = probability >= 0.5
        return cls(value=yes, confidence=round(probability if yes else 1.0 - probability, 6))


@dataclass(frozen=True, slots=True)
class Face:
    """One face: normalised `box` (hairline to chin), detector `confidence` (each detector's own score),
    which `detector` found it, the 7-emotion probability distribution and its arg-max.

    Optional, None when not measured: `face_score` (Face Mesh's probability that the box holds a human
    face; faces below the threshold are not reported), `landmarks` (the `LANDMARK_NAMES` found),
    `head_pose`, `quality`, and the landmark-read `smile`, `eyes_open`, `mouth_open` (each absent when
    the face is turned too far to read it)."""

    box: Box
    confidence: float
    detector: str
    emotions: dict[str, float]
    dominant_emotion: str
    face_score: float | None = None
    landmarks: dict[str, Point] | None = None
    head_pose: HeadPose | None = None
    quality: FaceQuality | None = None
    smile: Attribute | None = None
    eyes_open: Attribute | None = None
    mouth_open: Attribute | None = None

    def __post_init__(self) -> None:
        check_score(self.confidence, "face")
        if not self.detector:
            raise ValueError("face detector must be named")
        if self.dominant_emotion != _check_distribution(self.emotions, "face emotions"):
            raise ValueError(f"dominant_emotion {self.dominant_emotion!r} is not the most probable emotion")
        if self.face_score is not None:
            check_score(self.face_score, "face_score")
        unknown = set(self.landmarks or ()) - set(LANDMARK_NAMES)
        if unknown:
            raise ValueError(f"unknown landmarks {sorted(unknown)}")


@dataclass(frozen=True, slots=True)
class EmotionSummary:
    """Image-level emotion: the mean distribution over the faces, its arg-max, and sentiment.

    Sentiment groups the mean distribution by `SENTIMENT_OF`: `sentiment` is the group with the most
    probability mass; `sentiment_score` = P(positive) - P(negative), in [-1, 1]. Both are linear in the
    per-face distributions, so later analytics can average `distribution` over many images and recompute.
    """

    distribution: dict[str, float]
    dominant: str
    sentiment: Sentiment
    sentiment_score: float

    def __post_init__(self) -> None:
        if self.dominant != _check_distribution(self.distribution, "emotion summary"):
            raise ValueError(f"dominant {self.dominant!r} is not the most probable emotion")
        if not (math.isfinite(self.sentiment_score) and -1.0 - 1e-6 <= self.sentiment_score <= 1.0 + 1e-6):
            raise ValueError(f"sentiment_score must be in [-1, 1], got {self.sentiment_score!r}")

    @classmethod
    def of(cls, distributions: Sequence[Mapping[str, float]]) -> Self:
        """Summarise one or more per-face distributions (each a mapping over `EMOTIONS`)."""
        if not distributions:
            raise ValueError("an emotion summary needs at least one face")
        mean = {e: sum(d[e] for d in distributions) / len(distributions) for e in EMOTIONS}
        mass = {s: sum(p for e, p in mean.items() if SENTIMENT_OF[e] is s) for s in Sentiment}
        # Ties (rare with real probabilities) go to neutral, the least committal group.
        order = (Sentiment.NEUTRAL, Sentiment.POSITIVE, Sentiment.NEGATIVE)
        sentiment = max(order, key=lambda s: mass[s])
        rounded = {e: round(p, 6) for e, p in mean.items()}
        return cls(
            distribution=rounded,
            dominant=max(EMOTIONS, key=lambda e: rounded[e]),
            sentiment=sentiment,
            sentiment_score=round(mass[Sentiment.POSITIVE] - mass[Sentiment.NEGATIVE], 6),
        )


@dataclass(frozen=True, slots=True)
class FacesResult:
    """Output of the `faces` analyzer: faces by descending confidence, their count, and the emotion
    summary over them (None when there is no face)."""

    SCHEMA: ClassVar[str] = "feedlens.faces/2"
    # Earlier schemas whose stored form still reads back: faces/1 is this one minus the optional fields.
    OLDER: ClassVar[tuple[str, ...]] = ("feedlens.faces/1",)

    faces: tuple[Face, ...]
    count: int
    emotion_summary: EmotionSummary | None

    def __post_init__(self) -> None:
        if self.count != len(self.faces):
            raise ValueError(f"count {self.count} does not match {len(self.faces)} faces")
        if (self.emotion_summary is None) != (self.count == 0):
            raise ValueError("emotion_summary must be present exactly when there are faces")
        scores = [f.confidence for f in self.faces]
        if scores != sorted(scores, reverse=True):
            raise ValueError("faces must be sorted by descending confidence")

    @classmethod
    def empty(cls) -> Self:
        return cls(faces=(), count=0, emotion_summary=None)

    @classmethod
    def of(cls, faces: Sequence[Face]) -> Self:
        """Sort `faces` by confidence and derive the count and the summary."""
        ordered = tuple(sorted(faces, key=lambda f: -f.confidence))
        summary = EmotionSummary.of([f.emotions for f in ordered]) if ordered else None
        return cls(faces=ordered, count=len(ordered), emotion_summary=summary)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result from its `to_dict()` form (stored analyses), also from `feedlens.faces/1`: that form
        is this one without the optional per-face fields, which then read None."""
        if data.get("schema") in cls.OLDER:
            data = {**data, "schema": cls.SCHEMA}
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **asdict(self)}
