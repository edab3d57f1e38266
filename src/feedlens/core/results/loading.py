"""Stored results back into their types: every analyzer's `to_dict()` form has a `from_dict()` twin, so a
renamed field fails in mypy and in tests, not in production."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from feedlens.core.results.base import AnalyzerResult, ResultSchemaError
from feedlens.core.results.brands import BrandsResult
from feedlens.core.results.categories import CategoriesResult
from feedlens.core.results.faces import FacesResult
from feedlens.core.results.labels import LabelsResult
from feedlens.core.results.objects import ObjectsResult
from feedlens.core.results.pose import PoseResult
from feedlens.core.results.properties import PropertiesResult
from feedlens.core.results.regions import BodyRegionsResult
from feedlens.core.results.safety import SafetyResult
from feedlens.core.results.text import TextResult

# Analyzer (or derived result) name -> its result type. `embedding` is absent: its vectors live in the
# embeddings table, and its stored form is only a summary.
RESULT_TYPES: Mapping[str, Any] = MappingProxyType(
    {
        "labels": LabelsResult,
        "body_regions": BodyRegionsResult,
        "safety": SafetyResult,
        "faces": FacesResult,
        "objects": ObjectsResult,
        "pose": PoseResult,
        "text": TextResult,
        "properties": PropertiesResult,
        "categories": CategoriesResult,
        "brands": BrandsResult,
    }
)


def load_result(name: str, data: Mapping[str, Any]) -> AnalyzerResult | None:
    """The typed result of analyzer `name` from its stored form; None when it has no typed form here
    (`embedding`) or was stored by another schema version (`feedlens reanalyze` brings it up to date)."""
    cls = RESULT_TYPES.get(name)
    if cls is None:
        return None
    try:
        result: AnalyzerResult = cls.from_dict(data)
    except ResultSchemaError:
        return None
    return result


def load_results(stored: Mapping[str, Mapping[str, Any]]) -> dict[str, AnalyzerResult]:
    """Every stored result that loads, by analyzer name."""
    loaded = {name: load_result(name, data) for name, data in stored.items()}
    return {name: result for name, result in loaded.items() if result is not None}
