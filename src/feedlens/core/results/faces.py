"""Results of the `faces` analyzer: face boxes, per-face emotions, and an image-level emotion summary."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Self

from feedlens.core.results.base import check_score, from_dict
from feedlens.core.results.geometry import Box

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


@dataclass(frozen=True, slots=True)
class Face:
    """One face: normalised `box` (hairline to chin), detector `confidence`, which `detector` found it,
    the 7-emotion probability distribution and its arg-max."""

    box: Box
    confidence: float
    detector: str
    emotions: dict[str, float]
    dominant_emotion: str

    def __post_init__(self) -> None:
        check_score(self.confidence, "face")
        if not self.detector:
            raise ValueError("face detector must be named")
        if self.dominant_emotion != _check_distribution(self.emotions, "face emotions"):
            raise ValueError(f"dominant_emotion {self.dominant_emotion!r} is not the most probable emotion")


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

    SCHEMA: ClassVar[str] = "feedlens.faces/1"

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
        """The result from its `to_dict()` form (stored analyses)."""
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **asdict(self)}
