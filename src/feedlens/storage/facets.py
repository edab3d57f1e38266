"""Turn stored analyzer results into narrow (kind, value, score) rows that filters can use an index for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

FacetRow = tuple[str, str, float | None]


def _labels(result: dict[str, Any]) -> Iterator[FacetRow]:
    """Everyday labels by vocabulary id (parents included: `label=animal` finds cats), the leading one as
    `headline` (what an image is mostly about, for trends), and the classifier's raw classes by name."""
    labels = result.get("labels", [])
    for label in labels:
        yield "label", str(label["id"]), float(label["score"])
    if labels:
        yield "headline", str(labels[0]["id"]), float(labels[0]["score"])
    for item in result.get("classes", []):
        yield "class", str(item["name"]).lower(), float(item["score"])


def _safety(result: dict[str, Any]) -> Iterator[FacetRow]:
    scores = result.get("scores", {})
    yield "safety", str(result["verdict"]), max(scores.values(), default=None)


def _faces(result: dict[str, Any]) -> Iterator[FacetRow]:
    yield "face_count", str(int(result.get("count", 0))), float(result.get("count", 0))
    summary = result.get("emotion_summary") or {}
    if summary.get("dominant"):
        yield "emotion", str(summary["dominant"]), None
    if summary.get("sentiment"):
        yield "sentiment", str(summary["sentiment"]), summary.get("sentiment_score")


def _properties(result: dict[str, Any]) -> Iterator[FacetRow]:
    for name in dict.fromkeys(c["name"] for c in result.get("colours", [])):
        yield "colour", str(name), None
    if "orientation" in result:
        yield "orientation", str(result["orientation"]), None
    if "blurry" in result:
        yield "blurry", "true" if result["blurry"] else "false", None


def _text(result: dict[str, Any]) -> Iterator[FacetRow]:
    yield "has_text", "true" if result.get("full_text") else "false", None
    for tag in result.get("hashtags", []):
        yield "text_hashtag", str(tag).lower().lstrip("#"), None


def _categories(result: dict[str, Any]) -> Iterator[FacetRow]:
    scores = {c["name"]: c["score"] for c in result.get("categories", [])}
    for name in result.get("assigned", []):
        yield "category", str(name).lower(), scores.get(name)


def _brands(result: dict[str, Any]) -> Iterator[FacetRow]:
    for mention in result.get("mentions", []):
        yield "brand", str(mention["brand"]).lower(), float(mention["score"])
        for kind in mention.get("kinds", []):
            yield "brand_evidence", f"{str(mention['brand']).lower()}:{kind}", None


_EXTRACTORS = {
    "labels": _labels,
    "safety": _safety,
    "faces": _faces,
    "properties": _properties,
    "text": _text,
    "categories": _categories,
    "brands": _brands,
}


def facets_for(analyzer: str, result: dict[str, Any]) -> list[FacetRow]:
    """Facets of one analyzer's result dictionary; analyzers without filters give none."""
    extractor = _EXTRACTORS.get(analyzer)
    return [(k, v[:256], s) for k, v, s in extractor(result)] if extractor else []
