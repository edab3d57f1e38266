"""Which trained model drives a workspace's categories, and what `categories train` reports.

One model system: the model registry (services/training) trains, registers and promotes; its production
version is the workspace's category model. The category service sees it through `CategoryModels`, so the
categories package needs nothing of torch or the registry's tables. Older workspaces may still hold
models in the `category_models` table (trained before the routes were merged): they stay readable, and
the newest of them keeps categorising until a registry version is in production.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from feedlens.services.categories.categoriser import TrainedModel
from feedlens.storage.tables import CategoryModel

REGISTRY, LEGACY = "registry", "category_models"  # where a listed model lives


class CategoryModels(Protocol):
    """The registry as the category service uses it (services/training/categorising.py)."""

    def production(self, workspace: int) -> TrainedModel | None: ...

    def probabilities(
        self, workspace: int, model: TrainedModel, image_ids: Sequence[str]
    ) -> dict[str, np.ndarray]: ...

    def train(self, workspace: int, mode: str = "probe", created_by: str = "") -> dict[str, Any]: ...

    def versions(self, workspace: int) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class TrainReport:
    """What `categories train` answers: the registered version (now production) and its figures."""

    version: int
    taxonomy_version: int
    images: int
    positives: dict[str, int]
    skipped: list[str]  # categories without labelled images: zero-shot only
    recategorized: int
    mode: str = "probe"
    source: str = REGISTRY
    metrics: dict[str, Any] = field(default_factory=dict)  # the registry's: accuracy, macro-F1, evaluated_on
    warnings: list[str] = field(default_factory=list)


def report_of(
    model: dict[str, Any], names: Sequence[str], taxonomy_version: int, recategorized: int
) -> TrainReport:
    """The report of a registered version (`ModelRegistry.get`); `names`: the taxonomy's categories."""
    counts = (model.get("training") or {}).get("class_counts") or {}
    positives = {c: int((counts.get(c) or {}).get("total", 0)) for c in model["classes"]}
    return TrainReport(
        version=model["version"],
        taxonomy_version=taxonomy_version,
        images=sum(positives.values()),
        positives=positives,
        skipped=[n for n in names if n not in positives],
        recategorized=recategorized,
        mode=model["mode"],
        metrics=dict(model.get("metrics") or {}),
        warnings=list(model.get("warnings") or []),
    )


def registry_entry(model: dict[str, Any], production: TrainedModel | None) -> dict[str, Any]:
    """A registry version (`ModelRegistry.versions`) as `categories models` lists it."""
    return {
        "version": model["version"],
        "source": REGISTRY,
        "current": production is not None and model["version"] == production.version,
        "mode": model["mode"],
        "aliases": model["aliases"],
        "taxonomy_version": None,  # a registry model names its classes instead
        "classes": model["classes"],
        "params": model["params"],
        "metrics": model["metrics"],
        "created_at": model["created_at"],
    }


def legacy_entry(row: CategoryModel, current: bool) -> dict[str, Any]:
    """A model of the older `category_models` table as `categories models` lists it."""
    return {
        "version": row.version,
        "source": LEGACY,
        "current": current,
        "taxonomy_version": row.taxonomy_version,
        "params": row.params,
        "metrics": row.metrics,
        "created_at": row.created_at.isoformat(),
    }


def as_array(found: dict[str, np.ndarray], ids: Sequence[str], k: int) -> np.ndarray:
    """(N, K) probabilities in `ids` order; NaN rows where an image has none (it stays zero-shot)."""
    out = np.full((len(ids), k), np.nan)
    for i, image_id in enumerate(ids):
        vector = found.get(image_id)
        if vector is not None and len(vector) == k:
            out[i] = vector
    return out
