"""The explicit analyzer factory: names map to classes here, and an unknown name fails loudly.

Classes are named as `module:Class` and imported on first use, so listing the analyzers (CLI help, the
API schema) costs nothing and a command that runs only `labels` never imports OpenCV's OCR stack.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from feedlens.core.errors import UnknownAnalyzerError

if TYPE_CHECKING:
    from feedlens.analyzers.base import Analyzer

# name -> (module, class), in the order the CLI and docs list them. `internal` stages are shared steps
# (run when something depends on them) and are not in DEFAULT_ANALYZERS.
_CLASSES: MappingProxyType[str, tuple[str, str]] = MappingProxyType(
    {
        "labels": ("feedlens.analyzers.labels", "LabelsAnalyzer"),
        "body_regions": ("feedlens.analyzers.body_regions", "BodyRegionsAnalyzer"),
        "safety": ("feedlens.analyzers.safety", "SafetyAnalyzer"),
        "faces": ("feedlens.analyzers.faces", "FacesAnalyzer"),
        "properties": ("feedlens.analyzers.properties", "PropertiesAnalyzer"),
        "text": ("feedlens.analyzers.text", "TextAnalyzer"),
        "embedding": ("feedlens.analyzers.embedding", "EmbeddingAnalyzer"),
    }
)
INTERNAL_ANALYZERS: frozenset[str] = frozenset({"body_regions"})
ANALYZER_NAMES: tuple[str, ...] = tuple(_CLASSES)
DEFAULT_ANALYZERS: tuple[str, ...] = tuple(n for n in _CLASSES if n not in INTERNAL_ANALYZERS)


def analyzer_type(name: str) -> type[Analyzer[Any, Any]]:
    try:
        module, cls = _CLASSES[name]
    except KeyError:
        known = ", ".join(sorted(_CLASSES))
        raise UnknownAnalyzerError(f"unknown analyzer {name!r} (known: {known})") from None
    found: type[Analyzer[Any, Any]] = getattr(importlib.import_module(module), cls)
    return found


def check_names(names: Sequence[str]) -> list[str]:
    """`names` if every one is known (no import happens); UnknownAnalyzerError otherwise."""
    for name in names:
        if name not in _CLASSES:
            analyzer_type(name)  # raises with the list of known names
    return list(names)


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
