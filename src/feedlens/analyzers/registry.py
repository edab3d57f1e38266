"""The explicit analyzer factory: names map to classes here, and an unknown name fails loudly.

Classes are named as `module:Class` and imported on first use, so listing the analyzers (CLI help, the
API schema) costs nothing and a command that runs only `labels` never imports OpenCV's OCR stack.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Sequence
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
        "objects": ("feedlens.analyzers.objects", "ObjectsAnalyzer"),
        "pose": ("feedlens.analyzers.pose", "PoseAnalyzer"),
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


def check_names(names: Sequence[str], enabled: Collection[str] | None = None) -> list[str]:
    """`names` if every one is known (no import happens) and, given `enabled`, switched on;
    UnknownAnalyzerError otherwise."""
    for name in names:
        if name not in _CLASSES:
            analyzer_type(name)  # raises with the list of known names
        if enabled is not None and name not in enabled and name not in INTERNAL_ANALYZERS:
            raise UnknownAnalyzerError(
                f"analyzer {name!r} is switched off here (FEEDLENS_ANALYZERS={','.join(enabled)})"
            )
    return list(names)


def enabled_analyzers(configured: Sequence[str] | None) -> tuple[str, ...]:
    """The analyzers switched on (FEEDLENS_ANALYZERS, default all), in registry order; each one's hard
    dependencies must be on too."""
    if configured is None:
        return DEFAULT_ANALYZERS
    check_names(configured)
    chosen = set(configured)
    for name in configured:
        off = [d for d in analyzer_type(name).depends_on if d not in chosen and d not in INTERNAL_ANALYZERS]
        if off:
            needs = ", ".join(off)
            raise UnknownAnalyzerError(f"analyzer {name!r} needs {needs}: add it to FEEDLENS_ANALYZERS")
    return tuple(n for n in DEFAULT_ANALYZERS if n in chosen)


def resolve(names: Sequence[str], available: Collection[str] = ()) -> list[str]:
    """`names` plus everything they depend on, ordered so that each comes after its dependencies.

    An analyzer's optional helpers (`uses`: the faces, objects and poses labels draw on) join when they
    are named too or are `available` (switched on and wanted by the caller); what it only `reads` (OCR text
    for embedding) runs first when named, and never joins otherwise.
    """
    ordered: list[str] = []
    wanted = set(names) | set(available)

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise UnknownAnalyzerError(f"analyzer dependency cycle: {' -> '.join((*path, name))}")
        if name in ordered:
            return
        cls = analyzer_type(name)
        for dependency in cls.depends_on:
            visit(dependency, (*path, name))
        for helper in cls.uses:
            if helper in wanted:
                visit(helper, (*path, name))
        for optional in cls.reads:
            if optional in names:  # only when asked for anyway: then it runs first
                visit(optional, (*path, name))
        ordered.append(name)

    for name in names:
        visit(name, ())
    return ordered
