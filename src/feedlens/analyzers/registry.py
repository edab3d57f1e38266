"""The explicit analyzer factory: names map to classes here, and an unknown name fails loudly."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from feedlens.analyzers.base import Analyzer
from feedlens.analyzers.body_regions import BodyRegionsAnalyzer
from feedlens.analyzers.embedding import EmbeddingAnalyzer
from feedlens.analyzers.faces import FacesAnalyzer
from feedlens.analyzers.labels import LabelsAnalyzer
from feedlens.analyzers.properties import PropertiesAnalyzer
from feedlens.analyzers.safety import SafetyAnalyzer
from feedlens.analyzers.text import TextAnalyzer
from feedlens.config import Settings
from feedlens.core.errors import UnknownAnalyzerError
from feedlens.runtime.store import ModelStore

ANALYZER_TYPES: MappingProxyType[str, type[Analyzer[Any, Any]]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (
            LabelsAnalyzer,
            BodyRegionsAnalyzer,
            SafetyAnalyzer,
            FacesAnalyzer,
            PropertiesAnalyzer,
            TextAnalyzer,
            EmbeddingAnalyzer,
        )
    }
)
DEFAULT_ANALYZERS: tuple[str, ...] = tuple(name for name, cls in ANALYZER_TYPES.items() if not cls.internal)


def analyzer_type(name: str) -> type[Analyzer[Any, Any]]:
    try:
        return ANALYZER_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(ANALYZER_TYPES))
        raise UnknownAnalyzerError(f"unknown analyzer {name!r} (known: {known})") from None


def resolve(names: Sequence[str]) -> list[str]:
    """`names` plus everything they depend on, ordered so that each comes after its dependencies."""
    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise UnknownAnalyzerError(f"analyzer dependency cycle: {' -> '.join((*path, name))}")
        if name in ordered:
            return
        for dependency in analyzer_type(name).depends_on:
            visit(dependency, (*path, name))
        ordered.append(name)

    for name in names:
        visit(name, ())
    return ordered


def create_analyzers(names: Sequence[str], store: ModelStore, settings: Settings) -> list[Analyzer[Any, Any]]:
    """Instantiate the named analyzers and their dependencies, dependencies first. Models load lazily."""
    if not names:
        raise UnknownAnalyzerError("no analyzer selected")
    return [analyzer_type(n)(store, settings) for n in resolve(names)]
