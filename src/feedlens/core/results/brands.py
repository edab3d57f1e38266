"""Results of brand detection: which registered brands an image mentions, and the evidence for each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

from feedlens.core.results.base import check_score, from_dict

EvidenceKind = Literal["logo", "text", "caption"]


@dataclass(frozen=True, slots=True)
class BrandEvidence:
    """One sighting: a logo (with its quadrilateral, normalised corner points, and RANSAC inliers), a word
    run in the image's text, or the caption / a hashtag. `matched` is what was read or found."""

    kind: EvidenceKind
    score: float
    matched: str = ""
    quad: tuple[tuple[float, float], ...] | None = None
    inliers: int | None = None

    def __post_init__(self) -> None:
        check_score(self.score, f"{self.kind} evidence")
        if self.quad is not None and len(self.quad) != 4:
            raise ValueError("a logo quadrilateral has 4 corners")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "score": self.score, "matched": self.matched}
        if self.quad is not None:
            out["quad"] = [list(p) for p in self.quad]
        if self.inliers is not None:
            out["inliers"] = self.inliers
        return out


@dataclass(frozen=True, slots=True)
class BrandMention:
    """A brand and all its evidence in one image; `score` is the strongest evidence's."""

    brand: str
    score: float
    evidence: tuple[BrandEvidence, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        check_score(self.score, f"brand {self.brand!r}")
        if not self.evidence:
            raise ValueError("a mention needs evidence")

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.kind for e in self.evidence))

    def to_dict(self) -> dict[str, Any]:
        return {
            "brand": self.brand,
            "score": self.score,
            "kinds": list(self.kinds),
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclass(frozen=True, slots=True)
class BrandsResult:
    """Mentions by descending score; `registry_version` says which brand registry state produced them."""

    SCHEMA: ClassVar[str] = "feedlens.brands/1"

    mentions: tuple[BrandMention, ...]
    registry_version: int = 0

    def __post_init__(self) -> None:
        scores = [m.score for m in self.mentions]
        if scores != sorted(scores, reverse=True):
            raise ValueError("mentions must be sorted by descending score")
        names = [m.brand for m in self.mentions]
        if len(set(names)) != len(names):
            raise ValueError("one mention per brand")

    @classmethod
    def empty(cls) -> Self:
        return cls(mentions=())

    @classmethod
    def of(cls, evidence: dict[str, list[BrandEvidence]], registry_version: int = 0) -> Self:
        """Group evidence by brand; each brand's evidence strongest first."""
        mentions = [
            BrandMention(brand, max(e.score for e in items), tuple(sorted(items, key=lambda e: -e.score)))
            for brand, items in evidence.items()
            if items
        ]
        return cls(tuple(sorted(mentions, key=lambda m: (-m.score, m.brand))), registry_version)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result from its `to_dict()` form (stored analyses)."""
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.SCHEMA,
            "registry_version": self.registry_version,
            "brands": [m.brand for m in self.mentions],
            "mentions": [m.to_dict() for m in self.mentions],
        }
