"""Results of categorisation: an image's scores for a workspace's taxonomy categories."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from feedlens.core.results.base import check_score, from_dict
from feedlens.core.taxonomy import OTHER

SOURCES = ("labels", "signals", "visual", "text", "caption", "keywords")


@dataclass(frozen=True, slots=True)
class CategoryScore:
    """One category: calibrated probability `score`, whether it was `assigned` (score >= threshold), and
    `evidence`: each zero-shot source's contribution to the log-odds (positive = for, negative = against),
    so a user sees why (e.g. the caption said food). `trained` is the trained model's own probability
    when the workspace has one for this category, and `weight` its share in `score`."""

    name: str
    score: float
    assigned: bool
    evidence: dict[str, float] = field(default_factory=dict)
    zero_shot: float | None = None
    trained: float | None = None
    weight: float = 0.0
    threshold: float | None = None  # the score at which this category is assigned

    def __post_init__(self) -> None:
        check_score(self.score, f"category {self.name!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        fields = dict(data)
        if "trained_weight" in fields:  # to_dict's name for `weight`
            fields["weight"] = fields.pop("trained_weight")
        return from_dict(cls, fields)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "score": self.score, "assigned": self.assigned}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        if self.evidence:
            out["evidence"] = self.evidence
        if self.zero_shot is not None:
            out["zero_shot"] = self.zero_shot
        if self.trained is not None:
            out["trained"] = self.trained
            out["trained_weight"] = self.weight
        return out


@dataclass(frozen=True, slots=True)
class CategoriesResult:
    """Every category of the taxonomy by descending score; `assigned` lists those at or above their
    threshold, or just `other` when none is. Versions say which taxonomy and model produced it."""

    SCHEMA: ClassVar[str] = "feedlens.categories/1"

    taxonomy: str
    taxonomy_version: int
    model_version: int | None  # None: zero-shot only
    categories: tuple[CategoryScore, ...]
    assigned: tuple[str, ...]

    def __post_init__(self) -> None:
        scores = [c.score for c in self.categories]
        if scores != sorted(scores, reverse=True):
            raise ValueError("categories must be sorted by descending score")
        if not self.assigned:
            raise ValueError(f"an image is assigned at least `{OTHER}`")
        picked = {c.name for c in self.categories if c.assigned}
        if set(self.assigned) != (picked or {OTHER}):
            raise ValueError("`assigned` must list exactly the assigned categories, or `other`")

    @classmethod
    def of(
        cls,
        taxonomy: str,
        taxonomy_version: int,
        model_version: int | None,
        scores: list[CategoryScore],
    ) -> Self:
        ordered = tuple(sorted(scores, key=lambda c: -c.score))
        assigned = tuple(c.name for c in ordered if c.assigned) or (OTHER,)
        return cls(taxonomy, taxonomy_version, model_version, ordered, assigned)

    @property
    def version(self) -> str:
        """The stored analysis version: which taxonomy and model made it."""
        model = f"model-{self.model_version}" if self.model_version is not None else "zero-shot"
        return f"{self.taxonomy}@{self.taxonomy_version}/{model}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result from its `to_dict()` form (stored analyses)."""
        categories = tuple(CategoryScore.from_dict(c) for c in data.get("categories", ()))
        return from_dict(cls, {**data, "categories": categories})

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.SCHEMA,
            "taxonomy": self.taxonomy,
            "taxonomy_version": self.taxonomy_version,
            "model_version": self.model_version,
            "assigned": list(self.assigned),
            "categories": [c.to_dict() for c in self.categories],
        }
