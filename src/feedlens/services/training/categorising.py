"""The model registry as the workspace's category model: its production version drives categorisation
(blended with zero-shot, services/categories/categoriser.py), and `categories train` trains through the
same recipe and registers a version like `feedlens train` does.

A registry model reads pixels, not stored features, so its probabilities (K,) per image are computed once
per model version from the stored copy and kept as an `embeddings` row (kind `trained`, model
`registry:<id>`): recategorising is then arithmetic again, and a new production model recomputes them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from feedlens.core.errors import FeedlensError
from feedlens.core.training import WORKSPACE
from feedlens.services.categories.categoriser import TrainedModel
from feedlens.services.categories.service import CategoryError
from feedlens.services.training.registry import RegistryError
from feedlens.services.training.serving import DECODE_SIDE
from feedlens.storage import embeddings as vectors
from feedlens.storage import repositories as repo
from feedlens.training.crossval import finetune_shortfall
from feedlens.training.recipe import TrainOptions

if TYPE_CHECKING:
    from PIL import Image

    from feedlens.services.training.service import TrainingService

log = logging.getLogger(__name__)
TASK = "categories"
KIND = "trained"  # embeddings kind of a registry model's probabilities
BATCH = 32  # images decoded and scored at once


def tag(model_id: int) -> str:
    return f"registry:{model_id}"


class RegistryCategoryModels:
    """What CategoryService asks of the registry (services/categories/service.CategoryModels)."""

    def __init__(self, training: TrainingService) -> None:
        self.training = training

    def production(self, workspace: int) -> TrainedModel | None:
        """The production version as a TrainedModel, None when nothing is promoted."""
        registry = self.training.registry
        production_id = registry.deployment(workspace, TASK).production_id
        row = registry.rows(workspace, TASK, [production_id]).get(production_id) if production_id else None
        if row is None:
            return None
        counts = row.training.get("class_counts") or {}
        positives = tuple(int((counts.get(c) or {}).get("train", 0)) for c in row.classes)
        return TrainedModel(row.version, None, tuple(row.classes), positives, row.id)

    def versions(self, workspace: int) -> list[dict[str, Any]]:
        return self.training.registry.versions(workspace, TASK)

    def probabilities(
        self, workspace: int, model: TrainedModel, image_ids: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """(K,) probabilities of each image, stored ones first; images that cannot be decoded are left out."""
        assert model.model_id is not None
        database = self.training.database
        with database.session() as session:
            found = vectors.get(session, image_ids, KIND, tag(model.model_id))
        need = [i for i in dict.fromkeys(image_ids) if i not in found]
        if not need:
            return found
        row = self.training.registry.rows(workspace, TASK, [model.model_id]).get(model.model_id)
        if row is None:  # deleted in the meantime: zero-shot until the next batch reads the new production
            return found
        classifier = self.training.server.classifier(row)
        for start in range(0, len(need), BATCH):
            images = self._decoded(workspace, need[start : start + BATCH])
            if not images:
                continue
            proba = classifier.predict_proba(list(images.values()))
            with database.session() as session:
                for image_id, p in zip(images, proba, strict=True):
                    vector = np.asarray(p, dtype=np.float32)
                    vectors.put(session, image_id, KIND, tag(model.model_id), vector)
                    found[image_id] = vector
        return found

    def _decoded(self, workspace: int, image_ids: Sequence[str]) -> dict[str, Image.Image]:
        training = self.training
        with training.database.session() as session:
            blobs = {img.id: img.blob for img in repo.get_images(session, workspace, image_ids)}
        out = {}
        for image_id in image_ids:
            if image_id not in blobs:
                continue
            try:
                path = training.blobs.path("originals", blobs[image_id])
                out[image_id] = training.decoder.decode(path, min_side=DECODE_SIDE).image
            except (FeedlensError, OSError) as exc:  # one unreadable copy must not stop the batch
                log.warning("image %s not scored by the category model: %s", image_id, exc)
        return out

    def train(self, workspace: int, mode: str = "probe", created_by: str = "") -> dict[str, Any]:
        """Train on the workspace's labels (the registry's recipe), register the version and make it
        production; returns the version as `ModelRegistry.get` does. Too few labels: CategoryError
        `not_enough_labels` saying how many are needed."""
        single, classes, _ = self.training.single_labels(workspace)
        if not single:
            raise CategoryError(
                "not_enough_labels",
                "the workspace has no images labelled with exactly one category: label some first",
            )
        counts = {name: sum(1 for c in single.values() if c == name) for name in classes}
        if len(classes) < 2:
            listed = ", ".join(f"{name!r} ({n})" for name, n in counts.items())
            raise CategoryError(
                "not_enough_labels",
                f"training needs labelled images of at least two categories; labelled so far: {listed}",
            )
        if mode == "finetune" and (shortfall := finetune_shortfall(counts)) is not None:
            raise CategoryError("not_enough_labels", shortfall)
        try:
            options = TrainOptions(mode=mode)  # type: ignore[arg-type]  # checked by TrainOptions
        except ValueError as exc:
            raise CategoryError("invalid_mode", str(exc)) from None
        model = self.training.train(workspace, WORKSPACE, options, task=TASK, created_by=created_by)
        registry = self.training.registry
        try:
            registry.promote(workspace, TASK, model["version"], by=created_by)
        except RegistryError as exc:  # cannot happen for a new version; say so rather than hide it
            raise CategoryError(exc.code, exc.message) from None
        return registry.get(workspace, TASK, model["version"])  # with `training`: the class counts
