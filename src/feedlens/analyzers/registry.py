"""The explicit analyzer factory: names map to classes here, and an unknown name fails loudly."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from feedlens.analyzers.base import Analyzer
from feedlens.analyzers.labels import LabelsAnalyzer
from feedlens.config import Settings
from feedlens.core.errors import UnknownAnalyzerError
from feedlens.runtime.store import ModelStore

ANALYZER_TYPES: MappingProxyType[str, type[Analyzer[Any, Any]]] = MappingProxyType(
    {cls.name: cls for cls in (LabelsAnalyzer,)}
)
DEFAULT_ANALYZERS: tuple[str, ...] = tuple(name for name, cls in ANALYZER_TYPES.items() if not cls.internal)


def analyzer_type(name: str) -> type[Analyzer[Any, Any]]:
    try:
        return ANALYZER_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(ANALYZER_TYPES))
        raise UnknownAnalyzerError(f"unknown analyzer {name!r} (known: {known})") from None


def create_analyzers(names: Sequence[str], store: ModelStore, settings: Settings) -> list[Analyzer[Any, Any]]:
    """Instantiate analyzers by name, in the given order, without duplicates. Models load lazily."""
    unique = list(dict.fromkeys(names))
    if not unique:
        raise UnknownAnalyzerError("no analyzer selected")
    return [analyzer_type(n)(store, settings) for n in unique]
